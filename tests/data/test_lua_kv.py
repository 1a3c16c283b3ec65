"""docs/api.md §7: ``kv.*`` in scripts, through real routes over HTTP."""
import time
from concurrent.futures import ThreadPoolExecutor

from tests.data.conftest import add_trigger, executions, kv_url, lua_json, run_lua, wait_for


def test_set_get_delete_with_json_null_positions(site):
    result = lua_json(
        site,
        """
        kv.set("a", {n = 1, list = {1, json.null, 3}, nested = {x = json.null}})
        local v = kv.get("a")
        local r = {got = v, second_is_null = v.list[2] == json.null, missing = kv.get("nope") == nil}
        r.deleted = kv.delete("a")
        r.deleted_again = kv.delete("a")
        r.after = kv.get("a") == nil
        return r
        """,
    )
    assert result == {
        "got": {"n": 1, "list": [1, None, 3], "nested": {"x": None}},
        "second_is_null": True,
        "missing": True,
        "deleted": True,
        "deleted_again": False,
        "after": True,
    }


def test_values_written_by_scripts_are_what_the_admin_api_reads(site):
    lua_json(
        site,
        """
        kv.set("text", "hello")
        kv.set("number", 2.5)
        kv.set("flag", false)
        kv.set("list", {"a", json.null})
        kv.set("null", json.null)
        kv.set("empty", {})
        return true
        """,
    )
    read = lambda key: site.api.get(kv_url(site, key)).json()["value"]
    assert [read(k) for k in ("text", "number", "flag", "list", "null", "empty")] == [
        "hello", 2.5, False, ["a", None], None, {}
    ]
    site.api.put(kv_url(site, "from-admin"), json={"deep": [1, {"x": None}]})
    assert lua_json(site, 'local v = kv.get("from-admin") return {v = v, null = v.deep[2].x == json.null}') == {
        "v": {"deep": [1, {"x": None}]},
        "null": True,
    }


def test_incr(site):
    result = lua_json(
        site,
        """
        local a = kv.incr("n")
        local b = kv.incr("n", 5)
        local c = kv.incr("n", -10)
        kv.set("f", 2.0)
        local d = kv.incr("f", 1)
        kv.set("s", "text")
        local ok, err = pcall(kv.incr, "s")
        local ok2, err2 = pcall(kv.incr, "n", 1.5)
        kv.set("big", math.maxinteger)
        local ok3, err3 = pcall(kv.incr, "big")
        return {a, b, c, d, ok, err, ok2, err2, ok3, err3, math.type(a)}
        """,
    )
    a, b, c, d, ok, err, ok2, err2, ok3, err3, kind = result
    assert (a, b, c, d, kind) == (1, 6, -4, 3, "integer")
    assert ok is False and "kv.incr" in err and "not an integer" in err
    assert ok2 is False and "not an integer" in err2
    assert ok3 is False and "64-bit" in err3
    assert site.api.get(kv_url(site, "n")).json()["value"] == -4
    assert site.api.get(kv_url(site, "s")).json()["value"] == "text"


def test_incr_is_atomic_under_concurrent_requests(site):
    path = "/hits"
    site.route(path, 'return {n = kv.incr("hits")}')
    requests_count = 40

    def call(_):
        # A 503 overloaded run never started (docs/api.md §6): a client tries it again.
        for _ in range(20):
            response = site.call(path)
            if response.status_code != 503:
                return response
            time.sleep(0.2)
        return response

    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(call, range(requests_count)))
    assert [r.status_code for r in responses] == [200] * requests_count
    assert sorted(r.json()["n"] for r in responses) == list(range(1, requests_count + 1))
    assert site.api.get(kv_url(site, "hits")).json()["value"] == requests_count


def test_list_with_prefix_limit_and_cursor(site):
    result = lua_json(
        site,
        """
        for i = 1, 5 do kv.set("p/" .. i, i) end
        kv.set("q", 1)
        kv.set("p", 0)
        local all, cursor, pages = {}, nil, 0
        repeat
          local page = kv.list{prefix = "p/", limit = 2, cursor = cursor}
          for _, k in ipairs(page.keys) do all[#all + 1] = k end
          cursor = page.cursor
          pages = pages + 1
        until cursor == nil
        local everything = kv.list()
        return {keys = all, pages = pages, none = #kv.list{prefix = "zzz"}.keys, total = #everything.keys,
                more = everything.cursor == nil}
        """,
    )
    assert result == {"keys": ["p/1", "p/2", "p/3", "p/4", "p/5"], "pages": 3, "none": 0, "total": 7, "more": True}


def test_bad_arguments_are_catchable_errors(site):
    result = lua_json(
        site,
        """
        local function err(f, ...)
          local ok, e = pcall(f, ...)
          return ok and "no error" or e
        end
        local r = {
          long = err(kv.set, string.rep("k", 513), 1),
          empty = err(kv.get, ""),
          number = err(kv.get, 5),
          option = err(kv.list, {bogus = 1}),
          limit = err(kv.list, {limit = 0}),
          cursor = err(kv.list, {cursor = "nope"}),
          arity = err(kv.get, "a", "b"),
        }
        r.still_runs = kv.list().keys[1] == nil
        return r
        """,
    )
    assert "kv.set" in result["long"] and "512 bytes" in result["long"]
    assert "1 to 512 bytes" in result["empty"]
    assert "must be a string" in result["number"]
    assert "unknown option 'bogus'" in result["option"]
    assert "limit" in result["limit"]
    assert "cursor" in result["cursor"]
    assert "at most 1 argument" in result["arity"]
    assert result["still_runs"] is True


def test_an_uncaught_data_error_is_a_script_error(site):
    response = run_lua(site, 'kv.set(string.rep("k", 600), 1)')
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "script_error"


def test_apps_never_see_each_others_keys(site, other_site):
    lua_json(site, 'kv.set("shared", "mine") kv.set("private", 1) return true')
    lua_json(other_site, 'kv.set("shared", "theirs") return true')
    assert lua_json(site, 'return {kv.get("shared")}') == ["mine"]
    result = lua_json(
        other_site,
        'local r = {shared = kv.get("shared"), private = kv.get("private") == nil} '
        'r.deleted = kv.delete("private") r.keys = kv.list().keys return r',
    )
    assert result == {"shared": "theirs", "private": True, "deleted": False, "keys": ["shared"]}
    assert site.api.get(kv_url(site, "private")).json()["value"] == 1


def test_a_script_write_fires_triggers_one_level_deeper_naming_its_run(site):
    recorder = site.script('kv.set("seen/" .. event.key, {value = event.value, prev = event.prev_value, op = event.op})')
    add_trigger(site, "kv", recorder, key_glob="src/*")
    site.api.put(kv_url(site, "src/1"), json="old")
    wait_for(lambda: site.api.get(kv_url(site, "seen/src/1")).status_code == 200, what="the admin write's run")
    lua_json(site, 'kv.set("src/1", {n = 1}) return true')
    seen = wait_for(
        lambda: (lambda r: r if r.get("value") == {"n": 1} else None)(
            site.api.get(kv_url(site, "seen/src/1")).json()["value"]
        ),
        what="the script write's run",
    )
    assert seen == {"value": {"n": 1}, "prev": "old", "op": "set"}
    [http_run] = wait_for(lambda: executions(site, source="http"), what="the HTTP run's log")
    runs = wait_for(
        lambda: (lambda ok: ok if len(ok) == 2 else None)(
            [e for e in executions(site, source="kv") if e["status"] == "ok"]
        ),
        what="the triggered runs' logs",
    )
    by_parent = {run["parent_execution_id"]: run for run in runs}
    assert by_parent[http_run["id"]]["trigger_depth"] == 1
    assert by_parent[None]["trigger_depth"] == 1  # the admin API writes at depth 0


def test_concurrent_writes_of_a_watched_key_each_see_the_value_they_replaced(site):
    recorder = site.script('kv.set("chain/" .. tostring(event.value), event.prev_value == nil and "none" or event.prev_value)')
    add_trigger(site, "kv", recorder, key_glob="raced")
    writes = 12
    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(lambda n: site.api.put(kv_url(site, "raced"), json=n).status_code, range(writes)))
    assert statuses == [200] * writes
    items = wait_for(
        lambda: (lambda page: page if len(page) == writes else None)(
            site.api.get(kv_url(site), params={"prefix": "chain/", "limit": 100}).json()["items"]
        ),
        what="one run per write",
    )
    prev_of = {int(item["key"].split("/")[1]): item["value"] for item in items}
    # The writes form one chain: exactly one replaced nothing, every other replaced
    # another write's value, and no value was replaced twice.
    assert list(prev_of.values()).count("none") == 1
    replaced = [prev for prev in prev_of.values() if prev != "none"]
    assert len(set(replaced)) == writes - 1 and set(replaced) < set(range(writes))
    final = site.api.get(kv_url(site, "raced")).json()["value"]
    assert final not in replaced
