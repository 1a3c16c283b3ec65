"""The PiCloud web app: ``create_app`` builds it and registers every part."""
import logging

from flask import Flask, request
from flask_wtf.csrf import CSRFProtect
from htmx_flask import Htmx
from werkzeug.middleware.proxy_fix import ProxyFix

from picloud import admin_api, cache, dashboard, errors, executions, health, metrics, orchestrator, retention
from picloud import db as database
from picloud.auth import bootstrap_admin
from picloud.config import ensure_secret_key, load_settings
from picloud.manager import apps as manager_apps
from picloud.migrate import migrate
from picloud.outbox import dispatcher, scheduler
from picloud.routing import traffic
from picloud.vault import init_vault

log = logging.getLogger("picloud")

csrf = CSRFProtect()

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def create_app(settings=None):
    """Build the PiCloud WSGI app: migrate, bootstrap, register every part."""
    settings = settings or load_settings()
    init_vault(settings)  # first: an invalid secrets key stops the server before anything else
    app = Flask(__name__, template_folder="../templates", static_folder="../static")
    app.config.update(
        PICLOUD=settings,
        SECRET_KEY=ensure_secret_key(settings),
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SESSION_COOKIE_NAME="picloud_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        # Behind a TLS-terminating proxy the browser only ever talks HTTPS.
        SESSION_COOKIE_SECURE=settings.proxy_count > 0,
        WTF_CSRF_TIME_LIMIT=None,
    )
    if settings.proxy_count:
        n = settings.proxy_count
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n, x_port=n)

    database.init_db(settings.database_url)
    _prepare_database(settings)

    Htmx(app)
    csrf.init_app(app)
    _register_parts(app)
    app.teardown_appcontext(_close_connection)
    app.after_request(_security_headers)
    return app


def _prepare_database(settings):
    migrate(settings)
    with database.connection():
        bootstrap_admin(settings, log)


def _register_parts(app):
    # Object ids in the URLs of the admin API and the dashboard alike.
    app.url_map.converters["id"] = admin_api.IdConverter
    errors.init_app(app)
    health.init_app(app)
    executions.init_app(app)
    orchestrator.init_app(app)
    metrics.init_app(app)  # after the orchestrator, whose gate it reports
    dispatcher.init_app(app)  # after the orchestrator: the dispatcher stops before the executors
    scheduler.init_app(app)
    retention.init_app(app)
    manager_apps.init_app(app)
    admin_api.init_app(app)
    csrf.exempt(admin_api.bp)  # bearer tokens, never cookies: no CSRF to forge
    dashboard.init_app(app)
    cache.init_app(app)
    traffic.init_app(app)  # last: user traffic takes every path outside the reserved prefixes


def _close_connection(exc):
    if not database.db.is_closed() and not database.db.in_transaction():
        database.db.close()


def _security_headers(response):
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.path.startswith(("/admin", "/static", "/api")):
        response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
    return response
