"""The manager layer in-process: the default app, counts and hourly activity."""
import datetime
import uuid

import pytest
from flask import Flask

from picloud.executions import ExecutionLogWriter
from picloud.manager.apps import (
    DEFAULT_SLUG,
    HELLO_SOURCE,
    app_counts,
    create_app,
    delete_app,
    ensure_default_app,
)
from picloud.metrics.figures import hourly_activity
from picloud.models import App, Domain, Route, RunCount, RunHour, Script, isoformat, utcnow


@pytest.fixture
def context(database, settings):
    flask_app = Flask(__name__)
    flask_app.config["PICLOUD"] = settings
    with flask_app.app_context():
        yield


@pytest.fixture
def app(context):
    made = create_app(f"mgr-{uuid.uuid4().hex[:8]}")
    yield made
    if App.select().where(App.id == made.id).exists():
        delete_app(made)


def test_the_default_app_is_ensured_once(context):
    first = ensure_default_app()
    again = ensure_default_app()
    assert first.id == again.id and first.slug == DEFAULT_SLUG
    assert {d.pattern for d in Domain.for_app(first)} >= {"localhost", "127.0.0.1"}
    hello = Script.for_app(first).where(Script.name == "hello")
    assert hello.count() == 1 and hello.get().source == HELLO_SOURCE
    assert Route.for_app(first).where(Route.path == "/").count() == 1


def run(writer, app, minutes_ago, status="ok"):
    """Queue the final record of a run queued ``minutes_ago`` with the log writer."""
    moment = utcnow() - datetime.timedelta(minutes=minutes_ago)
    writer.record({
        "id": str(uuid.uuid4()), "app_id": app.id, "script_id": None, "source": "http",
        "status": status, "queued_at": isoformat(moment), "duration_ms": 1.5,
    })


def test_counts_and_hourly_activity_come_from_the_logged_runs(app):
    writer = ExecutionLogWriter()
    run(writer, app, 1)
    run(writer, app, 2, "script_error")
    run(writer, app, 61, "timeout")
    run(writer, app, 60 * 30)  # outside the last 24 hours
    writer.record({"id": str(uuid.uuid4()), "app_id": app.id, "source": "http", "status": "queued",
                   "queued_at": isoformat(utcnow())})  # not finished: not counted
    writer.refused(app.id, "http")
    writer.flush_all()
    activity = hourly_activity(app.id)
    counts = app_counts(app, activity)
    assert counts == {
        "scripts": 0, "routes": 0, "domains": 0, "executions_24h": 3, "errors_24h": 2, "overloaded_24h": 1,
    }
    assert len(activity) == 24
    assert activity[-1].hour == utcnow().replace(minute=0, second=0, microsecond=0)
    assert sum(a.runs for a in activity) == 3
    assert sum(a.errors for a in activity) == 2
    assert [a.hour for a in activity] == sorted(a.hour for a in activity)


def test_deleting_an_app_deletes_its_run_figures(app):
    writer = ExecutionLogWriter()
    run(writer, app, 1)
    writer.flush_all()
    assert RunCount.select().where(RunCount.app_id == app.id).count() == 1
    delete_app(app)
    assert not RunCount.select().where(RunCount.app_id == app.id).exists()
    assert not RunHour.select().where(RunHour.app_id == app.id).exists()
