"""The dashboard's security rules, checked view by view over HTTP.

CSRF on every state change, capabilities on every tab and action, no reaching another
app's objects by editing ids, escaping of everything a user can type, the session and
its headers, and how htmx requests are answered.
"""
import json
import re
import uuid
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import pytest
import requests

from picloud.models import ApiToken, App, DeadLetter, Domain, Execution, Route, Script, Trigger, User
from tests.admin_api.test_dead_letters import make_dead_letters
from tests.conftest import ADMIN_PASSWORD
from tests.support.apps import other_site, site  # noqa: F401  (fixtures)
from tests.support.apps import wait_for
from tests.support.dashboard import Dashboard, csrf_from

XSS = '<script>alert(1)</script>'
ATTR_XSS = '"><img src=x onerror=alert(1)>'
TEMPLATE = "{{7*7}}"
PAYLOAD = f"{XSS} {ATTR_XSS} {TEMPLATE}"
LUA_PAYLOAD = json.dumps(PAYLOAD)  # as a Lua string literal: for ASCII, JSON's escapes are Lua's


def assert_escaped(text, where=""):
    """Fail if a payload reached the page as markup rather than as text."""
    assert "<script>alert" not in text, where
    assert "<img src=x" not in text, where


def assert_shown_escaped(text, where=""):
    """The payload is on the page, as text."""
    assert_escaped(text, where)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text, where
    assert TEMPLATE in text, where  # never evaluated as a template


def main_of(html):
    return html.split("<main>", 1)[1] if "<main>" in html else html


# A site (made through the admin API) with one of everything the dashboard edits.


@pytest.fixture
def furnished(site):  # noqa: F811
    script = site.script(name="main")
    route = site.route("/things", script=script)
    trigger = site.api.post(
        f"/api/v1/admin/apps/{site.app['id']}/triggers/kv", json={"script_id": script["id"], "key_glob": "x/*"}
    ).json()
    domain = Domain.get(Domain.app == site.app["id"])
    assert site.api.put(f"/api/v1/admin/apps/{site.app['id']}/kv/keep", json=1).status_code == 200
    doc = site.api.post(f"/api/v1/admin/apps/{site.app['id']}/docs/things", json={"_id": "d1", "a": 1})
    assert doc.status_code == 201, doc.text
    return {"site": site, "script": script, "route": route, "trigger": trigger, "domain": domain}


def snapshot(case):
    """Return what a state change on the furnished site would alter."""
    site = case["site"]
    app = App.get_by_id(site.app["id"])
    return {
        "app": (app.slug, app.name, app.description, app.max_concurrency),
        "scripts": sorted((s.id, s.name, s.version, s.description) for s in Script.select().where(Script.app == app)),
        "routes": sorted(
            (r.id, r.method, r.path, r.script_id, r.enabled) for r in Route.select().where(Route.app == app)
        ),
        "triggers": sorted((t.id, t.enabled) for t in Trigger.select().where(Trigger.app == app)),
        "domains": sorted(d.pattern for d in Domain.select().where(Domain.app == app)),
        "kv": site.api.get(f"/api/v1/admin/apps/{site.app['id']}/kv").json()["items"],
        "dead_letters": sorted((d.id, d.resolution) for d in DeadLetter.select().where(DeadLetter.app == app)),
        "docs": site.api.get(f"/api/v1/admin/apps/{site.app['id']}/docs/things").json()["docs"],
        "runs": Execution.select().where(Execution.app_id == app.id).count(),
    }


def state_changes(case):
    """Every state-changing dashboard request on the furnished site: (path, form)."""
    slug = case["site"].slug
    base = f"/admin/apps/{slug}"
    script, route, trigger, domain = case["script"]["id"], case["route"]["id"], case["trigger"]["id"], case["domain"].id
    route_form = {"method": "POST", "path": "/other", "host": "", "script_id": script, "dispatch_mode": "sync", "enabled": "y"}
    return [
        ("/admin/apps", {"slug": "x" + uuid.uuid4().hex[:8]}),
        (f"{base}/settings", {"name": "renamed", "description": "changed"}),
        (f"{base}/settings/concurrency", {"max_concurrency": "2"}),
        (f"{base}/settings/rename", {"slug": "x" + uuid.uuid4().hex[:8], "force": "y"}),
        (f"{base}/settings/delete", {"confirm_slug": slug}),
        (f"{base}/domains", {"pattern": uuid.uuid4().hex[:8] + ".example.com"}),
        (f"{base}/domains/{domain}/delete", {}),
        (f"{base}/scripts", {"name": "another"}),
        (f"{base}/scripts/{script}/source", {"source": "return 'changed'"}),
        (f"{base}/scripts/{script}/settings", {"description": "changed", "timeout_seconds": "2"}),
        (f"{base}/scripts/{script}/versions/1/restore", {}),
        (f"{base}/scripts/{script}/delete", {}),
        (f"{base}/routes", route_form),
        (f"{base}/routes/{route}/edit", {**route_form, "path": "/edited"}),
        (f"{base}/routes/{route}/toggle", {}),
        (f"{base}/routes/{route}/delete", {}),
        (f"{base}/triggers", {"kind": "kv", "script_id": script, "glob": "y/*", "max_attempts": 1,
                              "backoff": "constant", "base_delay_ms": 0, "max_delay_ms": 0}),
        (f"{base}/triggers/{trigger}/toggle", {}),
        (f"{base}/triggers/{trigger}/delete", {}),
        (f"{base}/data/kv", {"key": "new", "value": "1"}),
        (f"{base}/data/kv/entry?key=keep", {"value": "2"}),
        (f"{base}/data/kv/delete", {"target": "keep"}),
        (f"{base}/data/docs", {"collection": "things", "document": '{"a": 1}'}),
        (f"{base}/data/docs/things/doc?id=d1", {"document": '{"a": 2}'}),
        (f"{base}/data/docs/things/delete", {"target": "d1"}),
        (f"{base}/scripts/{script}/run", {"method": "GET", "path": "/"}),
        (f"{base}/dead-letters/replay", {}),
    ]


# CSRF ----------------------------------------------------------------------------------


def test_every_state_change_without_or_with_a_wrong_csrf_token_is_refused(dash, furnished, server):
    stranger = Dashboard(server.url, "admin", ADMIN_PASSWORD)  # a valid token, of another session
    before = snapshot(furnished)
    for path, form in state_changes(furnished):
        for htmx in (False, True):
            missing = dash.post(path, form, htmx=htmx, csrf=False)
            assert missing.status_code == 400 and "CSRF" in missing.text, (path, htmx)
            wrong = dash.post(path, {**form, "csrf_token": stranger.csrf}, htmx=htmx, csrf=False)
            assert wrong.status_code == 400 and "CSRF" in wrong.text, (path, htmx)
            garbage = dash.post(path, {**form, "csrf_token": "x" + dash.csrf[1:]}, htmx=htmx, csrf=False)
            assert garbage.status_code == 400, (path, htmx)
    assert snapshot(furnished) == before


def test_the_csrf_header_htmx_sends_is_accepted_and_checked(dash, furnished):
    path = f"/admin/apps/{furnished['site'].slug}/routes/{furnished['route']['id']}/toggle"
    wrong = dash.session.post(dash.base_url + path, headers={"HX-Request": "true", "X-CSRFToken": "nope"})
    assert wrong.status_code == 400 and Route.get_by_id(furnished["route"]["id"]).enabled is True
    right = dash.session.post(dash.base_url + path, headers={"HX-Request": "true", "X-CSRFToken": dash.csrf})
    assert right.status_code == 200 and Route.get_by_id(furnished["route"]["id"]).enabled is False


def test_every_page_carries_the_token_for_htmx_requests(dash, furnished):
    page = dash.get(f"/admin/apps/{furnished['site'].slug}/routes")
    header = re.search(r"<body hx-headers='([^']+)'>", page.text)
    assert header, "no hx-headers on the page"
    [(name, token)] = json.loads(header.group(1)).items()
    assert name == "X-CSRFToken" and token.split(".")[0] == dash.csrf.split(".")[0]  # same session's token


def test_account_users_and_logout_need_the_token(server, dash, unique, make_user):
    user, api = make_user("viewer")
    token = ApiToken.select().where(ApiToken.user == user["id"]).get()
    user_count = User.select().count()
    token_count = ApiToken.select().count()
    for path, form in (
        ("/admin/users", {"username": unique("u"), "password": "password-123", "role": "viewer"}),
        (f"/admin/users/{user['id']}/role", {"role": "admin"}),
        (f"/admin/users/{user['id']}/delete", {}),
        (f"/admin/account/tokens/{token.id}/revoke", {}),
        ("/admin/account/tokens", {"name": "t"}),
        ("/admin/account/password", {"current": ADMIN_PASSWORD, "password": "changed-1234", "confirm": "changed-1234"}),
        ("/admin/logout", {}),
    ):
        assert dash.post(path, form, csrf=False).status_code == 400, path
    assert User.select().count() == user_count and ApiToken.select().count() == token_count
    assert User.get_by_id(user["id"]).role == "viewer" and api.get("/api/v1/auth/me").status_code == 200
    assert dash.get("/admin/account").status_code == 200  # still logged in, same password


def test_no_get_request_changes_state(dash, furnished):
    """Links and hx-get fetches only read: every GET of the app's pages leaves it as it was."""
    slug = furnished["site"].slug
    before = snapshot(furnished)
    for path in (
        f"/admin/apps/{slug}", f"/admin/apps/{slug}/routes/{furnished['route']['id']}/edit",
        f"/admin/apps/{slug}/routes/{furnished['route']['id']}/toggle",
        f"/admin/apps/{slug}/scripts/{furnished['script']['id']}/delete",
        f"/admin/apps/{slug}/data/kv/delete?target=keep", f"/admin/apps/{slug}/settings/delete",
        "/admin/logout",
    ):
        assert dash.get(path).status_code in (200, 405), path
        assert dash.get(path, htmx=True).status_code in (200, 405), path
    assert snapshot(furnished) == before
    assert dash.get("/admin/account").status_code == 200


# Capabilities --------------------------------------------------------------------------

# The app-level changes that need apps.manage or domains.manage, which developers lack.
DEVELOPER_REFUSED = ("/settings", "/settings/concurrency", "/settings/rename", "/settings/delete", "/domains")


def test_a_viewer_is_refused_every_change_and_nothing_changes(login_as, furnished):
    viewer = login_as("viewer")
    before = snapshot(furnished)
    for path, form in state_changes(furnished):
        for htmx in (False, True):
            response = viewer.post(path, form, htmx=htmx)
            assert response.status_code == 403, (path, htmx, response.status_code)
            assert re.search(r"needs the [a-z_.]+ capability", response.text), path
    assert snapshot(furnished) == before
    slug = furnished["site"].slug
    for path in (f"/admin/apps/{slug}/routes/{furnished['route']['id']}/edit", "/admin/users"):
        refused = viewer.get(path)
        assert refused.status_code == 403 and 'name="path"' not in refused.text, path


def test_a_developer_is_refused_app_domain_and_user_management(login_as, furnished, unique):
    developer = login_as("developer")
    before = snapshot(furnished)
    app_base = f"/admin/apps/{furnished['site'].slug}"
    for path, form in state_changes(furnished):
        if path != "/admin/apps" and path.removeprefix(app_base) not in DEVELOPER_REFUSED and "/domains/" not in path:
            continue
        response = developer.post(path, form, htmx=True)
        assert response.status_code == 403, path
        assert re.search(r"apps\.manage|domains\.manage", response.text), path
    assert snapshot(furnished) == before
    users = developer.get("/admin/users")
    assert users.status_code == 403 and "users.manage" in users.text and "<table" not in main_of(users.text)
    count = User.select().count()
    added = developer.post("/admin/users", {"username": unique("u"), "password": "password-123", "role": "admin"})
    assert added.status_code == 403 and User.select().count() == count
    me = User.get(User.username == developer_name(developer))
    for path, form in ((f"/admin/users/{me.id}/role", {"role": "admin"}), (f"/admin/users/{me.id}/delete", {})):
        assert developer.post(path, form).status_code == 403, path
    assert User.get_by_id(me.id).role == "developer"


def developer_name(client):
    page = client.get("/admin/account").text
    return re.search(r'<span class="muted">([^<]+) \(developer\)</span>', page).group(1)


def test_a_developer_may_do_what_the_role_allows(login_as, furnished):
    """The refusals above are capability checks, not a blanket refusal of the role."""
    developer = login_as("developer")
    slug = furnished["site"].slug
    toggled = developer.post(f"/admin/apps/{slug}/routes/{furnished['route']['id']}/toggle", htmx=True)
    assert toggled.status_code == 200 and Route.get_by_id(furnished["route"]["id"]).enabled is False
    saved = developer.post(f"/admin/apps/{slug}/data/kv", {"key": "by-dev", "value": "1"}, htmx=True)
    assert saved.status_code == 200


def test_a_logged_out_visitor_sees_no_page_and_changes_nothing(server, furnished):
    anonymous = requests.Session()
    slug = furnished["site"].slug
    for path in (f"/admin/apps/{slug}", f"/admin/apps/{slug}/data", f"/admin/apps/{slug}/logs",
                 f"/admin/apps/{slug}/dead-letters", "/admin/users", "/admin/account"):
        response = anonymous.get(server.url + path, allow_redirects=False)
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"], path
    page = anonymous.get(server.url + "/admin/login")
    before = snapshot(furnished)
    for path, form in state_changes(furnished):
        response = anonymous.post(server.url + path, data={**form, "csrf_token": csrf_from(page.text)},
                                  allow_redirects=False)
        assert response.status_code == 302 and "/admin/login" in response.headers["Location"], path
    assert snapshot(furnished) == before


def test_a_user_cannot_revoke_another_users_token(dash, make_user):
    user, api = make_user("developer")
    token = ApiToken.select().where(ApiToken.user == user["id"]).get()
    refused = dash.post(f"/admin/account/tokens/{token.id}/revoke", htmx=True)
    assert refused.status_code == 404
    assert ApiToken.get_or_none(ApiToken.id == token.id) is not None
    assert api.get("/api/v1/auth/me").status_code == 200
    assert user["username"] not in dash.get("/admin/account").text  # nor are they listed


# Another app's objects -----------------------------------------------------------------


def test_another_apps_objects_are_out_of_reach(dash, furnished, other_site):  # noqa: F811
    theirs = furnished
    mine = other_site.slug
    mine_script = other_site.script(name="mine")
    route, trigger, script = theirs["route"]["id"], theirs["trigger"]["id"], theirs["script"]["id"]
    before = snapshot(theirs)
    base = f"/admin/apps/{mine}"
    for path in (f"{base}/routes/{route}", f"{base}/routes/{route}/edit", f"{base}/scripts/{script}",
                 f"{base}/scripts/{script}/versions", f"{base}/scripts/{script}/versions/1"):
        response = dash.get(path)
        assert response.status_code == 404, path
        assert "/things" not in main_of(response.text) and "return" not in main_of(response.text), path
    form = {"method": "GET", "path": "/hijack", "host": "", "script_id": mine_script["id"],
            "dispatch_mode": "sync", "enabled": "y"}
    for path, data in (
        (f"{base}/routes/{route}/edit", form),
        (f"{base}/routes/{route}/toggle", {}),
        (f"{base}/routes/{route}/delete", {}),
        (f"{base}/triggers/{trigger}/toggle", {}),
        (f"{base}/triggers/{trigger}/delete", {}),
        (f"{base}/domains/{theirs['domain'].id}/delete", {}),
        (f"{base}/scripts/{script}/source", {"source": "return 1"}),
        (f"{base}/scripts/{script}/settings", {"timeout_seconds": "2"}),
        (f"{base}/scripts/{script}/versions/1/restore", {}),
        (f"{base}/scripts/{script}/run", {"method": "GET", "path": "/"}),
        (f"{base}/scripts/{script}/delete", {}),
    ):
        response = dash.post(path, data, htmx=True)
        assert response.status_code in (404, 409), (path, response.status_code)
    assert snapshot(theirs) == before


def test_another_apps_script_cannot_be_named_in_a_form(dash, furnished, other_site):  # noqa: F811
    mine = other_site.slug
    their_script = furnished["script"]["id"]
    route_form = {"method": "GET", "path": "/borrowed", "host": "", "script_id": their_script,
                  "dispatch_mode": "sync", "enabled": "y"}
    assert dash.post(f"/admin/apps/{mine}/routes", route_form, htmx=True).status_code == 422
    own = other_site.route("/own")
    edited = dash.post(f"/admin/apps/{mine}/routes/{own['id']}/edit", {**route_form, "path": "/own"}, htmx=True)
    assert edited.status_code == 422 and Route.get_by_id(own["id"]).script_id == own["script_id"]
    trigger_form = {"kind": "kv", "script_id": their_script, "glob": "a/*", "max_attempts": 1,
                    "backoff": "constant", "base_delay_ms": 0, "max_delay_ms": 0}
    assert dash.post(f"/admin/apps/{mine}/triggers", trigger_form, htmx=True).status_code == 422
    app = App.get_by_id(other_site.app["id"])
    assert not Route.select().where(Route.app == app, Route.script == their_script).exists()
    assert not Trigger.select().where(Trigger.app == app).exists()


def test_another_apps_dead_letters_and_runs_are_out_of_reach(dash, site, other_site):  # noqa: F811
    [dead], _, script = make_dead_letters(site)
    for action in ("replay", "discard"):  # in its own app, only with the token
        path = f"/admin/apps/{site.slug}/dead-letters/{dead['id']}/{action}"
        assert dash.post(path, htmx=True, csrf=False).status_code == 400
    assert DeadLetter.get_by_id(dead["id"]).resolution is None
    mine = other_site.slug
    assert dash.get(f"/admin/apps/{mine}/dead-letters/{dead['id']}").status_code == 404
    for action in ("replay", "discard"):
        assert dash.post(f"/admin/apps/{mine}/dead-letters/{dead['id']}/{action}", htmx=True).status_code == 404
        assert dash.post(f"/admin/apps/{mine}/dead-letters/{dead['id']}/{action}").status_code == 404
    assert dash.post(f"/admin/apps/{mine}/dead-letters/replay", htmx=True).status_code == 200
    assert DeadLetter.get_by_id(dead["id"]).resolution is None
    listing = dash.get(f"/admin/apps/{mine}/dead-letters?show=all")
    assert f"dead-letter-{dead['id']}" not in listing.text

    runs = Execution.select(Execution.id).where(Execution.script_id == script["id"])
    execution_id = wait_for(lambda: runs.scalar(), what="the failed run in the log")
    assert dash.get(f"/admin/apps/{site.slug}/logs/{execution_id}").status_code == 200
    assert dash.get(f"/admin/apps/{mine}/logs/{execution_id}").status_code == 404
    assert execution_id not in dash.get(f"/admin/apps/{mine}/logs").text
    assert dash.get(f"/admin/apps/{mine}/logs?before={execution_id}").status_code == 404


def test_another_apps_data_is_not_listed_or_reachable(dash, site, other_site):  # noqa: F811
    site.api.put(f"/api/v1/admin/apps/{site.app['id']}/kv/secret-key", json="secret-value")
    mine = other_site.slug
    assert "secret-key" not in dash.get(f"/admin/apps/{mine}/data").text
    assert dash.get(f"/admin/apps/{mine}/data/kv/entry?key=secret-key").status_code == 404
    deleted = dash.post(f"/admin/apps/{mine}/data/kv/delete", {"target": "secret-key"})
    assert deleted.status_code == 404
    assert site.api.get(f"/api/v1/admin/apps/{site.app['id']}/kv/secret-key").status_code == 200


# Escaping ------------------------------------------------------------------------------


@pytest.fixture
def hostile(dash, site):  # noqa: F811
    """A site whose every user-typed field holds the payloads, with a run and a dead letter."""
    slug = site.slug
    base = f"/admin/apps/{slug}"
    saved = dash.post(f"{base}/settings", {"name": PAYLOAD, "description": PAYLOAD}, htmx=True)
    assert saved.status_code == 200, saved.text
    source = (
        f"log.info({LUA_PAYLOAD})\n"
        f"return {{status = 200, headers = {{['x-echo'] = {LUA_PAYLOAD}}}, body = {LUA_PAYLOAD}}}\n"
    )
    script = site.script(source, name="hostile", description=PAYLOAD)
    site.route("/hostile", script=script)
    assert dash.post(f"{base}/data/kv", {"key": PAYLOAD, "value": json.dumps(PAYLOAD)}, htmx=True).status_code == 200
    doc = dash.post(f"{base}/data/docs", {"collection": "things", "document": json.dumps({"_id": PAYLOAD, "v": PAYLOAD})})
    assert doc.status_code == 303, doc.text
    ran = dash.post(f"{base}/scripts/{script['id']}/run",
                    {"method": "GET", "path": "/x", "query": "q=" + XSS, "headers": f"X-Evil: {PAYLOAD}"}, htmx=True)
    assert ran.status_code == 200, ran.text
    [dead], _, failing = make_dead_letters(site, source=f"error({LUA_PAYLOAD})\n", prefix="evil")
    return {"slug": slug, "script": script, "console": ran, "dead": dead, "failing": failing}


def test_user_content_is_escaped_on_every_page(dash, hostile):
    case = hostile
    base = f"/admin/apps/{case['slug']}"
    key = requests.utils.quote(PAYLOAD, safe="")
    pages = {
        "apps": "/admin/apps",
        "overview": base,
        "scripts": f"{base}/scripts",
        "script": f"{base}/scripts/{case['script']['id']}",
        "failing script": f"{base}/scripts/{case['failing']['id']}",
        "routes": f"{base}/routes",
        "keys": f"{base}/data",
        "key": f"{base}/data/kv/entry?key={key}",
        "collection": f"{base}/data/docs/things",
        "document": f"{base}/data/docs/things/doc?id={key}",
        "logs": f"{base}/logs",
        "dead letters": f"{base}/dead-letters",
        "dead letter": f"{base}/dead-letters/{case['dead']['id']}",
        "settings": f"{base}/settings",
    }
    for name, path in pages.items():
        for htmx in (False, True):
            page = dash.get(path, htmx=htmx)
            assert page.status_code == 200, (name, page.status_code)
            assert_escaped(page.text, name)
    for name in ("apps", "overview", "script", "keys", "key", "document", "dead letter", "settings"):
        assert_shown_escaped(dash.get(pages[name]).text, name)
    assert_shown_escaped(case["console"].text, "console")  # the response body, header and log line
    run_id = re.search(r'/logs/([0-9a-f-]{36})"', case["console"].text).group(1)
    assert_shown_escaped(dash.get(f"{base}/logs/{run_id}").text, "run")


def test_echoed_input_is_escaped(dash, site):  # noqa: F811
    base = f"/admin/apps/{site.slug}"
    script = site.script()
    for path, form in (
        (f"{base}/scripts/{script['id']}/source", {"source": PAYLOAD}),
        (f"{base}/scripts/{script['id']}/settings", {"description": PAYLOAD, "timeout_seconds": PAYLOAD}),
        (f"{base}/scripts/{script['id']}/run", {"method": "GET", "path": PAYLOAD, "headers": PAYLOAD, "body": PAYLOAD}),
        ("/admin/apps/slug-check", {"slug": PAYLOAD}),
        ("/admin/apps", {"slug": PAYLOAD, "name": PAYLOAD}),
        (f"{base}/settings/slug-check", {"slug": PAYLOAD}),
        (f"{base}/settings/rename", {"slug": PAYLOAD}),
        (f"{base}/settings/delete", {"confirm_slug": PAYLOAD}),
        (f"{base}/domains", {"pattern": PAYLOAD}),
        (f"{base}/scripts", {"name": PAYLOAD, "description": PAYLOAD}),
        (f"{base}/routes", {"method": "GET", "path": PAYLOAD, "host": PAYLOAD, "dispatch_mode": "sync"}),
        (f"{base}/triggers", {"kind": "kv", "glob": PAYLOAD, "max_attempts": 1, "backoff": "constant",
                              "base_delay_ms": 0, "max_delay_ms": 0}),
        (f"{base}/data/kv", {"key": "k", "value": PAYLOAD}),
        (f"{base}/data/docs", {"collection": PAYLOAD, "document": PAYLOAD}),
        ("/admin/users", {"username": PAYLOAD, "password": "x", "role": PAYLOAD}),
        ("/admin/account/tokens", {"name": PAYLOAD}),
    ):
        for htmx in (False, True):
            response = dash.post(path, form, htmx=htmx)
            assert response.status_code < 500, (path, response.status_code)
            assert_escaped(response.text, path)
            for name, value in response.headers.items():
                assert "<script" not in value and "<img" not in value, (path, name)
    for path in (f"{base}/data?prefix={requests.utils.quote(PAYLOAD)}",
                 f"{base}/logs?script={requests.utils.quote(ATTR_XSS)}&status={requests.utils.quote(XSS)}",
                 f"{base}/data/docs/{requests.utils.quote(XSS, safe='')}",
                 f"{base}/logs/{requests.utils.quote(XSS, safe='')}",
                 f"/admin/apps/{requests.utils.quote(XSS, safe='')}"):
        response = dash.get(path)
        assert response.status_code in (200, 404), path
        assert_escaped(response.text, path)


def test_a_key_is_shown_as_text_in_links_and_confirmations(dash, site):  # noqa: F811
    key = 'javascript:alert(1)//"\'<b>'
    dash.post(f"/admin/apps/{site.slug}/data/kv", {"key": key, "value": "1"}, htmx=True)
    listing = dash.get(f"/admin/apps/{site.slug}/data").text
    assert 'href="javascript:' not in listing and "<b>" not in listing
    hrefs = re.findall(r'href="([^"]*)"', listing)
    assert all(h.startswith(("/", "#", "http://", "https://")) for h in hrefs), hrefs


# Session, headers, login ---------------------------------------------------------------


def test_dashboard_pages_send_a_strict_content_security_policy(dash, furnished, server):
    slug = furnished["site"].slug
    pages = {"/admin/login": requests.get(server.url + "/admin/login")}  # as a visitor, logged out
    for path in ("/admin/apps", f"/admin/apps/{slug}", f"/admin/apps/{slug}/scripts/{furnished['script']['id']}",
                 f"/admin/apps/{slug}/data", "/admin/account", "/admin/users", "/admin/apps/nope-" + uuid.uuid4().hex[:6]):
        pages[path] = dash.get(path)
    for path, response in pages.items():
        policy = response.headers["Content-Security-Policy"]
        directives = dict((d.strip().split(" ", 1) + [""])[:2] for d in policy.split(";"))
        assert directives["script-src"] == "'self'", path
        assert "unsafe-inline" not in policy and "unsafe-eval" not in policy and "http" not in policy, path
        assert directives["frame-ancestors"] == "'none'", path
        tags = Tags.of(response.text)
        scripts = [attrs for tag, attrs in tags if tag == "script"]
        assert scripts and all(a.get("src", "").startswith("/static/") for a in scripts), path  # none inline
        assert all(a["href"].startswith("/static/") for tag, a in tags if tag == "link"), path
        assert not [(t, name) for t, a in tags for name in a if name.startswith("on")], path
        assert not [t for t, a in tags if "style" in a], path  # style-src 'self' would drop them


class Tags(HTMLParser):
    """Collect a page's start tags with their attributes, as a browser would read them."""

    @classmethod
    def of(cls, html):
        parser = cls()
        parser.tags = []
        parser.feed(html)
        return parser.tags

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def test_the_session_cookie_is_httponly_and_samesite(server):
    page = requests.get(server.url + "/admin/login")
    cookie = page.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and re.search(r"SameSite=(Lax|Strict)", cookie)


def test_login_is_throttled_with_retry_after(server, make_user):
    user, _ = make_user("viewer")
    session = requests.Session()
    token = csrf_from(session.get(server.url + "/admin/login").text)
    statuses = []
    for _ in range(11):
        response = session.post(server.url + "/admin/login",
                                data={"username": user["username"], "password": "wrong", "csrf_token": token},
                                allow_redirects=False)
        statuses.append(response.status_code)
    assert statuses[:10] == [401] * 10 and statuses[10] == 429
    assert int(response.headers["Retry-After"]) > 0
    assert "Too many failed logins" in response.text
    api = requests.post(server.url + "/api/v1/auth/token", json={"username": user["username"], "password": "wrong"})
    assert api.status_code == 429  # one counter for the API and the dashboard


def login_session(server, username, password):
    session = requests.Session()
    page = session.get(server.url + "/admin/login")
    response = session.post(server.url + "/admin/login",
                            data={"username": username, "password": password, "csrf_token": csrf_from(page.text)},
                            allow_redirects=False)
    assert response.status_code == 302
    return session


def fresh_user(admin, unique):
    """Create a viewer of its own and return (username, password): logging out ends all its sessions."""
    username, password = unique("viewer"), "password-" + uuid.uuid4().hex
    response = admin.post("/api/v1/admin/users", json={"username": username, "password": password, "role": "viewer"})
    assert response.status_code == 201, response.text
    return username, password


def test_logout_ends_the_session(server, admin, unique):
    session = login_session(server, *fresh_user(admin, unique))
    captured = session.cookies.get("picloud_session")
    page = session.get(server.url + "/admin/account")
    out = session.post(server.url + "/admin/logout", data={"csrf_token": csrf_from(page.text)}, allow_redirects=False)
    assert out.status_code == 302 and out.headers["Location"].endswith("/admin/login")
    assert "picloud_session=;" in out.headers["Set-Cookie"] and "Expires=Thu, 01 Jan 1970" in out.headers["Set-Cookie"]
    after = session.get(server.url + "/admin/account", allow_redirects=False)
    assert after.status_code == 302 and "/admin/login" in after.headers["Location"]
    assert captured


def test_a_cookie_copied_before_logout_is_refused_after_it(server, admin, unique):
    user = fresh_user(admin, unique)
    session = login_session(server, *user)
    other_browser = login_session(server, *user)
    captured = session.cookies.get("picloud_session")
    page = session.get(server.url + "/admin/account")
    session.post(server.url + "/admin/logout", data={"csrf_token": csrf_from(page.text)}, allow_redirects=False)
    replayed = requests.get(server.url + "/admin/account", cookies={"picloud_session": captured}, allow_redirects=False)
    assert replayed.status_code == 302
    # Logging out ends every session of the user; logging in again opens a new one.
    assert other_browser.get(server.url + "/admin/account", allow_redirects=False).status_code == 302
    again = login_session(server, *user)
    assert again.get(server.url + "/admin/account", allow_redirects=False).status_code == 200


@pytest.mark.parametrize(
    "target",
    ["https://evil.example/", "//evil.example/", "/\\evil.example/", "\\\\evil.example", "http:/evil.example",
     "/admin/../..//evil.example", "javascript:alert(1)", " //evil.example", "/%2F%2Fevil.example", "/admin@evil.example"],
)
def test_next_never_leaves_the_site(server, target):
    session = requests.Session()
    page = session.get(server.url + "/admin/login", params={"next": target})
    response = session.post(server.url + "/admin/login", params={"next": target},
                            data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": csrf_from(page.text)},
                            allow_redirects=False)
    assert response.status_code == 302
    assert stays_on(server, response.headers["Location"])
    again = session.get(server.url + "/admin/login", params={"next": target}, allow_redirects=False)
    assert again.status_code == 302 and stays_on(server, again.headers["Location"])


def stays_on(server, location):
    """Tell whether a redirect resolves to a dashboard page of this server."""
    # A browser reads a backslash as a slash: "/\\evil" would be "//evil", another host.
    resolved = urlsplit(urljoin(server.url + "/admin/login", location.replace("\\", "/")))
    return resolved.netloc == urlsplit(server.url).netloc and resolved.path.startswith("/admin")


def test_next_keeps_a_local_dashboard_path(server):
    session = requests.Session()
    page = session.get(server.url + "/admin/login?next=/admin/account")
    response = session.post(server.url + "/admin/login?next=/admin/account",
                            data={"username": "admin", "password": ADMIN_PASSWORD, "csrf_token": csrf_from(page.text)},
                            allow_redirects=False)
    assert response.headers["Location"] == "/admin/account"


# htmx ----------------------------------------------------------------------------------


def test_htmx_requests_get_partials_and_others_whole_pages(dash, furnished):
    slug = furnished["site"].slug
    for tab in ("routes", "domains", "triggers", "data", "logs", "dead-letters"):
        partial = dash.get(f"/admin/apps/{slug}/{tab}", htmx=True)
        page = dash.get(f"/admin/apps/{slug}/{tab}")
        assert partial.status_code == page.status_code == 200, tab
        assert "<html" not in partial.text and "<html" in page.text, tab
        assert partial.headers.get("Vary", "").lower().find("hx-request") >= 0, tab


def test_htmx_errors_answer_a_fragment_not_a_whole_page(dash, login_as, furnished):
    slug = furnished["site"].slug
    viewer = login_as("viewer")
    refused = viewer.post(f"/admin/apps/{slug}/routes/{furnished['route']['id']}/toggle", htmx=True)
    assert refused.status_code == 403 and "<html" not in refused.text and "routes.manage" in refused.text
    missing = dash.post(f"/admin/apps/{slug}/routes/999999999/toggle", htmx=True)
    assert missing.status_code == 404 and "<html" not in missing.text and "No such route" in missing.text
    no_token = dash.post(f"/admin/apps/{slug}/routes/{furnished['route']['id']}/toggle", htmx=True, csrf=False)
    assert no_token.status_code == 400 and "<html" not in no_token.text and "CSRF" in no_token.text
    whole = viewer.post(f"/admin/apps/{slug}/routes/{furnished['route']['id']}/toggle")
    assert whole.status_code == 403 and "<html" in whole.text  # without htmx: the error page


def test_form_errors_render_inline_in_the_swapped_partial(dash, furnished):
    slug = furnished["site"].slug
    bad = dash.post(f"/admin/apps/{slug}/data/kv", {"key": "k", "value": "{not json"}, htmx=True)
    assert bad.status_code == 422 and "<html" not in bad.text and "Not valid JSON" in bad.text
    taken = dash.post(f"/admin/apps/{slug}/domains", {"pattern": furnished["site"].host}, htmx=True)
    assert taken.status_code in (403, 409, 422) and "<html" not in taken.text


def test_ids_too_large_for_the_database_are_404(dash, furnished):
    slug, huge = furnished["site"].slug, "9" * 30
    for path in (f"/admin/apps/{slug}/routes/{huge}", f"/admin/apps/{slug}/routes/{huge}/edit",
                 f"/admin/apps/{slug}/scripts/{huge}", f"/admin/apps/{slug}/scripts/1/versions/{huge}",
                 f"/admin/apps/{slug}/dead-letters/{huge}"):
        assert dash.get(path).status_code == 404, path
    for path in (f"/admin/apps/{slug}/routes/{huge}/toggle", f"/admin/apps/{slug}/triggers/{huge}/delete",
                 f"/admin/users/{huge}/delete", f"/admin/account/tokens/{huge}/revoke"):
        assert dash.post(path, {}).status_code == 404, path
