"""The saved login and the HTTP client: the only part of the command that talks to a server."""
import dataclasses
import json
import os
import pathlib
import urllib.error
import urllib.parse
import urllib.request

TIMEOUT_SECONDS = 60
# Redirects followed per call: a former app slug answers 308 to its current one.
MAX_REDIRECTS = 5
PAGE_LIMIT = 500


class ApiError(Exception):
    """The server answered with an error, or could not be reached."""

    def __init__(self, message, *, status=None, code=None, field=None):
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.field = field


@dataclasses.dataclass(frozen=True)
class Login:
    """Where the server is and the API token to send it (None before ``picloud login``)."""

    url: str
    token: str | None


@dataclasses.dataclass(frozen=True)
class Response:
    """A server's answer: status, headers and the body's bytes."""

    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body.decode("utf-8")) if self.body else None


def config_path(environ):
    """Return the saved login's file: ``$XDG_CONFIG_HOME/picloud/config.json``."""
    base = environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return pathlib.Path(base) / "picloud" / "config.json"


def load_login(environ):
    """Return the login to use: PICLOUD_URL and PICLOUD_TOKEN over the saved one, or None."""
    saved = {}
    path = config_path(environ)
    if path.exists():
        try:
            saved = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ApiError(f"Cannot read the saved login {path}: {exc}") from None
    url = environ.get("PICLOUD_URL") or saved.get("url")
    if not url:
        return None
    token = environ.get("PICLOUD_TOKEN")
    # The saved token belongs to the saved server: never send it to another one.
    if token is None and normalize_url(url) == normalize_url(saved.get("url") or ""):
        token = saved.get("token")
    return Login(normalize_url(url), token)


def save_login(login, environ):
    """Write the login where ``load_login`` finds it, readable by its owner only (0600)."""
    path = config_path(environ)
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an older file keeps its mode through O_CREAT
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump({"url": login.url, "token": login.token}, out, indent=2)
        out.write("\n")
    return path


def normalize_url(url):
    """Return a server's base URL without a trailing slash (http:// when no scheme is given)."""
    url = url.strip()
    if "://" not in url:
        url = "http://" + url
    return url.rstrip("/")


class _KeepRedirects(urllib.request.HTTPRedirectHandler):
    """Hand redirects back to the client, which follows them keeping method and body."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


_OPENER = urllib.request.build_opener(_KeepRedirects)


class Client:
    """Calls to one server's API with one token."""

    def __init__(self, login):
        self.login = login

    def request(self, method, path, *, query=None, body=None, data=None, timeout=TIMEOUT_SECONDS):
        """Send one call (``body`` as JSON, or ``data`` as bytes) and return its Response."""
        url = self.login.url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        headers = {"Accept": "application/json"}
        if self.login.token:
            headers["Authorization"] = f"Bearer {self.login.token}"
        if body is not None:
            data = json.dumps(body).encode("utf-8")
        if data is not None:
            headers["Content-Type"] = "application/json"
        for _ in range(MAX_REDIRECTS + 1):
            response = self._send(urllib.request.Request(url, data=data, headers=headers, method=method), timeout)
            location = response.headers.get("location")
            if response.status not in (307, 308) or not location:
                return response
            url = self._same_server(urllib.parse.urljoin(url, location))
        raise ApiError(f"Too many redirects from {self.login.url + path}.")

    def call(self, method, path, **kwargs):
        """Send one call and return its JSON body; raise ApiError for an error answer."""
        response = self.request(method, path, **kwargs)
        if response.status >= 400:
            raise error_of(response)
        try:
            return response.json()
        except ValueError:
            raise ApiError(f"The server answered {response.status} with a body that is not JSON.") from None

    def every(self, path, key, query=None):
        """Return every item of a listing, following ``next_cursor`` page by page."""
        query = {"limit": PAGE_LIMIT, **(query or {})}
        items = []
        while True:
            page = self.call("GET", path, query=query)
            items.extend(page[key])
            if not page.get("next_cursor"):
                return items
            query["cursor"] = page["next_cursor"]

    def _send(self, request, timeout):
        try:
            with _OPENER.open(request, timeout=timeout) as answer:
                return Response(answer.status, _headers(answer.headers), answer.read())
        except urllib.error.HTTPError as answer:
            with answer:
                return Response(answer.code, _headers(answer.headers), answer.read())
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"Cannot reach {self.login.url}: {reason}") from None

    def _same_server(self, url):
        if not url.startswith(self.login.url + "/"):
            raise ApiError(f"The server redirected to another server ({url}); not following.")
        return url


def _headers(message):
    return {name.lower(): value for name, value in message.items()}


def error_of(response):
    """Return the ApiError for an error answer, with the message the API gave."""
    try:
        error = response.json()["error"]
        return ApiError(error["message"], status=response.status, code=error.get("code"), field=error.get("field"))
    except (ValueError, TypeError, KeyError):
        return ApiError(f"The server answered {response.status}.", status=response.status)


def app_path(app, *rest):
    """Return ``/api/v1/admin/apps/{app}/...`` with each part URL-encoded."""
    parts = ["api", "v1", "admin", "apps", app, *rest]
    return "/" + "/".join(urllib.parse.quote(str(part), safe="") for part in parts)
