"""Start-up and outage behaviour against a database of its own: 503 when it is gone,
one default app when several workers start together."""
import threading
import time
from pathlib import Path

import psycopg
import pytest
import requests

from tests.conftest import ADMIN_PASSWORD
from tests.support.databases import PG_ADMIN_URL, backend, temporary_database
from tests.support.live import LiveServer, login


def test_user_routes_answer_503_while_the_database_is_gone(tmp_path):
    with temporary_database(tmp_path) as url:
        env = {
            "DATABASE_URL": url,
            "PICLOUD_DATA_DIR": str(tmp_path / "data"),
            "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PICLOUD_EXECUTOR_PROCESSES": "1",
        }
        server = LiveServer(env, tmp_path / "server.log").start()
        try:
            hello = lambda: requests.get(server.url + "/", headers={"Host": "localhost"}, timeout=10)  # noqa: E731
            deadline = time.monotonic() + 10
            while hello().status_code != 200:
                assert time.monotonic() < deadline
                time.sleep(0.1)
            take_database_away(url)
            deadline = time.monotonic() + 5
            while (response := hello()).status_code == 200 and time.monotonic() < deadline:
                time.sleep(0.1)
            assert response.status_code == 503, response.text
            assert response.json()["error"]["code"] == "database_unavailable"
            assert response.headers["Retry-After"] == "1"
        finally:
            server.stop()


def take_database_away(url):
    if backend() == "sqlite":
        path = Path(url[len("sqlite:///"):])
        for extra in (Path(f"{path}-wal"), Path(f"{path}-shm")):
            extra.unlink(missing_ok=True)
        path.write_bytes(b"this is no longer a database" * 100)
        return
    name = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def test_workers_starting_together_make_one_default_app(tmp_path):
    with temporary_database(tmp_path) as url:
        env = {
            "DATABASE_URL": url,
            "PICLOUD_DATA_DIR": str(tmp_path / "data"),
            "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "PICLOUD_EXECUTOR_PROCESSES": "1",
        }
        servers = [LiveServer(env, tmp_path / f"server{n}.log") for n in range(3)]
        starting = [threading.Thread(target=server.start) for server in servers]
        try:
            for thread in starting:
                thread.start()
            for thread in starting:
                thread.join()
            api = login(servers[0].url, "admin", ADMIN_PASSWORD)
            assert [a["slug"] for a in api.get("/api/v1/admin/apps").json()["apps"]] == ["default"]
            default = api.get("/api/v1/admin/apps/default").json()
            assert sorted(d["pattern"] for d in default["domains"]) == ["127.0.0.1", "localhost"]
            scripts = api.get("/api/v1/admin/scripts", params={"app": "default"}).json()["scripts"]
            assert [s["name"] for s in scripts] == ["hello"]
            routes = api.get("/api/v1/admin/apps/default/routes").json()["routes"]
            assert [(r["method"], r["path"]) for r in routes] == [("GET", "/")]
            for server in servers:
                response = requests.get(server.url + "/", headers={"Host": "localhost"}, timeout=10)
                assert response.text == "Hello from PiCloud!"
        finally:
            for server in servers:
                server.stop()


def test_a_pooled_connection_the_server_closed_is_replaced_on_borrow(tmp_path):
    if backend() != "postgres":
        pytest.skip("only the PostgreSQL pool keeps connections between requests")
    from picloud.db import make_database

    with temporary_database(tmp_path) as url:
        database = make_database(url)
        try:
            database.connect()
            pid = database.execute_sql("SELECT pg_backend_pid()").fetchone()[0]
            database.close()  # back to the pool, idle
            with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                conn.execute("SELECT pg_terminate_backend(%s)", (pid,))
                deadline = time.monotonic() + 5
                while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            database.connect()
            assert database.execute_sql("SELECT pg_backend_pid()").fetchone()[0] != pid
            database.close()
        finally:
            database.close_pool()
