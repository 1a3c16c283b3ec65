"""Helpers for data plane tests: store URLs, Lua through a real route, waiting, a dashboard session."""
import re
import time
import uuid
from urllib.parse import quote

import pytest
import requests

from tests.support.apps import new_site, other_site, site  # noqa: F401  (fixtures)


def kv_url(site, key=None):
    """The admin URL of an app's KV store, or of one (percent-encoded) key in it."""
    base = f"/api/v1/admin/apps/{site.app['id']}/kv"
    return base if key is None else f"{base}/{quote(key, safe='')}"


def docs_url(site, collection=None, doc_id=None):
    """The admin URL of an app's collections, one collection, or one document."""
    url = f"/api/v1/admin/apps/{site.app['id']}/docs"
    if collection is not None:
        url += f"/{collection}"
    if doc_id is not None:
        url += f"/{quote(doc_id, safe='')}"
    return url


def run_lua(site, source, **call):
    """Put ``source`` behind a fresh route of the site, call it, and return the response."""
    path = f"/run-{uuid.uuid4().hex[:8]}"
    site.route(path, source)
    return site.call(path, **call)


def lua_json(site, source):
    """Run ``source`` and return its JSON result, failing on anything but 200."""
    response = run_lua(site, source)
    assert response.status_code == 200, response.text
    return response.json()


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
    response = site.api.post(
        f"/api/v1/admin/apps/{site.app['id']}/triggers/{kind}", json={"script_id": script["id"], **body}
    )
    assert response.status_code == 201, response.text
    return response.json()


def executions(site, **filters):
    response = site.api.get(
        f"/api/v1/admin/apps/{site.app['id']}/executions", params={"limit": 500, **filters}
    )
    assert response.status_code == 200, response.text
    return response.json()["executions"]


class Dashboard:
    """A requests session logged in to the dashboard; POSTs carry the CSRF token."""

    def __init__(self, base_url, username, password):
        self.base_url = base_url
        self.session = requests.Session()
        page = self.session.get(base_url + "/admin/login", timeout=30)
        response = self.session.post(
            base_url + "/admin/login",
            data={"username": username, "password": password, "csrf_token": csrf_from(page.text)},
            allow_redirects=False,
            timeout=30,
        )
        assert response.status_code == 302, response.text
        self.csrf = csrf_from(self.session.get(base_url + "/admin/account", timeout=30).text)

    def get(self, path, htmx=False, **kwargs):
        headers = {"HX-Request": "true"} if htmx else {}
        return self.session.get(self.base_url + path, headers=headers, allow_redirects=False, timeout=30, **kwargs)

    def post(self, path, data=None, htmx=False, **kwargs):
        headers = {"HX-Request": "true"} if htmx else {}
        data = {**(data or {}), "csrf_token": self.csrf}
        return self.session.post(
            self.base_url + path, data=data, headers=headers, allow_redirects=False, timeout=30, **kwargs
        )


def csrf_from(html):
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html
    )
    assert match, "no CSRF token in the page"
    return match.group(1)
