"""Tokens and the caller's identity: ``/api/v1/auth/*``."""
from flask import g

from picloud.admin_api.base import authenticate_bearer, bp, json_body, paginate
from picloud.auth import authenticate, capabilities_of, issue_token
from picloud.errors import NotFound, ValidationFailed
from picloud.models import ApiToken

MAX_TOKEN_NAME = 100


def _token_name(body):
    name = body.get("name", "API token")
    if not isinstance(name, str) or not 1 <= len(name.strip()) <= MAX_TOKEN_NAME or "\x00" in name:
        raise ValidationFailed("name", f"name must be 1-{MAX_TOKEN_NAME} characters.")
    return name.strip()


@bp.post("/auth/token")
def create_token():
    """Exchange a username and password for a new API token."""
    body = json_body()
    name = _token_name(body)
    user = authenticate(body.get("username"), body.get("password"))
    row, token = issue_token(user, name)
    return {**row.to_dict(), "token": token}, 201


@bp.get("/auth/me")
def me():
    """Describe the caller and their capabilities."""
    user = authenticate_bearer()
    return {
        "user": {"id": user.id, "username": user.username, "role": user.role},
        "capabilities": sorted(capabilities_of(user)),
    }


@bp.get("/auth/tokens")
def list_tokens():
    """List the caller's own API tokens (never their secrets)."""
    g.user = authenticate_bearer()
    query = ApiToken.select().where(ApiToken.user == g.user)
    tokens, next_cursor = paginate(query, ApiToken.id)
    return {"tokens": [t.to_dict() for t in tokens], "next_cursor": next_cursor}


@bp.delete("/auth/tokens/<id:token_id>")
def revoke_token(token_id):
    """Revoke one of the caller's own API tokens."""
    g.user = authenticate_bearer()
    deleted = (
        ApiToken.delete()
        .where(ApiToken.id == token_id, ApiToken.user == g.user)
        .execute()
    )
    if not deleted:
        raise NotFound("No such token.")
    return "", 204
