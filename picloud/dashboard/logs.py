"""The Logs tab: executions filtered by script, status and source, a live tail, run details."""
import uuid

from flask import request, url_for

from picloud import executions
from picloud.dashboard.base import bp, login_required
from picloud.dashboard.apps import app_page, render_tab, script_names
from picloud.dashboard.forms import LogFilterForm
from picloud.errors import NotFound
from picloud.manager.scripts import sandbox_info
from picloud.models import Execution, Script
from picloud.sandbox import effective_limits

PAGE_SIZE = 50


@bp.get("/apps/<slug>/logs")
@login_required("logs.read")
@app_page
def logs(app):
    """List the app's runs, newest first; the rows partial polls while Live is on."""
    executions.flush_pending()  # a run that just answered is listed at once
    scripts = script_names(app)
    form = LogFilterForm(formdata=request.args)
    form.script.choices = [("", "any script")] + [(str(i), name) for i, name in scripts.items()]
    filters = {
        name: form[name].data
        for name in ("script", "status", "source")
        if form[name].data and _is_choice(form[name])  # an unknown value filters nothing
    }
    live = bool(form.live.data)
    query = Execution.recent(
        app,
        script_id=int(filters["script"]) if "script" in filters else None,
        status=filters.get("status"),
        source=filters.get("source"),
    )
    before = None if live else request.args.get("before")
    if before:
        query = _older_than(app, query, before)
    rows = list(query.limit(PAGE_SIZE + 1))
    older = rows[PAGE_SIZE - 1].id if len(rows) > PAGE_SIZE else None
    context = dict(
        form=form,
        runs=[row.to_dict() for row in rows[:PAGE_SIZE]],
        script_names=scripts,
        live=live,
        rows_url=url_for("dashboard.logs", slug=app.slug, live="y", **filters),
        older_url=url_for("dashboard.logs", slug=app.slug, before=older, **filters) if older else None,
        newest_url=url_for("dashboard.logs", slug=app.slug, **filters) if before else None,
    )
    return render_tab(app, "logs", "logs/index.html", "logs/_rows.html", **context)


def _is_choice(field):
    return field.data in {value for value, _ in field.choices}


def _older_than(app, query, execution_id):
    """Keep the runs listed after ``execution_id`` (same order: newest first)."""
    anchor = _get_execution(app, execution_id)
    return query.where(
        (Execution.queued_at < anchor.queued_at)
        | ((Execution.queued_at == anchor.queued_at) & (Execution.id < anchor.id))
    )


def _get_execution(app, execution_id):
    try:
        uuid.UUID(execution_id)
    except ValueError:
        raise NotFound("No such execution.") from None
    execution = Execution.get_or_none((Execution.id == execution_id) & (Execution.app_id == app.id))
    if execution is None:
        raise NotFound("No such execution.")
    return execution


@bp.get("/apps/<slug>/logs/<execution_id>")
@login_required("logs.read")
@app_page
def run(app, execution_id):
    """Show one run: outcome, error line, logs and usage against the script's limits."""
    executions.flush_pending()  # the console links to its run as soon as it answered
    execution = _get_execution(app, execution_id)
    script = Script.get_or_none((Script.id == execution.script_id) & (Script.app == app))
    limits = None
    if script is not None:
        limits = dict(effective_limits(script.sandbox or {}, sandbox_info()["defaults"]))
        limits["timeout_ms"] = script.timeout_seconds * 1000
    return render_tab(
        app,
        "logs",
        "logs/show.html",
        run=execution.to_dict(),
        script=script,
        limits=limits,
    )
