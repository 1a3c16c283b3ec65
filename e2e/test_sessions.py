"""Journeys where the dashboard session ends under an open page, and where a person
leaves the editor with unsaved edits."""
import re
import uuid

from playwright.sync_api import expect

from e2e.conftest import admin_api, log_in
from e2e.test_apps import create_app_with_script, replace_source

PASSWORD = "a-developer-password"


def new_developer(live_server):
    """Create a developer of its own, so ending its sessions touches no other journey."""
    username = f"dev-{uuid.uuid4().hex[:8]}"
    created = admin_api(live_server).post(
        live_server.url + "/api/v1/admin/users",
        json={"username": username, "password": PASSWORD, "role": "developer"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    return username


def log_out_elsewhere(browser, live_server, username):
    """Log the same user in from a second browser and log out there: every session ends."""
    other = browser.new_context(base_url=live_server.url)
    page = other.new_page()
    log_in(page, username, PASSWORD)
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(re.compile(r".*/admin/login"))
    other.close()


def source_of(live_server, script_id):
    answer = admin_api(live_server).get(f"{live_server.url}/api/v1/admin/scripts/{script_id}", timeout=10)
    return answer.json()["source"]


def test_an_ended_session_asks_to_log_in_and_the_save_carries_on(browser, page, live_server):
    username = new_developer(live_server)
    slug, script_id = create_app_with_script(live_server, 'return "before"\n')
    log_in(page, username, PASSWORD)
    page.goto(f"/admin/apps/{slug}/scripts/{script_id}")
    log_out_elsewhere(browser, live_server, username)

    replace_source(page, 'return "after the session ended"\n')
    page.keyboard.press("ControlOrMeta+s")
    dialog = page.locator("#session-ended")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Your session has ended")
    # Nothing of the login page is pasted into the page, and the edit is still there.
    expect(page.locator("main")).not_to_contain_text("Log in to PiCloud")
    expect(page.locator(".CodeMirror")).to_contain_text("after the session ended")
    assert source_of(live_server, script_id) == 'return "before"\n'

    # "Carry on" before logging in again says so and keeps the dialog.
    dialog.get_by_role("button", name="Carry on").click()
    expect(dialog.locator("[data-session-status]")).to_be_visible()

    with page.context.expect_page() as opened:
        dialog.get_by_role("link", name="Log in in a new tab").click()
    login_tab = opened.value
    login_tab.get_by_label("Username").fill(username)
    login_tab.get_by_label("Password").fill(PASSWORD)
    login_tab.get_by_role("button", name="Log in").click()
    expect(login_tab.get_by_role("heading", name="You are logged in again")).to_be_visible()
    login_tab.close()

    page.bring_to_front()
    dialog.get_by_role("button", name="Carry on").click()
    expect(dialog).to_be_hidden()
    expect(page.locator("#save-status")).to_contain_text("Saved as version 2")
    assert source_of(live_server, script_id) == 'return "after the session ended"\n'


def test_the_live_tail_of_an_ended_session_does_not_paste_the_login_page(browser, page, live_server):
    username = new_developer(live_server)
    log_in(page, username, PASSWORD)
    page.goto("/admin/apps/default/logs")
    page.get_by_label("Live").check()
    log_out_elsewhere(browser, live_server, username)

    expect(page.locator("#session-ended")).to_be_visible(timeout=10_000)
    page.wait_for_timeout(2_500)  # another tick of the tail
    expect(page.locator("main")).not_to_contain_text("Log in to PiCloud")
    expect(page.locator("main input[name=password]")).to_have_count(0)


def test_a_lost_cookie_asks_to_log_in_instead_of_a_csrf_error(page, live_server):
    username = new_developer(live_server)
    slug, script_id = create_app_with_script(live_server, 'return "kept"\n')
    log_in(page, username, PASSWORD)
    page.goto(f"/admin/apps/{slug}/scripts/{script_id}")
    page.context.clear_cookies()

    replace_source(page, 'return "typed after the cookie went"\n')
    page.keyboard.press("ControlOrMeta+s")
    expect(page.locator("#session-ended")).to_be_visible()
    expect(page.locator("body")).not_to_contain_text("CSRF")
    expect(page.locator(".CodeMirror")).to_contain_text("typed after the cookie went")


def test_leaving_unsaved_edits_asks_first_and_keeps_a_draft(admin_page, live_server):
    page = admin_page
    slug, script_id = create_app_with_script(live_server, 'return "saved"\n')
    page.goto(f"/admin/apps/{slug}/scripts/{script_id}")
    replace_source(page, 'return "not saved yet"\n')

    asked = []

    def answer(dialog):
        asked.append(dialog.type)
        dialog.accept()

    page.on("dialog", answer)
    page.get_by_role("tab", name="Routes").click()
    page.wait_for_url(re.compile(r".*/routes$"))
    assert asked == ["beforeunload"]

    page.goto(f"/admin/apps/{slug}/scripts/{script_id}")
    notice = page.locator(".draft-notice")
    expect(notice).to_contain_text("unsaved draft")
    notice.get_by_role("button", name="Restore draft").click()
    expect(page.locator(".CodeMirror")).to_contain_text("not saved yet")
    page.keyboard.press("ControlOrMeta+s")
    expect(page.locator("#save-status")).to_contain_text("Saved as version 2")
    page.reload()
    expect(page.locator(".draft-notice")).to_have_count(0)
