"""The outbox: durable queue of trigger events and async requests, drained by the dispatcher.

Writers add events inside their own transaction, so a change and the events it causes
commit together or not at all (docs/api.md §7, §9). After the commit the dispatcher must
learn there is work:

- on PostgreSQL every write also runs ``NOTIFY picloud_outbox`` in its transaction, which
  PostgreSQL delivers at commit to every dispatcher's ``LISTEN`` connection, this
  process's included;
- on SQLite a transaction never yields to other greenlets (the driver blocks), so the
  local dispatcher is woken at once and can only run after the writer has committed.
  Other processes sharing the file notice within ``PICLOUD_DISPATCH_POLL_MS``.

``wake()`` is public for code that wants to nudge the local dispatcher itself.
"""
import base64
import collections
import fnmatch
import functools
import json
import uuid

from picloud import cache
from picloud.db import db, is_postgres, write_transaction
from picloud.invocation import ExecutionRecord
from picloud.models import Execution, isoformat, utcnow
from picloud.models.outbox import TRIGGER_OPS
from picloud.outbox.retry import validate_retry

CHANNEL = "picloud_outbox"

_dispatcher = None  # this process's running Dispatcher, once started


def matches(trigger, op, name):
    """Tell whether a data trigger fires for ``op`` on key or collection ``name``."""
    ops = trigger.ops or ()
    if ops and op not in ops:
        return False
    return fnmatch.fnmatchcase(name, trigger.glob)


def watching_triggers(app_id, kind, op, name):
    """Return the app's enabled triggers that fire for ``op`` on key or collection ``name``.

    Served from the process's configuration cache: every trigger change is a
    configuration change, so no mutation pays a query to learn that nothing listens.
    """
    if op not in TRIGGER_OPS.get(kind, ()):
        raise ValueError(f"no {kind!r} trigger listens to op {op!r}")
    return [t for t in enabled_triggers(app_id, kind) if matches(t, op, name)]


def emit_data_event(
    app_id, *, kind, op, name, payload, trigger_depth, parent_execution_id=None, triggers=None
):
    """Queue one event per matching enabled trigger; return how many were written.

    Call it inside the transaction that makes the change. ``name`` is the key (kind
    ``kv``) or the collection (``docs``); ``payload`` holds the event's other fields
    (``key, value, prev_value, at`` or ``collection, id, data, prev_data, at``);
    ``trigger_depth`` is the depth of the run that made the change (0 for HTTP runs and
    the admin API) — the triggered runs get one more. ``triggers`` are the matching
    triggers when the caller looked them up already (``watching_triggers``).
    """
    if triggers is None:
        triggers = watching_triggers(app_id, kind, op, name)
    if not triggers:
        return 0
    insert_events(data_event_rows(app_id, kind, op, payload, triggers, trigger_depth, parent_execution_id))
    return len(triggers)


def data_event_rows(app_id, kind, op, payload, triggers, trigger_depth, parent_execution_id, now=None):
    """Return the outbox rows (dicts by column) of one data event, one per trigger."""
    now = now or utcnow()
    event = {"kind": kind, "op": op, **payload}
    event.setdefault("at", isoformat(now))
    return [
        first_attempt_row(
            app_id, kind, trigger.id, trigger.script_id, event,
            {"user_id": trigger.registered_by, "username": trigger.registered_by_name},
            trigger.retry, trigger_depth + 1, parent_execution_id, now,
        )
        for trigger in triggers
    ]


def first_attempt_row(app_id, kind, trigger_id, script_id, payload, principal, retry,
                      trigger_depth, parent_execution_id, now):
    """Return the outbox row (a dict by column) of an event's first attempt, due now."""
    return {
        "id": str(uuid.uuid4()),
        "app_id": app_id,
        "kind": kind,
        "trigger_id": trigger_id,
        "script_id": script_id,
        "payload": payload,
        "principal": principal,
        "retry": retry,
        "trigger_depth": trigger_depth,
        "parent_execution_id": parent_execution_id,
        "execution_id": str(uuid.uuid4()),
        "attempt": 1,
        "queued_at": now,
        "available_at": now,
        "created_at": now,
    }


# Every data mutation with a listening trigger runs the insert, so it is plain SQL:
# building it with the query builder cost more than running it.
EnabledTrigger = collections.namedtuple(
    "EnabledTrigger", "id script_id glob ops retry registered_by registered_by_name"
)
_EVENT_COLUMNS = (
    "id", "app_id", "kind", "trigger_id", "script_id", "payload", "principal", "retry",
    "trigger_depth", "parent_execution_id", "execution_id", "attempt", "queued_at",
    "available_at", "created_at",
)
_JSON_COLUMNS = ("payload", "principal", "retry")


def enabled_triggers(app_id, kind):
    """Return the app's enabled triggers of one kind as EnabledTrigger tuples (cached)."""
    return cache.cache.get(
        ("triggers", app_id, kind), lambda: _load_enabled_triggers(app_id, kind), exact=True
    )


def _load_enabled_triggers(app_id, kind):
    p = db.param
    cursor = db.execute_sql(
        f"SELECT {', '.join(EnabledTrigger._fields)} FROM triggers"
        f" WHERE app_id = {p} AND kind = {p} AND enabled = {p}",
        (app_id, kind, True),
    )
    return tuple(
        EnabledTrigger(tid, script_id, glob, tuple(json.loads(ops or "[]")), json.loads(retry) if retry else None, by, name)
        for tid, script_id, glob, ops, retry, by, name in cursor.fetchall()
    )


def insert_events(rows):
    """Insert outbox rows (dicts by column) and announce them, inside the caller's transaction."""
    params = []
    for row in rows:
        for column in _EVENT_COLUMNS:
            value = row.get(column)
            if column in _JSON_COLUMNS and value is not None:
                value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            params.append(value)
    db.execute_sql(_insert_sql(len(rows), is_postgres()), params)
    if not db.notifies:
        wake()


# Column types for rows given as a VALUES list inside a larger PostgreSQL statement,
# where the insert's own column types cannot type the parameters.
_PG_TYPES = {
    "id": "varchar", "app_id": "integer", "kind": "varchar", "trigger_id": "integer",
    "script_id": "integer", "payload": "text", "principal": "text", "retry": "text",
    "trigger_depth": "integer", "parent_execution_id": "varchar", "execution_id": "varchar",
    "attempt": "integer", "queued_at": "timestamp", "available_at": "timestamp",
    "created_at": "timestamp",
}


def insert_events_cte(rows, payload_sql, source):
    """Return (SQL, params) inserting outbox rows from within a WITH (PostgreSQL only).

    Each row's payload is the SQL expression ``payload_sql`` (with its ``%s`` taken
    from the row's ``payload``, a tuple of parameters), and the rows are inserted once
    per row of the relation ``source``: none when it is empty. The caller's statement
    must also ``pg_notify`` the outbox channel (``NOTIFY_SQL``).
    """
    params = []
    values = []
    for row in rows:
        items = []
        for column in _EVENT_COLUMNS:
            if column == "payload":
                items.append(payload_sql)
                params.extend(row["payload"])
                continue
            value = row.get(column)
            if column in _JSON_COLUMNS and value is not None:
                value = json.dumps(value, separators=(",", ":"), ensure_ascii=False)
            items.append(f"CAST(%s AS {_PG_TYPES[column]})")
            params.append(value)
        values.append("(" + ", ".join(items) + ")")
    sql = (
        f"INSERT INTO outbox_events ({', '.join(_EVENT_COLUMNS)})"
        f" SELECT queued.* FROM (VALUES {', '.join(values)}) AS queued, {source}"
    )
    return sql, params


NOTIFY_SQL = f"pg_notify('{CHANNEL}', '')"


@functools.lru_cache(maxsize=16)
def _insert_sql(count, postgres):
    p = "%s" if postgres else "?"
    row = "(" + ", ".join([p] * len(_EVENT_COLUMNS)) + ")"
    sql = f"INSERT INTO outbox_events ({', '.join(_EVENT_COLUMNS)}) VALUES " + ", ".join([row] * count)
    if postgres:
        # One round trip for both: the insert runs as a data-modifying CTE, and the
        # NOTIFY is delivered when the caller's transaction commits.
        sql = f"WITH inserted AS ({sql}) SELECT pg_notify('{CHANNEL}', '')"
    return sql


def enqueue_http_request(route, request_globals, *, app_id=None):
    """Queue an async route's request; return ``{"execution_id", "accepted_at"}`` for the 202.

    The first attempt's execution is written as ``queued`` in the same transaction, so
    ``GET /api/v1/admin/executions/{id}`` finds it at once.
    """
    if app_id is None:
        app_id = getattr(route, "app_id", None)
    if app_id is None:
        app_id = cache.script(route.script_id).app_id
    now = utcnow()
    event_id, execution_id = str(uuid.uuid4()), str(uuid.uuid4())
    with write_transaction():
        insert_events(
            [
                {
                    "id": event_id,
                    "app_id": app_id,
                    "kind": "http",
                    "script_id": route.script_id,
                    "payload": storable_request(request_globals),
                    "retry": route.retry or validate_retry(None),
                    "trigger_depth": 0,  # HTTP runs are depth 0
                    "execution_id": execution_id,
                    "attempt": 1,
                    "queued_at": now,
                    "available_at": now,
                    "created_at": now,
                }
            ]
        )
        record_queued(
            ExecutionRecord(
                id=execution_id,
                app_id=app_id,
                script_id=route.script_id,
                source="http",
                status="queued",
                queued_at=now,
                event_id=event_id,
            )
        )
    return {"execution_id": execution_id, "accepted_at": isoformat(now)}


def storable_request(request_globals):
    """Return the ``request`` table in a JSON-storable form (its body is bytes).

    A UTF-8 body is kept as text, so a dead letter shows it readably; any other body
    is kept as base64 under ``body_base64``.
    """
    stored = dict(request_globals)
    body = stored.get("body")
    if isinstance(body, (bytes, bytearray)):
        try:
            stored["body"] = bytes(body).decode("utf-8")
        except UnicodeDecodeError:
            stored["body"] = None
            stored["body_base64"] = base64.b64encode(body).decode("ascii")
    return stored


def runnable_request(stored):
    """Return the ``request`` table a script gets back from its stored form."""
    request_globals = dict(stored)
    encoded = request_globals.pop("body_base64", None)
    if encoded is not None:
        request_globals["body"] = base64.b64decode(encoded)
    elif isinstance(request_globals.get("body"), str):
        request_globals["body"] = request_globals["body"].encode("utf-8")
    return request_globals


def record_queued(record):
    """Write the row of a queued ExecutionRecord (inside the caller's transaction)."""
    Execution.insert(**record.row()).on_conflict_ignore().execute()


def announce():
    """Tell dispatchers that events will be due once the current transaction commits."""
    if db.notifies:
        db.execute_sql(f"NOTIFY {CHANNEL}")
    else:
        wake()


def wake():
    """Wake this process's dispatcher now."""
    if _dispatcher is not None:
        _dispatcher.wake()


def set_dispatcher(dispatcher):
    """Make ``dispatcher`` the one ``wake()`` reaches (None when it stops)."""
    global _dispatcher
    _dispatcher = dispatcher
