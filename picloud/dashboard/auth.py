"""Log in and log out."""
from flask import redirect, render_template, request, session, url_for

from picloud.auth import authenticate
from picloud.dashboard import bp, log_in, login_required, session_user
from picloud.dashboard.forms import ConfirmForm, LoginForm
from picloud.errors import TooManyRequests, Unauthorized


def _safe_next(target):
    # Only local dashboard paths: never an open redirect to another site.
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return url_for("dashboard.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form and log the user in."""
    form = LoginForm()
    error = None
    status = 200
    if form.validate_on_submit():
        try:
            user = authenticate(form.username.data, form.password.data)
        except TooManyRequests as exc:
            error, status = exc.message, 429
        except Unauthorized as exc:
            error, status = exc.message, 401
        else:
            log_in(user)
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "GET" and session_user():
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form, error=error), status


@bp.post("/logout")
def logout():
    """Log out and go back to the login page."""
    ConfirmForm().validate_on_submit()  # CSRF is checked for every POST already
    session.clear()
    return redirect(url_for("dashboard.login"))


@bp.get("")
@bp.get("/")
@login_required()
def home():
    """Open the dashboard's first page: the apps list."""
    return redirect(url_for("dashboard.apps"))
