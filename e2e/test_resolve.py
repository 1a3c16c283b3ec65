"""The Apps page answers "Which app answers this URL?" as you ask it."""
from playwright.sync_api import expect

from e2e.conftest import admin_api
from e2e.test_apps import create_app_with_script


def test_pasting_a_url_shows_the_app_route_script_and_why(admin_page, live_server):
    page = admin_page
    slug, script_id = create_app_with_script(live_server, 'return "hi"\n')
    client = admin_api(live_server)
    base = f"{live_server.url}/api/v1/admin/apps/{slug}"
    assert client.post(base + "/domains", json={"pattern": f"*.{slug}.test"}, timeout=10).status_code == 201
    for method in ("GET", "*"):
        route = {"method": method, "path": "/items/:id", "script_id": script_id}
        assert client.post(base + "/routes", json=route, timeout=10).status_code == 201

    page.goto("/admin/apps")
    box = page.locator("#resolve")
    box.get_by_label("URL").fill(f"https://eu.{slug}.test/items/42")
    box.get_by_role("button", name="Explain").click()
    result = page.locator("#resolve-result")
    expect(result).to_contain_text(f"wildcard claim *.{slug}.test")
    expect(result).to_contain_text("GET /items/:id")
    expect(result).to_contain_text("id = 42")
    result.get_by_text("1 other route").click()
    expect(result).to_contain_text("'*' loses to a route for the exact method")

    box.get_by_label("Method").select_option("POST")
    box.get_by_role("button", name="Explain").click()
    expect(result.locator("dd").nth(2)).to_contain_text("* /items/:id")
    result.get_by_role("link", name="main").click()
    expect(page).to_have_url(f"{live_server.url}/admin/apps/{slug}/scripts/{script_id}")
