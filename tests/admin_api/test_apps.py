"""docs/api.md §4: apps, slugs, slug history and redirects, slug:check, deletion."""
import pytest

from picloud.models import App, AppSlugHistory, Domain, Execution, Route, Script, ScriptVersion
from tests.support.apps import site  # noqa: F401  (fixture)


def create(admin, slug, **fields):
    return admin.post("/api/v1/admin/apps", json={"slug": slug, **fields})


def test_create_show_and_list_apps(admin, unique):
    slug = unique("shop")
    response = create(admin, slug, name="Shop", description="Sells things")
    assert response.status_code == 201
    app = response.json()
    assert set(app) == {
        "id", "slug", "name", "description", "egress_hosts", "max_concurrency", "created_at", "updated_at", "domains"
    }
    assert app["max_concurrency"] is None
    assert (app["slug"], app["name"], app["description"], app["domains"]) == (slug, "Shop", "Sells things", [])
    assert app["created_at"].endswith("Z")
    assert admin.get(f"/api/v1/admin/apps/{slug}").json()["id"] == app["id"]
    assert admin.get(f"/api/v1/admin/apps/{app['id']}").json()["slug"] == slug
    listed = admin.get("/api/v1/admin/apps", params={"limit": 500}).json()
    assert listed["next_cursor"] is None or isinstance(listed["next_cursor"], str)
    assert slug in [a["slug"] for a in listed["apps"]]


def test_name_defaults_to_the_slug(admin, unique):
    slug = unique("noname")
    assert create(admin, slug).json()["name"] == slug


def test_listing_pages_with_a_cursor(admin, unique):
    for _ in range(3):
        create(admin, unique("page"))
    first = admin.get("/api/v1/admin/apps", params={"limit": 2}).json()
    assert len(first["apps"]) == 2 and first["next_cursor"]
    second = admin.get("/api/v1/admin/apps", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert {a["id"] for a in first["apps"]}.isdisjoint({a["id"] for a in second["apps"]})


def test_listed_apps_carry_their_domains(admin, site):  # noqa: F811
    listed = admin.get("/api/v1/admin/apps", params={"limit": 500}).json()["apps"]
    mine = next(a for a in listed if a["id"] == site.app["id"])
    assert [d["pattern"] for d in mine["domains"]] == [site.host]


@pytest.mark.parametrize(
    "slug", ["", "-a", "a-", "UPPER", "has_underscore", "a" * 64, "with space", "é", 5, None]
)
def test_invalid_slugs_answer_422(admin, slug):
    response = create(admin, slug)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "slug"


@pytest.mark.parametrize("slug", ["admin", "api", "internal"])
def test_reserved_slugs_answer_422(admin, slug):
    response = create(admin, slug)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "slug"


def test_bad_fields_answer_422(admin, unique):
    assert create(admin, unique("x"), name=5).json()["error"]["field"] == "name"
    assert create(admin, unique("x"), force="yes").json()["error"]["field"] == "force"
    assert create(admin, unique("x"), colour="red").status_code == 422


def test_bad_json_answers_400(admin):
    response = admin.post("/api/v1/admin/apps", data="{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"
    assert admin.post("/api/v1/admin/apps", json=["slug"]).status_code == 400


def test_a_live_slug_is_taken(admin, unique):
    slug = unique("dup")
    first = create(admin, slug).json()
    response = create(admin, slug, force=True)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "slug_taken"
    assert error["held_by"] == {"id": first["id"], "slug": slug}


def test_unknown_app_answers_404(admin):
    for path in ("/api/v1/admin/apps/no-such-app", "/api/v1/admin/apps/999999999"):
        response = admin.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_patch_changes_name_and_description(admin, unique):
    app = create(admin, unique("edit")).json()
    response = admin.patch(f"/api/v1/admin/apps/{app['id']}", json={"name": "New", "description": "Desc"})
    assert response.status_code == 200
    assert (response.json()["name"], response.json()["description"]) == ("New", "Desc")
    assert admin.patch(f"/api/v1/admin/apps/{app['id']}", json={"owner": "me"}).status_code == 422


def test_patch_sets_and_clears_max_concurrency(admin, unique):
    app = create(admin, unique("cap")).json()
    response = admin.patch(f"/api/v1/admin/apps/{app['id']}", json={"max_concurrency": 3})
    assert response.status_code == 200
    assert response.json()["max_concurrency"] == 3
    assert admin.get(f"/api/v1/admin/apps/{app['id']}").json()["max_concurrency"] == 3
    cleared = admin.patch(f"/api/v1/admin/apps/{app['id']}", json={"max_concurrency": None})
    assert cleared.json()["max_concurrency"] is None


@pytest.mark.parametrize("value", [0, -1, 1.5, "2", True, [1], 2**31])
def test_a_bad_max_concurrency_answers_422_and_changes_nothing(admin, unique, value):
    app = create(admin, unique("badcap")).json()
    admin.patch(f"/api/v1/admin/apps/{app['id']}", json={"max_concurrency": 2})
    response = admin.patch(f"/api/v1/admin/apps/{app['id']}", json={"name": "Changed", "max_concurrency": value})
    assert response.status_code == 422
    error = response.json()["error"]
    assert (error["code"], error["field"]) == ("validation_failed", "max_concurrency")
    kept = admin.get(f"/api/v1/admin/apps/{app['id']}").json()
    assert (kept["name"], kept["max_concurrency"]) == (app["name"], 2)


def test_rename_keeps_a_permanent_redirect(admin, unique):
    old, new = unique("old"), unique("new")
    app = create(admin, old).json()
    renamed = admin.patch(f"/api/v1/admin/apps/{old}", json={"slug": new})
    assert renamed.status_code == 200 and renamed.json()["slug"] == new

    response = admin.get(f"/api/v1/admin/apps/{old}")
    assert response.status_code == 308
    assert response.headers["Location"] == f"/api/v1/admin/apps/{new}"

    response = admin.get(f"/api/v1/admin/apps/{old}/routes", params={"limit": 5})
    assert response.status_code == 308
    assert response.headers["Location"] == f"/api/v1/admin/apps/{new}/routes?limit=5"

    response = admin.get("/api/v1/admin/scripts", params={"app": old, "limit": 5})
    assert response.status_code == 308
    assert response.headers["Location"] == f"/api/v1/admin/scripts?app={new}&limit=5"

    followed = admin.get(f"/api/v1/admin/apps/{old}", allow_redirects=True)
    assert followed.status_code == 200 and followed.json()["id"] == app["id"]


def test_redirect_keeps_an_escaped_sub_path(admin, unique):
    old, new = unique("esc"), unique("esc")
    create(admin, old)
    admin.patch(f"/api/v1/admin/apps/{old}", json={"slug": new})
    response = admin.get(f"/api/v1/admin/apps/{old}/kv/100%25%20sure")
    assert response.status_code == 308
    assert response.headers["Location"] == f"/api/v1/admin/apps/{new}/kv/100%25%20sure"


def test_former_slug_in_history_needs_force(admin, unique):
    old, new = unique("hist"), unique("cur")
    holder = create(admin, old).json()
    admin.patch(f"/api/v1/admin/apps/{old}", json={"slug": new})

    response = create(admin, old)
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "slug_in_history"
    assert error["held_by"] == {"id": holder["id"], "slug": new}

    taker = create(admin, old, force=True)
    assert taker.status_code == 201
    # The history row moved: the old slug is now the new app, no redirect.
    shown = admin.get(f"/api/v1/admin/apps/{old}")
    assert shown.status_code == 200 and shown.json()["id"] == taker.json()["id"]


def test_rename_onto_another_apps_history_needs_force(admin, unique):
    a_old, a_new, b = unique("a"), unique("a2"), unique("b")
    create(admin, a_old)
    admin.patch(f"/api/v1/admin/apps/{a_old}", json={"slug": a_new})
    create(admin, b)
    response = admin.patch(f"/api/v1/admin/apps/{b}", json={"slug": a_old})
    assert response.status_code == 409 and response.json()["error"]["code"] == "slug_in_history"
    forced = admin.patch(f"/api/v1/admin/apps/{b}", json={"slug": a_old, "force": True})
    assert forced.status_code == 200 and forced.json()["slug"] == a_old
    # b's own old slug now redirects to it.
    assert admin.get(f"/api/v1/admin/apps/{b}").headers["Location"] == f"/api/v1/admin/apps/{a_old}"


def test_rename_onto_a_live_slug_is_refused_even_with_force(admin, unique):
    a, b = unique("a"), unique("b")
    create(admin, a)
    holder = create(admin, b).json()
    response = admin.patch(f"/api/v1/admin/apps/{a}", json={"slug": b, "force": True})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "slug_taken"
    assert response.json()["error"]["held_by"]["id"] == holder["id"]


def test_an_app_takes_back_its_own_former_slug(admin, unique):
    old, new = unique("back"), unique("away")
    app = create(admin, old).json()
    admin.patch(f"/api/v1/admin/apps/{old}", json={"slug": new})
    back = admin.patch(f"/api/v1/admin/apps/{new}", json={"slug": old})
    assert back.status_code == 200 and back.json()["slug"] == old
    assert admin.get(f"/api/v1/admin/apps/{old}").json()["id"] == app["id"]
    assert admin.get(f"/api/v1/admin/apps/{new}").headers["Location"] == f"/api/v1/admin/apps/{old}"


def check(admin, slug, app=None):
    path = f"/api/v1/admin/apps/{app}/slug:check" if app else "/api/v1/admin/apps/slug:check"
    response = admin.post(path, json={"slug": slug})
    assert response.status_code == 200, response.text
    return response.json()


def test_slug_check_for_a_new_app(admin, unique):
    free, live, old, current = unique("free"), unique("live"), unique("old"), unique("cur")
    live_app = create(admin, live).json()
    old_app = create(admin, old).json()
    admin.patch(f"/api/v1/admin/apps/{old}", json={"slug": current})

    assert check(admin, free) == {
        "slug": free, "available": True, "reason": None, "held_by": None, "requires_force": False,
    }
    assert check(admin, live) == {
        "slug": live, "available": False, "reason": "taken",
        "held_by": {"id": live_app["id"], "slug": live}, "requires_force": False,
    }
    assert check(admin, old) == {
        "slug": old, "available": False, "reason": "in_history",
        "held_by": {"id": old_app["id"], "slug": current}, "requires_force": True,
    }
    assert check(admin, "Bad Slug")["reason"] == "invalid"
    assert check(admin, "admin")["reason"] == "reserved"


def test_slug_check_for_a_rename(admin, unique):
    old, current = unique("mine"), unique("now")
    create(admin, old)
    admin.patch(f"/api/v1/admin/apps/{old}", json={"slug": current})
    # The app's own current and former slugs are available to it.
    assert check(admin, current, app=current)["available"] is True
    assert check(admin, old, app=current)["available"] is True
    other = unique("other")
    create(admin, other)
    assert check(admin, old, app=other)["reason"] == "in_history"


def test_the_default_app_exists_and_cannot_be_deleted(admin):
    app = admin.get("/api/v1/admin/apps/default").json()
    patterns = {d["pattern"] for d in app["domains"]}
    assert {"localhost", "127.0.0.1"} <= patterns
    response = admin.delete("/api/v1/admin/apps/default")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "default_app"


def test_delete_removes_everything_the_app_owns(admin, site, database):  # noqa: F811
    script = site.script()
    site.route("/x", script=script)
    assert site.call("/x").status_code == 200
    app_id = site.app["id"]
    admin.patch(f"/api/v1/admin/apps/{app_id}", json={"slug": site.slug + "-renamed"})

    response = admin.delete(f"/api/v1/admin/apps/{app_id}")
    assert response.status_code == 204
    assert admin.get(f"/api/v1/admin/apps/{app_id}").status_code == 404
    assert admin.get(f"/api/v1/admin/apps/{site.slug}").status_code == 404  # history went too
    assert not App.select().where(App.id == app_id).exists()
    for model in (Domain, Script, ScriptVersion, Route, AppSlugHistory):
        assert not model.select().where(model.app == app_id).exists(), model
    assert not Execution.select().where(Execution.app_id == app_id).exists()
    # Its host is free again and answers unknown_host.
    assert site.call("/x").json()["error"]["code"] == "unknown_host"


@pytest.mark.parametrize("role", ["developer", "viewer"])
def test_only_admins_manage_apps(make_user, admin, unique, role):
    _, api = make_user(role)
    slug = unique("cap")
    create(admin, slug)
    assert api.get("/api/v1/admin/apps").status_code == 200
    assert api.get(f"/api/v1/admin/apps/{slug}").status_code == 200
    for method, path in [
        ("POST", "/api/v1/admin/apps"),
        ("PATCH", f"/api/v1/admin/apps/{slug}"),
        ("DELETE", f"/api/v1/admin/apps/{slug}"),
        ("POST", "/api/v1/admin/apps/slug:check"),
        ("POST", f"/api/v1/admin/apps/{slug}/slug:check"),
    ]:
        response = api.request(method, path, json={"slug": unique("x")})
        assert response.status_code == 403, (method, path)
        assert response.json()["error"]["capability"] == "apps.manage"
    response = api.patch(f"/api/v1/admin/apps/{slug}", json={"max_concurrency": 1})
    assert response.status_code == 403
    assert admin.get(f"/api/v1/admin/apps/{slug}").json()["max_concurrency"] is None


def test_apps_need_a_token(anonymous):
    assert anonymous.get("/api/v1/admin/apps").status_code == 401
