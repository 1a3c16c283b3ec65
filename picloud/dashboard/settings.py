"""The Settings tab: name and description, max_concurrency, rename through a confirm dialog,
secrets, export and import of the app's bundle (upload, review the plan, confirm), delete."""
import json

from flask import Response, g, request, url_for

from picloud.auth import capabilities_of
from picloud.dashboard.base import bp, login_required, notify
from picloud.dashboard.apps import app_page, describe_error, go_to, render_tab, show_error
from picloud.dashboard.forms import (
    AppDetailsForm,
    ConcurrencyForm,
    ConfirmForm,
    ConfirmImportForm,
    DeleteAppForm,
    ImportBundleForm,
    RenameForm,
    SecretForm,
)
from picloud.errors import Conflict, Forbidden, NotFound, ValidationFailed
from picloud.manager.apps import check_slug, delete_app, update_app
from picloud.manager.bundles import CAPABILITIES, apply_bundle, export_bundle
from picloud.manager.secrets import delete_secret, list_secrets, put_secret


def _render(app, status=200, details=None, concurrency=None, rename=None, delete=None, check=None, saved=False,
            secret=None, importer=None):
    return render_tab(
        app,
        "settings",
        "settings/index.html",
        status=status,
        details=details or AppDetailsForm(formdata=None, name=app.name, description=app.description),
        concurrency=concurrency or ConcurrencyForm(formdata=None, max_concurrency=app.max_concurrency),
        rename=rename or RenameForm(formdata=None),
        delete=delete or DeleteAppForm(formdata=None),
        result=check,
        saved=saved,
        secrets=list_secrets(app.id),
        secret_form=secret or SecretForm(formdata=None),
        importer=importer or ImportBundleForm(formdata=None),
        can_import=bool(set(CAPABILITIES.values()) & capabilities_of(g.user)),
    )


@bp.get("/apps/<slug>/settings")
@login_required()
@app_page
def app_settings(app):
    """Show the app's settings."""
    return _render(app, saved=request.args.get("saved") == "1")


@bp.post("/apps/<slug>/settings")
@login_required("apps.manage")
@app_page
def save_app_details(app):
    """Change the app's name and description."""
    form = AppDetailsForm()
    if not form.validate_on_submit():
        return _render(app, 422, details=form)
    try:
        update_app(app, name=form.name.data, description=form.description.data)
    except ValidationFailed as exc:
        show_error(form, exc, "name")
        return _render(app, exc.status, details=form)
    return go_to(url_for("dashboard.app_settings", slug=app.slug, saved=1))


@bp.post("/apps/<slug>/settings/concurrency")
@login_required("apps.manage")
@app_page
def save_max_concurrency(app):
    """Set or clear the app's max_concurrency."""
    form = ConcurrencyForm()
    if not form.validate_on_submit():
        return _render(app, 422, concurrency=form)
    try:
        update_app(app, max_concurrency=form.max_concurrency.data)
    except ValidationFailed as exc:
        show_error(form, exc, "max_concurrency")
        return _render(app, exc.status, concurrency=form)
    return go_to(url_for("dashboard.app_settings", slug=app.slug, saved=1))


@bp.post("/apps/<slug>/settings/slug-check")
@login_required("apps.manage")
@app_page
def check_rename_slug(app):
    """Tell whether the app may take a slug, and offer the confirm dialog if it may."""
    slug = request.form.get("slug", "").strip()
    return render_tab(
        app,
        "settings",
        "settings/_rename_check.html",
        result=check_slug(slug, app=app) if slug else None,
    )


@bp.post("/apps/<slug>/settings/rename")
@login_required("apps.manage")
@app_page
def rename_app(app):
    """Give the app a new slug; the old one keeps redirecting here."""
    form = RenameForm()
    if not form.validate_on_submit():
        return _render(app, 422, rename=form)
    new_slug = form.slug.data
    try:
        renamed = update_app(app, slug=new_slug, force=form.force.data)
    except (Conflict, ValidationFailed) as exc:
        show_error(form, exc, "slug")
        return _render(app, exc.status, rename=form, check=check_slug(new_slug, app=app))
    notify(f"Renamed {app.slug} to {renamed.slug}; {app.slug} now redirects here.")
    return go_to(url_for("dashboard.app_settings", slug=renamed.slug))


@bp.post("/apps/<slug>/settings/delete")
@login_required("apps.manage")
@app_page
def remove_app(app):
    """Delete the app and everything it owns, once its slug is typed to confirm."""
    form = DeleteAppForm()
    if not form.validate_on_submit():
        return _render(app, 422, delete=form)
    if form.confirm_slug.data != app.slug:
        form.confirm_slug.errors.append(f"Type {app.slug} exactly to delete this app.")
        return _render(app, 422, delete=form)
    try:
        delete_app(app)
    except Conflict as exc:
        form.confirm_slug.errors.append(describe_error(exc))
        return _render(app, exc.status, delete=form)
    notify(f"Deleted the app {app.slug} and everything it owned.")
    return go_to(url_for("dashboard.apps"))


@bp.post("/apps/<slug>/settings/secrets")
@login_required("secrets.manage")
@app_page
def set_secret(app):
    """Set or replace a secret; its value is never shown again."""
    form = SecretForm()
    if not form.validate_on_submit():
        return _render(app, 422, secret=form)
    try:
        put_secret(app.id, form.name.data, form.value.data)
    except ValidationFailed as exc:
        show_error(form, exc, "value")
        return _render(app, exc.status, secret=form)
    return go_to(url_for("dashboard.app_settings", slug=app.slug) + "#secrets")


@bp.post("/apps/<slug>/settings/secrets/<name>/delete")
@login_required("secrets.manage")
@app_page
def remove_secret(app, name):
    """Delete a secret."""
    form = ConfirmForm()
    if not form.validate_on_submit():
        return _render(app, 400)
    try:
        delete_secret(app.id, name)
    except NotFound:
        pass  # already gone: the list shows the truth
    return go_to(url_for("dashboard.app_settings", slug=app.slug) + "#secrets")


@bp.get("/apps/<slug>/settings/export")
@login_required()
@app_page
def export_app_bundle(app):
    """Download the app's configuration as a bundle file."""
    body = json.dumps(export_bundle(app), indent=2, ensure_ascii=False) + "\n"
    disposition = f'attachment; filename="{app.slug}.bundle.json"'
    return Response(body, mimetype="application/json", headers={"Content-Disposition": disposition})


@bp.post("/apps/<slug>/settings/import")
@login_required()
@app_page
def plan_import(app):
    """Read an uploaded bundle and show what importing it would change; change nothing yet."""
    form = ImportBundleForm()
    if not form.validate_on_submit():
        return _render(app, 422, importer=form)
    try:
        bundle = json.loads(form.bundle.data.read().decode("utf-8"))
    except (UnicodeError, ValueError) as exc:
        form.bundle.errors = [f"The file is not a JSON bundle: {exc}"]
        return _render(app, 422, importer=form)
    text = json.dumps(bundle, ensure_ascii=False)
    return _import_outcome(app, form, text, bundle, prune=form.prune.data, dry_run=True)


@bp.post("/apps/<slug>/settings/import/confirm")
@login_required()
@app_page
def confirm_import(app):
    """Apply the bundle whose plan was shown."""
    form = ConfirmImportForm()
    importer = ImportBundleForm(formdata=None)
    if not form.validate_on_submit():
        return _render(app, 400, importer=importer)
    try:
        bundle = json.loads(form.bundle.data)
    except ValueError:
        return _render(app, 400, importer=importer)
    return _import_outcome(app, importer, form.bundle.data, bundle, prune=form.prune.data == "y", dry_run=False)


def _import_outcome(app, importer, text, bundle, *, prune, dry_run):
    """Plan or apply a bundle; show the plan, or the problem next to the upload form."""
    try:
        outcome = apply_bundle(app, bundle, g.user, capabilities_of(g.user), dry_run=dry_run, prune=prune)
    except (ValidationFailed, Forbidden) as exc:
        field = exc.extra.get("field")
        importer.bundle.errors = [f"{field}: {describe_error(exc)}" if field else describe_error(exc)]
        return _render(app, exc.status, importer=importer)
    counts = {action: 0 for action in ("create", "update", "delete", "keep")}
    for step in outcome.plan:
        counts[step.action] += 1
    confirm = ConfirmImportForm(formdata=None, bundle=text, prune="y" if prune else "")
    return render_tab(
        app, "settings", "settings/import.html",
        plan=outcome.plan, counts=counts, applied=outcome.applied, confirm=confirm, prune=prune,
    )
