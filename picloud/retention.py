"""Bounded growth: purge what is past its retention, in small batches (docs/operations.md).

- executions older than ``PICLOUD_LOG_RETENTION_DAYS`` (by ``queued_at``), with the
  schedule ticks and the hourly run figures of the same age;
- resolved dead letters older than ``PICLOUD_DEAD_LETTER_RETENTION_DAYS`` (by
  ``resolved_at``); open ones are kept whatever their age;
- delivered outbox events need nothing here: the dispatcher deletes them as it runs them;
- slug history is kept for ever (an old slug redirects for as long as it is recorded),
  and so are the run totals ``/metrics`` counts from.

Each ``loop()`` deletes one batch of at most ``BATCH_SIZE`` rows of one kind, chosen by
primary key and deleted in a transaction of its own, so no purge holds a lock for longer
than one small delete, and traffic and writers run between batches. Every process runs
the service; processes purging the same rows at once only delete them once.
"""
import datetime
import logging
import threading
from dataclasses import dataclass

from picloud.db import db
from picloud.models import DeadLetter, Execution, RunHour, ScheduleTick, utcnow
from picloud.outbox.claims import write_transaction
from picloud.services import services

log = logging.getLogger(__name__)

BATCH_SIZE = 500
# Between two batches: other writers take the database (SQLite has one writer at a time).
PAUSE_SECONDS = 0.02
# How often the purge starts over once everything expired is gone.
ROUND_SECONDS = 600
_MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class Purge:
    """One kind of row that expires: its model, and which rows are expired at a cutoff."""

    name: str
    model: type
    retention: str  # the Settings attribute holding its retention in days
    expired: object  # cutoff -> peewee condition

    def batch(self, cutoff, limit=BATCH_SIZE):
        """Delete up to ``limit`` expired rows; return how many were deleted."""
        key = self.model._meta.primary_key
        ids = [row[0] for row in self.model.select(key).where(self.expired(cutoff)).limit(limit).tuples()]
        if not ids:
            return 0
        with write_transaction():
            return self.model.delete().where(key.in_(ids)).execute()


PURGES = (
    Purge("executions", Execution, "log_retention_days", lambda cutoff: Execution.queued_at < cutoff),
    Purge("schedule ticks", ScheduleTick, "log_retention_days", lambda cutoff: ScheduleTick.created_at < cutoff),
    Purge("hourly run figures", RunHour, "log_retention_days", lambda cutoff: RunHour.hour < cutoff),
    Purge(
        "resolved dead letters",
        DeadLetter,
        "dead_letter_retention_days",
        lambda cutoff: DeadLetter.resolution.is_null(False) & (DeadLetter.resolved_at < cutoff),
    ),
)


class Retention:
    """A service purging expired rows one batch per ``loop()``, a round every ROUND_SECONDS."""

    def __init__(self, settings, clock=utcnow):
        self.settings = settings
        self.clock = clock
        self._next = 0  # index in PURGES of the kind being purged
        self._deleted = 0  # rows of that kind deleted this round
        self._stopping = threading.Event()
        self._thread = None
        self._failures = 0

    def start(self):
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="retention", daemon=True)
        self._thread.start()

    def stop(self, timeout=None):
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(min(timeout or 2.0, 2.0))

    def _run(self):
        while not self._stopping.is_set():
            try:
                db.connect(reuse_if_open=True)
                more = self.loop()
                self._failures = 0
                wait = PAUSE_SECONDS if more else ROUND_SECONDS
            except Exception:
                self._failures += 1
                log.exception("retention: a purge failed (%d in a row); backing off", self._failures)
                if not db.is_closed():
                    db.close()
                wait = min(_MAX_BACKOFF_SECONDS, 2.0**self._failures)
            self._stopping.wait(wait)
        if not db.is_closed():
            db.close()

    def loop(self):
        """Do one unit of work: delete one batch; tell whether the round has more to do."""
        purge = PURGES[self._next]
        cutoff = self.clock() - datetime.timedelta(days=getattr(self.settings, purge.retention))
        deleted = purge.batch(cutoff)
        self._deleted += deleted
        if deleted == BATCH_SIZE:
            return True
        if self._deleted:
            log.info("retention: purged %d %s", self._deleted, purge.name)
        self._next, self._deleted = (self._next + 1) % len(PURGES), 0
        return self._next != 0  # a round ends once every kind came up short


def init_app(app):
    """Register this process's retention service."""
    services(app).add(Retention(app.config["PICLOUD"]))
