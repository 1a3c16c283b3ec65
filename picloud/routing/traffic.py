"""User traffic: every method and path outside the platform's reserved prefixes.

Host → app (cached domain table) → route (cached route table) → a slot in the gate →
the executor → the outcome mapped to HTTP (API.md §6). The execution record is queued
for the batched log writer, so a request does no database write of its own.

Decision where API.md is silent: ``request.body`` is the body's exact bytes as a Lua
string, valid UTF-8 or not, so a script can check a webhook's signature or take a
binary upload. ``request.json`` is decoded only from a valid UTF-8 JSON body.
"""
import json

import peewee
import psycopg
from flask import current_app, request
from werkzeug.routing import BaseConverter, Rule
from werkzeug.wrappers import Response

from picloud.errors import NotFound, PayloadTooLarge, PiCloudError
from picloud.orchestrator import ERROR_STATUS, Overloaded, run_script, status_text
from picloud.routing import tables
from picloud.routing.match import MethodNotAllowed, match_route, normalize_host, split_request_path

ENDPOINT = "user_traffic"
RESERVED = ("admin", "api", "healthz", "version", "static")

# What the caller reads for each failed outcome; the script's own error stays in the log.
_MESSAGES = {
    "script_error": "The script raised an error.",
    "bad_script_response": "The script returned a value that is not a valid response.",
    "timeout": "The script did not finish within its timeout.",
    "limit_exceeded": "The script exceeded a sandbox limit.",
    "internal_error": "The script could not be run.",
}
# Response headers that describe the connection or framing: the server sets those.
_HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"})
_DATABASE_ERRORS = (peewee.OperationalError, peewee.InterfaceError, psycopg.OperationalError, psycopg.InterfaceError)


class ServiceUnavailable(PiCloudError):
    """The database cannot be reached right now."""

    status = 503
    code = "unavailable"


class UserPathConverter(BaseConverter):
    """Any path whose first segment is not reserved by the platform."""

    regex = r"(?!(?:" + "|".join(RESERVED) + r")(?:/|$)).*"
    part_isolating = False


def serve(path=""):
    """Answer a user request with the route's script."""
    limit = current_app.config["MAX_CONTENT_LENGTH"]
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.")
    try:
        host = normalize_host(request.host)
        app_id = tables.domain_table().resolve(host)
        if app_id is None:
            raise NotFound("No app claims this host.", code="unknown_host")
        result = match_route(tables.app_routes(app_id), request.method, host, _request_parts())
        if result is None:
            raise NotFound("No route matches this path.", code="no_route")
        if isinstance(result, MethodNotAllowed):
            raise PiCloudError(
                "The route does not answer this method.",
                code="method_not_allowed",
                status=405,
                headers={"Allow": ", ".join(result.allow)},
            )
        route = result.route
        globals_ = {"request": request_globals(host, result.params)}
        if route.dispatch_mode == "async":
            return _enqueue(route, globals_)
        script = tables.script(route.script_id)
    except _DATABASE_ERRORS as exc:
        current_app.logger.warning("database unavailable for user traffic: %s", exc)
        raise ServiceUnavailable("The service is temporarily unavailable.", headers={"Retry-After": "1"}) from None
    if script is None:  # deleted between the route and the script lookup
        raise NotFound("No route matches this path.", code="no_route")
    return run_sync(script, globals_, source="http")


def run_sync(script, globals_, *, source, principal=None):
    """Run a script for a waiting caller and answer with its outcome."""
    settings = current_app.config["PICLOUD"]
    try:
        execution, outcome = run_script(
            script,
            globals=globals_,
            source=source,
            wait_seconds=settings.queue_wait_ms / 1000,
            principal=principal,
        )
    except Overloaded:
        raise PiCloudError(
            "Every execution slot is busy; try again shortly.",
            code="overloaded",
            status=503,
            headers={"Retry-After": "1"},
        ) from None
    return outcome_response(execution, outcome)


def outcome_response(execution, outcome):
    """Turn an Outcome into the caller's response (API.md §6 table)."""
    status = status_text(outcome.status)
    if status == "ok":
        reply = outcome.response
        if reply is None:
            return Response(status=204)
        headers = [(k, v) for k, v in reply.headers if k.lower() not in _HOP_BY_HOP]
        return Response(reply.body, status=reply.status, headers=headers)
    extra = {"execution_id": execution["id"]}
    if status == "limit_exceeded":
        extra["limit"] = outcome.limit
    raise PiCloudError(
        _MESSAGES.get(status, _MESSAGES["internal_error"]),
        code=status if status in ERROR_STATUS else "internal_error",
        status=ERROR_STATUS.get(status, 500),
        **extra,
    )


def request_globals(host, params, *, json_body=None, skip_headers=()):
    """Build the script's ``request`` table from the current request."""
    headers = {}
    for name, value in request.headers.items():
        name = name.lower()
        if name not in headers and name not in skip_headers:
            headers[name] = value
    body = request.get_data(cache=True)
    if json_body is None and body and _is_json(request.mimetype):
        try:
            json_body = json.loads(body)
        except ValueError:  # invalid JSON or invalid UTF-8: the script sees json = nil
            json_body = None
    return {
        "method": request.method,
        "path": request.path,
        "host": host,
        "params": params,
        "query": request.args.to_dict(flat=True),
        "headers": headers,
        "body": body,
        "json": json_body,
    }


def _is_json(mimetype):
    return mimetype == "application/json" or mimetype.endswith("+json")


def _request_parts():
    raw_uri = request.environ.get("RAW_URI")
    if raw_uri and raw_uri.startswith("/"):
        # gunicorn keeps the path as sent, so an encoded '/' stays inside its segment.
        return split_request_path(raw_uri.partition("?")[0])
    # Otherwise the server has decoded the path already: split without decoding again.
    stripped = request.path.strip("/")
    return tuple(stripped.split("/")) if stripped else ()


def _enqueue(route, globals_):
    from picloud.outbox import enqueue_http_request

    accepted = enqueue_http_request(route, globals_["request"])
    return {"accepted_at": accepted["accepted_at"], "execution_id": accepted["execution_id"]}, 202


def init_app(app):
    """Register the catch-all rules; call after every other part so theirs win."""
    app.url_map.converters["userpath"] = UserPathConverter
    # No ``methods``: every method reaches the view, which answers 405 per route table.
    app.url_map.add(Rule("/", endpoint=ENDPOINT, merge_slashes=False))
    app.url_map.add(Rule("/<userpath:path>", endpoint=ENDPOINT, merge_slashes=False))
    app.view_functions[ENDPOINT] = serve
