"""An app's key-value store: ``kv.*`` in scripts, ``/api/v1/admin/apps/{app}/kv``.

A write that no trigger watches is one statement (an upsert, or a delete) with no
transaction around it; a watched one reads the previous value, locked, writes, and
queues its events in one transaction. On PostgreSQL a watched ``kv.set`` — what most
triggers listen to — is even a single statement: the read, the write and the events
are common table expressions of it. The statements of the write path are plain SQL:
they run on every write, and building them with the query builder cost about as much
as running them.
"""
import functools

from picloud.data import (
    ADMIN,
    check_key,
    check_limit,
    emit_event,
    encode_value,
    watching,
)
from picloud.cursor import decode_cursor, encode_cursor
from picloud.db import db, is_postgres, write_transaction
from picloud.errors import ValidationFailed
from picloud.models import isoformat, utcnow
from picloud.models.data import KVEntry, compact_json
from picloud.outbox import NOTIFY_SQL, data_event_rows, insert_events_cte

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
PREVIEW_CHARS = 200


class KVStore:
    """One app's keys and their JSON values."""

    def __init__(self, app_id, *, max_value_bytes, origin=ADMIN):
        self.app_id = app_id
        self.max_value_bytes = max_value_bytes
        self.origin = origin

    def get(self, key):
        """Return the entry under a key, or None."""
        return KVEntry.lookup(self.app_id, check_key(key)).first()

    def set(self, key, value):
        """Store a value under a key, whether or not it exists; return the entry."""
        check_key(key)
        text = encode_value(value, self.max_value_bytes)
        triggers = watching(self.app_id, "kv", "set", key)
        if not triggers:
            now = utcnow()
            entry_id = _execute("upsert", self.app_id, key, text, now)[0][0]
            return KVEntry(id=entry_id, app=self.app_id, key=key, value_json=text, updated_at=now)
        if is_postgres():
            return self._set_watched_postgres(key, text, triggers)
        with write_transaction():
            entry, previous = self._write(key, lambda previous: text)
            self._emit("set", entry, previous, triggers)
        return entry

    def incr(self, key, delta=1):
        """Add ``delta`` to the integer under a key (an absent key counts as 0); return the sum."""
        check_key(key)
        delta = _integer(delta, "delta", "The increment")

        def add(previous):
            current = 0 if previous is None else _integer(
                previous.value, "key", "The value under this key", code="not_an_integer"
            )
            total = current + delta
            if not INT64_MIN <= total <= INT64_MAX:
                raise ValidationFailed(
                    "delta", "The sum does not fit in a 64-bit integer.", code="integer_overflow"
                )
            return compact_json(total)

        with write_transaction():
            entry, previous = self._write(key, add)
            self._emit("set", entry, previous, watching(self.app_id, "kv", "set", key))
        return entry.value

    def delete(self, key):
        """Delete a key; tell whether it existed."""
        check_key(key)
        triggers = watching(self.app_id, "kv", "delete", key)
        if not triggers:
            return bool(_execute("delete", self.app_id, key))
        with write_transaction():
            previous = self._previous(key)
            if previous is None:
                return False
            _execute("delete_id", previous.id)
            self._emit("delete", None, previous, triggers)
        return True

    def list(self, *, prefix=None, limit=None, cursor=None, view="full"):
        """Return (entries, next cursor): one page of the keys starting with ``prefix``, in byte order.

        ``view`` picks what the entries carry: "full" (key, value, updated_at), "keys",
        or "preview" (key, updated_at, and the value's JSON cut to PREVIEW_CHARS + 1 as
        ``preview``, so that a page of large values is cheap to show).
        """
        limit = check_limit(limit)
        columns = {
            "full": (),
            "keys": (KVEntry.key,),
            "preview": (KVEntry.key, KVEntry.updated_at, KVEntry.value_preview(PREVIEW_CHARS + 1)),
        }[view]
        query = KVEntry.select(*columns).where(KVEntry.app == self.app_id)
        if prefix:
            check_key(prefix, "prefix", "prefix")
            query = query.where(KVEntry.key >= prefix)
            end = _prefix_end(prefix)
            if end is not None:
                query = query.where(KVEntry.key < end)
        if cursor is not None:
            after = decode_cursor(cursor)
            if not isinstance(after, str):
                raise ValidationFailed("cursor", "The cursor is not valid.")
            query = query.where(KVEntry.key > after)
        rows = list(query.order_by(KVEntry.key).limit(limit + 1))
        if len(rows) > limit:
            return rows[:limit], encode_cursor(rows[limit - 1].key)
        return rows, None

    def _write(self, key, compute):
        """Store ``compute(previous entry or None)`` (JSON text) under a key; return (entry, previous).

        Runs inside the caller's transaction, with the previous row locked.
        """
        while True:
            previous = self._previous(key)
            now = utcnow()
            text = compute(previous)
            if previous is not None:
                _execute("update", text, now, previous.id)
                entry = KVEntry(id=previous.id, app=self.app_id, key=key, value_json=text, updated_at=now)
                return entry, previous
            # A concurrent first write of the key may win (PostgreSQL): then the insert
            # does nothing, and the next round reads that write, locked.
            inserted = _execute("insert_new", self.app_id, key, text, now)
            if inserted:
                entry = KVEntry(id=inserted[0][0], app=self.app_id, key=key, value_json=text, updated_at=now)
                return entry, None

    def _set_watched_postgres(self, key, text, triggers):
        """Write a watched key and queue its events in one statement, so one round trip.

        The previous value is read locked and spliced into the events' payload by the
        database; a first write of the key that a concurrent one beats writes nothing
        and queues nothing, and is tried again (then as an update).
        """
        while True:
            now = utcnow()
            head = (
                f'{{"kind":"kv","op":"set","key":{compact_json(key)},"value":{text},"prev_value":'
            )
            tail = f',"at":{compact_json(isoformat(now))}}}'
            rows = data_event_rows(
                self.app_id, "kv", "set", {}, triggers,
                self.origin.trigger_depth, self.origin.parent_execution_id, now,
            )
            for row in rows:
                row["payload"] = (head, tail)
            events, event_params = insert_events_cte(
                rows, "CAST(%s AS text) || COALESCE((SELECT \"value\" FROM prev), 'null') || CAST(%s AS text)", "written"
            )
            written = db.execute_sql(
                _SET_WATCHED_POSTGRES.format(events=events, notify=NOTIFY_SQL),
                (self.app_id, key, self.app_id, key, text, now, text, now, *event_params),
            ).fetchall()
            if written:
                return KVEntry(id=written[0][0], app=self.app_id, key=key, value_json=text, updated_at=now)

    def _previous(self, key):
        """Return the entry under a key, locked until the transaction ends, or None."""
        rows = _execute("previous", self.app_id, key)
        if not rows:
            return None
        entry_id, text = rows[0]
        return KVEntry(id=entry_id, app=self.app_id, key=key, value_json=text)

    def _emit(self, op, entry, previous, triggers):
        key = (entry or previous).key
        emit_event(
            self.app_id,
            self.origin,
            kind="kv",
            op=op,
            name=key,
            payload={
                "kind": "kv",
                "op": op,
                "key": key,
                "value": entry.value if entry is not None else None,
                "prev_value": previous.value if previous is not None else None,
                "at": isoformat(entry.updated_at if entry is not None else utcnow()),
            },
            triggers=triggers,
        )


_WRITE_SQL = {
    # Every column of the row: no trigger wants the previous value.
    "upsert": (
        'INSERT INTO kv_entries (app_id, "key", "value", updated_at) VALUES ({p}, {p}, {p}, {p})'
        ' ON CONFLICT (app_id, "key") DO UPDATE SET "value" = excluded."value", updated_at = excluded.updated_at'
        " RETURNING id"
    ),
    "insert_new": (
        'INSERT INTO kv_entries (app_id, "key", "value", updated_at) VALUES ({p}, {p}, {p}, {p})'
        ' ON CONFLICT (app_id, "key") DO NOTHING RETURNING id'
    ),
    "previous": 'SELECT id, "value" FROM kv_entries WHERE app_id = {p} AND "key" = {p}{lock}',
    "update": 'UPDATE kv_entries SET "value" = {p}, updated_at = {p} WHERE id = {p}',
    "delete": 'DELETE FROM kv_entries WHERE app_id = {p} AND "key" = {p} RETURNING id',
    "delete_id": "DELETE FROM kv_entries WHERE id = {p}",
}


# The key's row, locked, is ``prev``; ``written`` is the row written, if any: the insert
# when there was none (nothing, if a concurrent first write won), else the update.
_SET_WATCHED_POSTGRES = """
    WITH prev AS (
        SELECT id, "value" FROM kv_entries WHERE app_id = %s AND "key" = %s FOR UPDATE
    ), inserted AS (
        INSERT INTO kv_entries (app_id, "key", "value", updated_at)
        SELECT %s, %s, %s, %s WHERE NOT EXISTS (SELECT FROM prev)
        ON CONFLICT (app_id, "key") DO NOTHING RETURNING id
    ), updated AS (
        UPDATE kv_entries AS entry SET "value" = %s, updated_at = %s
        FROM prev WHERE entry.id = prev.id RETURNING entry.id
    ), written AS (
        SELECT id FROM inserted UNION ALL SELECT id FROM updated
    ), queued AS (
        {events}
    )
    SELECT written.id, {notify} FROM written
"""


@functools.lru_cache(maxsize=None)
def _sql(name, postgres):
    # SQLite's writer holds the whole database (BEGIN IMMEDIATE): no row locks there.
    return _WRITE_SQL[name].format(p="%s" if postgres else "?", lock=" FOR UPDATE" if postgres else "")


def _execute(name, *params):
    """Run one of the write path's statements; return its rows (all read, so SQLite's
    statement is finished and its implicit transaction over)."""
    cursor = db.execute_sql(_sql(name, is_postgres()), params)
    return cursor.fetchall() if cursor.description else []


def _integer(value, field, what, code=None):
    """Return ``value`` as an int if it is an integral number in the 64-bit range."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not INT64_MIN <= value <= INT64_MAX:
        raise ValidationFailed(field, f"{what} is not an integer.", code=code)
    return value


def _prefix_end(prefix):
    """Return the least string above every string that starts with ``prefix``, or None."""
    chars = list(prefix)
    while chars:
        code = ord(chars.pop()) + 1
        if code == 0xD800:  # surrogates are not text: skip to the next real character
            code = 0xE000
        if code <= 0x10FFFF:
            return "".join(chars) + chr(code)
    return None
