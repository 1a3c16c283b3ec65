"""Journeys through login, API tokens and logout."""
import re

import requests
from playwright.sync_api import expect

from e2e.conftest import ADMIN_PASSWORD, log_in


def test_create_a_token_use_it_and_log_out(page, live_server):
    log_in(page, "admin", ADMIN_PASSWORD)
    page.get_by_role("link", name="Account").click()
    page.get_by_label("Token name").fill("from the browser")
    page.get_by_role("button", name="Create token").click()

    token = page.locator("#new-token")
    expect(token).to_be_visible()
    secret = token.inner_text().strip()
    assert secret.startswith("pc_")
    expect(page.get_by_role("cell", name="from the browser")).to_be_visible()

    me = requests.get(live_server.url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert me.status_code == 200
    assert me.json()["user"]["username"] == "admin"

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile(r".*/admin/login$"))
    page.goto("/admin/account")
    expect(page).to_have_url(re.compile(r".*/admin/login\?next=.*"))


def test_a_wrong_password_shows_an_error(page):
    page.goto("/admin/login")
    page.get_by_label("Username").fill("admin")
    page.get_by_label("Password").fill("not-the-password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("Invalid username or password")
    expect(page).to_have_url(re.compile(r".*/admin/login$"))


def test_revoking_a_token_makes_it_useless(page, live_server):
    log_in(page, "admin", ADMIN_PASSWORD)
    page.goto("/admin/account")
    page.get_by_label("Token name").fill("short-lived")
    page.get_by_role("button", name="Create token").click()
    secret = page.locator("#new-token").inner_text().strip()
    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("row", name=re.compile("short-lived")).get_by_role("button", name="Revoke").click()
    expect(page.get_by_role("cell", name="short-lived")).to_have_count(0)
    me = requests.get(live_server.url + "/api/v1/auth/me", headers={"Authorization": f"Bearer {secret}"}, timeout=10)
    assert me.status_code == 401
