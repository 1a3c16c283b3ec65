"""A real PiCloud server in a child process, for tests over HTTP."""
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class LiveServer:
    """Run ``python app.py`` (or another entry script, or ``argv``) on a free port."""

    def __init__(self, env, log_path, script="app.py", argv=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, **env, "PICLOUD_BIND": f"127.0.0.1:{self.port}"}
        self.log_path = Path(log_path)
        self.argv = argv or [sys.executable, str(ROOT / script)]
        self.process = None

    def start(self, timeout=30):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            self.argv,
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early; see {self.log_path}:\n{self.log()}")
            try:
                requests.get(self.url + "/healthz", timeout=1)
                return self
            except (requests.ConnectionError, requests.Timeout):  # gunicorn listens before its workers serve
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"server did not start; see {self.log_path}:\n{self.log()}")

    def log(self):
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, sig=signal.SIGTERM, timeout=15):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class Api:
    """A small client for the JSON API: ``api.get("/api/v1/auth/me")``."""

    def __init__(self, base_url, token=None):
        self.base_url = base_url
        self.session = requests.Session()
        self.token = token
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def request(self, method, path, **kwargs):
        kwargs.setdefault("timeout", 30)
        kwargs.setdefault("allow_redirects", False)
        return self.session.request(method, self.base_url + path, **kwargs)

    def get(self, path, **kwargs):
        return self.request("GET", path, **kwargs)

    def post(self, path, **kwargs):
        return self.request("POST", path, **kwargs)

    def put(self, path, **kwargs):
        return self.request("PUT", path, **kwargs)

    def patch(self, path, **kwargs):
        return self.request("PATCH", path, **kwargs)

    def delete(self, path, **kwargs):
        return self.request("DELETE", path, **kwargs)


def login(base_url, username, password):
    """Return an Api holding a fresh token for these credentials."""
    response = requests.post(
        base_url + "/api/v1/auth/token",
        json={"username": username, "password": password, "name": "tests"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return Api(base_url, response.json()["token"])
