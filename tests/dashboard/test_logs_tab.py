"""The Logs tab about requests: what each run was asked and answered, errors only, run again."""
import re

from tests.support.apps import site, wait_for  # noqa: F401  (fixture)


def logged_runs(site, count):
    return wait_for(
        lambda: (lambda runs: runs if len(runs) >= count else None)(
            site.api.get(f"/api/v1/admin/apps/{site.app['id']}/executions").json()["executions"]
        ),
        what=f"{count} runs in the log",
    )


def test_the_list_shows_each_requests_method_host_and_path_and_filters_errors(dash, site):  # noqa: F811
    site.route("/orders/:id", 'return "order " .. request.params.id')
    site.route("/boom", 'error("no luck")')
    assert site.call("/orders/7?full=1").status_code == 200
    assert site.call("/boom").status_code == 422
    logged_runs(site, 2)
    page = dash.get(f"/admin/apps/{site.slug}/logs").text
    assert f'<code>GET</code> <span class="mono small">{site.host}/orders/7?full=1</span>' in page
    assert f"{site.host}/boom" in page
    errors = dash.get(f"/admin/apps/{site.slug}/logs", params={"status": "failed"}).text
    assert f"{site.host}/boom" in errors and "/orders/7" not in errors
    assert '<option selected value="failed">errors only</option>' in errors


def test_a_runs_page_shows_its_request_and_response_and_runs_it_again(dash, site):  # noqa: F811
    route = site.route("/echo", 'return {status = 201, body = {got = request.json}}', method="POST")
    assert site.call("/echo", method="POST", json={"tea": 2}, headers={"X-Trace": "t-3"}).status_code == 201
    [run] = logged_runs(site, 1)
    page = dash.get(f"/admin/apps/{site.slug}/logs/{run['id']}").text
    request_card = page[page.index('id="run-input"'):page.index('id="run-response"')]
    assert f'<code>POST</code> <span class="mono">{site.host}/echo</span>' in request_card
    assert "x-trace: t-3" in request_card and "{&#34;tea&#34;: 2}" in request_card
    response_card = page[page.index('id="run-response"'):]
    assert '<span class="badge ok">201</span>' in response_card and "&#34;got&#34;" in response_card
    again = re.search(r'href="([^"]+)#console">Run again</a>', page).group(1)
    assert again.endswith(f"/scripts/{route['script_id']}?run={run['id']}")
    console = dash.get(again.replace("&amp;", "&")).text
    assert 'value="/echo"' in console and "x-trace: t-3" in console and "{&#34;tea&#34;: 2}" in console


def test_a_retried_events_runs_show_their_attempt(dash, site):  # noqa: F811
    from tests.support.apps import add_trigger

    script = site.script('error("fails for " .. event.key)')
    add_trigger(site, "kv", script, key_glob="r/*", retry={"max_attempts": 2, "base_delay_ms": 10, "jitter": 0})
    assert site.api.put(f"/api/v1/admin/apps/{site.app['id']}/kv/r%2F1", json=1).status_code == 200
    wait_for(lambda: [r for r in logged_runs(site, 1) if r["attempt"] == 2 and r["status"] == "script_error"],
             what="the second attempt")
    page = dash.get(f"/admin/apps/{site.slug}/logs", params={"source": "kv"}).text
    assert '<span class="badge warn" title="attempt 2">attempt 2</span>' in page
    assert '<span class="mono small">kv set r/1</span>' in page
