"""Journeys through the test console: the editor's draft behind a route, a past event,
and "Run again" from a run's page."""
import uuid

import requests
from playwright.sync_api import expect

from e2e.conftest import admin_api, wait_for_runs
from e2e.test_apps import replace_source


def app_with_route(live_server, source):
    client = admin_api(live_server)
    slug = f"con-{uuid.uuid4().hex[:6]}"
    base = f"{live_server.url}/api/v1/admin/apps/{slug}"
    made = client.post(live_server.url + "/api/v1/admin/apps", json={"slug": slug}, timeout=10)
    assert made.status_code == 201, made.text
    assert client.post(base + "/domains", json={"pattern": f"{slug}.test"}, timeout=10).status_code == 201
    script = client.post(
        live_server.url + "/api/v1/admin/scripts",
        json={"app_id": made.json()["id"], "name": "main", "source": source}, timeout=10,
    )
    assert script.status_code == 201, script.text
    route = client.post(
        base + "/routes", json={"method": "GET", "path": "/hello/:name", "script_id": script.json()["id"]}, timeout=10
    )
    assert route.status_code == 201, route.text
    return client, slug, script.json(), route.json()


def test_run_the_unsaved_draft_behind_a_route_beside_the_editor(admin_page, live_server):
    page = admin_page
    page.set_viewport_size({"width": 1280, "height": 900})
    client, slug, script, route = app_with_route(live_server, 'return "saved " .. request.params.name\n')
    page.goto(f"/admin/apps/{slug}/scripts/{script['id']}")
    # Side by side on a wide screen: the console starts level with the editor.
    editor_box = page.locator(".editor-card").bounding_box()
    console_box = page.locator("#console").bounding_box()
    assert console_box["x"] > editor_box["x"] + editor_box["width"] - 1 and abs(console_box["y"] - editor_box["y"]) < 5

    replace_source(page, 'return "draft " .. request.params.name .. " " .. request.query.n\n')
    console = page.locator("#console")
    console.locator("select[name=route]").select_option(label="GET /hello/:name")
    console.get_by_label("Path").fill("/hello/ada")
    console.get_by_label("Query string").fill("n=7")
    console.get_by_role("button", name="Run").click()
    result = page.locator("#console-result")
    expect(result).to_contain_text("Ran the editor's unsaved text")
    expect(result.locator(".response-body")).to_have_text("draft ada 7")
    saved = client.get(f"{live_server.url}/api/v1/admin/scripts/{script['id']}", timeout=10).json()
    assert saved["version"] == 1 and "saved" in saved["source"]

    console.get_by_label("Run the editor's text").uncheck()
    console.get_by_role("button", name="Run").click()
    expect(page.locator("#console-result .response-body")).to_have_text("saved ada")


def test_load_a_past_event_into_the_console_and_run_it(admin_page, live_server):
    page = admin_page
    client, slug, script, _ = app_with_route(live_server, 'return "key " .. event.key .. " = " .. event.value\n')
    base = f"{live_server.url}/api/v1/admin/apps/{slug}"
    assert client.post(base + "/triggers/kv", json={"script_id": script["id"], "key_glob": "k/*"}, timeout=10).status_code == 201
    assert client.put(base + "/kv/k%2F1", json="one", timeout=10).status_code == 200
    wait_for_runs(live_server, slug, source="kv")
    page.goto(f"/admin/apps/{slug}/logs")
    expect(page.locator("table.runs")).to_contain_text("kv set k/1")

    page.goto(f"/admin/apps/{slug}/scripts/{script['id']}")
    console = page.locator("#console")
    console.get_by_label("Load a past input").select_option(index=1)
    expect(console.get_by_label("Run with")).to_have_value("event")
    event = console.get_by_label("Event (JSON object)")
    expect(event).to_contain_text('"key": "k/1"')
    event.fill(event.input_value().replace('"one"', '"two"'))
    console.get_by_role("button", name="Run").click()
    expect(page.locator("#console-result .response-body")).to_have_text("key k/1 = two")


def test_run_again_from_a_runs_page(admin_page, live_server):
    page = admin_page
    _, slug, script, _ = app_with_route(live_server, 'return "hi " .. request.params.name\n')
    answer = requests.get(f"{live_server.url}/hello/grace", headers={"Host": f"{slug}.test"}, timeout=10)
    assert answer.text == "hi grace"
    wait_for_runs(live_server, slug)
    page.goto(f"/admin/apps/{slug}/logs")
    page.locator("table a[href*='/logs/']").first.click()
    expect(page.locator("#run-input")).to_contain_text("/hello/grace")
    expect(page.locator("#run-response")).to_contain_text("hi grace")
    page.get_by_role("link", name="Run again").click()
    console = page.locator("#console")
    expect(console.get_by_label("Path")).to_have_value("/hello/grace")
    console.get_by_role("button", name="Run").click()
    expect(page.locator("#console-result .response-body")).to_have_text("hi grace")
