"""Each server process reports its executor figures into ``server_processes``.

The executor gauges of ``/metrics`` (slots, busy, waiting) live in each process's
memory; a scrape reaches one process. So every process writes its figures every
``BEAT_SECONDS``, and a scrape sums the rows seen within ``LIVE_SECONDS`` — every
worker of every node sharing the database. A process that stops deletes its row; one
that dies stops being counted once its row is older than ``LIVE_SECONDS``.
"""
import datetime
import logging
import os
import socket
import threading
import uuid

from picloud.db import connection, db
from picloud.models import ServerProcess, utcnow

log = logging.getLogger(__name__)

BEAT_SECONDS = 2.0
# A row older than this belongs to a process that is gone (or cannot reach the database).
LIVE_SECONDS = 10.0
# Rows of processes gone for longer than this are deleted by the next process that beats.
FORGET_AFTER = datetime.timedelta(hours=1)
_MAX_BACKOFF_SECONDS = 30.0


def live_processes(now=None):
    """Select the processes that reported within LIVE_SECONDS."""
    return ServerProcess.live((now or utcnow()) - datetime.timedelta(seconds=LIVE_SECONDS))


class Heartbeat:
    """A service writing this process's executor figures every BEAT_SECONDS.

    ``usage`` returns (slots, busy, waiting) of this process's gate.
    """

    def __init__(self, usage):
        self.usage = usage
        self.id = f"{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.started_at = utcnow()
        self._stopping = threading.Event()
        self._thread = None
        self._failures = 0

    def start(self):
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name="heartbeat", daemon=True)
        self._thread.start()

    def stop(self, timeout=None):
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(min(timeout or 2.0, 2.0))
        try:
            with connection():
                ServerProcess.delete().where(ServerProcess.id == self.id).execute()
        except Exception:
            log.warning("heartbeat: could not remove this process's row; it ages out", exc_info=True)

    def _run(self):
        while not self._stopping.is_set():
            self.loop()
            delay = min(_MAX_BACKOFF_SECONDS, BEAT_SECONDS * 2**self._failures)
            self._stopping.wait(delay)
        if not db.is_closed():
            db.close()

    def loop(self):
        """Do one unit of work: write this process's figures, forget long-gone processes."""
        try:
            db.connect(reuse_if_open=True)
            self.beat()
            ServerProcess.delete().where(ServerProcess.seen_at < utcnow() - FORGET_AFTER).execute()
            self._failures = 0
        except Exception:
            self._failures += 1
            log.warning("heartbeat: writing this process's figures failed (%d in a row)", self._failures, exc_info=True)
            if not db.is_closed():
                db.close()

    def beat(self):
        """Write this process's current figures."""
        slots, busy, waiting = self.usage()
        row = {
            "id": self.id,
            "hostname": socket.gethostname()[:255],
            "pid": os.getpid(),
            "slots": slots,
            "busy": busy,
            "waiting": waiting,
            "started_at": self.started_at,
            "seen_at": utcnow(),
        }
        (
            ServerProcess.insert(row)
            .on_conflict(
                conflict_target=[ServerProcess.id],
                preserve=[ServerProcess.slots, ServerProcess.busy, ServerProcess.waiting, ServerProcess.seen_at],
            )
            .execute()
        )
