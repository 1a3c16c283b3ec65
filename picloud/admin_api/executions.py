"""The execution log: ``/api/v1/admin/apps/{app}/executions`` and lookups (docs/api.md §10)."""
import datetime
import uuid

from flask import request

from picloud import executions
from picloud.admin_api.base import bp, limit_arg, requires
from picloud.cursor import decode_cursor, encode_cursor
from picloud.errors import NotFound, ValidationFailed
from picloud.manager import is_id
from picloud.manager.apps import resolve_app
from picloud.models import Execution

STATUSES = (
    "queued", "running", "ok", "script_error", "bad_script_response", "timeout",
    "limit_exceeded", "internal_error", "skipped",
)


@bp.get("/admin/apps/<id_or_slug>/executions")
@requires("logs.read")
def list_executions(id_or_slug):
    """List the app's executions, newest first, filtered by script, status or source."""
    app = resolve_app(id_or_slug)
    script_id = request.args.get("script_id") or None
    if script_id is not None:
        if not script_id.isascii() or not script_id.isdigit() or not is_id(int(script_id)):
            raise ValidationFailed("script_id", "script_id must be a script id.")
        script_id = int(script_id)
    status = _choice("status", STATUSES)
    source = _choice("source", Execution.SOURCES)
    limit = limit_arg()
    executions.flush_pending()
    query = Execution.recent(app, script_id=script_id, status=status, source=source)
    if request.args.get("cursor"):
        moment, last_id = _decode(request.args["cursor"])
        query = query.where(
            (Execution.queued_at < moment) | ((Execution.queued_at == moment) & (Execution.id < last_id))
        )
    rows = list(query.limit(limit + 1))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        last = rows[-1]
        next_cursor = encode_cursor([last.queued_at.isoformat(), last.id])
    return {"executions": [e.to_dict(exchange=False) for e in rows], "next_cursor": next_cursor}


@bp.get("/admin/executions/<execution_id>")
@requires("logs.read")
def show_execution(execution_id):
    """Show one execution (also an async run's, by the id its 202 answer named)."""
    try:
        execution_id = str(uuid.UUID(execution_id))
    except ValueError:
        raise NotFound("No such execution.") from None
    executions.flush_pending()
    execution = Execution.get_or_none(Execution.id == execution_id)
    if execution is None:
        raise NotFound("No such execution.")
    return execution.to_dict()


def _choice(name, allowed):
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        raise ValidationFailed(name, f"{name} must be one of {', '.join(allowed)}.")
    return value


def _decode(raw):
    value = decode_cursor(raw)
    try:
        moment, last_id = value
        return datetime.datetime.fromisoformat(moment), str(last_id)
    except (TypeError, ValueError):
        raise ValidationFailed("cursor", "cursor is not valid.") from None
