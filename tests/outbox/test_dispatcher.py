"""The dispatcher one ``loop()`` step at a time, in this process, on a database of its own.

A real executor pool runs the scripts; each step's effect is read back from the
database: what was claimed, retried, dead-lettered, skipped or given back.
"""
import datetime
import random
import uuid
from types import SimpleNamespace

import gevent
import pytest

from picloud import executions, orchestrator
from picloud.models import App, DeadLetter, Execution, OutboxEvent, Script, Trigger, utcnow
from picloud.outbox import dead_letters
from picloud.outbox.dispatcher import FLUSH_DELIVERED_SECONDS, PREFETCH, ClaimedQueue, Dispatcher

FAST = {"max_attempts": 2, "backoff": "constant", "base_delay_ms": 60_000, "max_delay_ms": 60_000, "jitter": 0}


@pytest.fixture(scope="module")
def running(own_database):
    """This process's orchestrator (2 executors) and log writer, as a server has them."""
    settings = own_database
    pool = orchestrator.init_orchestrator(settings)
    pool.start()
    executions.init_writer()
    yield settings
    pool.stop()


@pytest.fixture
def app(running, unique):
    app = App.create(slug=unique("steps"), name="steps")
    yield app
    OutboxEvent.delete().execute()
    App.delete().where(App.id == app.id).execute()


@pytest.fixture
def dispatcher(running):
    return Dispatcher(running, worker_id=f"steps-{uuid.uuid4().hex[:6]}", rng=random.Random(3))


def script(app, source):
    return Script.create(app=app, name=f"s{uuid.uuid4().hex[:6]}", source=source)


def queue(app, source, count=1, *, kind="kv", retry=FAST, depth=1, payload=None, trigger_id=None):
    """Queue ``count`` events for a new script; return their ids."""
    target = script(app, source)
    now = utcnow()
    ids = [str(uuid.uuid4()) for _ in range(count)]
    for n, event_id in enumerate(ids):
        OutboxEvent.create(
            id=event_id, app=app, kind=kind, script=target, trigger_id=trigger_id,
            payload=payload or {"kind": kind, "op": "set", "key": f"k{n}"},
            retry=retry, trigger_depth=depth, execution_id=str(uuid.uuid4()),
            queued_at=now, available_at=now - datetime.timedelta(microseconds=count - n),
        )
    return ids


def step(dispatcher):
    """Run one loop() and the runs it queued; return how many it claimed."""
    dispatcher.loop()
    claimed = dispatcher._queue.qsize()
    dispatcher.run_queued()
    dispatcher.flush_delivered()
    return claimed


def execution_rows(event_id):
    executions.flush_pending()
    return list(Execution.select().where(Execution.event_id == event_id).order_by(Execution.attempt))


def test_a_step_claims_at_most_the_prefetch_window(app, dispatcher):
    window = orchestrator.free_slots() * PREFETCH
    ids = queue(app, "return 1", count=window + 3)
    assert step(dispatcher) == window
    assert OutboxEvent.select().count() == 3
    assert step(dispatcher) == 3
    assert step(dispatcher) == 0
    assert all(execution_rows(i)[0].status == "ok" for i in ids)


def test_the_next_claim_waits_until_the_runners_run_low(app, dispatcher):
    slots = orchestrator.free_slots()
    queue(app, "return 1", count=slots * PREFETCH + 5)
    dispatcher.loop()
    assert dispatcher._queue.qsize() == slots * PREFETCH
    assert dispatcher.loop() is False  # plenty in hand: no claim, no round trip
    for _ in range(slots * PREFETCH - slots):
        dispatcher._run_one(dispatcher._queue.get())
    assert dispatcher.loop() is True  # down to one per slot: the next batch
    assert dispatcher._queue.qsize() == slots + 5
    dispatcher.run_queued()
    dispatcher.flush_delivered()
    assert OutboxEvent.select().count() == 0


def test_delivered_events_are_deleted_soon_even_without_a_claim(app, dispatcher):
    window = orchestrator.free_slots() * PREFETCH
    queue(app, "return 1", count=window + 1)
    dispatcher.loop()
    first = dispatcher._queue.get()
    dispatcher._run_one(first)
    dispatcher.loop()  # plenty in hand: no claim, so nothing deletes the delivered event yet
    assert OutboxEvent.select().where(OutboxEvent.id == first.id).exists()
    dispatcher._delivered_since -= FLUSH_DELIVERED_SECONDS
    dispatcher.loop()
    assert not OutboxEvent.select().where(OutboxEvent.id == first.id).exists()
    dispatcher.run_queued()
    dispatcher.flush_delivered()


def fill_gate():
    """Take every slot of this process's gate for two other apps; return the gate."""
    gate = orchestrator.current().gate
    assert gate.acquire(-1, 0) and gate.acquire(-2, 0)
    return gate


def empty_gate(gate):
    gate.release(-1)
    gate.release(-2)


def test_a_gate_full_of_other_work_gets_one_event_per_runner_to_wait_in_it(app, dispatcher):
    queue(app, "return 1", count=10)
    gate = fill_gate()
    try:
        assert dispatcher.loop() is True
        assert dispatcher._queue.qsize() == gate.slots  # the rest stay for other processes
    finally:
        empty_gate(gate)
    assert step(dispatcher) == 10  # the gate is free again: the rest join those in hand
    assert OutboxEvent.select().count() == 0


def test_a_full_gate_delays_events_and_never_drops_them(app, dispatcher):
    [event_id] = queue(app, "return 1")
    dispatcher.slot_wait_seconds = 0.05
    gate = fill_gate()
    try:
        assert step(dispatcher) == 1  # claimed, waited for a slot in vain, given back
        stored = OutboxEvent.get_by_id(event_id)
        assert (stored.claimed_by, stored.attempt) == (None, 1)
    finally:
        empty_gate(gate)
    assert step(dispatcher) == 1
    assert not OutboxEvent.select().where(OutboxEvent.id == event_id).exists()
    assert [r.status for r in execution_rows(event_id)] == ["ok"]


def test_a_runner_passes_over_the_events_of_an_app_at_its_limit(app, dispatcher, unique):
    capped = App.create(slug=unique("capped"), name="capped", max_concurrency=1)
    try:
        [capped_event] = queue(capped, "return 1")
        [other_event] = queue(app, "return 1")
        dispatcher.loop()
        gate = orchestrator.current().gate
        assert gate.acquire(capped.id, 0, limit=1)  # a run of the capped app is under way
        try:
            assert dispatcher._queue.get().id == other_event  # queued later, but may start
        finally:
            gate.release(capped.id)
        waiting = dispatcher._queue.get()
        assert waiting.id == capped_event
        dispatcher._run_one(waiting)
        dispatcher.flush_delivered()
        assert [r.status for r in execution_rows(capped_event)] == ["ok"]
    finally:
        OutboxEvent.delete().execute()
        App.delete().where(App.id == capped.id).execute()


def test_an_event_that_cannot_get_a_slot_is_given_back_unchanged(app, dispatcher):
    [event_id] = queue(app, "return 1")
    [event] = dispatcher.claim()
    dispatcher.slot_wait_seconds = 0.05
    gate = fill_gate()
    try:
        assert dispatcher.deliver(event) is None
    finally:
        empty_gate(gate)
    stored = OutboxEvent.get_by_id(event_id)
    assert (stored.claimed_by, stored.lease_until, stored.attempt) == (None, None, 1)


def test_a_failed_attempt_is_queued_again_after_the_policy_delay(app, dispatcher):
    [event_id] = queue(app, 'error("nope")')
    before = utcnow()
    assert step(dispatcher) == 1
    stored = OutboxEvent.get_by_id(event_id)
    assert stored.attempt == 2 and stored.claimed_by is None and stored.lease_until is None
    delay = (stored.available_at - before).total_seconds()
    assert 59 < delay < 61
    first, second = execution_rows(event_id)
    assert (first.attempt, first.status) == (1, "script_error")
    assert (second.attempt, second.status, second.id) == (2, "queued", stored.execution_id)
    assert step(dispatcher) == 0  # not due yet


def test_the_last_failure_becomes_a_dead_letter_and_queues_its_handlers(app, dispatcher):
    handler = script(app, "return 1")
    trigger = Trigger.create(app=app, kind="dead_letter", script=handler, registered_by=7, registered_by_name="ann")
    [event_id] = queue(app, 'error("nope")', retry={**FAST, "max_attempts": 1}, trigger_id=99)
    assert step(dispatcher) == 1
    assert not OutboxEvent.select().where((OutboxEvent.id == event_id)).exists()
    dead = DeadLetter.get(DeadLetter.event_id == event_id)
    assert (dead.source, dead.attempts, dead.trigger_id, dead.resolution) == ("kv", 1, 99, None)
    assert dead.last_error["status"] == "script_error" and "nope" in dead.last_error["message"]
    [handler_event] = OutboxEvent.select().where(OutboxEvent.kind == "dead_letter")
    assert handler_event.trigger_id == trigger.id and handler_event.retry is None
    assert handler_event.principal == {"user_id": 7, "username": "ann"}
    assert handler_event.payload["dead_letter_id"] == dead.id
    assert handler_event.trigger_depth == 2
    assert handler_event.parent_execution_id == dead.last_error["execution_id"]
    assert step(dispatcher) == 1
    assert DeadLetter.get_by_id(dead.id).resolution == "handled"
    assert OutboxEvent.select().count() == 0


def test_a_failing_handler_is_recorded_once_and_never_retried(app, dispatcher):
    [dead_event] = queue(app, 'error("first")', retry={**FAST, "max_attempts": 1})
    Trigger.create(app=app, kind="dead_letter", script=script(app, 'error("handler")'))
    step(dispatcher)
    assert step(dispatcher) == 1
    dead = DeadLetter.get(DeadLetter.event_id == dead_event)
    assert dead.resolution == "handler_failed"
    assert OutboxEvent.select().count() == 0
    assert DeadLetter.select().where(DeadLetter.app == app).count() == 1


def test_a_run_deeper_than_the_limit_is_skipped(app, dispatcher, running):
    [event_id] = queue(app, "return 1", depth=running.max_trigger_depth + 1)
    assert step(dispatcher) == 1
    [skipped] = execution_rows(event_id)
    assert skipped.status == "skipped" and skipped.started_at is None
    assert skipped.trigger_depth == running.max_trigger_depth + 1
    assert not OutboxEvent.select().where(OutboxEvent.id == event_id).exists()
    assert DeadLetter.select().where(DeadLetter.app == app).count() == 0


def test_a_worker_that_lost_its_lease_leaves_the_event_to_the_new_owner(app, dispatcher):
    [event_id] = queue(app, 'error("nope")', retry={**FAST, "max_attempts": 1})
    [event] = dispatcher.claim()
    OutboxEvent.update(claimed_by="new-owner").where(OutboxEvent.id == event_id).execute()
    dispatcher.deliver(event)
    stored = OutboxEvent.get_by_id(event_id)
    assert stored.claimed_by == "new-owner" and stored.attempt == 1
    assert DeadLetter.select().where(DeadLetter.event_id == event_id).count() == 0


def test_replaying_a_dead_letter_queues_the_same_event_id_at_attempt_one(app, dispatcher):
    [event_id] = queue(app, 'error("nope")', retry={**FAST, "max_attempts": 1})
    step(dispatcher)
    dead = DeadLetter.get(DeadLetter.event_id == event_id)
    dead_letters.replay(dead)
    again = OutboxEvent.get_by_id(event_id)
    assert again.attempt == 1 and again.claimed_by is None and again.payload == dead.event
    assert DeadLetter.get_by_id(dead.id).resolution == "replayed"


def test_stopping_gives_back_events_not_yet_started(app, dispatcher):
    ids = queue(app, "return 1", count=2)
    dispatcher.loop()  # claims both; no runner has taken them yet
    dispatcher.stop(timeout=5)
    stored = list(OutboxEvent.select().where(OutboxEvent.id.in_(ids)))
    assert len(stored) == 2 and all(e.claimed_by is None for e in stored)


def test_runners_choosing_at_the_same_time_each_take_a_different_event():
    def may_start(app_id):
        gevent.sleep(0)  # as a cache miss reading the database would let others run
        return app_id != "busy"

    claimed = ClaimedQueue(may_start)
    events = [SimpleNamespace(id=n, app_id="busy" if n == 0 else "free") for n in range(4)]
    for event in events:
        claimed.put(event)
    taken = []  # in the order the runners got them
    runners = [gevent.spawn(lambda: taken.append(claimed.get().id)) for _ in range(4)]
    gevent.joinall(runners, raise_error=True)
    assert sorted(taken) == [0, 1, 2, 3] and claimed.empty()
    assert taken[-1] == 0  # the event of the app that may not start went last
