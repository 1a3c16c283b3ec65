"""Entry point: ``python app.py`` serves PiCloud; ``gunicorn app:app`` in production.

gevent must patch the standard library before anything else is imported.
"""
from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import resource  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402
from gevent.pool import Pool  # noqa: E402
from gevent.pywsgi import WSGIHandler, WSGIServer  # noqa: E402

from picloud.web import create_app  # noqa: E402
from picloud.config import ConfigError, load_settings  # noqa: E402
from picloud.migrate import SchemaTooNew  # noqa: E402
from picloud.services import services  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("picloud")

# How long in-flight requests may take to finish after SIGTERM.
SHUTDOWN_GRACE_SECONDS = 65
# A connection that sends no request line this long after connecting or after its last
# response is closed; one whose headers are not all in this long after that gets 400.
# While more than half the connection slots are taken, the shorter pair applies, so a
# flood of idle or slowloris sockets drains fast enough for real clients to get in.
IDLE_SECONDS, CROWDED_IDLE_SECONDS = 5.0, 0.5
HEADERS_SECONDS, CROWDED_HEADERS_SECONDS = 10.0, 2.0
# Descriptors kept back from client connections: database files and connections,
# executor pipes, log files. Connections beyond the rest wait in the listen backlog.
RESERVED_DESCRIPTORS = 256
LISTEN_BACKLOG = 2048  # as gunicorn's default
# Used as the target when the hard descriptor limit is unlimited.
UNLIMITED_DESCRIPTORS = 65536


class DeadlineHandler(WSGIHandler):
    """gevent's request handler, with deadlines a silent or slow client cannot outlast."""

    def read_requestline(self):
        with gevent.Timeout(self._deadline(IDLE_SECONDS, CROWDED_IDLE_SECONDS), False):
            return super().read_requestline()
        return ""  # nothing came in time: an empty request line closes the connection

    def read_request(self, raw_requestline):
        with gevent.Timeout(self._deadline(HEADERS_SECONDS, CROWDED_HEADERS_SECONDS), False):
            return super().read_request(raw_requestline)
        self.close_connection = True
        return False  # the headers did not arrive in time: 400, then close

    def _deadline(self, normal, crowded):
        pool = self.server.pool
        return crowded if pool.free_count() < pool.size / 2 else normal


def raise_descriptor_limit():
    """Raise the soft limit on open files to the hard one; return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = UNLIMITED_DESCRIPTORS if hard == resource.RLIM_INFINITY else hard
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, exc)
    return soft


def build_app():
    """Create the app, exiting with a clear message on bad configuration."""
    try:
        return create_app(load_settings())
    except (ConfigError, SchemaTooNew) as exc:
        sys.exit(f"picloud: {exc}")


def serve():
    """Serve on PICLOUD_BIND with gevent's WSGI server until SIGTERM or SIGINT."""
    descriptors = raise_descriptor_limit()
    application = build_app()
    settings = application.config["PICLOUD"]
    host, _, port = settings.bind.rpartition(":")
    connections = Pool(max(64, descriptors - RESERVED_DESCRIPTORS))
    server = WSGIServer(
        (host.strip("[]"), int(port)),
        application,
        log=None,
        spawn=connections,
        backlog=LISTEN_BACKLOG,
        handler_class=DeadlineHandler,
    )
    background = services(application)

    def shut_down():
        log.info("shutting down: finishing in-flight requests")
        server.stop(timeout=SHUTDOWN_GRACE_SECONDS)

    for signum in (signal.SIGTERM, signal.SIGINT):
        gevent.signal_handler(signum, lambda: gevent.spawn(shut_down))

    server.init_socket()
    # As gunicorn does: without it a keep-alive client waits ~40 ms per request
    # (Nagle's algorithm against the client's delayed ACK).
    server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    server.start()
    background.start()
    log.info("PiCloud listening on http://%s/admin (log in as 'admin')", settings.bind)
    server.serve_forever()
    background.stop(SHUTDOWN_GRACE_SECONDS)
    log.info("stopped")


def rotate_secrets():
    """Re-encrypt every secret under the first key of PICLOUD_SECRETS_KEY."""
    from picloud import db
    from picloud.manager.secrets import reseal_all
    from picloud.migrate import migrate
    from picloud.vault import SealedValueUnreadable, init_vault

    try:
        settings = load_settings()
        init_vault(settings)
        db.init_db(settings.database_url)
        migrate(settings)
        with db.connection():
            count = reseal_all()
    except (ConfigError, SchemaTooNew, SealedValueUnreadable) as exc:
        sys.exit(f"picloud: {exc}")
    print(f"re-encrypted {count} secret(s) under the first key of PICLOUD_SECRETS_KEY")


def main(argv):
    if argv[1:] == ["migrate"]:
        from picloud import db
        from picloud.migrate import migrate

        settings = load_settings()
        db.init_db(settings.database_url)
        applied = migrate(settings)
        print("applied:", ", ".join(applied) if applied else "nothing (up to date)")
        return
    if argv[1:] == ["rotate-secrets"]:
        rotate_secrets()
        return
    if argv[1:]:
        sys.exit("usage: python app.py [migrate | rotate-secrets]")
    serve()


if __name__ == "__main__":
    main(sys.argv)
else:
    app = build_app()
