"""The dispatcher: one greenlet per server process that drains the outbox.

``loop()`` does one unit of work — when the runners are running low, delete what was
delivered and claim a batch of due events, in one round trip, and queue them for the
runners — and the service greenlet calls it again and again, sleeping
``PICLOUD_DISPATCH_POLL_MS`` when there is nothing to do unless something wakes it: a
local write (SQLite), a ``NOTIFY`` (PostgreSQL), a finished run freeing a slot, or a
retry falling due. Each claimed event runs in a runner greenlet, one per gate slot,
each keeping its database connection between events.

A claim takes up to ``PREFETCH`` events per gate slot, and the next claim comes when
no more than one per slot is left waiting: a backlog then costs one claim per batch,
not one per event, and the runners never wait for a claim's round trip. While the gate
is full of other work, a claim takes only one event per runner: those wait their turn
in the gate beside the requests, so user traffic cannot keep events waiting for ever,
and the rest stay in the queue for processes with free slots.

A runner takes the first claimed event whose app may start a run now (within its
share and its ``max_concurrency``, docs/concurrency.md), so the events of an app at
its limit wait without holding up the other apps' events queued behind them.

What an attempt's outcome does (docs/api.md §9):

- ``ok`` → the event leaves the queue;
- a failure → the next attempt is queued after the policy's delay, or, after the last
  attempt, the event becomes a dead letter;
- a dead-letter handler run → the dead letter is ``handled`` or ``handler_failed``;
  never retried, never dead-lettered;
- deeper than ``PICLOUD_MAX_TRIGGER_DEPTH`` → not run: logged as ``skipped`` and dropped.

A run that cannot get a slot (the gate stayed full) gives its event back unchanged:
saturation delays events, it never drops them or spends their attempts.
"""
import collections
import dataclasses
import datetime
import logging
import os
import random
import socket
import time
import uuid

import gevent
import gevent.event
import gevent.lock
import psycopg

from picloud import cache, executions, orchestrator
from picloud.db import connection, db, failure_of, write_transaction
from picloud.invocation import ExecutionRecord, Invocation
from picloud.models import OutboxEvent, utcnow
from picloud.outbox import CHANNEL, record_queued, runnable_request, set_dispatcher
from picloud.outbox import claims
from picloud.outbox.dead_letters import bury, record_handler_result
from picloud.outbox.retry import has_attempts_left, next_delay_ms
from picloud.sandbox import Overloaded
from picloud.services import services

log = logging.getLogger(__name__)

# Most events one claim takes, whatever the gate has free.
MAX_BATCH = 100
# Claimed events a dispatcher keeps per gate slot, waiting or running.
PREFETCH = 8
# How long a claimed event waits for a slot before it is given back.
SLOT_WAIT_SECONDS = 10
# Leases of running events are renewed this often (well inside LEASE_SECONDS).
RENEW_EVERY_SECONDS = 10
# Delivered events wait at most this long for a claim to delete them (well inside
# LEASE_SECONDS: a delivered event whose lease ran out would be claimed again).
FLUSH_DELIVERED_SECONDS = 1.0
# Short, so that work resumes within a second of the database coming back.
_MAX_BACKOFF_SECONDS = 1.0
_LISTEN_TIMEOUT_SECONDS = 5.0


class ClaimedQueue:
    """Claimed events waiting for a runner; ``get`` prefers an event whose app may start now.

    ``None`` in the queue tells a runner to stop.
    """

    def __init__(self, may_start):
        self._may_start = may_start
        self._events = collections.deque()
        self._ready = gevent.lock.Semaphore(0)  # counts the entries, so get() can block

    def put(self, event):
        self._events.append(event)
        self._ready.release()

    def get(self):
        """Wait for an entry; return the first whose app may start a run now, else the oldest."""
        self._ready.acquire()  # one entry is this caller's, whichever it ends up taking
        while True:
            chosen = self._choose()
            try:
                self._events.remove(chosen)
                return chosen
            except ValueError:
                continue  # another runner took it while this one was looking

    def _choose(self):
        # Looking may yield to other greenlets (a cache miss reads the database), so
        # look at a copy: other runners may take events meanwhile.
        for event in list(self._events):
            if event is None or self._may_start(event.app_id):
                return event
        return self._events[0]

    def qsize(self):
        return len(self._events)

    def empty(self):
        return not self._events


class Dispatcher:
    """A service draining the outbox in this process."""

    def __init__(self, settings, *, worker_id=None, rng=None):
        self.settings = settings
        self.worker_id = worker_id or f"{socket.gethostname()[:32]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.poll_seconds = settings.dispatch_poll_ms / 1000
        self.slot_wait_seconds = SLOT_WAIT_SECONDS
        self.rng = rng or random.Random()
        self._wake = gevent.event.Event()
        self._queue = ClaimedQueue(orchestrator.may_start_now)
        self._unstarted = set()  # ids of claimed events not yet handed to run_script
        self._running = {}  # event id -> event, while a runner has it
        self._delivered = []  # ids of events that ran, deleted with the next claim
        self._delivered_since = 0.0  # monotonic time the oldest of them was delivered
        self._next_due = None  # monotonic time a locally scheduled retry falls due
        self._stopping = False
        self._greenlet = None
        self._runners = []
        self._listener = None
        self._failures = 0
        self._renewed_at = time.monotonic()

    # The service ------------------------------------------------------------------

    def start(self):
        self._stopping = False
        # One runner per gate slot, taking claimed events from the queue in order.
        # Runners are long-lived so each keeps its database connection from one
        # event to the next.
        self._runners = [gevent.spawn(self._runner) for _ in range(self.settings.executor_processes)]
        self._greenlet = gevent.spawn(self._run)
        if db.notifies:
            self._listener = gevent.spawn(self._listen)
        set_dispatcher(self)

    def stop(self, timeout=30):
        """Stop claiming, let running events finish, give back what never started."""
        self._stopping = True
        set_dispatcher(None)
        self._wake.set()
        if self._listener is not None:
            self._listener.kill(block=False)
        if self._greenlet is not None:
            self._greenlet.join(timeout)
        # Queued events come before the runners' stop signals and give themselves
        # back (see deliver); runs under way get until the timeout to finish.
        for _ in self._runners:
            self._queue.put(None)
        gevent.joinall(self._runners, timeout=timeout)
        try:
            with connection():
                self.flush_delivered()
                claims.release_events(self.worker_id, list(self._unstarted))
        except Exception:
            log.exception("dispatcher: could not hand back %d claimed events", len(self._unstarted))
        if self._running:
            log.warning("dispatcher: %d runs still going at shutdown; their leases will expire", len(self._running))

    def wake(self):
        self._wake.set()

    def _run(self):
        while not self._stopping:
            try:
                db.connect(reuse_if_open=True)  # kept open from one pass to the next
                worked = self.loop()
                self._failures = 0
            except Exception as exc:
                self._failures += 1
                worked = False
                if kind := failure_of(exc):
                    log.warning("dispatcher: a pass failed, %s (%d in a row): %s", kind, self._failures, exc)
                else:
                    log.exception("dispatcher: a pass failed (%d in a row); backing off", self._failures)
                _drop_connection()
            if worked:
                gevent.sleep(0)  # let the runners take the events just claimed
                continue
            self._wake.wait(self._idle_seconds())
            self._wake.clear()
        _drop_connection()

    def _idle_seconds(self):
        if self._failures:
            return min(_MAX_BACKOFF_SECONDS, self.poll_seconds * 2**self._failures)
        wait = self.poll_seconds
        if self._next_due is not None:
            wait = min(wait, max(0.0, self._next_due - time.monotonic()))
        return wait

    def _listen(self):
        """Wake the dispatcher on every ``NOTIFY picloud_outbox`` (own connection, not pooled)."""
        failures = 0
        while not self._stopping:
            try:
                with psycopg.connect(db.obj.url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {CHANNEL}")
                    failures = 0
                    self._wake.set()  # catch up on whatever was written while not listening
                    while not self._stopping:
                        for _ in conn.notifies(timeout=_LISTEN_TIMEOUT_SECONDS, stop_after=1):
                            self._wake.set()
            except Exception as exc:
                failures += 1
                log.warning("dispatcher: LISTEN connection lost (%s); retrying", exc)
                gevent.sleep(min(_MAX_BACKOFF_SECONDS, 0.1 * 2**failures))

    def _runner(self):
        while True:
            event = self._queue.get()
            if event is None:
                _drop_connection()
                return
            self._run_one(event)

    # One unit of work ---------------------------------------------------------------

    def loop(self):
        """Claim a batch if the runners are running low, queue it; tell if any was claimed.

        The events delivered since the last claim are deleted by the claim's statement;
        a pass that does not claim keeps them for the next one (within a poll interval).
        """
        self.housekeeping()
        if self._next_due is not None and self._next_due <= time.monotonic():
            self._next_due = None
        events = self.claim()
        for event in events:
            self._unstarted.add(event.id)
            self._queue.put(event)
        if not events and self._delivered and time.monotonic() - self._delivered_since >= FLUSH_DELIVERED_SECONDS:
            self.flush_delivered()  # no claim soon (the gate is busy): delete them anyway
        return bool(events)

    def claim(self):
        """Claim due events up to the prefetch window, when it is time to (see the module).

        The same statement (PostgreSQL) or transaction (SQLite) deletes the events
        delivered since the last claim: one round trip for both.
        """
        limit = self._claim_limit()
        if limit <= 0:
            return []
        delivered, self._delivered = self._delivered, []
        try:
            return claims.claim_due_events(self.worker_id, limit, delivered=delivered)
        except Exception:
            self._delivered.extend(delivered)
            raise

    def _claim_limit(self):
        """Return how many events to claim now (0: not now)."""
        if self._stopping:
            return 0
        slots = self.settings.executor_processes
        waiting = len(self._unstarted)
        if waiting > slots:
            return 0  # enough in hand; claim when the runners are closer to empty
        running = len(self._running)
        if orchestrator.free_slots() <= 0 and not running:
            # The gate is full of other work: one event per runner waits its turn in
            # it; the others are left to processes with free slots.
            return slots - waiting
        return min(MAX_BATCH, slots * PREFETCH - waiting - running)

    def run_queued(self):
        """Deliver the claimed events waiting for a runner, here and now (for stepping in tests)."""
        while not self._queue.empty():
            event = self._queue.get()
            if event is not None:
                self._run_one(event)

    def flush_delivered(self):
        """Delete the events delivered since the last claim."""
        delivered, self._delivered = self._delivered, []
        try:
            return claims.delete_delivered(self.worker_id, delivered)
        except Exception:
            self._delivered.extend(delivered)
            raise

    def housekeeping(self):
        """Renew the leases of long runs."""
        now = time.monotonic()
        if now - self._renewed_at >= RENEW_EVERY_SECONDS:
            claims.renew_leases(self.worker_id, list(self._running) + list(self._unstarted))
            self._renewed_at = now

    def _run_one(self, event):
        self._running[event.id] = event
        try:
            db.connect(reuse_if_open=True)  # the runner keeps it for its next event
            self.deliver(event)
        except Exception:
            log.exception("dispatcher: delivering event %s failed", event.id)
            _drop_connection()
            self._give_back(event)
        finally:
            self._unstarted.discard(event.id)
            self._running.pop(event.id, None)
            self._wake.set()  # a slot is free again

    def _mark_delivered(self, event):
        """Note an event whose run is over, to delete with the next claim."""
        if not self._delivered:
            self._delivered_since = time.monotonic()
        self._delivered.append(event.id)

    def _give_back(self, event):
        """Release an event whose delivery broke (a lost connection, say) so it runs again soon.

        Its attempt is not counted. If even that fails, the lease runs out and the
        event is claimed again then.
        """
        try:
            with connection():
                claims.release_events(self.worker_id, [event.id])
        except Exception:
            log.warning("dispatcher: event %s stays claimed until its lease ends", event.id)
            _drop_connection()

    def deliver(self, event):
        """Run one claimed event and act on the outcome; return the execution record."""
        self._unstarted.discard(event.id)
        if self._stopping:
            claims.release_events(self.worker_id, [event.id])
            return None
        if event.trigger_depth > self.settings.max_trigger_depth:
            return self._skip(event)
        script = cache.script(event.script_id)
        if script is None:  # deleted since the event was queued: nothing to run
            self._mark_delivered(event)
            return None
        if event.kind == "http":
            script_globals = {"request": runnable_request(event.payload)}
        else:
            script_globals = {"event": event.payload}
        invocation = Invocation.of_event(event, script, script_globals, wait_seconds=self.slot_wait_seconds)
        try:
            execution, outcome = orchestrator.run_script(invocation)
        except Overloaded:
            claims.release_events(self.worker_id, [event.id])
            return None
        if event.kind == "dead_letter":
            self._finish_handler(event, execution)
        elif execution.status == "ok":
            self._mark_delivered(event)
        else:
            self._fail(event, execution)
        return execution

    def _skip(self, event):
        """Log a run that would go deeper than the trigger depth limit, and drop the event."""
        limit = self.settings.max_trigger_depth
        message = f"Not run: trigger depth {event.trigger_depth} exceeds PICLOUD_MAX_TRIGGER_DEPTH ({limit})."
        execution = ExecutionRecord.of_event(event, "skipped", error={"message": message, "line": None})
        executions.record(execution)
        self._mark_delivered(event)
        return execution

    def _finish_handler(self, event, execution):
        with write_transaction():
            removed = (
                OutboxEvent.delete()
                .where((OutboxEvent.id == event.id) & (OutboxEvent.claimed_by == self.worker_id))
                .execute()
            )
            if removed:
                record_handler_result(event.payload["dead_letter_id"], execution.status == "ok")

    def _fail(self, event, execution):
        policy = event.retry
        if policy is None or not has_attempts_left(policy, event.attempt):
            bury(event, execution, self.worker_id)
            return
        delay_ms = next_delay_ms(policy, event.attempt, self.rng)
        now = utcnow()
        execution_id = str(uuid.uuid4())
        with write_transaction():
            moved = (
                OutboxEvent.update(
                    attempt=event.attempt + 1,
                    execution_id=execution_id,
                    queued_at=now,
                    available_at=now + datetime.timedelta(milliseconds=delay_ms),
                    claimed_by=None,
                    lease_until=None,
                )
                .where((OutboxEvent.id == event.id) & (OutboxEvent.claimed_by == self.worker_id))
                .execute()
            )
            if moved:  # show the coming attempt in the log as queued
                coming = dataclasses.replace(event, attempt=event.attempt + 1, execution_id=execution_id, queued_at=now)
                record_queued(ExecutionRecord.of_event(coming, "queued"))
        if moved:
            # A little late rather than early: woken before the row is due, the claim
            # would find nothing and the retry would wait for the next poll.
            due = time.monotonic() + delay_ms / 1000 + 0.002
            if self._next_due is None or due < self._next_due:
                self._next_due = due


def _drop_connection():
    """Close this greenlet's connection (a new one is opened when next needed)."""
    try:
        if not db.is_closed():
            db.close()
    except Exception:
        log.warning("dispatcher: closing a database connection failed", exc_info=True)


def init_app(app):
    """Register this process's dispatcher as a background service."""
    services(app).add(Dispatcher(app.config["PICLOUD"]))
