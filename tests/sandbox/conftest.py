"""Sandbox fixtures: real executor processes, no database."""
import pytest

from picloud.sandbox import ExecutorPool

from .jobs import make_job


@pytest.fixture(scope="session")
def pool():
    with ExecutorPool(2) as pool:
        yield pool


@pytest.fixture
def run(pool):
    """Run Lua source through the shared pool: ``run(source, host=None, **job options)``."""

    def run(source, *, host=None, **options):
        return pool.run(make_job(source, **options), host=host)

    return run
