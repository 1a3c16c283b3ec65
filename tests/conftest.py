"""Fixtures shared by the whole suite.

The suite runs on one backend per run, chosen by ``PICLOUD_TEST_DB`` (``sqlite``, the
default, or ``postgres``). Tests that talk HTTP use a real server in a child process
(``server``); tests of in-process code use the same database through ``database``.
"""
import uuid

import pytest

from picloud import db as database_module
from picloud.config import load_settings
from picloud.migrate import migrate
from tests.support.databases import temporary_database
from tests.support.live import Api, LiveServer, login

ADMIN_PASSWORD = "admin-password-for-tests"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory):
    with temporary_database(tmp_path_factory.mktemp("db")) as url:
        yield url


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("data")


@pytest.fixture(scope="session")
def server_env(database_url, data_dir):
    return {
        "DATABASE_URL": database_url,
        "PICLOUD_DATA_DIR": str(data_dir),
        "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "PICLOUD_EXECUTOR_PROCESSES": "2",
    }


@pytest.fixture(scope="session")
def settings(server_env):
    return load_settings(server_env)


@pytest.fixture(scope="session")
def database(settings):
    """Bind the models in this process to the suite's (migrated) database."""
    database_module.init_db(settings.database_url)
    migrate(settings)
    yield database_module.db
    database_module.close_db()


@pytest.fixture(scope="session")
def server(server_env, tmp_path_factory, database):
    live = LiveServer(server_env, tmp_path_factory.mktemp("server") / "server.log").start()
    yield live
    live.stop()


@pytest.fixture(scope="session")
def admin(server):
    """An Api client holding an admin token."""
    return login(server.url, "admin", ADMIN_PASSWORD)


@pytest.fixture
def anonymous(server):
    return Api(server.url)


@pytest.fixture
def unique():
    """Return a function making unique names: unique("app") -> "app-1a2b3c"."""
    return lambda prefix="t": f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def make_user(admin, server, unique):
    """Create a user with a role and return (user dict, Api with their token)."""

    def make(role="developer"):
        username = unique(role)
        password = "password-" + uuid.uuid4().hex
        response = admin.post(
            "/api/v1/admin/users",
            json={"username": username, "password": password, "role": role},
        )
        assert response.status_code == 201, response.text
        return response.json(), login(server.url, username, password)

    return make
