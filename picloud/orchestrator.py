"""The orchestrator: the executor pool, the concurrency gate, and ``run_script``.

Every execution in the process — sync routes, ``/api/v1/execute``, the outbox
dispatcher — takes a slot of one fair gate sized like the executor pool
(``picloud.gate``), so a busy process queues work in arrival order instead of letting
keep-alive connections starve each other, and no app keeps the others waiting. A sync
request waits at most ``PICLOUD_QUEUE_WAIT_MS`` for its slot.
"""
import dataclasses
import logging
import threading
import time

from picloud import cache, executions, sandbox
from picloud.data.host import HOST_API, script_host
from picloud.db import STORAGE_FULL, UNAVAILABLE, failure_of
from picloud.egress.client import EgressClient
from picloud.gate import FairGate
from picloud.invocation import ExecutionRecord, status_text
from picloud.models import utcnow
from picloud.reach import HOST_API as REACH_API, MODULES as REACH_MODULES, Reach
from picloud.sandbox import ExecutionJob, ExecutorPool, Outcome, Overloaded, Status
from picloud.services import services

log = logging.getLogger(__name__)

# How long a run waits for the executor pool to boot before the process serves fully.
STARTUP_WAIT_SECONDS = 30
# How long a timed-out run's slot waits for its executor's replacement, at most, and how
# often it looks.
REPLACEMENT_WAIT_SECONDS = 30
REPLACEMENT_POLL_SECONDS = 0.02

__all__ = ["Orchestrator", "Overloaded", "free_slots", "may_start_now", "run_script"]


class Orchestrator:
    """A service owning this process's executor pool and gate."""

    def __init__(self, settings):
        self.settings = settings
        self.gate = FairGate(settings.executor_processes, settings.app_max_share)
        self.pool = ExecutorPool(settings.executor_processes)
        self.egress = EgressClient(settings.egress_allow)
        self.ready = threading.Event()

    def start(self):
        self.pool.start()
        self.ready.set()

    def stop(self, timeout=None):
        self.ready.clear()
        self.pool.stop()

    def release(self, app_id, outcome):
        """Give back the app's slot; after a timeout, once the killed executor is replaced.

        Starting an executor process takes a while, and until it is up the process has
        one executor fewer than gate slots: the app whose run was killed pays for that,
        not whichever app asks for a slot next.
        """
        if outcome is not None and status_text(outcome.status) == "timeout" and self._short_of_executors():
            threading.Thread(target=self._release_when_replaced, args=(app_id,), daemon=True).start()
        else:
            self.gate.release(app_id)

    def _short_of_executors(self):
        return len(self.pool.pids()) < self.pool.size

    def _release_when_replaced(self, app_id):
        deadline = time.monotonic() + REPLACEMENT_WAIT_SECONDS
        try:
            while self._short_of_executors() and time.monotonic() < deadline:
                time.sleep(REPLACEMENT_POLL_SECONDS)
        finally:
            self.gate.release(app_id)

    def wait_ready(self):
        """Wait while the pool boots: the server may accept requests a moment before."""
        if not self.ready.wait(STARTUP_WAIT_SECONDS):
            raise Overloaded("the executor pool is not running")


_current = None


def init_orchestrator(settings):
    """Create this process's orchestrator (registered as a service by the caller)."""
    global _current
    _current = Orchestrator(settings)
    return _current


def current():
    return _current


def free_slots():
    """Return how many executions could start now without waiting."""
    return _current.gate.free_slots()


def may_start_now(app_id):
    """Tell whether a run of the app would take a slot at once (its share and limit allow it)."""
    app = cache.app_info(app_id)
    return _current.gate.would_admit(app_id, app.max_concurrency if app else None)


def run_script(invocation):
    """Run an Invocation in the sandbox through the gate; return (ExecutionRecord, Outcome).

    Raises Overloaded when no slot frees up within ``invocation.wait_seconds``. The
    record is queued for the log writer.
    """
    orchestrator = _current
    script = invocation.script
    app = cache.app_info(script.app_id)
    ctx = invocation.ctx(app.slug if app else None)
    # Clamped to today's ceilings: one may have been lowered since the script was saved.
    limits = sandbox.effective_limits(
        script.sandbox, orchestrator.settings.sandbox_defaults, orchestrator.settings.sandbox_ceilings
    )
    reach = Reach(
        script.app_id,
        client=orchestrator.egress,
        egress_hosts=app.egress_hosts if app else None,
        limits=limits,
        timeout_seconds=script.timeout_seconds,
    )
    database_failures = []
    host_api, host = _script_host(script.app_id, ctx, orchestrator.settings.max_value_bytes, reach, database_failures)
    job = ExecutionJob(
        source=script.source,
        chunk_name=script.name,
        globals={**invocation.globals, "ctx": ctx},
        limits=limits,
        timeout_seconds=script.timeout_seconds,
        host_api=host_api,
        # Runs of one app share its warm runtimes; never another app's.
        app=str(script.app_id),
    )
    orchestrator.wait_ready()
    wait_seconds = invocation.wait_seconds
    deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
    limit = app.max_concurrency if app else None
    if not orchestrator.gate.acquire(script.app_id, wait_seconds, limit):
        raise Overloaded("no execution slot became free in time")
    started_at = utcnow()
    outcome = None
    try:
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
        reach.begin()
        outcome = orchestrator.pool.run(job, host=host, wait_seconds=remaining)
    except Overloaded:
        raise
    except Exception:
        # The run failed in the platform, not in the script: log it as one.
        log.exception("executor failed running script %s", script.id)
        outcome = Outcome(Status.INTERNAL_ERROR, error={"message": "The executor failed.", "line": None})
    finally:
        orchestrator.release(script.app_id, outcome)
    if database_failures and outcome.status is Status.INTERNAL_ERROR:
        outcome = _database_failed(outcome, database_failures[0])
    execution = reach.masked(
        ExecutionRecord.finished(invocation, outcome, started_at, **reach.record_fields(outcome.usage))
    )
    executions.record(execution)
    return execution, outcome


# What a run that met a database failure records, and the cause callers answer by.
_DATABASE_FAILED = {
    UNAVAILABLE: ("database_unavailable", "The database was unavailable during the run."),
    STORAGE_FULL: ("storage_full", "The server's disk was full during the run; its write was not saved."),
}


def _database_failed(outcome, kind):
    cause, message = _DATABASE_FAILED[kind]
    return dataclasses.replace(outcome, cause=cause, error={"message": message, "line": None})


def _script_host(app_id, ctx, max_value_bytes, reach, database_failures):
    """Return the (host_api, host callable) of one run: its data plane and its reach.

    A data call that meets an outage or a full disk notes it in ``database_failures``:
    the run then fails as the platform's, and a caller is told it may retry.
    """
    made = None

    # Most runs call no host function: build the data plane's stores on the first call.
    def host(module, fn, args):
        nonlocal made
        if module in REACH_MODULES:
            return reach.host(module, fn, args)
        try:
            if made is None:
                _, made = script_host(app_id, ctx, max_value_bytes=max_value_bytes)
            return made(module, fn, args)
        except Exception as exc:
            kind = failure_of(exc)
            if kind is not None:
                database_failures.append(kind)
            raise

    return HOST_API + REACH_API, host


def init_app(app):
    """Create the process's orchestrator and register it as a service."""
    services(app).add(init_orchestrator(app.config["PICLOUD"]))
