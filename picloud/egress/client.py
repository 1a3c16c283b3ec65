"""One outbound request, made by the web process for a script (docs/api.md §11).

The host is resolved once and every address it resolves to is checked; the connection
then goes to the checked address, so a name cannot resolve one way for the check and
another for the connection (DNS rebinding). TLS keeps the URL's host for SNI and
certificate verification, and ``Host`` stays the URL's host. Each redirect hop is a
new destination, checked again. Bodies are bounded while they are read, and the whole
call, redirects included, ends at its deadline.

urllib3 does the HTTP; under gevent's monkey-patching (both entry points) its sockets
and the resolver yield, so a run waiting on the network holds no CPU.
"""
import ipaddress
import socket
import ssl
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

import certifi
import urllib3
from urllib3 import exceptions as http_errors

from picloud.egress.policy import host_permitted, is_public

MAX_REDIRECTS = 5
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})
DEFAULT_PORTS = {"http": 80, "https": 443}
READ_CHUNK = 64 * 1024
# Connection pools kept for reuse, one per (scheme, address, port, TLS name). A pool
# keeps up to CONNECTIONS_PER_POOL idle connections; more concurrent calls open more
# and close the extra ones after use (at most one call per executor is in flight).
KEPT_POOLS = 64
CONNECTIONS_PER_POOL = 16
# Headers the client sets itself: a script's own would contradict the request.
_OWN_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection"})
# Headers that must not follow a redirect to another origin.
_CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})


class Refused(Exception):
    """The destination is not allowed."""


class TransportFailure(Exception):
    """The request failed on the way (DNS, connection, TLS, timeout, redirects)."""


class BodyTooLarge(Exception):
    """The response body is larger than the caller may receive."""


@dataclass(frozen=True)
class OutboundRequest:
    method: str
    url: str
    headers: tuple  # ((name, value), ...)
    body: bytes | None
    deadline: float  # time.monotonic() at which the call fails with a timeout
    follow_redirects: bool
    max_body_bytes: int


@dataclass(frozen=True)
class OutboundResponse:
    status: int
    headers: dict  # lower-case names; repeated headers joined with ", "
    body: bytes


@dataclass(frozen=True)
class Destination:
    scheme: str
    hostname: str
    port: int
    address: ipaddress.IPv4Address | ipaddress.IPv6Address
    target: str  # path and query string
    host_header: str


class EgressClient:
    """Make checked outbound requests; one per process, shared by every run."""

    def __init__(self, allow, resolve=socket.getaddrinfo):
        self.allow = allow
        self._resolve = resolve
        self._pools = OrderedDict()
        self._lock = threading.Lock()
        self._tls = ssl.create_default_context(cafile=certifi.where())

    def send(self, request, egress_hosts=None):
        """Send a request, following redirects if asked; return an OutboundResponse.

        Raises Refused, TransportFailure or BodyTooLarge.
        """
        url, method, body = request.url, request.method, request.body
        headers = [(name, value) for name, value in request.headers if name.lower() not in _OWN_HEADERS]
        for hop in range(MAX_REDIRECTS + 1):
            destination = self.destination(url, egress_hosts)
            response, location = self._exchange(destination, method, headers, body, request)
            if location is None or not request.follow_redirects:
                return response
            if hop == MAX_REDIRECTS:
                break
            next_url = urljoin(url, location)
            if response.status == 303 or (response.status in (301, 302) and method not in ("GET", "HEAD")):
                method, body = "GET", None
                headers = [(n, v) for n, v in headers if n.lower() not in ("content-type",)]
            if _origin(next_url) != _origin(url):
                headers = [(n, v) for n, v in headers if n.lower() not in _CREDENTIAL_HEADERS]
            url = next_url
        raise TransportFailure("too many redirects")

    def destination(self, url, egress_hosts=None):
        """Check a URL and resolve its host once; return the Destination to connect to."""
        parts = _split(url)
        hostname = _ascii_host(parts.hostname)
        if not host_permitted(hostname, egress_hosts):
            raise Refused(f"{hostname} is not in this app's egress_hosts")
        try:
            port = parts.port or DEFAULT_PORTS[parts.scheme]
        except ValueError:
            raise Refused("the URL has an invalid port") from None
        address = self._checked_address(hostname, port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        shown = f"[{hostname}]" if ":" in hostname else hostname
        host_header = shown if port == DEFAULT_PORTS[parts.scheme] else f"{shown}:{port}"
        return Destination(parts.scheme, hostname, port, address, target, host_header)

    def _checked_address(self, hostname, port):
        addresses = self._addresses(hostname, port)
        for address in addresses:
            if not is_public(address) and not self.allow.allows(hostname, address, port):
                raise Refused(f"{hostname} resolves to {address}, which is not a public address")
        return addresses[0]

    def _addresses(self, hostname, port):
        """Return every address of a host: an address in its canonical form as it is,
        any other spelling or name through the resolver."""
        try:
            return [ipaddress.ip_address(hostname)]
        except ValueError:
            pass
        try:
            found = self._resolve(hostname, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError, OSError):
            raise TransportFailure(f"could not resolve {hostname}") from None
        addresses = []
        for _family, _type, _proto, _name, sockaddr in found:
            address = ipaddress.ip_address(sockaddr[0].partition("%")[0])
            if address not in addresses:
                addresses.append(address)
        if not addresses:
            raise TransportFailure(f"could not resolve {hostname}")
        return addresses

    def _exchange(self, destination, method, headers, body, request):
        """Make one request; return (OutboundResponse, redirect location or None)."""
        remaining = request.deadline - time.monotonic()
        if remaining <= 0:
            raise TransportFailure("timeout")
        pool = self._pool(destination)
        sent = [("Host", destination.host_header), *headers]
        try:
            raw = pool.urlopen(
                method,
                destination.target,
                body=body,
                headers=dict(sent),
                redirect=False,
                retries=False,
                assert_same_host=False,
                preload_content=False,
                decode_content=False,
                timeout=urllib3.Timeout(connect=remaining, read=remaining),
            )
        except Exception as exc:
            raise TransportFailure(_failure_text(exc)) from None
        location = raw.headers.get("location") if raw.status in REDIRECT_STATUSES else None
        if location is not None and request.follow_redirects:
            raw.close()  # its body is of no use: do not read it
            return OutboundResponse(raw.status, {}, b""), location
        body = _read_bounded(raw, request.deadline, request.max_body_bytes)
        return OutboundResponse(raw.status, _headers(raw.headers), body), location

    def _pool(self, destination):
        key = (destination.scheme, str(destination.address), destination.port, destination.hostname)
        with self._lock:
            pool = self._pools.get(key)
            if pool is not None:
                self._pools.move_to_end(key)
                return pool
            pool = self._new_pool(destination)
            self._pools[key] = pool
            evicted = self._pools.popitem(last=False)[1] if len(self._pools) > KEPT_POOLS else None
        if evicted is not None:
            evicted.close()
        return pool

    def _new_pool(self, destination):
        common = {
            "host": str(destination.address),
            "port": destination.port,
            "maxsize": CONNECTIONS_PER_POOL,
            "block": False,
            "retries": False,
        }
        if destination.scheme == "http":
            return urllib3.HTTPConnectionPool(**common)
        return urllib3.HTTPSConnectionPool(
            **common,
            server_hostname=destination.hostname,
            assert_hostname=destination.hostname,
            ssl_context=self._tls,
            cert_reqs="CERT_REQUIRED",
        )

    def close(self):
        with self._lock:
            pools, self._pools = list(self._pools.values()), OrderedDict()
        for pool in pools:
            pool.close()


def _split(url):
    try:
        parts = urlsplit(url)
    except ValueError:
        raise Refused("the URL is not valid") from None
    if parts.scheme not in DEFAULT_PORTS:
        raise Refused("only http and https URLs can be called")
    if not parts.hostname:
        raise Refused("the URL has no host")
    if parts.username is not None or parts.password is not None:
        raise Refused("credentials in the URL are not supported; send an Authorization header")
    return parts


def _ascii_host(hostname):
    host = hostname.rstrip(".")
    if host.isascii():
        return host
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        raise Refused("the URL's host is not a valid name") from None


def _origin(url):
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or DEFAULT_PORTS.get(parts.scheme)


def _read_bounded(raw, deadline, max_bytes):
    declared = raw.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > max_bytes:
        raw.close()
        raise BodyTooLarge(f"the response body has {declared} bytes")
    chunks, size = [], 0
    try:
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TransportFailure("timeout")
            _set_read_timeout(raw, remaining)
            # read1: what has arrived, so a body dripping in cannot outlast the deadline.
            chunk = raw.read1(READ_CHUNK)
            if not chunk:
                break
            size += len(chunk)
            if size > max_bytes:
                raise BodyTooLarge(f"the response body is over {max_bytes} bytes")
            chunks.append(chunk)
    except (BodyTooLarge, TransportFailure):
        raw.close()
        raise
    except Exception as exc:
        raw.close()
        raise TransportFailure(_failure_text(exc)) from None
    raw.release_conn()
    return b"".join(chunks)


def _set_read_timeout(raw, seconds):
    # The read timeout applies per receive: shorten it so the whole body ends at the deadline.
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(max(seconds, 0.001))


def _headers(headers):
    return {name.lower(): headers.get(name) for name in headers}


def _failure_text(exc):
    """Return a short message for a transport failure."""
    # Before the timeouts: urllib3's NewConnectionError is a ConnectTimeoutError.
    if isinstance(exc, http_errors.NewConnectionError):
        if isinstance(exc.__context__, ConnectionRefusedError) or "refused" in str(exc).lower():
            return "connection refused"
        return "could not connect"
    if isinstance(exc, (http_errors.ConnectTimeoutError, http_errors.ReadTimeoutError, socket.timeout, TimeoutError)):
        return "timeout"
    if isinstance(exc, http_errors.SSLError) or isinstance(getattr(exc, "reason", None), http_errors.SSLError):
        reason = getattr(exc, "reason", exc)
        return f"TLS error: {reason}"
    if isinstance(exc, http_errors.ProtocolError):
        return "connection reset" if "reset" in str(exc).lower() else "the connection broke off"
    if isinstance(exc, http_errors.MaxRetryError) and exc.reason is not None:
        return _failure_text(exc.reason)
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return "connection reset"
    return "the request failed"
