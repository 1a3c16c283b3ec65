"""PostgreSQL goes away for 10 s and for 30 s under light traffic, then comes back.

Goals: ``/healthz`` answers within 1 s throughout (503, ``"database": "unavailable"``);
every request that needs the database answers 503 ``database_unavailable`` with
``Retry-After``; within 2 s of PostgreSQL accepting connections again everything works,
with no restart; every acknowledged KV write's triggered event runs exactly once.
"""
import threading
import time

import pytest
import requests

from tests.conftest import ADMIN_PASSWORD
from tests.support.dashboard import Dashboard
from tests.support.live import LiveServer, login
from tests.support.postgres_cluster import ThrowawayCluster, missing_reason

HEALTHZ_GOAL_SECONDS = 1.0
RECOVERY_GOAL_SECONDS = 2.0
EVENTS_DEADLINE_SECONDS = 60
COUNTER_SCRIPT = 'kv.incr("ran:" .. event.key, 1)'
# A user route whose script writes: during an outage its caller is told to retry.
WRITER_SCRIPT = 'kv.set("written-by-route", true)\nreturn "written"'
USER_HOST = {"Host": "localhost"}

pytestmark = pytest.mark.faults


@pytest.fixture(scope="module")
def cluster():
    reason = missing_reason()
    if reason:
        pytest.skip(reason)
    cluster = ThrowawayCluster().create()
    cluster.start()
    yield cluster
    cluster.destroy()


@pytest.fixture(scope="module")
def platform(cluster, tmp_path_factory):
    """A server on the throwaway cluster, with a KV trigger that counts its runs."""
    directory = tmp_path_factory.mktemp("outage")
    env = {
        "DATABASE_URL": cluster.url,
        "PICLOUD_DATA_DIR": str(directory / "data"),
        "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PICLOUD_EXECUTOR_PROCESSES": "1",
    }
    server = LiveServer(env, directory / "server.log").start()
    try:
        admin = login(server.url, "admin", ADMIN_PASSWORD)
        app_id = admin.get("/api/v1/admin/apps/default").json()["id"]
        script = admin.post(
            "/api/v1/admin/scripts", json={"app_id": app_id, "name": "count-runs", "source": COUNTER_SCRIPT}
        )
        assert script.status_code == 201, script.text
        trigger = admin.post(
            "/api/v1/admin/apps/default/triggers/kv",
            json={
                "script_id": script.json()["id"],
                "key_glob": "w:*",
                "ops": ["set"],
                "retry": {"max_attempts": 50, "backoff": "constant", "base_delay_ms": 200, "jitter": 0},
            },
        )
        assert trigger.status_code == 201, trigger.text
        writer = admin.post("/api/v1/admin/scripts", json={"app_id": app_id, "name": "writer", "source": WRITER_SCRIPT})
        assert writer.status_code == 201, writer.text
        route = admin.post("/api/v1/admin/apps/default/routes",
                           json={"method": "POST", "path": "/write", "script_id": writer.json()["id"]})
        assert route.status_code == 201, route.text
        dashboard = Dashboard(server.url, "admin", ADMIN_PASSWORD)
        yield server, admin, dashboard, script.json()["id"]
    finally:
        server.stop()


class Traffic:
    """Light traffic in two threads: KV writes, and /healthz polls with their latency."""

    def __init__(self, server, admin, prefix):
        self.server, self.admin, self.prefix = server, admin, prefix
        self.acknowledged = []
        self.write_statuses = []
        self.health = []  # (monotonic time sent, seconds taken, status, body)
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._write), threading.Thread(target=self._poll_health)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _write(self):
        n = 0
        while not self._stop.is_set():
            n += 1
            key = f"w:{self.prefix}:{n}"
            try:
                status = self.admin.put(f"/api/v1/admin/apps/default/kv/{key}", json=n, timeout=10).status_code
            except requests.RequestException:
                status = None
            self.write_statuses.append(status)
            if status == 200:
                self.acknowledged.append(key)
            time.sleep(0.05)

    def _poll_health(self):
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                response = requests.get(self.server.url + "/healthz", timeout=10)
                status, body = response.status_code, response.json()
            except requests.RequestException:
                status, body = None, None
            self.health.append((sent, time.monotonic() - sent, status, body))
            time.sleep(0.1)


def refused_bodies(server, admin, dashboard, script_id):
    """Call one endpoint of each kind; return (what, response) pairs."""
    calls = [
        ("admin API", lambda: admin.get("/api/v1/admin/apps")),
        ("KV write", lambda: admin.put("/api/v1/admin/apps/default/kv/outage-probe", json=1)),
        ("execute", lambda: admin.post(f"/api/v1/execute/{script_id}", json={})),
        ("token", lambda: requests.post(
            server.url + "/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=10)),
        ("dashboard", lambda: dashboard.get("/admin/apps")),
        ("a script's KV write", lambda: requests.post(server.url + "/write", headers={"Host": "localhost"}, timeout=10)),
    ]
    return [(what, call()) for what, call in calls]


def everything_works(server, admin):
    """Tell whether health, a KV write, an admin read and a user route all succeed."""
    try:
        return (
            requests.get(server.url + "/healthz", timeout=5).status_code == 200
            and admin.put("/api/v1/admin/apps/default/kv/recovery-probe", json=1, timeout=5).status_code == 200
            and admin.get("/api/v1/admin/apps", timeout=5).status_code == 200
            and requests.get(server.url + "/", headers=USER_HOST, timeout=5).status_code == 200
        )
    except requests.RequestException:
        return False


def event_counts(admin, prefix):
    """Return {written key: times its event ran} for one outage's writes."""
    counts, cursor = {}, None
    while True:
        params = {"prefix": f"ran:w:{prefix}:", "limit": 500, **({"cursor": cursor} if cursor else {})}
        page = admin.get("/api/v1/admin/apps/default/kv", params=params).json()
        counts.update({item["key"][len("ran:"):]: item["value"] for item in page["items"]})
        cursor = page["next_cursor"]
        if not cursor:
            return counts


@pytest.mark.parametrize("outage_seconds", [10, 30])
def test_an_outage_is_reported_fast_and_heals_within_two_seconds(cluster, platform, figures, outage_seconds):
    server, admin, dashboard, script_id = platform
    prefix = f"outage{outage_seconds}"
    assert everything_works(server, admin)
    with Traffic(server, admin, prefix) as traffic:
        time.sleep(2)
        cluster.stop()
        down_at = time.monotonic()
        time.sleep(1)
        refused = refused_bodies(server, admin, dashboard, script_id)
        time.sleep(max(0.0, outage_seconds - (time.monotonic() - down_at)))
        # PostgreSQL accepts connections before pg_ctl returns: the outage ends when starting.
        starting_at = time.monotonic()
        cluster.start()
        up_at = time.monotonic()
        while not everything_works(server, admin):
            assert time.monotonic() - up_at < 30, "the server did not recover within 30 s"
            time.sleep(0.05)
        recovery = time.monotonic() - up_at
        time.sleep(2)

    during = [h for h in traffic.health if down_at + 0.5 <= h[0] and h[0] + h[1] <= starting_at]
    slowest = max(seconds for _, seconds, _, _ in during)
    figures.add(f"postgres {outage_seconds}s outage: slowest /healthz", f"{slowest:.3f} s",
                f"< {HEALTHZ_GOAL_SECONDS:g} s", slowest < HEALTHZ_GOAL_SECONDS)
    figures.add(f"postgres {outage_seconds}s outage: recovery after restart", f"{recovery:.2f} s",
                f"<= {RECOVERY_GOAL_SECONDS:g} s", recovery <= RECOVERY_GOAL_SECONDS)

    assert {(status, body["database"]) for _, _, status, body in during} == {(503, "unavailable")}
    assert slowest < HEALTHZ_GOAL_SECONDS
    assert recovery <= RECOVERY_GOAL_SECONDS
    for what, response in refused:
        assert response.status_code == 503, (what, response.text)
        assert response.headers["Retry-After"] == "1", what
        if what == "dashboard":
            assert "database unavailable" in response.text, response.text
        else:
            assert response.json()["error"]["code"] == "database_unavailable", (what, response.text)
    assert 503 in traffic.write_statuses and 500 not in traffic.write_statuses

    deadline = time.monotonic() + EVENTS_DEADLINE_SECONDS
    while len(counts := event_counts(admin, prefix)) < len(traffic.acknowledged):
        assert time.monotonic() < deadline, f"{len(counts)} of {len(traffic.acknowledged)} events ran"
        time.sleep(0.5)
    once = sum(1 for key in traffic.acknowledged if counts.get(key) == 1)
    figures.add(f"postgres {outage_seconds}s outage: acknowledged writes whose event ran once",
                f"{once}/{len(traffic.acknowledged)}", "all", once == len(traffic.acknowledged))
    assert once == len(traffic.acknowledged)
    assert set(counts.values()) == {1}
