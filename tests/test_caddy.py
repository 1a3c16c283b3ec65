"""The shipped Caddyfile in front of a real PiCloud: on-demand TLS for claimed names only.

Caddy runs on 127.0.0.1 with the project's Caddyfile, adapted to JSON and changed only
where a test machine differs from a server: free local ports, its own storage and
home, certificates from Caddy's internal CA (``tls internal``, never installed into
the system's trust store) instead of a public one. ``curl --resolve`` then plays the
browser of a user whose DNS points the name at this proxy.
"""
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests

from tests.support.apps import new_site, wait_for
from tests.support.live import ROOT, LiveServer, free_port, login

CADDY = shutil.which("caddy")

pytestmark = pytest.mark.skipif(
    CADDY is None and os.environ.get("CI") != "true",
    reason="caddy is not installed (.ci/run installs it)",
)

# The script answers with what it saw of the request.
ECHO = """
return {host = request.host, forwarded_for = request.headers["x-forwarded-for"],
        forwarded_proto = request.headers["x-forwarded-proto"], text = "hello over TLS"}
"""


class Caddy:
    """A Caddy process with its own home, storage and ports on 127.0.0.1."""

    def __init__(self, tmp_path, upstream):
        self.home = tmp_path / "caddy"
        self.home.mkdir()
        self.https_port = free_port()
        self.http_port = free_port()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.home),
            "XDG_DATA_HOME": str(self.home / "data"),
            "XDG_CONFIG_HOME": str(self.home / "config"),
            "PICLOUD_UPSTREAM": upstream,
            "PICLOUD_SITE": "dashboard.caddy.test",
        }
        self.config = self.home / "caddy.json"
        self.log_path = self.home / "caddy.log"
        self.process = None

    def adapt(self):
        """Adapt the project's Caddyfile and point it at this test's ports and storage."""
        adapted = subprocess.run(
            [CADDY, "adapt", "--config", str(ROOT / "Caddyfile"), "--adapter", "caddyfile"],
            env=self.env,
            capture_output=True,
            check=True,
            text=True,
        )
        config = json.loads(adapted.stdout)
        config["admin"] = {"disabled": True}
        config["storage"] = {"module": "file_system", "root": str(self.home / "storage")}
        config["apps"]["pki"] = {"certificate_authorities": {"local": {"install_trust": False}}}
        http = config["apps"]["http"]
        http["http_port"] = self.http_port
        http["https_port"] = self.https_port
        for server in http["servers"].values():
            server["listen"] = [f"127.0.0.1:{self.https_port}"]
            server["automatic_https"] = {"disable_redirects": True}
        for policy in config["apps"]["tls"]["automation"]["policies"]:
            policy["issuers"] = [{"module": "internal"}]
        self.config.write_text(json.dumps(config))
        return config

    def start(self, timeout=20):
        self.adapt()
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [CADDY, "run", "--config", str(self.config)],
            env=self.env,
            cwd=self.home,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while not self.root_certificate().exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"caddy did not start:\n{self.log_path.read_text()[-3000:]}")
            time.sleep(0.1)
        return self

    def root_certificate(self):
        return self.home / "storage" / "pki" / "authorities" / "local" / "root.crt"

    def issued(self, name):
        """Tell whether Caddy holds a certificate for ``name``."""
        return any((self.home / "storage" / "certificates").glob(f"*/{name}/{name}.crt"))

    def curl(self, name, path="/", *headers):
        """Request https://name/path through Caddy, as a client resolving name to it."""
        args = [
            "curl", "-sS", "--max-time", "20",
            "--resolve", f"{name}:{self.https_port}:127.0.0.1",
            "--cacert", str(self.root_certificate()),
            "-w", "\n%{http_code}",
        ]
        for header in headers:
            args += ["-H", header]
        return subprocess.run(args + [f"https://{name}:{self.https_port}{path}"], capture_output=True, text=True)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@pytest.fixture(scope="module")
def proxied(server_env, tmp_path_factory, database):
    """A PiCloud server trusting one proxy, and Caddy in front of it."""
    if CADDY is None:
        pytest.fail("caddy is not installed and CI requires it")
    tmp_path = tmp_path_factory.mktemp("caddy")
    picloud = LiveServer({**server_env, "PICLOUD_PROXY_COUNT": "1"}, tmp_path / "server.log").start()
    caddy = None
    try:
        caddy = Caddy(tmp_path, f"127.0.0.1:{picloud.port}").start()
        yield picloud, caddy
    finally:
        if caddy is not None:
            caddy.stop()
        picloud.stop()


@pytest.fixture(scope="module")
def claimed(proxied, server_env):
    """An app claiming a name, with a route that echoes what its script saw."""
    picloud, _ = proxied
    api = login(picloud.url, "admin", server_env["PICLOUD_ADMIN_PASSWORD"])
    site = new_site(api, picloud.url, "tls")
    site.route("/whoami", source=ECHO)
    return site


def test_a_claimed_name_gets_a_certificate_and_the_scripts_answer(proxied, claimed):
    _, caddy = proxied
    assert not caddy.issued(claimed.host)
    # A forged header from the client must not become the address the script trusts.
    result = caddy.curl(claimed.host, "/whoami", "X-Forwarded-For: 203.0.113.9")
    assert result.returncode == 0, result.stderr
    body, _, status = result.stdout.rpartition("\n")
    assert status == "200", body
    seen = json.loads(body)
    assert seen["text"] == "hello over TLS"
    assert seen["host"] == claimed.host
    assert seen["forwarded_proto"] == "https"
    # With PICLOUD_PROXY_COUNT=1 the client is the last address the proxy appended.
    assert seen["forwarded_for"].split(",")[-1].strip() == "127.0.0.1"
    assert caddy.issued(claimed.host)


def test_an_unclaimed_name_gets_no_certificate(proxied):
    _, caddy = proxied
    result = caddy.curl("nobody-claims-this.caddy.test")
    assert result.returncode != 0
    assert "200" not in result.stdout
    assert not caddy.issued("nobody-claims-this.caddy.test")


def test_a_name_claimed_after_start_is_served_without_touching_caddy(proxied, claimed, unique):
    picloud, caddy = proxied
    name = f"{unique('later')}.caddy.test"
    assert caddy.curl(name).returncode != 0
    claim = claimed.api.post(f"/api/v1/admin/apps/{claimed.app['id']}/domains", json={"pattern": f"*.{name}"})
    assert claim.status_code == 201, claim.text
    sub = f"shop.{name}"
    result = wait_for(lambda: (r := caddy.curl(sub, "/whoami")).returncode == 0 and r, what="the certificate")
    assert result.stdout.endswith("\n200")
    assert json.loads(result.stdout.rpartition("\n")[0])["host"] == sub


def test_the_dashboard_name_is_served(proxied):
    picloud, caddy = proxied
    result = caddy.curl("dashboard.caddy.test", "/healthz")
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("\n200")
    assert requests.get(picloud.url + "/healthz", timeout=5).json()["status"] == "ok"
