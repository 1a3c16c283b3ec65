"""User traffic: every method and path outside the platform's reserved prefixes.

Host → app (cached domain table) → route (cached route table) → a slot in the gate →
the executor → the outcome mapped to HTTP (docs/api.md §6). The execution record is queued
for the batched log writer, so a request does no database write of its own.

``UserTraffic`` answers these requests at the WSGI level, in front of Flask: a user
request needs none of Flask's per-request machinery (sessions, CSRF, URL maps), and
skipping it is a large share of the hot path's cost. Paths under ``/admin``, ``/api``,
``/healthz``, ``/version``, ``/static`` and ``/metrics`` pass straight through to Flask, so the
platform's prefixes always win.

As docs/api.md §6 says: ``request.body`` is the body's exact bytes as a Lua
string, valid UTF-8 or not, so a script can check a webhook's signature or take a
binary upload. ``request.json`` is decoded only from a valid UTF-8 JSON body, and
only when a script can hold the value (see ``script_json``).
"""
import json
import logging
import math
from http import HTTPStatus
from urllib.parse import parse_qsl

from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.middleware.proxy_fix import ProxyFix
from werkzeug.wsgi import get_input_stream

from picloud import cache, executions
from picloud.db import db
from picloud.errors import NotFound, PayloadTooLarge, PiCloudError, database_error
from picloud.orchestrator import ERROR_STATUS, Overloaded, run_script, status_text
from picloud.outbox import enqueue_http_request
from picloud.routing import tables
from picloud.routing.match import RESERVED_SEGMENTS, MethodNotAllowed, match_route, normalize_host, split_request_path
from picloud.sandbox import MAX_GLOBALS_DEPTH

log = logging.getLogger(__name__)


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
# request.json is two tables down in a job's globals (globals.request.json).
MAX_JSON_DEPTH = MAX_GLOBALS_DEPTH - 2
# Request headers WSGI keeps outside the HTTP_ keys.
_CONTENT_HEADERS = (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length"))


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
    request = request_table(environ, method, host, result.params, body)
    if route.dispatch_mode == "async":
        return _enqueue(route, request)
    script = cache.script(route.script_id)
    if script is None:  # deleted between the route and the script lookup
        raise NotFound("No route matches this path.", code="no_route")
    return run_sync(script, {"request": request}, source="http", settings=settings)


def run_sync(script, globals_, *, source, settings, principal=None):
    """Run a script for a waiting caller and answer with its outcome."""
    try:
        execution, outcome = run_script(
            script,
            globals=globals_,
            source=source,
            wait_seconds=settings.queue_wait_ms / 1000,
            principal=principal,
        )
    except Overloaded:
        executions.refused(script.app_id, source)
        raise PiCloudError(
            "Every execution slot is busy; try again shortly.",
            code="overloaded",
            status=503,
            headers={"Retry-After": "1"},
        ) from None
    return outcome_response(execution, outcome)


def outcome_response(execution, outcome):
    """Turn an Outcome into the caller's response (docs/api.md §6 table)."""
    status = status_text(outcome.status)
    if status == "ok":
        reply = outcome.response
        if reply is None:
            return _response(b"", 204, [])
        headers = [(k, v) for k, v in reply.headers if k.lower() not in _HOP_BY_HOP]
        return _response(reply.body, reply.status, headers)
    extra = {"execution_id": execution["id"]}
    if status == "limit_exceeded":
        extra["limit"] = outcome.limit
    raise PiCloudError(
        _MESSAGES.get(status, _MESSAGES["internal_error"]),
        code=status if status in ERROR_STATUS else "internal_error",
        status=ERROR_STATUS.get(status, 500),
        **extra,
    )


def error_response(error):
    """Render a PiCloudError as the docs/api.md JSON error body."""
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


def request_table(environ, method, host, params, body, *, json_body=None, skip_headers=()):
    """Build the script's ``request`` table (docs/api.md §6) from a WSGI environ."""
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
            if name not in skip_headers:
                headers[name] = value
    for key, name in _CONTENT_HEADERS:
        if environ.get(key):
            headers[name] = environ[key]
    if json_body is None and body and _is_json(environ.get("CONTENT_TYPE", "")):
        json_body = _decode_json(body)
    query = {}
    for key, value in parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True):
        query.setdefault(key, value)
    return {
        "method": method,
        "path": _decoded_path(environ),
        "host": host,
        "params": params,
        "query": query,
        "headers": headers,
        "body": body,
        "json": json_body,
    }


def _decode_json(body):
    """Return a JSON body's value, or None (the script's nil) when a script cannot have it."""
    try:
        return script_json(body)
    except ValueError:
        return None


def script_json(body):
    """Decode JSON that a script can hold, or raise ValueError saying why not.

    Refused: invalid JSON or UTF-8, and JSON no job's globals may hold: NaN,
    infinities, numbers beyond a double, nesting deeper than MAX_JSON_DEPTH. The
    sandbox would refuse those as the platform's own failure (a 500) instead.
    """
    try:
        value = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite, parse_int=_integer)
    except RecursionError:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    # Counting brackets is cheap and bounds the depth from above.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _nesting(value) > MAX_JSON_DEPTH:
        raise ValueError(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def _refuse_constant(name):
    raise ValueError(f"{name} is not a JSON number")


def _finite(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _integer(text):
    # Beyond 64 bits an integer becomes a double in the sandbox, as Lua reads its text.
    if len(text) > 300:
        _finite(text)
    return int(text)


def _nesting(value):
    """Return how deep the lists and objects of a decoded JSON value nest."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            item = item.values()
        elif not isinstance(item, list):
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in item)
    return deepest


def _is_json(content_type):
    mimetype = content_type.partition(";")[0].strip().lower()
    return mimetype == "application/json" or mimetype.endswith("+json")


def _decoded_path(environ):
    # WSGI hands PATH_INFO over as latin-1 text of the decoded bytes.
    return (environ.get("PATH_INFO") or "/").encode("latin-1").decode("utf-8", "replace")


def _request_parts(environ):
    raw_uri = environ.get("RAW_URI")
    if raw_uri and raw_uri.startswith("/"):
        # gunicorn keeps the path as sent, so an encoded '/' stays inside its segment.
        return split_request_path(raw_uri.partition("?")[0])
    # Otherwise the server has decoded the path already: split without decoding again.
    stripped = _decoded_path(environ).strip("/")
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
