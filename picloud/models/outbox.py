"""Triggers, the outbox of events waiting to run, and dead letters (docs/api.md §9).

An ``OutboxEvent`` is one delivery: a data change for one trigger, an async HTTP
request, or a dead letter for one handler. Its id is the ``ctx.event_id`` the script
sees, the same on every attempt. Each attempt is its own execution row (same
``event_id``, ``attempt`` 1, 2, …); ``execution_id`` is the id the next attempt will use,
so an async request's first attempt is the execution the 202 answer named.
"""
import peewee

from picloud.models.apps import App, IdField, JSONField, Script
from picloud.models.base import BaseModel, isoformat, utcnow

TRIGGER_KINDS = ("kv", "docs", "dead_letter", "schedule")
# The ops a data trigger can listen to, per kind; an empty list means all of them.
TRIGGER_OPS = {"kv": ("set", "delete"), "docs": ("insert", "update", "delete")}
# The JSON name of a data trigger's glob, per kind.
GLOB_FIELDS = {"kv": "key_glob", "docs": "collection_glob"}


class Trigger(BaseModel):
    """Run a script when an app's data matching a glob changes, or for each dead letter."""

    id = IdField()
    app = peewee.ForeignKeyField(App, backref="triggers", on_delete="CASCADE")
    kind = peewee.CharField(max_length=16)
    # CASCADE only takes effect when the app goes: deleting a script a trigger uses
    # answers 409 script_in_use first.
    script = peewee.ForeignKeyField(Script, backref="triggers", on_delete="CASCADE")
    glob = peewee.CharField(max_length=1024, null=True)  # None for dead_letter triggers
    ops = JSONField(default=list)
    retry = JSONField(null=True)  # the complete policy; None for dead_letter triggers
    enabled = peewee.BooleanField(default=True)
    # The registrant, whom triggered runs act as. The name is kept as text so the
    # principal stays meaningful after the user is deleted.
    registered_by = peewee.IntegerField(null=True)
    registered_by_name = peewee.CharField(max_length=64, null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)
    # Schedule triggers (docs/api.md §14): the expression as written, its IANA timezone,
    # and the next instant it fires (None while disabled).
    cron = peewee.CharField(max_length=200, null=True)
    timezone = peewee.CharField(max_length=64, null=True)
    next_run_at = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "triggers"
        indexes = (
            (("app", "kind", "enabled"), False),
            (("kind", "enabled", "next_run_at"), False),
        )

    @classmethod
    def for_app(cls, app):
        return cls.select().where(cls.app == app)

    @classmethod
    def enabled_for(cls, app_id, kind):
        """Select the enabled triggers of one kind of an app."""
        return cls.select().where((cls.app == app_id) & (cls.kind == kind) & (cls.enabled == True))  # noqa: E712

    @classmethod
    def due_schedules(cls, now):
        """Select the enabled schedule triggers whose next instant has come."""
        return cls.select().where(
            (cls.kind == "schedule") & (cls.enabled == True) & (cls.next_run_at <= now)  # noqa: E712
        )

    @classmethod
    def next_schedule_at(cls):
        """Return the earliest next instant of any enabled schedule trigger, or None."""
        return (
            cls.select(peewee.fn.MIN(cls.next_run_at))
            .where((cls.kind == "schedule") & (cls.enabled == True))  # noqa: E712
            .scalar()
        )

    @property
    def principal(self):
        """The user a triggered run acts as (``ctx.principal``), or None without one."""
        if self.registered_by is None:
            return None
        return {"user_id": self.registered_by, "username": self.registered_by_name}

    def to_dict(self):
        body = {
            "id": self.id,
            "app_id": self.app_id,
            "kind": self.kind,
            "script_id": self.script_id,
            "enabled": self.enabled,
            "retry": self.retry,
            "registered_by": self.registered_by,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }
        if self.kind in GLOB_FIELDS:
            body[GLOB_FIELDS[self.kind]] = self.glob
            body["ops"] = list(self.ops or [])
        if self.kind == "schedule":
            body["cron"] = self.cron
            body["timezone"] = self.timezone
            body["next_run_at"] = isoformat(self.next_run_at)
        return body


class ScheduleTick(BaseModel):
    """One firing of a schedule trigger: unique per (trigger, instant), so of processes
    racing to queue the same tick, exactly one succeeds."""

    trigger = peewee.ForeignKeyField(Trigger, on_delete="CASCADE", index=False)
    scheduled_at = peewee.DateTimeField()
    event_id = peewee.CharField(max_length=36)
    created_at = peewee.DateTimeField(default=utcnow, index=True)

    class Meta:
        table_name = "schedule_ticks"
        indexes = ((("trigger", "scheduled_at"), True),)


class OutboxEvent(BaseModel):
    """One delivery waiting to run: due at ``available_at``, leased while claimed."""

    id = peewee.CharField(max_length=36, primary_key=True)  # ctx.event_id
    app = peewee.ForeignKeyField(App, on_delete="CASCADE")
    kind = peewee.CharField(max_length=16)  # kv, docs, http, dead_letter or schedule
    # Plain integer: a replayed dead letter may outlive its trigger.
    trigger_id = peewee.IntegerField(null=True)
    script = peewee.ForeignKeyField(Script, on_delete="CASCADE")
    payload = JSONField()  # the event table, or the request table of an async run
    principal = JSONField(null=True)  # {user_id, username} of the trigger's registrant
    retry = JSONField(null=True)  # None: never retried (dead-letter handlers)
    trigger_depth = peewee.IntegerField(default=0)  # the depth the run will have
    parent_execution_id = peewee.CharField(max_length=36, null=True)
    execution_id = peewee.CharField(max_length=36)
    attempt = peewee.IntegerField(default=1)
    queued_at = peewee.DateTimeField(default=utcnow)  # when this attempt was queued
    available_at = peewee.DateTimeField()  # when it is due
    claimed_by = peewee.CharField(max_length=64, null=True)
    lease_until = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "outbox_events"
        # The claim walks due events in order of due time.
        indexes = ((("available_at",), False),)


class DeadLetter(BaseModel):
    """An event that failed every attempt, kept for inspection, replay or discard."""

    id = IdField()
    app = peewee.ForeignKeyField(App, backref="dead_letters", on_delete="CASCADE")
    source = peewee.CharField(max_length=16)  # kv, docs, http or schedule
    trigger_id = peewee.IntegerField(null=True)
    script_id = peewee.IntegerField()
    event = JSONField()
    event_id = peewee.CharField(max_length=36)
    attempts = peewee.IntegerField()
    last_error = JSONField(null=True)
    # What a replay needs to queue the event again as it was.
    principal = JSONField(null=True)
    retry = JSONField(null=True)
    trigger_depth = peewee.IntegerField(default=1)
    parent_execution_id = peewee.CharField(max_length=36, null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    resolution = peewee.CharField(max_length=16, null=True)
    resolved_at = peewee.DateTimeField(null=True)

    RESOLUTIONS = ("replayed", "discarded", "handled", "handler_failed")
    # Resolutions after which a person may still replay or discard the dead letter:
    # none yet, or a handler that failed to take care of it.
    ACTIONABLE = (None, "handler_failed")

    class Meta:
        table_name = "dead_letters"
        indexes = (
            (("app", "resolution"), False),
            (("resolved_at",), False),
        )

    @classmethod
    def for_app(cls, app, *, open_only=True):
        query = cls.select().where(cls.app == app)
        if open_only:
            query = query.where(cls.resolution.is_null())
        return query

    @classmethod
    def actionable(cls):
        """The condition of dead letters a replay or discard may still change."""
        return cls.resolution.is_null() | (cls.resolution == "handler_failed")

    def to_dict(self):
        return {
            "id": self.id,
            "app_id": self.app_id,
            "source": self.source,
            "trigger_id": self.trigger_id,
            "script_id": self.script_id,
            "event": self.event,
            "event_id": self.event_id,
            "attempts": self.attempts,
            "last_error": self.last_error,
            "created_at": isoformat(self.created_at),
            "resolution": self.resolution,
            "resolved_at": isoformat(self.resolved_at),
        }
