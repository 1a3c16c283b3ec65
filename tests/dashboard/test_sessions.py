"""How the dashboard answers requests whose session ended, and what it offers to resume."""
import requests

from picloud.models import Script
from tests.conftest import ADMIN_PASSWORD
from tests.support.dashboard import Dashboard


def end_sessions_of(server, username, password):
    """Log the same user in elsewhere and log out there: every session of the user ends."""
    other = Dashboard(server.url, username, password)
    assert other.post("/admin/logout").status_code == 302


def test_an_htmx_request_of_an_ended_session_gets_401_not_the_login_page(server, admin, unique):
    password = "password-for-ended"
    username = unique("ended")
    admin.post("/api/v1/admin/users", json={"username": username, "password": password, "role": "developer"})
    person = Dashboard(server.url, username, password)
    end_sessions_of(server, username, password)

    polled = person.get("/admin/apps/default/logs", htmx=True)
    assert polled.status_code == 401
    assert polled.headers["X-PiCloud-Session"] == "ended"
    assert "Your session has ended" in polled.text
    assert "<form" not in polled.text and "<header" not in polled.text

    # A whole page still goes to the login page, coming back afterwards.
    page = person.get("/admin/apps/default/logs")
    assert page.status_code == 302 and "/admin/login?next=" in page.headers["Location"]


def test_a_save_without_a_session_cookie_asks_to_log_in_and_changes_nothing(server, new_app, new_script):
    slug = new_app()
    script = new_script(slug)
    path = f"/admin/apps/{slug}/scripts/{script.id}/source"
    person = Dashboard(server.url, "admin", ADMIN_PASSWORD)
    person.session.cookies.clear()
    saved = person.post(path, {"source": "return 'lost?'"}, htmx=True)
    assert saved.status_code == 401 and saved.headers["X-PiCloud-Session"] == "ended"
    assert "CSRF" not in saved.text
    assert Script.get_by_id(script.id).version == script.version


def test_a_stale_token_of_a_live_session_is_told_apart(server, dash, new_app, new_script):
    slug = new_app()
    script = new_script(slug)
    path = f"/admin/apps/{slug}/scripts/{script.id}/source"
    stale = dash.post(path, {"source": "return 1", "csrf_token": "old" + dash.csrf}, htmx=True, csrf=False)
    assert stale.status_code == 400 and stale.headers["X-PiCloud-Session"] == "stale"
    assert Script.get_by_id(script.id).version == script.version

    state = dash.get("/admin/session")
    assert state.status_code == 200 and state.headers["Cache-Control"] == "no-store"
    token = state.json()["csrf_token"]
    saved = dash.post(path, {"source": "return 1", "csrf_token": token}, htmx=True, csrf=False)
    assert saved.status_code == 200
    assert Script.get_by_id(script.id).source == "return 1"


def test_the_session_state_says_logged_out_without_a_token(server):
    answer = requests.get(server.url + "/admin/session", timeout=10)
    assert answer.status_code == 401
    assert answer.json() == {"logged_in": False}
    assert "csrf_token" not in answer.text
