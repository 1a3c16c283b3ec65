"""docs/operations.md, retention: each kind of row is purged at its age, nothing younger,
in batches, one ``loop()`` at a time — on a database of its own, with a fixed clock."""
import dataclasses
import datetime
import uuid

import pytest

from picloud import db as database_module
from picloud.config import load_settings
from picloud.migrate import migrate
from picloud.models import App, AppSlugHistory, DeadLetter, Execution, RunCount, RunHour, ScheduleTick, Script, Trigger
from picloud.retention import BATCH_SIZE, Retention
from tests.support.databases import temporary_database

NOW = datetime.datetime(2100, 6, 1, 12, 0)
DAY = datetime.timedelta(days=1)


@pytest.fixture(scope="module")
def own_settings(tmp_path_factory, database, settings):
    """A database of its own (no server purges it meanwhile); the suite's is bound again after."""
    data_dir = tmp_path_factory.mktemp("retention")
    with temporary_database(data_dir) as url:
        database_module.close_db()
        database_module.init_db(url)
        own = load_settings({"DATABASE_URL": url, "PICLOUD_DATA_DIR": str(data_dir)})
        migrate(own)
        try:
            yield dataclasses.replace(own, log_retention_days=7, dead_letter_retention_days=30)
        finally:
            database_module.close_db()
            database_module.init_db(settings.database_url)


@pytest.fixture
def app(own_settings, unique):
    made = App.create(slug=unique("ret"), name="ret")
    yield made
    for model in (Execution, RunHour):
        model.delete().where(model.app_id == made.id).execute()
    DeadLetter.delete().where(DeadLetter.app == made.id).execute()
    Trigger.delete().where(Trigger.app == made.id).execute()
    Script.delete().where(Script.app == made.id).execute()
    App.delete().where(App.id == made.id).execute()


def run_round(retention):
    """Loop until the round is over; return how many loops it took."""
    loops = 1
    while retention.loop():
        loops += 1
    return loops


def execution(app, age, status="ok"):
    return Execution.create(
        id=str(uuid.uuid4()), app_id=app.id, source="http", status=status, queued_at=NOW - age, attempt=1
    ).id


def dead_letter(app, resolved_age=None, created_age=DAY * 100):
    moment = NOW - resolved_age if resolved_age is not None else None
    return DeadLetter.create(
        app=app, source="kv", script_id=1, event={}, event_id=str(uuid.uuid4()), attempts=1,
        created_at=NOW - created_age, resolution="discarded" if moment else None, resolved_at=moment,
    ).id


def test_executions_are_purged_after_the_log_retention(own_settings, app):
    expired = [execution(app, 7 * DAY + datetime.timedelta(seconds=1)), execution(app, 90 * DAY, "queued")]
    kept = [execution(app, 7 * DAY - datetime.timedelta(seconds=1)), execution(app, datetime.timedelta(0))]
    run_round(Retention(own_settings, clock=lambda: NOW))
    remaining = {e.id for e in Execution.select().where(Execution.app_id == app.id)}
    assert remaining == set(kept) and not remaining & set(expired)


def test_resolved_dead_letters_are_purged_after_their_own_retention(own_settings, app):
    expired = dead_letter(app, resolved_age=30 * DAY + datetime.timedelta(seconds=1))
    kept_young = dead_letter(app, resolved_age=29 * DAY)  # older than the log retention: kept
    kept_open = dead_letter(app, resolved_age=None, created_age=400 * DAY)  # open: kept whatever its age
    run_round(Retention(own_settings, clock=lambda: NOW))
    remaining = {d.id for d in DeadLetter.select().where(DeadLetter.app == app)}
    assert remaining == {kept_young, kept_open} and expired not in remaining


def test_ticks_and_hourly_figures_go_with_the_log_but_totals_and_slug_history_stay(own_settings, app):
    script = Script.create(app=app, name="s", source="return 1")
    trigger = Trigger.create(app=app, kind="schedule", script=script, cron="@hourly", timezone="UTC")
    old_tick = ScheduleTick.create(trigger=trigger, scheduled_at=NOW - 8 * DAY, event_id="a", created_at=NOW - 8 * DAY)
    new_tick = ScheduleTick.create(trigger=trigger, scheduled_at=NOW - DAY, event_id="b", created_at=NOW - DAY)
    RunHour.create(app_id=app.id, hour=NOW - 8 * DAY, runs=5)
    RunHour.create(app_id=app.id, hour=NOW - DAY, runs=3)
    RunCount.create(app_id=app.id, source="http", outcome="ok", runs=8)
    AppSlugHistory.create(app=app, slug=f"{app.slug}-old", created_at=NOW - 5000 * DAY)
    run_round(Retention(own_settings, clock=lambda: NOW))
    assert [t.id for t in ScheduleTick.select().where(ScheduleTick.trigger == trigger)] == [new_tick.id]
    assert old_tick.id != new_tick.id
    assert [h.runs for h in RunHour.select().where(RunHour.app_id == app.id)] == [3]
    assert RunCount.get(RunCount.app_id == app.id).runs == 8
    assert AppSlugHistory.select().where(AppSlugHistory.app == app).count() == 1
    RunCount.delete().where(RunCount.app_id == app.id).execute()
    AppSlugHistory.delete().where(AppSlugHistory.app == app).execute()


def test_a_purge_goes_batch_by_batch(own_settings, app):
    count = BATCH_SIZE * 2 + 7
    Execution.insert_many(
        [{"id": str(uuid.uuid4()), "app_id": app.id, "source": "http", "status": "ok", "queued_at": NOW - 30 * DAY,
          "attempt": 1} for _ in range(count)]
    ).execute()
    kept = execution(app, DAY)
    retention = Retention(own_settings, clock=lambda: NOW)
    assert retention.loop() is True  # one batch, more to come
    assert Execution.select().where(Execution.app_id == app.id).count() == count + 1 - BATCH_SIZE
    assert run_round(retention) >= 3
    assert [e.id for e in Execution.select().where(Execution.app_id == app.id)] == [kept]
    # The next round finds nothing left, kind after kind.
    assert run_round(retention) == 4
