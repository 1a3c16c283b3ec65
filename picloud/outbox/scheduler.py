"""The scheduler: each server process queues the due ticks of schedule triggers.

A tick becomes an ordinary outbox event (kind ``schedule``), so the dispatcher runs it
with retries, dead letters, the registrant as principal and depth 0, like any other
event (docs/api.md §14). Every process runs a scheduler; a tick is queued once across
all of them because the tick row (trigger, scheduled instant) is unique and is written in
the same transaction as the event and the trigger's next instant: of two processes
racing for one tick, the second one's transaction fails and writes nothing.

After downtime only the latest missed tick is queued: a trigger due since long ago
gets the last instant at or before now, and its next instant moves past now.
"""
import datetime
import logging

from peewee import IntegrityError

from picloud.db import write_transaction
from picloud.models import ScheduleTick, Trigger, isoformat, utcnow
from picloud.outbox import first_attempt_row, insert_events
from picloud.outbox.schedule import parse_schedule
from picloud.services import DatabaseLoop, services

log = logging.getLogger(__name__)

# The longest a scheduler sleeps: a trigger created or enabled by another process is
# noticed within it.
CHECK_SECONDS = 1.0
# Shortest sleep, so a tick that is due a moment late is not polled for in a busy loop.
MIN_SLEEP_SECONDS = 0.005
_MAX_BACKOFF_SECONDS = 5.0


def queue_tick(trigger, now):
    """Queue the latest due tick of a schedule trigger; tell whether this process did."""
    schedule = parse_schedule(trigger.cron, trigger.timezone)
    tick = max(schedule.latest_at_or_before(now), trigger.next_run_at)
    upcoming = schedule.next_after(now)
    row = first_attempt_row(
        trigger.app_id, "schedule", trigger.id, trigger.script_id,
        {"kind": "schedule", "scheduled_at": isoformat(tick), "cron": trigger.cron},
        trigger.principal, trigger.retry, 0, None, now,
    )
    try:
        with write_transaction():
            ScheduleTick.insert(trigger=trigger.id, scheduled_at=tick, event_id=row["id"]).execute()
            insert_events([row])
            _move_next_run(trigger.id, upcoming)
    except IntegrityError:
        # Another process queued this tick first (or the trigger is gone): it moved the
        # next instant on too, unless it lost its transaction since.
        _move_next_run(trigger.id, upcoming)
        return False
    return True


def _move_next_run(trigger_id, upcoming):
    """Set a trigger's next instant to ``upcoming`` unless it is disabled or further on."""
    (
        Trigger.update(next_run_at=upcoming)
        .where((Trigger.id == trigger_id) & (Trigger.next_run_at < upcoming))
        .execute()
    )


class Scheduler(DatabaseLoop):
    """A service queueing this process's share of due schedule ticks."""

    name = "scheduler"

    def __init__(self, clock=utcnow):
        super().__init__()
        self.clock = clock

    def one_pass(self):
        self.loop()
        return self.idle_seconds()

    def backoff_seconds(self, failures):
        return min(_MAX_BACKOFF_SECONDS, CHECK_SECONDS * 2**failures)

    def loop(self):
        """Do one unit of work: queue the due tick of every due schedule; return how many."""
        now = self.clock()
        queued = 0
        for trigger in Trigger.due_schedules(now):
            try:
                queued += queue_tick(trigger, now)
            except Exception:
                log.exception("scheduler: queueing a tick of trigger %s failed", trigger.id)
        return queued

    def idle_seconds(self):
        """Return how long to sleep: until the next instant, at most CHECK_SECONDS."""
        upcoming = Trigger.next_schedule_at()
        if upcoming is None:
            return CHECK_SECONDS
        if isinstance(upcoming, str):  # SQLite hands an aggregate back as text
            upcoming = datetime.datetime.fromisoformat(upcoming)
        wait = (upcoming - self.clock()).total_seconds()
        return min(CHECK_SECONDS, max(MIN_SLEEP_SECONDS, wait))


def init_app(app):
    """Register this process's scheduler as a background service."""
    services(app).add(Scheduler())
