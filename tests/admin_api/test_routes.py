"""docs/api.md §6: routes — validation, reserved paths, hosts, conflicts, capabilities."""
import pytest

from tests.support.apps import other_site, site  # noqa: F401  (fixtures)

ROUTE_FIELDS = {
    "id", "app_id", "method", "path", "host", "script_id", "dispatch_mode", "enabled", "retry",
    "created_at", "updated_at",
}


def post(admin, site, **body):  # noqa: F811
    return admin.post(f"/api/v1/admin/apps/{site.app['id']}/routes", json=body)


def test_create_show_list_update_delete(admin, site):  # noqa: F811
    script = site.script()
    response = post(admin, site, method="get", path="/items/:id/", script_id=script["id"])
    assert response.status_code == 201
    route = response.json()
    assert set(route) == ROUTE_FIELDS
    assert (route["method"], route["path"], route["host"], route["dispatch_mode"], route["enabled"]) == (
        "GET", "/items/:id", None, "sync", True,
    )
    url = f"/api/v1/admin/routes/{route['id']}"
    assert admin.get(url).json() == route
    listed = admin.get(f"/api/v1/admin/apps/{site.slug}/routes").json()
    assert [r["id"] for r in listed["routes"]] == [route["id"]] and listed["next_cursor"] is None

    changed = admin.patch(url, json={"method": "POST", "enabled": False})
    assert changed.status_code == 200
    assert (changed.json()["method"], changed.json()["enabled"]) == ("POST", False)
    assert admin.delete(url).status_code == 204
    assert admin.get(url).status_code == 404


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"method": "FETCH"}, "method"),
        ({"method": None}, "method"),
        ({"path": "no-slash"}, "path"),
        ({"path": "/a//b"}, "path"),
        ({"path": "/*rest/more"}, "path"),
        ({"path": "/:"}, "path"),
        ({"dispatch_mode": "later"}, "dispatch_mode"),
        ({"enabled": "yes"}, "enabled"),
        ({"host": "http://x.test"}, "host"),
        ({"script_id": "1"}, "script_id"),
        ({"script_id": 999999999}, "script_id"),
        ({"colour": "red"}, "colour"),
        ({"retry": "often"}, "retry"),
    ],
)
def test_invalid_fields_answer_422(admin, site, fields, field):  # noqa: F811
    script = site.script()
    body = {"method": "GET", "path": "/v", "script_id": script["id"], **fields}
    response = admin.post(f"/api/v1/admin/apps/{site.app['id']}/routes", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize("path", ["/admin", "/api/things", "/healthz", "/version/x", "/static/app.js", "/metrics"])
def test_reserved_paths_answer_reserved_path(admin, site, path):  # noqa: F811
    response = post(admin, site, method="GET", path=path, script_id=site.script()["id"])
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("reserved_path", "path")


def test_paths_that_only_start_like_a_reserved_prefix_are_fine(admin, site):  # noqa: F811
    assert post(admin, site, method="GET", path="/administrator", script_id=site.script()["id"]).status_code == 201


def test_a_script_of_another_app_is_refused(admin, site, other_site):  # noqa: F811
    foreign = other_site.script()
    response = post(admin, site, method="GET", path="/x", script_id=foreign["id"])
    assert response.status_code == 422 and response.json()["error"]["field"] == "script_id"


def test_host_must_be_covered_by_the_apps_claims(admin, site, other_site, unique):  # noqa: F811
    script = site.script()
    response = post(admin, site, method="GET", path="/h", script_id=script["id"], host=other_site.host)
    assert response.status_code == 422
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == ("host_not_claimed", "host")
    ok = post(admin, site, method="GET", path="/h", script_id=script["id"], host=site.host.upper() + ".")
    assert ok.status_code == 201 and ok.json()["host"] == site.host
    base = f"{unique('w')}.test"
    admin.post(f"/api/v1/admin/apps/{site.app['id']}/domains", json={"pattern": f"*.{base}"})
    assert post(admin, site, method="GET", path="/h", script_id=script["id"], host=f"api.{base}").status_code == 201
    assert post(admin, site, method="GET", path="/h", script_id=script["id"], host=base).status_code == 422


@pytest.mark.parametrize(
    "first, second, conflict",
    [
        (("GET", "/users/:id"), ("GET", "/users/:name"), True),  # names do not matter
        (("GET", "/users/:id"), ("*", "/users/:id"), False),  # an exact method and * may share a path
        (("*", "/users/:id"), ("DELETE", "/users/:x"), False),
        (("*", "/users/:id"), ("*", "/users/:x"), True),  # two * routes do conflict
        (("GET", "/users/:id"), ("POST", "/users/:id"), False),
        (("GET", "/users/:id"), ("GET", "/users/me"), False),  # a literal is another shape
        (("GET", "/users/:id"), ("GET", "/users/*rest"), False),
        (("GET", "/a/"), ("GET", "/a"), True),  # trailing slash ignored
    ],
)
def test_route_conflicts(admin, site, first, second, conflict):  # noqa: F811
    script = site.script()
    existing = post(admin, site, method=first[0], path=first[1], script_id=script["id"]).json()
    response = post(admin, site, method=second[0], path=second[1], script_id=script["id"])
    if conflict:
        assert response.status_code == 409
        error = response.json()["error"]
        assert error["code"] == "route_conflict" and error["conflicts_with"] == existing["id"]
    else:
        assert response.status_code == 201


def test_conflicts_depend_on_host_and_app(admin, site, other_site):  # noqa: F811
    script = site.script()
    post(admin, site, method="GET", path="/same", script_id=script["id"])
    # Another host of the same app, or another app, is never a conflict.
    assert post(admin, site, method="GET", path="/same", script_id=script["id"], host=site.host).status_code == 201
    assert other_site.route("/same")["path"] == "/same"


def test_patch_checks_conflicts_too(admin, site):  # noqa: F811
    script = site.script()
    a = post(admin, site, method="GET", path="/a", script_id=script["id"]).json()
    b = post(admin, site, method="GET", path="/b", script_id=script["id"]).json()
    response = admin.patch(f"/api/v1/admin/routes/{b['id']}", json={"path": "/a"})
    assert response.status_code == 409 and response.json()["error"]["conflicts_with"] == a["id"]
    assert admin.get(f"/api/v1/admin/routes/{b['id']}").json()["path"] == "/b"
    # A route never conflicts with itself.
    assert admin.patch(f"/api/v1/admin/routes/{a['id']}", json={"path": "/a/"}).status_code == 200


def test_async_routes_store_a_retry_policy(admin, site):  # noqa: F811
    response = post(
        admin, site, method="POST", path="/hook", script_id=site.script()["id"],
        dispatch_mode="async", retry={"max_attempts": 3, "backoff": "constant"},
    )
    assert response.status_code == 201, response.text
    route = response.json()
    assert route["dispatch_mode"] == "async"
    assert route["retry"]["max_attempts"] == 3 and route["retry"]["backoff"] == "constant"
    bad = post(admin, site, method="POST", path="/hook2", script_id=site.script()["id"], retry={"max_attempts": 0})
    assert bad.status_code == 422 and bad.json()["error"]["field"].startswith("retry")


def test_unknown_routes_and_apps_answer_404(admin):
    assert admin.get("/api/v1/admin/routes/999999999").status_code == 404
    assert admin.get("/api/v1/admin/apps/no-such-app/routes").status_code == 404


def test_viewers_cannot_change_routes(make_user, admin, site):  # noqa: F811
    route = site.route("/v")
    _, viewer = make_user("viewer")
    assert viewer.get(f"/api/v1/admin/routes/{route['id']}").status_code == 200
    for method, path in [
        ("POST", f"/api/v1/admin/apps/{site.app['id']}/routes"),
        ("PATCH", f"/api/v1/admin/routes/{route['id']}"),
        ("DELETE", f"/api/v1/admin/routes/{route['id']}"),
    ]:
        response = viewer.request(method, path, json={})
        assert response.status_code == 403 and response.json()["error"]["capability"] == "routes.manage"


def test_developers_manage_routes(make_user, site):  # noqa: F811
    _, developer = make_user("developer")
    script = site.script()
    response = developer.post(
        f"/api/v1/admin/apps/{site.app['id']}/routes", json={"method": "GET", "path": "/dev", "script_id": script["id"]}
    )
    assert response.status_code == 201
