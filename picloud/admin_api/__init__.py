"""The JSON admin API under ``/api/v1``: one module per resource.

Every view declares the capability it needs with ``@requires``; the caller is the
user of the ``Authorization: Bearer`` token. The blueprint and what the views share
live in ``base``; importing this package registers every view on it.
"""
from picloud.admin_api import auth, users  # noqa: F401  (registers the views)
from picloud.admin_api import apps, domains, execute, executions, routes, sandbox, scripts  # noqa: F401
from picloud.admin_api import bundles, dead_letters, docs, kv, secrets, tls, triggers  # noqa: F401
from picloud.admin_api import metrics
from picloud.admin_api.base import IdConverter, bp

__all__ = ["IdConverter", "bp", "init_app"]


def init_app(app):
    """Register the admin API and ``/metrics``."""
    app.register_blueprint(bp)
    app.register_blueprint(metrics.bp)  # /metrics, outside /api/v1
