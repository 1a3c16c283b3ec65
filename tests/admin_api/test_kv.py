"""docs/api.md §7: the KV admin API — get, put, delete, list, and every error."""
import json

import pytest

from tests.data.conftest import kv_url
from tests.support.apps import other_site, site  # noqa: F401  (fixtures)


def put(site, key, value):
    # Not json=: requests sends no body at all for json=None.
    body = json.dumps(value).encode()
    response = site.api.put(kv_url(site, key), data=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    return response.json()


@pytest.mark.parametrize("value", ["text", 42, 1.5, True, None, [1, None, "x"], {"a": {"b": [1, 2]}}, {}, []])
def test_put_then_get_any_json_value(site, value):
    stored = put(site, "k", value)
    assert stored["key"] == "k" and stored["value"] == value
    assert stored["updated_at"].endswith("Z")
    shown = site.api.get(kv_url(site, "k"))
    assert shown.status_code == 200
    assert shown.json() == stored


def test_put_answers_200_for_new_and_existing_keys(site):
    first = put(site, "counter", 1)
    second = put(site, "counter", 2)
    assert second["value"] == 2 and second["updated_at"] >= first["updated_at"]
    assert site.api.get(kv_url(site, "counter")).json()["value"] == 2


def test_delete_answers_204_then_404(site):
    put(site, "gone", "soon")
    deleted = site.api.delete(kv_url(site, "gone"))
    assert deleted.status_code == 204 and deleted.text == ""
    assert site.api.get(kv_url(site, "gone")).status_code == 404
    again = site.api.delete(kv_url(site, "gone"))
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "not_found"


def test_get_of_a_missing_key_is_404(site):
    response = site.api.get(kv_url(site, "never-set"))
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "key",
    ["a/b", "/leading", "double//slash/", "with space", "50%", "q?x=1#frag", "ünïcødé ✓", "é" * 256, "x" * 512, "a.b"],
)
def test_keys_may_hold_any_character_when_url_encoded(site, key):
    put(site, key, key)
    shown = site.api.get(kv_url(site, key))
    assert shown.status_code == 200, shown.text
    assert shown.json()["key"] == key and shown.json()["value"] == key
    listed = site.api.get(kv_url(site)).json()["items"]
    assert [item["key"] for item in listed] == [key]
    assert site.api.delete(kv_url(site, key)).status_code == 204


@pytest.mark.parametrize("key", ["x" * 513, "é" * 257, "nul\x00byte"])
def test_bad_keys_are_422_on_key(site, key):
    response = site.api.put(kv_url(site, key), json=1)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_failed" and error["field"] == "key"
    assert site.api.get(kv_url(site)).json()["items"] == []


def test_the_body_must_be_json(site):
    empty = site.api.put(kv_url(site, "k"), data=b"")
    assert empty.status_code == 400 and empty.json()["error"]["code"] == "bad_request"
    broken = site.api.put(kv_url(site, "k"), data=b"{nope", headers={"Content-Type": "application/json"})
    assert broken.status_code == 400 and broken.json()["error"]["code"] == "bad_request"
    nan = site.api.put(kv_url(site, "k"), data=b"[NaN]", headers={"Content-Type": "application/json"})
    assert nan.status_code == 422 and nan.json()["error"]["field"] == "value"
    deep = site.api.put(kv_url(site, "k"), data=b"[" * 5000 + b"]" * 5000)
    assert deep.status_code == 422 and deep.json()["error"]["field"] == "value"
    assert site.api.get(kv_url(site, "k")).status_code == 404


def test_a_body_over_the_request_limit_is_413(site):
    response = site.api.put(kv_url(site, "big"), json="x" * (1024 * 1024 + 10))
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert site.api.get(kv_url(site, "big")).status_code == 404


def test_list_in_byte_order_with_values(site):
    for key in ("b", "a/2", "a/10", "A", "ä", "a"):
        put(site, key, {"k": key})
    body = site.api.get(kv_url(site)).json()
    assert [item["key"] for item in body["items"]] == ["A", "a", "a/10", "a/2", "b", "ä"]
    assert body["items"][0]["value"] == {"k": "A"} and body["items"][0]["updated_at"].endswith("Z")
    assert body["next_cursor"] is None


def test_list_by_prefix(site):
    for key in ("user/1", "user/2", "user", "users", "usr/1", "user/\U0010ffff", "user0"):
        put(site, key, 1)
    keys = lambda prefix: [i["key"] for i in site.api.get(kv_url(site), params={"prefix": prefix}).json()["items"]]
    assert keys("user/") == ["user/1", "user/2", "user/\U0010ffff"]
    assert keys("user") == ["user", "user/1", "user/2", "user/\U0010ffff", "user0", "users"]
    assert keys("nothing") == []
    assert len(keys("")) == 7


def test_list_pages_with_limit_and_cursor(site):
    expected = [f"k{i:02}" for i in range(7)]
    for key in expected:
        put(site, key, key)
    seen, cursor, pages = [], None, 0
    while True:
        params = {"limit": 3, "prefix": "k", **({"cursor": cursor} if cursor else {})}
        body = site.api.get(kv_url(site), params=params).json()
        seen += [item["key"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == expected and pages == 3


@pytest.mark.parametrize("params, field", [({"limit": 0}, "limit"), ({"limit": 501}, "limit"), ({"limit": "x"}, "limit"), ({"cursor": "%%%"}, "cursor"), ({"cursor": "MQ"}, "cursor")])
def test_bad_list_parameters_are_422(site, params, field):
    response = site.api.get(kv_url(site), params=params)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_same_key_in_two_apps_is_two_values(site, other_site):
    put(site, "shared", "mine")
    put(other_site, "shared", "theirs")
    put(site, "only-mine", 1)
    assert site.api.get(kv_url(site, "shared")).json()["value"] == "mine"
    assert other_site.api.get(kv_url(other_site, "shared")).json()["value"] == "theirs"
    assert other_site.api.get(kv_url(other_site, "only-mine")).status_code == 404
    assert other_site.api.delete(kv_url(other_site, "only-mine")).status_code == 404
    assert [i["key"] for i in other_site.api.get(kv_url(other_site)).json()["items"]] == ["shared"]
    assert site.api.get(kv_url(site, "only-mine")).status_code == 200


def test_by_slug_unknown_app_and_former_slug(site):
    put(site, "a/b", 1)
    by_slug = site.api.get(f"/api/v1/admin/apps/{site.slug}/kv/a%2Fb")
    assert by_slug.status_code == 200 and by_slug.json()["value"] == 1
    missing = site.api.get("/api/v1/admin/apps/no-such-app-here/kv")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    old = site.slug
    assert site.api.patch(f"/api/v1/admin/apps/{site.app['id']}", json={"slug": old + "-new"}).status_code == 200
    moved = site.api.get(f"/api/v1/admin/apps/{old}/kv", params={"prefix": "a"})
    assert moved.status_code == 308
    assert moved.headers["Location"] == f"/api/v1/admin/apps/{old}-new/kv?prefix=a"
    key_moved = site.api.get(f"/api/v1/admin/apps/{old}/kv/a%2Fb")
    assert key_moved.status_code == 308
    followed = site.api.get(key_moved.headers["Location"])
    assert followed.status_code == 200 and followed.json()["key"] == "a/b"


def test_capabilities(site, make_user, anonymous):
    put(site, "k", 1)
    _, viewer = make_user("viewer")
    assert viewer.get(kv_url(site)).status_code == 200
    assert viewer.get(kv_url(site, "k")).json()["value"] == 1
    for response in (viewer.put(kv_url(site, "k"), json=2), viewer.delete(kv_url(site, "k"))):
        assert response.status_code == 403
        assert response.json()["error"] == {**response.json()["error"], "code": "forbidden", "capability": "data.write"}
    _, developer = make_user("developer")
    assert developer.put(kv_url(site, "k"), json=3).status_code == 200
    assert anonymous.get(kv_url(site)).status_code == 401
    assert anonymous.put(kv_url(site, "k"), json=4).status_code == 401
    assert site.api.get(kv_url(site, "k")).json()["value"] == 3
