"""What the benchmarks that start PiCloud share: the server, an admin client, processes.

Standard library only (psycopg, for a temporary PostgreSQL database, is imported when
asked for), so a bench runs wherever PiCloud does. Import it as
``bench.support`` with the project root on ``sys.path`` (see the top of
bench/events.py: run as a script, a bench's own folder must leave ``sys.path``, or
bench/http.py would shadow the standard library's ``http`` package).
"""
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ADMIN_PASSWORD = "bench-admin-password"
PG_ADMIN_URL = os.environ.get("PICLOUD_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    """A tiny JSON client for the admin API."""

    def __init__(self, base_url, token=None):
        self.base_url = base_url
        self.token = token

    @classmethod
    def admin(cls, base_url):
        """Log in as ``admin`` (with ADMIN_PASSWORD) and return a client holding the token."""
        body = {"username": "admin", "password": ADMIN_PASSWORD}
        return cls(base_url, expect(cls(base_url).call("POST", "/api/v1/auth/token", body), 201)["token"])

    def call(self, method, path, body=None, host=None, timeout=120):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.base_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        if host:
            request.add_header("Host", host)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw and raw[:1] in b"{[" else raw
        except urllib.error.HTTPError as error:
            return error.code, error.read()


def expect(status_body, status):
    """Return the body of a (status, body) answer, or stop the bench if the status differs."""
    got, body = status_body
    if got != status:
        raise SystemExit(f"expected {status}, got {got}: {body!r}")
    return body


def start_server(env, log_path, module="app:app", ready_path="/healthz"):
    """Start ``gunicorn -c gunicorn.conf.py <module>``; return (process, base URL) once
    ``ready_path`` answers 2xx. The access log is off: it would cost every app alike."""
    port = free_port()
    env = {**os.environ, **env, "PICLOUD_BIND": f"127.0.0.1:{port}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", module, "--access-logfile", "/dev/null"],
        cwd=ROOT, env=env, stdout=open(log_path, "wb"), stderr=subprocess.STDOUT,
    )
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{module} exited early; see {log_path}")
        try:
            with urllib.request.urlopen(base_url + ready_path, timeout=2):
                return process, base_url
        except OSError:  # not listening yet, or not ready (an HTTPError is an OSError)
            time.sleep(0.2)
    stop_server(process)
    raise SystemExit(f"{module} did not start; see {log_path}")


def stop_server(process):
    process.terminate()
    try:
        process.wait(90)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def children(pid):
    """Return the ids of the processes whose parent is ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # The command name is in parentheses and may hold spaces: the parent id follows it.
        if int(stat.rpartition(")")[2].split()[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root):
    """Return the CPU seconds (user + system) the process tree under ``root`` has used."""
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / CLOCK_TICKS
        pending.extend(children(pid))
    return total


def temporary_postgres():
    """Create a fresh PostgreSQL database; return (its URL, a function that drops it)."""
    import psycopg

    name = f"picloud_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, drop


def run_threads(target, count):
    """Run ``target`` in ``count`` threads and wait for all of them."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class Background:
    """``count`` threads running ``self.work`` while a ``with`` block runs.

    ``work`` loops until ``self.stopping`` is set, which leaving the block does.
    """

    def __init__(self, count):
        self.stopping = threading.Event()
        self._threads = [threading.Thread(target=self.work, daemon=True) for _ in range(count)]

    def __enter__(self):
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc_info):
        self.stopping.set()
        for thread in self._threads:
            thread.join()

    def work(self):
        raise NotImplementedError
