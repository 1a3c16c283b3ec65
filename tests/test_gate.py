"""The fair gate: slots, waiting, timeouts, arrival order, shares and max_concurrency."""
import threading
import time

import pytest

from picloud.gate import FairGate, share_of

A, B, C = 1, 2, 3


def waiting_thread(gate, app_id, got, timeout=5, limit=None):
    """Start a thread that waits for a slot of ``app_id`` and appends (app, taken) to ``got``."""
    thread = threading.Thread(target=lambda: got.append((app_id, gate.acquire(app_id, timeout, limit))))
    thread.start()
    deadline = time.monotonic() + 2
    while gate.waiting() == 0 and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.005)
    return thread


def until(predicate, seconds=2):
    deadline = time.monotonic() + seconds
    while not predicate() and time.monotonic() < deadline:
        time.sleep(0.005)
    return predicate()


@pytest.mark.parametrize("slots, share, expected", [(2, 0.5, 1), (3, 0.5, 1), (1, 0.5, 1), (10, 0.3, 3), (4, 1.0, 4)])
def test_the_share_is_a_whole_number_of_slots_at_least_one(slots, share, expected):
    assert share_of(slots, share) == expected


def test_an_app_alone_takes_every_slot_and_gives_them_back():
    gate = FairGate(2)
    assert gate.acquire(A, 0) and gate.acquire(A, 0)
    assert gate.free_slots() == 0 and gate.held(A) == 2
    assert gate.acquire(A, 0) is False
    gate.release(A)
    assert gate.free_slots() == 1
    assert gate.acquire(A, 0)


def test_a_waiter_gives_up_after_its_timeout():
    gate = FairGate(1)
    gate.acquire(A)
    started = time.monotonic()
    assert gate.acquire(A, 0.1) is False
    assert 0.08 < time.monotonic() - started < 1
    assert gate.waiting() == 0
    gate.release(A)
    assert gate.free_slots() == 1  # the timed-out waiter left no claim behind


def test_waiters_of_one_app_are_served_in_arrival_order():
    gate = FairGate(1)
    gate.acquire(A)
    order = []

    def wait(n):
        assert gate.acquire(A, 5)
        order.append(n)
        gate.release(A)

    threads = []
    for n in range(5):
        thread = threading.Thread(target=wait, args=(n,))
        thread.start()
        threads.append(thread)
        assert until(lambda: gate.waiting() == n + 1)  # make the arrival order certain
    gate.release(A)
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3, 4]
    assert gate.free_slots() == 1


def test_a_released_slot_goes_to_the_waiter_not_a_newcomer():
    gate = FairGate(1)
    gate.acquire(A)
    got = []
    waiter = waiting_thread(gate, B, got)
    gate.release(A)
    assert gate.acquire(C, 0) is False  # handed to the waiter already
    waiter.join()
    assert got == [(B, True)]


def test_an_app_over_its_share_is_passed_over_while_another_app_waits():
    gate = FairGate(4, max_share=0.5)
    for _ in range(4):
        assert gate.acquire(A, 0)  # alone: every slot
    got = []
    first = waiting_thread(gate, A, got)  # A is over its share of 2
    second = waiting_thread(gate, B, got)
    assert until(lambda: gate.waiting() == 2)
    gate.release(A)
    second.join(2)
    assert got == [(B, True)]  # B came later but A may not take a third slot while B waits
    assert gate.held(A) == 3 and gate.held(B) == 1
    gate.release(A)
    gate.release(A)  # A is down to its share: its waiter gets the next slot
    first.join(2)
    assert got == [(B, True), (A, True)]
    assert gate.held(A) == 2


def test_the_first_eligible_waiter_wins_among_several_apps():
    gate = FairGate(2, max_share=0.5)
    gate.acquire(A, 0)
    gate.acquire(A, 0)
    got = []
    threads = [waiting_thread(gate, app, got) for app in (A, B, C)]
    assert until(lambda: gate.waiting() == 3)
    gate.release(A)  # A holds 1 (its share) while B and C wait: B, the first of them, goes
    assert until(lambda: len(got) == 1)
    assert got == [(B, True)]
    gate.release(B)  # B done: C came before nothing else that may take it
    assert until(lambda: len(got) == 2)
    assert got[1] == (C, True)
    gate.release(A)  # A is at 0 now: its own waiter may take the slot
    assert until(lambda: len(got) == 3)
    assert got[2] == (A, True)
    for thread in threads:
        thread.join()


def test_an_app_that_came_recently_keeps_a_slot_within_reach():
    gate = FairGate(2, max_share=0.5, recent_seconds=0.3)
    assert gate.acquire(B, 0)
    gate.release(B)  # B is quiet now, but came a moment ago
    assert gate.acquire(A, 0)
    assert gate.acquire(A, 0) is False  # the second slot stays within B's reach
    assert gate.would_admit(B) and not gate.would_admit(A)
    got = []
    waiter = waiting_thread(gate, A, got)
    # Once B no longer counts as recent, A's waiter gets the slot without any release.
    waiter.join(2)
    assert got == [(A, True)]
    assert gate.held(A) == 2


def test_max_concurrency_caps_an_app_even_alone():
    gate = FairGate(4)
    assert gate.acquire(A, 0, limit=1)
    assert gate.acquire(A, 0, limit=1) is False
    assert gate.free_slots() == 3
    assert not gate.would_admit(A, limit=1) and gate.would_admit(A, limit=2)


def test_a_capped_waiter_does_not_hold_up_the_apps_behind_it():
    gate = FairGate(2)
    assert gate.acquire(A, 0, limit=1)
    got = []
    waiter = waiting_thread(gate, A, got, timeout=0.5, limit=1)
    assert gate.acquire(B, 0)  # A's earlier waiter may not take the free slot; B may
    gate.release(A)  # A is below its limit again: its waiter takes the slot
    waiter.join(2)
    assert got == [(A, True)]


def test_a_slot_no_app_below_its_share_wants_is_not_left_idle():
    gate = FairGate(3, max_share=0.5)  # share: 1 slot
    assert gate.acquire(A, 0) and gate.acquire(B, 0)
    # B holds its share, so the third slot would sit idle if A could not take it.
    assert gate.acquire(A, 0)
    assert gate.free_slots() == 0


def test_an_app_at_its_own_limit_reserves_no_more_slots():
    capped, uncapped = FairGate(4, max_share=0.5), FairGate(4, max_share=0.5)
    assert capped.acquire(B, 0, limit=1) and uncapped.acquire(B, 0)
    for gate in (capped, uncapped):
        assert gate.acquire(A, 0) and gate.acquire(A, 0)  # A's share: 2 slots
    # B holds one slot and came just now. Capped at 1 it can use no other slot, so A may
    # take a third; uncapped, B could use a second one, which stays within its reach.
    assert capped.acquire(A, 0)
    assert uncapped.acquire(A, 0) is False


def test_usage_counts_slots_taken_and_callers_waiting():
    gate = FairGate(2)
    assert gate.usage() == (2, 0, 0)
    gate.acquire(A, 0)
    gate.acquire(B, 0)
    got = []
    waiter = waiting_thread(gate, C, got)
    assert gate.usage() == (2, 2, 1)
    gate.release(A)
    waiter.join(2)
    assert gate.usage() == (2, 2, 0)
