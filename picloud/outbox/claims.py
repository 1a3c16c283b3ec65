"""Claiming due outbox events: one statement per database, chosen by ``is_postgres()``.

A claim stamps events with the claiming process's id and a lease. While the lease runs,
no other process claims them; a process that dies leaves its leases to expire, and its
events are claimed again. Every later write of a claimed event is guarded by
``claimed_by`` so a process that lost its lease can never overwrite the new owner's work.
"""
import dataclasses
import datetime

from picloud.db import db, is_postgres, write_transaction
from picloud.models import OutboxEvent, utcnow

LEASE_SECONDS = 30

_FIELDS = OutboxEvent._meta.sorted_fields
_COLUMNS = ", ".join(f.column_name for f in _FIELDS)


@dataclasses.dataclass(frozen=True, slots=True)
class ClaimedEvent:
    """A claimed outbox row, read once: what running it and acting on its outcome need.

    Its attributes are those of an ``OutboxEvent`` row (``app_id``, ``script_id``, ...);
    it is made from the claim's own result rows, without a model instance per row.
    """

    id: str
    app_id: int
    kind: str
    trigger_id: int | None
    script_id: int
    payload: object
    principal: dict | None
    retry: dict | None
    trigger_depth: int
    parent_execution_id: str | None
    execution_id: str
    attempt: int
    queued_at: datetime.datetime
    available_at: datetime.datetime
    claimed_by: str | None
    lease_until: datetime.datetime | None
    created_at: datetime.datetime

    @classmethod
    def from_row(cls, row):
        return cls(*[field.python_value(value) for field, value in zip(_FIELDS, row)])


assert [f.name for f in dataclasses.fields(ClaimedEvent)] == [f.column_name for f in _FIELDS]

# PostgreSQL: SKIP LOCKED lets any number of processes claim side by side, each taking
# rows the others have not locked; the same statement deletes what this worker has
# delivered since its last claim. SQLite serialises writers, so the same claim without
# row locks is atomic there (RETURNING needs SQLite 3.35).
_CLAIM_POSTGRES = f"""
    WITH delivered AS (
        DELETE FROM outbox_events WHERE id = ANY(%s) AND claimed_by = %s
    )
    UPDATE outbox_events SET claimed_by = %s, lease_until = %s
    WHERE id IN (
        SELECT id FROM outbox_events
        WHERE available_at <= %s AND (lease_until IS NULL OR lease_until < %s)
        ORDER BY available_at
        LIMIT %s
        FOR UPDATE SKIP LOCKED
    )
    RETURNING {_COLUMNS}
"""
_CLAIM_SQLITE = f"""
    UPDATE outbox_events SET claimed_by = ?, lease_until = ?
    WHERE id IN (
        SELECT id FROM outbox_events
        WHERE available_at <= ? AND (lease_until IS NULL OR lease_until < ?)
        ORDER BY available_at
        LIMIT ?
    )
    RETURNING {_COLUMNS}
"""


def lease_end(now=None):
    return (now or utcnow()) + datetime.timedelta(seconds=LEASE_SECONDS)


def claim_due_events(worker_id, limit, now=None, delivered=()):
    """Claim up to ``limit`` due events for ``worker_id``; return them, oldest due first.

    ``delivered`` are ids of events this worker ran since its last claim: they are
    deleted in the same round trip.
    """
    if limit <= 0:
        delete_delivered(worker_id, delivered)
        return []
    now = now or utcnow()
    lease = lease_end(now)
    if is_postgres():
        params = (list(delivered), worker_id, worker_id, lease, now, now, limit)
        rows = db.execute_sql(_CLAIM_POSTGRES, params).fetchall()
    else:
        with write_transaction():
            delete_delivered(worker_id, delivered)
            rows = db.execute_sql(_CLAIM_SQLITE, (worker_id, lease, now, now, limit)).fetchall()
    events = [ClaimedEvent.from_row(row) for row in rows]
    events.sort(key=lambda e: e.available_at)
    return events


def renew_leases(worker_id, event_ids, now=None):
    """Extend the leases this worker still holds on ``event_ids``; return how many."""
    if not event_ids:
        return 0
    return (
        OutboxEvent.update(lease_until=lease_end(now))
        .where(OutboxEvent.id.in_(list(event_ids)), OutboxEvent.claimed_by == worker_id)
        .execute()
    )


def release_events(worker_id, event_ids):
    """Give back events this worker claimed but did not run, due at once."""
    if not event_ids:
        return 0
    return (
        OutboxEvent.update(claimed_by=None, lease_until=None)
        .where(OutboxEvent.id.in_(list(event_ids)), OutboxEvent.claimed_by == worker_id)
        .execute()
    )


def delete_delivered(worker_id, event_ids):
    """Remove delivered events this worker still holds; return how many."""
    if not event_ids:
        return 0
    return (
        OutboxEvent.delete()
        .where(OutboxEvent.id.in_(list(event_ids)), OutboxEvent.claimed_by == worker_id)
        .execute()
    )
