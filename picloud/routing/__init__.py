"""Host → app → route resolution (pure, in ``match``), its caches, and user traffic."""
from picloud import db as database
from picloud.services import services


def init_app(app):
    """Register the user-traffic catch-all (last of all parts) and the cache listener."""
    from picloud.routing import cache, traffic

    if database.is_postgres():
        services(app).add(cache.ConfigListener(database.db.obj.url))
    traffic.init_app(app)
