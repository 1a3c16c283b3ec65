"""Claiming due events (both databases): leases, exclusive claims, guarded writes.

On a database of their own (``own_database``), with events due in the year 2100 and
claimed "then", so no clock of this machine matters.
"""
import datetime
import uuid

import pytest

from picloud.models import App, OutboxEvent, Script
from picloud.outbox import claims

FUTURE = datetime.datetime(2100, 1, 1)


@pytest.fixture
def script(own_database, unique):
    app = App.create(slug=unique("claims"), name="claims")
    script = Script.create(app=app, name="s", source="return 1")
    yield script
    App.delete().where(App.id == app.id).execute()


def queue(script, count=1, due=FUTURE, **fields):
    ids = [str(uuid.uuid4()) for _ in range(count)]
    OutboxEvent.insert_many(
        [
            {
                "id": event_id, "app": script.app_id, "kind": "kv", "script": script.id,
                "payload": {"n": n}, "execution_id": str(uuid.uuid4()),
                "available_at": due + datetime.timedelta(microseconds=n), **fields,
            }
            for n, event_id in enumerate(ids)
        ]
    ).execute()
    return ids


def later(seconds):
    return FUTURE + datetime.timedelta(seconds=seconds)


def test_claims_due_events_oldest_first_up_to_the_limit(script):
    ids = queue(script, 5)
    claimed = claims.claim_due_events("w1", 3, now=later(1))
    assert [e.id for e in claimed] == ids[:3]
    assert all(e.claimed_by == "w1" and e.lease_until == later(1 + claims.LEASE_SECONDS) for e in claimed)
    assert claimed[0].payload == {"n": 0} and claimed[0].app_id == script.app_id


def test_events_not_yet_due_are_not_claimed(script):
    queue(script, 2, due=later(60))
    assert claims.claim_due_events("w1", 10, now=later(59)) == []
    assert len(claims.claim_due_events("w1", 10, now=later(61))) == 2


def test_a_claimed_event_is_not_claimed_again_while_leased(script):
    ids = queue(script, 4)
    first = claims.claim_due_events("w1", 2, now=later(1))
    second = claims.claim_due_events("w2", 10, now=later(2))
    assert {e.id for e in first} | {e.id for e in second} == set(ids)
    assert not {e.id for e in first} & {e.id for e in second}
    assert claims.claim_due_events("w3", 10, now=later(3)) == []


def test_an_expired_lease_is_claimed_again(script):
    [event_id] = queue(script)
    claims.claim_due_events("dead-worker", 1, now=later(1))
    assert claims.claim_due_events("w2", 1, now=later(1 + claims.LEASE_SECONDS - 1)) == []
    [again] = claims.claim_due_events("w2", 1, now=later(2 + claims.LEASE_SECONDS))
    assert again.id == event_id and again.claimed_by == "w2"
    # The worker that lost the lease can no longer finish or release the event.
    assert claims.delete_delivered("dead-worker", [event_id]) == 0
    assert claims.release_events("dead-worker", [event_id]) == 0
    assert claims.delete_delivered("w2", [event_id]) == 1
    assert not OutboxEvent.select().where(OutboxEvent.id == event_id).exists()


def test_renewing_keeps_a_long_run_leased(script):
    [event_id] = queue(script)
    claims.claim_due_events("w1", 1, now=later(1))
    assert claims.renew_leases("w1", [event_id], now=later(25)) == 1
    assert claims.renew_leases("w2", [event_id], now=later(25)) == 0
    assert claims.claim_due_events("w2", 1, now=later(40)) == []
    assert len(claims.claim_due_events("w2", 1, now=later(60))) == 1


def test_a_released_event_is_due_again_at_once(script):
    [event_id] = queue(script)
    claims.claim_due_events("w1", 1, now=later(1))
    assert claims.release_events("w1", [event_id]) == 1
    [again] = claims.claim_due_events("w2", 1, now=later(2))
    assert again.id == event_id


def test_a_zero_limit_claims_nothing(script):
    queue(script)
    assert claims.claim_due_events("w1", 0, now=later(1)) == []


def test_a_claim_deletes_what_the_worker_delivered_and_nothing_else(script):
    ids = queue(script, 4)
    mine = claims.claim_due_events("w1", 2, now=later(1))
    theirs = claims.claim_due_events("w2", 1, now=later(1))
    delivered = [e.id for e in mine] + [theirs[0].id]  # w2's event is not w1's to delete
    [last] = claims.claim_due_events("w1", 5, now=later(2), delivered=delivered)
    remaining = {e.id for e in OutboxEvent.select().where(OutboxEvent.id.in_(ids))}
    assert remaining == {theirs[0].id, last.id}
    assert claims.claim_due_events("w1", 0, now=later(3), delivered=[last.id]) == []
    assert not OutboxEvent.select().where(OutboxEvent.id == last.id).exists()
