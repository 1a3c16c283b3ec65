"""Dead letters: written when an event runs out of attempts; replayed, discarded or handled.

An event becomes a dead letter in one transaction that also removes it from the queue
and queues one ``dead_letter`` event per enabled dead-letter trigger of the app. Those
handler runs are never retried nor dead-lettered; they only set the dead letter's
resolution (``handled`` or ``handler_failed``).
"""
import uuid

from picloud.db import write_transaction
from picloud.errors import Conflict, ValidationFailed
from picloud.manager import is_id
from picloud.models import DeadLetter, OutboxEvent, Script, Trigger, utcnow
from picloud.outbox import announce, first_attempt_row, insert_events
from picloud.outbox.retry import validate_retry

# Purged in slices so one housekeeping pass never holds a long write lock.


def last_error_of(execution):
    """Return what a dead letter keeps of the failed last attempt."""
    error = execution.error or {}
    return {
        "status": execution.status,
        "message": error.get("message"),
        "line": error.get("line"),
        "execution_id": execution.id,
    }


def bury(event, execution, worker_id):
    """Turn a claimed event that failed its last attempt into a dead letter.

    Returns the DeadLetter, or None when this worker no longer holds the event (its
    lease ran out and another process took it over).
    """
    with write_transaction():
        removed = (
            OutboxEvent.delete()
            .where((OutboxEvent.id == event.id) & (OutboxEvent.claimed_by == worker_id))
            .execute()
        )
        if not removed:
            return None
        dead_letter = DeadLetter.create(
            app=event.app_id,
            source=event.kind,
            trigger_id=event.trigger_id,
            script_id=event.script_id,
            event=event.payload,
            event_id=event.id,
            attempts=event.attempt,
            last_error=last_error_of(execution),
            principal=event.principal,
            retry=event.retry,
            trigger_depth=event.trigger_depth,
            parent_execution_id=event.parent_execution_id,
        )
        fire_handlers(dead_letter, parent_execution_id=execution.id)
    return dead_letter


def handler_event(dead_letter):
    """Return the ``event`` table a dead-letter handler receives."""
    return {
        "kind": "dead_letter",
        "dead_letter_id": dead_letter.id,
        "source": dead_letter.source,
        "trigger_id": dead_letter.trigger_id,
        "script_id": dead_letter.script_id,
        "original_event": dead_letter.event,
        "attempts": dead_letter.attempts,
        # Without its null fields: a missing ``line`` is nil for the script, not a
        # (truthy) json.null.
        "last_error": {k: v for k, v in (dead_letter.last_error or {}).items() if v is not None},
    }


def fire_handlers(dead_letter, *, parent_execution_id=None):
    """Queue one run per enabled dead-letter trigger of the app; return how many."""
    handlers = list(Trigger.enabled_for(dead_letter.app_id, "dead_letter"))
    if not handlers:
        return 0
    now = utcnow()
    payload = handler_event(dead_letter)
    insert_events([
        first_attempt_row(
            dead_letter.app_id, "dead_letter", handler.id, handler.script_id, payload,
            handler.principal, None, dead_letter.trigger_depth + 1, parent_execution_id, now,
        )
        for handler in handlers
    ])
    return len(handlers)


def record_handler_result(dead_letter_id, succeeded):
    """Set the resolution a handler run earned, unless a person resolved it meanwhile.

    One failing handler marks the dead letter ``handler_failed`` even if another
    handler succeeded.
    """
    now = utcnow()
    if succeeded:
        condition = DeadLetter.resolution.is_null()
        resolution = "handled"
    else:
        condition = DeadLetter.resolution.is_null() | (DeadLetter.resolution == "handled")
        resolution = "handler_failed"
    return (
        DeadLetter.update(resolution=resolution, resolved_at=now)
        .where((DeadLetter.id == dead_letter_id) & condition)
        .execute()
    )


def replay(dead_letter):
    """Queue the dead letter's event again (same event id, attempt 1); mark it replayed."""
    with write_transaction():
        if not _resolve(dead_letter, "replayed"):
            raise _already_resolved(dead_letter)
        _requeue(dead_letter)
    return DeadLetter.get_by_id(dead_letter.id)


def discard(dead_letter):
    """Mark a dead letter discarded."""
    with write_transaction():
        if not _resolve(dead_letter, "discarded"):
            raise _already_resolved(dead_letter)
    return DeadLetter.get_by_id(dead_letter.id)


def replay_many(app, ids=None):
    """Replay the app's listed open dead letters, or all of them; return how many."""
    if ids is not None:
        if not isinstance(ids, list) or not all(is_id(i) for i in ids):
            raise ValidationFailed("ids", "ids must be a list of dead letter ids.")
    query = DeadLetter.select().where((DeadLetter.app == app) & DeadLetter.resolution.is_null())
    if ids is not None:
        query = query.where(DeadLetter.id.in_(ids))
    replayed = 0
    with write_transaction():
        for dead_letter in query.order_by(DeadLetter.id):
            if Script.get_or_none(Script.id == dead_letter.script_id) is None:
                continue  # nothing left to run it with; it stays open
            if _resolve(dead_letter, "replayed"):
                _requeue(dead_letter)
                replayed += 1
    return replayed


def _resolve(dead_letter, resolution):
    """Set a resolution if the dead letter is still actionable; tell whether it was."""
    return (
        DeadLetter.update(resolution=resolution, resolved_at=utcnow())
        .where((DeadLetter.id == dead_letter.id) & DeadLetter.actionable())
        .execute()
    )


def _requeue(dead_letter):
    script = Script.get_or_none(Script.id == dead_letter.script_id)
    if script is None:
        raise Conflict("The script this dead letter ran has been deleted.", code="script_deleted")
    retry = dead_letter.retry
    if dead_letter.trigger_id is not None:
        trigger = Trigger.get_or_none(Trigger.id == dead_letter.trigger_id)
        if trigger is not None and trigger.retry:  # the trigger's current policy
            retry = trigger.retry
    now = utcnow()
    # Ignoring a conflict: if the event is somehow queued already, it will run anyway.
    OutboxEvent.insert(
        id=dead_letter.event_id,
        app=dead_letter.app_id,
        kind=dead_letter.source,
        trigger_id=dead_letter.trigger_id,
        script=dead_letter.script_id,
        payload=dead_letter.event,
        principal=dead_letter.principal,
        retry=retry or validate_retry(None),
        trigger_depth=dead_letter.trigger_depth,
        parent_execution_id=dead_letter.parent_execution_id,
        execution_id=str(uuid.uuid4()),
        attempt=1,
        queued_at=now,
        available_at=now,
        created_at=now,
    ).on_conflict_ignore().execute()
    announce()


def _already_resolved(dead_letter):
    current = DeadLetter.get_or_none(DeadLetter.id == dead_letter.id)
    resolution = current.resolution if current else None
    return Conflict(
        f"This dead letter is already resolved ({resolution}).",
        code="already_resolved",
        resolution=resolution,
    )
