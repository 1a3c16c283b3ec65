"""Bundles: ``/api/v1/admin/apps/{app}/bundle`` — export and apply an app's configuration (docs/api.md §17)."""
from flask import g, request

from picloud.admin_api.base import bp, json_body, requires
from picloud.auth import capabilities_of
from picloud.errors import ValidationFailed
from picloud.manager.apps import resolve_app
from picloud.manager.bundles import apply_bundle, export_bundle

FLAGS = {"true": True, "1": True, "false": False, "0": False}


def flag_arg(name):
    """Return a ``true``/``false`` query parameter (absent: false), or raise 422."""
    raw = request.args.get(name, "false").lower()
    if raw not in FLAGS:
        raise ValidationFailed(name, f"{name} must be true or false.")
    return FLAGS[raw]


@bp.get("/admin/apps/<id_or_slug>/bundle")
@requires("read")
def export_app_bundle(id_or_slug):
    """Export the app's configuration as a bundle."""
    return export_bundle(resolve_app(id_or_slug))


@bp.put("/admin/apps/<id_or_slug>/bundle")
@requires("read")
def apply_app_bundle(id_or_slug):
    """Apply a bundle to the app (each change needs its own capability), or plan it with dry_run."""
    app = resolve_app(id_or_slug)
    outcome = apply_bundle(
        app,
        json_body(),
        g.user,
        capabilities_of(g.user),
        dry_run=flag_arg("dry_run"),
        prune=flag_arg("prune"),
    )
    return outcome.to_dict()
