"""Helpers for data plane tests: store URLs, Lua through a real route, waiting, a dashboard session."""
import uuid
from urllib.parse import quote

import pytest

from tests.support.apps import new_site, other_site, site  # noqa: F401  (fixtures)
from tests.support.apps import add_trigger, wait_for  # noqa: F401  (used by the tests here)


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


def executions(site, **filters):
    response = site.api.get(
        f"/api/v1/admin/apps/{site.app['id']}/executions", params={"limit": 500, **filters}
    )
    assert response.status_code == 200, response.text
    return response.json()["executions"]


