"""Triggers: validation and writes shared by the admin API and the dashboard (docs/api.md §9).

A data trigger has a glob (``key_glob`` for kv, ``collection_glob`` for docs), the ops it
listens to (empty: every op) and a retry policy; a schedule trigger has a ``cron`` and a
``timezone`` (docs/api.md §14) and a retry policy, and shows when it fires next; a
dead-letter trigger only names its script. Deleting a trigger also drops its events still waiting in the queue: whoever
removes a trigger wants its script to stop running.

Every write here is a configuration change (``picloud.cache``): each process
keeps the enabled data triggers of an app in its configuration cache, so that a data
mutation need not query them, and the change drops them there.
"""
from picloud.cache import config_change
from picloud.errors import ValidationFailed
from picloud.manager import bool_field, is_id, reject_unknown
from picloud.models import OutboxEvent, ScheduleTick, Script, Trigger, utcnow
from picloud.models.outbox import GLOB_FIELDS, TRIGGER_KINDS, TRIGGER_OPS
from picloud.outbox.retry import validate_retry
from picloud.outbox.schedule import parse_schedule

MAX_GLOB_LENGTH = 1024


KIND_MESSAGE = "kind must be kv, docs, dead_letter or schedule."


def fields_of(kind):
    """Return the JSON fields a trigger of ``kind`` accepts."""
    if kind == "dead_letter":
        return ("script_id", "enabled")
    if kind == "schedule":
        return ("script_id", "cron", "timezone", "retry", "enabled")
    return ("script_id", GLOB_FIELDS[kind], "ops", "retry", "enabled")


def clean_trigger(kind, data):
    """Check a new trigger's own fields (all but its script); return them as its JSON shows them."""
    if kind not in TRIGGER_KINDS:
        raise ValidationFailed("kind", KIND_MESSAGE)
    fields = {"enabled": bool_field("enabled", data.get("enabled"), default=True)}
    if kind == "schedule":
        schedule = parse_schedule(data.get("cron"), data.get("timezone"))
        fields["cron"] = schedule.cron
        fields["timezone"] = schedule.timezone
        fields["retry"] = validate_retry(data.get("retry"))
    elif kind in GLOB_FIELDS:
        fields[GLOB_FIELDS[kind]] = glob_field(GLOB_FIELDS[kind], data.get(GLOB_FIELDS[kind]))
        fields["ops"] = ops_field(kind, data.get("ops"))
        fields["retry"] = validate_retry(data.get("retry"))
    elif data.get("retry") is not None:
        raise ValidationFailed("retry", "A dead-letter handler is never retried.")
    else:
        fields["retry"] = None
    return fields


def create_trigger(app, kind, data, user):
    """Create a trigger of ``kind`` in the app, registered by ``user``."""
    if kind not in TRIGGER_KINDS:
        raise ValidationFailed("kind", KIND_MESSAGE)
    reject_unknown(data, fields_of(kind))
    cleaned = clean_trigger(kind, data)
    fields = {
        "kind": kind,
        "script": _script_id(app.id, data.get("script_id")),
        "enabled": cleaned["enabled"],
        "glob": cleaned.get(GLOB_FIELDS.get(kind)),
        "ops": cleaned.get("ops", []),
        "retry": cleaned["retry"],
        "registered_by": user.id if user is not None else None,
        "registered_by_name": user.username if user is not None else None,
    }
    if kind == "schedule":
        fields["cron"] = cleaned["cron"]
        fields["timezone"] = cleaned["timezone"]
        fields["next_run_at"] = next_run(cleaned["cron"], cleaned["timezone"], cleaned["enabled"])
    with config_change():
        return Trigger.create(app=app.id, **fields)


def next_run(cron, timezone, enabled, now=None):
    """Return when a schedule fires next from now on, or None while it is disabled.

    Ticks missed while a schedule was disabled or being changed are not run.
    """
    if not enabled:
        return None
    return parse_schedule(cron, timezone).next_after(now or utcnow())


def update_trigger(trigger, data):
    """Change a trigger's script, glob, ops, schedule, retry policy or enabled flag."""
    reject_unknown(data, fields_of(trigger.kind))
    changes = {}
    if "script_id" in data:
        changes["script"] = _script_id(trigger.app_id, data["script_id"])
    if "enabled" in data:
        changes["enabled"] = bool_field("enabled", data["enabled"])
    glob_name = GLOB_FIELDS.get(trigger.kind)
    if glob_name in data:
        changes["glob"] = glob_field(glob_name, data[glob_name])
    if "ops" in data:
        changes["ops"] = ops_field(trigger.kind, data["ops"])
    if "retry" in data:
        # A partial policy changes only the settings it names.
        value = data["retry"]
        if isinstance(value, dict):
            value = {**(trigger.retry or {}), **value}
        changes["retry"] = validate_retry(value)
    if trigger.kind == "schedule":
        changes.update(_schedule_changes(trigger, data, changes.get("enabled", trigger.enabled)))
    changes["updated_at"] = utcnow()
    with config_change():
        Trigger.update(**changes).where(Trigger.id == trigger.id).execute()
    return Trigger.get_by_id(trigger.id)


def _schedule_changes(trigger, data, enabled):
    """Return a schedule's new cron, timezone and next instant, when any of them change."""
    if not ({"cron", "timezone", "enabled"} & set(data)):
        return {}
    schedule = parse_schedule(data.get("cron", trigger.cron), data.get("timezone", trigger.timezone))
    changed = (schedule.cron, schedule.timezone, enabled) != (trigger.cron, trigger.timezone, trigger.enabled)
    if not changed:  # the same schedule, still on: keep the tick it is waiting for
        return {}
    return {
        "cron": schedule.cron,
        "timezone": schedule.timezone,
        "next_run_at": next_run(schedule.cron, schedule.timezone, enabled),
    }


def delete_trigger(trigger):
    """Delete a trigger and the events it queued that have not run yet."""
    with config_change():
        OutboxEvent.delete().where(OutboxEvent.trigger_id == trigger.id).execute()
        ScheduleTick.delete().where(ScheduleTick.trigger == trigger.id).execute()
        Trigger.delete().where(Trigger.id == trigger.id).execute()


def glob_field(name, value):
    """Check a key or collection glob: a non-empty string (``*``, ``?``, ``[...]``)."""
    if not isinstance(value, str):
        raise ValidationFailed(name, f"{name} is required and must be a string.")
    if not value:
        raise ValidationFailed(name, f"{name} must not be empty.")
    if len(value) > MAX_GLOB_LENGTH:
        raise ValidationFailed(name, f"{name} must be at most {MAX_GLOB_LENGTH} characters.")
    if "\x00" in value:  # keys and collection names never hold it
        raise ValidationFailed(name, f"{name} cannot contain the NUL character.")
    return value


def ops_field(kind, value):
    """Check a list of ops for ``kind``; return it deduplicated in canonical order."""
    allowed = TRIGGER_OPS[kind]
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(op, str) for op in value):
        raise ValidationFailed("ops", f"ops must be a list of {', '.join(allowed)}.")
    unknown = [op for op in value if op not in allowed]
    if unknown:
        raise ValidationFailed(
            "ops", f"{unknown[0]!r} is not an op of {kind} triggers ({', '.join(allowed)})."
        )
    return [op for op in allowed if op in value]


def _script_id(app_id, script_id):
    if (
        not is_id(script_id)
        or not Script.select().where((Script.id == script_id) & (Script.app == app_id)).exists()
    ):
        raise ValidationFailed("script_id", "script_id must be a script of the same app.")
    return script_id
