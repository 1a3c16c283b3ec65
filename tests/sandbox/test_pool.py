"""The executor pool: timeouts, dead processes, fairness, FIFO slots, gevent."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from picloud.sandbox import ExecutorPool, Overloaded, Status

from .jobs import make_job

SPIN = "while true do end"
# Backtracking in C: no VM instruction runs, only the process kill can end it.
BACKTRACK = "return string.rep('a', 3000):find('.-.-.-b')"
UNLIMITED = 10**12


@pytest.fixture(scope="module")
def pair():
    """A pool of two of its own: these tests kill processes."""
    with ExecutorPool(2) as pool:
        yield pool


@pytest.fixture
def single():
    with ExecutorPool(1) as pool:
        yield pool


def in_thread(function, *args, **kwargs):
    """Start ``function`` in a thread; return a callable giving its result."""
    box = {}

    def target():
        try:
            box["result"] = function(*args, **kwargs)
        except BaseException as exc:  # handed to the test
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()

    def result(timeout=30):
        thread.join(timeout)
        assert not thread.is_alive(), "run did not return"
        if "error" in box:
            raise box["error"]
        return box["result"]

    return result


def wait_until(condition, timeout=15):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_prestarted_processes(pair):
    assert pair.size == 2
    assert len(pair.pids()) == 2
    assert pair.free_slots() == 2


@pytest.mark.parametrize("source", [SPIN, BACKTRACK])
def test_run_ends_at_the_timeout_and_the_process_is_replaced(pair, source):
    before = pair.pids()
    started = time.monotonic()
    outcome = pair.run(make_job(source, timeout=1, max_instructions=UNLIMITED))
    elapsed = time.monotonic() - started
    assert outcome.status is Status.TIMEOUT
    assert outcome.error["message"] == "the script did not finish within 1 s"
    assert 0.9 < elapsed < 2.5
    assert 900 < outcome.duration_ms < 2500
    wait_until(lambda: len(pair.pids()) == 2 and pair.free_slots() == 2)
    assert pair.pids() != before
    assert pair.run(make_job("return 'still serving'")).response.body == b"still serving"


def test_logs_before_a_timeout_are_kept(pair):
    outcome = pair.run(make_job("log.info('started') " + SPIN, timeout=1, max_instructions=UNLIMITED))
    assert outcome.status is Status.TIMEOUT
    assert [message for _, message, _ in outcome.logs] == ["started"]
    wait_until(lambda: pair.free_slots() == 2)


def test_other_runs_complete_while_one_spins(pair):
    spinning = in_thread(pair.run, make_job(SPIN, timeout=2, max_instructions=UNLIMITED))
    time.sleep(0.1)
    for _ in range(20):
        started = time.monotonic()
        outcome = pair.run(make_job("return 'quick'"), wait_seconds=1)
        assert outcome.response.body == b"quick"
        assert time.monotonic() - started < 0.5
    assert spinning().status is Status.TIMEOUT
    wait_until(lambda: pair.free_slots() == 2)


def test_killed_process_gives_an_outcome(single):
    (pid,) = single.pids()
    running = in_thread(single.run, make_job(SPIN, timeout=20, max_instructions=UNLIMITED))
    time.sleep(0.3)
    os.kill(pid, signal.SIGKILL)
    outcome = running(timeout=5)
    assert outcome.status is Status.INTERNAL_ERROR
    assert "died" in outcome.error["message"]
    wait_until(lambda: single.free_slots() == 1)
    assert single.pids() != {pid}
    assert single.run(make_job("return 1")).status is Status.OK


def test_idle_process_that_died_is_replaced_before_a_run(single):
    (pid,) = single.pids()
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)  # dead, not yet reaped: the pool finds out when it picks it
    assert single.run(make_job("return 1"), wait_seconds=30).status is Status.OK
    assert single.pids() != {pid}


def test_overloaded_when_no_slot_frees_in_time(single):
    busy = in_thread(single.run, make_job(SPIN, timeout=1.5, max_instructions=UNLIMITED))
    time.sleep(0.2)
    assert single.free_slots() == 0
    started = time.monotonic()
    with pytest.raises(Overloaded):
        single.run(make_job("return 1"), wait_seconds=0.2)
    assert 0.15 < time.monotonic() - started < 1
    with pytest.raises(Overloaded):
        single.run(make_job("return 1"), wait_seconds=0)
    busy()
    wait_until(lambda: single.free_slots() == 1)


def test_waiting_callers_are_served_in_order(single):
    busy = in_thread(single.run, make_job("local x = 0 for i = 1, 3e6 do x = x + i end return x"))
    time.sleep(0.05)
    order = []
    lock = threading.Lock()

    def run(n):
        single.run(make_job(f"return {n}"), wait_seconds=10)
        with lock:
            order.append(n)

    waiting = []
    for n in range(5):
        waiting.append(in_thread(run, n))
        time.sleep(0.03)
    for result in waiting:
        result()
    busy()
    assert order == [0, 1, 2, 3, 4]


def test_processes_are_recycled_after_some_runs():
    with ExecutorPool(1, recycle_after=2) as pool:
        first = pool.pids()
        pool.run(make_job("return 1"))
        assert pool.pids() == first
        pool.run(make_job("return 1"))
        wait_until(lambda: pool.free_slots() == 1)
        assert pool.pids() != first


def test_stopped_pool_refuses_runs():
    pool = ExecutorPool(1)
    pool.start()
    (pid,) = pool.pids()
    pool.stop()
    with pytest.raises(Overloaded):
        pool.run(make_job("return 1"))
    wait_until(lambda: not _alive(pid))


def test_invalid_jobs_are_refused_before_running(pair):
    with pytest.raises(ValueError):
        pair.run(make_job("return 1", globals={"string": 1}))
    with pytest.raises(ValueError):
        pair.run(make_job("return 1", globals={"when": object()}))
    with pytest.raises(ValueError):
        pair.run(make_job("return 1", host_api=(("kv", ("get",)),)))  # no host
    with pytest.raises(ValueError):
        pair.run(make_job("return 1", max_instructions=0))
    assert pair.free_slots() == 2


def test_executor_environment_has_no_secrets_of_the_web_process(pair, monkeypatch):
    from picloud.sandbox.pool import _worker_environment

    monkeypatch.setenv("DATABASE_URL", "postgresql://user:secret@db/picloud")
    monkeypatch.setenv("PICLOUD_SECRET_KEY", "s3cret")
    env = _worker_environment()
    assert "DATABASE_URL" not in env and "PICLOUD_SECRET_KEY" not in env


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


GEVENT_CHECK = textwrap.dedent("""
    from gevent import monkey
    monkey.patch_all()
    import json, time
    import gevent
    from picloud.sandbox import ExecutorPool, ExecutionJob, BUILTIN_DEFAULTS

    def job(source, timeout=5, **limits):
        return ExecutionJob(source, "main", {}, {**BUILTIN_DEFAULTS, **limits}, timeout)

    ticks = []
    def ticker():
        while True:
            ticks.append(time.monotonic())
            gevent.sleep(0.01)

    with ExecutorPool(2) as pool:
        gevent.spawn(ticker)
        started = time.monotonic()
        spin = gevent.spawn(pool.run, job("while true do end", timeout=1, max_instructions=10**12))
        gevent.sleep(0.05)
        latencies = []
        for _ in range(20):
            t = time.monotonic()
            assert pool.run(job("return 'hi'")).response.body == b"hi"
            latencies.append(time.monotonic() - t)
        outcome = spin.get()
        gaps = [b - a for a, b in zip(ticks, ticks[1:])]
        print(json.dumps({
            "spin": outcome.status.value,
            "spin_seconds": time.monotonic() - started,
            "max_latency": max(latencies),
            "max_tick_gap": max(gaps),
        }))
""")


def test_pool_is_cooperative_under_gevent():
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", GEVENT_CHECK],
        capture_output=True, text=True, timeout=60, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["spin"] == "timeout"
    assert report["max_latency"] < 0.5
    # The hub kept running while the spin waited on its pipe.
    assert report["max_tick_gap"] < 0.2
