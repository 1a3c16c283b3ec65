"""The Triggers and Dead letters tabs over HTTP, posted like a browser with CSRF tokens."""
import re
import time
import uuid

import pytest

from tests.admin_api.test_dead_letters import make_dead_letters
from tests.conftest import ADMIN_PASSWORD
from tests.support.dashboard import Dashboard, selected_tab


@pytest.fixture(scope="module")
def dash(server):
    return Dashboard(server.url, "admin", ADMIN_PASSWORD)


def triggers(site):
    return site.api.get(f"/api/v1/admin/apps/{site.app['id']}/triggers").json()["triggers"]


def trigger_form(script, **fields):
    return {
        "kind": "kv", "script_id": script["id"], "glob": "orders/*", "ops": ["set"],
        "max_attempts": 3, "backoff": "linear", "base_delay_ms": 50, "max_delay_ms": 500, "jitter": 0.1,
        **fields,
    }


def test_the_triggers_tab_lists_the_app_triggers(dash, site):
    script = site.script(name="on-order")
    site.api.post(f"/api/v1/admin/apps/{site.app['id']}/triggers/kv", json={"script_id": script["id"], "key_glob": "carts/*"})
    page = dash.get(f"/admin/apps/{site.slug}/triggers")
    assert page.status_code == 200
    assert selected_tab(page.text) == "Triggers"
    assert "carts/*" in page.text and "on-order" in page.text


def test_create_toggle_and_delete_a_trigger(dash, site, admin):
    script = site.script()
    created = dash.post(f"/admin/apps/{site.slug}/triggers", trigger_form(script), htmx=True)
    assert created.status_code == 200, created.text
    assert "orders/*" in created.text and "<html" not in created.text  # the partial
    [trigger] = triggers(site)
    assert trigger["key_glob"] == "orders/*" and trigger["ops"] == ["set"]
    assert trigger["retry"] == {"max_attempts": 3, "backoff": "linear", "base_delay_ms": 50, "max_delay_ms": 500, "jitter": 0.1}
    assert trigger["registered_by"] == admin.get("/api/v1/auth/me").json()["user"]["id"]

    toggled = dash.post(f"/admin/apps/{site.slug}/triggers/{trigger['id']}/toggle", htmx=True)
    assert toggled.status_code == 200 and "Disabled" in toggled.text
    assert triggers(site)[0]["enabled"] is False
    deleted = dash.post(f"/admin/apps/{site.slug}/triggers/{trigger['id']}/delete", htmx=True)
    assert deleted.status_code == 200
    assert triggers(site) == []


def test_a_dead_letter_trigger_from_the_form_ignores_glob_and_retry(dash, site):
    script = site.script()
    response = dash.post(f"/admin/apps/{site.slug}/triggers", trigger_form(script, kind="dead_letter", glob=""), htmx=True)
    assert response.status_code == 200, response.text
    [trigger] = triggers(site)
    assert trigger["kind"] == "dead_letter" and trigger["retry"] is None


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"glob": ""}, "must not be empty"),
        ({"ops": ["insert"]}, "is not an op of kv triggers"),
        ({"kind": "docs", "ops": ["set"]}, "is not an op of docs triggers"),
        ({"max_delay_ms": 10, "base_delay_ms": 50}, "at least base_delay_ms"),
    ],
)
def test_invalid_triggers_show_the_error_and_store_nothing(dash, site, fields, message):
    response = dash.post(f"/admin/apps/{site.slug}/triggers", trigger_form(site.script(), **fields), htmx=True)
    assert response.status_code == 422
    assert message in response.text
    assert triggers(site) == []


def test_viewers_cannot_change_triggers(site, server):
    username, password = f"viewer-{uuid.uuid4().hex[:8]}", "password-" + uuid.uuid4().hex
    site.api.post("/api/v1/admin/users", json={"username": username, "password": password, "role": "viewer"})
    viewer = Dashboard(server.url, username, password)
    assert viewer.get(f"/admin/apps/{site.slug}/triggers").status_code == 200
    response = viewer.post(f"/admin/apps/{site.slug}/triggers", trigger_form(site.script()))
    assert response.status_code == 403
    assert triggers(site) == []


def test_the_dead_letters_tab_lists_inspects_and_replays(dash, site):
    made, _, _ = make_dead_letters(site, 2, prefix="tab")
    # The two events run concurrently: either may have been dead-lettered first.
    made.sort(key=lambda d: d["event"]["key"])
    page = dash.get(f"/admin/apps/{site.slug}/dead-letters")
    assert page.status_code == 200 and selected_tab(page.text) == "Dead letters"
    assert all(f"dead-letter-{d['id']}" in page.text for d in made)
    assert "no luck for tab/0" in page.text

    shown = dash.get(f"/admin/apps/{site.slug}/dead-letters/{made[0]['id']}")
    assert shown.status_code == 200
    assert made[0]["event_id"] in shown.text and "&#34;tab/0&#34;" in shown.text and "script_error" in shown.text

    replayed = dash.post(f"/admin/apps/{site.slug}/dead-letters/{made[0]['id']}/replay", htmx=True)
    assert replayed.status_code == 200 and f"Dead letter #{made[0]['id']} replayed" in replayed.headers["HX-Trigger"]
    assert site.api.get(f"/api/v1/admin/dead-letters/{made[0]['id']}").json()["resolution"] == "replayed"
    again = dash.post(f"/admin/apps/{site.slug}/dead-letters/{made[0]['id']}/replay", htmx=True)
    assert again.status_code == 409 and "already resolved" in again.text

    discarded = dash.post(f"/admin/apps/{site.slug}/dead-letters/{made[1]['id']}/discard", htmx=True)
    assert discarded.status_code == 200 and "discarded" in discarded.headers["HX-Trigger"]
    everything = dash.get(f"/admin/apps/{site.slug}/dead-letters", params={"show": "all"})
    assert "replayed" in everything.text and "discarded" in everything.text

    # The replayed dead letter links to the runs its replay made.
    deadline = time.monotonic() + 30
    while True:
        detail = dash.get(f"/admin/apps/{site.slug}/dead-letters/{made[0]['id']}").text
        runs = re.findall(rf'/admin/apps/{site.slug}/logs/([0-9a-f-]{{36}})"', detail.split("The replay")[1])
        if runs:
            break
        assert time.monotonic() < deadline, "the replay made no run"
        time.sleep(0.2)
    run = site.api.get(f"/api/v1/admin/executions/{runs[0]}").json()
    assert run["event_id"] == made[0]["event_id"] and run["attempt"] == 1


def test_replay_all_from_the_tab(dash, site):
    made, _, _ = make_dead_letters(site, 2, prefix="all")
    response = dash.post(f"/admin/apps/{site.slug}/dead-letters/replay", htmx=True)
    assert response.status_code == 200 and "Replayed 2 dead letters" in response.headers["HX-Trigger"]
    statuses = {site.api.get(f"/api/v1/admin/dead-letters/{d['id']}").json()["resolution"] for d in made}
    assert statuses == {"replayed"}


def test_another_apps_dead_letter_is_not_found_here(dash, site, other_site):
    [foreign], _, _ = make_dead_letters(other_site, 1, prefix="x")
    assert dash.get(f"/admin/apps/{site.slug}/dead-letters/{foreign['id']}").status_code == 404
    assert dash.post(f"/admin/apps/{site.slug}/dead-letters/{foreign['id']}/replay", htmx=True).status_code == 404
