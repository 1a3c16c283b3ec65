"""The System page (``apps.manage``, so admins only): the database and the server processes.

It shows figures of every app at once, so it needs the installation-wide capability.
"""
from flask import current_app, render_template

from picloud import db as database
from picloud.dashboard.base import bp, login_required
from picloud.metrics.heartbeat import live_processes


@bp.get("/system")
@login_required("apps.manage")
def system():
    """Show the database's size, the rows of each table and the live server processes."""
    settings = current_app.config["PICLOUD"]
    return render_template(
        "system/index.html",
        section="system",
        backend=database.db.label,
        size=database.database_bytes(),
        tables=database.table_sizes(),
        processes=list(live_processes()),
        settings=settings,
    )
