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
than one small delete. After each batch the service rests ``YIELD_FACTOR`` times as long
as the batch took (at least ``PAUSE_SECONDS``): a purge uses at most a fifth of the
database's time, and less when the database is busy and batches slow down, so traffic
keeps its latency while a large backlog drains over minutes. Every process runs the
service; processes purging the same rows at once only delete them once.
"""
import datetime
import logging
import time
from dataclasses import dataclass

from picloud.db import write_transaction
from picloud.models import DeadLetter, Execution, RunHour, ScheduleTick, utcnow
from picloud.services import DatabaseLoop, services

log = logging.getLogger(__name__)

BATCH_SIZE = 200
# The shortest rest between two batches: other writers take the database (SQLite has one
# writer at a time).
PAUSE_SECONDS = 0.02
# Rest this many times as long as the last batch took.
YIELD_FACTOR = 4
# How often the purge starts over once everything expired is gone.
ROUND_SECONDS = 600
_MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class Purge:
    """One kind of row that expires: its model, the time it ages by, which rows may go."""

    name: str
    model: type
    retention: str  # the Settings attribute holding its retention in days
    age: str  # the timestamp field a row ages by
    only: object = None  # a condition rows must also meet, or None

    def batch(self, cutoff, after=None, limit=BATCH_SIZE):
        """Delete up to ``limit`` rows older than ``cutoff``, oldest first, from ``after`` on.

        Returns (rows deleted, the age of the last one). Walking the age index from where
        the last batch stopped never reads again the entries of rows already deleted,
        which PostgreSQL keeps until it vacuums: a purge from the table's start would
        read more of them with every batch.
        """
        key, age = self.model._meta.primary_key, getattr(self.model, self.age)
        condition = age < cutoff
        if after is not None:
            condition &= age >= after
        if self.only is not None:
            condition &= self.only
        rows = list(self.model.select(key, age).where(condition).order_by(age).limit(limit).tuples())
        if not rows:
            return 0, after
        with write_transaction():
            deleted = self.model.delete().where(key.in_([row[0] for row in rows])).execute()
        return deleted, rows[-1][1]


PURGES = (
    Purge("executions", Execution, "log_retention_days", "queued_at"),
    Purge("schedule ticks", ScheduleTick, "log_retention_days", "created_at"),
    Purge("hourly run figures", RunHour, "log_retention_days", "hour"),
    Purge("resolved dead letters", DeadLetter, "dead_letter_retention_days", "resolved_at",
          only=DeadLetter.resolution.is_null(False)),
)


class Retention(DatabaseLoop):
    """A service purging expired rows one batch per ``loop()``, a round every ROUND_SECONDS."""

    name = "retention"

    def __init__(self, settings, clock=utcnow):
        super().__init__()
        self.settings = settings
        self.clock = clock
        self._next = 0  # index in PURGES of the kind being purged
        self._deleted = 0  # rows of that kind deleted this round
        self._after = None  # the age of the last row deleted, where the next batch starts
        self._batch_seconds = 0.0  # how long the last batch took

    def one_pass(self):
        more = self.loop()
        return self.rest_seconds() if more else ROUND_SECONDS

    def backoff_seconds(self, failures):
        return min(_MAX_BACKOFF_SECONDS, 2.0**failures)

    def loop(self):
        """Do one unit of work: delete one batch; tell whether the round has more to do."""
        purge = PURGES[self._next]
        cutoff = self.clock() - datetime.timedelta(days=getattr(self.settings, purge.retention))
        started = time.monotonic()
        deleted, self._after = purge.batch(cutoff, self._after)
        self._batch_seconds = time.monotonic() - started
        self._deleted += deleted
        if deleted == BATCH_SIZE:
            return True
        if self._deleted:
            log.info("retention: purged %d %s", self._deleted, purge.name)
        self._next, self._deleted, self._after = (self._next + 1) % len(PURGES), 0, None
        return self._next != 0  # a round ends once every kind came up short

    def rest_seconds(self):
        """Return how long to rest before the next batch of a round."""
        return max(PAUSE_SECONDS, YIELD_FACTOR * self._batch_seconds)


def init_app(app):
    """Register this process's retention service."""
    services(app).add(Retention(app.config["PICLOUD"]))
