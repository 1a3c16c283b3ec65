"""docs/api.md §5: scripts, compile checks, versions and restore, sandbox validation."""
import pytest

from tests.support.apps import other_site, site  # noqa: F401  (fixtures)

SCRIPT_FIELDS = {
    "id", "app_id", "name", "description", "source", "timeout_seconds", "sandbox", "version",
    "created_at", "updated_at",
}


def post(admin, **body):
    return admin.post("/api/v1/admin/scripts", json=body)


def test_create_show_and_list(admin, site):  # noqa: F811
    response = post(admin, app_id=site.app["id"], name="greet", source='return "hi"', description="Says hi")
    assert response.status_code == 201
    script = response.json()
    assert set(script) == SCRIPT_FIELDS
    assert (script["version"], script["timeout_seconds"], script["sandbox"]) == (1, 5, {})
    assert admin.get(f"/api/v1/admin/scripts/{script['id']}").json()["source"] == 'return "hi"'
    listed = admin.get("/api/v1/admin/scripts", params={"app": site.slug}).json()
    assert [s["name"] for s in listed["scripts"]] == ["greet"]
    assert "source" not in listed["scripts"][0]
    assert listed["next_cursor"] is None


def test_app_id_accepts_a_slug_and_is_required(admin, site):  # noqa: F811
    assert post(admin, app_id=site.slug, name="by-slug", source="return 1").status_code == 201
    for body in ({"name": "x", "source": "return 1"}, {"app_id": 999999999, "name": "x", "source": "return 1"}):
        response = admin.post("/api/v1/admin/scripts", json=body)
        assert response.status_code == 422
        assert response.json()["error"]["field"] == "app_id"


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"name": ""}, "name"),
        ({"name": "has space"}, "name"),
        ({"name": "x" * 65}, "name"),
        ({"source": 5}, "source"),
        ({"source": "-- " + "x" * (256 * 1024)}, "source"),
        ({"timeout_seconds": 0}, "timeout_seconds"),
        ({"timeout_seconds": 61}, "timeout_seconds"),
        ({"timeout_seconds": "5"}, "timeout_seconds"),
        ({"timeout_seconds": True}, "timeout_seconds"),
        ({"description": 5}, "description"),
        ({"sandbox": "big"}, "sandbox"),
        ({"sandbox": {"max_magic": 5}}, "sandbox.max_magic"),
        ({"sandbox": {"max_instructions": 0}}, "sandbox.max_instructions"),
        ({"sandbox": {"max_instructions": "10"}}, "sandbox.max_instructions"),
        ({"unknown": 1}, "unknown"),
    ],
)
def test_invalid_fields_answer_422(admin, site, fields, field):  # noqa: F811
    body = {"app_id": site.app["id"], "name": "ok", "source": "return 1", **fields}
    response = admin.post("/api/v1/admin/scripts", json=body)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_sandbox_above_the_ceiling_answers_exceeds_ceiling(admin, site):  # noqa: F811
    response = post(admin, app_id=site.app["id"], name="big", source="return 1", sandbox={"max_instructions": 100_000_001})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "exceeds_ceiling"
    assert (error["field"], error["requested"], error["ceiling"]) == ("sandbox.max_instructions", 100_000_001, 100_000_000)


def test_valid_sandbox_and_timeout_are_stored(admin, site):  # noqa: F811
    response = post(
        admin, app_id=site.app["id"], name="tuned", source="return 1",
        timeout_seconds=60, sandbox={"max_instructions": 1000, "max_call_depth": 50},
    )
    assert response.status_code == 201
    assert response.json()["sandbox"] == {"max_instructions": 1000, "max_call_depth": 50}
    assert response.json()["timeout_seconds"] == 60


def test_source_that_does_not_compile_answers_compile_error(admin, site):  # noqa: F811
    response = post(admin, app_id=site.app["id"], name="broken", source="local x = \n\nreturn +")
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "compile_error" and error["field"] == "source"
    assert error["line"] == 3 and error["message"]
    assert admin.get("/api/v1/admin/scripts", params={"app": site.slug}).json()["scripts"] == []


def test_names_are_unique_within_an_app_only(admin, site, other_site):  # noqa: F811
    assert post(admin, app_id=site.app["id"], name="same", source="return 1").status_code == 201
    response = post(admin, app_id=site.app["id"], name="same", source="return 2")
    assert response.status_code == 409 and response.json()["error"]["code"] == "name_taken"
    assert post(admin, app_id=other_site.app["id"], name="same", source="return 1").status_code == 201


def test_source_changes_bump_the_version_and_keep_history(admin, site):  # noqa: F811
    script = site.script('return "v1"', name="hist")
    url = f"/api/v1/admin/scripts/{script['id']}"
    assert admin.patch(url, json={"description": "no source change"}).json()["version"] == 1
    assert admin.patch(url, json={"source": 'return "v1"'}).json()["version"] == 1
    changed = admin.patch(url, json={"source": 'return "v2"'})
    assert changed.status_code == 200 and changed.json()["version"] == 2

    versions = admin.get(url + "/versions").json()["versions"]
    assert [v["version"] for v in versions] == [2, 1]
    assert set(versions[0]) == {"version", "created_at", "created_by"}
    assert versions[0]["created_by"] == "admin"
    first = admin.get(url + "/versions/1").json()
    assert first["source"] == 'return "v1"' and first["version"] == 1
    assert admin.get(url + "/versions/9").status_code == 404

    restored = admin.post(url + "/versions/1:restore")
    assert restored.status_code == 200
    assert (restored.json()["version"], restored.json()["source"]) == (3, 'return "v1"')
    assert [v["version"] for v in admin.get(url + "/versions").json()["versions"]] == [3, 2, 1]


def test_a_patch_that_does_not_compile_changes_nothing(admin, site):  # noqa: F811
    script = site.script("return 1")
    url = f"/api/v1/admin/scripts/{script['id']}"
    response = admin.patch(url, json={"source": "return (", "name": "renamed"})
    assert response.status_code == 422 and response.json()["error"]["code"] == "compile_error"
    after = admin.get(url).json()
    assert (after["source"], after["name"], after["version"]) == ("return 1", script["name"], 1)


def test_renaming_onto_a_taken_name_answers_409(admin, site):  # noqa: F811
    site.script(name="first")
    second = site.script(name="second")
    response = admin.patch(f"/api/v1/admin/scripts/{second['id']}", json={"name": "first"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "name_taken"


def test_a_script_cannot_move_between_apps(admin, site, other_site):  # noqa: F811
    script = site.script()
    response = admin.patch(f"/api/v1/admin/scripts/{script['id']}", json={"app_id": other_site.app["id"]})
    assert response.status_code == 422 and response.json()["error"]["field"] == "app_id"


def test_delete_a_script_unless_routes_use_it(admin, site):  # noqa: F811
    script = site.script()
    route = site.route("/used", script=script)
    url = f"/api/v1/admin/scripts/{script['id']}"
    response = admin.delete(url)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "script_in_use"
    assert error["routes"] == [route["id"]] and error["triggers"] == []
    admin.delete(f"/api/v1/admin/routes/{route['id']}")
    assert admin.delete(url).status_code == 204
    assert admin.get(url).status_code == 404
    assert admin.get(url + "/versions").status_code == 404


def test_unknown_scripts_answer_404(admin):
    for method, path in [("GET", "/api/v1/admin/scripts/999999999"), ("PATCH", "/api/v1/admin/scripts/999999999"),
                         ("DELETE", "/api/v1/admin/scripts/999999999")]:
        assert admin.request(method, path, json={}).status_code == 404


def test_sandbox_defaults_and_ceilings(admin):
    body = admin.get("/api/v1/admin/sandbox").json()
    assert body["defaults"]["max_instructions"] == 10_000_000
    assert body["ceiling"]["max_instructions"] == 100_000_000
    assert set(body["defaults"]) == set(body["ceiling"]) == {
        "max_instructions", "max_memory_bytes", "max_call_depth", "max_string_bytes",
        "max_table_entries", "max_output_bytes", "max_http_requests",
    }
    assert (body["defaults"]["max_http_requests"], body["ceiling"]["max_http_requests"]) == (10, 100)


def test_viewers_read_but_cannot_change_scripts(make_user, site):  # noqa: F811
    script = site.script()
    _, viewer = make_user("viewer")
    assert viewer.get(f"/api/v1/admin/scripts/{script['id']}").status_code == 200
    assert viewer.get("/api/v1/admin/sandbox").status_code == 200
    for method, path in [
        ("POST", "/api/v1/admin/scripts"),
        ("PATCH", f"/api/v1/admin/scripts/{script['id']}"),
        ("DELETE", f"/api/v1/admin/scripts/{script['id']}"),
        ("POST", f"/api/v1/admin/scripts/{script['id']}/versions/1:restore"),
    ]:
        response = viewer.request(method, path, json={})
        assert response.status_code == 403 and response.json()["error"]["capability"] == "scripts.manage"


def test_developers_manage_scripts(make_user, site):  # noqa: F811
    _, developer = make_user("developer")
    response = developer.post("/api/v1/admin/scripts", json={"app_id": site.app["id"], "name": "dev", "source": "return 1"})
    assert response.status_code == 201
    versions = developer.get(f"/api/v1/admin/scripts/{response.json()['id']}/versions").json()["versions"]
    assert versions[0]["created_by"].startswith("developer-")
