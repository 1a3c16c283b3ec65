"""The concurrency gate: a process's executor slots, shared fairly between apps.

Every execution in the process — sync routes, ``/api/v1/execute``, the outbox
dispatcher — takes a slot of one gate sized like the executor pool (docs/concurrency.md).
Waiters are served in arrival order among those that may take a slot now:

- an app never holds more than its ``max_concurrency`` (when it has one);
- while another app's work waits, an app holds at most its share of the slots
  (``PICLOUD_APP_MAX_SHARE``, at least one slot); an app alone may use every slot.

A run cannot be interrupted to give its slot back, so an app that took every slot while
the others were quiet keeps them until its runs end. That is why an app's work counts as
waiting not only while it is queued but for ``RECENT_SECONDS`` after it last arrived:
an app with steady traffic keeps a slot within reach between its requests, instead of
finding every slot taken by a flood of long runs of another app.

A slot that no app under its share can use goes to the first waiter that stays within
its own ``max_concurrency``, so slots never sit idle while work waits.
"""
import collections
import math
import threading
import time

# How long an app's latest arrival keeps counting as its work waiting (see the module).
RECENT_SECONDS = 2.0

__all__ = ["FairGate", "RECENT_SECONDS", "share_of"]


def share_of(slots, max_share):
    """Return how many slots one app may hold while another app's work waits."""
    # The epsilon keeps 0.3 × 10 at 3 despite binary floating point.
    return max(1, math.floor(slots * max_share + 1e-9))


class _Waiter:
    """One acquire waiting for its slot."""

    __slots__ = ("app_id", "limit", "granted", "turn")

    def __init__(self, app_id, limit):
        self.app_id = app_id
        self.limit = limit
        self.granted = False
        self.turn = threading.Event()


class FairGate:
    """Executor slots handed to waiters in arrival order, within each app's share and limit."""

    def __init__(self, slots, max_share=0.5, recent_seconds=RECENT_SECONDS):
        self.slots = slots
        self.share = share_of(slots, max_share)
        self.recent_seconds = recent_seconds
        self._free = slots
        self._held = collections.Counter()  # app id -> slots it holds
        self._queued = collections.Counter()  # app id -> its waiters
        self._seen = {}  # app id -> (monotonic time of its latest arrival, its limit)
        self._waiters = []  # in arrival order
        self._lock = threading.Lock()
        self._timer = None  # a pending recheck for when an app stops counting as recent
        self._timer_at = None

    def acquire(self, app_id, timeout=None, limit=None):
        """Take a slot for ``app_id``, waiting up to ``timeout`` seconds (None: for ever); tell if taken.

        ``limit`` is the app's ``max_concurrency`` (None: only the share applies).
        """
        waiter = _Waiter(app_id, limit)
        with self._lock:
            self._seen[app_id] = (time.monotonic(), limit)
            self._waiters.append(waiter)
            self._queued[app_id] += 1
            self._grant()
            if waiter.granted:
                return True
            if timeout is not None and timeout <= 0:
                self._leave(waiter)
                return False
        if waiter.turn.wait(timeout):
            return True
        with self._lock:
            if waiter.granted:  # handed a slot just as the wait timed out
                return True
            self._leave(waiter)
            return False

    def release(self, app_id):
        """Give back a slot ``app_id`` held, to the first waiter that may take it."""
        with self._lock:
            self._held[app_id] -= 1
            if self._held[app_id] <= 0:
                del self._held[app_id]
            self._free += 1
            self._grant()

    def free_slots(self):
        """Return how many slots are free (every waiter left is over its share or limit)."""
        with self._lock:
            return self._free

    def waiting(self):
        """Return how many acquires are waiting for a slot."""
        with self._lock:
            return len(self._waiters)

    def usage(self):
        """Return (slots, busy, waiting): the gate's size, slots taken, callers waiting."""
        with self._lock:
            return self.slots, self.slots - self._free, len(self._waiters)

    def held(self, app_id):
        """Return how many slots ``app_id`` holds."""
        with self._lock:
            return self._held.get(app_id, 0)

    def would_admit(self, app_id, limit=None):
        """Tell whether an acquire for ``app_id`` would take a slot at once."""
        # Every waiter left after a grant may not take a slot, so a newcomer that may
        # passes no one.
        with self._lock:
            return self._may_take(app_id, limit, self._hungry(time.monotonic()))

    # Inside the lock --------------------------------------------------------------

    def _grant(self):
        """Hand free slots to the waiters that may take one, in arrival order."""
        if not self._free or not self._waiters:
            return
        now = time.monotonic()
        while self._free and self._grant_first(self._hungry(now)):
            pass  # each grant changes who is below its share: scan again from the start
        if self._free and self._waiters:
            self._recheck_when_recent_ends(now)

    def _grant_first(self, hungry):
        """Give a slot to the first waiter that may take one; tell if one did."""
        refused = set()  # (app, limit) pairs already refused in this scan
        for index, waiter in enumerate(self._waiters):
            key = (waiter.app_id, waiter.limit)
            if key in refused:
                continue
            if not self._may_take(waiter.app_id, waiter.limit, hungry):
                refused.add(key)
                continue
            del self._waiters[index]
            self._dequeue(waiter.app_id)
            self._held[waiter.app_id] += 1
            self._free -= 1
            waiter.granted = True
            waiter.turn.set()
            return True
        return False

    def _may_take(self, app_id, limit, hungry):
        """Tell whether ``app_id`` may take a free slot, given the apps below their share."""
        if not self._free:
            return False
        held = self._held.get(app_id, 0)
        if limit is not None and held >= limit:
            return False
        if held < self.share:
            return True
        # Over its share: only when no other app's work could use the slot within its own.
        return not (hungry - {app_id})

    def _hungry(self, now):
        """Return the apps whose work waits (or came recently) and that hold less than their share."""
        hungry = set()
        stale = []
        for app_id, (seen_at, limit) in self._seen.items():
            if self._queued.get(app_id) or now - seen_at < self.recent_seconds:
                wanted = self.share if limit is None else min(self.share, limit)
                if self._held.get(app_id, 0) < wanted:
                    hungry.add(app_id)
            else:
                stale.append(app_id)
        for app_id in stale:
            del self._seen[app_id]
        return hungry

    def _leave(self, waiter):
        """Drop a waiter that gave up; its leaving may let others in."""
        self._waiters.remove(waiter)
        self._dequeue(waiter.app_id)
        self._grant()

    def _dequeue(self, app_id):
        self._queued[app_id] -= 1
        if self._queued[app_id] <= 0:
            del self._queued[app_id]

    def _recheck_when_recent_ends(self, now):
        """Run the grant again once the earliest recent app stops counting as waiting."""
        recent = [seen_at for app_id, (seen_at, _) in self._seen.items() if not self._queued.get(app_id)]
        if not recent:
            return
        at = min(recent) + self.recent_seconds
        if self._timer is not None and self._timer_at <= at:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._timer = threading.Timer(max(0.0, at - now) + 0.001, self._recheck)
        self._timer.daemon = True
        self._timer_at = at
        self._timer.start()

    def _recheck(self):
        with self._lock:
            self._timer = self._timer_at = None
            self._grant()
