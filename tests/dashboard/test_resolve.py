"""The Apps page's "Which app answers this URL?" box."""
import pytest
import requests


@pytest.fixture(scope="module")
def shop(server, admin):
    """An app claiming shop-<id>.test exactly and *.shop-<id>.test, with three routes."""
    slug = "resolve-shop"
    app = admin.post("/api/v1/admin/apps", json={"slug": slug}).json()
    base = f"/api/v1/admin/apps/{slug}"
    for pattern in ("shop.resolve.test", "*.shop.resolve.test"):
        assert admin.post(base + "/domains", json={"pattern": pattern}).status_code == 201
    script = admin.post("/api/v1/admin/scripts", json={"app_id": app["id"], "name": "orders", "source": "return 1"})
    script_id = script.json()["id"]
    routes = {}
    for method, path, host in (
        ("*", "/orders/:id", None), ("GET", "/orders/:id", None), ("GET", "/orders/new", None), ("PUT", "/put-only", None)
    ):
        made = admin.post(base + "/routes", json={"method": method, "path": path, "host": host, "script_id": script_id})
        assert made.status_code == 201, made.text
        routes[(method, path)] = made.json()["id"]
    disabled = admin.post(base + "/routes", json={"method": "POST", "path": "/off", "script_id": script_id}).json()
    admin.patch(f"/api/v1/admin/routes/{disabled['id']}", json={"enabled": False})
    return slug, routes


def test_the_box_names_app_claim_route_script_and_the_routes_passed_over(dash, shop):
    slug, routes = shop
    answer = dash.get("/admin/resolve", params={"url": "https://shop.resolve.test/orders/7?x=1"}, htmx=True)
    assert answer.status_code == 200
    text = answer.text
    assert f">{slug}</a>" in text and "exact claim <code>shop.resolve.test</code>" in text
    assert "<code>GET /orders/:id</code>" in text and ">orders</a>" in text
    assert "<code>id = 7</code>" in text
    assert "&#39;*&#39; loses to a route for the exact method" in text
    assert "its path does not match" in text  # /orders/new
    assert "disabled" in text  # POST /off


def test_a_wildcard_claim_a_405_and_an_unclaimed_host_are_told_apart(dash, shop):
    wildcard = dash.get("/admin/resolve", params={"url": "eu.shop.resolve.test/orders/new"}, htmx=True).text
    assert "wildcard claim <code>*.shop.resolve.test</code>" in wildcard and "<code>GET /orders/new</code>" in wildcard
    refused = dash.get("/admin/resolve", params={"url": "http://shop.resolve.test/put-only", "method": "DELETE"}, htmx=True).text
    assert "405 <code>method_not_allowed</code> (Allow: PUT)" in refused
    unknown = dash.get("/admin/resolve", params={"url": "http://nobody.invalid/"}, htmx=True).text
    assert "claimed by no app" in unknown and "unknown_host" in unknown
    garbage = dash.get("/admin/resolve", params={"url": "ftp://x/"}, htmx=True).text
    assert "Paste a URL" in garbage


def test_a_viewer_may_ask_and_the_whole_page_works_without_htmx(login_as, shop):
    viewer = login_as("viewer")
    page = viewer.get("/admin/resolve", params={"url": "shop.resolve.test/orders/7"})
    assert page.status_code == 200
    assert "Which app answers this URL?" in page.text and "<code>GET /orders/:id</code>" in page.text


def test_the_box_needs_a_login(server):
    answer = requests.get(server.url + "/admin/resolve", params={"url": "x.test"}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302 and "/admin/login" in answer.headers["Location"]
