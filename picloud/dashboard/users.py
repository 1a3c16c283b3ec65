"""The Users page (capability ``users.manage``)."""
from flask import render_template

from picloud.auth import create_user, delete_user, update_user
from picloud.dashboard.base import bp, login_required, notify, render_partial_or_page
from picloud.dashboard.forms import ConfirmForm, RoleForm, UserForm
from picloud.errors import Conflict, NotFound, ValidationFailed
from picloud.models import User


def _get_user(user_id):
    user = User.get_or_none(User.id == user_id)
    if user is None:
        raise NotFound("No such user.")
    return user


def _render(form=None, error=None, status=200):
    context = dict(
        users=User.select().order_by(User.username),
        form=form or UserForm(formdata=None),
        confirm=ConfirmForm(),
        error=error,
    )
    return render_partial_or_page("users/index.html", "users/_list.html", **context), status


@bp.get("/users")
@login_required("users.manage")
def users():
    """List users with a form to add one."""
    return render_template(
        "users/index.html",
        users=User.select().order_by(User.username),
        form=UserForm(),
        confirm=ConfirmForm(),
        error=None,
    )


@bp.post("/users")
@login_required("users.manage")
def add_user():
    """Create a user."""
    form = UserForm()
    if not form.validate_on_submit():
        return _render(form, status=422)
    try:
        create_user(form.username.data, form.password.data, form.role.data)
    except (Conflict, ValidationFailed) as exc:
        return _render(form, error=exc.message, status=exc.status)
    notify(f"Added the {form.role.data} {form.username.data}.")
    return _render()


@bp.post("/users/<id:user_id>/role")
@login_required("users.manage")
def change_role(user_id):
    """Change a user's role."""
    form = RoleForm()
    if not form.validate_on_submit():
        return _render(error="Pick a valid role.", status=422)
    user = _get_user(user_id)
    try:
        update_user(user, role=form.role.data)
    except Conflict as exc:
        return _render(error=exc.message, status=exc.status)
    notify(f"{user.username} is now {form.role.data}.")
    return _render()


@bp.post("/users/<id:user_id>/delete")
@login_required("users.manage")
def remove_user(user_id):
    """Delete a user."""
    user = _get_user(user_id)
    try:
        delete_user(user)
    except Conflict as exc:
        return _render(error=exc.message, status=exc.status)
    notify(f"Deleted the user {user.username}.")
    return _render()
