"""The Triggers tab with schedules: create, preview as you type, edit, next and last run."""
import re

import pytest

from tests.outbox.conftest import executions
from tests.support.apps import add_trigger, site, wait_for  # noqa: F401  (fixture)


def triggers(site):
    return site.api.get(f"/api/v1/admin/apps/{site.app['id']}/triggers").json()["triggers"]


def schedule_form(script, **fields):
    return {
        "kind": "schedule", "script_id": script["id"], "cron": "0 6 * * *", "timezone": "Europe/Berlin",
        "max_attempts": 2, "backoff": "constant", "base_delay_ms": 100, "max_delay_ms": 100, "jitter": 0,
        **fields,
    }


def test_create_a_schedule_from_the_tab(dash, site):
    script = site.script(name="nightly")
    page = dash.post(f"/admin/apps/{site.slug}/triggers", schedule_form(script), htmx=True)
    assert page.status_code == 200, page.text
    [trigger] = triggers(site)
    assert (trigger["kind"], trigger["cron"], trigger["timezone"]) == ("schedule", "0 6 * * *", "Europe/Berlin")
    assert trigger["retry"]["max_attempts"] == 2
    # The row shows the expression, its timezone and when it runs next.
    row = page.text[page.text.index(f'id="trigger-{trigger["id"]}"'):]
    row = row[: row.index("</tr>")]
    assert "<code>0 6 * * *</code>" in row and "Europe/Berlin" in row
    assert trigger["next_run_at"][:10] in row and re.search(r"\d\d:00:00 UTC", row)
    assert "never" in row  # no run yet


@pytest.mark.parametrize(
    "fields, message",
    [({"cron": "61 * * * *"}, "is not a valid cron expression"), ({"timezone": "Mars/Olympus"}, "Unknown timezone")],
)
def test_a_bad_schedule_is_shown_next_to_its_field(dash, site, fields, message):
    script = site.script()
    page = dash.post(f"/admin/apps/{site.slug}/triggers", schedule_form(script, **fields), htmx=True)
    assert page.status_code == 422
    assert message in page.text and 'aria-invalid="true"' in page.text
    assert triggers(site) == []


def test_the_next_five_runs_are_previewed_as_you_type(dash, site):
    url = f"/admin/apps/{site.slug}/triggers/schedule-preview"
    page = dash.get(url, params={"cron": "@weekly", "timezone": "UTC"}, htmx=True)
    assert page.status_code == 200
    runs = re.findall(r"<li><time datetime=\"([^\"]+)\">([^<]+)</time>", page.text)
    assert len(runs) == 5
    assert all(label.startswith("Sun ") and " 00:00:00 UTC" in label for _, label in runs)
    tokyo = dash.get(url, params={"cron": "30 8 * * *", "timezone": "Asia/Tokyo"}, htmx=True).text
    assert "08:30:00 JST" in tokyo and "(23:30:00 UTC)" in tokyo
    bad = dash.get(url, params={"cron": "* * *", "timezone": "UTC"}, htmx=True)
    assert bad.status_code == 200 and "5 fields" in bad.text and "<li>" not in bad.text


def test_a_viewer_may_preview_but_not_change_schedules(login_as, site):
    script = site.script()
    trigger = add_trigger(site, "schedule", script, cron="@daily")
    viewer = login_as("viewer")
    assert viewer.get(f"/admin/apps/{site.slug}/triggers/schedule-preview", params={"cron": "@daily"}).status_code == 200
    page = viewer.get(f"/admin/apps/{site.slug}/triggers")
    assert "Edit trigger" not in page.text
    assert viewer.get(f"/admin/apps/{site.slug}/triggers/{trigger['id']}/edit").status_code == 403
    refused = viewer.post(f"/admin/apps/{site.slug}/triggers/{trigger['id']}", {f"t{trigger['id']}-cron": "@hourly"})
    assert refused.status_code == 403


def edit_fields(trigger, **fields):
    """The edit form of a trigger as posted: its current values, then ``fields``."""
    retry = trigger["retry"]
    values = {
        "script_id": trigger["script_id"], "cron": trigger.get("cron") or "", "timezone": trigger.get("timezone") or "",
        "glob": trigger.get("key_glob") or trigger.get("collection_glob") or "",
        "max_attempts": retry["max_attempts"], "backoff": retry["backoff"], "base_delay_ms": retry["base_delay_ms"],
        "max_delay_ms": retry["max_delay_ms"], "jitter": retry["jitter"], **fields,
    }
    return {f"t{trigger['id']}-{name}": value for name, value in values.items()}


def test_edit_a_schedule_inline(dash, site):
    script = site.script()
    trigger = add_trigger(site, "schedule", script, cron="@yearly")
    form = dash.get(f"/admin/apps/{site.slug}/triggers/{trigger['id']}/edit", htmx=True)
    assert form.status_code == 200 and 'value="@yearly"' in form.text and "Save trigger" in form.text
    url = f"/admin/apps/{site.slug}/triggers/{trigger['id']}"
    page = dash.post(url, edit_fields(trigger, cron="@hourly", timezone="Asia/Tokyo"), htmx=True)
    assert page.status_code == 200
    [changed] = triggers(site)
    assert (changed["cron"], changed["timezone"]) == ("@hourly", "Asia/Tokyo")
    assert changed["next_run_at"] != trigger["next_run_at"]
    refused = dash.post(url, edit_fields(trigger, cron="@never", timezone="UTC"), htmx=True)
    assert refused.status_code == 422 and "@never" in refused.text and 'aria-invalid="true"' in refused.text
    assert triggers(site) == [changed]
    assert dash.post(url, edit_fields(trigger, cron="@hourly"), csrf=False).status_code == 400


def test_the_last_runs_outcome_is_shown(dash, site):
    trigger = add_trigger(site, "schedule", site.script('error("no")\n'), cron="@every 1s",
                          retry={"max_attempts": 1})
    wait_for(lambda: [e for e in executions(site, source="schedule") if e["status"] == "script_error"], what="a run")
    site.api.patch(f"/api/v1/admin/triggers/{trigger['id']}", json={"enabled": False})
    page = dash.get(f"/admin/apps/{site.slug}/triggers")
    row = page.text[page.text.index(f'id="trigger-{trigger["id"]}"'):]
    row = row[: row.index("</tr>")]
    assert 'class="badge error"' in row and ">script_error</a>" in row
    assert f"/admin/apps/{site.slug}/logs/" in row
