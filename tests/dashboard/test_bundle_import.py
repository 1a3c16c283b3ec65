"""The Settings tab's Export (download the bundle) and Import (upload → plan → confirm)."""
import html
import json
import re

from tests.support.apps import new_site
from tests.support.dashboard import csrf_from


def settings_url(site, tail=""):
    return f"/admin/apps/{site.slug}/settings{tail}"


def api_bundle(site):
    return site.api.get(f"/api/v1/admin/apps/{site.app['id']}/bundle").json()


def upload(dash, site, bundle, prune=False):
    data = {"prune": "y"} if prune else {}
    files = {"bundle": ("app.bundle.json", json.dumps(bundle).encode(), "application/json")}
    return dash.post(settings_url(site, "/import"), data, files=files)


def hidden_bundle(page):
    match = re.search(r'id="bundle" name="bundle" type="hidden" value="([^"]*)"', page)
    assert match, "no bundle to confirm in the page"
    return html.unescape(match.group(1))


def make_site(admin, server):
    site = new_site(admin, server.url, "dash")
    site.route("/", script=site.script('return "v1"\n', name="page"))
    return site


def test_export_downloads_the_bundle(dash, admin, server):
    site = make_site(admin, server)
    response = dash.get(settings_url(site, "/export"))
    assert response.status_code == 200
    assert response.headers["Content-Disposition"] == f'attachment; filename="{site.slug}.bundle.json"'
    assert response.json() == api_bundle(site)
    page = dash.get(settings_url(site)).text
    assert settings_url(site, "/export") in page and "Import…" in page


def test_import_shows_the_plan_then_applies_it_on_confirm(dash, admin, server):
    site = make_site(admin, server)
    before = api_bundle(site)
    bundle = json.loads(json.dumps(before))
    bundle["scripts"][0]["source"] = 'return "v2"\n'
    bundle["scripts"].append({"name": "extra", "source": "return 1"})
    planned = upload(dash, site, bundle)
    assert planned.status_code == 200, planned.text
    assert "Nothing has changed yet" in planned.text
    assert re.search(r'plan-update"><td>update</td><td>script</td><td><code>page</code>', planned.text)
    assert re.search(r'plan-create"><td>create</td><td>script</td><td><code>extra</code>', planned.text)
    assert "Apply 2 changes" in planned.text
    assert api_bundle(site) == before
    confirmed = dash.post(settings_url(site, "/import/confirm"), {"bundle": hidden_bundle(planned.text), "prune": ""})
    assert confirmed.status_code == 200, confirmed.text
    assert "Imported: 1 created, 1 updated, 0 deleted." in confirmed.text
    assert site.call("/").text == "v2"
    assert sorted(s["name"] for s in api_bundle(site)["scripts"]) == ["extra", "page"]
    # The same bundle again changes nothing.
    again = upload(dash, site, bundle)
    assert "Nothing to import" in again.text and "Apply" not in again.text


def test_import_with_prune_plans_deletes(dash, admin, server):
    site = make_site(admin, server)
    site.script('return "spare"\n', name="spare")
    bundle = api_bundle(site)
    bundle["scripts"] = [s for s in bundle["scripts"] if s["name"] != "spare"]
    kept = upload(dash, site, bundle)
    assert "Nothing to import" in kept.text
    pruned = upload(dash, site, bundle, prune=True)
    assert re.search(r'plan-delete"><td>delete</td><td>script</td><td><code>spare</code>', pruned.text)
    assert 'value="y"' in pruned.text  # the confirm form carries prune
    confirmed = dash.post(settings_url(site, "/import/confirm"), {"bundle": hidden_bundle(pruned.text), "prune": "y"})
    assert "1 deleted" in confirmed.text
    assert [s["name"] for s in api_bundle(site)["scripts"]] == ["page"]


def test_a_bad_bundle_is_shown_next_to_the_upload_and_changes_nothing(dash, admin, server):
    site = make_site(admin, server)
    before = api_bundle(site)
    broken = json.loads(json.dumps(before))
    broken["scripts"][0]["source"] = "return +"
    response = upload(dash, site, broken)
    assert response.status_code == 422
    assert "scripts[0].source" in response.text and "line 1" in response.text
    files = {"bundle": ("x.json", b"{not json", "application/json")}
    not_json = dash.post(settings_url(site, "/import"), {}, files=files)
    assert not_json.status_code == 422 and "not a JSON bundle" in not_json.text
    other = dict(before, format=2)
    refused = upload(dash, site, other)
    assert refused.status_code == 422 and "format 1" in refused.text
    assert dash.post(settings_url(site, "/import"), {}).status_code == 422  # no file
    assert api_bundle(site) == before


def test_import_needs_csrf_and_the_capability_of_each_change(dash, login_as, admin, server):
    site = make_site(admin, server)
    before = api_bundle(site)
    changed = json.loads(json.dumps(before))
    changed["scripts"][0]["description"] = "changed"
    files = {"bundle": ("b.json", json.dumps(changed).encode(), "application/json")}
    assert dash.post(settings_url(site, "/import"), {}, csrf=False, files=files).status_code == 400
    viewer = login_as("viewer")
    page = viewer.get(settings_url(site)).text
    assert "Export" in page and "Import…" not in page
    assert viewer.get(settings_url(site, "/export")).json() == before
    denied = upload(viewer, site, changed)
    assert denied.status_code == 403 and "scripts.manage" in denied.text
    developer = login_as("developer")
    with_domain = json.loads(json.dumps(changed))
    with_domain["domains"].append(f"more-{site.slug}.test")
    refused = upload(developer, site, with_domain)
    assert refused.status_code == 403 and "domains.manage" in refused.text
    planned = upload(developer, site, changed)
    assert planned.status_code == 200
    forged = dict(json.loads(hidden_bundle(planned.text)))
    forged["domains"] = with_domain["domains"]
    sneaky = developer.post(settings_url(site, "/import/confirm"), {"bundle": json.dumps(forged), "prune": ""})
    assert sneaky.status_code == 403
    assert api_bundle(site) == before
    assert csrf_from(planned.text)
