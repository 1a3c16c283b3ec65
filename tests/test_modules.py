"""docs/api.md §13 modules: require() loads the app's own scripts, once per execution, no cycles."""
import uuid

from tests.data.conftest import run_lua
from tests.support.apps import other_site, site  # noqa: F401  (fixtures)
from tests.support.dashboard import Dashboard
from tests.conftest import ADMIN_PASSWORD


def lua_json(site, source):
    response = run_lua(site, source)
    assert response.status_code == 200, response.text
    return response.json()


def last_error(site):
    executions = site.api.get(f"/api/v1/admin/apps/{site.app['id']}/executions", params={"limit": 1}).json()
    return executions["executions"][0]["error"]["message"]


def test_a_module_runs_once_per_execution_and_again_in_the_next(site):
    site.script('kv.incr("loads") return {n = kv.get("loads")}', name="counter")
    source = 'local a = require("counter") local b = require "counter" local c = require("counter") return {a == b and b == c, a.n}'
    assert lua_json(site, source) == [True, 1]
    assert lua_json(site, source) == [True, 2]


def test_a_module_sees_the_callers_globals_and_returns_anything(site):
    site.script('return function(x) return request.path .. ":" .. ctx.script.name .. ":" .. x end', name="greet")
    site.script("local x = 1", name="nothing")
    result = lua_json(site, 'return {require("greet")("hi"), require("nothing")}')
    assert result[0].endswith(":hi") and result[0].startswith("/run-")
    assert result[1] is True


def test_modules_require_modules(site):
    site.script('return {base = 40}', name="base.lib")
    site.script('return {value = require("base.lib").base + 2}', name="mid")
    assert lua_json(site, 'return {require("mid").value}') == [42]


def test_a_cycle_is_a_catchable_lua_error(site):
    site.script('return require("cyc-b")', name="cyc-a")
    site.script('return require("cyc-a")', name="cyc-b")
    ok, message = lua_json(site, 'return {pcall(require, "cyc-a")}')
    assert ok is False and "cycle" in message
    uncaught = run_lua(site, 'return require("cyc-a")')
    assert uncaught.status_code == 422
    assert "cycle" in last_error(site)


def test_a_missing_module_is_a_lua_error(site):
    ok, message = lua_json(site, 'return {pcall(require, "no-such-module")}')
    assert ok is False and "module 'no-such-module' not found" in message


def test_other_apps_scripts_are_unreachable(site, other_site):
    other_site.script('return "theirs"', name="shared")
    ok, message = lua_json(site, 'return {pcall(require, "shared")}')
    assert ok is False and "not found" in message
    site.script('return "mine"', name="shared")
    assert lua_json(site, 'return {require("shared")}') == ["mine"]


def test_a_module_runs_under_the_callers_limits(site):
    site.script("while true do end", name="spin")
    response = run_lua(site, 'pcall(require, "spin") return "done"')
    assert response.status_code == 507
    assert response.json()["error"]["limit"] == "max_instructions"


def test_deleting_a_required_script_is_allowed_and_fails_the_callers_next_run(site):
    lib = site.script('return {answer = 42}', name="answer")
    assert lua_json(site, 'return {require("answer").answer}') == [42]
    assert site.api.delete(f"/api/v1/admin/scripts/{lib['id']}").status_code == 204
    response = run_lua(site, 'return {require("answer").answer}')
    assert response.status_code == 422
    assert "module 'answer' not found" in last_error(site)


def test_the_script_page_shows_which_scripts_use_it_as_a_module(site, server):
    lib = site.script("return {}", name=f"lib-{uuid.uuid4().hex[:6]}")
    caller = site.script(f'local lib = require("{lib["name"]}") return "x"', name="caller")
    dash = Dashboard(server.url, "admin", ADMIN_PASSWORD)
    lib_page = dash.get(f"/admin/apps/{site.slug}/scripts/{lib['id']}")
    assert lib_page.status_code == 200
    section = lib_page.text.split('id="script-modules"')[1].split("</section>")[0]
    assert "Used as a module by: <code>caller</code>" in section
    caller_page = dash.get(f"/admin/apps/{site.slug}/scripts/{caller['id']}")
    section = caller_page.text.split('id="script-modules"')[1].split("</section>")[0]
    assert f"Requires: <code>{lib['name']}</code>" in section
