"""The Routes tab: method + path (+ host) -> script, sync or async, on or off."""
from picloud.dashboard import bp, login_required
from picloud.dashboard.apps import app_page, describe_error, render_tab, show_error
from picloud.dashboard.forms import RouteForm
from picloud.errors import Conflict, NotFound, ValidationFailed
from picloud.manager.routes import create_route, delete_route, route_urls, update_route
from picloud.models import Domain, Route, Script


def route_form(app, **kwargs):
    """Return a RouteForm whose host and script choices are the app's own."""
    form = RouteForm(**kwargs)
    patterns = Domain.select(Domain.pattern).where(Domain.app == app).order_by(Domain.pattern)
    form.host.choices = [("", "any claimed host")] + [(d.pattern, d.pattern) for d in patterns]
    scripts = Script.select(Script.id, Script.name).where(Script.app == app).order_by(Script.name)
    form.script_id.choices = [(s.id, s.name) for s in scripts]
    return form


def app_routes(app):
    """Return the app's routes with their script names and the URLs they answer on."""
    names = dict(Script.select(Script.id, Script.name).where(Script.app == app).tuples())
    listed = []
    for route in Route.select().where(Route.app == app).order_by(Route.path, Route.method):
        item = route.to_dict()
        item["script_name"] = names.get(item["script_id"], "?")
        item["urls"] = route_urls(route)
        listed.append(item)
    return listed


def _render(app, form=None, error=None, status=200):
    return render_tab(
        app,
        "routes",
        "routes/index.html",
        "routes/_list.html",
        status=status,
        routes=app_routes(app),
        form=form or route_form(app, formdata=None),
        error=error,
    )


def _get_route(app, route_id):
    route = Route.get_or_none((Route.id == route_id) & (Route.app == app))
    if route is None:
        raise NotFound("No such route.")
    return route


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
    data = {
        "method": form.method.data,
        "path": form.path.data,
        "host": form.host.data or None,
        "script_id": form.script_id.data,
        "dispatch_mode": form.dispatch_mode.data,
        "enabled": form.enabled.data,
    }
    try:
        create_route(app, data)
    except (Conflict, ValidationFailed) as exc:
        show_error(form, exc, "path")
        return _render(app, form, status=exc.status)
    return _render(app)


@bp.post("/apps/<slug>/routes/<int:route_id>/toggle")
@login_required("routes.manage")
@app_page
def toggle_route(app, route_id):
    """Turn a route on or off."""
    route = _get_route(app, route_id)
    try:
        update_route(route, {"enabled": not route.enabled})
    except (Conflict, ValidationFailed) as exc:
        return _render(app, error=describe_error(exc), status=exc.status)
    return _render(app)


@bp.post("/apps/<slug>/routes/<int:route_id>/delete")
@login_required("routes.manage")
@app_page
def remove_route(app, route_id):
    """Delete a route."""
    delete_route(_get_route(app, route_id))
    return _render(app)
