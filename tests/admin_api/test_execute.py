"""docs/api.md §6: POST /api/v1/execute/{script_id} answers exactly like a sync route."""
import pytest

from tests.support.apps import site  # noqa: F401  (fixture)

ECHO = """
return {
  got = request.json and request.json.n,
  method = request.method,
  source = ctx.source,
  principal = ctx.principal and ctx.principal.username,
  authorization = request.headers["authorization"] or "none",
}
"""


def test_execute_runs_with_the_json_body(admin, site):  # noqa: F811
    script = site.script(ECHO)
    response = admin.post(f"/api/v1/execute/{script['id']}", json={"n": 7})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {
        "got": 7, "method": "POST", "source": "execute", "principal": "admin", "authorization": "none",
    }


def test_execute_answers_on_any_host(admin, site):  # noqa: F811
    script = site.script('return "anywhere"')
    response = admin.post(f"/api/v1/execute/{script['id']}", headers={"Host": "nobody-claims.example"})
    assert response.status_code == 200 and response.text == "anywhere"


def test_execute_maps_failures_like_a_route(admin, site):  # noqa: F811
    script = site.script('error("private")')
    response = admin.post(f"/api/v1/execute/{script['id']}", json={})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "script_error" and "private" not in response.text
    logged = admin.get(f"/api/v1/admin/executions/{error['execution_id']}").json()
    assert logged["source"] == "execute" and logged["status"] == "script_error"


def test_execute_returns_nil_as_204(admin, site):  # noqa: F811
    script = site.script("return nil")
    assert admin.post(f"/api/v1/execute/{script['id']}").status_code == 204


def test_bad_json_and_unknown_scripts(admin, site):  # noqa: F811
    script = site.script()
    response = admin.post(f"/api/v1/execute/{script['id']}", data="{", headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["error"]["code"] == "bad_request"
    assert admin.post("/api/v1/execute/999999999", json={}).status_code == 404


@pytest.mark.parametrize("raw", [
    b"[" * 100_000 + b"]" * 100_000,  # deeper than Python's own parser goes
    b"[" * 300 + b"]" * 300,  # deeper than a script's globals may nest
    b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e999999}', b'{"a": ' + b"9" * 400 + b"}",
])
def test_json_a_script_cannot_hold_is_400(admin, site, raw):  # noqa: F811
    script = site.script('return "ran"')
    response = admin.post(f"/api/v1/execute/{script['id']}", data=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "bad_request"
    nested = admin.post(f"/api/v1/execute/{script['id']}", data=b"[" * 200 + b"]" * 200)
    assert nested.status_code == 200 and nested.text == "ran"


def test_execute_needs_scripts_execute(make_user, anonymous, site):  # noqa: F811
    script = site.script()
    _, viewer = make_user("viewer")
    response = viewer.post(f"/api/v1/execute/{script['id']}", json={})
    assert response.status_code == 403
    assert response.json()["error"]["capability"] == "scripts.execute"
    assert anonymous.post(f"/api/v1/execute/{script['id']}", json={}).status_code == 401
    _, developer = make_user("developer")
    assert developer.post(f"/api/v1/execute/{script['id']}", json={}).status_code == 200
