"""docs/api.md §1-7, 9, 10 across endpoints: the rules every resource shares.

The per-resource modules test each endpoint's own behaviour; this one walks the shared
conventions over all of them — capabilities, ids, listings, bodies, timestamps, error
shapes — and the JSON edge cases (nulls, booleans, floats, huge numbers, lone
surrogates) that no single resource owns.
"""
import base64
import json
import re
import uuid

import pytest

from tests.support.apps import other_site, site  # noqa: F401  (fixtures)

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
# Larger than any database integer: it can name no object.
HUGE = 10**20
JSON = {"Content-Type": "application/json"}


def cursor_of(value):
    """Make a well-formed cursor that holds ``value`` instead of a real position."""
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def assert_error(response, status, code, **extra):
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"]
    for name, value in extra.items():
        assert error.get(name) == value, error
    return error


def app_url(site, tail=""):
    return f"/api/v1/admin/apps/{site.app['id']}{tail}"


def make_trigger(site, script):
    response = site.api.post(app_url(site, "/triggers/kv"), json={"script_id": script["id"], "key_glob": "*"})
    assert response.status_code == 201, response.text
    return response.json()


# --- §3 capabilities: every managing endpoint names the capability it lacks -----------------


def managing_calls(site, script, route, trigger):
    """(method, path, body, capability) for every call a viewer may not make."""
    app = app_url(site)
    return [
        ("POST", "/api/v1/admin/apps", {"slug": "never-made"}, "apps.manage"),
        ("PATCH", app, {"name": "x"}, "apps.manage"),
        ("DELETE", app, None, "apps.manage"),
        ("POST", "/api/v1/admin/apps/slug:check", {"slug": "x"}, "apps.manage"),
        ("POST", f"{app}/slug:check", {"slug": "x"}, "apps.manage"),
        ("POST", f"{app}/domains", {"pattern": "never.test"}, "domains.manage"),
        ("DELETE", f"{app}/domains/1", None, "domains.manage"),
        ("GET", "/api/v1/admin/users", None, "users.manage"),
        ("POST", "/api/v1/admin/users", {"username": "x", "password": "p" * 8}, "users.manage"),
        ("GET", "/api/v1/admin/users/1", None, "users.manage"),
        ("PATCH", "/api/v1/admin/users/1", {"role": "viewer"}, "users.manage"),
        ("DELETE", "/api/v1/admin/users/1", None, "users.manage"),
        ("POST", "/api/v1/admin/scripts", {"app_id": site.app["id"], "name": "n", "source": ""}, "scripts.manage"),
        ("PATCH", f"/api/v1/admin/scripts/{script['id']}", {"description": "x"}, "scripts.manage"),
        ("DELETE", f"/api/v1/admin/scripts/{script['id']}", None, "scripts.manage"),
        ("POST", f"/api/v1/admin/scripts/{script['id']}/versions/1:restore", None, "scripts.manage"),
        ("POST", f"/api/v1/execute/{script['id']}", {}, "scripts.execute"),
        ("POST", f"{app}/routes", {"method": "GET", "path": "/v", "script_id": script["id"]}, "routes.manage"),
        ("PATCH", f"/api/v1/admin/routes/{route['id']}", {"enabled": False}, "routes.manage"),
        ("DELETE", f"/api/v1/admin/routes/{route['id']}", None, "routes.manage"),
        ("POST", f"{app}/triggers/kv", {"script_id": script["id"], "key_glob": "*"}, "triggers.manage"),
        ("POST", f"{app}/triggers/docs", {"script_id": script["id"], "collection_glob": "*"}, "triggers.manage"),
        ("POST", f"{app}/triggers/dead_letter", {"script_id": script["id"]}, "triggers.manage"),
        ("PATCH", f"/api/v1/admin/triggers/{trigger['id']}", {"enabled": False}, "triggers.manage"),
        ("DELETE", f"/api/v1/admin/triggers/{trigger['id']}", None, "triggers.manage"),
        ("POST", "/api/v1/admin/dead-letters/1:replay", None, "dead_letters.manage"),
        ("POST", "/api/v1/admin/dead-letters/1:discard", None, "dead_letters.manage"),
        ("POST", f"{app}/dead-letters:replay", {}, "dead_letters.manage"),
        ("PUT", f"{app}/kv/k", 1, "data.write"),
        ("DELETE", f"{app}/kv/k", None, "data.write"),
        ("POST", f"{app}/docs/c", {"_id": "d"}, "data.write"),
        ("PUT", f"{app}/docs/c/d", {"a": 1}, "data.write"),
        ("DELETE", f"{app}/docs/c/d", None, "data.write"),
    ]


def test_a_viewer_is_refused_every_change_with_the_capability_it_lacks(site, make_user):
    script = site.script()
    route = site.route("/r", script=script)
    trigger = make_trigger(site, script)
    _, viewer = make_user("viewer")
    for method, path, body, capability in managing_calls(site, script, route, trigger):
        kwargs = {} if body is None else {"json": body}
        response = viewer.request(method, path, **kwargs)
        assert response.status_code == 403, (method, path, response.text)
        assert response.json()["error"] == {
            "code": "forbidden",
            "capability": capability,
            "message": response.json()["error"]["message"],
        }, (method, path)
    # None of the refused calls changed anything.
    assert site.api.get(f"/api/v1/admin/routes/{route['id']}").json()["enabled"] is True
    assert site.api.get(f"/api/v1/admin/triggers/{trigger['id']}").json()["enabled"] is True
    assert site.api.get(app_url(site, "/kv/k")).status_code == 404
    assert site.api.get(app_url(site, "/docs")).json() == {"collections": []}
    assert site.api.get(f"/api/v1/admin/scripts/{script['id']}").json()["description"] == ""


def test_a_developer_is_refused_apps_domains_and_users(site, make_user):
    script = site.script()
    route = site.route("/r", script=script)
    trigger = make_trigger(site, script)
    _, developer = make_user("developer")
    admin_only = {"apps.manage", "domains.manage", "users.manage"}
    for method, path, body, capability in managing_calls(site, script, route, trigger):
        if capability not in admin_only:
            continue
        response = developer.request(method, path, **({} if body is None else {"json": body}))
        assert_error(response, 403, "forbidden", capability=capability)


def test_a_viewer_reads_configuration_logs_and_data(site, make_user):
    script = site.script()
    route = site.route("/r", script=script)
    trigger = make_trigger(site, script)
    site.api.put(app_url(site, "/kv/k"), json=1)
    _, viewer = make_user("viewer")
    for path in [
        "/api/v1/admin/apps",
        app_url(site),
        app_url(site, "/domains"),
        f"/api/v1/admin/scripts?app={site.slug}",
        f"/api/v1/admin/scripts/{script['id']}",
        f"/api/v1/admin/scripts/{script['id']}/versions",
        f"/api/v1/admin/scripts/{script['id']}/versions/1",
        app_url(site, "/routes"),
        f"/api/v1/admin/routes/{route['id']}",
        app_url(site, "/triggers"),
        f"/api/v1/admin/triggers/{trigger['id']}",
        app_url(site, "/dead-letters"),
        app_url(site, "/executions"),
        app_url(site, "/kv"),
        app_url(site, "/kv/k"),
        app_url(site, "/docs"),
        "/api/v1/admin/sandbox",
        "/api/v1/auth/tokens",
    ]:
        response = viewer.get(path)
        assert response.status_code == 200, (path, response.text)


# --- §1 ids: integer config ids, UUID execution ids, nothing too large for the database -------


@pytest.mark.parametrize(
    "method, tail",
    [
        ("GET", "/api/v1/admin/scripts/{huge}"),
        ("PATCH", "/api/v1/admin/scripts/{huge}"),
        ("GET", "/api/v1/admin/scripts/{script}/versions/{huge}"),
        ("POST", "/api/v1/admin/scripts/{script}/versions/{huge}:restore"),
        ("GET", "/api/v1/admin/routes/{huge}"),
        ("DELETE", "/api/v1/admin/routes/{huge}"),
        ("GET", "/api/v1/admin/triggers/{huge}"),
        ("PATCH", "/api/v1/admin/triggers/{huge}"),
        ("GET", "/api/v1/admin/users/{huge}"),
        ("DELETE", "/api/v1/admin/users/{huge}"),
        ("GET", "/api/v1/admin/dead-letters/{huge}"),
        ("POST", "/api/v1/admin/dead-letters/{huge}:replay"),
        ("POST", "/api/v1/admin/dead-letters/{huge}:discard"),
        ("POST", "/api/v1/execute/{huge}"),
        ("DELETE", "/api/v1/auth/tokens/{huge}"),
        ("DELETE", "/api/v1/admin/apps/{app}/domains/{huge}"),
        ("GET", "/api/v1/admin/apps/{huge}"),
        ("GET", "/api/v1/admin/apps/{huge}/routes"),
    ],
)
def test_ids_too_large_for_the_database_answer_404(site, method, tail):
    script = site.script()
    path = tail.format(huge=HUGE, script=script["id"], app=site.app["id"])
    response = site.api.request(method, path, **({"json": {}} if method in ("PATCH", "POST") else {}))
    assert_error(response, 404, "not_found")


def test_ids_too_large_in_a_body_or_query_answer_422(site):
    script = site.script()
    trigger = make_trigger(site, script)
    calls = [
        ("POST", "/api/v1/admin/scripts", {"app_id": HUGE, "name": "n", "source": ""}, "app_id"),
        ("POST", app_url(site, "/routes"), {"method": "GET", "path": "/h", "script_id": HUGE}, "script_id"),
        ("POST", app_url(site, "/triggers/kv"), {"script_id": HUGE, "key_glob": "*"}, "script_id"),
        ("POST", app_url(site, "/triggers/dead_letter"), {"script_id": HUGE}, "script_id"),
        ("PATCH", f"/api/v1/admin/triggers/{trigger['id']}", {"script_id": HUGE}, "script_id"),
        ("POST", app_url(site, "/dead-letters:replay"), {"ids": [HUGE]}, "ids"),
    ]
    for method, path, body, field in calls:
        assert_error(site.api.request(method, path, json=body), 422, "validation_failed", field=field)
    listing = site.api.get(app_url(site, "/executions"), params={"script_id": str(HUGE)})
    assert_error(listing, 422, "validation_failed", field="script_id")
    assert site.api.get(app_url(site, "/routes")).json()["routes"] == []


def test_config_ids_are_integers_and_execution_ids_uuid_strings(site):
    script = site.script('log.info("x") return "ok"')
    route = site.route("/ids", script=script)
    trigger = make_trigger(site, script)
    domain = site.api.get(app_url(site, "/domains")).json()["domains"][0]
    for thing in (site.app, script, route, trigger, domain):
        assert isinstance(thing["id"], int) and not isinstance(thing["id"], bool)
    assert site.call("/ids").status_code == 200
    execution = site.api.get(app_url(site, "/executions")).json()["executions"][0]
    assert str(uuid.UUID(execution["id"])) == execution["id"]
    assert site.api.get(f"/api/v1/admin/executions/{execution['id']}").json()["id"] == execution["id"]


# --- §1 timestamps ---------------------------------------------------------------------------


def test_every_timestamp_is_iso_8601_utc_with_z(site, admin):
    script = site.script('log.info("hello") return "ok"')
    route = site.route("/ts", script=script)
    trigger = make_trigger(site, script)
    assert site.call("/ts").status_code == 200
    site.api.put(app_url(site, "/kv/k"), json={"a": 1})
    execution = site.api.get(app_url(site, "/executions")).json()["executions"][0]
    user = admin.get("/api/v1/auth/me").json()["user"]
    stamps = {
        "app": [site.app["created_at"], site.app["updated_at"]],
        "domain": [site.api.get(app_url(site, "/domains")).json()["domains"][0]["created_at"]],
        "script": [script["created_at"], script["updated_at"]],
        "version": [site.api.get(f"/api/v1/admin/scripts/{script['id']}/versions").json()["versions"][0]["created_at"]],
        "route": [route["created_at"], route["updated_at"]],
        "trigger": [trigger["created_at"]],
        "user": [admin.get(f"/api/v1/admin/users/{user['id']}").json()["created_at"]],
        "token": [admin.get("/api/v1/auth/tokens").json()["tokens"][0]["created_at"]],
        "kv": [site.api.get(app_url(site, "/kv")).json()["items"][0]["updated_at"]],
        "execution": [execution["queued_at"], execution["started_at"], execution["finished_at"]]
        + [line["at"] for line in execution["logs"]],
    }
    for what, values in stamps.items():
        for value in values:
            assert isinstance(value, str) and TIMESTAMP.match(value), (what, value)


# --- §1 listings: limit and cursor on every listing endpoint ---------------------------------


def listing_paths(site):
    return [
        "/api/v1/admin/apps",
        "/api/v1/admin/users",
        "/api/v1/auth/tokens",
        app_url(site, "/domains"),
        f"/api/v1/admin/scripts?app={site.app['id']}",
        app_url(site, "/routes"),
        app_url(site, "/triggers"),
        app_url(site, "/dead-letters"),
        app_url(site, "/executions"),
        app_url(site, "/kv"),
        app_url(site, "/docs/coll"),
    ]


@pytest.mark.parametrize("limit", ["0", "-1", "501", "abc", "1.5", "1e2"])
def test_a_bad_limit_answers_422_on_every_listing(site, limit):
    for path in listing_paths(site):
        response = site.api.get(path, params={"limit": limit})
        assert_error(response, 422, "validation_failed", field="limit")


@pytest.mark.parametrize(
    "cursor",
    ["%%%", cursor_of([]), cursor_of({"a": 1}), cursor_of(None), cursor_of(True), cursor_of(1.5), cursor_of(2**70)],
)
def test_a_cursor_that_is_no_position_answers_422_on_every_listing(site, cursor):
    for path in listing_paths(site):
        response = site.api.get(path, params={"cursor": cursor})
        assert_error(response, 422, "validation_failed", field="cursor")


def test_limit_500_is_accepted_and_the_listing_shape_holds(site):
    for path in listing_paths(site):
        response = site.api.get(path, params={"limit": 500})
        assert response.status_code == 200, (path, response.text)
        body = response.json()
        lists = [name for name, value in body.items() if isinstance(value, list)]
        assert len(lists) == 1 and set(body) == {lists[0], "next_cursor"}, (path, body)
        assert body["next_cursor"] is None or isinstance(body["next_cursor"], str)


def test_the_default_page_is_50(site):
    for n in range(51):
        assert site.api.put(app_url(site, f"/kv/k{n:02}"), json=n).status_code == 200
    first = site.api.get(app_url(site, "/kv")).json()
    assert len(first["items"]) == 50 and first["next_cursor"]
    rest = site.api.get(app_url(site, "/kv"), params={"cursor": first["next_cursor"]}).json()
    assert [item["key"] for item in rest["items"]] == ["k50"] and rest["next_cursor"] is None


# --- §1 bodies: JSON objects, sizes, content types, lone surrogates -------------------------


def body_calls(site, script, route, trigger):
    """(method, path) of calls whose body must be a JSON object."""
    return [
        ("POST", "/api/v1/admin/apps"),
        ("PATCH", app_url(site)),
        ("POST", "/api/v1/admin/apps/slug:check"),
        ("POST", app_url(site, "/slug:check")),
        ("POST", app_url(site, "/domains")),
        ("POST", "/api/v1/admin/users"),
        ("POST", "/api/v1/admin/scripts"),
        ("PATCH", f"/api/v1/admin/scripts/{script['id']}"),
        ("POST", app_url(site, "/routes")),
        ("PATCH", f"/api/v1/admin/routes/{route['id']}"),
        ("POST", app_url(site, "/triggers/kv")),
        ("PATCH", f"/api/v1/admin/triggers/{trigger['id']}"),
        ("POST", app_url(site, "/dead-letters:replay")),
        ("POST", app_url(site, "/docs/coll")),
        ("PUT", app_url(site, "/docs/coll/d")),
        ("POST", "/api/v1/auth/token"),
    ]


@pytest.mark.parametrize("raw", [b"[]", b'"text"', b"1", b"true", b"{", b"{'a': 1}", b"\xff\xfe", b'{"a": 1} x'])
def test_a_body_that_is_not_a_json_object_answers_400(site, raw):
    script = site.script()
    route = site.route("/b", script=script)
    trigger = make_trigger(site, script)
    for method, path in body_calls(site, script, route, trigger):
        response = site.api.request(method, path, data=raw, headers=JSON)
        assert_error(response, 400, "bad_request")


def test_an_oversized_body_answers_413_everywhere(site):
    script = site.script()
    oversized = b'{"a": "' + b"x" * 1_048_576 + b'"}'
    for method, path in [
        ("POST", "/api/v1/admin/apps"),
        ("POST", "/api/v1/admin/scripts"),
        ("POST", app_url(site, "/docs/coll")),
        ("POST", f"/api/v1/execute/{script['id']}"),
    ]:
        response = site.api.request(method, path, data=oversized, headers=JSON)
        assert_error(response, 413, "payload_too_large")


def test_a_json_body_is_read_whatever_content_type_it_is_sent_with(admin, unique):
    # curl -d sends form encoding; a JSON body is still what the API reads.
    for content_type in ("application/x-www-form-urlencoded", "text/plain"):
        slug = unique("ctype")
        response = admin.post(
            "/api/v1/admin/apps", data=json.dumps({"slug": slug}), headers={"Content-Type": content_type}
        )
        assert response.status_code == 201, response.text
        assert response.json()["slug"] == slug


def test_a_lone_surrogate_in_a_body_answers_400_and_stores_nothing(site, unique):
    slug = unique("surrogate")
    calls = [
        ("PUT", app_url(site, "/kv/k"), b'"\\ud800"'),
        ("PUT", app_url(site, "/kv/k"), b'{"a": ["\\udfff x"]}'),
        ("POST", app_url(site, "/docs/coll"), b'{"_id": "d", "a": "\\uDC00"}'),
        ("POST", "/api/v1/admin/apps", b'{"slug": "' + slug.encode() + b'", "name": "\\ud83d"}'),
        ("POST", "/api/v1/admin/scripts", b'{"app_id": %d, "name": "s", "source": "-- \\ud800"}' % site.app["id"]),
    ]
    for method, path, raw in calls:
        assert_error(site.api.request(method, path, data=raw, headers=JSON), 400, "bad_request")
    assert site.api.get(app_url(site, "/kv/k")).status_code == 404
    assert site.api.get(app_url(site, "/docs")).json() == {"collections": []}
    assert site.api.get(f"/api/v1/admin/apps/{slug}").status_code == 404


def test_an_escaped_surrogate_pair_is_one_character(site):
    response = site.api.put(app_url(site, "/kv/emoji"), data=b'"\\ud83d\\ude00 \\\\ud800"', headers=JSON)
    assert response.status_code == 200, response.text
    assert response.json()["value"] == "\U0001F600 \\ud800"
    assert site.api.get(app_url(site, "/kv/emoji")).json()["value"] == "\U0001F600 \\ud800"


# --- §1 status of writes: 201 creates, 200 updates, 204 deletes with no body ----------------


def test_deletes_answer_204_with_an_empty_body(site, admin, make_user):
    script = site.script()
    route = site.route("/d", script=script)
    trigger = make_trigger(site, script)
    site.api.put(app_url(site, "/kv/k"), json=1)
    site.api.post(app_url(site, "/docs/coll"), json={"_id": "d"})
    domain = admin.post(app_url(site, "/domains"), json={"pattern": f"extra.{site.host}"}).json()
    user, viewer = make_user("viewer")
    token = viewer.get("/api/v1/auth/tokens").json()["tokens"][0]
    revoked = viewer.delete(f"/api/v1/auth/tokens/{token['id']}")
    assert revoked.status_code == 204 and revoked.content == b""
    for path in [
        f"/api/v1/admin/routes/{route['id']}",
        f"/api/v1/admin/triggers/{trigger['id']}",
        f"/api/v1/admin/scripts/{script['id']}",
        app_url(site, "/kv/k"),
        app_url(site, "/docs/coll/d"),
        app_url(site, f"/domains/{domain['id']}"),
        f"/api/v1/admin/users/{user['id']}",
        app_url(site),
    ]:
        response = admin.delete(path)
        assert response.status_code == 204, (path, response.text)
        assert response.content == b"", path
        assert admin.delete(path).status_code == 404, path


# --- §1 405 with Allow -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "method, tail, allowed",
    [
        ("PUT", "/api/v1/admin/apps", {"GET", "POST"}),
        ("PUT", "{app}", {"GET", "PATCH", "DELETE"}),
        ("DELETE", "{app}/routes", {"GET", "POST"}),
        ("GET", "{app}/triggers/kv", {"POST"}),
        ("POST", "{app}/kv/k", {"GET", "PUT", "DELETE"}),
        ("DELETE", "{app}/docs/coll", {"GET", "POST"}),
        ("PATCH", "{app}/docs/coll/d", {"GET", "PUT", "DELETE"}),
        ("GET", "/api/v1/execute/1", {"POST"}),
        ("GET", "/api/v1/auth/token", {"POST"}),
        ("POST", "/api/v1/admin/sandbox", {"GET"}),
        ("PUT", "/api/v1/admin/executions/x", {"GET"}),
        ("POST", "/healthz", {"GET"}),
    ],
)
def test_a_wrong_method_answers_405_with_allow(site, method, tail, allowed):
    response = site.api.request(method, tail.format(app=app_url(site)))
    assert_error(response, 405, "method_not_allowed")
    listed = {name.strip() for name in response.headers["Allow"].split(",")}
    assert allowed <= listed and method not in listed, listed


# --- wrong JSON types for fields: 422 naming the field, nothing written ----------------------


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"name": 5}, "name"),
        ({"name": ["x"]}, "name"),
        ({"description": {"a": 1}}, "description"),
        ({"force": "true"}, "force"),
        ({"force": 1}, "force"),
        ({"slug": None}, "slug"),
        ({"slug": 7}, "slug"),
        ({"slug": ""}, "slug"),
        ({"slug": "Ünïcode"}, "slug"),
        ({"slug": "x" * 64}, "slug"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_app_patch_with_a_wrong_field_answers_422_and_changes_nothing(site, fields, field):
    response = site.api.patch(app_url(site), json={"name": "changed", **fields})
    assert_error(response, 422, "validation_failed", field=field)
    app = site.api.get(app_url(site)).json()
    assert app["name"] == site.app["name"] and app["slug"] == site.slug


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"timeout_seconds": 5.0}, "timeout_seconds"),
        ({"timeout_seconds": "5"}, "timeout_seconds"),
        ({"timeout_seconds": True}, "timeout_seconds"),
        ({"timeout_seconds": None}, "timeout_seconds"),
        ({"timeout_seconds": HUGE}, "timeout_seconds"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"sandbox": []}, "sandbox"),
        ({"sandbox": {"max_instructions": None}}, "sandbox.max_instructions"),
        ({"sandbox": {"max_instructions": 1.0}}, "sandbox.max_instructions"),
        ({"sandbox": {"max_instructions": True}}, "sandbox.max_instructions"),
        ({"sandbox": {"max_memory_bytes": "1000"}}, "sandbox.max_memory_bytes"),
        ({"sandbox": {"max_call_depth": -1}}, "sandbox.max_call_depth"),
        ({"name": None}, "name"),
        ({"name": "é"}, "name"),
        ({"source": None}, "source"),
        ({"source": 5}, "source"),
        ({"description": 5}, "description"),
        ({"version": 9}, "version"),
    ],
)
def test_script_patch_with_a_wrong_field_answers_422_and_changes_nothing(site, fields, field):
    script = site.script("return 1")
    response = site.api.patch(f"/api/v1/admin/scripts/{script['id']}", json={"source": "return 2", **fields})
    assert_error(response, 422, "validation_failed", field=field)
    now = site.api.get(f"/api/v1/admin/scripts/{script['id']}").json()
    assert now["source"] == "return 1" and now["version"] == 1


def test_a_huge_sandbox_value_answers_exceeds_ceiling_with_the_numbers(site, admin):
    ceiling = admin.get("/api/v1/admin/sandbox").json()["ceiling"]["max_memory_bytes"]
    body = {"app_id": site.app["id"], "name": "big", "source": "", "sandbox": {"max_memory_bytes": HUGE}}
    response = site.api.post("/api/v1/admin/scripts", json=body)
    assert_error(
        response, 422, "exceeds_ceiling", field="sandbox.max_memory_bytes", requested=HUGE, ceiling=ceiling
    )


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"enabled": None}, "enabled"),
        ({"enabled": "false"}, "enabled"),
        ({"enabled": 0}, "enabled"),
        ({"method": None}, "method"),
        ({"method": "FETCH"}, "method"),
        ({"path": None}, "path"),
        ({"path": 5}, "path"),
        ({"host": 5}, "host"),
        ({"host": ""}, "host"),
        ({"script_id": None}, "script_id"),
        ({"script_id": "1"}, "script_id"),
        ({"script_id": True}, "script_id"),
        ({"dispatch_mode": None}, "dispatch_mode"),
        ({"retry": {"max_attempts": 1.0}}, "retry.max_attempts"),
        ({"retry": {"jitter": "0.1"}}, "retry.jitter"),
        ({"app_id": 1}, "app_id"),
    ],
)
def test_route_patch_with_a_wrong_field_answers_422_and_changes_nothing(site, fields, field):
    route = site.route("/p")
    response = site.api.patch(f"/api/v1/admin/routes/{route['id']}", json={"path": "/moved", **fields})
    assert_error(response, 422, "validation_failed", field=field)
    now = site.api.get(f"/api/v1/admin/routes/{route['id']}").json()
    assert now["path"] == "/p" and now["enabled"] is True


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"role": None}, "role"),
        ({"username": None}, "username"),
        ({"password": None}, "password"),
        ({"role": "root"}, "role"),
        ({"role": ["admin"]}, "role"),
        ({"password": 12345678}, "password"),
        ({"username": "with space"}, "username"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_user_patch_with_a_wrong_field_answers_422_and_changes_nothing(admin, make_user, fields, field):
    user, _ = make_user("viewer")
    renamed = user["username"] + "-new"
    response = admin.patch(f"/api/v1/admin/users/{user['id']}", json={"username": renamed, **fields})
    assert_error(response, 422, "validation_failed", field=field)
    now = admin.get(f"/api/v1/admin/users/{user['id']}").json()
    assert now["username"] == user["username"] and now["role"] == "viewer"


def test_creating_a_user_with_an_unknown_field_answers_422_and_creates_nobody(admin, unique):
    username = unique("u")
    body = {"username": username, "password": "password-123", "role": "viewer"}
    assert_error(admin.post("/api/v1/admin/users", json={**body, "is_admin": True}), 422, "validation_failed", field="is_admin")
    assert admin.post("/api/v1/admin/users", json=body).status_code == 201


@pytest.mark.parametrize(
    "body, field",
    [
        ({"pattern": None}, "pattern"),
        ({"pattern": 5}, "pattern"),
        ({"pattern": ""}, "pattern"),
        ({"pattern": "*."}, "pattern"),
        ({"pattern": "a b.test"}, "pattern"),
        ({}, "pattern"),
    ],
)
def test_a_wrong_domain_pattern_answers_422_on_pattern(site, body, field):
    assert_error(site.api.post(app_url(site, "/domains"), json=body), 422, "validation_failed", field=field)
    assert len(site.api.get(app_url(site, "/domains")).json()["domains"]) == 1


@pytest.mark.parametrize(
    "kind, body, field",
    [
        ("kv", {"key_glob": "*", "ops": "set"}, "ops"),
        ("kv", {"key_glob": "*", "ops": [None]}, "ops"),
        ("kv", {"key_glob": 5}, "key_glob"),
        ("kv", {"key_glob": "*", "enabled": "yes"}, "enabled"),
        ("kv", {"key_glob": "*", "retry": {"base_delay_ms": 1.5}}, "retry.base_delay_ms"),
        ("kv", {"key_glob": "*", "retry": {"max_attempts": HUGE}}, "retry.max_attempts"),
        ("docs", {"collection_glob": "*", "ops": ["set"]}, "ops"),
        ("docs", {"key_glob": "*"}, "key_glob"),
        ("dead_letter", {"retry": None}, "retry"),
    ],
)
def test_a_wrong_trigger_field_answers_422_and_creates_nothing(site, kind, body, field):
    script = site.script()
    response = site.api.post(app_url(site, f"/triggers/{kind}"), json={"script_id": script["id"], **body})
    assert_error(response, 422, "validation_failed", field=field)
    assert site.api.get(app_url(site, "/triggers")).json()["triggers"] == []


def test_bulk_replay_with_an_unknown_field_answers_422(site):
    # A misspelt "ids" must not turn into "replay every open dead letter".
    response = site.api.post(app_url(site, "/dead-letters:replay"), json={"id": [1]})
    assert_error(response, 422, "validation_failed", field="id")


# --- §4 former slugs: redirects for URLs, a clear 422 for bodies -----------------------------


def test_a_former_slug_in_a_body_answers_422_naming_the_current_slug(site, admin):
    old = site.slug
    new = old + "-renamed"
    assert admin.patch(app_url(site), json={"slug": new}).status_code == 200
    body = {"app_id": old, "name": "s", "source": ""}
    error = assert_error(admin.post("/api/v1/admin/scripts", json=body), 422, "validation_failed", field="app_id")
    assert new in error["message"]
    assert admin.post("/api/v1/admin/scripts", json={**body, "app_id": new}).status_code == 201


@pytest.mark.parametrize("tail", ["", "/domains", "/routes?limit=2", "/kv/a%3Fb?x=1", "/docs/coll/d%20x", "/executions"])
def test_a_former_slug_in_the_url_answers_308_to_the_current_one(site, admin, tail):
    old = site.slug
    assert admin.patch(app_url(site), json={"slug": old + "-moved"}).status_code == 200
    response = admin.get(f"/api/v1/admin/apps/{old}{tail}")
    assert response.status_code == 308
    assert response.headers["Location"].endswith(f"/api/v1/admin/apps/{old}-moved{tail}")


# --- §4 slug:check answers for every kind of input ------------------------------------------


@pytest.mark.parametrize(
    "slug, reason",
    [(None, "invalid"), (5, "invalid"), ("", "invalid"), ("Upper", "invalid"), ("api", "reserved"), ("default", "taken")],
)
def test_slug_check_reasons(admin, slug, reason):
    response = admin.post("/api/v1/admin/apps/slug:check", json={"slug": slug})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {"slug", "available", "reason", "held_by", "requires_force"}
    assert body["available"] is False and body["reason"] == reason and body["requires_force"] is False
    if reason == "taken":
        assert body["held_by"]["slug"] == "default" and isinstance(body["held_by"]["id"], int)
    else:
        assert body["held_by"] is None


# --- §7 data values: JSON edge cases ---------------------------------------------------------


@pytest.mark.parametrize("value", [10**30, -(2**63), 1.5e300, "", "ünïcødé ✓ \U0001F600", [None, {}], {"": ""}])
def test_kv_keeps_json_edge_values_as_sent(site, value):
    response = site.api.put(app_url(site, "/kv/edge"), json=value)
    assert response.status_code == 200, response.text
    assert site.api.get(app_url(site, "/kv/edge")).json()["value"] == value


@pytest.mark.parametrize("raw", [b"NaN", b"Infinity", b"-Infinity", b"1e400", b'{"a": NaN}'])
def test_kv_refuses_numbers_json_cannot_hold(site, raw):
    response = site.api.put(app_url(site, "/kv/nan"), data=raw, headers=JSON)
    assert_error(response, 422, "validation_failed", field="value")
    assert site.api.get(app_url(site, "/kv/nan")).status_code == 404


# --- NUL characters: PostgreSQL text cannot hold them, so both backends refuse them alike ---


def test_a_nul_character_in_a_text_field_answers_422_on_the_field(site, unique):
    script = site.script()
    calls = [
        ("POST", "/api/v1/admin/apps", {"slug": unique("nul"), "name": "a\x00b"}, "name"),
        ("POST", "/api/v1/admin/apps", {"slug": unique("nul"), "description": "\x00"}, "description"),
        ("PATCH", app_url(site), {"name": "a\x00"}, "name"),
        ("POST", "/api/v1/admin/scripts", {"app_id": site.app["id"], "name": "n", "source": "-- \x00"}, "source"),
        ("POST", "/api/v1/admin/scripts", {"app_id": site.app["id"], "name": "n", "source": "", "description": "\x00"}, "description"),
        ("PATCH", f"/api/v1/admin/scripts/{script['id']}", {"source": "return '\x00'"}, "source"),
        ("POST", app_url(site, "/triggers/kv"), {"script_id": script["id"], "key_glob": "a\x00*"}, "key_glob"),
        ("POST", app_url(site, "/triggers/docs"), {"script_id": script["id"], "collection_glob": "\x00"}, "collection_glob"),
    ]
    for method, path, body, field in calls:
        assert_error(site.api.request(method, path, json=body), 422, "validation_failed", field=field)
    assert site.api.get(app_url(site)).json()["name"] == site.app["name"]
    assert site.api.get(f"/api/v1/admin/scripts/{script['id']}").json()["version"] == 1


def test_a_nul_character_in_a_url_or_login_names_nothing(site, anonymous):
    for path in ["/api/v1/admin/apps/a%00b", "/api/v1/admin/scripts?app=a%00b", "/api/v1/admin/executions/a%00b"]:
        assert_error(site.api.get(path), 404, "not_found")
    login = anonymous.post("/api/v1/auth/token", json={"username": "admin\x00", "password": "whatever"})
    assert_error(login, 401, "unauthorized")
    named = anonymous.post("/api/v1/auth/token", json={"username": "admin", "password": "x", "name": "\x00"})
    assert_error(named, 422, "validation_failed", field="name")


def test_an_execution_id_is_found_in_any_uuid_spelling(site):
    script = site.script('return "ok"')
    assert site.api.post(f"/api/v1/execute/{script['id']}", json={}).status_code == 200
    execution_id = site.api.get(app_url(site, "/executions")).json()["executions"][0]["id"]
    assert site.api.get(f"/api/v1/admin/executions/{execution_id.upper()}").json()["id"] == execution_id
    assert_error(site.api.get(f"/api/v1/admin/executions/{execution_id}x"), 404, "not_found")
