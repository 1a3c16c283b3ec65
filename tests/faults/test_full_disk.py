"""SQLite on an 8 MiB tmpfs, filled until writes fail, restarted full, then given space.

Goals: writes answer 507 ``storage_full`` saying so (token creation included); reads,
the dashboard and execution listings keep working; ``/healthz`` answers 503 with
``"database": "read_only"``; a restart on the full disk serves read-only; once space is
freed everything works again within 2 s and the execution records queued meanwhile are
written.
"""
import os
import subprocess
import tempfile
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import ADMIN_PASSWORD
from tests.support.dashboard import Dashboard
from tests.support.live import Api, LiveServer, login

RECOVERY_GOAL_SECONDS = 2.0
RECORDS_DEADLINE_SECONDS = 10
USER_HOST = {"Host": "localhost"}
VALUE = "v" * 60_000

pytestmark = pytest.mark.faults


@pytest.fixture
def small_disk():
    """Yield the mount point of a fresh 8 MiB tmpfs."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs as root)")
    mount_point = Path(tempfile.mkdtemp(prefix="picloud-full-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        mount_point.rmdir()
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)
        mount_point.rmdir()


def fill(directory):
    """Fill the filesystem with one file and return its path."""
    filler = directory / "filler"
    with open(filler, "wb") as out:
        try:
            while True:
                out.write(b"\0" * 65536)
                out.flush()
        except OSError:
            pass
    return filler


def add_writing_route(admin):
    """Give the default app POST /write, whose script writes a large KV value."""
    app_id = admin.get("/api/v1/admin/apps/default").json()["id"]
    source = f'kv.set("from-script", string.rep("w", {len(VALUE)}))\nreturn "written"'
    script = admin.post("/api/v1/admin/scripts", json={"app_id": app_id, "name": "writer", "source": source})
    assert script.status_code == 201, script.text
    route = admin.post("/api/v1/admin/apps/default/routes",
                       json={"method": "POST", "path": "/write", "script_id": script.json()["id"]})
    assert route.status_code == 201, route.text


def write_until_refused(admin):
    """PUT large KV values until one is refused; return that response."""
    for n in range(200):
        response = admin.put(f"/api/v1/admin/apps/default/kv/big-{n}", json=VALUE)
        if response.status_code != 200:
            return response
    raise AssertionError("200 writes of 60 kB fitted on an 8 MiB disk")


def assert_read_only(server, admin, dashboard):
    """Reads, the dashboard and listings work; writes and token creation answer 507."""
    health = requests.get(server.url + "/healthz", timeout=5)
    assert (health.status_code, health.json()["database"]) == (503, "read_only")
    assert admin.get("/api/v1/admin/apps/default/kv/kept").json()["value"] == "before the disk filled"
    assert admin.get("/api/v1/admin/apps").status_code == 200
    assert admin.get("/api/v1/admin/apps/default/executions").status_code == 200
    assert dashboard.get("/admin/apps").status_code == 200
    assert requests.get(server.url + "/", headers=USER_HOST, timeout=5).text == "Hello from PiCloud!"
    for response in (
        admin.put("/api/v1/admin/apps/default/kv/refused", json=VALUE),
        requests.post(server.url + "/api/v1/auth/token",
                      json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=10),
    ):
        assert response.status_code == 507, response.text
        error = response.json()["error"]
        assert error["code"] == "storage_full"
        assert "disk is full" in error["message"]


def executions_count(admin):
    listed, cursor = 0, None
    while True:
        params = {"limit": 500, **({"cursor": cursor} if cursor else {})}
        page = admin.get("/api/v1/admin/apps/default/executions", params=params).json()
        listed += len(page["executions"])
        cursor = page["next_cursor"]
        if not cursor:
            return listed


def test_a_full_disk_is_reported_survives_a_restart_and_recovers(small_disk, tmp_path, figures):
    env = {
        "DATABASE_URL": f"sqlite:///{small_disk}/picloud.db",
        "PICLOUD_DATA_DIR": str(small_disk),
        "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PICLOUD_EXECUTOR_PROCESSES": "1",
    }
    server = LiveServer(env, tmp_path / "server.log").start()
    try:
        admin = login(server.url, "admin", ADMIN_PASSWORD)
        assert admin.put("/api/v1/admin/apps/default/kv/kept", json="before the disk filled").status_code == 200
        add_writing_route(admin)
        dashboard = Dashboard(server.url, "admin", ADMIN_PASSWORD)
        filler = fill(small_disk)
        refused = write_until_refused(admin)
        assert refused.status_code == 507, refused.text
        assert_read_only(server, admin, dashboard)
        # A script's own write meets the full disk: the caller is told so, not "internal error".
        written = requests.post(server.url + "/write", headers=USER_HOST, timeout=10)
        assert written.status_code == 507 and written.json()["error"]["code"] == "storage_full", written.text
        assert "execution_id" in written.json()["error"]
    finally:
        server.stop()
    assert server.process.returncode == 0

    restarted = LiveServer(env, tmp_path / "restarted.log")
    restarted.start()  # raises if it exits instead of serving
    try:
        admin = Api(restarted.url, admin.token)
        stored = executions_count(admin)
        assert_read_only(restarted, admin, Dashboard(restarted.url, "admin", ADMIN_PASSWORD))
        runs = 21  # the one assert_read_only made, and 20 more
        for _ in range(runs - 1):
            assert requests.get(restarted.url + "/", headers=USER_HOST, timeout=5).status_code == 200
        freed_at = time.monotonic()
        filler.unlink()
        while not (
            admin.put("/api/v1/admin/apps/default/kv/after", json=1).status_code == 200
            and requests.get(restarted.url + "/healthz", timeout=5).status_code == 200
        ):
            assert time.monotonic() - freed_at < 30, "writes did not resume within 30 s of freeing space"
            time.sleep(0.05)
        recovery = time.monotonic() - freed_at
        while (written := executions_count(admin) - stored) < runs:
            assert time.monotonic() - freed_at < RECORDS_DEADLINE_SECONDS, f"{written} of {runs} records written"
            time.sleep(0.2)
        records_at = time.monotonic() - freed_at
        token = requests.post(restarted.url + "/api/v1/auth/token",
                              json={"username": "admin", "password": ADMIN_PASSWORD}, timeout=10)
    finally:
        restarted.stop()

    figures.add("full disk: writes refused with", f"{refused.status_code}", "507 storage_full", True)
    figures.add("full disk: restart on the full disk", "serves", "read-only", True)
    figures.add("full disk: recovery after freeing space", f"{recovery:.2f} s",
                f"<= {RECOVERY_GOAL_SECONDS:g} s", recovery <= RECOVERY_GOAL_SECONDS)
    figures.add("full disk: records queued while full, written", f"{written}/{runs} in {records_at:.1f} s",
                "all", written >= runs)
    assert recovery <= RECOVERY_GOAL_SECONDS
    assert token.status_code == 201
