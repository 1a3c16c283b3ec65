"""Host → app and request → route resolution, as pure functions over plain tables.

Nothing here touches the database or Flask: the tables are built by ``tables.py``
from cached rows, and every rule of docs/api.md §4 (host resolution) and §6 (matching)
lives in this one module so it can be tested as a table of cases.
"""
import re
from dataclasses import dataclass, field
from urllib.parse import unquote

import idna

# First path segments that never reach user scripts: the platform's own prefixes.
# ``static`` among them: the platform serves its own assets there,
# so a route could never answer.
RESERVED_SEGMENTS = frozenset({"admin", "api", "healthz", "version", "static", "metrics"})

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
ANY_METHOD = "*"

# Segment kinds, in order of specificity: a lower number wins.
LITERAL, PARAM, CATCH_ALL = 0, 1, 2

_LABEL_RE = re.compile(r"^[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?$")
_PARAM_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
# A literal segment: anything but whitespace and the characters that end a path.
_LITERAL_RE = re.compile(r"^[^\s/?#]+$")


class InvalidHost(ValueError):
    """The text is not a host name."""


class InvalidPath(ValueError):
    """The text is not a route path."""


# Hosts -------------------------------------------------------------------------------


def to_ascii_host(text):
    """Return a host name lowercased and in punycode, without a trailing dot."""
    host = text.strip()
    if host.endswith("."):
        host = host[:-1]
    if not host:
        raise InvalidHost("A host name cannot be empty.")
    if not host.isascii():
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError) as exc:
            raise InvalidHost(f"Not a valid international host name: {exc}") from None
    host = host.lower()
    if len(host) > 253:
        raise InvalidHost("A host name is at most 253 characters.")
    for label in host.split("."):
        if not _LABEL_RE.match(label):
            raise InvalidHost(f"{text!r} is not a valid host name.")
    return host


def normalize_host(raw):
    """Return the host of a ``Host`` header: lowercased, no port, no trailing dot; or None."""
    if not raw:
        return None
    host = raw.strip().lower()
    if host.startswith("["):  # an IPv6 literal, with or without a port
        end = host.find("]")
        return host[: end + 1] if end > 0 else None
    name, sep, port = host.rpartition(":")
    if sep and port.isdigit():
        host = name
    if host.endswith("."):
        host = host[:-1]
    if not host:
        return None
    if not host.isascii():
        try:
            host = to_ascii_host(host)
        except InvalidHost:
            return None
    return host


def host_matches(pattern, host):
    """Tell whether a claim or route host pattern covers a concrete host."""
    if pattern.startswith("*."):
        return host.endswith(pattern[1:])
    return host == pattern


def claim_covers(claim, route_host):
    """Tell whether a domain claim covers a route's host (itself a host or a wildcard)."""
    if route_host.startswith("*."):
        return claim.startswith("*.") and (route_host == claim or route_host.endswith(claim[1:]))
    return host_matches(claim, route_host)


@dataclass(frozen=True)
class DomainTable:
    """Exact claims by host, and wildcard suffixes longest first."""

    exact: dict
    wildcards: tuple  # ((".example.com", app_id), ...) longest suffix first

    @classmethod
    def build(cls, claims):
        """Build from (pattern, app_id) pairs."""
        exact, wildcards = {}, []
        for pattern, app_id in claims:
            if pattern.startswith("*."):
                wildcards.append((pattern[1:], app_id))
            else:
                exact[pattern] = app_id
        wildcards.sort(key=lambda item: len(item[0]), reverse=True)
        return cls(exact, tuple(wildcards))

    def resolve(self, host):
        """Return the app id claiming a normalised host, or None."""
        claim = self.claim_for(host)
        return claim[1] if claim is not None else None

    def claim_for(self, host):
        """Return (pattern, app id) of the claim that wins a normalised host, or None."""
        if host is None:
            return None
        app_id = self.exact.get(host)
        if app_id is not None:
            return host, app_id
        for suffix, app_id in self.wildcards:
            if host.endswith(suffix):
                return "*" + suffix, app_id
        return None


# Paths -------------------------------------------------------------------------------


def parse_path(path):
    """Return a route path's segments as ((kind, text), ...), or raise InvalidPath."""
    if not isinstance(path, str) or not path.startswith("/"):
        raise InvalidPath("A path starts with '/'.")
    if len(path) > 1024:
        raise InvalidPath("A path is at most 1024 characters.")
    parts = path.strip("/").split("/") if path.strip("/") else []
    if path.endswith("//") or any(part == "" for part in parts):
        raise InvalidPath("A path cannot contain empty segments ('//').")
    segments, names = [], set()
    for index, part in enumerate(parts):
        if part[0] in ":*":
            name = part[1:]
            if not _PARAM_NAME_RE.match(name):
                raise InvalidPath(f"{part!r}: a parameter name is a letter or _ then letters, digits or _.")
            if name in names:
                raise InvalidPath(f"The parameter {name!r} appears twice.")
            names.add(name)
            if part[0] == "*" and index != len(parts) - 1:
                raise InvalidPath("A catch-all '*name' can only be the last segment.")
            segments.append((CATCH_ALL if part[0] == "*" else PARAM, name))
        else:
            if not _LITERAL_RE.match(part):
                raise InvalidPath(f"{part!r} holds characters a path segment cannot.")
            segments.append((LITERAL, unquote(part)))
    return tuple(segments)


def path_shape(segments):
    """Return what two paths must share to conflict: literals and kinds, not names."""
    return tuple(text if kind == LITERAL else kind for kind, text in segments)


def split_request_path(raw_path):
    """Split a raw (still percent-encoded) request path into decoded segments."""
    stripped = raw_path.strip("/")
    if not stripped:
        return ()
    return tuple(unquote(part, errors="replace") for part in stripped.split("/"))


def match_segments(segments, parts):
    """Return the params if a route's segments match the request's parts, else None."""
    params = {}
    count = len(segments)
    for index, (kind, text) in enumerate(segments):
        if kind == CATCH_ALL:
            params[text] = "/".join(parts[index:])
            return params
        if index >= len(parts):
            return None
        if kind == LITERAL:
            if parts[index] != text:
                return None
        else:
            params[text] = parts[index]
    return params if count == len(parts) else None


# Routes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class CompiledRoute:
    """An enabled route, ready to match."""

    id: int
    method: str
    segments: tuple
    host: str | None
    script_id: int
    app_id: int = 0
    dispatch_mode: str = "sync"
    retry: dict | None = field(default=None, compare=False)

    @property
    def specificity(self):
        return tuple(kind for kind, _ in self.segments)

    @property
    def path(self):
        """Return the route's path as it was written (``/orders/:id/*rest``)."""
        marks = {LITERAL: "", PARAM: ":", CATCH_ALL: "*"}
        return "/" + "/".join(marks[kind] + text for kind, text in self.segments)


@dataclass(frozen=True)
class Match:
    route: CompiledRoute
    params: dict


@dataclass(frozen=True)
class MethodNotAllowed:
    allow: tuple


def host_rank(route_host, host):
    """Rank how a route's host applies to a request host (lower wins), or None."""
    if route_host is None:
        return (2, 0)
    if route_host.startswith("*."):
        return (1, -len(route_host)) if host_matches(route_host, host) else None
    return (0, 0) if route_host == host else None


def method_rank(route_method, method):
    """Rank how a route's method applies to a request method (lower wins), or None."""
    if route_method == method:
        return 0
    if method == "HEAD" and route_method == "GET":
        return 1
    if route_method == ANY_METHOD:
        return 2
    return None


def match_route(routes, method, host, parts):
    """Pick the route for a request: a Match, a MethodNotAllowed, or None (no route)."""
    best_key, best = None, None
    allowed = set()
    for route in routes:
        h_rank = host_rank(route.host, host)
        if h_rank is None:
            continue
        params = match_segments(route.segments, parts)
        if params is None:
            continue
        m_rank = method_rank(route.method, method)
        if m_rank is None:
            allowed.add(route.method)
            continue
        key = _rank_key(route, h_rank, m_rank)
        if best_key is None or key < best_key:
            best_key, best = key, Match(route, params)
    if best is not None:
        return best
    if allowed:
        return MethodNotAllowed(allow_header(allowed))
    return None


def _rank_key(route, h_rank, m_rank):
    # Host first, then the path segment by segment, then the method (docs/api.md §6).
    return (h_rank, route.specificity, m_rank)


@dataclass(frozen=True)
class Verdict:
    """How one route fared against a request, in words a person can check."""

    route: CompiledRoute
    chosen: bool
    reason: str
    params: dict | None = None


def explain_match(routes, method, host, parts):
    """Return a Verdict for every route, the chosen one first, then those that came close.

    The same ranking as ``match_route``, kept for a person asking why a URL reaches
    the route it does (the dashboard's "Which app answers this URL?").
    """
    ranked, others = [], []
    for route in routes:
        h_rank = host_rank(route.host, host)
        params = match_segments(route.segments, parts)
        m_rank = method_rank(route.method, method)
        if h_rank is None:
            others.append(Verdict(route, False, f"answers only on {route.host}"))
        elif params is None:
            others.append(Verdict(route, False, "its path does not match"))
        elif m_rank is None:
            others.append(Verdict(route, False, f"its path matches, but it answers {route.method}, not {method}"))
        else:
            ranked.append((_rank_key(route, h_rank, m_rank), route, params))
    ranked.sort(key=lambda item: item[0])
    verdicts = []
    for index, (key, route, params) in enumerate(ranked):
        if index == 0:
            verdicts.append(Verdict(route, True, _why_chosen(route, len(ranked)), params))
        else:
            verdicts.append(Verdict(route, False, _why_outranked(key, ranked[0][0]), params))
    return verdicts + others


def _why_chosen(route, contenders):
    if contenders == 1:
        return "the only route whose host, path and method match"
    return f"the best of {contenders} routes that match"


def _why_outranked(key, best):
    (host_rank_, specificity, method_rank_), (best_host, best_specificity, _) = key, best
    if host_rank_ != best_host:
        return "the winner names this host; a route for every host (or a wider wildcard) comes after it"
    if specificity != best_specificity:
        return "the winner's path is more specific (a literal beats :param, which beats *catch-all)"
    if method_rank_ == 2:
        return "'*' loses to a route for the exact method"
    return "HEAD falls back to GET only when no route answers HEAD itself"


def allow_header(methods):
    """Return the methods to list in ``Allow`` for routes with these methods."""
    if ANY_METHOD in methods:
        return METHODS
    methods = set(methods)
    if "GET" in methods:
        methods.add("HEAD")
    return tuple(m for m in METHODS if m in methods)
