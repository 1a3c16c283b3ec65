"""The script page's test console: runs behind a route with its params, and the JSON policy
of ``POST /api/v1/execute`` (docs/api.md §6)."""
import html
import time

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


# The editor's draft, events, and inputs loaded from past runs ----------------------------


def test_the_console_runs_the_editors_unsaved_draft(dash, greeter):
    draft = 'return "draft saw " .. request.method'
    ran = run(dash, greeter, method="PUT", path="/x", draft="y", source=draft)
    assert ran.status_code == 200, ran.text
    assert response_body(ran.text) == "draft saw PUT"
    assert "Ran the editor's unsaved text" in ran.text
    script = greeter["script"]
    assert type(script).get_by_id(script.id).source == GREETER  # nothing saved
    saved = run(dash, greeter, route=str(greeter["route"].id), path="/hello/pi", draft="y", source=GREETER)
    assert response_body(saved.text) == "pi at /hello/pi by GET" and "unsaved text" not in saved.text


def test_a_draft_that_does_not_compile_is_refused_at_its_line(dash, greeter):
    ran = run(dash, greeter, draft="y", source="return (\n")
    assert ran.status_code == 422
    assert "The editor&#39;s text does not compile (line 2)" in ran.text
    assert "console-result" not in ran.text


def test_the_console_runs_a_script_with_an_event(dash, new_app, new_script):
    slug = new_app()
    script = new_script(slug, "handler")
    source = 'return event.kind .. " " .. event.op .. " " .. event.key .. " " .. event.value.total'
    assert dash.post(f"/admin/apps/{slug}/scripts/{script.id}/source", {"source": source}, htmx=True).status_code == 200
    url = f"/admin/apps/{slug}/scripts/{script.id}/run"
    event = '{"kind": "kv", "op": "set", "key": "orders/1", "value": {"total": 12}}'
    ran = dash.post(url, {"given": "event", "event": event}, htmx=True)
    assert ran.status_code == 200, ran.text
    assert response_body(ran.text) == "kv set orders/1 12"
    for bad, message in (("[1, 2]", "An event is a JSON object"), ("{oops", "Not valid JSON"), ("NaN", "cannot hold")):
        refused = dash.post(url, {"given": "event", "event": bad}, htmx=True)
        assert refused.status_code == 422 and message in refused.text, bad


def test_a_past_run_or_dead_letter_loads_into_the_console(dash, greeter, database):
    from picloud.models import App, DeadLetter

    ran = run(dash, greeter, route=str(greeter["route"].id), path="/hello/ada", query="x=1",
              headers="X-Trace: t-9\nAuthorization: Bearer secret")
    execution_id = ran.text.split('href="/admin/apps/')[1].split("/logs/")[1].split('"')[0]
    base = f"/admin/apps/{greeter['slug']}/scripts/{greeter['script'].id}"
    deadline = time.monotonic() + 10
    while execution_id not in dash.get(base).text:  # the run reaches the log off the request path
        assert time.monotonic() < deadline
        time.sleep(0.1)
    loaded = dash.get(f"{base}/console", params={"run": execution_id}, htmx=True).text
    assert 'value="/hello/ada"' in loaded and 'value="x=1"' in loaded and 'value="name=ada"' in loaded
    assert "x-trace: t-9" in loaded and "secret" not in loaded  # redacted headers stay out
    page = dash.get(base, params={"run": execution_id}).text  # "Run again" from the run's page
    assert 'value="/hello/ada"' in page

    app = App.get(App.slug == greeter["slug"])
    letter = DeadLetter.create(
        app=app, source="kv", script_id=greeter["script"].id, event={"kind": "kv", "op": "delete", "key": "k"},
        event_id="e", attempts=5, last_error={"message": "no"},
    )
    offered = dash.get(base).text
    assert f'value="dead-letter-{letter.id}"' in offered
    from_letter = dash.get(f"{base}/console", params={"run": f"dead-letter-{letter.id}"}, htmx=True).text
    assert '<option selected value="event">' in from_letter and "&#34;op&#34;: &#34;delete&#34;" in from_letter
