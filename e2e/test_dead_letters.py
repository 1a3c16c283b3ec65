"""Journey: a trigger keeps failing, its dead letter is replayed from the Dead letters tab."""
import time
import uuid

from playwright.sync_api import expect

from e2e.conftest import ADMIN_PASSWORD
from tests.support.live import login

# Fails until the key "fixed" exists, so the replay after the fix succeeds.
FIXABLE = 'if not kv.get("fixed") then error("payment service unreachable") end\nkv.set("done/" .. event.key, true)\n'


def wait_for(check, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_replay_a_dead_letter_from_the_tab(admin_page, live_server):
    page = admin_page
    api = login(live_server.url, "admin", ADMIN_PASSWORD)
    slug = f"shop-{uuid.uuid4().hex[:6]}"
    app = api.post("/api/v1/admin/apps", json={"slug": slug}).json()
    script = api.post("/api/v1/admin/scripts", json={"app_id": app["id"], "name": "charge", "source": FIXABLE}).json()
    trigger = api.post(
        f"/api/v1/admin/apps/{slug}/triggers/kv",
        json={"script_id": script["id"], "key_glob": "orders/*", "retry": {"max_attempts": 1}},
    )
    assert trigger.status_code == 201, trigger.text
    assert api.put(f"/api/v1/admin/apps/{slug}/kv/orders%2F1", json={"total": 12}).status_code == 200
    [dead] = wait_for(lambda: api.get(f"/api/v1/admin/apps/{slug}/dead-letters").json()["dead_letters"])

    page.goto(f"/admin/apps/{slug}")
    page.get_by_role("tab", name="Dead letters").click()
    row = page.locator(f"#dead-letter-{dead['id']}")
    expect(row).to_contain_text("payment service unreachable")
    expect(row).to_contain_text("open")

    # Inspect it: the event and the last error.
    row.get_by_role("link", name="Inspect").click()
    expect(page.locator("pre").first).to_contain_text("payment service unreachable")
    expect(page.get_by_text('"orders/1"')).to_be_visible()
    page.go_back()

    assert api.put(f"/api/v1/admin/apps/{slug}/kv/fixed", json=True).status_code == 200
    page.locator(f"#dead-letter-{dead['id']}").get_by_role("button", name="Replay").click()
    expect(page.locator("#toasts")).to_contain_text(f"Dead letter #{dead['id']} replayed")
    expect(page.locator(f"#dead-letter-{dead['id']}")).to_have_count(0)  # no longer open

    page.get_by_role("link", name="All, resolved included").click()
    expect(page.locator(f"#dead-letter-{dead['id']}")).to_contain_text("replayed")
    assert wait_for(lambda: api.get(f"/api/v1/admin/apps/{slug}/kv/done%2Forders%2F1").status_code == 200)
