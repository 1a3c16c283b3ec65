"""Journey through Settings → Export and import: download an app's bundle, change it, upload it,
review the plan and confirm; the change is live."""
import json
import uuid

import requests
from playwright.sync_api import expect

from e2e.conftest import admin_api as api


def test_export_edit_import_confirm(admin_page, live_server, tmp_path):
    page = admin_page
    client = api(live_server)
    slug = f"bundle-{uuid.uuid4().hex[:8]}"
    host = f"{slug}.test"
    app = client.post(live_server.url + "/api/v1/admin/apps", json={"slug": slug}, timeout=10).json()
    client.post(live_server.url + f"/api/v1/admin/apps/{slug}/domains", json={"pattern": host}, timeout=10)
    script = client.post(
        live_server.url + "/api/v1/admin/scripts",
        json={"app_id": app["id"], "name": "page", "source": 'return "before"\n'},
        timeout=10,
    ).json()
    client.post(live_server.url + f"/api/v1/admin/apps/{slug}/routes",
                json={"method": "GET", "path": "/", "script_id": script["id"]}, timeout=10)

    page.goto(f"/admin/apps/{slug}/settings")
    with page.expect_download() as download:
        page.get_by_role("link", name="Export").click()
    exported = tmp_path / download.value.suggested_filename
    download.value.save_as(exported)
    assert exported.name == f"{slug}.bundle.json"
    bundle = json.loads(exported.read_text())
    bundle["scripts"][0]["source"] = 'return "after"\n'
    exported.write_text(json.dumps(bundle))

    page.get_by_label("Bundle file (JSON)").set_input_files(exported)
    page.get_by_role("button", name="Import…").click()
    expect(page.get_by_role("heading", name="Import: review the changes")).to_be_visible()
    expect(page.get_by_role("row", name="update script page")).to_be_visible()
    assert requests.get(live_server.url + "/", headers={"Host": host}, timeout=10).text == "before"

    page.get_by_role("button", name="Apply 1 change").click()
    expect(page.get_by_role("status")).to_have_text("Imported: 0 created, 1 updated, 0 deleted.")
    assert requests.get(live_server.url + "/", headers={"Host": host}, timeout=10).text == "after"
