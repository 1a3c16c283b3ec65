"""Domain claims: ``/api/v1/admin/apps/{app}/domains`` (docs/api.md §4)."""
from picloud.admin_api.base import bp, json_body, paginate, requires
from picloud.manager import reject_unknown
from picloud.manager.apps import resolve_app
from picloud.manager.domains import add_domain, delete_domain
from picloud.models import Domain


@bp.get("/admin/apps/<id_or_slug>/domains")
@requires("read")
def list_domains(id_or_slug):
    """List the app's domain claims."""
    app = resolve_app(id_or_slug)
    domains, next_cursor = paginate(Domain.for_app(app).order_by(), Domain.id)
    return {"domains": [d.to_dict() for d in domains], "next_cursor": next_cursor}


@bp.post("/admin/apps/<id_or_slug>/domains")
@requires("domains.manage")
def claim_domain(id_or_slug):
    """Claim a host or wildcard for the app."""
    app = resolve_app(id_or_slug)
    body = json_body()
    reject_unknown(body, ("pattern",))
    return add_domain(app, body.get("pattern")).to_dict(), 201


@bp.delete("/admin/apps/<id_or_slug>/domains/<id:domain_id>")
@requires("domains.manage")
def release_domain(id_or_slug, domain_id):
    """Release one of the app's claims."""
    delete_domain(resolve_app(id_or_slug), domain_id)
    return "", 204
