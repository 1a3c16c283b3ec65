"""docs/api.md §3: user management and capability checks."""
import pytest

from tests.support.live import Api, login


def test_admin_creates_lists_and_reads_users(admin, unique):
    username = unique("dev")
    created = admin.post("/api/v1/admin/users", json={"username": username, "password": "password123", "role": "developer"})
    assert created.status_code == 201
    user = created.json()
    assert user["username"] == username and user["role"] == "developer"
    assert "password" not in user and "password_hash" not in user
    listed = admin.get("/api/v1/admin/users", params={"limit": 500}).json()
    assert username in [u["username"] for u in listed["users"]]
    assert admin.get(f"/api/v1/admin/users/{user['id']}").json()["username"] == username


def test_listing_pages_with_a_cursor(admin, unique):
    for _ in range(3):
        admin.post("/api/v1/admin/users", json={"username": unique("page"), "password": "password123", "role": "viewer"})
    first = admin.get("/api/v1/admin/users", params={"limit": 2}).json()
    assert len(first["users"]) == 2 and first["next_cursor"]
    second = admin.get("/api/v1/admin/users", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert {u["id"] for u in first["users"]}.isdisjoint({u["id"] for u in second["users"]})


@pytest.mark.parametrize("limit", ["0", "501", "ten"])
def test_bad_limit_answers_422(admin, limit):
    response = admin.get("/api/v1/admin/users", params={"limit": limit})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "limit"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"username": "", "password": "password123", "role": "viewer"}, "username"),
        ({"username": "has space", "password": "password123", "role": "viewer"}, "username"),
        ({"username": "okname", "password": "short", "role": "viewer"}, "password"),
        ({"username": "okname", "password": "password123", "role": "root"}, "role"),
        ({"username": 5, "password": "password123", "role": "viewer"}, "username"),
    ],
)
def test_invalid_user_fields_answer_422_with_field(admin, body, field):
    response = admin.post("/api/v1/admin/users", json=body)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_failed" and error["field"] == field


def test_duplicate_username_answers_409(admin, unique):
    username = unique("dup")
    body = {"username": username, "password": "password123", "role": "viewer"}
    assert admin.post("/api/v1/admin/users", json=body).status_code == 201
    response = admin.post("/api/v1/admin/users", json=body)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "username_taken"


def test_patch_changes_role_and_password(admin, server, unique):
    username = unique("patch")
    user = admin.post("/api/v1/admin/users", json={"username": username, "password": "password123", "role": "viewer"}).json()
    response = admin.patch(f"/api/v1/admin/users/{user['id']}", json={"role": "developer", "password": "new-password-1"})
    assert response.status_code == 200 and response.json()["role"] == "developer"
    api = login(server.url, username, "new-password-1")
    assert api.get("/api/v1/auth/me").json()["user"]["role"] == "developer"


def test_patch_rejects_unknown_fields(admin, make_user):
    user, _ = make_user("viewer")
    response = admin.patch(f"/api/v1/admin/users/{user['id']}", json={"is_superuser": True})
    assert response.status_code == 422


@pytest.mark.parametrize("role", ["developer", "viewer"])
def test_non_admins_get_403_with_the_capability(make_user, role):
    _, api = make_user(role)
    for method, path in [("GET", "/api/v1/admin/users"), ("POST", "/api/v1/admin/users"), ("DELETE", "/api/v1/admin/users/1")]:
        response = api.request(method, path, json={})
        assert response.status_code == 403, (method, path)
        error = response.json()["error"]
        assert error["code"] == "forbidden" and error["capability"] == "users.manage"


def test_unknown_user_answers_404(admin):
    response = admin.get("/api/v1/admin/users/999999")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_deleted_users_tokens_answer_401(admin, make_user):
    user, api = make_user("developer")
    assert api.get("/api/v1/auth/me").status_code == 200
    assert admin.delete(f"/api/v1/admin/users/{user['id']}").status_code == 204
    assert api.get("/api/v1/auth/me").status_code == 401
    assert admin.get(f"/api/v1/admin/users/{user['id']}").status_code == 404


def test_the_last_admin_cannot_be_deleted_or_demoted(admin, make_user):
    admins = [u for u in admin.get("/api/v1/admin/users", params={"limit": 500}).json()["users"] if u["role"] == "admin"]
    # Demote every other admin so that exactly one is left.
    me = admin.get("/api/v1/auth/me").json()["user"]
    for other in admins:
        if other["id"] != me["id"]:
            assert admin.patch(f"/api/v1/admin/users/{other['id']}", json={"role": "viewer"}).status_code == 200
    response = admin.delete(f"/api/v1/admin/users/{me['id']}")
    assert response.status_code == 409 and response.json()["error"]["code"] == "last_admin"
    response = admin.patch(f"/api/v1/admin/users/{me['id']}", json={"role": "developer"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "last_admin"
    # With a second admin, the first may be demoted.
    second, second_api = make_user("admin")
    assert second_api.patch(f"/api/v1/admin/users/{me['id']}", json={"role": "developer"}).status_code == 200
    assert second_api.patch(f"/api/v1/admin/users/{me['id']}", json={"role": "admin"}).status_code == 200


def test_unknown_api_path_answers_json_404(admin):
    response = admin.get("/api/v1/admin/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_wrong_method_answers_405_with_allow(admin):
    response = admin.put("/api/v1/auth/me")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert "GET" in response.headers["Allow"]


def test_oversized_body_answers_413(admin):
    response = admin.post("/api/v1/admin/users", data=b"x" * (1_048_576 + 10), headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def test_bearer_scheme_is_required(server, admin):
    response = Api(server.url).get("/api/v1/auth/me", headers={"Authorization": f"Token {admin.token}"})
    assert response.status_code == 401
