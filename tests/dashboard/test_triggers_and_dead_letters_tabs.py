"""The Triggers and Dead letters tabs over HTTP, posted like a browser with CSRF tokens."""
import re
import time
import uuid

import pytest

from tests.admin_api.test_dead_letters import make_dead_letters
from tests.conftest import ADMIN_PASSWORD
from tests.support.apps import other_site, site  # noqa: F401  (fixtures)
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


def test_a_dead_letter_trigger_from_the_form_takes_no_glob_ops_or_retry(dash, site):
    script = site.script()
    url = f"/admin/apps/{site.slug}/triggers"
    # A glob or ops typed for a dead-letter trigger are refused, not dropped without a word.
    typed = dash.post(url, trigger_form(script, kind="dead_letter"), htmx=True)
    assert typed.status_code == 422 and "A dead letter trigger takes no glob" in typed.text
    assert triggers(site) == []
    response = dash.post(url, trigger_form(script, kind="dead_letter", glob="", ops=[]), htmx=True)
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


def test_edit_a_kv_trigger_in_its_row_with_readable_delays(dash, site):
    script = site.script(name="first")
    other = site.script(name="second")
    made = site.api.post(
        f"/api/v1/admin/apps/{site.app['id']}/triggers/kv", json={"script_id": script["id"], "key_glob": "carts/*"}
    ).json()
    prefix = f"t{made['id']}-"
    form = dash.get(f"/admin/apps/{site.slug}/triggers/{made['id']}/edit", htmx=True)
    assert form.status_code == 200
    assert f'name="{prefix}glob"' in form.text and 'value="carts/*"' in form.text
    assert f'name="{prefix}cron"' not in form.text  # only the fields of its kind
    assert 'value="1 s"' in form.text and 'value="5 min"' in form.text  # delays in readable units
    assert "1 s, 2 s, 4 s, 8 s" in form.text and "→ dead letter" in form.text

    fields = {
        "script_id": other["id"], "glob": "orders/*", "ops": ["delete"], "max_attempts": 3, "backoff": "constant",
        "base_delay_ms": "1.5 s", "max_delay_ms": "2 min", "jitter": "0",
    }
    saved = dash.post(
        f"/admin/apps/{site.slug}/triggers/{made['id']}", {prefix + k: v for k, v in fields.items()}, htmx=True
    )
    assert saved.status_code == 200, saved.text
    [trigger] = triggers(site)
    assert (trigger["script_id"], trigger["key_glob"], trigger["ops"]) == (other["id"], "orders/*", ["delete"])
    assert trigger["retry"] == {
        "max_attempts": 3, "backoff": "constant", "base_delay_ms": 1500, "max_delay_ms": 120000, "jitter": 0.0,
    }
    assert "3 attempts, waiting 1.5 s, 1.5 s" in saved.text

    bad = dash.post(
        f"/admin/apps/{site.slug}/triggers/{made['id']}", {prefix + k: v for k, v in {**fields, "base_delay_ms": "soon"}.items()},
        htmx=True,
    )
    assert bad.status_code == 422 and "Write a duration such as 500 ms" in bad.text
    assert triggers(site) == [trigger]


def test_the_retry_preview_reads_the_policy_being_set(dash, site):
    url = f"/admin/apps/{site.slug}/triggers/retry-preview"
    policy = {"max_attempts": 5, "backoff": "exponential", "base_delay_ms": "1 s", "max_delay_ms": "5 s", "jitter": "0.2"}
    preview = dash.get(url, params=policy, htmx=True).text
    assert "1 s, 2 s, 4 s, 5 s" in preview and "→ dead letter" in preview and "±20%" in preview
    linear = dash.get(url, params={**policy, "backoff": "linear", "base_delay_ms": "500ms", "jitter": "0"}, htmx=True).text
    assert "500 ms, 1 s, 1.5 s, 2 s" in linear and "±" not in linear
    assert "One attempt, then a dead letter" in dash.get(url, params={**policy, "max_attempts": 1}, htmx=True).text
    wrong = dash.get(url, params={**policy, "max_delay_ms": "100 ms"}, htmx=True).text
    assert "max_delay_ms must be at least base_delay_ms" in wrong
    prefixed = dash.get(url, params={"prefix": "t9-", "preview_id": "t9-retry-preview", **{"t9-" + k: v for k, v in policy.items()}}, htmx=True)
    assert 'id="t9-retry-preview"' in prefixed.text and "1 s, 2 s, 4 s, 5 s" in prefixed.text
