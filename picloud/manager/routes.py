"""Routes: method, path pattern, host and script checks; conflicts; preview URLs."""
import dataclasses

from picloud.cache import config_change
from picloud.errors import Conflict, ValidationFailed
from picloud.manager import bool_field, is_id, reject_unknown, settings
from picloud.models import Domain, Route, Script, utcnow
from picloud.outbox.retry import validate_retry
from picloud.routing.match import (
    ANY_METHOD,
    CATCH_ALL,
    LITERAL,
    METHODS,
    InvalidHost,
    InvalidPath,
    RESERVED_SEGMENTS,
    claim_covers,
    parse_path,
    path_shape,
    to_ascii_host,
)

DISPATCH_MODES = ("sync", "async")
_FIELDS = ("method", "path", "host", "script_id", "dispatch_mode", "enabled", "retry")
# What a wildcard host's first label shows as in preview URLs: a placeholder, like a parameter.
SAMPLE_LABEL = "subdomain"


@dataclasses.dataclass(frozen=True)
class PreviewURL:
    """A URL a route answers on, in parts, so that placeholders can be shown as such.

    ``parts`` is a sequence of (kind, text): kind ``"text"`` is literal URL text, ``"param"``
    a ``:name`` path parameter (one segment), ``"rest"`` a last ``*name`` catch-all (zero or
    more segments) and ``"subdomain"`` the label a wildcard host leaves open.
    """

    parts: tuple

    @property
    def text(self):
        """Return the URL with each placeholder written as ``{name}`` (``{name...}`` for a catch-all)."""
        shown = {"text": "{}", "param": "{{{}}}", "subdomain": "{{{}}}", "rest": "{{{}...}}"}
        return "".join(shown[kind].format(text) for kind, text in self.parts)

    @property
    def href(self):
        """Return the URL to open, or None when a placeholder must be filled in first."""
        if any(kind != "text" for kind, _ in self.parts):
            return None
        return "".join(text for _, text in self.parts)


def clean_route(data):
    """Check a new route's own fields and return them as stored, defaults filled in.

    The checks against the app (host claimed, script of the app, conflicts) come when
    the route is written.
    """
    return {
        "method": _method(data.get("method")),
        "path": _path(data.get("path")),
        "host": _host(data.get("host")),
        "script_id": data.get("script_id"),
        "dispatch_mode": _dispatch_mode(data.get("dispatch_mode", "sync")),
        "enabled": bool_field("enabled", data.get("enabled"), default=True),
        "retry": _retry(data.get("retry")),
    }


def route_key(method, host, path):
    """Return what identifies a route within its app: method, host and path shape."""
    return method, host, path_shape(parse_path(path))


def create_route(app, data):
    """Create a route in the app; 422 for bad fields, 409 route_conflict on overlap."""
    reject_unknown(data, _FIELDS)
    fields = clean_route(data)
    with config_change():
        _check_against_app(app.id, fields, route_id=None)
        return Route.create(app=app, script=fields.pop("script_id"), **fields)


def update_route(route, data):
    """Change a route's fields, with the same checks as on creation."""
    reject_unknown(data, _FIELDS)
    changes = {}
    if "method" in data:
        changes["method"] = _method(data["method"])
    if "path" in data:
        changes["path"] = _path(data["path"])
    if "host" in data:
        changes["host"] = _host(data["host"])
    if "script_id" in data:
        changes["script_id"] = data["script_id"]
    if "dispatch_mode" in data:
        changes["dispatch_mode"] = _dispatch_mode(data["dispatch_mode"])
    if "enabled" in data:
        changes["enabled"] = bool_field("enabled", data["enabled"])
    if "retry" in data:
        changes["retry"] = _retry(data["retry"])
    with config_change():
        current = Route.get_by_id(route.id)
        merged = {
            "method": changes.get("method", current.method),
            "path": changes.get("path", current.path),
            "host": changes["host"] if "host" in changes else current.host,
            "script_id": changes.get("script_id", current.script_id),
        }
        _check_against_app(current.app_id, merged, route_id=current.id)
        if "script_id" in changes:
            changes["script"] = changes.pop("script_id")
        changes["updated_at"] = utcnow()
        Route.update(**changes).where(Route.id == route.id).execute()
    return Route.get_by_id(route.id)


def delete_route(route):
    """Delete a route."""
    with config_change():
        Route.delete().where(Route.id == route.id).execute()


def route_urls(route):
    """Return a PreviewURL for each host the route answers on (its own, or each the app claims)."""
    config = settings()
    if config.proxy_count:
        scheme, port = "https", ""
    else:
        bound = config.bind.rpartition(":")[2]
        scheme, port = "http", ("" if bound == "80" else f":{bound}")
    if route.host is not None:
        hosts = [route.host]
    else:
        hosts = [d.pattern for d in Domain.for_app(route.app_id)]
    path = _path_parts(route.path)
    return [
        PreviewURL(_joined([("text", scheme + "://"), *_host_parts(host), ("text", port), *path]))
        for host in hosts
    ]


def _host_parts(pattern):
    if pattern.startswith("*."):
        return [("subdomain", SAMPLE_LABEL), ("text", pattern[1:])]
    return [("text", pattern)]


def _path_parts(path):
    """Split a stored route path into URL text and placeholders, keeping literals as written."""
    written = path.strip("/").split("/") if path.strip("/") else []
    if not written:
        return [("text", "/")]
    kinds = {CATCH_ALL: "rest", LITERAL: "text"}
    parts = []
    for (kind, name), segment in zip(parse_path(path), written):
        parts.append(("text", "/"))
        parts.append((kinds.get(kind, "param"), segment if kind == LITERAL else name))
    return parts


def _joined(parts):
    """Join adjacent text parts, so that a parameter-free URL is one piece of text."""
    joined = []
    for kind, text in parts:
        if not text and kind == "text":
            continue
        if joined and kind == "text" and joined[-1][0] == "text":
            joined[-1] = ("text", joined[-1][1] + text)
        else:
            joined.append((kind, text))
    return tuple(joined)


def _check_against_app(app_id, fields, route_id):
    """Check host, script and conflicts against the app's current state."""
    if fields["host"] is not None:
        claims = [d.pattern for d in Domain.select(Domain.pattern).where(Domain.app == app_id)]
        if not any(claim_covers(claim, fields["host"]) for claim in claims):
            raise ValidationFailed(
                "host", f"The app claims no domain covering {fields['host']}.", code="host_not_claimed"
            )
    script_id = fields["script_id"]
    if (
        not is_id(script_id)
        or not Script.select().where(Script.id == script_id, Script.app == app_id).exists()
    ):
        raise ValidationFailed("script_id", "script_id must be a script of the same app.")
    shape = path_shape(parse_path(fields["path"]))
    others = Route.select().where(Route.app == app_id, Route.host.is_null(fields["host"] is None))
    if fields["host"] is not None:
        others = others.where(Route.host == fields["host"])
    if route_id is not None:
        others = others.where(Route.id != route_id)
    for other in others.order_by(Route.id):
        if other.method == fields["method"] and path_shape(parse_path(other.path)) == shape:
            raise Conflict(
                f"Route {other.id} ({other.method} {other.path}) already answers these requests.",
                code="route_conflict",
                conflicts_with=other.id,
            )


def _method(method):
    if not isinstance(method, str) or method.upper() not in METHODS + (ANY_METHOD,):
        raise ValidationFailed("method", f"method must be one of {', '.join(METHODS)} or *.")
    return method.upper()


def _path(path):
    try:
        segments = parse_path(path)
    except InvalidPath as exc:
        raise ValidationFailed("path", str(exc)) from None
    if segments and segments[0][0] == LITERAL and segments[0][1] in RESERVED_SEGMENTS:
        raise ValidationFailed(
            "path", f"/{segments[0][1]} is reserved for the platform.", code="reserved_path"
        )
    # A trailing slash is ignored when matching, so it is not kept either.
    return path.rstrip("/") or "/"


def _host(host):
    if host is None:
        return None
    if not isinstance(host, str):
        raise ValidationFailed("host", "host must be a host name or null.")
    wildcard = host.strip().startswith("*.")
    try:
        name = to_ascii_host(host.strip()[2:] if wildcard else host)
    except InvalidHost as exc:
        raise ValidationFailed("host", str(exc)) from None
    return "*." + name if wildcard else name


def _dispatch_mode(mode):
    if mode not in DISPATCH_MODES:
        raise ValidationFailed("dispatch_mode", "dispatch_mode must be sync or async.")
    return mode


def _retry(retry):
    """Check a retry policy with the outbox's rules (none: the default policy later)."""
    if retry is None:
        return None
    return validate_retry(retry)
