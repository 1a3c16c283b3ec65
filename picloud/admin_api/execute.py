"""Manual runs: ``POST /api/v1/execute/{script_id}`` answers exactly like a sync route."""
from flask import current_app, g, request

from picloud.admin_api.base import bp, json_body, requires
from picloud.cache import ScriptSnapshot
from picloud.errors import NotFound
from picloud.invocation import Invocation, caller_json, environ_request_table
from picloud.models import Script
from picloud.routing.match import normalize_host
from picloud.routing.traffic import run_sync

# The caller's credentials are for PiCloud, never for the script.
_PRIVATE_HEADERS = ("authorization", "cookie")


@bp.post("/execute/<id:script_id>")
@requires("scripts.execute")
def execute(script_id):
    """Run a script now with this call's JSON body as ``request.json``."""
    script = Script.get_or_none(Script.id == script_id)
    if script is None:
        raise NotFound("No such script.")
    raw = request.get_data(cache=True)
    body = caller_json(raw) if raw else None
    if body is not None:
        json_body(require_object=False)  # refuses what the admin API refuses everywhere
    table = environ_request_table(
        request.environ,
        request.method,
        normalize_host(request.host),
        {},
        raw,
        json_body=body,
        skip_headers=_PRIVATE_HEADERS,
    )
    return run_sync(
        Invocation(
            script=ScriptSnapshot.of(script),
            globals={"request": table},
            source="execute",
            wait_seconds=current_app.config["PICLOUD"].queue_wait_ms / 1000,
            principal={"user_id": g.user.id, "username": g.user.username},
        )
    )
