"""The Settings tab: name and description, rename through a confirm dialog, delete."""
from flask import request, url_for

from picloud.dashboard import bp, login_required, notify
from picloud.dashboard.apps import app_page, describe_error, go_to, render_tab, show_error
from picloud.dashboard.forms import AppDetailsForm, ConfirmForm, DeleteAppForm, RenameForm, SecretForm
from picloud.errors import Conflict, NotFound, ValidationFailed
from picloud.manager.apps import check_slug, delete_app, update_app
from picloud.manager.secrets import delete_secret, list_secrets, put_secret


def _render(app, status=200, details=None, rename=None, delete=None, check=None, saved=False, secret=None):
    return render_tab(
        app,
        "settings",
        "settings/index.html",
        status=status,
        details=details or AppDetailsForm(formdata=None, name=app.name, description=app.description),
        rename=rename or RenameForm(formdata=None),
        delete=delete or DeleteAppForm(formdata=None),
        result=check,
        saved=saved,
        secrets=list_secrets(app.id),
        secret_form=secret or SecretForm(formdata=None),
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
