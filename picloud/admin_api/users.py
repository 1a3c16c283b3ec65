"""User management: ``/api/v1/admin/users`` (capability ``users.manage``)."""
from picloud.admin_api.base import bp, json_body, paginate, requires
from picloud.auth import create_user, delete_user, update_user
from picloud.errors import NotFound, ValidationFailed
from picloud.manager import reject_unknown
from picloud.models import User

_EDITABLE = ("username", "password", "role")


def _get_user(user_id):
    user = User.get_or_none(User.id == user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


@bp.get("/admin/users")
@requires("users.manage")
def list_users():
    """List users."""
    users, next_cursor = paginate(User.select(), User.id)
    return {"users": [u.to_dict() for u in users], "next_cursor": next_cursor}


@bp.post("/admin/users")
@requires("users.manage")
def create():
    """Create a user."""
    body = json_body()
    reject_unknown(body, _EDITABLE)
    user = create_user(body.get("username"), body.get("password"), body.get("role", "developer"))
    return user.to_dict(), 201


@bp.get("/admin/users/<id:user_id>")
@requires("users.manage")
def show(user_id):
    """Show one user."""
    return _get_user(user_id).to_dict()


@bp.patch("/admin/users/<id:user_id>")
@requires("users.manage")
def update(user_id):
    """Change a user's username, password or role."""
    body = json_body()
    reject_unknown(body, _EDITABLE)
    for field in _EDITABLE:
        if field in body and body[field] is None:
            raise ValidationFailed(field, f"{field} cannot be null.")
    user = update_user(_get_user(user_id), **{k: body[k] for k in _EDITABLE if k in body})
    return user.to_dict()


@bp.delete("/admin/users/<id:user_id>")
@requires("users.manage")
def delete(user_id):
    """Delete a user and revoke their tokens."""
    delete_user(_get_user(user_id))
    return "", 204
