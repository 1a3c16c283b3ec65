"""Journey: add a schedule on the Triggers tab, watching its next runs appear as it is typed."""
import uuid

from playwright.sync_api import expect

from e2e.conftest import ADMIN_PASSWORD
from tests.support.live import login


def test_type_a_schedule_see_its_next_runs_and_add_it(admin_page, live_server):
    page = admin_page
    api = login(live_server.url, "admin", ADMIN_PASSWORD)
    slug = f"cron-{uuid.uuid4().hex[:6]}"
    app = api.post("/api/v1/admin/apps", json={"slug": slug}).json()
    api.post("/api/v1/admin/scripts", json={"app_id": app["id"], "name": "report", "source": "return 1"})

    page.goto(f"/admin/apps/{slug}/triggers")
    page.get_by_label("When").select_option("schedule")
    page.get_by_label("Timezone").fill("UTC")
    schedule = page.get_by_role("textbox", name="Schedule")
    schedule.press_sequentially("* * *")
    preview = page.locator("#schedule-preview")
    expect(preview).to_contain_text("5 fields")
    schedule.fill("")
    schedule.press_sequentially("@weekly")
    expect(preview.locator("li")).to_have_count(5)
    expect(preview.locator("li").first).to_contain_text("Sun ")
    expect(preview.locator("li").first).to_contain_text("00:00:00 UTC")

    page.get_by_role("button", name="Add trigger").click()
    row = page.locator("#triggers tbody tr").first
    expect(row).to_contain_text("@weekly")
    expect(row).to_contain_text("never")
    [trigger] = api.get(f"/api/v1/admin/apps/{slug}/triggers").json()["triggers"]
    assert trigger["kind"] == "schedule" and trigger["cron"] == "@weekly"
    expect(row).to_contain_text(trigger["next_run_at"][:10])
