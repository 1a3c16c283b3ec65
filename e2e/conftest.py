"""Playwright journeys in a real Chromium against a real PiCloud server.

Browser downloads are blocked where PiCloud is built, so Playwright drives the
system Chromium (``PICLOUD_CHROMIUM``, default ``/usr/bin/chromium``).
"""
import os
import re
import time

import pytest
import requests
from playwright.sync_api import sync_playwright

from tests.support.databases import temporary_database
from tests.support.live import LiveServer

ADMIN_PASSWORD = "e2e-admin-password"
CHROMIUM = os.environ.get("PICLOUD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def live_server(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("e2e-data")
    with temporary_database(data_dir) as url:
        server = LiveServer(
            {
                "DATABASE_URL": url,
                "PICLOUD_DATA_DIR": str(data_dir),
                "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "PICLOUD_EXECUTOR_PROCESSES": "2",
            },
            data_dir / "server.log",
        ).start()
        yield server
        server.stop()


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh browser page (own cookies) that is not logged in."""
    context = browser.new_context(base_url=live_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    context.close()


@pytest.fixture
def admin_page(page):
    """A page logged in to the dashboard as admin."""
    log_in(page, "admin", ADMIN_PASSWORD)
    return page


def log_in(page, username, password):
    page.goto("/admin/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(re.compile(r".*/admin(?!/login).*"))


def admin_api(live_server):
    """Return a requests session holding an admin API token."""
    token = requests.post(
        live_server.url + "/api/v1/auth/token",
        json={"username": "admin", "password": ADMIN_PASSWORD, "name": "e2e"},
        timeout=10,
    ).json()["token"]
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    return session


def wait_for_runs(live_server, slug, timeout=15, **params):
    """Wait until the app's execution log lists a run (runs reach it off the request path)."""
    client = admin_api(live_server)
    deadline = time.monotonic() + timeout
    url = f"{live_server.url}/api/v1/admin/apps/{slug}/executions"
    while not client.get(url, params=params, timeout=10).json()["executions"]:
        assert time.monotonic() < deadline, f"no run of {slug} was logged"
        time.sleep(0.2)
