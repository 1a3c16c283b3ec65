"""DESIGN.md: another process sharing the database notices every change within a second."""
import time

import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.support.apps import new_site
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
