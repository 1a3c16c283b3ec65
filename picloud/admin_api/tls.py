"""Caddy's on-demand TLS question: ``GET /api/v1/tls/ask?domain=NAME`` (docs/api.md §16).

No authentication: Caddy asks before it requests a certificate for a name it has not
seen, and the answer only says whether some app claims the name — which anyone can
learn by sending a request with that ``Host``.
"""
from flask import request

from picloud.admin_api.base import bp
from picloud.errors import BadRequest, NotFound
from picloud.routing import tables
from picloud.routing.match import normalize_host


@bp.get("/tls/ask")
def ask():
    """Answer 200 when an app claims the domain (exactly or by a wildcard), else 404."""
    raw = request.args.get("domain", "")
    if not raw.strip():
        raise BadRequest("Give the name to check as ?domain=NAME.")
    if tables.domain_table().resolve(normalize_host(raw)) is None:
        raise NotFound("No app claims this domain.", code="unknown_host")
    return {"domain": normalize_host(raw), "claimed": True}
