"""Factory fixtures for apps, domains, scripts and routes, made through the admin API.

Import the fixtures a test module needs: ``from tests.support.apps import site  # noqa: F401``.
"""
import time
import uuid
from dataclasses import dataclass

import pytest
import requests

HELLO = 'return "hello"\n'


@dataclass
class Site:
    """An app with one claimed host, ready to get scripts and routes."""

    api: object
    base_url: str
    app: dict
    host: str

    @property
    def slug(self):
        return self.app["slug"]

    def script(self, source=HELLO, **fields):
        body = {"app_id": self.app["id"], "name": fields.pop("name", f"s{uuid.uuid4().hex[:8]}"), "source": source, **fields}
        response = self.api.post("/api/v1/admin/scripts", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def route(self, path="/", source=HELLO, method="GET", script=None, **fields):
        script = script or self.script(source)
        body = {"method": method, "path": path, "script_id": script["id"], **fields}
        response = self.api.post(f"/api/v1/admin/apps/{self.app['id']}/routes", json=body)
        assert response.status_code == 201, response.text
        return response.json()

    def call(self, path="/", method="GET", host=None, **kwargs):
        """Send a user request to this site's host."""
        headers = {"Host": host or self.host, **kwargs.pop("headers", {})}
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.base_url + path, headers=headers, allow_redirects=False, **kwargs)


def new_site(api, base_url, prefix="site"):
    """Create an app claiming ``<slug>.test`` and return its Site."""
    slug = f"{prefix}-{uuid.uuid4().hex[:8]}"
    response = api.post("/api/v1/admin/apps", json={"slug": slug})
    assert response.status_code == 201, response.text
    app = response.json()
    host = f"{slug}.test"
    claimed = api.post(f"/api/v1/admin/apps/{app['id']}/domains", json={"pattern": host})
    assert claimed.status_code == 201, claimed.text
    return Site(api, base_url, app, host)


@pytest.fixture
def site(admin, server):
    """A fresh app claiming ``<slug>.test`` on the suite's server."""
    return new_site(admin, server.url)


@pytest.fixture
def other_site(admin, server):
    """A second fresh app, for isolation tests."""
    return new_site(admin, server.url, "other")


def wait_for(check, timeout=20, interval=0.05, what="the condition"):
    """Call ``check`` until it returns something truthy; return that or fail."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(interval)


def add_trigger(site, kind, script, **body):
    """Create a trigger through the API and return it."""
    response = site.api.post(
        f"/api/v1/admin/apps/{site.app['id']}/triggers/{kind}", json={"script_id": script["id"], **body}
    )
    assert response.status_code == 201, response.text
    return response.json()
