"""Routes: ``/api/v1/admin/apps/{app}/routes`` and ``/api/v1/admin/routes/{id}`` (docs/api.md §6)."""
from picloud.admin_api.base import bp, json_body, paginate, requires
from picloud.errors import NotFound
from picloud.manager.apps import resolve_app
from picloud.manager.routes import create_route, delete_route, update_route
from picloud.models import Route


def get_route(route_id):
    route = Route.get_or_none(Route.id == route_id)
    if route is None:
        raise NotFound("No such route.")
    return route


@bp.get("/admin/apps/<id_or_slug>/routes")
@requires("read")
def list_routes(id_or_slug):
    """List the app's routes."""
    routes, next_cursor = paginate(Route.for_app(resolve_app(id_or_slug)), Route.id)
    return {"routes": [r.to_dict() for r in routes], "next_cursor": next_cursor}


@bp.post("/admin/apps/<id_or_slug>/routes")
@requires("routes.manage")
def add_route(id_or_slug):
    """Create a route in the app."""
    return create_route(resolve_app(id_or_slug), json_body()).to_dict(), 201


@bp.get("/admin/routes/<id:route_id>")
@requires("read")
def show_route(route_id):
    """Show a route."""
    return get_route(route_id).to_dict()


@bp.patch("/admin/routes/<id:route_id>")
@requires("routes.manage")
def change_route(route_id):
    """Change a route."""
    return update_route(get_route(route_id), json_body()).to_dict()


@bp.delete("/admin/routes/<id:route_id>")
@requires("routes.manage")
def remove_route(route_id):
    """Delete a route."""
    delete_route(get_route(route_id))
    return "", 204
