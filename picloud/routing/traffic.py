"""User traffic: every method and path outside the platform's reserved prefixes.

Host → app (cached domain table) → route (cached route table) → a slot in the gate →
the executor → the outcome mapped to HTTP (docs/api.md §6). The execution record is queued
for the batched log writer, so a request does no database write of its own.

``UserTraffic`` answers these requests at the WSGI level, in front of Flask: a user
request needs none of Flask's per-request machinery (sessions, CSRF, URL maps), and
skipping it is a large share of the hot path's cost. Paths under ``/admin``, ``/api``,
``/healthz``, ``/version``, ``/static`` and ``/metrics`` pass straight through to Flask, so the
platform's prefixes always win. The ``request`` table and the outcome's HTTP answer
are built by ``picloud.invocation``, shared with ``/api/v1/execute`` and the console.
"""
import json
import logging
from http import HTTPStatus

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wsgi import get_input_stream

from picloud import cache, executions
from picloud.db import db
from picloud.errors import NotFound, PayloadTooLarge, PiCloudError, database_error
from picloud.invocation import Invocation, decoded_path, environ_request_table, outcome_error, status_text
from picloud.orchestrator import Overloaded, run_script
from picloud.outbox import enqueue_http_request
from picloud.routing import tables
from picloud.routing.match import RESERVED_SEGMENTS, MethodNotAllowed, match_route, normalize_host, split_request_path

log = logging.getLogger(__name__)


# Response headers that describe the connection or framing: the server sets those.
_HOP_BY_HOP = frozenset({"connection", "content-length", "keep-alive", "transfer-encoding", "upgrade", "te", "trailer"})


class UserTraffic:
    """WSGI middleware that answers user traffic and hands reserved paths to Flask."""

    def __init__(self, flask_app, platform):
        self.platform = platform
        self.settings = flask_app.config["PICLOUD"]

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO") or "/"
        if path[1:].partition("/")[0] in RESERVED_SEGMENTS:
            return self.platform(environ, start_response)
        # No Flask context at all: nothing on this path needs a session, the URL map or
        # current_app (the orchestrator holds the settings runs need).
        return self.respond(environ)(environ, start_response)

    def respond(self, environ):
        """Return the Response for one user request."""
        try:
            return serve(environ, self.settings)
        except PiCloudError as error:
            return error_response(error)
        except Exception as exc:
            error = database_error(exc)
            if error is None:
                log.exception("unhandled error on %s %s", environ.get("REQUEST_METHOD"), environ.get("PATH_INFO"))
                error = PiCloudError("An internal error occurred.")
            else:
                log.warning("%s for user traffic: %s", error.code, exc)
            return error_response(error)
        finally:
            if not db.is_closed() and not db.in_transaction():
                db.close()


def serve(environ, settings):
    """Answer a user request with the route's script, or raise a PiCloudError."""
    method = environ.get("REQUEST_METHOD", "GET").upper()
    length = environ.get("CONTENT_LENGTH")
    if length and length.isdigit() and int(length) > settings.max_body_bytes:
        raise PayloadTooLarge(f"The request body is larger than {settings.max_body_bytes} bytes.")
    host = normalize_host(environ.get("HTTP_HOST") or environ.get("SERVER_NAME"))
    app_id = tables.domain_table().resolve(host)
    if app_id is None:
        raise NotFound("No app claims this host.", code="unknown_host")
    result = match_route(tables.app_routes(app_id), method, host, _request_parts(environ))
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
    body = read_body(environ, settings.max_body_bytes)
    request = environ_request_table(environ, method, host, result.params, body)
    if route.dispatch_mode == "async":
        return _enqueue(route, request)
    script = cache.script(route.script_id)
    if script is None:  # deleted between the route and the script lookup
        raise NotFound("No route matches this path.", code="no_route")
    return run_sync(
        Invocation(script=script, globals={"request": request}, source="http", wait_seconds=settings.queue_wait_ms / 1000)
    )


def run_sync(invocation):
    """Run an Invocation for a waiting caller and answer with its outcome."""
    try:
        execution, outcome = run_script(invocation)
    except Overloaded:
        executions.refused(invocation.script.app_id, invocation.source)
        raise PiCloudError(
            "Every execution slot is busy; try again shortly.",
            code="overloaded",
            status=503,
            headers={"Retry-After": "1"},
        ) from None
    return outcome_response(execution, outcome)


def outcome_response(execution, outcome):
    """Turn an Outcome into the caller's response (docs/api.md §6 table)."""
    if status_text(outcome.status) != "ok":
        raise outcome_error(execution, outcome)
    reply = outcome.response
    if reply is None:
        return _response(b"", 204, [])
    headers = [(k, v) for k, v in reply.headers if k.lower() not in _HOP_BY_HOP]
    return _response(reply.body, reply.status, headers)


def error_response(error):
    """Render a PiCloudError as the JSON error body of docs/api.md §1."""
    body = json.dumps(error.body(), separators=(",", ":")) + "\n"
    headers = [("Content-Type", "application/json"), *error.headers.items()]
    return _response(body.encode(), error.status, headers)


class _Response:
    """A finished response as a WSGI callable: lighter than werkzeug's on the hot path.

    Header names and values come from the sandbox (which checked them) or from here.
    """

    __slots__ = ("body", "status", "headers")

    def __init__(self, body, status, headers):
        self.body = body
        self.status = status
        self.headers = headers

    def __call__(self, environ, start_response):
        headers = list(self.headers)
        names = {name.lower() for name, _ in headers}
        if "content-type" not in names and self.status != 204:
            headers.append(("Content-Type", "text/plain; charset=utf-8"))
        if "x-content-type-options" not in names:
            headers.append(("X-Content-Type-Options", "nosniff"))
        # HEAD, 1xx, 204 and 304 carry no body (HEAD keeps the length GET would send).
        bodiless = self.status < 200 or self.status in (204, 304)
        if not bodiless:
            headers.append(("Content-Length", str(len(self.body))))
        start_response(_status_line(self.status), headers)
        if bodiless or environ.get("REQUEST_METHOD") == "HEAD":
            return []
        return [self.body]


def _status_line(status):
    line = _STATUS_LINES.get(status)
    if line is None:
        try:
            line = f"{status} {HTTPStatus(status).phrase}"
        except ValueError:
            line = f"{status} Unknown"
        _STATUS_LINES[status] = line
    return line


_STATUS_LINES = {}


def _response(body, status, headers):
    return _Response(body, status, headers)


def read_body(environ, limit):
    """Read the request body, refusing one over ``limit`` bytes with 413."""
    try:
        return get_input_stream(environ, max_content_length=limit).read()
    except RequestEntityTooLarge:
        raise PayloadTooLarge(f"The request body is larger than {limit} bytes.") from None


def _request_parts(environ):
    raw_uri = environ.get("RAW_URI")
    if raw_uri and raw_uri.startswith("/"):
        # gunicorn keeps the path as sent, so an encoded '/' stays inside its segment.
        return split_request_path(raw_uri.partition("?")[0])
    # Otherwise the server has decoded the path already: split without decoding again.
    stripped = decoded_path(environ).strip("/")
    return tuple(stripped.split("/")) if stripped else ()


def _enqueue(route, request):
    accepted = enqueue_http_request(route, request)
    body = {"accepted_at": accepted["accepted_at"], "execution_id": accepted["execution_id"]}
    return _response(json.dumps(body).encode(), 202, [("Content-Type", "application/json")])


def init_app(app):
    """Answer user traffic in front of Flask (inside ProxyFix, so forwarded hosts count)."""
    if isinstance(app.wsgi_app, ProxyFix):
        app.wsgi_app.app = UserTraffic(app, app.wsgi_app.app)
    else:
        app.wsgi_app = UserTraffic(app, app.wsgi_app)
