"""Fair share between apps over a real server (docs/api.md §15, docs/concurrency.md).

The server here has two executor slots, so an app's share is one slot while another
app's work waits.
"""
import datetime
import threading
import time
from urllib.parse import quote

import pytest

from picloud import executions, orchestrator
from picloud.cache import ScriptSnapshot
from picloud.gate import RECENT_SECONDS
from picloud.invocation import Invocation
from picloud.models import App, Script
from tests.conftest import ADMIN_PASSWORD
from tests.support.apps import add_trigger, new_site, wait_for
from tests.support.databases import temporary_database
from tests.support.live import LiveServer, login

# A backtracking pattern: the run stays inside one C call until its timeout kills it.
STUCK = "return ('a'):rep(400):find('.-.-.-b')"
# About a tenth of a second of Lua work, to make runs that could overlap.
BUSY = "local n = 0 for i = 1, 2000000 do n = n + i end\n"


@pytest.fixture(scope="module")
def fair_server(tmp_path_factory):
    """A server of its own (its own database and dispatcher) with two executor slots."""
    data_dir = tmp_path_factory.mktemp("fair")
    with temporary_database(data_dir) as url:
        env = {
            "DATABASE_URL": url,
            "PICLOUD_DATA_DIR": str(data_dir),
            "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PICLOUD_EXECUTOR_PROCESSES": "2",
        }
        live = LiveServer(env, data_dir / "server.log").start()
        yield live
        live.stop()


@pytest.fixture(scope="module")
def api(fair_server):
    return login(fair_server.url, "admin", ADMIN_PASSWORD)


def make_site(api, fair_server, prefix, max_concurrency=None):
    site = new_site(api, fair_server.url, prefix)
    if max_concurrency is not None:
        response = api.patch(f"/api/v1/admin/apps/{site.app['id']}", json={"max_concurrency": max_concurrency})
        assert response.status_code == 200, response.text
    return site


def quiet():
    """Wait until no app counts as having work waiting any more."""
    time.sleep(RECENT_SECONDS + 0.2)


def in_parallel(count, call):
    """Run ``call()`` in ``count`` threads at once; return their results."""
    results = [None] * count

    def run(n):
        results[n] = call()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def run_spans(site, script_id, count, **filters):
    """Return the (started, finished) spans of the script's ``count`` logged runs, in order."""

    def logged():
        response = site.api.get(
            f"/api/v1/admin/apps/{site.app['id']}/executions",
            params={"script_id": script_id, "limit": 500, **filters},
        )
        runs = [r for r in response.json()["executions"] if r["started_at"]]
        return runs if len(runs) >= count else None

    runs = wait_for(logged, what=f"{count} logged runs")
    moment = lambda text: datetime.datetime.fromisoformat(text.removesuffix("Z"))  # noqa: E731
    return sorted((moment(r["started_at"]), moment(r["finished_at"])) for r in runs)


def overlapping(spans):
    return any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))


@pytest.fixture(scope="module")
def local_orchestrator(settings, database):
    """An orchestrator in this process (two executors), as a server process has one."""
    running = orchestrator.init_orchestrator(settings)
    running.start()
    executions.init_writer()
    yield running
    running.stop()


def test_a_timed_out_run_keeps_its_slot_until_its_executor_is_replaced(local_orchestrator, unique):
    app = App.create(slug=unique("killed"), name="killed")
    script = Script.create(app=app, name="stuck", source=STUCK, timeout_seconds=1)
    pool, gate = local_orchestrator.pool, local_orchestrator.gate
    invocation = Invocation(script=ScriptSnapshot.of(script), globals={}, source="execute", wait_seconds=5)
    execution, _ = orchestrator.run_script(invocation)
    assert execution.status == "timeout"
    samples = []  # (slots the app holds, executors alive) until the app holds none
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        samples.append((gate.held(app.id), len(pool.pids())))
        if samples[-1][0] == 0:
            break
        time.sleep(0.005)
    assert samples[-1] == (0, pool.size)
    assert all(held == 1 for held, alive in samples if alive < pool.size)
    assert samples[0] == (1, pool.size - 1)  # the replacement takes a while: the slot waited


def test_another_apps_hello_answers_while_one_app_floods_every_slot(api, fair_server):
    flood = make_site(api, fair_server, "flood")
    flood.route("/spin", script=flood.script(STUCK, timeout_seconds=2))
    hello = make_site(api, fair_server, "hello")
    hello.route("/", 'return "still here"')
    assert hello.call("/").text == "still here"
    stop = threading.Event()
    spin_answers = []

    def spin():
        while not stop.is_set():
            spin_answers.append(flood.call("/spin").status_code)

    spinners = [threading.Thread(target=spin) for _ in range(4)]  # twice the slots
    for spinner in spinners:
        spinner.start()
    answers, latencies = [], []
    try:
        time.sleep(0.5)  # every slot the flood may take is taken, and more spins wait
        for _ in range(30):
            started = time.monotonic()
            response = hello.call("/")
            latencies.append(time.monotonic() - started)
            answers.append((response.status_code, response.text))
            time.sleep(0.1)
    finally:
        stop.set()
        for spinner in spinners:
            spinner.join()
    assert answers == [(200, "still here")] * 30
    # A spin holds its slot for 2 s: waiting behind one would show here.
    assert max(latencies) < 1.0, latencies
    assert set(spin_answers) <= {503, 504} and 504 in spin_answers


def test_an_app_alone_uses_every_slot(api, fair_server):
    quiet()
    alone = make_site(api, fair_server, "alone")
    script = alone.script(STUCK, timeout_seconds=1)
    alone.route("/spin", script=script)
    assert [r.status_code for r in in_parallel(2, lambda: alone.call("/spin"))] == [504, 504]
    assert overlapping(run_spans(alone, script["id"], 2))


def test_max_concurrency_caps_an_app_even_alone(api, fair_server):
    quiet()
    capped = make_site(api, fair_server, "capped", max_concurrency=1)
    script = capped.script(STUCK, timeout_seconds=1)
    capped.route("/spin", script=script)
    # The second run waits for the first (within PICLOUD_QUEUE_WAIT_MS), then runs.
    assert [r.status_code for r in in_parallel(2, lambda: capped.call("/spin"))] == [504, 504]
    assert not overlapping(run_spans(capped, script["id"], 2))


def test_events_of_a_capped_app_wait_and_all_run(api, fair_server):
    capped = make_site(api, fair_server, "events", max_concurrency=1)
    script = capped.script(BUSY + 'docs.insert("out", {key = event.key})')
    add_trigger(capped, "kv", script, key_glob="k/*", ops=["set"])
    keys = [f"k/{n}" for n in range(12)]
    for key in keys:
        response = capped.api.put(f"/api/v1/admin/apps/{capped.app['id']}/kv/{quote(key, safe='')}", json=1)
        assert response.status_code == 200, response.text

    def written():
        body = capped.api.get(f"/api/v1/admin/apps/{capped.app['id']}/docs/out", params={"limit": 500}).json()
        return body["docs"] if len(body["docs"]) >= len(keys) else None

    documents = wait_for(written, timeout=60, what="every event to run")
    assert sorted(d["key"] for d in documents) == sorted(keys)
    runs = capped.api.get(
        f"/api/v1/admin/apps/{capped.app['id']}/executions", params={"source": "kv", "limit": 500}
    ).json()["executions"]
    assert sorted((r["status"], r["attempt"]) for r in runs) == [("ok", 1)] * len(keys)
    assert not overlapping(run_spans(capped, script["id"], len(keys), source="kv"))
