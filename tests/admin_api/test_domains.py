"""docs/api.md §4: domain claims — normalisation, punycode, conflicts, deletion."""
import pytest

from tests.support.apps import other_site, site  # noqa: F401  (fixtures)


def claim(api, app_id, pattern):
    return api.post(f"/api/v1/admin/apps/{app_id}/domains", json={"pattern": pattern})


@pytest.mark.parametrize(
    "raw, pattern, kind",
    [
        ("Shop.{u}.Example.COM", "shop.{u}.example.com", "exact"),
        ("shop.{u}.example.com.", "shop.{u}.example.com", "exact"),
        ("*.{u}.example.com", "*.{u}.example.com", "wildcard"),
        ("bücher.{u}.de", "xn--bcher-kva.{u}.de", "exact"),
        ("*.bücher.{u}.de", "*.xn--bcher-kva.{u}.de", "wildcard"),
    ],
)
def test_patterns_are_normalised(admin, site, unique, raw, pattern, kind):  # noqa: F811
    u = unique("d")
    response = claim(admin, site.app["id"], raw.format(u=u))
    assert response.status_code == 201, response.text
    domain = response.json()
    assert set(domain) == {"id", "app_id", "pattern", "kind", "created_at"}
    assert (domain["pattern"], domain["kind"], domain["app_id"]) == (pattern.format(u=u), kind, site.app["id"])


@pytest.mark.parametrize(
    "raw",
    [
        "http://example.com",
        "example.com:8080",
        "example.com/path",
        "",
        "*",
        "*.",
        "a.*.example.com",
        "exa mple.com",
        "-bad.example.com",
        "a..b",
        5,
        None,
    ],
)
def test_invalid_patterns_answer_422(admin, site, raw):  # noqa: F811
    response = claim(admin, site.app["id"], raw)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "pattern"


def test_listing_shows_the_apps_claims(admin, site):  # noqa: F811
    listed = admin.get(f"/api/v1/admin/apps/{site.slug}/domains").json()
    assert [d["pattern"] for d in listed["domains"]] == [site.host]
    assert listed["next_cursor"] is None


def test_two_apps_cannot_claim_one_pattern(admin, site, other_site):  # noqa: F811
    response = claim(admin, other_site.app["id"], site.host.upper())
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "domain_taken"
    assert error["held_by"] == {"id": site.app["id"], "slug": site.slug}


def test_held_by_names_the_current_slug(admin, site, other_site):  # noqa: F811
    admin.patch(f"/api/v1/admin/apps/{site.app['id']}", json={"slug": site.slug + "-v2"})
    error = claim(admin, other_site.app["id"], site.host).json()["error"]
    assert error["held_by"]["slug"] == site.slug + "-v2"


def test_delete_a_claim(admin, site, unique):  # noqa: F811
    extra = claim(admin, site.app["id"], f"{unique('x')}.test").json()
    response = admin.delete(f"/api/v1/admin/apps/{site.app['id']}/domains/{extra['id']}")
    assert response.status_code == 204
    patterns = [d["pattern"] for d in admin.get(f"/api/v1/admin/apps/{site.app['id']}/domains").json()["domains"]]
    assert extra["pattern"] not in patterns


def test_a_domain_a_route_names_cannot_be_deleted(admin, site):  # noqa: F811
    domain = admin.get(f"/api/v1/admin/apps/{site.app['id']}/domains").json()["domains"][0]
    route = site.route("/hosted", host=site.host)
    response = admin.delete(f"/api/v1/admin/apps/{site.app['id']}/domains/{domain['id']}")
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "domain_in_use" and error["routes"] == [route["id"]]
    admin.delete(f"/api/v1/admin/routes/{route['id']}")
    assert admin.delete(f"/api/v1/admin/apps/{site.app['id']}/domains/{domain['id']}").status_code == 204


def test_a_wildcard_covering_a_route_host_cannot_be_deleted(admin, site, unique):  # noqa: F811
    base = f"{unique('w')}.test"
    wildcard = claim(admin, site.app["id"], f"*.{base}").json()
    route = site.route("/w", host=f"api.{base}")
    response = admin.delete(f"/api/v1/admin/apps/{site.app['id']}/domains/{wildcard['id']}")
    assert response.status_code == 409 and response.json()["error"]["routes"] == [route["id"]]
    exact = claim(admin, site.app["id"], f"api.{base}").json()
    assert admin.delete(f"/api/v1/admin/apps/{site.app['id']}/domains/{wildcard['id']}").status_code == 204
    assert admin.delete(f"/api/v1/admin/apps/{site.app['id']}/domains/{exact['id']}").status_code == 409


def test_another_apps_domain_is_not_found(admin, site, other_site):  # noqa: F811
    domain = admin.get(f"/api/v1/admin/apps/{site.app['id']}/domains").json()["domains"][0]
    response = admin.delete(f"/api/v1/admin/apps/{other_site.app['id']}/domains/{domain['id']}")
    assert response.status_code == 404
    assert admin.get(f"/api/v1/admin/apps/{site.app['id']}/domains").json()["domains"] == [domain]


@pytest.mark.parametrize("role", ["developer", "viewer"])
def test_only_admins_manage_domains(make_user, site, role):  # noqa: F811
    _, api = make_user(role)
    assert api.get(f"/api/v1/admin/apps/{site.app['id']}/domains").status_code == 200
    response = claim(api, site.app["id"], "x." + site.host)
    assert response.status_code == 403 and response.json()["error"]["capability"] == "domains.manage"
    response = api.delete(f"/api/v1/admin/apps/{site.app['id']}/domains/1")
    assert response.status_code == 403
