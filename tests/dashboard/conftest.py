"""Fixtures for the dashboard's pages: logged-in sessions, apps and scripts made through it."""
import uuid

import pytest

from picloud.models import App, Script
from tests.conftest import ADMIN_PASSWORD
from tests.support.dashboard import Dashboard


@pytest.fixture(scope="module")
def dash(server):
    return Dashboard(server.url, "admin", ADMIN_PASSWORD)


@pytest.fixture
def login_as(server, admin, unique):
    """Create a user with a role and return a Dashboard session logged in as them."""

    def make(role):
        password = "password-" + uuid.uuid4().hex
        response = admin.post(
            "/api/v1/admin/users", json={"username": unique(role), "password": password, "role": role}
        )
        assert response.status_code == 201, response.text
        return Dashboard(server.url, response.json()["username"], password)

    return make


@pytest.fixture
def new_app(dash, unique, database):
    """Create an app through the dashboard and return its slug."""

    def make(slug=None, **fields):
        slug = slug or unique("app")
        response = dash.post("/admin/apps", {"slug": slug, **fields})
        assert response.status_code == 303, response.text
        assert response.headers["Location"].endswith(f"/admin/apps/{slug}")
        return slug

    return make


@pytest.fixture
def new_script(dash, database):
    """Create a script in an app through the dashboard and return the Script row."""

    def make(slug, name="main"):
        response = dash.post(f"/admin/apps/{slug}/scripts", {"name": name})
        assert response.status_code == 303, response.text
        return Script.get(Script.name == name, Script.app == App.get(App.slug == slug))

    return make
