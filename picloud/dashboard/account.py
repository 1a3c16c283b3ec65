"""The Account page: the user's password and API tokens."""
from flask import g, render_template

from picloud.auth import hash_password, issue_token, verify_password
from picloud.dashboard.base import bp, log_in, login_required, render_partial_or_page
from picloud.dashboard.forms import ConfirmForm, PasswordForm, TokenForm
from picloud.errors import NotFound
from picloud.models import ApiToken, utcnow


def _tokens():
    return ApiToken.select().where(ApiToken.user == g.user).order_by(ApiToken.id.desc())


@bp.get("/account")
@login_required()
def account():
    """Show the account page."""
    return render_template(
        "account/index.html",
        tokens=_tokens(),
        token_form=TokenForm(),
        password_form=PasswordForm(),
        confirm=ConfirmForm(),
    )


@bp.post("/account/tokens")
@login_required()
def create_token():
    """Create an API token and show it once."""
    form = TokenForm()
    new_token = None
    if form.validate_on_submit():
        _, new_token = issue_token(g.user, form.name.data.strip())
        form = TokenForm(formdata=None)
    return render_partial_or_page(
        "account/index.html",
        "account/_tokens.html",
        tokens=_tokens(),
        token_form=form,
        new_token=new_token,
        password_form=PasswordForm(formdata=None),
        confirm=ConfirmForm(),
    )


@bp.post("/account/tokens/<id:token_id>/revoke")
@login_required()
def revoke_token(token_id):
    """Revoke one of the user's tokens."""
    deleted = ApiToken.delete().where(ApiToken.id == token_id, ApiToken.user == g.user).execute()
    if not deleted:
        raise NotFound("No such token.")
    return render_partial_or_page(
        "account/index.html",
        "account/_tokens.html",
        tokens=_tokens(),
        token_form=TokenForm(formdata=None),
        password_form=PasswordForm(formdata=None),
        confirm=ConfirmForm(),
    )


@bp.post("/account/password")
@login_required()
def change_password():
    """Change the user's own password."""
    form = PasswordForm()
    message = None
    if form.validate_on_submit():
        if not verify_password(g.user, form.current.data):
            form.current.errors = ["Wrong password."]
        else:
            g.user.password_hash = hash_password(form.password.data)
            g.user.updated_at = utcnow()
            g.user.save()
            log_in(g.user)  # keep this session; others end with the old fingerprint
            message = "Password changed."
            form = PasswordForm(formdata=None)
    return render_partial_or_page(
        "account/index.html", "account/_password.html", password_form=form, message=message,
        tokens=_tokens(), token_form=TokenForm(formdata=None), confirm=ConfirmForm(),
    )
