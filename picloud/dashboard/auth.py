"""Log in and log out."""
from urllib.parse import unquote, urlsplit

from flask import redirect, render_template, request, session, url_for
from flask_wtf.csrf import generate_csrf

from picloud.auth import authenticate
from picloud.dashboard.base import bp, log_in, login_required, session_user
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


@bp.get("/session")
def session_state():
    """Tell the page's script whether the session lives, with a fresh CSRF token."""
    user = session_user()
    if user is None:
        return {"logged_in": False}, 401, {"Cache-Control": "no-store"}
    return {"logged_in": True, "username": user.username, "csrf_token": generate_csrf()}, 200, {"Cache-Control": "no-store"}


@bp.get("/session/restored")
@login_required()
def session_restored():
    """Say that the session is back; the tab that lost it picks up where it was."""
    return render_template("auth/restored.html")


@bp.get("")
@bp.get("/")
@login_required()
def home():
    """Open the dashboard's first page: the apps list."""
    return redirect(url_for("dashboard.apps"))
