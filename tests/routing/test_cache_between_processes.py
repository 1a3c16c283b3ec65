"""docs/architecture.md "Caches": another process sharing the database notices every change within a second."""
import time

import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.support.apps import add_trigger, new_site, wait_for
from tests.support.databases import backend
from tests.support.live import LiveServer, login


@pytest.fixture(scope="module")
def second_server(server, server_env, tmp_path_factory):
    """A second server process on the suite's database."""
    live = LiveServer(server_env, tmp_path_factory.mktemp("second") / "server.log").start()
    yield live
    live.stop()


def seconds_until(check, limit=1.5):
    """Poll ``check()`` until it is true; return how long that took."""
    started = time.monotonic()
    while not check():
        if time.monotonic() - started > limit:
            raise AssertionError(f"not seen after {limit}s")
        time.sleep(0.05)
    return time.monotonic() - started


def test_changes_reach_the_other_process_within_a_second(server, second_server):
    first = login(server.url, "admin", ADMIN_PASSWORD)
    site = new_site(first, server.url, "shared")
    route = site.route("/shared", 'return "v1"')
    site.base_url = second_server.url  # requests now go to the other process

    assert seconds_until(lambda: site.call("/shared").text == "v1") < 1.2

    first.patch(f"/api/v1/admin/scripts/{route['script_id']}", json={"source": 'return "v2"'})
    assert seconds_until(lambda: site.call("/shared").text == "v2") < 1.2

    first.patch(f"/api/v1/admin/routes/{route['id']}", json={"path": "/moved"})
    assert seconds_until(lambda: site.call("/shared").status_code == 404) < 1.2
    assert site.call("/moved").text == "v2"

    first.delete(f"/api/v1/admin/apps/{site.app['id']}")
    assert seconds_until(lambda: site.call("/moved").status_code == 404) < 1.2
    assert site.call("/moved").json()["error"]["code"] == "unknown_host"


def test_a_process_that_changes_never_serves_stale(second_server):
    api = login(second_server.url, "admin", ADMIN_PASSWORD)
    site = new_site(api, second_server.url, "own")
    route = site.route("/own", 'return "start"')
    for n in range(5):
        api.patch(f"/api/v1/admin/scripts/{route['script_id']}", json={"source": f'return "{n}"'})
        assert site.call("/own").text == str(n)


def test_a_trigger_made_in_one_process_fires_on_the_next_write_in_another(server, second_server):
    if backend() != "sqlite":
        pytest.skip("on PostgreSQL the other process hears the change by NOTIFY, within milliseconds")
    first = login(server.url, "admin", ADMIN_PASSWORD)
    second = login(second_server.url, "admin", ADMIN_PASSWORD)
    site = new_site(first, server.url, "watched")
    script = site.script('kv.set("seen/" .. event.key, event.value)')
    warm = second.put(f"/api/v1/admin/apps/{site.app['id']}/kv/before", json=0)
    assert warm.status_code == 200  # the other process has looked up this app's triggers

    add_trigger(site, "kv", script, key_glob="k*")
    assert second.put(f"/api/v1/admin/apps/{site.app['id']}/kv/k1", json=1).status_code == 200
    wait_for(lambda: first.get(f"/api/v1/admin/apps/{site.app['id']}/kv/seen%2Fk1").status_code == 200,
             timeout=10, what="the run the write in the other process triggered")
