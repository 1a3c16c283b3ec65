"""Small things a person notices: confirmations, the tab icon, a console free of errors."""
import uuid

import requests

from playwright.sync_api import expect

from e2e.conftest import ADMIN_PASSWORD, admin_api, log_in, wait_for_runs


def test_a_role_change_asks_first_and_says_what_it_did(admin_page, live_server):
    page = admin_page
    username = f"role-{uuid.uuid4().hex[:8]}"
    client = admin_api(live_server)
    created = client.post(
        live_server.url + "/api/v1/admin/users",
        json={"username": username, "password": "a-long-password", "role": "developer"},
        timeout=10,
    ).json()
    page.goto("/admin/users")
    row = page.locator("tr", has_text=username)
    row.get_by_label(f"Role of {username}").select_option("viewer")
    page.wait_for_timeout(300)  # nothing is sent on change alone

    page.once("dialog", lambda dialog: dialog.dismiss())
    row.get_by_role("button", name="Change").click()
    page.wait_for_timeout(300)
    role_of = lambda: client.get(live_server.url + "/api/v1/admin/users", timeout=10).json()["users"]  # noqa: E731
    assert [u["role"] for u in role_of() if u["id"] == created["id"]] == ["developer"]

    page.once("dialog", lambda dialog: dialog.accept())
    row.get_by_role("button", name="Change").click()
    expect(page.locator("#toasts")).to_contain_text(f"{username} is now viewer.")
    assert [u["role"] for u in role_of() if u["id"] == created["id"]] == ["viewer"]


def test_pages_have_an_icon_and_htmx_swaps_log_no_errors(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    context.add_init_script(
        "document.addEventListener('securitypolicyviolation',"
        " e => console.error('CSP violation: ' + e.violatedDirective))"
    )
    page = context.new_page()
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    log_in(page, "admin", ADMIN_PASSWORD)

    icon = page.locator("link[rel=icon]").get_attribute("href")
    assert page.request.get(icon).status == 200

    page.goto("/admin/apps/default/routes")
    page.locator("a.button", has_text="Edit").first.click()
    expect(page.locator("tr.editing")).to_be_visible()
    page.goto("/admin/apps/default/scripts")
    page.locator("table a").first.click()
    page.locator("#console").get_by_role("button", name="Run").click()
    expect(page.locator("#console-result")).to_contain_text("ok")
    page.goto("/admin/apps/default/logs")
    page.get_by_label("Live").check()
    page.wait_for_timeout(2_500)
    context.close()
    assert problems == []


def test_login_fields_say_what_they_hold(page):
    page.goto("/admin/login")
    assert page.get_by_label("Username").get_attribute("autocomplete") == "username"
    assert page.get_by_label("Password").get_attribute("autocomplete") == "current-password"


def test_copy_buttons_put_tokens_urls_and_commands_on_the_clipboard(browser, live_server):
    context = browser.new_context(base_url=live_server.url)
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page = context.new_page()
    log_in(page, "admin", ADMIN_PASSWORD)
    clipboard = lambda: page.evaluate("navigator.clipboard.readText()")  # noqa: E731

    page.goto("/admin/account")
    page.get_by_label("Token name").fill("copied")
    page.get_by_role("button", name="Create token").click()
    token = page.locator("#new-token").inner_text().strip()
    page.get_by_role("button", name="Copy token").click()
    expect(page.get_by_role("button", name="Copy token")).to_have_text("Copied")
    assert clipboard() == token

    page.goto("/admin/apps/default/scripts")
    page.locator("table a").first.click()
    page.get_by_role("button", name="Copy curl command").first.click()
    assert clipboard().startswith("curl 'http://")

    assert requests.get(live_server.url + "/", timeout=10).text == "Hello from PiCloud!"  # a run to open
    wait_for_runs(live_server, "default")
    page.goto("/admin/apps/default/logs")
    page.locator("table a[href*='/logs/']").first.click()
    run_id = page.url.rsplit("/", 1)[1]
    page.get_by_role("button", name="Copy execution id").click()
    assert clipboard() == run_id
    context.close()
