"""The app pages over HTTP: apps list, tabs, scripts, routes, domains, logs, settings.

A requests session logs in like a browser and posts the forms with their CSRF token;
stored state is checked through the models bound to the suite's database.
"""
import json
import time
import re
import uuid

import pytest

from picloud.models import App, AppSlugHistory, Domain, Route, Script
from tests.support.dashboard import selected_tab


# Apps list, creation and the slug check ----------------------------------------------


def test_the_dashboard_opens_on_the_apps_list(dash):
    home = dash.get("/admin")
    assert home.status_code == 302 and home.headers["Location"].endswith("/admin/apps")
    page = dash.get("/admin/apps")
    assert page.status_code == 200
    assert "Create an app" in page.text and "default" in page.text


def test_creating_an_app_stores_it_and_opens_its_overview(dash, new_app, unique):
    slug = new_app(name="Shop front", description="Sells things")
    app = App.get(App.slug == slug)
    assert (app.name, app.description) == ("Shop front", "Sells things")
    page = dash.get(f"/admin/apps/{slug}")
    assert page.status_code == 200
    assert selected_tab(page.text) == "Overview"
    assert "Shop front" in page.text and '<svg class="chart"' in page.text
    assert f'href="/admin/apps/{slug}/scripts"' in page.text


def test_a_post_without_the_csrf_token_is_refused(dash, unique, database):
    slug = unique("nocsrf")
    response = dash.post("/admin/apps", {"slug": slug}, csrf=False)
    assert response.status_code == 400
    assert not App.select().where(App.slug == slug).exists()


@pytest.mark.parametrize(
    "slug, state",
    [("Not_A_Slug", "invalid"), ("admin", "reserved"), ("default", "taken")],
)
def test_the_slug_check_names_each_problem(dash, slug, state):
    response = dash.post("/admin/apps/slug-check", {"slug": slug}, htmx=True)
    assert response.status_code == 200
    assert f'data-slug-state="{state}"' in response.text
    assert "<html" not in response.text


def test_the_slug_check_offers_a_takeover_for_a_former_slug(dash, new_app, unique):
    old = unique("old")
    new_app(old)
    assert dash.post(f"/admin/apps/{old}/settings/rename", {"slug": unique("moved")}).status_code == 303
    free = dash.post("/admin/apps/slug-check", {"slug": unique("free")}, htmx=True)
    assert 'data-slug-state="available"' in free.text
    former = dash.post("/admin/apps/slug-check", {"slug": old}, htmx=True)
    assert 'data-slug-state="in_history"' in former.text and 'name="force"' in former.text

    refused = dash.post("/admin/apps", {"slug": old})
    assert refused.status_code == 409
    assert 'data-slug-state="in_history"' in refused.text
    assert dash.post("/admin/apps", {"slug": old, "force": "y"}).status_code == 303
    assert not AppSlugHistory.select().where(AppSlugHistory.slug == old).exists()


def test_a_taken_slug_is_shown_next_to_the_field(dash):
    response = dash.post("/admin/apps", {"slug": "default"})
    assert response.status_code == 409
    assert re.search(r'<small class="error">[^<]*taken', response.text)


# Tabs and redirects ------------------------------------------------------------------


@pytest.mark.parametrize(
    "sub_path, tab",
    [("", "Overview"), ("/scripts", "Scripts"), ("/routes", "Routes"), ("/domains", "Domains"),
     ("/logs", "Logs"), ("/settings", "Settings")],
)
def test_each_tab_renders_with_itself_selected(dash, sub_path, tab):
    page = dash.get(f"/admin/apps/default{sub_path}")
    assert page.status_code == 200
    assert selected_tab(page.text) == tab
    assert page.text.count('aria-selected="true"') == 1


def test_an_unknown_app_is_a_404_page(dash, unique):
    page = dash.get(f"/admin/apps/{unique('nope')}/routes")
    assert page.status_code == 404
    assert "<html" in page.text and "No such app" in page.text


def test_a_former_slug_answers_301_to_the_same_sub_path(dash, new_app, unique):
    old, new = unique("before"), unique("after")
    new_app(old)
    renamed = dash.post(f"/admin/apps/{old}/settings/rename", {"slug": new})
    assert renamed.status_code == 303
    assert renamed.headers["Location"].endswith(f"/admin/apps/{new}/settings")
    moved = dash.get(f"/admin/apps/{old}/logs?status=ok")
    assert moved.status_code == 301
    assert moved.headers["Location"].endswith(f"/admin/apps/{new}/logs?status=ok")
    assert dash.get(f"/admin/apps/{new}/logs").status_code == 200


def test_renaming_onto_another_apps_former_slug_needs_force(dash, new_app, unique):
    first, second = new_app(), new_app()
    parked = unique("parked")
    assert dash.post(f"/admin/apps/{first}/settings/rename", {"slug": parked}).status_code == 303

    check = dash.post(f"/admin/apps/{second}/settings/slug-check", {"slug": first}, htmx=True)
    assert 'data-slug-state="in_history"' in check.text
    assert "<dialog" in check.text and 'name="force"' in check.text and parked in check.text

    refused = dash.post(f"/admin/apps/{second}/settings/rename", {"slug": first})
    assert refused.status_code == 409
    assert App.select().where(App.slug == second).exists()
    taken = dash.post(f"/admin/apps/{second}/settings/rename", {"slug": first, "force": "y"})
    assert taken.status_code == 303
    assert App.get(App.slug == first).id != App.get(App.slug == parked).id
    assert dash.get(f"/admin/apps/{first}").status_code == 200


def test_deleting_an_app_needs_its_slug_typed(dash, new_app):
    slug = new_app()
    wrong = dash.post(f"/admin/apps/{slug}/settings/delete", {"confirm_slug": slug + "x"})
    assert wrong.status_code == 422
    assert App.select().where(App.slug == slug).exists()
    deleted = dash.post(f"/admin/apps/{slug}/settings/delete", {"confirm_slug": slug})
    assert deleted.status_code == 303 and deleted.headers["Location"].endswith("/admin/apps")
    assert not App.select().where(App.slug == slug).exists()


def test_settings_show_and_change_max_concurrency(dash, new_app):
    slug = new_app()
    path = f"/admin/apps/{slug}/settings/concurrency"
    assert 'name="max_concurrency"' in dash.get(f"/admin/apps/{slug}/settings").text
    assert dash.post(path, {"max_concurrency": "3"}).status_code == 303
    assert App.get(App.slug == slug).max_concurrency == 3
    assert 'value="3"' in dash.get(f"/admin/apps/{slug}/settings").text
    for bad in ("0", "-2", "two", "1.5"):
        refused = dash.post(path, {"max_concurrency": bad})
        assert refused.status_code == 422, bad
        assert 'aria-invalid="true"' in refused.text
        assert App.get(App.slug == slug).max_concurrency == 3
    assert dash.post(path, {"max_concurrency": ""}).status_code == 303
    assert App.get(App.slug == slug).max_concurrency is None


def test_the_default_app_cannot_be_deleted(dash):
    response = dash.post("/admin/apps/default/settings/delete", {"confirm_slug": "default"})
    assert response.status_code == 409
    assert App.select().where(App.slug == "default").exists()


# Domains and routes ------------------------------------------------------------------


def test_domains_are_claimed_and_conflicts_shown_inline(dash, new_app, unique):
    first, second = new_app(), new_app()
    host = unique("shop") + ".example.com"
    added = dash.post(f"/admin/apps/{first}/domains", {"pattern": host.upper()}, htmx=True)
    assert added.status_code == 200
    assert "<html" not in added.text and f"<code>{host}</code>" in added.text
    assert Domain.get(Domain.pattern == host).app.slug == first

    taken = dash.post(f"/admin/apps/{second}/domains", {"pattern": host}, htmx=True)
    assert taken.status_code == 409
    assert f"held by app {first}" in taken.text
    invalid = dash.post(f"/admin/apps/{second}/domains", {"pattern": "http://x.example.com/a"}, htmx=True)
    assert invalid.status_code == 422 and 'class="error"' in invalid.text


def test_routes_are_created_with_their_urls_toggled_and_deleted(dash, new_app, new_script, unique, server):
    slug = new_app()
    host = unique("r") + ".example.com"
    dash.post(f"/admin/apps/{slug}/domains", {"pattern": host}, htmx=True)
    script = new_script(slug)
    form = {"method": "GET", "path": "/items/:id", "host": "", "script_id": script.id,
            "dispatch_mode": "sync", "enabled": "y"}
    created = dash.post(f"/admin/apps/{slug}/routes", form, htmx=True)
    assert created.status_code == 200, created.text
    port = server.url.rsplit(":", 1)[1]
    assert f"http://{host}:{port}/items/" in created.text and ">{id}</var>" in created.text
    route = Route.get(Route.app == App.get(App.slug == slug))
    assert (route.method, route.path, route.host, route.enabled) == ("GET", "/items/:id", None, True)

    clash = dash.post(f"/admin/apps/{slug}/routes", {**form, "path": "/items/:other"}, htmx=True)
    assert clash.status_code == 409
    assert f"Route {route.id} (" in clash.text
    unclaimed = dash.post(f"/admin/apps/{slug}/routes", {**form, "path": "/x", "host": "elsewhere.org"}, htmx=True)
    assert unclaimed.status_code == 422 and "claims no domain covering elsewhere.org" in unclaimed.text

    toggled = dash.post(f"/admin/apps/{slug}/routes/{route.id}/toggle", htmx=True)
    assert toggled.status_code == 200 and Route.get_by_id(route.id).enabled is False
    assert dash.post(f"/admin/apps/{slug}/routes/{route.id}/delete", htmx=True).status_code == 200
    assert not Route.select().where(Route.id == route.id).exists()


def test_objects_of_another_app_are_not_found(dash, new_app, new_script):
    mine, theirs = new_app(), new_app()
    script = new_script(theirs)
    assert dash.get(f"/admin/apps/{mine}/scripts/{script.id}").status_code == 404
    assert dash.post(f"/admin/apps/{mine}/scripts/{script.id}/delete", htmx=True).status_code == 404
    assert dash.get(f"/admin/apps/{mine}/logs/{uuid.uuid4()}").status_code == 404
    assert dash.get(f"/admin/apps/{mine}/logs/not-a-uuid").status_code == 404
    assert Script.select().where(Script.id == script.id).exists()


# Scripts -----------------------------------------------------------------------------


def test_a_new_script_opens_in_the_editor_with_the_template(dash, new_app, new_script):
    slug = new_app()
    script = new_script(slug, "greet")
    assert script.version == 1 and "request.query.name" in script.source
    page = dash.get(f"/admin/apps/{slug}/scripts/{script.id}")
    assert page.status_code == 200
    assert 'data-editor="lua"' in page.text and "vendor/codemirror/codemirror.js" in page.text
    assert re.search(r'class="breadcrumb".*Apps</a> / <a[^>]*>' + slug + r"</a>.*Scripts</a> / .*greet", page.text, re.S)


def test_saving_source_adds_a_version_and_a_compile_error_names_its_line(dash, new_app, new_script):
    slug = new_app()
    script = new_script(slug)
    path = f"/admin/apps/{slug}/scripts/{script.id}/source"
    saved = dash.post(path, {"source": 'return "v2"\n'}, htmx=True)
    assert saved.status_code == 200
    assert "Saved as version 2" in saved.text and saved.headers["HX-Trigger"] == "script-saved"
    assert Script.get_by_id(script.id).source == 'return "v2"\n'

    broken = dash.post(path, {"source": 'local a = 1\nlocal b = 2\nreturn a +\n'}, htmx=True)
    assert broken.status_code == 422
    assert re.search(r'data-error-line="\d+"', broken.text)
    assert "Line " in broken.text and "HX-Trigger" not in broken.headers
    assert Script.get_by_id(script.id).version == 2

    versions = dash.get(f"/admin/apps/{slug}/scripts/{script.id}/versions", htmx=True)
    assert "v2" in versions.text and "v1" in versions.text
    old = dash.get(f"/admin/apps/{slug}/scripts/{script.id}/versions/1", htmx=True)
    assert "request.query.name" in old.text


def test_restoring_a_version_makes_a_new_one(dash, new_app, new_script):
    slug = new_app()
    script = new_script(slug)
    dash.post(f"/admin/apps/{slug}/scripts/{script.id}/source", {"source": "return 2\n"}, htmx=True)
    restored = dash.post(f"/admin/apps/{slug}/scripts/{script.id}/versions/1/restore")
    assert restored.status_code == 303
    current = Script.get_by_id(script.id)
    assert current.version == 3 and current.source == script.source


def test_sandbox_settings_show_defaults_and_refuse_values_over_the_ceiling(dash, new_app, new_script):
    slug = new_app()
    script = new_script(slug)
    page = dash.get(f"/admin/apps/{slug}/scripts/{script.id}")
    assert "max_instructions" in page.text and "10,000,000" in page.text and "100,000,000" in page.text

    path = f"/admin/apps/{slug}/scripts/{script.id}/settings"
    too_much = dash.post(path, {"timeout_seconds": "5", "sandbox_max_instructions": "999999999999"}, htmx=True)
    assert too_much.status_code == 422
    assert "may be at most 100,000,000." in too_much.text and "ceiling" not in too_much.text
    assert Script.get_by_id(script.id).sandbox == {}

    saved = dash.post(path, {"timeout_seconds": "7", "sandbox_max_call_depth": "50", "description": "d"}, htmx=True)
    assert saved.status_code == 200 and "Saved." in saved.text
    stored = Script.get_by_id(script.id)
    assert (stored.timeout_seconds, stored.sandbox, stored.description) == (7, {"max_call_depth": 50}, "d")

    blank = dash.post(path, {"timeout_seconds": "7", "sandbox_max_call_depth": ""}, htmx=True)
    assert blank.status_code == 200 and Script.get_by_id(script.id).sandbox == {}


def test_a_script_that_a_route_uses_cannot_be_deleted(dash, new_app, new_script):
    slug = new_app()
    script = new_script(slug)
    dash.post(f"/admin/apps/{slug}/routes", {"method": "GET", "path": "/", "host": "", "script_id": script.id,
                                             "dispatch_mode": "sync", "enabled": "y"}, htmx=True)
    refused = dash.post(f"/admin/apps/{slug}/scripts/{script.id}/delete", htmx=True)
    assert refused.status_code == 409 and "routes: #" in refused.text
    Route.delete().where(Route.script == script).execute()
    deleted = dash.post(f"/admin/apps/{slug}/scripts/{script.id}/delete", htmx=True)
    assert deleted.status_code == 200 and deleted.headers["HX-Redirect"].endswith(f"/admin/apps/{slug}/scripts")
    assert not Script.select().where(Script.id == script.id).exists()


# The test console and the logs -------------------------------------------------------


def test_the_console_runs_the_script_and_the_run_shows_in_the_logs(dash, new_app, new_script):
    slug = new_app()
    script = new_script(slug, "greet")
    ran = dash.post(
        f"/admin/apps/{slug}/scripts/{script.id}/run",
        {"method": "POST", "path": "/hi", "query": "name=pi", "headers": "X-Test: 1", "body": '{"a": 1}'},
        htmx=True,
    )
    assert ran.status_code == 200, ran.text
    assert "Hello, pi!" in ran.text and "greeting pi" in ran.text
    assert '<span class="badge ok">ok</span>' in ran.text
    execution_id = re.search(r"/logs/([0-9a-f-]{36})", ran.text).group(1)

    bad = dash.post(f"/admin/apps/{slug}/scripts/{script.id}/run", {"method": "GET", "path": "/", "body": "{nope"}, htmx=True)
    assert bad.status_code == 422 and "Not valid JSON" in bad.text

    detail = wait_for(lambda: dash.get(f"/admin/apps/{slug}/logs/{execution_id}"))
    assert "greeting pi" in detail.text and "Lua instructions" in detail.text
    logs = dash.get(f"/admin/apps/{slug}/logs")
    assert execution_id in logs.text
    filtered = dash.get(f"/admin/apps/{slug}/logs", params={"status": "script_error"})
    assert execution_id not in filtered.text
    live = dash.get(f"/admin/apps/{slug}/logs", params={"live": "y"}, htmx=True)
    assert 'hx-trigger="every 2s"' in live.text and "<html" not in live.text
    still = dash.get(f"/admin/apps/{slug}/logs", htmx=True)
    assert "every 2s" not in still.text


def wait_for(fetch, attempts=50):
    """Fetch until it answers 200: execution logs are written in batches."""
    import time

    for _ in range(attempts):
        response = fetch()
        if response.status_code == 200:
            return response
        time.sleep(0.1)
    raise AssertionError(f"still {response.status_code}")


# Capabilities ------------------------------------------------------------------------


def test_a_viewer_reads_every_page_but_gets_no_forms(login_as, new_app, new_script):
    slug = new_app()
    script = new_script(slug)
    viewer = login_as("viewer")
    for path in ("/admin/apps", f"/admin/apps/{slug}", f"/admin/apps/{slug}/routes",
                 f"/admin/apps/{slug}/domains", f"/admin/apps/{slug}/settings"):
        page = viewer.get(path)
        assert page.status_code == 200, path
        main = page.text.split("<main>")[1]
        # Read-only GET forms (the URL resolver) are fine; nothing that changes state.
        assert 'method="post"' not in main and "hx-post" not in main, path
    editor = viewer.get(f"/admin/apps/{slug}/scripts/{script.id}")
    assert 'data-readonly="true"' in editor.text and "Test console" not in editor.text
    refused = viewer.post(f"/admin/apps/{slug}/scripts/{script.id}/source", {"source": "return 1"})
    assert refused.status_code == 403 and "scripts.manage" in refused.text
    assert Script.get_by_id(script.id).version == 1


def test_a_developer_cannot_manage_apps_or_domains(login_as, new_app, unique):
    slug = new_app()
    developer = login_as("developer")
    listing = developer.get("/admin/apps")
    assert "Create an app" not in listing.text
    assert developer.post("/admin/apps", {"slug": unique("dev")}).status_code == 403
    domains = developer.get(f"/admin/apps/{slug}/domains")
    assert "Add domain" not in domains.text
    refused = developer.post(f"/admin/apps/{slug}/domains", {"pattern": unique("d") + ".example.com"})
    assert refused.status_code == 403 and "domains.manage" in refused.text
    assert developer.post(f"/admin/apps/{slug}/settings/rename", {"slug": unique("x")}).status_code == 403
    assert developer.post(f"/admin/apps/{slug}/scripts", {"name": "dev-script"}).status_code == 303


def test_the_logs_page_pages_back_through_older_runs(dash, new_app, database):
    import datetime

    from picloud.models import Execution, utcnow

    app = App.get(App.slug == new_app())
    start = utcnow() - datetime.timedelta(minutes=10)
    ids = [str(uuid.uuid4()) for _ in range(55)]
    Execution.insert_many(
        [
            {"id": run_id, "app_id": app.id, "source": "http", "status": "ok", "http_status": 200,
             "queued_at": start + datetime.timedelta(seconds=n)}
            for n, run_id in enumerate(ids)
        ]
    ).execute()
    first = dash.get(f"/admin/apps/{app.slug}/logs")
    listed = re.findall(r"/logs/([0-9a-f-]{36})", first.text)
    assert listed == ids[::-1][:50]
    older = re.search(r'href="([^"]+)">Older runs', first.text).group(1).replace("&amp;", "&")
    second = dash.get(older)
    assert re.findall(r"/logs/([0-9a-f-]{36})", second.text) == ids[::-1][50:]
    assert "Older runs" not in second.text and "Newest runs" in second.text


def test_an_all_digit_slug_opens_its_own_app_and_an_id_redirects_to_the_slug(dash, new_app, database):
    other = App.get(App.slug == new_app())
    numbered = new_app(str(other.id))  # a slug that is also the id of another app
    page = dash.get(f"/admin/apps/{numbered}/routes")
    assert page.status_code == 200
    assert f'href="/admin/apps/{numbered}/scripts"' in page.text
    by_id = dash.get(f"/admin/apps/{App.get(App.slug == numbered).id}/routes")
    assert by_id.status_code == 301
    assert by_id.headers["Location"].endswith(f"/admin/apps/{numbered}/routes")


def test_forms_posted_without_javascript_answer_the_whole_page(dash, new_app, new_script):
    slug = new_app()
    script = new_script(slug)
    broken = dash.post(f"/admin/apps/{slug}/scripts/{script.id}/source", {"source": "return (\n"})
    assert broken.status_code == 422
    assert "<html" in broken.text and "return (" in broken.text and 'data-error-line="' in broken.text
    limits = dash.post(f"/admin/apps/{slug}/scripts/{script.id}/settings", {"timeout_seconds": "0"})
    assert limits.status_code == 422 and "<html" in limits.text and 'id="console"' in limits.text
    ran = dash.post(f"/admin/apps/{slug}/scripts/{script.id}/run", {"method": "GET", "path": "/"})
    assert ran.status_code == 200 and "<html" in ran.text and "Hello, world!" in ran.text


def test_a_viewer_is_told_the_app_pages_are_read_only(login_as, dash, new_app):
    slug = new_app()
    viewer = login_as("viewer")
    assert "You have read-only access (viewer)" in viewer.get(f"/admin/apps/{slug}/scripts").text
    assert "read-only access" not in dash.get(f"/admin/apps/{slug}/scripts").text


def test_the_dead_letters_tab_counts_the_open_ones(dash, new_app, database):
    from picloud.models import App, DeadLetter

    slug = new_app()
    app = App.get(App.slug == slug)
    assert 'title="0 open"' not in dash.get(f"/admin/apps/{slug}").text
    for resolution in (None, None, "discarded"):
        DeadLetter.create(
            app=app, source="kv", script_id=0, event={}, event_id="e", attempts=5, last_error="e", resolution=resolution
        )
    page = dash.get(f"/admin/apps/{slug}/routes").text
    assert '<span class="badge error" title="2 open">2</span>' in page


def test_a_new_app_shows_its_first_steps_until_it_answers(dash, admin, new_app, server):
    import requests

    slug = new_app()
    first = dash.get(f"/admin/apps/{slug}").text
    assert f"Get {slug} answering" in first and "Claim a domain" in first and "curl" not in first
    app_id = admin.get(f"/api/v1/admin/apps/{slug}").json()["id"]
    host = f"{slug}.steps.test"
    admin.post(f"/api/v1/admin/apps/{slug}/domains", json={"pattern": host})
    script = admin.post("/api/v1/admin/scripts", json={"app_id": app_id, "name": "s", "source": "return 'up'"}).json()
    admin.post(f"/api/v1/admin/apps/{slug}/routes", json={"method": "GET", "path": "/hi", "script_id": script["id"]})
    ready = dash.get(f"/admin/apps/{slug}").text
    assert f"<code>curl 'http://{host}:" in ready and "/hi'</code>" in ready
    assert requests.get(server.url + "/hi", headers={"Host": host}, timeout=10).text == "up"
    deadline = time.monotonic() + 10  # the run reaches the log off the request path
    while f"Get {slug} answering" in dash.get(f"/admin/apps/{slug}").text:
        assert time.monotonic() < deadline, "the checklist stayed after the first call"
        time.sleep(0.1)


def test_a_version_shows_what_it_changed_and_can_compare_with_the_current(dash, new_app, new_script):
    slug = new_app()
    script = new_script(slug)
    base = f"/admin/apps/{slug}/scripts/{script.id}"
    for source in ("local a = 1\nreturn a\n", "local a = 2\nreturn a\n", "local a = 2\nreturn a + 1\n"):
        assert dash.post(base + "/source", {"source": source}, htmx=True).status_code == 200
    numbers = Script.get_by_id(script.id).version
    second = dash.get(f"{base}/versions/{numbers - 1}", htmx=True).text
    assert f"v{numbers - 2} → v{numbers - 1}" in second
    assert '<tr class="removed">' in second and "local a = 1" in second
    assert '<tr class="added">' in second and "local a = 2" in second
    against_current = dash.get(f"{base}/versions/{numbers - 1}?against=current", htmx=True).text
    assert f"v{numbers} → v{numbers - 1}" in against_current and "return a + 1" in against_current
    whole = dash.get(f"{base}/versions/{numbers - 1}?against=source", htmx=True).text
    assert '<pre class="source-view">local a = 2' in whole and '<table class="diff"' not in whole
    first = dash.get(f"{base}/versions/1", htmx=True).text
    assert "Changes in this version" not in first


def test_actions_say_what_they_did_in_a_toast(dash, new_app, new_script):
    slug = new_app()
    script = new_script(slug)
    # Staying on the page (htmx): the toast rides an HX-Trigger event.
    claimed = dash.post(f"/admin/apps/{slug}/domains", {"pattern": f"{slug}.toast.test"}, htmx=True)
    events = json.loads(claimed.headers["HX-Trigger"])
    assert events["toasts"] == [{"message": f"{slug} now answers on {slug}.toast.test.", "level": "success"}]
    # Leaving the page (a redirect): the toast is on the next page.
    deleted = dash.post(f"/admin/apps/{slug}/scripts/{script.id}/delete", htmx=True)
    assert deleted.headers["HX-Redirect"].endswith(f"/admin/apps/{slug}/scripts")
    assert "HX-Trigger" not in deleted.headers
    next_page = dash.get(f"/admin/apps/{slug}/scripts").text
    assert '<p class="toast success">Deleted the script main.</p>' in next_page
    assert "Deleted the script main." not in dash.get(f"/admin/apps/{slug}/scripts").text  # shown once
