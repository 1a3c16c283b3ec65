"""Cached lookups for user traffic: the domain table, apps, each app's routes, scripts.

Each lookup loads from the database on a miss and is then served from the process's
``ConfigCache`` until a configuration change drops it.
"""
from dataclasses import dataclass

from picloud.models import App, Domain, Route, Script
from picloud.routing.cache import cache
from picloud.routing.match import CompiledRoute, DomainTable, parse_path


@dataclass(frozen=True)
class AppInfo:
    id: int
    slug: str


@dataclass(frozen=True)
class ScriptSnapshot:
    """What running a script needs, detached from the database row."""

    id: int
    app_id: int
    name: str
    version: int
    source: str
    timeout_seconds: int
    sandbox: dict

    @classmethod
    def of(cls, script):
        """Return a snapshot of a Script row (or the snapshot itself)."""
        if isinstance(script, cls):
            return script
        return cls(
            id=script.id,
            app_id=script.app_id,
            name=script.name,
            version=script.version,
            source=script.source,
            timeout_seconds=script.timeout_seconds,
            sandbox=dict(script.sandbox or {}),
        )


def domain_table():
    """Return the DomainTable of every claim."""
    return cache.get("domains", _load_domains)


def app_info(app_id):
    """Return AppInfo for an app id, or None."""
    return cache.get(("app", app_id), lambda: _load_app(app_id))


def app_routes(app_id):
    """Return the app's enabled routes, compiled."""
    return cache.get(("routes", app_id), lambda: _load_routes(app_id))


def script(script_id):
    """Return a ScriptSnapshot, or None if the script is gone."""
    return cache.get(("script", script_id), lambda: _load_script(script_id))


def _load_domains():
    return DomainTable.build(Domain.select(Domain.pattern, Domain.app).tuples())


def _load_app(app_id):
    row = App.select(App.id, App.slug).where(App.id == app_id).tuples().first()
    return AppInfo(*row) if row else None


def _load_routes(app_id):
    rows = Route.select().where(Route.app == app_id, Route.enabled == True).order_by(Route.id)  # noqa: E712
    return tuple(
        CompiledRoute(
            id=row.id,
            app_id=row.app_id,
            method=row.method,
            segments=parse_path(row.path),
            host=row.host,
            script_id=row.script_id,
            dispatch_mode=row.dispatch_mode,
            retry=row.retry,
        )
        for row in rows
    )


def _load_script(script_id):
    row = Script.get_or_none(Script.id == script_id)
    return ScriptSnapshot.of(row) if row else None
