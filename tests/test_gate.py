"""The orchestrator's FIFO gate: slots, waiting, timeouts and arrival order."""
import threading
import time

from picloud.orchestrator import FifoGate


def test_slots_are_taken_and_given_back():
    gate = FifoGate(2)
    assert gate.acquire(0) and gate.acquire(0)
    assert gate.free_slots() == 0
    assert gate.acquire(0) is False
    gate.release()
    assert gate.free_slots() == 1
    assert gate.acquire(0)


def test_a_waiter_gives_up_after_its_timeout():
    gate = FifoGate(1)
    gate.acquire()
    started = time.monotonic()
    assert gate.acquire(0.1) is False
    assert 0.08 < time.monotonic() - started < 1
    gate.release()
    assert gate.free_slots() == 1  # the timed-out waiter left no claim behind


def test_waiters_are_served_in_arrival_order():
    gate = FifoGate(1)
    gate.acquire()
    order = []

    def wait(n):
        assert gate.acquire(5)
        order.append(n)
        gate.release()

    threads = []
    for n in range(5):
        thread = threading.Thread(target=wait, args=(n,))
        thread.start()
        threads.append(thread)
        time.sleep(0.02)  # make the arrival order certain
    gate.release()
    for thread in threads:
        thread.join()
    assert order == [0, 1, 2, 3, 4]
    assert gate.free_slots() == 1


def test_a_released_slot_goes_to_the_waiter_not_a_newcomer():
    gate = FifoGate(1)
    gate.acquire()
    got = []
    waiter = threading.Thread(target=lambda: got.append(gate.acquire(5)))
    waiter.start()
    time.sleep(0.05)
    gate.release()
    assert gate.acquire(0) is False  # handed to the waiter already
    waiter.join()
    assert got == [True]
