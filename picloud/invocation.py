"""One way to build a run: the script's ``request`` table, an ``Invocation``, its record.

User traffic, ``POST /api/v1/execute`` and the dashboard's test console build the
``request`` table (docs/api.md §6) with ``request_table`` and decode a JSON body with
the same policy, so they cannot drift apart. ``run_script`` takes one frozen
``Invocation`` and gives back one ``ExecutionRecord``; how an outcome answers an HTTP
caller (status, error code, message) lives here too, in ``ERRORS``.

As docs/api.md §6 says: ``request.body`` is the body's exact bytes as a
Lua string, valid UTF-8 or not, so a script can check a webhook's signature or take a
binary upload. ``request.json`` is decoded only from a valid UTF-8 JSON body, and only
when a script can hold the value (see ``script_json``).
"""
import dataclasses
import datetime
import json
import math
import uuid
from urllib.parse import parse_qsl

from picloud.cache import ScriptSnapshot
from picloud.errors import BadRequest, DatabaseUnavailable, PiCloudError, StorageFull
from picloud.models import isoformat, utcnow
from picloud.sandbox import MAX_GLOBALS_DEPTH

# request.json is two tables down in a job's globals (globals.request.json).
MAX_JSON_DEPTH = MAX_GLOBALS_DEPTH - 2
# Request headers WSGI keeps outside the HTTP_ keys.
_CONTENT_HEADERS = (("CONTENT_TYPE", "content-type"), ("CONTENT_LENGTH", "content-length"))
# Sources whose runs answer an HTTP caller, so their records carry the HTTP status.
HTTP_SOURCES = ("http", "execute")


# The request table --------------------------------------------------------------------


def request_table(*, method, path, host, params, query, headers, body, json_body=None):
    """Return the script's ``request`` table (docs/api.md §6).

    ``headers`` have lower-case names. Unless the caller decoded ``json_body`` itself
    (strictly, with ``caller_json``), a JSON body becomes ``request.json`` when a
    script can hold it, and nil otherwise.
    """
    if json_body is None and body and is_json(headers.get("content-type", "")):
        json_body = _lenient_json(body)
    return {
        "method": method,
        "path": path,
        "host": host,
        "params": dict(params),
        "query": dict(query),
        "headers": dict(headers),
        "body": body,
        "json": json_body,
    }


def environ_request_table(environ, method, host, params, body, *, json_body=None, skip_headers=()):
    """Return the ``request`` table of a WSGI request (headers in ``skip_headers`` left out)."""
    headers = {}
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            name = key[5:].replace("_", "-").lower()
            if name not in skip_headers:
                headers[name] = value
    for key, name in _CONTENT_HEADERS:
        if environ.get(key):
            headers[name] = environ[key]
    return request_table(
        method=method,
        path=decoded_path(environ),
        host=host,
        params=params,
        query=first_values(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True)),
        headers=headers,
        body=body,
        json_body=json_body,
    )


def first_values(pairs):
    """Return query pairs as a table, keeping the first value of a repeated name."""
    query = {}
    for key, value in pairs:
        query.setdefault(key, value)
    return query


def decoded_path(environ):
    """Return the request path as text (WSGI hands it over as latin-1 of the raw bytes)."""
    return (environ.get("PATH_INFO") or "/").encode("latin-1").decode("utf-8", "replace")


def is_json(content_type):
    """Tell whether a content type announces JSON (``application/json``, ``*+json``)."""
    mimetype = content_type.partition(";")[0].strip().lower()
    return mimetype == "application/json" or mimetype.endswith("+json")


# The JSON policy ----------------------------------------------------------------------


# What a caller reads about valid JSON that a script cannot hold.
UNHOLDABLE_JSON = "The request body is JSON a script cannot hold: {}."


class UnholdableJSON(ValueError):
    """Valid JSON that no script's globals may hold."""


def script_json(body):
    """Decode JSON that a script can hold; raise ValueError, or UnholdableJSON saying why not.

    Refused as unholdable: NaN, infinities, numbers beyond a double, nesting deeper than
    MAX_JSON_DEPTH. The sandbox would refuse those as the platform's own failure (a 500)
    instead. Invalid JSON or UTF-8 raises a plain ValueError.
    """
    try:
        value = json.loads(body, parse_constant=_refuse_constant, parse_float=_finite, parse_int=_integer)
    except RecursionError:
        raise UnholdableJSON(f"nested deeper than {MAX_JSON_DEPTH} levels") from None
    # Counting brackets is cheap and bounds the depth from above.
    if body.count(b"[") + body.count(b"{") > MAX_JSON_DEPTH and _nesting(value) > MAX_JSON_DEPTH:
        raise UnholdableJSON(f"nested deeper than {MAX_JSON_DEPTH} levels")
    return value


def caller_json(body):
    """Decode a caller's JSON body for ``request.json``, or raise BadRequest saying why not.

    What ``POST /api/v1/execute`` and the test console answer with 400-class errors.
    """
    try:
        return script_json(body)
    except UnholdableJSON as exc:
        raise BadRequest(UNHOLDABLE_JSON.format(exc)) from None
    except ValueError:
        raise BadRequest("The request body is not valid JSON.") from None


def _lenient_json(body):
    """Return a JSON body's value, or None (the script's nil) when a script cannot have it."""
    try:
        return script_json(body)
    except ValueError:
        return None


def _refuse_constant(name):
    raise UnholdableJSON(f"{name} is not a JSON number")


def _finite(text):
    value = float(text)
    if not math.isfinite(value):
        raise UnholdableJSON("number out of range")
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


# The run ------------------------------------------------------------------------------


def new_execution_id():
    return str(uuid.uuid4())


@dataclasses.dataclass(frozen=True)
class Invocation:
    """One run of a script: what runs, with which globals, for whom, and where it sits
    in a chain of events."""

    script: ScriptSnapshot
    globals: dict  # {"request": ...} or {"event": ...}; ``ctx`` is added by run_script
    source: str  # http, execute, kv, docs, dead_letter
    wait_seconds: float | None  # for a gate slot; None waits for ever
    principal: dict | None = None  # {"user_id", "username"} of whoever caused the run
    execution_id: str = dataclasses.field(default_factory=new_execution_id)
    trigger_id: int | None = None
    event_id: str | None = None
    attempt: int = 1
    trigger_depth: int = 0
    parent_execution_id: str | None = None
    queued_at: datetime.datetime = dataclasses.field(default_factory=utcnow)

    @classmethod
    def of_event(cls, event, script, globals, *, wait_seconds):
        """Return the Invocation of a claimed outbox event's attempt."""
        return cls(
            script=ScriptSnapshot.of(script),
            globals=globals,
            source=event.kind,
            wait_seconds=wait_seconds,
            principal=event.principal,
            execution_id=event.execution_id,
            trigger_id=event.trigger_id,
            event_id=event.id,
            attempt=event.attempt,
            trigger_depth=event.trigger_depth,
            parent_execution_id=event.parent_execution_id,
            queued_at=event.queued_at,
        )

    def ctx(self, app_slug):
        """Return the script's ``ctx`` table (docs/api.md §8)."""
        script = self.script
        return {
            "app": {"id": script.app_id, "slug": app_slug},
            "script": {"id": script.id, "name": script.name, "version": script.version},
            "execution_id": self.execution_id,
            "source": self.source,
            "event_id": self.event_id,
            "attempt": self.attempt,
            "trigger_depth": self.trigger_depth,
            "principal": self.principal,
        }


@dataclasses.dataclass(frozen=True)
class ExecutionRecord:
    """One execution as the log keeps it (docs/api.md §10); ``to_dict`` is its API shape."""

    id: str
    app_id: int
    script_id: int
    source: str
    status: str  # an outcome's status, or queued, running, skipped
    queued_at: datetime.datetime
    attempt: int = 1
    trigger_id: int | None = None
    trigger_depth: int = 0
    event_id: str | None = None
    parent_execution_id: str | None = None
    http_status: int | None = None
    started_at: datetime.datetime | None = None
    finished_at: datetime.datetime | None = None
    duration_ms: float | None = None
    error: dict | None = None  # {"message", "line"}
    logs: tuple = ()  # ({"level", "message", "at"}, ...)
    usage: dict | None = None
    http_calls: tuple = ()  # the run's outbound requests (docs/api.md §11)
    input: dict | None = None  # {"request": ...} or {"event": ...}, see run_input
    response: dict | None = None  # an HTTP run's answer, see response_preview

    @classmethod
    def of(cls, invocation, status, **fields):
        """Return the record of an invocation in ``status``."""
        return cls(
            id=invocation.execution_id,
            app_id=invocation.script.app_id,
            script_id=invocation.script.id,
            source=invocation.source,
            status=status,
            queued_at=invocation.queued_at,
            attempt=invocation.attempt,
            trigger_id=invocation.trigger_id,
            trigger_depth=invocation.trigger_depth,
            event_id=invocation.event_id,
            parent_execution_id=invocation.parent_execution_id,
            **fields,
        )

    @classmethod
    def finished(cls, invocation, outcome, started_at, **fields):
        """Return the record of a run that ended with ``outcome`` (``fields`` added or
        overriding, as its usage and outbound calls)."""
        duration_ms = round(outcome.duration_ms, 3) if outcome.duration_ms is not None else None
        status = status_text(outcome.status)
        fields.setdefault("usage", dict(outcome.usage) if outcome.usage else None)
        return cls.of(
            invocation,
            status,
            http_status=http_status_of(outcome) if invocation.source in HTTP_SOURCES else None,
            started_at=started_at,
            finished_at=started_at + datetime.timedelta(milliseconds=duration_ms or 0),
            duration_ms=duration_ms,
            error=_error_of(outcome),
            logs=tuple(
                {"level": level, "message": message, "at": _iso_from_unix(at)}
                for level, message, at in outcome.logs
            ),
            input=run_input(invocation.globals),
            response=response_preview(outcome) if invocation.source in HTTP_SOURCES else None,
            **fields,
        )

    @classmethod
    def of_event(cls, event, status, **fields):
        """Return the record of an outbox event's attempt (a ClaimedEvent) in ``status``."""
        return cls(
            id=event.execution_id,
            app_id=event.app_id,
            script_id=event.script_id,
            source=event.kind,
            status=status,
            queued_at=event.queued_at,
            attempt=event.attempt,
            trigger_id=event.trigger_id,
            trigger_depth=event.trigger_depth,
            event_id=event.id,
            parent_execution_id=event.parent_execution_id,
            **fields,
        )

    def row(self):
        """Return the record as ``Execution`` column values."""
        return self._values()

    def to_dict(self):
        """Return the record as the API shows it (timestamps as ISO 8601 text)."""
        record = self._values()
        for name in ("queued_at", "started_at", "finished_at"):
            record[name] = isoformat(record[name])
        return record

    def _values(self):
        # Field by field, not dataclasses.asdict: its deep copy of every value cost
        # more than the rest of a hello request's bookkeeping. The small dicts are
        # copied; the log lines and calls are made for this record alone.
        values = {name: getattr(self, name) for name in _RECORD_FIELDS}
        values["error"] = dict(self.error) if self.error is not None else None
        values["usage"] = dict(self.usage) if self.usage is not None else None
        values["logs"] = list(self.logs)
        values["http_calls"] = list(self.http_calls)
        return values


_RECORD_FIELDS = tuple(field.name for field in dataclasses.fields(ExecutionRecord))


# What the log keeps of a run's input and answer: enough to read and to run it again,
# bounded so a large body or event cannot bloat the log.
PREVIEW_BYTES = 16 * 1024
EVENT_PREVIEW_BYTES = 64 * 1024
# Request headers whose values the log never keeps.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})


def run_input(globals):
    """Return what the log keeps of a run's ``request`` or ``event``."""
    if "request" in globals and globals["request"] is not None:
        request = dict(globals["request"])
        request.pop("json", None)  # the body says it
        request["headers"] = {
            name: "[redacted]" if name in SECRET_HEADERS else value
            for name, value in (request.get("headers") or {}).items()
        }
        request.update(_body_preview(request.get("body")))
        return {"request": request}
    if "event" in globals and globals["event"] is not None:
        encoded = json.dumps(globals["event"], separators=(",", ":"), ensure_ascii=False, default=str)
        if len(encoded.encode("utf-8")) > EVENT_PREVIEW_BYTES:
            return {"event": None, "event_bytes": len(encoded.encode("utf-8"))}
        return {"event": globals["event"]}
    return None


def response_preview(outcome):
    """Return what the log keeps of an HTTP run's answer, or None when it failed."""
    response = outcome.response
    if response is None:
        return None
    return {
        "status": response.status,
        "headers": [list(pair) for pair in response.headers],
        **_body_preview(response.body),
    }


def _body_preview(body):
    """Return ``{"body", "body_bytes", "truncated", "binary"}`` for a body of bytes or text."""
    raw = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else (body or b"")
    try:
        text, binary = raw[:PREVIEW_BYTES].decode("utf-8"), False
    except UnicodeDecodeError as exc:
        # Cut inside a character, or not text at all.
        cut = raw[:PREVIEW_BYTES]
        binary = exc.start < len(cut) - 3
        text = cut.decode("utf-8", "replace")
    return {"body": text, "body_bytes": len(raw), "truncated": len(raw) > PREVIEW_BYTES, "binary": binary}


def status_text(status):
    """Return an outcome status as its API text ("ok", "timeout", ...)."""
    return getattr(status, "value", status)


def _error_of(outcome):
    if outcome.error:
        return {"message": outcome.error.get("message"), "line": outcome.error.get("line")}
    status = status_text(outcome.status)
    if status == "timeout":
        return {"message": "The script ran past its timeout.", "line": None}
    if status == "limit_exceeded":
        return {"message": f"The script exceeded {outcome.limit}.", "line": None}
    if status != "ok":
        return {"message": status.replace("_", " "), "line": None}
    return None


def _iso_from_unix(at):
    moment = datetime.datetime.fromtimestamp(at, datetime.UTC).replace(tzinfo=None)
    return isoformat(moment)


# The outcome's answer to an HTTP caller -----------------------------------------------

# Each failed outcome's HTTP status (docs/api.md §6; the code is the status) and what the
# caller reads: the script's own error stays in the log.
ERRORS = {
    "script_error": (422, "The script raised an error."),
    "bad_script_response": (502, "The script returned a value that is not a valid response."),
    "timeout": (504, "The script did not finish within its timeout."),
    "limit_exceeded": (507, "The script exceeded a sandbox limit."),
    "internal_error": (500, "The script could not be run."),
}


# Platform failures a caller may retry (Outcome.cause), answered as on every endpoint.
RETRYABLE = {"database_unavailable": DatabaseUnavailable, "storage_full": StorageFull}


def http_status_of(outcome):
    """Return the HTTP status a sync caller gets for an outcome."""
    status = status_text(outcome.status)
    if status == "ok":
        return outcome.response.status if outcome.response is not None else 204
    if outcome.cause in RETRYABLE:
        return RETRYABLE[outcome.cause].status
    return ERRORS.get(status, ERRORS["internal_error"])[0]


def outcome_error(execution, outcome):
    """Return the PiCloudError a sync caller gets for a failed outcome."""
    if outcome.cause in RETRYABLE:
        error = RETRYABLE[outcome.cause]()
        error.extra["execution_id"] = execution.id
        return error
    status = status_text(outcome.status)
    code = status if status in ERRORS else "internal_error"
    http_status, message = ERRORS[code]
    extra = {"execution_id": execution.id}
    if status == "limit_exceeded":
        extra["limit"] = outcome.limit
    return PiCloudError(message, code=code, status=http_status, **extra)
