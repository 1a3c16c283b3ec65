"""docs/api.md §7/§9: a mutation and its events commit together or not at all; apps own their data.

To make the event write fail without touching PiCloud's code, the database itself is
told to refuse outbox rows of one app (a trigger, on SQLite and on PostgreSQL).
"""
import contextlib

import pytest

from picloud.db import connection, is_postgres
from picloud.models import Document, KVEntry
from tests.data.conftest import add_trigger, docs_url, kv_url, run_lua, wait_for


@contextlib.contextmanager
def refused_events(database, app_id):
    """Make every insert of an outbox event for ``app_id`` fail while the block runs."""
    name = f"refuse_events_{app_id}"
    with connection():
        if is_postgres():
            database.execute_sql(
                f"CREATE FUNCTION {name}() RETURNS trigger AS $$ BEGIN "
                f"IF NEW.app_id = {int(app_id)} THEN RAISE EXCEPTION 'refused by the test'; END IF; "
                "RETURN NEW; END $$ LANGUAGE plpgsql"
            )
            database.execute_sql(
                f"CREATE TRIGGER {name} BEFORE INSERT ON outbox_events FOR EACH ROW EXECUTE FUNCTION {name}()"
            )
        else:
            database.execute_sql(
                f"CREATE TRIGGER {name} BEFORE INSERT ON outbox_events WHEN NEW.app_id = {int(app_id)} "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
    try:
        yield
    finally:
        with connection():
            database.execute_sql(f"DROP TRIGGER {name}" + (" ON outbox_events" if is_postgres() else ""))
            if is_postgres():
                database.execute_sql(f"DROP FUNCTION {name}()")


@pytest.fixture
def guarded(site):
    """A site with KV and docs triggers on ``guarded*`` whose script records each run."""
    recorder = site.script('kv.incr("runs")')
    add_trigger(site, "kv", recorder, key_glob="guarded*")
    add_trigger(site, "docs", recorder, collection_glob="guarded*")
    return site


def test_a_kv_write_whose_event_fails_leaves_nothing(guarded, database):
    site = guarded
    assert site.api.put(kv_url(site, "guarded/old"), json="before").status_code == 200
    wait_for(lambda: site.api.get(kv_url(site, "runs")).status_code == 200, what="the first run")
    with refused_events(database, site.app["id"]):
        created = site.api.put(kv_url(site, "guarded/new"), json=1)
        updated = site.api.put(kv_url(site, "guarded/old"), json="after")
        deleted = site.api.delete(kv_url(site, "guarded/old"))
        untriggered = site.api.put(kv_url(site, "free"), json=1)
    assert [created.status_code, updated.status_code, deleted.status_code] == [500, 500, 500]
    assert created.json()["error"]["code"] == "internal_error"
    assert untriggered.status_code == 200  # no event to write, nothing to refuse
    assert site.api.get(kv_url(site, "guarded/new")).status_code == 404
    assert site.api.get(kv_url(site, "guarded/old")).json()["value"] == "before"
    assert site.api.put(kv_url(site, "guarded/new"), json=2).status_code == 200
    wait_for(lambda: site.api.get(kv_url(site, "runs")).json()["value"] == 2, what="the run after recovery")


def test_a_docs_write_whose_event_fails_leaves_nothing(guarded, database):
    site = guarded
    assert site.api.post(docs_url(site, "guarded"), json={"_id": "d", "v": 1}).status_code == 201
    with refused_events(database, site.app["id"]):
        inserted = site.api.post(docs_url(site, "guarded"), json={"_id": "e"})
        replaced = site.api.put(docs_url(site, "guarded", "d"), json={"v": 2})
        deleted = site.api.delete(docs_url(site, "guarded", "d"))
    assert [inserted.status_code, replaced.status_code, deleted.status_code] == [500, 500, 500]
    assert site.api.get(docs_url(site, "guarded", "e")).status_code == 404
    assert site.api.get(docs_url(site, "guarded", "d")).json() == {"_id": "d", "v": 1}
    assert site.api.get(docs_url(site)).json()["collections"] == [{"name": "guarded", "count": 1}]


def test_a_script_write_whose_event_fails_ends_the_run_and_leaves_nothing(guarded, database):
    site = guarded
    with refused_events(database, site.app["id"]):
        response = run_lua(site, 'kv.set("free", 1) kv.set("guarded/x", 1) return "unreachable"')
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    # Each call is its own transaction: the write before the failing one stays.
    assert site.api.get(kv_url(site, "free")).json()["value"] == 1
    assert site.api.get(kv_url(site, "guarded/x")).status_code == 404


def test_a_failed_write_emits_no_event(guarded):
    site = guarded
    assert site.api.post(docs_url(site, "guarded"), json={"_id": "d"}).status_code == 201
    assert site.api.post(docs_url(site, "guarded"), json={"_id": "d"}).status_code == 409
    assert site.api.put(kv_url(site, "guarded/bad\x00key"), json=1).status_code == 422
    assert site.api.put(kv_url(site, "guarded/ok"), json=1).status_code == 200
    wait_for(lambda: (site.api.get(kv_url(site, "runs")).json() or {}).get("value") == 2, what="two runs")
    queued = site.api.get(
        f"/api/v1/admin/apps/{site.app['id']}/executions", params={"source": "docs"}
    ).json()["executions"]
    assert len(queued) == 1


def test_deleting_an_app_deletes_its_data(site, database):
    assert site.api.put(kv_url(site, "k"), json=1).status_code == 200
    assert site.api.post(docs_url(site, "c"), json={"_id": "d"}).status_code == 201
    app_id = site.app["id"]
    assert site.api.delete(f"/api/v1/admin/apps/{app_id}").status_code == 204
    with connection():
        assert KVEntry.select().where(KVEntry.app == app_id).count() == 0
        assert Document.select().where(Document.app == app_id).count() == 0
