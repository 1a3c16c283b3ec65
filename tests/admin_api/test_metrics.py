"""docs/api.md §16: GET /metrics — auth, families and labels, exact counts, every worker."""
import concurrent.futures
import os
import signal
import subprocess
import sys
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.apps import new_site, site, wait_for  # noqa: F401  (fixture)
from tests.support.dashboard import Dashboard
from tests.support.live import LiveServer, login

FAMILIES = {
    "picloud_executions": ("counter", {"app", "source", "status"}),
    "picloud_execution_duration_seconds": ("histogram", {"app", "source"}),
    "picloud_overloaded": ("counter", {"app"}),
    "picloud_outbox_pending": ("gauge", set()),
    "picloud_dead_letters_open": ("gauge", {"app"}),
    "picloud_executor_slots": ("gauge", set()),
    "picloud_executor_busy": ("gauge", set()),
    "picloud_gate_waiting": ("gauge", set()),
}
FAILING = 'error("no")\n'
# Spins until its timeout: holds the only execution slot of a one-slot server.
SPIN = "while true do end\n"


def scrape(api):
    """Return ({sample name + sorted labels: value}, {family: (type, label names)})."""
    response = api.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    samples, families = {}, {}
    for family in text_string_to_metric_families(response.text):
        labels = set()
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
            labels |= set(sample.labels) - {"le"}
        families[family.name] = (family.type, labels)
    return samples, families


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))), 0)


def test_metrics_need_a_token(anonymous):
    response = anonymous.get("/metrics")
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"
    anonymous.session.headers["Authorization"] = "Bearer not-a-token"
    assert anonymous.get("/metrics").status_code == 401


@pytest.mark.parametrize("role", ["viewer", "developer"])
def test_every_role_may_read_metrics(make_user, role):
    _, api = make_user(role)
    assert api.get("/metrics").status_code == 200


def test_metrics_answer_on_any_host(admin, site):  # noqa: F811
    site.route("/*rest")  # a catch-all route never reaches the reserved /metrics
    response = admin.get("/metrics", headers={"Host": site.host})
    assert response.status_code == 200
    assert "picloud_executions_total" in response.text


def test_the_families_and_their_labels(admin, site):  # noqa: F811
    site.route("/")
    assert site.call("/").status_code == 200
    wait_for(lambda: value(scrape(admin)[0], "picloud_executions_total", app=site.slug, source="http", status="ok"))
    samples, families = scrape(admin)
    for name, (kind, labels) in FAMILIES.items():
        assert families.get(name) == (kind, labels), name
    # Every app shows its open dead letters, none included.
    assert value(samples, "picloud_dead_letters_open", app=site.slug) == 0
    assert ("picloud_dead_letters_open", (("app", site.slug),)) in samples
    assert value(samples, "picloud_executor_slots") >= 2
    assert samples[("picloud_executor_busy", ())] >= 0


def test_counts_grow_by_exactly_the_runs_made(admin, site):  # noqa: F811
    ok = site.route("/ok")
    site.route("/fail", source=FAILING)
    for _ in range(5):
        assert site.call("/ok").status_code == 200
    for _ in range(2):
        assert site.call("/fail").status_code == 422
    assert admin.post(f"/api/v1/execute/{ok['script_id']}").status_code == 200

    def counted():
        samples = scrape(admin)[0]
        return samples if value(samples, "picloud_executions_total", app=site.slug, source="execute", status="ok") else None

    samples = wait_for(counted, what="the runs to be counted")
    time.sleep(0.5)  # nothing more arrives late
    samples = scrape(admin)[0]
    assert value(samples, "picloud_executions_total", app=site.slug, source="http", status="ok") == 5
    assert value(samples, "picloud_executions_total", app=site.slug, source="http", status="script_error") == 2
    assert value(samples, "picloud_executions_total", app=site.slug, source="execute", status="ok") == 1
    histogram = dict(app=site.slug, source="http")
    assert value(samples, "picloud_execution_duration_seconds_count", **histogram) == 7
    assert value(samples, "picloud_execution_duration_seconds_bucket", le="+Inf", **histogram) == 7
    assert 0 < value(samples, "picloud_execution_duration_seconds_sum", **histogram) < 7 * 5
    buckets = [
        (float(dict(labels)["le"]), v)
        for (name, labels), v in samples.items()
        if name == "picloud_execution_duration_seconds_bucket" and dict(labels).get("app") == site.slug
        and dict(labels)["source"] == "http"
    ]
    counts = [v for _, v in sorted(buckets)]
    assert counts == sorted(counts)  # cumulative


def test_open_dead_letters_are_counted_per_app(admin, site):  # noqa: F811
    script = site.script(FAILING)
    retry = {"max_attempts": 1, "base_delay_ms": 1}
    trigger = admin.post(
        f"/api/v1/admin/apps/{site.app['id']}/triggers/kv",
        json={"script_id": script["id"], "key_glob": "*", "retry": retry},
    )
    assert trigger.status_code == 201, trigger.text
    for key in ("a", "b"):
        assert admin.put(f"/api/v1/admin/apps/{site.app['id']}/kv/{key}", json=1).status_code == 200
    wait_for(lambda: value(scrape(admin)[0], "picloud_dead_letters_open", app=site.slug) == 2, what="two dead letters")
    letters = admin.get(f"/api/v1/admin/apps/{site.app['id']}/dead-letters").json()["dead_letters"]
    assert admin.post(f"/api/v1/admin/dead-letters/{letters[0]['id']}:discard").status_code == 200
    assert value(scrape(admin)[0], "picloud_dead_letters_open", app=site.slug) == 1
    wait_for(
        lambda: value(scrape(admin)[0], "picloud_executions_total", app=site.slug, source="kv", status="script_error") == 2,
        what="both failed runs counted",
    )


@pytest.fixture(scope="module")
def one_slot(server_env, tmp_path_factory, database):
    """A server with one execution slot and no queueing: a second request is refused."""
    env = {
        **server_env,
        "PICLOUD_EXECUTOR_PROCESSES": "1",
        "PICLOUD_QUEUE_WAIT_MS": "0",
        "PICLOUD_SANDBOX_CEILING_MAX_INSTRUCTIONS": str(10**12),
    }
    live = LiveServer(env, tmp_path_factory.mktemp("one-slot") / "server.log").start()
    yield live
    live.stop()


def test_overload_refusals_are_counted_and_shown_on_the_overview(one_slot, server_env):
    api = login(one_slot.url, "admin", server_env["PICLOUD_ADMIN_PASSWORD"])
    busy = new_site(api, one_slot.url, "busy")
    marked_spin = 'kv.set("spinning", true)\n' + SPIN
    busy.route("/spin", source=marked_spin,
               script=busy.script(marked_spin, timeout_seconds=3, sandbox={"max_instructions": 10**12}))
    busy.route("/hello")
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        spinning = pool.submit(busy.call, "/spin")
        # The spin holds the one slot before the first hello asks for it.
        wait_for(lambda: api.get(f"/api/v1/admin/apps/{busy.slug}/kv/spinning").status_code == 200,
                 what="the spinning run")
        refused = 0
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline and not spinning.done():
            response = busy.call("/hello")
            if response.status_code == 503:
                assert response.json()["error"]["code"] == "overloaded"
                refused += 1
                if refused == 3:
                    break
            time.sleep(0.05)
        assert spinning.result().status_code == 504
    assert refused == 3

    wait_for(lambda: value(scrape(api)[0], "picloud_overloaded_total", app=busy.slug) == 3, what="three refusals")
    timed_out = dict(app=busy.slug, source="http", status="timeout")
    wait_for(lambda: value(scrape(api)[0], "picloud_executions_total", **timed_out) == 1, what="the spinning run")
    # A refusal is no run: it never shows among the executions.
    samples = scrape(api)[0]
    assert value(samples, "picloud_executions_total", app=busy.slug, source="http", status="overloaded") == 0
    page = Dashboard(one_slot.url, "admin", server_env["PICLOUD_ADMIN_PASSWORD"]).get(f"/admin/apps/{busy.slug}")
    assert page.status_code == 200
    assert "Refused (overloaded), 24 h" in page.text
    assert '<span class="stat">3</span>\n    <span class="muted">Refused (overloaded), 24 h' in page.text


@pytest.fixture(scope="module")
def gunicorn(server_env, tmp_path_factory, database):
    """PiCloud under gunicorn with two workers, sharing the suite's database."""
    env = {**server_env, "WEB_CONCURRENCY": "2", "PICLOUD_EXECUTOR_PROCESSES": "1"}
    argv = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "app:app", "--access-logfile", "/dev/null"]
    live = LiveServer(env, tmp_path_factory.mktemp("gunicorn") / "server.log", argv=argv).start(timeout=60)
    yield live
    live.stop(timeout=30)


def worker_pids(live):
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(live.process.pid)], capture_output=True, text=True)
    return {int(pid) for pid in out.stdout.split()}


def test_totals_cover_both_gunicorn_workers(gunicorn, server_env):
    api = login(gunicorn.url, "admin", server_env["PICLOUD_ADMIN_PASSWORD"])
    wait_for(lambda: len(worker_pids(gunicorn)) == 2, what="two workers")
    # Each worker reports its one slot: the sum covers both.
    wait_for(lambda: value(scrape(api)[0], "picloud_executor_slots") >= 2, what="both workers' slots")
    metrics_site = new_site(api, gunicorn.url, "workers")
    metrics_site.route("/")
    runs = 40

    def call(_):
        # A new connection per request: gunicorn spreads them over both workers.
        return requests.get(gunicorn.url + "/", headers={"Host": metrics_site.host, "Connection": "close"}, timeout=30)

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        assert [r.status_code for r in pool.map(call, range(runs))] == [200] * runs
    counted = dict(app=metrics_site.slug, source="http", status="ok")
    wait_for(lambda: value(scrape(api)[0], "picloud_executions_total", **counted) == runs, what="every run counted")

    # A worker killed and replaced takes nothing with it: the counter does not go back.
    victim = sorted(worker_pids(gunicorn))[0]
    os.kill(victim, signal.SIGKILL)
    wait_for(lambda: len(worker_pids(gunicorn) - {victim}) == 2, what="a replacement worker")
    for _ in range(20):
        assert value(scrape(api)[0], "picloud_executions_total", **counted) == runs
