"""Entry point: ``python app.py`` serves PiCloud; ``gunicorn app:app`` in production.

gevent must patch the standard library before anything else is imported.
"""
from gevent import monkey

monkey.patch_all()

import logging  # noqa: E402
import sys  # noqa: E402

from picloud import create_app  # noqa: E402
from picloud.config import ConfigError, load_settings  # noqa: E402
from picloud.migrate import SchemaTooNew  # noqa: E402

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def build_app():
    """Create the app, exiting with a clear message on bad configuration."""
    try:
        return create_app(load_settings())
    except (ConfigError, SchemaTooNew) as exc:
        sys.exit(f"picloud: {exc}")


def serve():
    """Serve on PICLOUD_BIND with gevent's WSGI server."""
    from gevent.pywsgi import WSGIServer

    application = build_app()
    settings = application.config["PICLOUD"]
    host, _, port = settings.bind.rpartition(":")
    server = WSGIServer((host.strip("[]"), int(port)), application, log=None)
    logging.getLogger("picloud").info(
        "PiCloud listening on http://%s/admin (user 'admin')", settings.bind
    )
    server.serve_forever()


def main(argv):
    if argv[1:] == ["migrate"]:
        from picloud import db
        from picloud.migrate import migrate

        settings = load_settings()
        db.init_db(settings.database_url)
        applied = migrate(settings)
        print("applied:", ", ".join(applied) if applied else "nothing (up to date)")
        return
    if argv[1:]:
        sys.exit("usage: python app.py [migrate]")
    serve()


if __name__ == "__main__":
    main(sys.argv)
else:
    app = build_app()
