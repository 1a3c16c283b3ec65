"""docs/api.md §3: tokens, identity, throttling."""
import uuid

from picloud.auth import ROLE_CAPABILITIES
from picloud.models import ApiToken, User
from tests.conftest import ADMIN_PASSWORD


def test_token_is_issued_for_good_credentials(anonymous):
    response = anonymous.post(
        "/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD, "name": "ci"}
    )
    assert response.status_code == 201
    body = response.json()
    assert set(body) >= {"id", "name", "token", "created_at"}
    assert body["name"] == "ci"
    assert body["created_at"].endswith("Z")


def test_tokens_and_passwords_are_stored_hashed(admin, database):
    row = ApiToken.select().order_by(ApiToken.id.desc()).first()
    assert admin.token not in row.token_hash
    assert len(row.token_hash) == 64
    user = User.get(User.username == "admin")
    assert user.password_hash.startswith("$argon2")
    assert ADMIN_PASSWORD not in user.password_hash


def test_bad_credentials_answer_401(anonymous):
    response = anonymous.post("/api/v1/auth/token", json={"username": "admin", "password": "nope-" + uuid.uuid4().hex})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_unknown_user_answers_401(anonymous, unique):
    response = anonymous.post("/api/v1/auth/token", json={"username": unique("ghost"), "password": "whatever12"})
    assert response.status_code == 401


def test_bad_json_answers_400(anonymous):
    response = anonymous.post("/api/v1/auth/token", data=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_json_that_is_not_an_object_answers_400(anonymous):
    response = anonymous.post("/api/v1/auth/token", json=["admin"])
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_throttling_locks_a_username_after_ten_failures(anonymous, make_user, server):
    user, _ = make_user("viewer")
    for _ in range(10):
        response = anonymous.post("/api/v1/auth/token", json={"username": user["username"], "password": "wrong-password"})
        assert response.status_code == 401
    # Now even the right password is refused until the window passes.
    response = anonymous.post("/api/v1/auth/token", json={"username": user["username"], "password": "wrong-password"})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "too_many_requests"
    assert 0 < int(response.headers["Retry-After"]) <= 300
    # Other usernames are not affected.
    other = anonymous.post("/api/v1/auth/token", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert other.status_code == 201


def test_throttling_ignores_the_password_once_locked(anonymous, server, unique, admin):
    username, password = unique("locked"), "right-password-1"
    admin.post("/api/v1/admin/users", json={"username": username, "password": password, "role": "viewer"})
    for _ in range(10):
        anonymous.post("/api/v1/auth/token", json={"username": username, "password": "bad-password"})
    response = anonymous.post("/api/v1/auth/token", json={"username": username, "password": password})
    assert response.status_code == 429


def test_admin_routes_need_a_bearer_token(anonymous):
    for path in ("/api/v1/auth/me", "/api/v1/admin/users", "/api/v1/auth/tokens"):
        response = anonymous.get(path)
        assert response.status_code == 401, path
        assert response.json()["error"]["code"] == "unauthorized"


def test_a_garbage_token_answers_401(server):
    from tests.support.live import Api

    response = Api(server.url, "pc_not-a-real-token").get("/api/v1/auth/me")
    assert response.status_code == 401


def test_me_lists_the_role_capabilities(make_user):
    for role in ("admin", "developer", "viewer"):
        user, api = make_user(role)
        body = api.get("/api/v1/auth/me").json()
        assert body["user"] == {"id": user["id"], "username": user["username"], "role": role}
        assert set(body["capabilities"]) == ROLE_CAPABILITIES[role]


def test_viewer_and_developer_capabilities_match_the_table():
    assert ROLE_CAPABILITIES["viewer"] == {"read", "logs.read", "data.read", "metrics.read"}
    assert "users.manage" not in ROLE_CAPABILITIES["developer"]
    assert "apps.manage" not in ROLE_CAPABILITIES["developer"]
    assert "domains.manage" not in ROLE_CAPABILITIES["developer"]
    assert "triggers.manage" in ROLE_CAPABILITIES["developer"]


def test_tokens_are_listed_and_revoked(make_user, server):
    from tests.support.live import Api

    _, api = make_user("viewer")
    listed = api.get("/api/v1/auth/tokens")
    assert listed.status_code == 200
    tokens = listed.json()["tokens"]
    assert len(tokens) == 1 and "token" not in tokens[0]
    assert listed.json()["next_cursor"] is None
    assert api.delete(f"/api/v1/auth/tokens/{tokens[0]['id']}").status_code == 204
    assert Api(server.url, api.token).get("/api/v1/auth/me").status_code == 401


def test_a_user_cannot_revoke_another_users_token(make_user, admin):
    _, api = make_user("developer")
    admin_tokens = admin.get("/api/v1/auth/tokens").json()["tokens"]
    response = api.delete(f"/api/v1/auth/tokens/{admin_tokens[0]['id']}")
    assert response.status_code == 404
    assert admin.get("/api/v1/auth/me").status_code == 200


def test_token_use_is_recorded(make_user):
    _, api = make_user("viewer")
    api.get("/api/v1/auth/me")
    tokens = api.get("/api/v1/auth/tokens").json()["tokens"]
    assert tokens[0]["last_used_at"] is not None and tokens[0]["last_used_at"].endswith("Z")
