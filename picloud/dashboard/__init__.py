"""The HTMX dashboard under ``/admin``: one module per page or tab.

The blueprint, the session and what the pages share live in ``base``; importing this
package registers every page on it.
"""
from flask_wtf.csrf import CSRFError

from picloud.dashboard import account, auth, users  # noqa: F401  (registers the views)
from picloud.dashboard import apps, domains, logs, routes, scripts, settings  # noqa: F401
from picloud.dashboard import data, dead_letters, system, triggers  # noqa: F401
from picloud.dashboard.base import bp, can, has_endpoint, refused_csrf


def init_app(app):
    """Register the dashboard, its template helpers and its CSRF answer."""
    app.jinja_env.globals.update(can=can, has_endpoint=has_endpoint)
    app.register_error_handler(CSRFError, refused_csrf)
    app.register_blueprint(bp)
