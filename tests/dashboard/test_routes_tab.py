"""The Routes tab: editing a route in place, and the URLs each route answers on."""
import html
import re

import pytest

from picloud.models import App, Route


@pytest.fixture
def routed_app(dash, new_app, new_script, unique):
    """Make an app claiming a domain and a wildcard, with two scripts and one route."""
    slug = new_app()
    host = unique("r") + ".example.com"
    wildcard = "*." + unique("w") + ".example.com"
    for pattern in (host, wildcard):
        assert dash.post(f"/admin/apps/{slug}/domains", {"pattern": pattern}, htmx=True).status_code == 200
    first, second = new_script(slug, "first"), new_script(slug, "second")
    route = add_route(dash, slug, first.id, path="/items/:id")
    return {"slug": slug, "host": host, "wildcard": wildcard, "first": first, "second": second, "route": route}


def add_route(dash, slug, script_id, path, method="GET", host=""):
    form = {"method": method, "path": path, "host": host, "script_id": script_id,
            "dispatch_mode": "sync", "enabled": "y"}
    response = dash.post(f"/admin/apps/{slug}/routes", form, htmx=True)
    assert response.status_code == 200, response.text
    return Route.get(Route.app == App.get(App.slug == slug), Route.path == path, Route.method == method)


def stored(route):
    """Return what a route is, as stored now."""
    return Route.get_by_id(route.id).to_dict()


def edit_url(case):
    return f"/admin/apps/{case['slug']}/routes/{case['route'].id}/edit"


def edit_form(case, **changes):
    route = case["route"]
    form = {"method": route.method, "path": route.path, "host": route.host or "",
            "script_id": route.script_id, "dispatch_mode": route.dispatch_mode, "enabled": "y"}
    form.update(changes)
    return {key: value for key, value in form.items() if value is not None}


def test_edit_swaps_the_row_for_a_form_with_the_routes_settings(dash, routed_app):
    case = routed_app
    route = case["route"]
    partial = dash.get(edit_url(case), htmx=True)
    assert partial.status_code == 200
    text = partial.text
    assert text.lstrip().startswith(f'<tr id="route-{route.id}"') and "<html" not in text
    assert 'hx-target="this" hx-swap="outerHTML"' in text
    assert 'name="csrf_token"' in text and 'value="/items/:id"' in text
    assert '<option selected value="GET">' in text
    assert f'<option selected value="{case["first"].id}">first</option>' in text
    assert f'id="route-{route.id}-path"' in text  # apart from the add form's fields
    assert 'list="route-hosts"' in text and "Cancel" in text

    page = dash.get(edit_url(case))  # without JavaScript: the tab, with this row as its form
    assert page.status_code == 200 and "<html" in page.text
    assert 'value="/items/:id"' in page.text and "Add a route" in page.text
    assert f'<option value="{case["wildcard"]}">' in page.text

    cancelled = dash.get(f"/admin/apps/{case['slug']}/routes/{route.id}", htmx=True)
    assert cancelled.status_code == 200 and 'name="path"' not in cancelled.text
    assert cancelled.text.lstrip().startswith(f'<tr id="route-{route.id}"') and ">Edit<" in cancelled.text


def test_saving_changes_the_route_and_answers_its_row(dash, routed_app):
    case = routed_app
    sub = "api." + case["wildcard"][2:]  # a host under the wildcard claim
    form = edit_form(case, method="POST", path="/orders/:order/*rest", host=sub,
                     script_id=case["second"].id, dispatch_mode="async", enabled=None)
    saved = dash.post(edit_url(case), form, htmx=True)
    assert saved.status_code == 200, saved.text
    after = stored(case["route"])
    assert (after["method"], after["path"], after["host"], after["script_id"], after["dispatch_mode"],
            after["enabled"]) == ("POST", "/orders/:order/*rest", sub, case["second"].id, "async", False)
    row = saved.text
    assert row.lstrip().startswith(f'<tr id="route-{case["route"].id}" class="disabled"') and "<form method" in row
    assert 'name="path"' not in row and "second" in row and "async" in row
    assert f"{sub}:" in row and ">{order}</var>" in row and ">{rest...}</var>" in row

    plain = dash.post(edit_url(case), edit_form(case, path="/orders"))  # without JavaScript
    assert plain.status_code == 303 and plain.headers["Location"].endswith(f"/admin/apps/{case['slug']}/routes")
    assert stored(case["route"])["path"] == "/orders"


@pytest.mark.parametrize(
    "changes, status, message",
    [
        ({"path": "/other/:x"}, 409, "already answers these requests"),
        ({"path": "/admin/things"}, 422, "reserved for the platform"),
        ({"path": "/api"}, 422, "reserved for the platform"),
        ({"path": "no-slash"}, 422, "starts with"),
        ({"path": "/a/*rest/b"}, 422, "catch-all"),
        ({"path": ""}, 422, "This field is required"),
        ({"host": "elsewhere.org"}, 422, "claims no domain covering elsewhere.org"),
        ({"host": "bad host!"}, 422, 'class="error"'),
        ({"host": "http://x.example.com/a"}, 422, 'class="error"'),
        ({"method": "BREW"}, 422, "Not a valid choice"),
        ({"script_id": "999999999"}, 422, "Not a valid choice"),
        ({"dispatch_mode": "later"}, 422, "Not a valid choice"),
    ],
)
def test_a_rejected_edit_shows_the_error_in_the_form_and_changes_nothing(dash, routed_app, changes, status, message):
    case = routed_app
    other = add_route(dash, case["slug"], case["first"].id, path="/other/:id")
    before = stored(case["route"])
    if "path" in changes and changes["path"].startswith("/other"):
        assert other.id  # the clash is with this route
    response = dash.post(edit_url(case), edit_form(case, **changes), htmx=True)
    assert response.status_code == status, response.text
    assert message in html.unescape(response.text)
    if status == 409:
        assert f"Route {other.id} (" in response.text
    assert response.text.lstrip().startswith(f'<tr id="route-{case["route"].id}" class="editing"')
    assert 'aria-invalid="true"' in response.text and "<html" not in response.text
    assert stored(case["route"]) == before

    page = dash.post(edit_url(case), edit_form(case, **changes))  # without JavaScript
    assert page.status_code == status and "<html" in page.text and message in html.unescape(page.text)
    assert stored(case["route"]) == before


def test_a_script_of_another_app_cannot_be_chosen(dash, routed_app, new_app, new_script):
    case = routed_app
    foreign = new_script(new_app(), "foreign")
    before = stored(case["route"])
    response = dash.post(edit_url(case), edit_form(case, script_id=foreign.id), htmx=True)
    assert response.status_code == 422 and stored(case["route"]) == before


def test_an_edit_without_the_csrf_token_is_refused(dash, routed_app):
    case = routed_app
    before = stored(case["route"])
    response = dash.post(edit_url(case), edit_form(case, path="/sneaky"), htmx=True, csrf=False)
    assert response.status_code == 400
    assert stored(case["route"]) == before


def test_a_viewer_can_neither_open_nor_save_the_edit_form(dash, routed_app, login_as):
    case = routed_app
    before = stored(case["route"])
    viewer = login_as("viewer")
    tab = viewer.get(f"/admin/apps/{case['slug']}/routes")
    assert tab.status_code == 200 and ">Edit<" not in tab.text
    opened = viewer.get(edit_url(case), htmx=True)
    assert opened.status_code == 403 and "routes.manage" in opened.text
    saved = viewer.post(edit_url(case), edit_form(case, path="/viewer"), htmx=True)
    assert saved.status_code == 403 and "routes.manage" in saved.text
    assert stored(case["route"]) == before
    row = viewer.get(f"/admin/apps/{case['slug']}/routes/{case['route'].id}", htmx=True)
    assert row.status_code == 200 and ">Edit<" not in row.text


def test_a_developer_can_edit(routed_app, login_as):
    case = routed_app
    developer = login_as("developer")
    saved = developer.post(edit_url(case), edit_form(case, path="/developer/:id"), htmx=True)
    assert saved.status_code == 200, saved.text
    assert stored(case["route"])["path"] == "/developer/:id"


def test_a_route_of_another_app_is_not_found(dash, routed_app, new_app):
    case = routed_app
    other = new_app()
    url = f"/admin/apps/{other}/routes/{case['route'].id}/edit"
    assert dash.get(url, htmx=True).status_code == 404
    assert dash.post(url, edit_form(case, path="/stolen"), htmx=True).status_code == 404
    assert stored(case["route"])["path"] == "/items/:id"


def test_urls_show_parameters_as_placeholders_and_link_only_plain_ones(dash, routed_app, server):
    case = routed_app
    slug, host, wildcard = case["slug"], case["host"], case["wildcard"]
    add_route(dash, slug, case["first"].id, path="/plain/page")
    add_route(dash, slug, case["first"].id, path="/files/*rest")
    page = dash.get(f"/admin/apps/{slug}/routes").text
    port = server.url.rsplit(":", 1)[1]
    plain = f"http://{host}:{port}/plain/page"
    assert f'<a class="mono" href="{plain}"' in page  # nothing to fill in: a link
    assert f"http://{host}:{port}/items/" in page
    assert f'href="http://{host}:{port}/items' not in page  # a parameter: no link
    assert '<var class="placeholder" title="path parameter: one segment">{id}</var>' in page
    assert ">{rest...}</var>" in page and f'href="http://{host}:{port}/files' not in page
    urls = re.findall(r'<td class="urls">(.*?)</td>', page, re.S)
    assert len(urls) == 3 and not any(":id" in cell or ":rest" in cell or "*rest" in cell for cell in urls)
    # A wildcard domain leaves its first label open: a placeholder too, never a link.
    assert f'>{{subdomain}}</var>{wildcard[1:]}:{port}/plain/page' in page
    assert f'href="http://subdomain{wildcard[1:]}' not in page


def test_the_script_page_shows_the_same_urls(dash, routed_app, server):
    case = routed_app
    page = dash.get(f"/admin/apps/{case['slug']}/scripts/{case['first'].id}").text
    assert ">{id}</var>" in page and f'href="http://{case["host"]}' not in page
