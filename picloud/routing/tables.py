"""The routing tables of user traffic: every domain claim, and each app's compiled routes.

Each is loaded from the database on a miss and then served from the process's
configuration cache (``picloud.cache``) until a configuration change drops it.
"""
from picloud.cache import cache
from picloud.models import Domain, Route
from picloud.routing.match import CompiledRoute, DomainTable, parse_path


def domain_table():
    """Return the DomainTable of every claim."""
    return cache.get("domains", _load_domains)


def app_routes(app_id):
    """Return the app's enabled routes, compiled."""
    return cache.get(("routes", app_id), lambda: _load_routes(app_id))


def _load_domains():
    return DomainTable.build(Domain.select(Domain.pattern, Domain.app).tuples())


def _load_routes(app_id):
    rows = Route.select().where(Route.app == app_id, Route.enabled == True).order_by(Route.id)  # noqa: E712
    return tuple(compile_route(row) for row in rows)


def compile_route(row):
    """Return a Route row ready to match."""
    return CompiledRoute(
        id=row.id,
        app_id=row.app_id,
        method=row.method,
        segments=parse_path(row.path),
        host=row.host,
        script_id=row.script_id,
        dispatch_mode=row.dispatch_mode,
        retry=row.retry,
    )
