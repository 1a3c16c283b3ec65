"""Platform endpoints on any Host: ``/healthz`` and ``/version``."""
from flask import Blueprint

from picloud import db as database
from picloud.migrate import applied_number

PRODUCT_VERSION = "0.1.0"

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz():
    """Report whether the server can reach its database and write to it."""
    state = database.health()
    if state != "ok":
        return {"status": "unavailable", "database": state}, 503
    return {"status": "ok", "database": "ok"}


@bp.get("/version")
def version():
    """Report the product version, schema number and Lua version."""
    return {"product": PRODUCT_VERSION, "schema": applied_number(), "lua": "Lua 5.4"}


def init_app(app):
    app.register_blueprint(bp)
