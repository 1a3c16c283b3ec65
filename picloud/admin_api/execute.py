"""Manual runs: ``POST /api/v1/execute/{script_id}`` answers exactly like a sync route."""
from flask import current_app, g, request

from picloud.admin_api import bp, json_body, requires
from picloud.errors import BadRequest, NotFound
from picloud.models import Script
from picloud.routing.match import normalize_host
from picloud.routing.traffic import request_table, run_sync, script_json

# The caller's credentials are for PiCloud, never for the script.
_PRIVATE_HEADERS = ("authorization", "cookie")


@bp.post("/execute/<id:script_id>")
@requires("scripts.execute")
def execute(script_id):
    """Run a script now with this call's JSON body as ``request.json``."""
    script = Script.get_or_none(Script.id == script_id)
    if script is None:
        raise NotFound("No such script.")
    try:
        body = json_body(require_object=False)
        if body is not None:
            script_json(request.get_data(cache=True))
    except RecursionError:
        raise BadRequest("The request body is nested too deeply for a script.") from None
    except ValueError as exc:
        raise BadRequest(f"The request body is JSON a script cannot hold: {exc}.") from None
    table = request_table(
        request.environ,
        request.method,
        normalize_host(request.host),
        {},
        request.get_data(cache=True),
        json_body=body,
        skip_headers=_PRIVATE_HEADERS,
    )
    principal = {"user_id": g.user.id, "username": g.user.username}
    return run_sync(
        script, {"request": table}, source="execute", settings=current_app.config["PICLOUD"], principal=principal
    )
