"""Every main page fits a phone's 390 px: nothing scrolls sideways but what sits in its
own scrolling strip (wide tables inside their card, the tab strip)."""
import pytest
import requests
from playwright.sync_api import expect

from e2e.conftest import ADMIN_PASSWORD, admin_api, log_in
from e2e.test_apps import create_app_with_script

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def furnished_app(live_server):
    """An app with something on every tab: domain, route, run, key, document, trigger."""
    slug, script_id = create_app_with_script(
        live_server, 'log.info("a rather long log line to stretch the logs table a little")\nreturn {ok = true}\n'
    )
    client = admin_api(live_server)
    base = f"{live_server.url}/api/v1/admin/apps/{slug}"
    host = f"{slug}.a-long-domain-name-for-phones.example.test"
    assert client.post(base + "/domains", json={"pattern": host}, timeout=10).status_code == 201
    route = {"method": "GET", "path": "/orders/:order_id/items/*rest", "script_id": script_id, "host": host}
    assert client.post(base + "/routes", json=route, timeout=10).status_code == 201
    trigger = {"script_id": script_id, "key_glob": "orders/*", "ops": ["set"]}
    assert client.post(base + "/triggers/kv", json=trigger, timeout=10).status_code == 201
    assert client.put(base + "/kv/orders%2Fa-key-with-a-long-name", json={"n": 1}, timeout=10).status_code == 200
    assert client.post(base + "/docs/customers", json={"name": "Ada"}, timeout=10).status_code == 201
    answer = requests.get(f"{live_server.url}/orders/7/items/x/y", headers={"Host": host}, timeout=10)
    assert answer.status_code == 200, answer.text
    return slug, script_id


def page_paths(slug, script_id):
    app = f"/admin/apps/{slug}"
    return [
        "/admin/apps",
        app,
        f"{app}/scripts",
        f"{app}/scripts/{script_id}",
        f"{app}/routes",
        f"{app}/domains",
        f"{app}/logs",
        f"{app}/triggers",
        f"{app}/data",
        f"{app}/data/docs",
        f"{app}/dead-letters",
        f"{app}/settings",
        "/admin/users",
        "/admin/account",
    ]


def test_every_main_page_fits_a_phone(browser, live_server, furnished_app):
    slug, script_id = furnished_app
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    page = context.new_page()
    log_in(page, "admin", ADMIN_PASSWORD)
    too_wide = {}
    for path in page_paths(slug, script_id):
        page.goto(path)
        expect(page.locator("main")).to_be_visible()
        width = page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[path] = width
    # A run's detail page, reached from the Logs tab.
    page.goto(f"/admin/apps/{slug}/logs")
    page.locator("table a[href*='/logs/']").first.click()
    expect(page.locator("main")).to_contain_text("Usage")
    width = page.evaluate("document.documentElement.scrollWidth")
    if width > PHONE["width"]:
        too_wide["run detail"] = width
    context.close()
    assert too_wide == {}


def test_the_tabs_are_one_scrolling_strip_on_a_phone(browser, live_server, furnished_app):
    slug, _ = furnished_app
    context = browser.new_context(base_url=live_server.url, viewport=PHONE)
    page = context.new_page()
    log_in(page, "admin", ADMIN_PASSWORD)
    page.goto(f"/admin/apps/{slug}/settings")
    tabs = page.get_by_role("tablist")
    tops = {round(box["y"]) for box in tabs.get_by_role("tab").evaluate_all(
        "tabs => tabs.map(t => t.getBoundingClientRect().toJSON())")}
    assert len(tops) == 1  # one row, not three
    # The selected tab is scrolled into view.
    selected = tabs.locator("[aria-selected=true]")
    box = selected.bounding_box()
    assert 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"]
    context.close()
