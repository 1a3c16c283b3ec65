"""Apps: ``/api/v1/admin/apps`` — CRUD, slug checks, former-slug redirects (docs/api.md §4)."""
from urllib.parse import quote, urlencode

from flask import request
from werkzeug.wrappers import Response

from picloud.admin_api.base import bp, json_body, paginate, requires
from picloud.manager import reject_unknown
from picloud.manager.apps import FormerSlug, check_slug, create_app, delete_app, resolve_app, update_app
from picloud.models import App, Domain

APPS_PREFIX = "/api/v1/admin/apps/"


@bp.errorhandler(FormerSlug)
def redirect_former_slug(exc):
    """Answer 308 to the same URL with the app's current slug."""
    raw = request.environ.get("RAW_URI") or quote(request.path, safe="/:@!$&'()*+,;=-._~")
    path = raw.partition("?")[0]
    query = request.query_string.decode("latin-1")
    if path.startswith(APPS_PREFIX):
        _, sep, tail = path[len(APPS_PREFIX):].partition("/")
        path = APPS_PREFIX + exc.app.slug + sep + tail
    elif request.args.get("app") == exc.slug:
        args = request.args.to_dict(flat=False)
        args["app"] = [exc.app.slug]
        query = urlencode(args, doseq=True)
    location = path + ("?" + query if query else "")
    return Response(status=308, headers={"Location": location})


@bp.get("/admin/apps")
@requires("read")
def list_apps():
    """List apps with their domains."""
    apps, next_cursor = paginate(App.select(), App.id)
    domains = {}
    if apps:
        for domain in Domain.select().where(Domain.app.in_([a.id for a in apps])).order_by(Domain.id):
            domains.setdefault(domain.app_id, []).append(domain)
    return {"apps": [a.to_dict(domains.get(a.id, [])) for a in apps], "next_cursor": next_cursor}


@bp.post("/admin/apps")
@requires("apps.manage")
def add_app():
    """Create an app."""
    body = json_body()
    reject_unknown(body, ("slug", "name", "description", "force"))
    app = create_app(body.get("slug"), body.get("name"), body.get("description"), body.get("force", False))
    return app.to_dict(), 201


@bp.post("/admin/apps/slug:check")
@requires("apps.manage")
def check_new_slug():
    """Tell whether a new app may take a slug."""
    return check_slug(json_body().get("slug"))


@bp.get("/admin/apps/<id_or_slug>")
@requires("read")
def show_app(id_or_slug):
    """Show one app."""
    return resolve_app(id_or_slug).to_dict()


@bp.patch("/admin/apps/<id_or_slug>")
@requires("apps.manage")
def change_app(id_or_slug):
    """Rename an app or change its name, description or max_concurrency."""
    app = resolve_app(id_or_slug)
    return update_app(app, **json_body()).to_dict()


@bp.delete("/admin/apps/<id_or_slug>")
@requires("apps.manage")
def remove_app(id_or_slug):
    """Delete an app and everything it owns."""
    delete_app(resolve_app(id_or_slug))
    return "", 204


@bp.post("/admin/apps/<id_or_slug>/slug:check")
@requires("apps.manage")
def check_rename(id_or_slug):
    """Tell whether an app may be renamed to a slug."""
    app = resolve_app(id_or_slug)
    return check_slug(json_body().get("slug"), app)
