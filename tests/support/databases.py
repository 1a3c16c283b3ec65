"""Throw-away databases for tests: a SQLite file, or a fresh PostgreSQL database."""
import contextlib
import os
import uuid

import psycopg

PG_ADMIN_URL = os.environ.get(
    "PICLOUD_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def backend():
    """Return the backend the suite runs on: ``sqlite`` or ``postgres``."""
    return os.environ.get("PICLOUD_TEST_DB", "sqlite")


@contextlib.contextmanager
def temporary_database(tmp_path):
    """Yield a DATABASE_URL for an empty database that is removed afterwards."""
    if backend() == "sqlite":
        yield f"sqlite:///{tmp_path / 'picloud.db'}"
        return
    name = f"picloud_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
