"""The execution log: records queued in memory, written in batches off the request path.

A sync request never writes to the database itself: ``record(execution)`` appends to the
process's queue and the ``ExecutionLogWriter`` service upserts what has queued every
~200 ms (sooner once a batch is full), flushes on stop, and deletes executions older
than ``PICLOUD_LOG_RETENTION_DAYS``. Records are upserts by id, so a run first logged as
``queued`` or ``running`` is completed by a later record with the same id.
"""
import collections
import datetime
import logging
import threading
import time

from picloud.db import connection, db
from picloud.models import Execution, utcnow

log = logging.getLogger(__name__)

FLUSH_SECONDS = 0.2
BATCH_SIZE = 200
# Held in memory while the database is unreachable; beyond it the oldest are dropped.
MAX_PENDING = 50_000
PURGE_EVERY_SECONDS = 3600
_MAX_BACKOFF_SECONDS = 5.0
_TIMESTAMPS = ("queued_at", "started_at", "finished_at")


class ExecutionLogWriter:
    """A service that writes queued execution records in batches."""

    def __init__(self, retention_days):
        self.retention = datetime.timedelta(days=retention_days)
        self._pending = collections.deque()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = None
        self._purged_at = 0.0
        self._failures = 0
        # Batches are written one at a time, so a run's later record never lands first.
        self._flush_lock = threading.Lock()
        self.dropped = 0

    def record(self, execution):
        """Queue one execution record (the API shape) for the next batch."""
        self._pending.append(execution)
        if len(self._pending) > MAX_PENDING:
            self._pending.popleft()
            self.dropped += 1
        if len(self._pending) >= BATCH_SIZE:
            self._wake.set()

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
        while not self._stopping.is_set():
            self._wake.wait(self._delay())
            self._wake.clear()
            self.loop()

    def _delay(self):
        if not self._failures:
            return FLUSH_SECONDS
        return min(_MAX_BACKOFF_SECONDS, FLUSH_SECONDS * 2**self._failures)

    def loop(self):
        """Do one unit of work: write what is queued, purge expired runs when due."""
        try:
            while self._pending:
                self.flush()
            if time.monotonic() - self._purged_at >= PURGE_EVERY_SECONDS:
                self.purge_expired()
                self._purged_at = time.monotonic()
            self._failures = 0
        except Exception:
            self._failures += 1
            log.exception("writing execution records failed (%d queued)", len(self._pending))

    def flush(self):
        """Upsert one batch; on failure the batch goes back to the front of the queue."""
        with self._flush_lock:
            return self._flush_batch()

    def flush_all(self):
        """Write everything queued, after any batch being written right now."""
        with self._flush_lock:
            while self._pending:
                self._flush_batch()

    def _flush_batch(self):
        batch = []
        while self._pending and len(batch) < BATCH_SIZE:
            batch.append(self._pending.popleft())
        if not batch:
            return 0
        # One row per id: the last record of a run wins (PostgreSQL refuses to update
        # the same row twice in one statement).
        rows = list({r["id"]: _row(r) for r in batch}.values())
        try:
            with connection(), db.atomic():
                (
                    Execution.insert_many(rows)
                    .on_conflict(
                        conflict_target=[Execution.id],
                        preserve=[getattr(Execution, f) for f in Execution.FIELDS if f != "id"],
                    )
                    .execute()
                )
        except Exception:
            self._pending.extendleft(reversed(batch))
            raise
        return len(rows)

    def purge_expired(self):
        """Delete executions older than the retention period; return how many."""
        with connection():
            return Execution.delete().where(Execution.older_than(utcnow() - self.retention)).execute()


def _row(execution):
    row = {field: execution.get(field) for field in Execution.FIELDS}
    for field in _TIMESTAMPS:
        value = row[field]
        if isinstance(value, str):
            row[field] = datetime.datetime.fromisoformat(value.removesuffix("Z"))
    if row["queued_at"] is None:
        row["queued_at"] = row["started_at"] or utcnow()
    for field, default in (("attempt", 1), ("trigger_depth", 0)):
        if row[field] is None:
            row[field] = default
    return row


_writer = None


def init_writer(settings):
    """Create this process's writer (registered as a service by the caller)."""
    global _writer
    _writer = ExecutionLogWriter(settings.log_retention_days)
    return _writer


def writer():
    """Return this process's writer."""
    return _writer


def record(execution):
    """Queue an execution record for the batched writer."""
    _writer.record(execution)


def forget_app(app_id):
    """Drop this process's queued records of a deleted app, so none outlives it."""
    if _writer is not None:
        _writer.forget(lambda execution: execution.get("app_id") == app_id)


def flush_pending():
    """Write what this process has queued, so a read right after a run sees it."""
    if _writer is not None:
        _writer.flush_all()


def init_app(app):
    """Create the process's log writer and register it as a service."""
    from picloud.services import services

    services(app).add(init_writer(app.config["PICLOUD"]))
