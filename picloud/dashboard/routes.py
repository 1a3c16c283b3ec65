"""The Routes tab: method + path (+ host) -> script, sync or async, on or off.

Each route is a table row that edits in place: its Edit button swaps the row for a form
(``routes/_edit_row.html``), Save answers the updated row (``routes/_row.html``) or the
form with its errors, and Cancel fetches the row again. Without JavaScript the same
links and forms answer the whole tab, with the row being edited shown as its form.
"""
from flask import redirect, render_template, request, url_for

from picloud.dashboard.base import bp, login_required, notify
from picloud.dashboard.apps import app_page, describe_error, render_tab, show_error
from picloud.dashboard.forms import RouteForm
from picloud.errors import Conflict, NotFound, ValidationFailed
from picloud.manager.routes import create_route, delete_route, route_urls, update_route
from picloud.models import Domain, Route, Script


def route_form(app, route=None, **kwargs):
    """Return a RouteForm whose script choices are the app's own; for ``route``, its edit
    form, holding the route's settings where the request did not post new ones."""
    form = RouteForm(obj=route, **kwargs)
    scripts = Script.select(Script.id, Script.name).where(Script.app == app).order_by(Script.name)
    form.script_id.choices = [(s.id, s.name) for s in scripts]
    if route is not None:  # one page may hold several route forms: keep their ids apart
        for field in form:
            field.id = f"route-{route.id}-{field.name}"
    return form


def claimed_hosts(app):
    """Return the app's claimed domain patterns, offered as values for a route's host."""
    return [d.pattern for d in Domain.select(Domain.pattern).where(Domain.app == app).order_by(Domain.pattern)]


def route_item(route, script_names):
    """Return a route as the templates show it: its fields, script name and preview URLs."""
    item = route.to_dict()
    item["script_name"] = script_names.get(item["script_id"], "?")
    item["urls"] = route_urls(route)
    return item


def app_routes(app):
    """Return the app's routes with their script names and the URLs they answer on."""
    names = dict(Script.select(Script.id, Script.name).where(Script.app == app).tuples())
    return [
        route_item(route, names)
        for route in Route.select().where(Route.app == app).order_by(Route.path, Route.method)
    ]


def _render(app, form=None, error=None, status=200, editing=None, edit_form=None):
    return render_tab(
        app,
        "routes",
        "routes/index.html",
        "routes/_list.html",
        status=status,
        routes=app_routes(app),
        form=form or route_form(app, formdata=None),
        hosts=claimed_hosts(app),
        error=error,
        editing=editing,
        edit_form=edit_form,
    )


def _render_row(app, route, edit_form=None, status=200):
    """Render one route's row (as its form when ``edit_form`` is given) for htmx, else the tab."""
    if not request.htmx:
        return _render(app, status=status, editing=route.id if edit_form else None, edit_form=edit_form)
    names = dict(Script.select(Script.id, Script.name).where(Script.app == app).tuples())
    template = "routes/_edit_row.html" if edit_form else "routes/_row.html"
    body = render_template(template, app=app, route=route_item(route, names), edit_form=edit_form)
    return body, status


def _get_route(app, route_id):
    route = Route.get_or_none((Route.id == route_id) & (Route.app == app))
    if route is None:
        raise NotFound("No such route.")
    return route


def _submitted(form):
    """Return a route form's fields as the manager takes them."""
    return {
        "method": form.method.data,
        "path": form.path.data,
        "host": form.host.data or None,
        "script_id": form.script_id.data,
        "dispatch_mode": form.dispatch_mode.data,
        "enabled": form.enabled.data,
    }


@bp.get("/apps/<slug>/routes")
@login_required()
@app_page
def routes(app):
    """List the app's routes with the full URLs they answer on, and a form to add one."""
    return _render(app)


@bp.post("/apps/<slug>/routes")
@login_required("routes.manage")
@app_page
def add_route(app):
    """Create a route."""
    form = route_form(app)
    if not form.validate_on_submit():
        return _render(app, form, status=422)
    try:
        create_route(app, _submitted(form))
    except (Conflict, ValidationFailed) as exc:
        show_error(form, exc, "path")
        return _render(app, form, status=exc.status)
    return _render(app)


@bp.get("/apps/<slug>/routes/<id:route_id>")
@login_required()
@app_page
def route_row(app, route_id):
    """Show a route's row (what Cancel brings back)."""
    return _render_row(app, _get_route(app, route_id))


@bp.get("/apps/<slug>/routes/<id:route_id>/edit")
@login_required("routes.manage")
@app_page
def edit_route(app, route_id):
    """Show a route's row as a form holding its current settings."""
    route = _get_route(app, route_id)
    return _render_row(app, route, edit_form=route_form(app, route, formdata=None))


@bp.post("/apps/<slug>/routes/<id:route_id>/edit")
@login_required("routes.manage")
@app_page
def save_route(app, route_id):
    """Change a route with the same checks as the admin API; errors stay on the form."""
    route = _get_route(app, route_id)
    form = route_form(app, route)
    if not form.validate_on_submit():
        return _render_row(app, route, edit_form=form, status=422)
    try:
        route = update_route(route, _submitted(form))
    except (Conflict, ValidationFailed) as exc:
        show_error(form, exc, "path")
        return _render_row(app, route, edit_form=form, status=exc.status)
    if not request.htmx:
        return redirect(url_for("dashboard.routes", slug=app.slug), 303)
    return _render_row(app, route)


@bp.post("/apps/<slug>/routes/<id:route_id>/toggle")
@login_required("routes.manage")
@app_page
def toggle_route(app, route_id):
    """Turn a route on or off."""
    route = _get_route(app, route_id)
    try:
        update_route(route, {"enabled": not route.enabled})
    except (Conflict, ValidationFailed) as exc:
        return _render(app, error=describe_error(exc), status=exc.status)
    notify(f"{'Disabled' if route.enabled else 'Enabled'} {route.method} {route.path}.")
    return _render(app)


@bp.post("/apps/<slug>/routes/<id:route_id>/delete")
@login_required("routes.manage")
@app_page
def remove_route(app, route_id):
    """Delete a route."""
    route = _get_route(app, route_id)
    delete_route(route)
    notify(f"Deleted the route {route.method} {route.path}.")
    return _render(app)
