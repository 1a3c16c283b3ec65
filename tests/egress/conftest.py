"""A PiCloud server allowed to call one local upstream (and a closed port), and sites on it."""
import uuid

import pytest

from tests.support.apps import new_site, site  # noqa: F401  (fixtures)
from tests.support.databases import temporary_database
from tests.support.live import LiveServer, free_port, login
from tests.support.upstream import TlsUpstream, Upstream
from tests.conftest import ADMIN_PASSWORD


@pytest.fixture(scope="session")
def upstream():
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tls_upstream(tmp_path_factory):
    server = TlsUpstream(tmp_path_factory.mktemp("tls")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def closed_port():
    """A port of 127.0.0.1 nothing listens on."""
    return free_port()


@pytest.fixture(scope="package")
def egress_server(server_env, tmp_path_factory, upstream, tls_upstream, closed_port):
    """PiCloud with PICLOUD_EGRESS_ALLOW naming the upstreams and the closed port only.

    On a database of its own, and stopped when this package's tests end: a second
    server on the suite's database would run other tests' events.
    """
    allowed = [f"127.0.0.1:{port}" for port in (upstream.port, tls_upstream.port, closed_port)]
    directory = tmp_path_factory.mktemp("egress")
    with temporary_database(directory) as url:
        env = {**server_env, "DATABASE_URL": url, "PICLOUD_DATA_DIR": str(directory),
               "PICLOUD_EGRESS_ALLOW": ",".join(allowed)}
        live = LiveServer(env, directory / "server.log").start()
        yield live
        live.stop()


@pytest.fixture(scope="package")
def egress_admin(egress_server):
    return login(egress_server.url, "admin", ADMIN_PASSWORD)


@pytest.fixture
def world(egress_admin, egress_server):
    """A fresh app on the server that may call the upstream."""
    return new_site(egress_admin, egress_server.url, "world")


def run(site, source, method="GET", sandbox=None, timeout_seconds=None, **call):
    """Put ``source`` behind a fresh route of the site, call it, return the response."""
    fields = {}
    if sandbox is not None:
        fields["sandbox"] = sandbox
    if timeout_seconds is not None:
        fields["timeout_seconds"] = timeout_seconds
    path = f"/run-{uuid.uuid4().hex[:8]}"
    site.route(path, method=method, script=site.script(source, **fields))
    return site.call(path, method=method, **call)


def last_execution(site):
    response = site.api.get(f"/api/v1/admin/apps/{site.app['id']}/executions", params={"limit": 1})
    assert response.status_code == 200, response.text
    execution_id = response.json()["executions"][0]["id"]
    return site.api.get(f"/api/v1/admin/executions/{execution_id}").json()
