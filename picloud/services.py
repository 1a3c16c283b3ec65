"""Background services of one server process (executor pool, log writer, dispatcher).

Each part registers its service while the app is built; the entry point starts them
once the process serves (``python app.py``, or each gunicorn worker after it boots) and
stops them, in reverse order, on shutdown. Tests that only need the app never start them.
"""
import logging
import threading

from picloud.db import db

log = logging.getLogger(__name__)


class Services:
    """An ordered set of objects with ``start()`` and ``stop(timeout)``."""

    def __init__(self):
        self._items = []
        self.started = False

    def add(self, service):
        self._items.append(service)
        return service

    def start(self):
        for service in self._items:
            service.start()
        self.started = True

    def stop(self, timeout=30):
        for service in reversed(self._items):
            try:
                service.stop(timeout)
            except Exception:  # one failing service must not keep the others running
                log.exception("stopping %r failed", service)
        self.started = False


def services(app):
    """Return the app's Services, creating it on first use."""
    return app.extensions.setdefault("picloud.services", Services())


class DatabaseLoop:
    """A service on a thread of its own that runs ``one_pass()`` until it is stopped.

    ``one_pass()`` returns how long to wait before the next pass. A pass that fails is
    logged, its connection closed (a broken one is not reused), and the next one waits
    ``backoff_seconds(failures in a row)``. The connection is kept between passes.
    """

    name = "loop"

    def __init__(self):
        self._stopping = threading.Event()
        self._thread = None
        self._failures = 0

    def start(self):
        self._stopping.clear()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout=None):
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(min(timeout or 2.0, 2.0))

    def _run(self):
        while not self._stopping.is_set():
            try:
                db.connect(reuse_if_open=True)
                wait = self.one_pass()
                self._failures = 0
            except Exception:
                self._failures += 1
                log.exception("%s: a pass failed (%d in a row); backing off", self.name, self._failures)
                if not db.is_closed():
                    db.close()
                wait = self.backoff_seconds(self._failures)
            self._stopping.wait(wait)
        if not db.is_closed():
            db.close()

    def one_pass(self):
        raise NotImplementedError

    def backoff_seconds(self, failures):
        raise NotImplementedError
