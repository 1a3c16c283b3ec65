"""Journey through secrets and outbound HTTP: set a secret in the dashboard, write a script that
signs a request with it and calls a local server, and see the call in the run detail."""
import hashlib
import hmac
import re
import uuid

import pytest
from playwright.sync_api import expect

from e2e.conftest import ADMIN_PASSWORD, log_in
from tests.support.databases import temporary_database
from tests.support.live import LiveServer
from tests.support.upstream import Upstream


@pytest.fixture(scope="module")
def upstream():
    server = Upstream().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def world_server(tmp_path_factory, upstream):
    """A server of its own, allowed to call the local upstream."""
    data_dir = tmp_path_factory.mktemp("e2e-world")
    with temporary_database(data_dir) as url:
        server = LiveServer(
            {
                "DATABASE_URL": url,
                "PICLOUD_DATA_DIR": str(data_dir),
                "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
                "PICLOUD_EXECUTOR_PROCESSES": "2",
                "PICLOUD_EGRESS_ALLOW": f"127.0.0.1:{upstream.port}",
            },
            data_dir / "server.log",
        ).start()
        yield server
        server.stop()


@pytest.fixture
def world_page(browser, world_server):
    context = browser.new_context(base_url=world_server.url)
    context.set_default_timeout(15_000)
    page = context.new_page()
    log_in(page, "admin", ADMIN_PASSWORD)
    yield page
    context.close()


def replace_source(page, source):
    page.locator(".CodeMirror").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text(source)


def test_a_signed_call_with_a_secret_shows_in_the_run_detail(world_page, upstream):
    page = world_page
    slug = f"hooks-{uuid.uuid4().hex[:8]}"
    key = "whsec-" + uuid.uuid4().hex

    page.goto("/admin/apps")
    page.get_by_label("Slug").press_sequentially(slug)
    expect(page.locator("#slug-status")).to_contain_text("is available")
    page.get_by_role("button", name="Create app").click()
    expect(page).to_have_url(re.compile(rf"/admin/apps/{slug}$"))

    page.get_by_role("tab", name="Settings").click()
    secrets = page.locator("#secrets")
    secrets.get_by_label("Name").fill("SIGNING_KEY")
    secrets.get_by_label("Value").fill(key)
    secrets.get_by_role("button", name="Set secret").click()
    expect(page.locator("#secrets").get_by_role("cell", name="SIGNING_KEY")).to_be_visible()
    assert key not in page.content()

    page.get_by_role("tab", name="Scripts").click()
    page.get_by_label("Name").fill("notify")
    page.get_by_role("button", name="Create script").click()
    expect(page.locator(".breadcrumb")).to_contain_text("Scripts / notify")
    replace_source(page, (
        'local body = [[{"event":"paid","id":42}]]\n'
        'local signature = encoding.hex_encode(crypto.hmac("sha256", secrets.SIGNING_KEY, body))\n'
        f'local r, err = http.post("{upstream.url}/echo/hooks?token=t0p", body, {{\n'
        '  headers = {["X-Signature"] = signature, ["Content-Type"] = "application/json"},\n'
        '})\n'
        'log.info("signed with " .. secrets.SIGNING_KEY)\n'
        'return {upstream = r.status, sent = signature}\n'
    ))
    page.keyboard.press("ControlOrMeta+s")
    expect(page.locator("#save-status")).to_contain_text("Saved as version 2")

    page.locator("#console").get_by_role("button", name="Run").click()
    result = page.locator("#console-result")
    expect(result).to_contain_text("ok")

    [(method, path)] = [seen for seen in upstream.seen if seen[1].startswith("/echo/hooks")]
    assert method == "POST" and path == "/echo/hooks?token=t0p"
    body = '{"event":"paid","id":42}'
    expected = hmac.new(key.encode(), body.encode(), hashlib.sha256).hexdigest()
    expect(result.locator(".response-body")).to_contain_text(expected)

    result.get_by_role("link", name=re.compile("^[0-9a-f-]{36}$")).click()
    calls = page.locator("#outbound-calls")
    expect(calls).to_contain_text("POST")
    expect(calls).to_contain_text(f"{upstream.url}/echo/hooks")
    expect(calls).not_to_contain_text("token=t0p")
    expect(calls.get_by_role("cell", name="200", exact=True)).to_be_visible()
    expect(page.locator(".log-lines")).to_contain_text("signed with [secret:SIGNING_KEY]")
    assert key not in page.content()
