"""Helpers for outbox tests: triggers, KV writes and waiting for background work."""
from urllib.parse import quote

import pytest

from picloud import db as database_module
from picloud.config import load_settings
from picloud.migrate import migrate
from tests.support.apps import new_site, other_site, site  # noqa: F401  (fixtures)
from tests.support.apps import add_trigger, wait_for  # noqa: F401  (used by the tests here)
from tests.support.databases import temporary_database

# Retry settings that make a whole retry cycle take milliseconds.
FAST_RETRY = {"max_attempts": 3, "backoff": "constant", "base_delay_ms": 5, "max_delay_ms": 5, "jitter": 0}


@pytest.fixture(scope="module")
def own_database(tmp_path_factory, database, settings):
    """Bind this process's models to a fresh database of their own for the module.

    For tests that claim events directly: on the suite's database they would compete
    with the running server for its events. The suite's database is bound again after.
    """
    data_dir = tmp_path_factory.mktemp("own-db")
    with temporary_database(data_dir) as url:
        database_module.close_db()
        database_module.init_db(url)
        own_settings = load_settings({"DATABASE_URL": url, "PICLOUD_DATA_DIR": str(data_dir)})
        migrate(own_settings)
        try:
            yield own_settings
        finally:
            database_module.close_db()
            database_module.init_db(settings.database_url)


def kv_put(site, key, value):
    response = site.api.put(f"/api/v1/admin/apps/{site.app['id']}/kv/{quote(key, safe='')}", json=value)
    assert response.status_code == 200, response.text
    return response.json()


def kv_get(site, key):
    """Return a key's value, or None when it does not exist."""
    response = site.api.get(f"/api/v1/admin/apps/{site.app['id']}/kv/{quote(key, safe='')}")
    if response.status_code == 404:
        return None
    assert response.status_code == 200, response.text
    return response.json()["value"]


def kv_items(site, prefix):
    """Return {key: value} of every key with ``prefix``."""
    items, cursor = {}, None
    while True:
        params = {"prefix": prefix, "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = site.api.get(f"/api/v1/admin/apps/{site.app['id']}/kv", params=params)
        assert page.status_code == 200, page.text
        body = page.json()
        items.update({item["key"]: item["value"] for item in body["items"]})
        cursor = body["next_cursor"]
        if not cursor:
            return items


def executions(site, **filters):
    """Return the app's executions (newest first), up to 500."""
    response = site.api.get(f"/api/v1/admin/apps/{site.app['id']}/executions", params={"limit": 500, **filters})
    assert response.status_code == 200, response.text
    return response.json()["executions"]


def dead_letters(site, open=True):
    response = site.api.get(
        f"/api/v1/admin/apps/{site.app['id']}/dead-letters", params={"open": "true" if open else "false"}
    )
    assert response.status_code == 200, response.text
    return response.json()["dead_letters"]
