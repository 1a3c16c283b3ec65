"""DESIGN.md reliability: several dispatchers on one database, and SIGKILL mid-burst.

Both run against extra server processes sharing the suite's database, so the suite's
own server is one more dispatcher competing for the same events.
"""
import signal
import threading

import pytest
import requests

from tests.outbox.conftest import add_trigger, kv_items, kv_put, wait_for
from tests.support.apps import Site
from tests.support.live import Api, LiveServer


@pytest.fixture
def second_server(server_env, tmp_path):
    live = LiveServer(server_env, tmp_path / "second.log").start()
    yield live
    live.stop()


def test_two_dispatchers_never_run_one_attempt_twice(site, second_server):
    count = 300
    # One counter per (event, attempt): any attempt run twice shows as a 2.
    script = site.script('kv.incr("runs/" .. ctx.event_id .. "/" .. ctx.attempt)\n')
    add_trigger(site, "kv", script, key_glob="many/*")
    other = Site(Api(second_server.url, site.api.token), second_server.url, site.app, site.host)
    for i in range(count):
        kv_put(site if i % 2 else other, f"many/{i}", i)  # wakes both processes' dispatchers
    runs = wait_for(lambda: (lambda r: r if len(r) >= count else None)(kv_items(site, "runs/")),
                    timeout=60, what=f"{count} triggered runs")
    assert len(runs) == count
    assert set(runs.values()) == {1}
    assert {key.rsplit("/", 1)[1] for key in runs} == {"1"}


BURST = """
for i = 1, 50 do
  kv.set("burst/" .. request.json.batch .. "/" .. i, i)
end
return "ok"
"""


def test_sigkill_during_a_burst_loses_no_event(site, server_env, tmp_path):
    add_trigger(site, "kv", site.script('kv.set("ran/" .. event.key, ctx.event_id)\n'), key_glob="burst/*")
    doomed = LiveServer(server_env, tmp_path / "doomed.log").start()
    site.route("/burst", method="POST", script=site.script(BURST))
    doomed_site = Site(site.api, doomed.url, site.app, site.host)

    def write(batch):
        try:
            doomed_site.call("/burst", method="POST", json={"batch": batch}, timeout=30)
        except requests.RequestException:
            pass  # the server is killed under this request

    writers = [threading.Thread(target=write, args=(batch,)) for batch in range(20)]  # 1,000 writes
    for writer in writers:
        writer.start()
    # Kill once events are being delivered, with writes and deliveries still under way.
    wait_for(lambda: len(kv_items(site, "ran/")) >= 50, timeout=60, interval=0.02, what="deliveries to start")
    doomed.stop(sig=signal.SIGKILL)
    for writer in writers:
        writer.join()
    written = set(kv_items(site, "burst/"))
    assert written, "no write committed before the kill"

    restarted = LiveServer(server_env, tmp_path / "restarted.log").start()
    try:
        # Events the killed process held are claimed again once their lease (30 s) ends.
        ran = wait_for(
            lambda: (lambda r: r if {k.removeprefix("ran/") for k in r} >= written else None)(kv_items(site, "ran/")),
            timeout=90, interval=0.5, what="every committed write's event to run",
        )
    finally:
        restarted.stop()
    assert {k.removeprefix("ran/") for k in ran} == written
    outbox = site.api.get(f"/api/v1/admin/apps/{site.app['id']}/executions", params={"status": "queued"}).json()
    assert outbox["executions"] == []
