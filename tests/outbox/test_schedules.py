"""docs/api.md §14 end to end: schedule triggers on a real server (or two, or a restart)."""
import datetime
import time

import pytest

from tests.outbox.conftest import FAST_RETRY, add_trigger, dead_letters, executions, kv_items, wait_for
from tests.support.apps import new_site
from tests.support.live import LiveServer, login

# Each tick records what its run saw, under its scheduled instant.
RECORD_TICK = """
kv.set("tick/" .. event.scheduled_at, {
  event = event, source = ctx.source, depth = ctx.trigger_depth, principal = ctx.principal,
  attempt = ctx.attempt,
})
kv.incr("count/" .. event.scheduled_at)
"""


def triggers_url(site):
    return f"/api/v1/admin/apps/{site.app['id']}/triggers"


def create(site, **body):
    return site.api.post(triggers_url(site) + "/schedule", json=body)


def ticks(site):
    """Return {scheduled instant: what the run saw}, oldest first."""
    return dict(sorted((key.removeprefix("tick/"), value) for key, value in kv_items(site, "tick/").items()))


def instant(text):
    return datetime.datetime.fromisoformat(text.removesuffix("Z"))


@pytest.mark.parametrize(
    "cron",
    ["*/5 * * * *", "0 9 * * mon-fri", "@hourly", "@daily", "@weekly", "@monthly", "@yearly", "@annually", "@every 90s"],
)
def test_cron_expressions_and_macros_are_accepted(site, cron):
    script = site.script()
    response = create(site, script_id=script["id"], cron=cron)
    assert response.status_code == 201, response.text
    trigger = response.json()
    assert trigger["kind"] == "schedule" and trigger["cron"] == cron and trigger["timezone"] == "UTC"
    assert trigger["enabled"] is True and trigger["retry"]["max_attempts"] == 5
    assert instant(trigger["next_run_at"]) > datetime.datetime.utcnow()
    assert "key_glob" not in trigger and "ops" not in trigger
    listed = site.api.get(triggers_url(site)).json()["triggers"]
    assert [t["next_run_at"] for t in listed if t["id"] == trigger["id"]] == [trigger["next_run_at"]]


def test_a_timezone_places_the_next_run(site):
    script = site.script()
    trigger = create(site, script_id=script["id"], cron="@daily", timezone="Asia/Tokyo").json()
    assert trigger["timezone"] == "Asia/Tokyo"
    assert instant(trigger["next_run_at"]).strftime("%H:%M") == "15:00"  # midnight in Tokyo, UTC+9


@pytest.mark.parametrize(
    "body, field",
    [
        ({"cron": "61 * * * *"}, "cron"),
        ({"cron": "* * * * * *"}, "cron"),
        ({"cron": "@every 0s"}, "cron"),
        ({"cron": "@fortnightly"}, "cron"),
        ({"cron": ""}, "cron"),
        ({}, "cron"),
        ({"cron": "@daily", "timezone": "Mars/Olympus"}, "timezone"),
        ({"cron": "@daily", "timezone": 3}, "timezone"),
        ({"cron": "@daily", "key_glob": "*"}, "key_glob"),
        ({"cron": "@daily", "retry": {"max_attempts": 0}}, "retry.max_attempts"),
    ],
)
def test_bad_schedules_answer_422_on_the_field(site, body, field):
    script = site.script()
    response = create(site, script_id=script["id"], **body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert site.api.get(triggers_url(site)).json()["triggers"] == []


def test_a_change_of_schedule_moves_the_next_run_and_a_bad_one_changes_nothing(site):
    script = site.script()
    trigger = create(site, script_id=script["id"], cron="@yearly").json()
    changed = site.api.patch(f"/api/v1/admin/triggers/{trigger['id']}", json={"cron": "@hourly"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["cron"] == "@hourly"
    assert instant(changed.json()["next_run_at"]) - datetime.datetime.utcnow() <= datetime.timedelta(hours=1)
    refused = site.api.patch(f"/api/v1/admin/triggers/{trigger['id']}", json={"cron": "@hourly", "timezone": "Nowhere/Land"})
    assert refused.status_code == 422 and refused.json()["error"]["field"] == "timezone"
    assert site.api.get(f"/api/v1/admin/triggers/{trigger['id']}").json() == changed.json()


def test_every_second_fires_about_once_a_second_as_the_registrant(site, admin):
    me = admin.get("/api/v1/auth/me").json()["user"]
    trigger = add_trigger(site, "schedule", site.script(RECORD_TICK), cron="@every 1s")
    time.sleep(4.2)
    assert site.api.patch(f"/api/v1/admin/triggers/{trigger['id']}", json={"enabled": False}).status_code == 200
    seen = wait_for(lambda: len(ticks(site)) >= 3 and ticks(site), what="ticks")
    assert 3 <= len(seen) <= 6, list(seen)
    instants = [instant(at) for at in seen]
    assert all(b - a == datetime.timedelta(seconds=1) for a, b in zip(instants, instants[1:])), list(seen)
    first = next(iter(seen.values()))
    assert first["event"]["kind"] == "schedule" and first["event"]["cron"] == "@every 1s"
    assert first["source"] == "schedule" and first["depth"] == 0 and first["attempt"] == 1
    assert first["principal"] == {"user_id": me["id"], "username": me["username"]}
    assert set(kv_items(site, "count/").values()) == {1}
    runs = wait_for(lambda: [e for e in executions(site, source="schedule") if e["status"] == "ok"], what="the log")
    assert {run["trigger_id"] for run in runs} == {trigger["id"]}


def test_disable_and_delete_stop_a_schedule(site):
    script = site.script('kv.incr("n")\n')
    trigger = add_trigger(site, "schedule", script, cron="@every 1s")
    wait_for(lambda: kv_items(site, "n"), what="a first tick")
    disabled = site.api.patch(f"/api/v1/admin/triggers/{trigger['id']}", json={"enabled": False})
    assert disabled.json()["next_run_at"] is None
    time.sleep(0.5)  # a run queued just before may still finish
    count = kv_items(site, "n")["n"]
    time.sleep(2.2)
    assert kv_items(site, "n")["n"] == count

    enabled = site.api.patch(f"/api/v1/admin/triggers/{trigger['id']}", json={"enabled": True})
    assert enabled.json()["next_run_at"] is not None
    wait_for(lambda: kv_items(site, "n")["n"] > count, what="ticks again")
    assert site.api.delete(f"/api/v1/admin/triggers/{trigger['id']}").status_code == 204
    time.sleep(0.5)
    count = kv_items(site, "n")["n"]
    time.sleep(2.2)
    assert kv_items(site, "n")["n"] == count


def test_a_failing_schedule_is_retried_then_dead_lettered_with_source_schedule(site):
    trigger = add_trigger(site, "schedule", site.script('error("boom")\n'), cron="@every 1s", retry=FAST_RETRY)
    [letter, *_] = wait_for(lambda: dead_letters(site), what="a dead letter")
    site.api.patch(f"/api/v1/admin/triggers/{trigger['id']}", json={"enabled": False})
    assert letter["source"] == "schedule" and letter["trigger_id"] == trigger["id"]
    assert letter["attempts"] == FAST_RETRY["max_attempts"]
    assert letter["event"]["kind"] == "schedule" and letter["event"]["cron"] == "@every 1s"
    failed = [e for e in executions(site, source="schedule") if e["event_id"] == letter["event_id"]]
    assert sorted(e["attempt"] for e in failed) == [1, 2, 3]


def test_two_servers_on_one_database_run_each_tick_once(site, server_env, tmp_path):
    second = LiveServer(server_env, tmp_path / "second.log").start()
    try:
        trigger = add_trigger(site, "schedule", site.script(RECORD_TICK), cron="@every 1s")
        time.sleep(5.2)
        site.api.patch(f"/api/v1/admin/triggers/{trigger['id']}", json={"enabled": False})
    finally:
        second.stop()
    counts = wait_for(lambda: len(kv_items(site, "count/")) >= 4 and kv_items(site, "count/"), what="ticks")
    time.sleep(0.5)
    counts = kv_items(site, "count/")
    assert set(counts.values()) == {1}, counts  # every tick ran, and ran once
    instants = sorted(instant(key.removeprefix("count/")) for key in counts)
    assert all(b - a == datetime.timedelta(seconds=1) for a, b in zip(instants, instants[1:]))


@pytest.fixture
def lone_server(own_database, server_env, tmp_path):
    """A server alone on a database of its own, that the test may stop and start."""
    env = {**server_env, "DATABASE_URL": own_database.database_url, "PICLOUD_DATA_DIR": str(tmp_path)}
    return env


def test_after_a_restart_only_the_latest_missed_tick_runs(lone_server, server_env, tmp_path):
    first = LiveServer(lone_server, tmp_path / "first.log").start()
    try:
        api = login(first.url, "admin", server_env["PICLOUD_ADMIN_PASSWORD"])
        lone = new_site(api, first.url, "lone")
        add_trigger(lone, "schedule", lone.script(RECORD_TICK), cron="@every 1s")
        wait_for(lambda: len(ticks(lone)) >= 2, what="ticks before the stop")
    finally:
        first.stop()
    time.sleep(3.5)  # three or four ticks pass while no server runs
    restarted = LiveServer(lone_server, tmp_path / "restarted.log").start()
    try:
        lone.base_url = lone.api.base_url = restarted.url

        def after_the_gap():
            instants = [instant(at) for at in ticks(lone)]
            gaps = [i for i, (a, b) in enumerate(zip(instants, instants[1:])) if b - a > datetime.timedelta(seconds=1)]
            return gaps and len(instants) - gaps[0] > 3 and instants

        instants = wait_for(after_the_gap, what="ticks after the restart")
        counts = kv_items(lone, "count/")
    finally:
        restarted.stop()
    gaps = [b - a for a, b in zip(instants, instants[1:])]
    # One jump over the downtime: the missed ticks were not run one by one afterwards.
    assert sum(1 for gap in gaps if gap > datetime.timedelta(seconds=1)) == 1, instants
    assert max(gaps) >= datetime.timedelta(seconds=3)
    assert set(counts.values()) == {1}


def test_a_schedule_travels_in_the_app_bundle(site):
    script = site.script()
    create(site, script_id=script["id"], cron="0 6 * * *", timezone="Europe/Berlin")
    bundle = site.api.get(f"/api/v1/admin/apps/{site.app['id']}/bundle").json()
    [entry] = bundle["triggers"]
    assert entry["kind"] == "schedule" and entry["cron"] == "0 6 * * *" and entry["timezone"] == "Europe/Berlin"
    assert "next_run_at" not in entry
    again = site.api.put(f"/api/v1/admin/apps/{site.app['id']}/bundle", json=bundle, params={"dry_run": "true"})
    assert again.status_code == 200, again.text
    assert {(s["kind"], s["action"]) for s in again.json()["plan"] if s["kind"] == "trigger"} == {("trigger", "keep")}
    assert [s["name"] for s in again.json()["plan"] if s["kind"] == "trigger"] == [f"schedule 0 6 * * * → {script['name']}"]
    entry["timezone"] = "Asia/Tokyo"
    changed = site.api.put(f"/api/v1/admin/apps/{site.app['id']}/bundle", json=bundle)
    assert changed.status_code == 200, changed.text
    [trigger] = site.api.get(triggers_url(site)).json()["triggers"]
    assert trigger["timezone"] == "Asia/Tokyo" and instant(trigger["next_run_at"]).strftime("%H:%M") == "21:00"
