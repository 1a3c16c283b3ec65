"""The dashboard's blueprint and session: logging in, capabilities, toasts, htmx answers.

A person logs in with a username and password; the session cookie carries the user id,
a fingerprint of the password hash (changing a password ends other sessions) and the
user's session epoch (logging out moves it on, ending every session of that user, so
a copy of the cookie taken before is worthless).
"""
import functools
import hashlib
import json

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for

from picloud.auth import capabilities_of
from picloud.errors import BadRequest, Forbidden, Unauthorized, handle_http_exception
from picloud.models import User

bp = Blueprint("dashboard", __name__, url_prefix="/admin")


def password_fingerprint(user):
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


def log_in(user):
    session.clear()
    session["user_id"] = user.id
    session["pw"] = password_fingerprint(user)
    session["epoch"] = user.session_epoch


def session_user():
    """Return the logged-in user, or None."""
    user_id = session.get("user_id")
    if user_id is None:
        return None
    user = User.get_or_none(User.id == user_id)
    if user is None or session.get("pw") != password_fingerprint(user) or session.get("epoch") != user.session_epoch:
        session.clear()
        return None
    return user


def login_required(capability="read"):
    """Require a logged-in user holding ``capability`` (a 403 page otherwise)."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            g.user = session_user()
            if g.user is None:
                if request.htmx:
                    return session_ended()
                return redirect(url_for("dashboard.login", next=request.full_path.rstrip("?")))
            if capability not in capabilities_of(g.user):
                raise Forbidden(capability)
            return view(*args, **kwargs)

        return wrapper

    return decorator


# Tells the page's script why an htmx request failed, so it can ask the person to log
# in again (``ended``) or fetch a fresh CSRF token and retry (``stale``).
SESSION_HEADER = "X-PiCloud-Session"


def session_ended():
    """Answer an htmx request whose session has ended: 401, and no page to swap in.

    A redirect to the login page would be followed by the browser and its whole page
    pasted into whatever region the request targets.
    """
    error = Unauthorized("Your session has ended. Log in again to continue.")
    return render_template("errors/error.html", error=error), 401, {SESSION_HEADER: "ended"}


def refused_csrf(exc):
    """Answer an htmx request of the dashboard whose CSRF token was refused.

    Without a session the token cannot match: the session ended (logged out elsewhere,
    cookie gone), and the person gets the log-in prompt rather than "CSRF token missing".
    With a session the page's token is older than the session (logged in again in another
    tab): its script fetches a fresh token and repeats the request. A plain form post
    gets the error page.
    """
    if not request.htmx:
        return handle_http_exception(exc)
    if session_user() is None:
        return session_ended()
    error = BadRequest(f"{exc.description} This page is out of date: reload it and try again.")
    return render_template("errors/error.html", error=error), 400, {SESSION_HEADER: "stale"}


def can(capability):
    """Tell templates whether the current user holds a capability."""
    user = g.get("user")
    return user is not None and capability in capabilities_of(user)


def has_endpoint(name):
    """Tell templates whether a view exists (tabs and pages added by later parts)."""
    return name in current_app.view_functions


def render_partial_or_page(page, partial, **context):
    """Render the partial for an htmx request, else the whole page."""
    return render_template(partial if request.htmx else page, **context)


def notify(message, level="success"):
    """Tell the person what an action did, in a toast on the page it leaves them on.

    An htmx answer that stays on the page carries it in an ``HX-Trigger`` event; a
    redirect (or a full page) carries it to the next page as a flashed message.
    """
    g.setdefault("toasts", []).append({"message": message, "level": level})


@bp.after_request
def deliver_toasts(response):
    """Attach the toasts of this request to its answer (see ``notify``)."""
    toasts = g.pop("toasts", None)
    if not toasts:
        return response
    stays = request.htmx and response.status_code < 300 and "HX-Redirect" not in response.headers
    if not stays:
        for toast in toasts:
            flash(toast["message"], toast["level"])
        return response
    events = json.loads(response.headers["HX-Trigger"]) if response.headers.get("HX-Trigger", "").startswith("{") else {}
    if response.headers.get("HX-Trigger") and not events:
        events = {name.strip(): None for name in response.headers["HX-Trigger"].split(",")}
    events["toasts"] = toasts
    response.headers["HX-Trigger"] = json.dumps(events)
    return response


@bp.after_request
def vary_on_htmx(response):
    """Tell caches that a page and its htmx partial share a URL but not a body.

    Without it a browser may show a cached partial as the whole page (on Back, say).
    """
    response.vary.add("HX-Request")
    return response
