"""Log in and log out."""
from urllib.parse import unquote, urlsplit

from flask import redirect, render_template, request, session, url_for

from picloud.auth import authenticate
from picloud.dashboard import bp, log_in, login_required, session_user
from picloud.dashboard.forms import ConfirmForm, LoginForm
from picloud.errors import TooManyRequests, Unauthorized


def _safe_next(target):
    # Only local dashboard paths: never an open redirect to another site, nor a path that
    # climbs out of /admin ("/admin/../..//evil" resolves to "//evil"; browsers read a
    # backslash as a slash and "%2e%2e" as "..").
    parts = urlsplit(target or "")
    segments = unquote(parts.path).split("/")
    if (
        not parts.scheme
        and not parts.netloc
        and segments[:2] == ["", "admin"]
        and ".." not in segments
        and "\\" not in unquote(target)
    ):
        return target
    return url_for("dashboard.home")


@bp.route("/login", methods=["GET", "POST"])
def login():
    """Show the login form and log the user in."""
    form = LoginForm()
    error = None
    status = 200
    headers = {}
    if form.validate_on_submit():
        try:
            user = authenticate(form.username.data, form.password.data)
        except (TooManyRequests, Unauthorized) as exc:
            error, status, headers = exc.message, exc.status, exc.headers  # 429 keeps its Retry-After
        else:
            log_in(user)
            return redirect(_safe_next(request.args.get("next")))
    elif request.method == "GET" and session_user():
        return redirect(_safe_next(request.args.get("next")))
    return render_template("auth/login.html", form=form, error=error), status, headers


@bp.post("/logout")
def logout():
    """Log out and go back to the login page."""
    ConfirmForm().validate_on_submit()  # CSRF is checked for every POST already
    user = session_user()
    if user is not None:
        user.end_sessions()
    session.clear()
    return redirect(url_for("dashboard.login"))


@bp.get("")
@bp.get("/")
@login_required()
def home():
    """Open the dashboard's first page: the apps list."""
    return redirect(url_for("dashboard.apps"))
