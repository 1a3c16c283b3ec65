"""The scheduler one ``loop()`` at a time with a fixed clock, on a database of its own.

Missed ticks after downtime, racing schedulers, a DST day walked through, and what the
queued event holds — without waiting for any real clock.
"""
import datetime

import pytest

from picloud.manager.triggers import create_trigger, update_trigger
from picloud.models import App, OutboxEvent, ScheduleTick, Script, Trigger, User
from picloud.outbox.retry import DEFAULT_RETRY
from picloud.outbox.schedule import parse_schedule
from picloud.outbox.scheduler import Scheduler, queue_tick

D = datetime.datetime


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def app(own_database, unique):
    made = App.create(slug=unique("sched"), name="sched")
    yield made
    OutboxEvent.delete().where(OutboxEvent.app == made.id).execute()
    Trigger.delete().where(Trigger.app == made.id).execute()
    Script.delete().where(Script.app == made.id).execute()
    App.delete().where(App.id == made.id).execute()


@pytest.fixture
def user(own_database, unique):
    made = User.create(username=unique("u"), password_hash="x", role="developer")
    yield made
    User.delete().where(User.id == made.id).execute()


def schedule(app, user, cron, clock, timezone="UTC", **extra):
    """Create a schedule trigger as if at ``clock``'s time; return it."""
    script = Script.create(app=app, name=f"s{Script.select().count()}", source="return 1")
    trigger = create_trigger(app, "schedule", {"script_id": script.id, "cron": cron, "timezone": timezone, **extra}, user)
    # As if created at the fixed clock's time, not the machine's.
    upcoming = parse_schedule(cron, timezone).next_after(clock())
    Trigger.update(next_run_at=upcoming).where(Trigger.id == trigger.id).execute()
    return Trigger.get_by_id(trigger.id)


def events_of(trigger):
    return list(OutboxEvent.select().where(OutboxEvent.trigger_id == trigger.id).order_by(OutboxEvent.created_at))


def scheduled(trigger):
    return [D.fromisoformat(e.payload["scheduled_at"].removesuffix("Z")) for e in events_of(trigger)]


def test_a_due_tick_becomes_an_outbox_event(app, user):
    clock = Clock(D(2100, 1, 1, 10, 0, 30))
    trigger = schedule(app, user, "*/5 * * * *", clock)
    assert trigger.next_run_at == D(2100, 1, 1, 10, 5)
    scheduler = Scheduler(clock)
    assert scheduler.loop() == 0  # not due yet
    clock.now = D(2100, 1, 1, 10, 5, 0, 200)
    assert scheduler.loop() == 1
    [event] = events_of(trigger)
    assert event.kind == "schedule" and event.script_id == trigger.script_id and event.app_id == app.id
    assert event.payload == {"kind": "schedule", "scheduled_at": "2100-01-01T10:05:00.000Z", "cron": "*/5 * * * *"}
    assert event.principal == {"user_id": user.id, "username": user.username}
    assert event.trigger_depth == 0 and event.attempt == 1 and event.retry == DEFAULT_RETRY
    assert Trigger.get_by_id(trigger.id).next_run_at == D(2100, 1, 1, 10, 10)
    assert scheduler.loop() == 0  # the same instant is never queued twice


def test_after_downtime_only_the_latest_missed_tick_runs_once(app, user):
    clock = Clock(D(2100, 1, 1, 10, 0, 30))
    trigger = schedule(app, user, "@every 1m", clock)
    scheduler = Scheduler(clock)
    clock.now = D(2100, 1, 1, 10, 1, 0, 5)
    assert scheduler.loop() == 1
    # The server is down from 10:01:30 to 10:07:42: six ticks pass unseen.
    clock.now = D(2100, 1, 1, 10, 7, 42)
    assert scheduler.loop() == 1
    assert scheduler.loop() == 0
    assert scheduled(trigger) == [D(2100, 1, 1, 10, 1), D(2100, 1, 1, 10, 7)]
    assert Trigger.get_by_id(trigger.id).next_run_at == D(2100, 1, 1, 10, 8)


def test_of_two_schedulers_racing_for_a_tick_one_queues_it(app, user):
    clock = Clock(D(2100, 1, 1, 10, 0, 30))
    trigger = schedule(app, user, "@every 1m", clock)
    clock.now = D(2100, 1, 1, 10, 1, 0, 5)
    # Both read the trigger as due before either queued it.
    seen_by_one, seen_by_other = Trigger.get_by_id(trigger.id), Trigger.get_by_id(trigger.id)
    assert queue_tick(seen_by_one, clock.now) is True
    assert queue_tick(seen_by_other, clock.now) is False
    assert len(events_of(trigger)) == 1
    assert ScheduleTick.select().where(ScheduleTick.trigger == trigger.id).count() == 1
    assert Trigger.get_by_id(trigger.id).next_run_at == D(2100, 1, 1, 10, 2)


def test_disabled_and_deleted_schedules_stop(app, user):
    clock = Clock(D(2100, 1, 1, 10, 0, 30))
    trigger = schedule(app, user, "@every 1m", clock)
    update_trigger(trigger, {"enabled": False})
    assert Trigger.get_by_id(trigger.id).next_run_at is None
    clock.now = D(2100, 1, 1, 10, 5)
    assert Scheduler(clock).loop() == 0
    Trigger.delete().where(Trigger.id == trigger.id).execute()
    assert Scheduler(clock).loop() == 0 and events_of(trigger) == []


def walk(scheduler, clock, start, end, step=datetime.timedelta(minutes=10)):
    clock.now = start
    while clock.now < end:
        scheduler.loop()
        clock.now += step


def test_a_spring_forward_day_walked_by_the_scheduler(app, user):
    clock = Clock(D(2100, 3, 13, 12, 0))  # Saturday before the change of Sunday 14 March 2100
    trigger = schedule(app, user, "30 2 * * *", clock, timezone="America/New_York")
    hourly = schedule(app, user, "0 * * * *", clock, timezone="America/New_York")
    walk(Scheduler(clock), clock, D(2100, 3, 14, 5, 0), D(2100, 3, 15, 4, 0))
    assert scheduled(trigger) == [D(2100, 3, 14, 7, 0)]  # 02:30 is skipped: 03:00 EDT
    assert len(scheduled(hourly)) == 23


def test_a_fall_back_day_walked_by_the_scheduler(app, user):
    clock = Clock(D(2100, 11, 6, 12, 0))  # Saturday before the change of Sunday 7 November 2100
    trigger = schedule(app, user, "30 1 * * *", clock, timezone="America/New_York")
    hourly = schedule(app, user, "0 * * * *", clock, timezone="America/New_York")
    walk(Scheduler(clock), clock, D(2100, 11, 7, 4, 0), D(2100, 11, 8, 5, 0))
    assert scheduled(trigger) == [D(2100, 11, 7, 5, 30), D(2100, 11, 7, 6, 30)]  # 01:30 EDT, then EST
    assert len(scheduled(hourly)) == 25
