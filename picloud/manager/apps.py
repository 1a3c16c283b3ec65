"""Apps: slugs and their history, creation, renames, deletion, counts and activity."""
import re

from peewee import IntegrityError

from picloud import executions
from picloud.cache import cache, config_change
from picloud.db import connection
from picloud.errors import Conflict, NotFound, ValidationFailed
from picloud.manager import bool_field, is_id, reject_unknown, text_field
from picloud.manager.domains import normalize_pattern
from picloud.models import App, AppSlugHistory, Domain, Execution, Route, RunCount, RunDuration, RunHour, Script, ScriptVersion, utcnow

SLUG_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
RESERVED_SLUGS = frozenset({"admin", "api", "internal", "__internal__"})
DEFAULT_SLUG = "default"
DEFAULT_HOSTS = ("localhost", "127.0.0.1")
NAME_MAX = 200
MAX_EGRESS_HOSTS = 100
DESCRIPTION_MAX = 4000
# The largest max_concurrency the column holds (a 32-bit integer on both databases).
MAX_CONCURRENCY_MAX = 2**31 - 1

HELLO_SOURCE = 'return "Hello from PiCloud!"\n'


class FormerSlug(Exception):
    """The slug is a former slug of an app; answer with a redirect to its current one."""

    def __init__(self, app, slug):
        super().__init__(f"{slug!r} is a former slug of {app.slug!r}")
        self.app = app
        self.slug = slug


def resolve_app(id_or_slug):
    """Return the app with this id or live slug; FormerSlug or NotFound otherwise."""
    if isinstance(id_or_slug, int) and not isinstance(id_or_slug, bool):
        app = App.get_or_none(App.id == id_or_slug) if is_id(id_or_slug) else None
        if app is None:
            raise NotFound("No such app.")
        return app
    key = str(id_or_slug)
    if key.isascii() and key.isdigit() and len(key) < 19:
        app = App.get_or_none(App.id == int(key))
        if app is not None:
            return app
    if len(key) > 63 or "\x00" in key:
        raise NotFound("No such app.")
    app = App.by_slug(key)
    if app is not None:
        return app
    former = (
        AppSlugHistory.select(AppSlugHistory, App)
        .join(App)
        .where(AppSlugHistory.slug == key)
        .first()
    )
    if former is not None:
        raise FormerSlug(former.app, key)
    raise NotFound("No such app.")


def resolve_app_id(id_or_slug):
    """Return the id of the app with this id or live slug, as ``resolve_app`` finds it.

    Served from the configuration cache (every app change is a configuration change),
    for the data plane's admin endpoints, which need nothing of the app but its id.
    """
    key = str(id_or_slug)
    app_id = cache.get(("app_id", key), lambda: _live_app_id(key), exact=True)
    if app_id is None:
        return resolve_app(id_or_slug).id  # raises FormerSlug or NotFound
    return app_id


def _live_app_id(key):
    try:
        return resolve_app(key).id
    except (FormerSlug, NotFound):
        return None


def check_slug(slug, app=None):
    """Tell whether a new app (or ``app``, renamed) may take ``slug``: the slug:check body."""
    result = {"slug": slug, "available": False, "reason": None, "held_by": None, "requires_force": False}
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        result["reason"] = "invalid"
    elif slug in RESERVED_SLUGS:
        result["reason"] = "reserved"
    else:
        holder = App.by_slug(slug)
        former = None if holder else _history_row(slug)
        if holder is not None and (app is None or holder.id != app.id):
            result.update(reason="taken", held_by=_held_by(holder))
        elif former is not None and (app is None or former.app_id != app.id):
            result.update(reason="in_history", held_by=_held_by(former.app), requires_force=True)
    result["available"] = result["reason"] is None
    return result


def create_app(slug, name=None, description=None, force=False):
    """Create an app; 422 for a bad slug, 409 slug_taken or slug_in_history."""
    _validate_slug(slug)
    name = text_field("name", name, max_length=NAME_MAX) or slug
    description = text_field("description", description, max_length=DESCRIPTION_MAX, default="")
    force = bool_field("force", force, default=False)
    try:
        with config_change():
            _take_slug(slug, None, force)
            return App.create(slug=slug, name=name, description=description)
    except IntegrityError:
        raise _slug_taken(slug) from None


def update_app(app, **fields):
    """Change an app's name, description, egress hosts, max_concurrency or slug (recording the old slug in history)."""
    reject_unknown(fields, ("name", "description", "slug", "force", "egress_hosts", "max_concurrency"))
    force = bool_field("force", fields.get("force"), default=False)
    changes = clean_app_fields(app, fields)
    new_slug = fields.get("slug")
    if "slug" in fields and new_slug != app.slug:
        _validate_slug(new_slug)
        if app.slug == DEFAULT_SLUG:
            raise Conflict("The default app cannot be renamed.", code="default_app")
        changes["slug"] = new_slug
    try:
        with config_change():
            if "slug" in changes:
                _take_slug(new_slug, app, force)
                AppSlugHistory.create(app=app, slug=app.slug)
            changes["updated_at"] = utcnow()
            App.update(**changes).where(App.id == app.id).execute()
    except IntegrityError:
        raise _slug_taken(new_slug) from None
    return App.get_by_id(app.id)


def clean_app_fields(app, fields):
    """Check the app's own fields (not its slug) present in ``fields``; return them as stored."""
    changes = {}
    if "egress_hosts" in fields:
        changes["egress_hosts"] = egress_hosts_field(fields["egress_hosts"])
    if "name" in fields:
        changes["name"] = text_field("name", fields["name"], max_length=NAME_MAX) or app.slug
    if "description" in fields:
        changes["description"] = text_field("description", fields["description"], max_length=DESCRIPTION_MAX, default="")
    if "max_concurrency" in fields:
        changes["max_concurrency"] = max_concurrency_field(fields["max_concurrency"])
    return changes


def egress_hosts_field(value):
    """Return a validated ``egress_hosts`` list (host names, ``*.`` wildcards), or None."""
    if value is None:
        return None
    if not isinstance(value, list) or len(value) > MAX_EGRESS_HOSTS:
        raise ValidationFailed("egress_hosts", f"egress_hosts must be null or a list of at most {MAX_EGRESS_HOSTS} host names.")
    hosts = []
    for index, raw in enumerate(value):
        try:
            pattern, _ = normalize_pattern(raw)
        except ValidationFailed as exc:
            raise ValidationFailed(f"egress_hosts[{index}]", exc.message) from None
        if pattern not in hosts:
            hosts.append(pattern)
    return hosts


def max_concurrency_field(value):
    """Check an app's max_concurrency: an integer of at least 1, or null for none."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= MAX_CONCURRENCY_MAX:
        raise ValidationFailed(
            "max_concurrency", f"max_concurrency must be null or an integer from 1 to {MAX_CONCURRENCY_MAX}."
        )
    return value


def delete_app(app):
    """Delete an app and everything it owns, table by table, in one transaction."""
    if app.slug == DEFAULT_SLUG:
        raise Conflict("The default app cannot be deleted.", code="default_app")
    # Before: wait out a log batch being written; after: drop runs that ended meanwhile.
    executions.forget_app(app.id)
    with config_change():
        for delete in _OWNED_DELETES:
            delete(app.id)
        App.delete().where(App.id == app.id).execute()
    executions.forget_app(app.id)


# Deletes of everything an app owns, children before parents. Other parts append
# theirs (triggers, data, outbox, dead letters) with ``owned_by_app``.
_OWNED_DELETES = [
    lambda app_id: Execution.delete().where(Execution.app_id == app_id).execute(),
    lambda app_id: RunCount.delete().where(RunCount.app_id == app_id).execute(),
    lambda app_id: RunDuration.delete().where(RunDuration.app_id == app_id).execute(),
    lambda app_id: RunHour.delete().where(RunHour.app_id == app_id).execute(),
    lambda app_id: Route.delete().where(Route.app == app_id).execute(),
    lambda app_id: ScriptVersion.delete().where(ScriptVersion.app == app_id).execute(),
    lambda app_id: Script.delete().where(Script.app == app_id).execute(),
    lambda app_id: Domain.delete().where(Domain.app == app_id).execute(),
    lambda app_id: AppSlugHistory.delete().where(AppSlugHistory.app == app_id).execute(),
]


def owned_by_app(delete):
    """Register ``delete(app_id)`` to run first when an app is deleted."""
    _OWNED_DELETES.insert(0, delete)
    return delete


def app_counts(app, activity):
    """Return the numbers the app overview shows; ``activity`` is its last 24 Hours."""
    return {
        "scripts": Script.for_app(app).count(),
        "routes": Route.for_app(app).count(),
        "domains": Domain.for_app(app).count(),
        "executions_24h": sum(hour.runs for hour in activity),
        "errors_24h": sum(hour.errors for hour in activity),
        "overloaded_24h": sum(hour.overloaded for hour in activity),
    }


def ensure_default_app():
    """Create the ``default`` app if missing; give it the hello route if it has no scripts.

    Safe when several workers start at once: the unique slug, claims and script name
    let exactly one of them win, and the losers' transactions roll back whole.
    """
    app = App.by_slug(DEFAULT_SLUG)
    if app is None:
        try:
            with config_change():
                app = App.create(slug=DEFAULT_SLUG, name="Default", description="Serves localhost.")
                for host in DEFAULT_HOSTS:
                    if not Domain.select().where(Domain.pattern == host).exists():
                        Domain.create(app=app, pattern=host, kind="exact")
        except IntegrityError:
            app = App.by_slug(DEFAULT_SLUG)
    if app is None or Script.for_app(app).exists():
        return app
    try:
        with config_change():
            script = Script.create(app=app, name="hello", source=HELLO_SOURCE, description="Hello World.")
            ScriptVersion.create(app=app, script=script, version=1, source=HELLO_SOURCE)
            Route.create(app=app, method="GET", path="/", script=script)
    except IntegrityError:
        pass  # another worker created it first
    return app


def _validate_slug(slug):
    if not isinstance(slug, str) or not SLUG_RE.match(slug):
        raise ValidationFailed(
            "slug", "A slug is 1-63 lowercase letters, digits or hyphens, not starting or ending with a hyphen."
        )
    if slug in RESERVED_SLUGS:
        raise ValidationFailed("slug", f"The slug {slug!r} is reserved.", reason="reserved")


def _take_slug(slug, app, force):
    """Make ``slug`` free for ``app`` (None: a new app), or raise 409."""
    holder = App.by_slug(slug)
    if holder is not None and (app is None or holder.id != app.id):
        raise _slug_taken(slug, holder)
    former = _history_row(slug)
    if former is None:
        return
    if app is None or former.app_id != app.id:
        if not force:
            raise Conflict(
                f"The slug {slug!r} is a former slug of another app; send force to take it.",
                code="slug_in_history",
                held_by=_held_by(former.app),
            )
    # Taking the slug ends its redirect, whether the app takes back its own or forces.
    AppSlugHistory.delete().where(AppSlugHistory.id == former.id).execute()


def _history_row(slug):
    return (
        AppSlugHistory.select(AppSlugHistory, App)
        .join(App)
        .where(AppSlugHistory.slug == slug)
        .first()
    )


def _held_by(app):
    return {"id": app.id, "slug": app.slug}


def _slug_taken(slug, holder=None):
    holder = holder or App.by_slug(slug)
    extra = {"held_by": _held_by(holder)} if holder else {}
    return Conflict(f"The slug {slug!r} is taken.", code="slug_taken", **extra)


def init_app(app):
    """Make sure the default app exists (and says hello on a fresh install)."""
    with app.app_context(), connection():
        ensure_default_app()
