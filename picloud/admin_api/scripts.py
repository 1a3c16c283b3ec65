"""Scripts and their versions: ``/api/v1/admin/scripts`` (docs/api.md §5)."""
from flask import g, request

from picloud.admin_api.base import bp, json_body, paginate, requires
from picloud.errors import NotFound, ValidationFailed
from picloud.manager.apps import FormerSlug, resolve_app
from picloud.manager.scripts import (
    create_script,
    delete_script,
    restore_version,
    script_version,
    script_versions,
    update_script,
)
from picloud.models import Script


def get_script(script_id):
    """Return a script by id, or raise 404."""
    script = Script.get_or_none(Script.id == script_id)
    if script is None:
        raise NotFound("No such script.")
    return script


@bp.get("/admin/scripts")
@requires("read")
def list_scripts():
    """List the scripts of an app (``?app=``), or of every app, without their source."""
    query = Script.select(*[f for f in Script._meta.sorted_fields if f is not Script.source])
    if request.args.get("app"):
        query = query.where(Script.app == resolve_app(request.args["app"]))
    scripts, next_cursor = paginate(query, Script.id)
    return {"scripts": [s.to_dict(with_source=False) for s in scripts], "next_cursor": next_cursor}


@bp.post("/admin/scripts")
@requires("scripts.manage")
def add_script():
    """Create a script (compile-checked)."""
    body = json_body()
    app_id = body.get("app_id")
    if app_id is None or isinstance(app_id, bool) or not isinstance(app_id, (int, str)):
        raise ValidationFailed("app_id", "app_id is required: the id or slug of the app.")
    try:
        app = resolve_app(app_id)
    except NotFound:
        raise ValidationFailed("app_id", "No such app.") from None
    except FormerSlug as exc:
        raise ValidationFailed("app_id", f"{exc.slug!r} is a former slug; the app is now {exc.app.slug!r}.") from None
    return create_script(app, body, g.user).to_dict(), 201


@bp.get("/admin/scripts/<id:script_id>")
@requires("read")
def show_script(script_id):
    """Show a script with its source."""
    return get_script(script_id).to_dict()


@bp.patch("/admin/scripts/<id:script_id>")
@requires("scripts.manage")
def change_script(script_id):
    """Change a script; a new source becomes a new version."""
    return update_script(get_script(script_id), json_body(), g.user).to_dict()


@bp.delete("/admin/scripts/<id:script_id>")
@requires("scripts.manage")
def remove_script(script_id):
    """Delete a script no route or trigger uses."""
    delete_script(get_script(script_id))
    return "", 204


@bp.get("/admin/scripts/<id:script_id>/versions")
@requires("read")
def list_versions(script_id):
    """List a script's versions, newest first."""
    return {"versions": [v.to_dict() for v in script_versions(get_script(script_id))]}


@bp.get("/admin/scripts/<id:script_id>/versions/<id:n>")
@requires("read")
def show_version(script_id, n):
    """Show one version with its source."""
    return script_version(get_script(script_id), n).to_dict(with_source=True)


@bp.post("/admin/scripts/<id:script_id>/versions/<id:n>:restore")
@requires("scripts.manage")
def restore_script_version(script_id, n):
    """Make an old version's source the current one (as a new version)."""
    return restore_version(get_script(script_id), n, g.user).to_dict()
