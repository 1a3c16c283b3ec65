"""Journeys through the app pages: from a new app to a run in the logs, renames,
compile errors in the editor and the test console."""
import re
import uuid

import requests
from playwright.sync_api import expect

from e2e.conftest import admin_api as api


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def create_app_with_script(live_server, source):
    """Create an app and a script through the admin API; return (slug, script id)."""
    client = api(live_server)
    slug = unique("e2e")
    app = client.post(live_server.url + "/api/v1/admin/apps", json={"slug": slug}, timeout=10)
    assert app.status_code == 201, app.text
    script = client.post(
        live_server.url + "/api/v1/admin/scripts",
        json={"app_id": app.json()["id"], "name": "main", "source": source},
        timeout=10,
    )
    assert script.status_code == 201, script.text
    return slug, script.json()["id"]


def replace_source(page, source):
    """Select everything in the editor and put ``source`` in its place, as a paste would."""
    page.locator(".CodeMirror").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text(source)


def test_from_a_new_app_to_a_run_in_the_logs(admin_page, live_server):
    page = admin_page
    slug = unique("shop")
    host = f"{slug}.example.test"

    page.get_by_role("link", name="Apps").click()
    page.get_by_label("Slug").press_sequentially(slug)
    expect(page.locator("#slug-status")).to_contain_text("is available")
    page.get_by_label("Name").fill("Corner shop")
    page.get_by_role("button", name="Create app").click()
    expect(page).to_have_url(re.compile(rf"/admin/apps/{slug}$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("Corner shop")

    page.get_by_role("tab", name="Domains").click()
    page.get_by_label("Domain").fill(host)
    page.get_by_role("button", name="Add domain").click()
    expect(page.get_by_role("cell", name=host, exact=True)).to_be_visible()

    page.get_by_role("tab", name="Scripts").click()
    page.get_by_label("Name").fill("greet")
    page.get_by_role("button", name="Create script").click()
    expect(page.locator(".breadcrumb")).to_contain_text("Scripts / greet")
    replace_source(page, 'log.info("serving " .. request.path)\nreturn "fresh bread at " .. request.path\n')
    expect(page.locator("#unsaved")).to_be_visible()
    page.keyboard.press("ControlOrMeta+s")
    expect(page.locator("#save-status")).to_contain_text("Saved as version 2")
    expect(page.locator("#unsaved")).to_be_hidden()
    expect(page.locator("#versions")).to_contain_text("v2")

    page.get_by_role("tab", name="Routes").click()
    page.get_by_label("Method").select_option("GET")
    page.get_by_label("Path").fill("/bread")
    page.get_by_label("Host").fill(host)
    page.get_by_label("Script").select_option(label="greet")
    page.get_by_role("button", name="Add route").click()
    port = live_server.url.rsplit(":", 1)[1]
    expect(page.get_by_role("link", name=f"http://{host}:{port}/bread")).to_be_visible()

    response = requests.get(live_server.url + "/bread", headers={"Host": host}, timeout=10)
    assert response.status_code == 200
    assert response.text == "fresh bread at /bread"

    page.get_by_role("tab", name="Logs").click()
    page.get_by_label("Live").check()
    expect(page.locator("#log-rows[data-live]")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="greet").filter(has_text="http")
    expect(row).to_have_count(1, timeout=10_000)
    expect(row).to_contain_text("ok")
    expect(row).to_contain_text("200")
    page.get_by_label("Live").uncheck()
    row.get_by_role("link", name=re.compile("Details")).click()
    expect(page.get_by_role("heading", name=re.compile("Run "))).to_be_visible()
    expect(page.locator(".log-lines")).to_contain_text("serving /bread")
    expect(page.locator("table.usage")).to_contain_text("Lua instructions")


def test_renaming_through_the_confirm_dialog_leaves_a_redirect(admin_page, live_server):
    page = admin_page
    first, second = unique("old"), unique("new")
    for slug in (first,):
        page.goto("/admin/apps")
        page.get_by_label("Slug").fill(slug)
        page.get_by_role("button", name="Create app").click()
        expect(page).to_have_url(re.compile(rf"/admin/apps/{slug}$"))

    page.get_by_role("tab", name="Settings").click()
    page.get_by_label("New slug").fill(second)
    expect(page.locator("#rename-check")).to_contain_text("is available")
    page.get_by_role("button", name="Rename…").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text(f"Rename {first} to {second}?")
    dialog.get_by_role("button", name="Rename", exact=True).click()
    expect(page).to_have_url(re.compile(rf"/admin/apps/{second}/settings$"))

    moved = page.request.get(f"/admin/apps/{first}/routes", max_redirects=0)
    assert moved.status == 301
    assert moved.headers["location"].endswith(f"/admin/apps/{second}/routes")
    page.goto(f"/admin/apps/{first}/routes")
    expect(page).to_have_url(re.compile(rf"/admin/apps/{second}/routes$"))
    expect(page.get_by_role("tab", name="Routes")).to_have_attribute("aria-selected", "true")

    # Another app taking the old slug is warned that the redirect will stop.
    third = unique("other")
    page.goto("/admin/apps")
    page.get_by_label("Slug").fill(third)
    page.get_by_role("button", name="Create app").click()
    page.get_by_role("tab", name="Settings").click()
    page.get_by_label("New slug").fill(first)
    expect(page.locator("#rename-check")).to_contain_text(f"former slug of app {second}")
    page.get_by_role("button", name="Rename…").click()
    expect(page.get_by_role("dialog")).to_contain_text(f"the old redirect to {second} stops")
    page.get_by_role("dialog").get_by_role("button", name="Take over and rename").click()
    expect(page).to_have_url(re.compile(rf"/admin/apps/{first}/settings$"))
    page.goto(f"/admin/apps/{first}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(third)


def test_a_compile_error_is_shown_at_its_line(admin_page, live_server):
    page = admin_page
    slug, script_id = create_app_with_script(live_server, 'return "ok"\n')
    page.goto(f"/admin/apps/{slug}/scripts/{script_id}")
    replace_source(page, 'local greeting = "hi"\nlocal n = 1\nif n > 0 then\n  return greeting\n')
    page.get_by_role("button", name="Save", exact=True).click()

    status = page.locator("#save-status")
    expect(status).to_contain_text("Line ")
    line = int(status.get_attribute("data-error-line"))
    assert 3 <= line <= 5
    marked = page.locator(".CodeMirror-code > div").filter(has=page.locator(".cm-error-line"))
    expect(marked).to_have_count(1)
    expect(marked.locator(".CodeMirror-linenumber")).to_have_text(str(line))
    expect(page.locator(".cm-error-note")).to_contain_text(f"Line {line}:")
    expect(page.locator("#versions")).not_to_contain_text("v2")

    replace_source(page, 'local greeting = "hi"\nreturn greeting\n')
    page.keyboard.press("ControlOrMeta+s")
    expect(status).to_contain_text("Saved as version 2")
    expect(page.locator(".cm-error-line")).to_have_count(0)
    page.reload()
    expect(page.locator(".CodeMirror")).to_contain_text("return greeting")


def test_the_console_runs_the_script_with_a_request(admin_page, live_server):
    page = admin_page
    source = (
        'log.info("order for " .. request.json.item)\n'
        'return {status = 201, body = {item = request.json.item, q = request.query.size,'
        ' who = ctx.principal.username, method = request.method}}\n'
    )
    slug, script_id = create_app_with_script(live_server, source)
    page.goto(f"/admin/apps/{slug}/scripts/{script_id}")
    console = page.locator("#console")
    console.get_by_label("Method").select_option("POST")
    console.get_by_label("Path").fill("/orders")
    console.get_by_label("Query string").fill("size=large")
    console.get_by_label("JSON body").fill('{"item": "tea"}')
    console.get_by_role("button", name="Run").click()

    result = page.locator("#console-result")
    expect(result).to_contain_text("ok")
    expect(result).to_contain_text("Response 201")
    body = result.locator(".response-body")
    expect(body).to_contain_text('"item": "tea"')
    expect(body).to_contain_text('"q": "large"')
    expect(body).to_contain_text('"who": "admin"')
    expect(body).to_contain_text('"method": "POST"')
    expect(result.locator(".log-lines")).to_contain_text("order for tea")
    expect(result).to_contain_text("Duration")
    expect(result).to_contain_text("Instructions")

    console.get_by_label("JSON body").fill("{broken")
    console.get_by_role("button", name="Run").click()
    expect(page.locator("#console")).to_contain_text("Not valid JSON")


def test_editing_a_route_in_place(admin_page, live_server):
    page = admin_page
    slug, script_id = create_app_with_script(live_server, 'return "item " .. (request.params.id or "none")\n')
    host = f"{slug}.example.test"
    client = api(live_server)
    base = f"{live_server.url}/api/v1/admin/apps/{slug}"
    assert client.post(base + "/domains", json={"pattern": host}, timeout=10).status_code == 201
    route = client.post(base + "/routes", json={"method": "GET", "path": "/items/:id", "script_id": script_id}, timeout=10)
    assert route.status_code == 201, route.text
    port = live_server.url.rsplit(":", 1)[1]

    page.goto(f"/admin/apps/{slug}/routes")
    row = page.locator(f"#route-{route.json()['id']}")
    # A parameter is a placeholder, not a link.
    expect(row.locator("var.placeholder")).to_have_text("{id}")
    expect(row.get_by_role("link", name=re.compile("^http:"))).to_have_count(0)

    row.get_by_role("link", name="Edit").click()
    expect(row.get_by_label("Path")).to_have_value("/items/:id")
    row.get_by_role("link", name="Cancel").click()
    expect(row.get_by_label("Path")).to_have_count(0)
    expect(row).to_contain_text("/items/:id")

    row.get_by_role("link", name="Edit").click()
    row.get_by_label("Path").fill("/admin/items")
    row.get_by_role("button", name="Save").click()
    expect(row.locator(".error")).to_contain_text("reserved for the platform")

    row.get_by_label("Path").fill("/catalogue")
    row.get_by_role("button", name="Save").click()
    expect(row.get_by_role("link", name=f"http://{host}:{port}/catalogue")).to_be_visible()
    expect(row.get_by_label("Path")).to_have_count(0)

    response = requests.get(live_server.url + "/catalogue", headers={"Host": host}, timeout=10)
    assert response.status_code == 200 and response.text == "item none"


def test_a_failed_htmx_action_shows_its_error_in_place(admin_page, live_server):
    page = admin_page
    slug, script_id = create_app_with_script(live_server, 'return "hi"\n')
    client = api(live_server)
    route = client.post(f"{live_server.url}/api/v1/admin/apps/{slug}/routes",
                        json={"method": "GET", "path": "/gone", "script_id": script_id}, timeout=10)
    assert route.status_code == 201, route.text

    page.goto(f"/admin/apps/{slug}/routes")
    row = page.locator(f"#route-{route.json()['id']}")
    expect(row).to_contain_text("/gone")
    # Someone else deletes the route; this page still shows it.
    assert client.delete(f"{live_server.url}/api/v1/admin/routes/{route.json()['id']}", timeout=10).status_code == 204

    row.get_by_role("button", name="Enabled").click()
    banner = page.locator("#request-error")
    expect(banner).to_have_text(re.compile(r"^404 .*: No such route\.$"))
    # The page stays as it was, with the message above it.
    expect(page).to_have_url(re.compile(f"/admin/apps/{slug}/routes$"))
    expect(row).to_contain_text("/gone")
