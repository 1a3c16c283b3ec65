"""Journeys through the Triggers tab: a form that fits the kind, and editing in place."""
import uuid

from playwright.sync_api import expect

from e2e.conftest import ADMIN_PASSWORD
from tests.support.live import login


def app_with_scripts(live_server):
    api = login(live_server.url, "admin", ADMIN_PASSWORD)
    slug = f"trig-{uuid.uuid4().hex[:6]}"
    app = api.post("/api/v1/admin/apps", json={"slug": slug}).json()
    scripts = [
        api.post("/api/v1/admin/scripts", json={"app_id": app["id"], "name": name, "source": "return 1"}).json()
        for name in ("on-order", "on-failure")
    ]
    return api, slug, scripts


def test_the_form_offers_only_the_fields_of_the_kind_chosen(admin_page, live_server):
    page = admin_page
    api, slug, _ = app_with_scripts(live_server)
    page.goto(f"/admin/apps/{slug}/triggers")
    form = page.locator("form", has=page.get_by_role("button", name="Add trigger"))
    expect(form.get_by_label("Key or collection glob")).to_be_visible()
    expect(form.get_by_role("textbox", name="Schedule")).to_be_hidden()
    expect(form.get_by_label("insert")).to_be_hidden()  # a KV trigger has set and delete

    form.get_by_label("When").select_option("dead_letter")
    expect(form.get_by_label("Key or collection glob")).to_be_hidden()
    expect(form.get_by_label("Attempts")).to_be_hidden()
    expect(form).to_contain_text("never retried")
    form.get_by_label("Run script").select_option(label="on-failure")
    page.get_by_role("button", name="Add trigger").click()
    expect(page.locator("#triggers tbody")).to_contain_text("every dead letter")
    [trigger] = api.get(f"/api/v1/admin/apps/{slug}/triggers").json()["triggers"]
    assert trigger["kind"] == "dead_letter"

    form.get_by_label("When").select_option("docs")
    expect(form.get_by_label("insert")).to_be_visible()
    expect(form.get_by_label("set", exact=True)).to_be_hidden()


def test_edit_a_trigger_in_its_row_and_see_the_retry_schedule(admin_page, live_server):
    page = admin_page
    api, slug, scripts = app_with_scripts(live_server)
    made = api.post(
        f"/api/v1/admin/apps/{slug}/triggers/kv", json={"script_id": scripts[0]["id"], "key_glob": "orders/*"}
    ).json()
    page.goto(f"/admin/apps/{slug}/triggers")
    row = page.locator(f"#trigger-{made['id']}")
    expect(row).to_contain_text("5 attempts, waiting 1 s, 2 s, 4 s, 8 s")
    row.get_by_role("link", name=f"Edit trigger #{made['id']}").click()
    editing = page.locator(f"#trigger-{made['id']}.editing")
    editing.get_by_label("Key or collection glob").fill("carts/*")
    editing.get_by_label("Attempts").fill("3")
    editing.get_by_label("Backoff").select_option("linear")
    editing.get_by_label("First delay").fill("30 s")
    expect(editing.locator(".retry-preview")).to_contain_text("30 s, 1 min")
    expect(editing.locator(".retry-preview")).to_contain_text("→ dead letter")
    editing.get_by_role("button", name="Save trigger").click()
    expect(page.locator("#toasts")).to_contain_text(f"Saved trigger #{made['id']}.")
    expect(row).to_contain_text("carts/*")
    expect(row).to_contain_text("3 attempts, waiting 30 s, 1 min")
    [trigger] = api.get(f"/api/v1/admin/apps/{slug}/triggers").json()["triggers"]
    assert trigger["key_glob"] == "carts/*"
    assert trigger["retry"]["base_delay_ms"] == 30_000 and trigger["retry"]["backoff"] == "linear"
