"""The execution log: records queued in memory, written in batches off the request path.

A sync request never writes to the database itself: ``record(execution)`` appends to the
process's queue and the ``ExecutionLogWriter`` service upserts what has queued every
~200 ms (sooner once a batch is full) and flushes on stop (``picloud.retention`` deletes
them after ``PICLOUD_LOG_RETENTION_DAYS``). Records are upserts by id, so a run first logged as
``queued`` or ``running`` is completed by a later record with the same id.

Each batch also adds the finished runs, and the requests refused as overloaded since the
last batch, to the run figures (``picloud.models.stats``) in the same transaction, so
``/metrics`` and the Overview count every run of every process exactly once.
"""
import collections
import datetime
import functools
import json
import logging
import threading

from picloud.db import db, failure_of, is_postgres
from picloud.metrics.tally import tally
from picloud.models import Execution, RunCount, RunDuration, RunHour, utcnow
from picloud.services import services

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.2
BATCH_SIZE = 200
# Held in memory while the database is unreachable; beyond it the oldest are dropped.
MAX_PENDING = 50_000
# Short, so that records are written within a second of the database coming back.
_MAX_BACKOFF_SECONDS = 1.0


class ExecutionLogWriter:
    """A service that writes queued execution records in batches."""

    def __init__(self):
        self._pending = collections.deque()
        self._refusals = collections.Counter()  # (app_id, source) -> requests refused
        self._refusals_lock = threading.Lock()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = None
        self._failures = 0
        # Batches are written one at a time, so a run's later record never lands first.
        self._flush_lock = threading.Lock()
        self.dropped = 0

    def record(self, execution):
        """Queue one execution record for the next batch: its column values, or the API
        shape (timestamps as datetimes or ISO 8601 text)."""
        self._pending.append(execution)
        if len(self._pending) > MAX_PENDING:
            self._pending.popleft()
            self.dropped += 1
        if len(self._pending) >= BATCH_SIZE:
            self._wake.set()

    def refused(self, app_id, source):
        """Count one request refused as overloaded, for the next batch."""
        with self._refusals_lock:
            self._refusals[(app_id, source)] += 1

    def pending(self):
        return len(self._pending)

    def forget(self, predicate):
        """Drop queued records for which ``predicate(record)`` is true.

        Waits for a batch being written right now, so none of those lands later either.
        """
        with self._flush_lock:
            kept = [r for r in self._pending if not predicate(r)]
            self._pending.clear()
            self._pending.extend(kept)
            with self._refusals_lock:
                for key in [key for key in self._refusals if predicate({"app_id": key[0]})]:
                    del self._refusals[key]

    def start(self):
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="execution-log", daemon=True)
        self._thread.start()

    def stop(self, timeout=None):
        self._stopping.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        try:
            self.flush_all()
        except Exception:
            log.exception("dropping %d execution records at shutdown", len(self._pending))

    def _run(self):
        try:
            while not self._stopping.is_set():
                self._wake.wait(self._delay())
                self._wake.clear()
                self.loop()
        finally:
            if db.obj is not None and not db.is_closed():
                db.close()

    def _delay(self):
        if not self._failures:
            return FLUSH_SECONDS
        return min(_MAX_BACKOFF_SECONDS, FLUSH_SECONDS * 2**self._failures)

    def loop(self):
        """Do one unit of work: write what is queued."""
        try:
            # The writer keeps its connection between batches instead of paying for a
            # new one (and SQLite's pragmas) five times a second.
            db.connect(reuse_if_open=True)
            self.flush_queued()
            self._failures = 0
        except Exception as exc:
            self._failures += 1
            if failure_of(exc):  # an outage or a full disk: the records wait in memory
                log.warning("writing execution records failed (%d queued): %s", len(self._pending), exc)
            else:
                log.exception("writing execution records failed (%d queued)", len(self._pending))
            if not db.is_closed():
                db.close()  # a broken connection is not reused

    def flush(self):
        """Upsert one batch; on failure the batch goes back to the front of the queue."""
        with self._flush_lock:
            return self._flush_batch()

    def flush_queued(self):
        """Write what is queued now; what is queued meanwhile waits for the next round.

        Writing on until the queue is empty would chase every record that arrives
        during a batch's round trip: under steady traffic, a stream of tiny batches,
        each paying the transaction and the run figures' upserts, instead of one batch
        per round.
        """
        with self._flush_lock:
            for _ in range(max(1, -(-len(self._pending) // BATCH_SIZE))):
                self._flush_batch()

    def flush_all(self):
        """Write everything queued, after any batch being written right now."""
        with self._flush_lock:
            while self._pending or self._refusals:
                self._flush_batch()

    def _flush_batch(self):
        batch = []
        while self._pending and len(batch) < BATCH_SIZE:
            batch.append(self._pending.popleft())
        refusals = self._take_refusals()
        if not batch and not refusals:
            return 0
        # One row per id: the last record of a run wins (PostgreSQL refuses to update
        # the same row twice in one statement).
        rows = list({r["id"]: _row(r) for r in batch}.values())
        figures = tally(batch, refusals, utcnow())
        try:
            with db.atomic():
                if rows:
                    db.execute_sql(*_upsert(rows))
                RunCount.add(figures.counts)
                RunDuration.add(figures.durations)
                RunHour.add(figures.hours)
        except Exception:
            self._pending.extendleft(reversed(batch))
            with self._refusals_lock:
                self._refusals.update(refusals)
            raise
        return len(rows)

    def _take_refusals(self):
        with self._refusals_lock:
            refusals, self._refusals = self._refusals, collections.Counter()
        return refusals


def _row(execution):
    """Return the database values of a record, in ``Execution.FIELDS`` order."""
    get = execution.get
    sqlite = not is_postgres()
    queued_at = get("queued_at") or get("started_at") or utcnow()
    return (
        get("id"),
        get("app_id"),
        get("script_id"),
        get("source"),
        get("status"),
        get("http_status"),
        _timestamp(queued_at, sqlite),
        _timestamp(get("started_at"), sqlite),
        _timestamp(get("finished_at"), sqlite),
        _float(get("duration_ms")),
        get("attempt") or 1,
        get("trigger_id"),
        get("trigger_depth") or 0,
        get("event_id"),
        get("parent_execution_id"),
        _json(get("error")),
        _json(get("logs")),
        _json(get("usage")),
        _json(get("http_calls")),
        _json(get("input")),
        _json(get("response")),
    )


def _timestamp(value, sqlite):
    """Return the database value of a timestamp given as API text or a datetime."""
    if value is None:
        return None
    if value.__class__ is str:
        value = datetime.datetime.fromisoformat(value.removesuffix("Z")).replace(tzinfo=None)
    if not sqlite:
        return value
    # Exactly the text peewee's SQLite adapter writes for a datetime, which is what
    # queries compare stored values with.
    return value.isoformat(" ")


def _float(value):
    # One type per column: PostgreSQL gets each column as one array.
    return None if value is None else float(value)


def _json(value):
    return None if value is None else json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _upsert(rows):
    """Return the statement and parameters upserting ``rows`` (tuples of column values).

    One statement for the whole batch, written by hand: building it through the query
    builder cost about a millisecond a row, and psycopg's executemany (a pipeline of one
    statement per row) several times the CPU. On PostgreSQL the rows travel as one array
    per column, in binary (no escaping of the JSON texts): the statement's text stays the
    same whatever the batch's size, so psycopg converts it once and the server prepares
    it once, where a VALUES list of 200 rows is 4,200 placeholders to parse on both sides
    every time.
    """
    if is_postgres():
        return _UNNEST_UPSERT, [list(column) for column in zip(*rows)]
    return _values_upsert_sql(len(rows)), [value for row in rows for value in row]


def _on_conflict():
    # queued_at is the listing's sort key: keep the first one, so a row does not move
    # between pages while it goes from queued to finished.
    kept = ("id", "queued_at")
    updates = ", ".join(f'"{field}" = excluded."{field}"' for field in Execution.FIELDS if field not in kept)
    return f'ON CONFLICT ("id") DO UPDATE SET {updates}'


_COLUMNS = ", ".join(f'"{field}"' for field in Execution.FIELDS)
# The PostgreSQL array type of each kind of column (peewee's field_type).
_PG_ARRAYS = {"VARCHAR": "varchar[]", "INT": "int[]", "DATETIME": "timestamp[]", "FLOAT": "float8[]", "TEXT": "text[]"}
_UNNEST_UPSERT = (
    f'INSERT INTO "{Execution._meta.table_name}" ({_COLUMNS}) SELECT * FROM unnest('
    + ", ".join(f"%b::{_PG_ARRAYS[Execution._meta.fields[field].field_type]}" for field in Execution.FIELDS)
    + f") {_on_conflict()}"
)


@functools.lru_cache(maxsize=256)
def _values_upsert_sql(count):
    """Return the INSERT ... VALUES ... ON CONFLICT statement for ``count`` rows (SQLite)."""
    row = "(" + ", ".join(["?"] * len(Execution.FIELDS)) + ")"
    values = ", ".join([row] * count)
    return f'INSERT INTO "{Execution._meta.table_name}" ({_COLUMNS}) VALUES {values} {_on_conflict()}'


_writer = None


def init_writer():
    """Create this process's writer (registered as a service by the caller)."""
    global _writer
    _writer = ExecutionLogWriter()
    return _writer


def writer():
    """Return this process's writer."""
    return _writer


def record(execution):
    """Queue an ExecutionRecord for the batched writer."""
    _writer.record(execution.row())


def refused(app_id, source):
    """Count a request refused as overloaded (no slot in time) for the run figures."""
    if _writer is not None:
        _writer.refused(app_id, source)


def forget_app(app_id):
    """Drop this process's queued records of a deleted app, so none outlives it."""
    if _writer is not None:
        _writer.forget(lambda execution: execution.get("app_id") == app_id)


def flush_pending():
    """Write what this process has queued, so a read right after a run sees it.

    A read does not fail because the write before it did (a full disk, say): the
    records stay queued for the writer and the read shows what is stored.
    """
    if _writer is None:
        return
    try:
        _writer.flush_all()
    except Exception as exc:
        if not failure_of(exc):
            raise
        log.warning("reading executions without the %d queued records: %s", _writer.pending(), exc)


def init_app(app):
    """Create the process's log writer and register it as a service."""
    services(app).add(init_writer())
