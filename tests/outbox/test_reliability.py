"""docs/architecture.md, "Reliability": several dispatchers on one database, and SIGKILL mid-burst.

Both run against extra server processes sharing the suite's database, so the suite's
own server is one more dispatcher competing for the same events.
"""
import signal
import sqlite3
import threading
import time

import psycopg
import pytest
import requests

from tests.conftest import ADMIN_PASSWORD
from tests.outbox.conftest import add_trigger, kv_items, kv_put, wait_for
from tests.support.apps import Site, new_site
from tests.support.databases import PG_ADMIN_URL, backend, temporary_database
from tests.support.live import Api, LiveServer, login


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


SLOW_EVENT = """
kv.set("slow-started/" .. event.key, true)
local started = os.clock()
while os.clock() - started < 1 do end
kv.set("slow-done/" .. event.key, true)
"""


def rows(url, sql):
    """Read rows straight from a server's database (it is stopped by then)."""
    if url.startswith("sqlite:///"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
            return conn.execute(sql).fetchall()
    with psycopg.connect(url) as conn:
        return conn.execute(sql).fetchall()


def test_sigterm_finishes_running_events_and_releases_the_rest(tmp_path):
    # A server of its own, so no other dispatcher takes the events meanwhile.
    with temporary_database(tmp_path) as url:
        env = {"DATABASE_URL": url, "PICLOUD_DATA_DIR": str(tmp_path), "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
               "PICLOUD_EXECUTOR_PROCESSES": "2"}
        live = LiveServer(env, tmp_path / "server.log").start()
        try:
            site = new_site(login(live.url, "admin", ADMIN_PASSWORD), live.url)
            # A second of CPU can take several of wall time on a loaded machine: no timeout here.
            script = site.script(SLOW_EVENT, sandbox={"max_instructions": 100_000_000}, timeout_seconds=60)
            add_trigger(site, "kv", script, key_glob="slow/*")
            for n in range(6):
                kv_put(site, f"slow/{n}", n)
            # Two run (two executor slots), for a second each; the others wait, claimed
            # in the dispatcher's queue (it claims ahead) or not. Stop once both runs
            # are under way, however long a loaded machine takes to start them.
            wait_for(lambda: rows(url, "SELECT count(*) FROM kv_entries WHERE key LIKE 'slow-started/%'")[0][0] >= 2,
                     what="two runs under way")
        finally:
            live.stop(sig=signal.SIGTERM, timeout=30)
        assert live.process.returncode == 0
        started, done = (
            {key.partition("/")[2] for (key,) in rows(url, f"SELECT key FROM kv_entries WHERE key LIKE '{mark}/%'")}
            for mark in ("slow-started", "slow-done")
        )
        # Every run that started finished (more than the first two may have started
        # while the server let its open connections finish) ...
        assert len(done) >= 2 and done == started
        # ... and every other event is back in the queue, unclaimed, its attempt not used up.
        queued = rows(url, "SELECT claimed_by, lease_until, attempt FROM outbox_events")
        assert len(queued) == 6 - len(done) and all(row == (None, None, 1) for row in queued)
        statuses = rows(url, f"SELECT status FROM executions WHERE script_id = {script['id']}")
        assert sorted(s for (s,) in statuses) == ["ok"] * len(done)


@pytest.mark.skipif(backend() != "postgres", reason="cuts PostgreSQL connections")
def test_the_dispatcher_recovers_when_its_connections_are_cut(tmp_path):
    with temporary_database(tmp_path) as url:
        env = {"DATABASE_URL": url, "PICLOUD_DATA_DIR": str(tmp_path), "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
               "PICLOUD_EXECUTOR_PROCESSES": "2"}
        live = LiveServer(env, tmp_path / "server.log").start()
        try:
            site = new_site(login(live.url, "admin", ADMIN_PASSWORD), live.url)
            add_trigger(site, "kv", site.script('kv.set("seen/" .. event.key, true)\n'), key_glob="cut/*")
            kv_put(site, "cut/before", 1)
            wait_for(lambda: kv_items(site, "seen/"), what="a run before the cut")
            name = url.rsplit("/", 1)[1]
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                cut = conn.execute(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = %s", (name,)
                ).fetchone()[0]
            assert cut >= 2  # the dispatcher's own connections among them
            for n in range(5):
                try:
                    kv_put(site, f"cut/{n}", n)
                except AssertionError:  # a pooled connection may die under this very write
                    kv_put(site, f"cut/{n}", n)
            seen = wait_for(lambda: len(kv_items(site, "seen/")) == 6 and kv_items(site, "seen/"), what="runs after the cut")
            assert set(seen) == {"seen/cut/before"} | {f"seen/cut/{n}" for n in range(5)}
        finally:
            live.stop()
