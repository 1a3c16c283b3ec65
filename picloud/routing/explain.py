"""Why a URL reaches the app, route and script it does: user traffic's rules, explained.

The dashboard's "Which app answers this URL?" box asks here. It applies the same
tables and ranking as user traffic (``match.py``), and adds the disabled routes so a
person sees them passed over too.
"""
from dataclasses import dataclass
from urllib.parse import urlsplit

from picloud.models import App, Route, Script
from picloud.routing import tables
from picloud.routing.match import (
    METHODS,
    MethodNotAllowed,
    Verdict,
    explain_match,
    match_route,
    normalize_host,
    split_request_path,
)


class UnreadableUrl(ValueError):
    """The text is not a URL with a host."""


@dataclass(frozen=True)
class Explanation:
    """What answers a URL: the claim and app, and every route's verdict."""

    method: str
    host: str
    path: str
    claim: str | None = None
    app: App | None = None
    verdicts: tuple = ()
    disabled: tuple = ()
    script_names: dict | None = None
    allow: tuple = ()  # the Allow header of a 405, when the path matches but no method does

    @property
    def chosen(self):
        return next((verdict for verdict in self.verdicts if verdict.chosen), None)


def explain_url(url, method="GET"):
    """Return an Explanation for a request of ``method`` to ``url``; raise UnreadableUrl."""
    method = method.upper() if method and method.upper() in METHODS else "GET"
    text = url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    host = normalize_host(parts.netloc.rpartition("@")[2])
    if parts.scheme not in ("http", "https") or host is None:
        raise UnreadableUrl("Paste a URL such as https://shop.example.com/orders/7.")
    path = parts.path or "/"
    claim = tables.domain_table().claim_for(host)
    if claim is None:
        return Explanation(method, host, path)
    pattern, app_id = claim
    app = App.get_by_id(app_id)
    routes = Route.select().where(Route.app == app_id).order_by(Route.id)
    enabled = [tables.compile_route(route) for route in routes if route.enabled]
    parts = split_request_path(path)
    answer = match_route(enabled, method, host, parts)
    return Explanation(
        method,
        host,
        path,
        claim=pattern,
        app=app,
        verdicts=tuple(explain_match(enabled, method, host, parts)),
        disabled=tuple(Verdict(tables.compile_route(route), False, "disabled") for route in routes if not route.enabled),
        script_names=dict(Script.select(Script.id, Script.name).where(Script.app == app_id).tuples()),
        allow=answer.allow if isinstance(answer, MethodNotAllowed) else (),
    )
