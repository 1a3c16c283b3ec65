"""Journeys through the Data tab: a KV trigger made in the Triggers tab runs when a key is set in
the Data tab, and the run shows in Logs."""
import re
import uuid

from playwright.sync_api import expect

from e2e.conftest import admin_api as api


def test_setting_a_key_in_the_data_tab_runs_its_trigger(admin_page, live_server):
    page = admin_page
    client = api(live_server)
    slug = f"data-{uuid.uuid4().hex[:8]}"
    app = client.post(live_server.url + "/api/v1/admin/apps", json={"slug": slug}, timeout=10).json()
    script = client.post(
        live_server.url + "/api/v1/admin/scripts",
        json={
            "app_id": app["id"],
            "name": "on-order",
            "source": 'log.info("order " .. event.key .. " = " .. json.encode(event.value))\n'
            'kv.set("seen/" .. event.key, event.value)\n',
        },
        timeout=10,
    ).json()

    page.goto(f"/admin/apps/{slug}")
    page.get_by_role("tab", name="Triggers").click()
    page.get_by_label("When").select_option("kv")
    page.get_by_label("Run script").select_option(label="on-order")
    page.get_by_label("Key or collection glob").fill("orders/*")
    page.get_by_label("set", exact=True).check()
    page.get_by_role("button", name="Add trigger").click()
    expect(page.locator("#triggers code").filter(has_text="orders/*")).to_be_visible()

    page.get_by_role("tab", name="Data").click()
    expect(page.get_by_role("tab", name="Data")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("cell", name=re.compile("No keys yet"))).to_be_visible()
    page.get_by_label("Key", exact=True).fill("orders/42")
    page.get_by_label("Value (JSON)").fill('{"item": "tea", "qty": 2}')
    page.get_by_role("button", name="Set key").click()
    expect(page.get_by_role("status")).to_contain_text("Saved orders/42.")
    expect(page.get_by_role("link", name="orders/42")).to_be_visible()

    # The triggered run writes a key of its own; once it exists, find it by prefix.
    seen_url = f"{live_server.url}/api/v1/admin/apps/{app['id']}/kv/seen%2Forders%2F42"
    for _ in range(100):
        if client.get(seen_url, timeout=10).status_code == 200:
            break
        page.wait_for_timeout(100)
    page.get_by_label("Key prefix").fill("seen/")
    page.get_by_role("button", name="Search").click()
    expect(page).to_have_url(re.compile(r"prefix=seen"))
    page.get_by_role("link", name="seen/orders/42").click()
    expect(page.get_by_label("Value (JSON)")).to_have_value(re.compile(r'"item": "tea"'))

    page.get_by_role("tab", name="Logs").click()
    page.get_by_label("Live").check()
    row = page.get_by_role("row").filter(has_text="on-order").filter(has_text="kv")
    expect(row).to_have_count(1, timeout=10_000)
    expect(row).to_contain_text("ok")
    page.get_by_label("Live").uncheck()
    row.get_by_role("link", name=re.compile("Details")).click()
    expect(page.locator(".log-lines")).to_contain_text('order orders/42 = {"')
