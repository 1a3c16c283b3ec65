"""The ``http`` module of scripts: checked requests, counted and recorded per run (docs/api.md §11).

A script's ``http.request{...}`` arrives here as one host call with its options
(world.lua sends a string body that is not UTF-8 as ``body_base64`` and a table body
as ``json``). Bad options and refused destinations raise ``HostError``, a Lua error the
script may catch; transport failures return ``{"error": message}``, which the script
sees as ``nil, message``; the request count and an oversized body raise ``HostLimit``
and end the run. Every call that got as far as a destination is recorded, refused
ones included.
"""
import base64
import binascii
import json
import re
import time
from urllib.parse import urlsplit, urlunsplit

from picloud.egress.client import BodyTooLarge, OutboundRequest, Refused, TransportFailure
from picloud.sandbox import HostError, HostLimit

METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
DEFAULT_TIMEOUT_MS = 10_000
MAX_URL_LENGTH = 8192
OPTIONS = frozenset({"method", "url", "headers", "body", "body_base64", "json", "timeout_ms", "follow_redirects"})
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+")
_HEADER_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_URL_BAD = re.compile(r"[\x00-\x20\x7f]")


class HttpCalls:
    """One run's outbound requests: through the process's client, counted and recorded."""

    def __init__(self, client, *, egress_hosts, limits, timeout_seconds):
        self.client = client
        self.egress_hosts = egress_hosts
        self.max_requests = limits["max_http_requests"]
        self.max_body_bytes = limits["max_string_bytes"]
        self.timeout_seconds = timeout_seconds
        self.run_deadline = None
        self.calls = []

    def begin(self):
        """Start the run's clock: no call outlives the run's timeout_seconds."""
        self.run_deadline = time.monotonic() + self.timeout_seconds

    def request(self, options):
        """Make one request for the script; return the response or ``{"error": message}``."""
        method, url, headers, body, timeout, follow = _read_options(options)
        if len(self.calls) >= self.max_requests:
            raise HostLimit("max_http_requests")
        started = time.monotonic()
        deadline = started + timeout
        if self.run_deadline is not None:
            deadline = min(deadline, self.run_deadline)
        outbound = OutboundRequest(method, url, headers, body, deadline, follow, self.max_body_bytes)
        try:
            response = self.client.send(outbound, self.egress_hosts)
        except Refused as exc:
            self._record(method, url, started, error=f"refused: {exc}")
            raise HostError(f"http.request: refused: {exc}") from None
        except TransportFailure as exc:
            self._record(method, url, started, error=str(exc))
            return {"error": str(exc)}
        except BodyTooLarge as exc:
            self._record(method, url, started, error=str(exc))
            raise HostLimit("max_string_bytes") from None
        self._record(method, url, started, status=response.status)
        return {"status": response.status, "headers": response.headers, "body": response.body}

    def _record(self, method, url, started, status=None, error=None):
        self.calls.append({
            "method": method,
            "url": url_without_query(url),
            "status": status,
            "error": error,
            "duration_ms": round((time.monotonic() - started) * 1000, 3),
        })


def url_without_query(url):
    """Return a URL without its query string and fragment, as a run records it."""
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))


def _read_options(options):
    """Check a request's options; return (method, url, headers, body, timeout s, follow)."""
    if not isinstance(options, dict):
        raise HostError("http.request: options must be a table")
    unknown = sorted(set(options) - OPTIONS)
    if unknown:
        raise HostError(f"http.request: unknown option {unknown[0]!r}")
    method = options.get("method") or "GET"
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise HostError(f"http.request: method must be one of {', '.join(sorted(METHODS))}")
    url = options.get("url")
    if not isinstance(url, str) or not url:
        raise HostError("http.request: url must be a string")
    if len(url) > MAX_URL_LENGTH or _URL_BAD.search(url):
        raise HostError("http.request: url is not valid")
    try:
        urlsplit(url).port
    except ValueError:
        raise HostError("http.request: url has an invalid port") from None
    headers = _headers(options.get("headers"))
    body, content_type = _body(options)
    if content_type and not any(name.lower() == "content-type" for name, _ in headers):
        headers += (("Content-Type", content_type),)
    return method.upper(), url, headers, body, _timeout(options.get("timeout_ms")), _follow(options)


def _headers(value):
    if value is None or value == []:
        return ()
    if not isinstance(value, dict):
        raise HostError("http.request: headers must be a table of strings")
    pairs = []
    for name, text in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise HostError(f"http.request: invalid header name {name!r}")
        if isinstance(text, (int, float)) and not isinstance(text, bool):
            text = str(text)
        if not isinstance(text, str) or _HEADER_VALUE_BAD.search(text):
            raise HostError(f"http.request: header {name} must be a string without control characters")
        try:
            text.encode("latin-1")
        except UnicodeEncodeError:
            raise HostError(f"http.request: header {name} must be Latin-1 text") from None
        pairs.append((name, text))
    return tuple(pairs)


def _body(options):
    """Return (body bytes or None, the content type a table body implies or None)."""
    sources = [key for key in ("body", "body_base64", "json") if options.get(key) is not None]
    if not sources:
        return None, None
    key = sources[0]
    value = options[key]
    if key == "body":
        if not isinstance(value, str):
            raise HostError("http.request: body must be a string or a table")
        return value.encode("utf-8", "surrogateescape"), None
    if key == "body_base64":
        try:
            return base64.b64decode(value, validate=True), None
        except (binascii.Error, ValueError, TypeError):
            raise HostError("http.request: body is not valid") from None
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8", "surrogateescape"), "application/json"


def _timeout(value):
    if value is None:
        return DEFAULT_TIMEOUT_MS / 1000
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 3_600_000:
        raise HostError("http.request: timeout_ms must be a positive number of milliseconds")
    return value / 1000


def _follow(options):
    value = options.get("follow_redirects")
    if value is None:
        return False
    if not isinstance(value, bool):
        raise HostError("http.request: follow_redirects must be true or false")
    return value
