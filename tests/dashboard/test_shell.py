"""The dashboard shell over HTTP: login, CSRF, security headers, account and users pages."""
import re

import pytest
import requests

from tests.conftest import ADMIN_PASSWORD
from tests.support.dashboard import csrf_from


@pytest.fixture
def browser_session(server):
    """A requests session logged in to the dashboard as admin."""
    session = requests.Session()
    page = session.get(server.url + "/admin/login")
    response = session.post(
        server.url + "/admin/login",
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": csrf_from(page.text)},
        allow_redirects=False,
    )
    assert response.status_code == 302
    return session


def test_pages_need_a_login(server):
    response = requests.get(server.url + "/admin/account", allow_redirects=False)
    assert response.status_code == 302
    assert "/admin/login?next=" in response.headers["Location"]


def test_login_without_csrf_token_is_refused(server):
    response = requests.post(server.url + "/admin/login", data={"username": "admin", "password": ADMIN_PASSWORD})
    assert response.status_code == 400
    assert "CSRF" in response.text


def test_wrong_password_shows_an_error(server):
    session = requests.Session()
    page = session.get(server.url + "/admin/login")
    response = session.post(
        server.url + "/admin/login",
        data={"username": "admin", "password": "wrong-password", "csrf_token": csrf_from(page.text)},
    )
    assert response.status_code == 401
    assert "Invalid username or password" in response.text


def test_session_cookie_and_security_headers(server):
    session = requests.Session()
    page = session.get(server.url + "/admin/login")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert page.headers["X-Frame-Options"] == "DENY"
    response = session.post(
        server.url + "/admin/login",
        data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": csrf_from(page.text)},
        allow_redirects=False,
    )
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie


def test_account_page_creates_a_token_shown_once(server, browser_session):
    page = browser_session.get(server.url + "/admin/account")
    assert page.status_code == 200
    created = browser_session.post(
        server.url + "/admin/account/tokens",
        data={"name": "dashboard token", "csrf_token": csrf_from(page.text)},
        headers={"HX-Request": "true"},
    )
    assert created.status_code == 200
    token = re.search(r'id="new-token">(pc_[^<]+)<', created.text).group(1)
    me = requests.get(server.url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    again = browser_session.get(server.url + "/admin/account")
    assert token not in again.text
    assert "dashboard token" in again.text


def test_htmx_requests_get_the_partial_only(server, browser_session):
    page = browser_session.get(server.url + "/admin/account")
    response = browser_session.post(
        server.url + "/admin/account/tokens",
        data={"name": "partial", "csrf_token": csrf_from(page.text)},
        headers={"HX-Request": "true"},
    )
    assert "<html" not in response.text and 'id="tokens"' in response.text


def test_users_page_is_for_admins_only(server, browser_session, make_user):
    assert browser_session.get(server.url + "/admin/users").status_code == 200
    user, _ = make_user("developer")
    session = requests.Session()
    page = session.get(server.url + "/admin/login")
    # make_user's password is not returned; set a known one.
    from tests.support.live import login

    admin = login(server.url, "admin", ADMIN_PASSWORD)
    admin.patch(f"/api/v1/admin/users/{user['id']}", json={"password": "developer-pass-1"})
    session.post(
        server.url + "/admin/login",
        data={"username": user["username"], "password": "developer-pass-1", "csrf_token": csrf_from(page.text)},
    )
    response = session.get(server.url + "/admin/users")
    assert response.status_code == 403
    assert "users.manage" in response.text


def test_admin_adds_a_user_from_the_users_page(server, browser_session, unique):
    page = browser_session.get(server.url + "/admin/users")
    username = unique("web")
    response = browser_session.post(
        server.url + "/admin/users",
        data={"username": username, "password": "password-123", "role": "viewer", "csrf_token": csrf_from(page.text)},
        headers={"HX-Request": "true"},
    )
    assert response.status_code == 200 and username in response.text
    from tests.support.live import login

    assert login(server.url, username, "password-123").get("/api/v1/auth/me").json()["user"]["role"] == "viewer"


def test_changing_the_password_ends_other_sessions(server, make_user, unique):
    from tests.support.live import login

    user, _ = make_user("viewer")
    admin = login(server.url, "admin", ADMIN_PASSWORD)
    admin.patch(f"/api/v1/admin/users/{user['id']}", json={"password": "first-password"})
    sessions = []
    for _ in range(2):
        session = requests.Session()
        page = session.get(server.url + "/admin/login")
        session.post(
            server.url + "/admin/login",
            data={"username": user["username"], "password": "first-password", "csrf_token": csrf_from(page.text)},
        )
        sessions.append(session)
    page = sessions[0].get(server.url + "/admin/account")
    changed = sessions[0].post(
        server.url + "/admin/account/password",
        data={"current": "first-password", "password": "second-password", "confirm": "second-password",
              "csrf_token": csrf_from(page.text)},
    )
    assert "Password changed" in changed.text
    assert sessions[0].get(server.url + "/admin/account", allow_redirects=False).status_code == 200
    assert sessions[1].get(server.url + "/admin/account", allow_redirects=False).status_code == 302
