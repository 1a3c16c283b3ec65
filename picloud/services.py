"""Background services of one server process (executor pool, log writer, dispatcher).

Each part registers its service while the app is built; the entry point starts them
once the process serves (``python app.py``, or each gunicorn worker after it boots) and
stops them, in reverse order, on shutdown. Tests that only need the app never start them.
"""
import logging

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
