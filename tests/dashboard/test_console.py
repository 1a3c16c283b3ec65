"""The script page's test console: runs behind a route with its params, and the JSON policy
of ``POST /api/v1/execute`` (docs/api.md §6)."""
import html

import pytest

from tests.dashboard.test_routes_tab import add_route

GREETER = 'return request.params.name .. " at " .. request.path .. " by " .. request.method'


@pytest.fixture
def greeter(dash, new_app, new_script):
    """Make a script behind ``GET /hello/:name`` that answers with its params and path."""
    slug = new_app()
    script = new_script(slug, "greeter")
    saved = dash.post(f"/admin/apps/{slug}/scripts/{script.id}/source", {"source": GREETER}, htmx=True)
    assert saved.status_code == 200, saved.text
    route = add_route(dash, slug, script.id, path="/hello/:name")
    return {"slug": slug, "script": script, "route": route, "url": f"/admin/apps/{slug}/scripts/{script.id}/run"}


def run(dash, case, **fields):
    form = {"method": "GET", "path": "/", "route": "", "params": "", "query": "", "headers": "", "body": ""}
    form.update(fields)
    return dash.post(case["url"], form, htmx=True)


def response_body(page):
    start = page.index('<pre class="response-body">') + len('<pre class="response-body">')
    return html.unescape(page[start:page.index("</pre>", start)])


def test_the_console_offers_the_scripts_routes(dash, greeter):
    page = dash.get(f"/admin/apps/{greeter['slug']}/scripts/{greeter['script'].id}")
    assert page.status_code == 200
    assert f'<option value="{greeter["route"].id}">GET /hello/:name</option>' in page.text
    assert 'name="params"' in page.text


def test_behind_a_route_the_params_come_from_the_path(dash, greeter):
    ran = run(dash, greeter, route=str(greeter["route"].id), path="/hello/pi")
    assert ran.status_code == 200, ran.text
    assert response_body(ran.text) == "pi at /hello/pi by GET"


def test_behind_a_route_typed_params_fill_in_its_path(dash, greeter):
    ran = run(dash, greeter, route=str(greeter["route"].id), params="name=tea")
    assert ran.status_code == 200, ran.text
    assert response_body(ran.text) == "tea at /hello/tea by GET"


def test_without_a_route_the_typed_params_are_the_params(dash, greeter):
    ran = run(dash, greeter, method="POST", path="/anything", params="name=ada&x=1")
    assert ran.status_code == 200, ran.text
    assert response_body(ran.text) == "ada at /anything by POST"


def test_a_path_the_route_does_not_match_without_params_is_refused(dash, greeter):
    ran = run(dash, greeter, route=str(greeter["route"].id), path="/bye/pi")
    assert ran.status_code == 422
    assert "does not match /hello/:name" in html.unescape(ran.text) and 'id="console-result"' not in ran.text


def test_a_route_of_another_script_cannot_be_chosen(dash, greeter, new_script):
    other = new_script(greeter["slug"], "other")
    foreign = add_route(dash, greeter["slug"], other.id, path="/other/:name")
    ran = run(dash, greeter, route=str(foreign.id), path="/other/pi")
    assert ran.status_code == 422 and 'id="console-result"' not in ran.text


@pytest.mark.parametrize("body, reason", [
    ("NaN", "NaN is not a JSON number"),
    ('{"a": Infinity}', "Infinity is not a JSON number"),
    ('{"a": 1e999999}', "number out of range"),
    ("[" * 100_000 + "]" * 100_000, "nested deeper than"),
])
def test_json_a_script_cannot_hold_is_refused_like_execute(dash, admin, server, greeter, body, reason):
    logged = len(server.log_path.read_bytes())
    ran = run(dash, greeter, body=body)
    assert ran.status_code == 422, ran.text
    shown = html.unescape(ran.text)
    assert "The request body is JSON a script cannot hold: " + reason in shown
    assert 'id="console-result"' not in ran.text and "internal_error" not in ran.text
    executed = admin.post(
        f"/api/v1/execute/{greeter['script'].id}", data=body, headers={"Content-Type": "application/json"}
    )
    assert executed.status_code == 400 and executed.json()["error"]["code"] == "bad_request"
    assert reason in executed.json()["error"]["message"]
    assert "Traceback" not in server.log_path.read_bytes()[logged:].decode("utf-8", "replace")
