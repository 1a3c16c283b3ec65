"""docs/api.md §2: /healthz, and what happens when the database goes away."""
import shutil

import psycopg
import pytest

from tests.support.databases import PG_ADMIN_URL, backend, temporary_database
from tests.support.live import Api, LiveServer


def test_healthz_reports_ok(anonymous):
    response = anonymous.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "database": "ok"}


def test_platform_endpoints_answer_on_any_host(anonymous):
    response = anonymous.get("/healthz", headers={"Host": "nobody-claims-this.example"})
    assert response.status_code == 200


def test_healthz_answers_503_when_the_database_is_gone(tmp_path):
    data_dir = tmp_path / "data"
    with temporary_database(tmp_path) as url:
        env = {"DATABASE_URL": url if backend() == "postgres" else f"sqlite:///{data_dir}/db/picloud.db",
               "PICLOUD_DATA_DIR": str(data_dir), "PICLOUD_ADMIN_PASSWORD": "password-1234"}
        server = LiveServer(env, tmp_path / "server.log").start()
        try:
            api = Api(server.url)
            assert api.get("/healthz").status_code == 200
            if backend() == "postgres":
                name = url.rsplit("/", 1)[1]
                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            else:
                # The server may add a file (the WAL) while the folder is being removed.
                while (data_dir / "db").exists():
                    shutil.rmtree(data_dir / "db", ignore_errors=True)
            response = api.get("/healthz")
            assert response.status_code == 503
            assert response.json()["database"] == "unavailable"
        finally:
            server.stop()


@pytest.mark.skipif(backend() != "postgres", reason="pg_sleep is a PostgreSQL function")
def test_slow_queries_do_not_block_other_requests(server_env, tmp_path):
    """20 requests that each wait 0.2 s on the database finish together, not in turn."""
    import concurrent.futures
    import time

    import requests

    server = LiveServer(server_env, tmp_path / "server.log", script="tests/support/sleepy_app.py").start()
    try:
        def call(_):
            return requests.get(server.url + "/api/__probe__/sleep", timeout=30).status_code

        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(call, range(20)))
        elapsed = time.monotonic() - started
    finally:
        server.stop()
    assert statuses == [200] * 20
    # In turn they would take 4 s; the pool has 10 connections, so two waves at most.
    assert elapsed < 2.0, f"20 slow requests took {elapsed:.2f}s"
