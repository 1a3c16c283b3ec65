"""Secrets: ``/api/v1/admin/apps/{app}/secrets`` (docs/api.md §12). Values go in, never out."""
from picloud.admin_api.base import bp, json_body, requires
from picloud.errors import NotFound, ValidationFailed
from picloud.manager import reject_unknown
from picloud.manager.apps import resolve_app_id
from picloud.manager.secrets import check_name, delete_secret, list_secrets, put_secret


@bp.get("/admin/apps/<id_or_slug>/secrets")
@requires("read")
def list_app_secrets(id_or_slug):
    """List an app's secret names with their dates."""
    return {"secrets": [secret.to_dict() for secret in list_secrets(resolve_app_id(id_or_slug))]}


@bp.put("/admin/apps/<id_or_slug>/secrets/<name>")
@requires("secrets.manage")
def put_app_secret(id_or_slug, name):
    """Set or replace a secret's value."""
    app_id = resolve_app_id(id_or_slug)
    body = json_body()
    reject_unknown(body, ("value",))
    return put_secret(app_id, name, body.get("value")).to_dict()


@bp.delete("/admin/apps/<id_or_slug>/secrets/<name>")
@requires("secrets.manage")
def delete_app_secret(id_or_slug, name):
    """Delete a secret."""
    app_id = resolve_app_id(id_or_slug)
    try:
        check_name(name)
    except ValidationFailed:
        raise NotFound("No such secret.") from None
    delete_secret(app_id, name)
    return "", 204
