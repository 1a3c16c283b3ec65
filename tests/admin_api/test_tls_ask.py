"""docs/api.md §16: GET /api/v1/tls/ask answers Caddy's on-demand TLS question."""
import pytest

from tests.support.apps import site  # noqa: F401  (fixture)


def ask(api, domain):
    return api.get("/api/v1/tls/ask", params={"domain": domain})


@pytest.fixture
def wildcard(admin, site, unique):  # noqa: F811
    """A wildcard claim of the site's app: ``*.<unique>.example``."""
    base = f"{unique('w')}.example"
    response = admin.post(f"/api/v1/admin/apps/{site.app['id']}/domains", json={"pattern": f"*.{base}"})
    assert response.status_code == 201, response.text
    return base


def test_an_exactly_claimed_name_is_allowed(anonymous, site):  # noqa: F811
    response = ask(anonymous, site.host)
    assert response.status_code == 200, response.text


def test_a_name_is_matched_like_a_host_header(anonymous, site):  # noqa: F811
    assert ask(anonymous, site.host.upper()).status_code == 200
    assert ask(anonymous, site.host + ".").status_code == 200


def test_a_name_under_a_wildcard_is_allowed(anonymous, wildcard):
    assert ask(anonymous, f"a.{wildcard}").status_code == 200
    assert ask(anonymous, f"a.b.{wildcard}").status_code == 200


def test_the_apex_of_a_wildcard_is_refused(anonymous, wildcard):
    response = ask(anonymous, wildcard)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_host"


def test_an_unclaimed_name_is_refused(anonymous, unique):
    response = ask(anonymous, f"{unique('nobody')}.example")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "unknown_host"


def test_a_released_claim_is_refused_at_once(admin, anonymous, site):  # noqa: F811
    domain_id = admin.get(f"/api/v1/admin/apps/{site.app['id']}/domains").json()["domains"][0]["id"]
    assert admin.delete(f"/api/v1/admin/apps/{site.app['id']}/domains/{domain_id}").status_code == 204
    assert ask(anonymous, site.host).status_code == 404


@pytest.mark.parametrize("query", ["", "?domain=", "?domain=%20"])
def test_no_domain_is_a_bad_request(anonymous, query):
    response = anonymous.get("/api/v1/tls/ask" + query)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "bad_request"


def test_a_name_that_is_no_host_is_refused(anonymous):
    assert ask(anonymous, "not a host/..").status_code == 404
