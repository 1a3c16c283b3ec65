"""Entry point: ``python app.py`` serves PiCloud; ``gunicorn app:app`` in production.

gevent must patch the standard library before anything else is imported.
"""
from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import signal  # noqa: E402
import socket  # noqa: E402
import sys  # noqa: E402

import gevent  # noqa: E402

from picloud.web import create_app  # noqa: E402
from picloud.config import ConfigError, load_settings  # noqa: E402
from picloud.migrate import SchemaTooNew  # noqa: E402
from picloud.services import services  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
log = logging.getLogger("picloud")

# How long in-flight requests may take to finish after SIGTERM.
SHUTDOWN_GRACE_SECONDS = 65


def build_app():
    """Create the app, exiting with a clear message on bad configuration."""
    try:
        return create_app(load_settings())
    except (ConfigError, SchemaTooNew) as exc:
        sys.exit(f"picloud: {exc}")


def serve():
    """Serve on PICLOUD_BIND with gevent's WSGI server until SIGTERM or SIGINT."""
    from gevent.pywsgi import WSGIServer

    application = build_app()
    settings = application.config["PICLOUD"]
    host, _, port = settings.bind.rpartition(":")
    server = WSGIServer((host.strip("[]"), int(port)), application, log=None)
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
