"""docs/api.md §7-§10 as a script sees them, end to end over HTTP.

What the other data and outbox tests leave open: exact return values and types of the
host functions, cursors paging to the end, the exact globals and ``ctx`` of every
source, every field of every event, JSON nulls crossing into scripts, and the execution
records of triggered, skipped and dead-letter runs.
"""
import dataclasses
import json
import uuid

from tests.data.conftest import lua_json, run_lua
from tests.outbox.conftest import FAST_RETRY, add_trigger, dead_letters, executions, kv_get, kv_put, wait_for

# docs/api.md §8, plus ``request`` or ``event`` and the data modules.
DOCUMENTED_GLOBALS = {
    "ctx", "kv", "docs", "log", "json", "string", "table", "math", "utf8", "coroutine", "os",
    "pairs", "ipairs", "pcall", "error", "select", "type", "tostring", "tonumber", "setmetatable",
    "getmetatable", "rawget", "rawset", "rawequal", "rawlen", "next", "assert", "print", "load",
    "xpcall", "collectgarbage", "http", "secrets", "crypto", "encoding", "time", "require",
}

# Records what a run saw under "seen/<tag>": its globals, ctx (keys and values) and event.
RECORD = """
local names = {}
for name in pairs(_ENV) do names[#names + 1] = name end
table.sort(names)
local ctx_keys = {}
for name in pairs(ctx) do ctx_keys[#ctx_keys + 1] = name end
table.sort(ctx_keys)
local event_keys = {}
for name in pairs(event or {}) do event_keys[#event_keys + 1] = name end
table.sort(event_keys)
kv.set("seen/" .. TAG, {
  globals = names, ctx_keys = ctx_keys, ctx = ctx, event = event or json.null, event_keys = event_keys,
  has_request = request ~= nil,
})
"""


def record_script(site, tag):
    return site.script(RECORD.replace("TAG", json.dumps(tag)))


def seen(site, tag):
    return wait_for(lambda: kv_get(site, f"seen/{tag}"), what=f"the run recording {tag}")


def lua_string(text):
    """Return a Lua string literal of ``text``, every byte escaped."""
    return '"' + "".join(f"\\{byte}" for byte in text.encode("utf-8")) + '"'


def execution(site, execution_id):
    response = site.api.get(f"/api/v1/admin/executions/{execution_id}")
    assert response.status_code == 200, response.text
    return response.json()


def finished(site, **filters):
    """Return the app's executions that are no longer queued, once none is queued."""
    wait_for(lambda: not executions(site, status="queued"), what="no queued runs")
    return [e for e in executions(site, **filters) if e["status"] != "queued"]


def assert_timestamps(record):
    for field in ("queued_at", "started_at", "finished_at"):
        assert record[field] is None or record[field].endswith("Z"), (field, record[field])
    assert all(entry["at"].endswith("Z") for entry in record["logs"])


# §7 KV ------------------------------------------------------------------------------


def test_kv_list_pages_every_key_once_in_byte_order(site):
    keys = ["p/B", "p/a", "p/Z1", "p/é", "p/e", "p/~", "p/\uffff", "p/😀", "p/ab", "p/a/b", "p/0", "p/-"]
    keys += [f"p/n{n:02d}" for n in range(15)]
    setup = "\n".join(f"kv.set({lua_string(key)}, {n})" for n, key in enumerate(keys))
    result = lua_json(
        site,
        setup
        + """
        kv.set("p", "not under p/")
        kv.set("q/1", 1)
        local all, cursor, pages, sizes = {}, nil, 0, {}
        repeat
          local page = kv.list{prefix = "p/", limit = 4, cursor = cursor}
          for _, k in ipairs(page.keys) do all[#all + 1] = k end
          sizes[#sizes + 1] = #page.keys
          cursor = page.cursor
          pages = pages + 1
        until cursor == nil
        local last = kv.list{prefix = "p/", limit = 27}
        return {keys = all, pages = pages, sizes = sizes, exact_fit_has_no_cursor = last.cursor == nil,
                exact_fit = #last.keys}
        """,
    )
    expected = sorted(keys, key=lambda k: k.encode("utf-8"))
    assert result["keys"] == expected
    assert result["pages"] == 7 and result["sizes"] == [4, 4, 4, 4, 4, 4, 3]
    assert result["exact_fit"] == 27 and result["exact_fit_has_no_cursor"] is True


def test_kv_list_limit_defaults_to_50_and_is_at_most_500(site):
    result = lua_json(
        site,
        """
        for i = 1, 55 do kv.set(string.format("k%03d", i), i) end
        local function err(...)
          local ok, e = pcall(kv.list, ...)
          return ok and "no error" or e
        end
        local default = kv.list()
        local rest = kv.list{cursor = default.cursor}
        return {
          default = #default.keys, more = type(default.cursor), rest = #rest.keys, rest_cursor = rest.cursor == nil,
          max = #kv.list{limit = 500}.keys, float = #kv.list{limit = 3.0}.keys,
          over = err{limit = 501}, fraction = err{limit = 2.5}, text = err{limit = "3"},
          not_table = err("p/"), empty_prefix = #kv.list{prefix = ""}.keys,
        }
        """,
    )
    assert (result["default"], result["more"], result["rest"], result["rest_cursor"]) == (50, "string", 5, True)
    assert (result["max"], result["float"], result["empty_prefix"]) == (55, 3, 50)
    for name in ("over", "fraction", "text"):
        assert result[name].startswith("kv.list: ") and "1 to 500" in result[name], result[name]
    assert "options must be a table" in result["not_table"]


def test_kv_return_values_and_types(site):
    result = lua_json(
        site,
        """
        local set_results = select("#", kv.set("f", false))
        kv.set("zero", 0)
        kv.set("null", json.null)
        local page = kv.list{prefix = "nothing/"}
        return {
          set_returns_nil = kv.set("x", 1) == nil, set_results = set_results,
          falsy = kv.get("f"), falsy_type = type(kv.get("f")),
          zero = math.type(kv.get("zero")),
          null_is_nil = kv.get("null") == nil,
          delete = {kv.delete("x"), kv.delete("x")}, delete_type = type(kv.delete("never")),
          incr_type = math.type(kv.incr("counter", 0)),
          empty_keys = type(page.keys), empty_count = #page.keys, empty_cursor = page.cursor == nil,
        }
        """,
    )
    assert result == {
        "set_returns_nil": True, "set_results": 1, "falsy": False, "falsy_type": "boolean", "zero": "integer",
        "null_is_nil": True, "delete": [True, False], "delete_type": "boolean", "incr_type": "integer",
        "empty_keys": "table", "empty_count": 0, "empty_cursor": True,
    }


def test_kv_incr_refuses_non_integers_and_keeps_the_value(site):
    result = lua_json(
        site,
        """
        local function err(...)
          local ok, e = pcall(kv.incr, ...)
          return ok and "no error" or e
        end
        kv.set("t", true) kv.set("s", "5") kv.set("l", {1}) kv.set("f", 2.5) kv.set("n", 7)
        return {
          bool = err("t"), numeric_text = err("s"), list = err("l"), float = err("f"),
          delta_text = err("n", "1"), delta_bool = err("n", true), delta_float = err("n", 0.5),
          values = {kv.get("t"), kv.get("s"), kv.get("l"), kv.get("f"), kv.get("n")},
          negative = kv.incr("n", -7), integral_float_delta = kv.incr("n", 2.0),
        }
        """,
    )
    for name in ("bool", "numeric_text", "list", "float"):
        assert result[name].startswith("kv.incr: ") and "not an integer" in result[name], result[name]
    for name in ("delta_text", "delta_bool", "delta_float"):
        assert result[name].startswith("kv.incr: ") and "increment is not an integer" in result[name], result[name]
    assert result["values"] == [True, "5", [1], 2.5, 7]
    assert (result["negative"], result["integral_float_delta"]) == (0, 2)


def test_kv_key_errors_are_clear_and_catchable(site):
    result = lua_json(
        site,
        r"""
        local function err(f, ...)
          local ok, e = pcall(f, ...)
          return ok and "no error" or e
        end
        return {
          nul = err(kv.set, "a\0b", 1), table_key = err(kv.delete, {}), nil_key = err(kv.incr),
          bad_utf8 = err(kv.set, "\255", 1), function_value = err(kv.set, "k", print),
          at_limit = kv.set(string.rep("k", 512), 1) == nil and kv.get(string.rep("k", 512)),
          multibyte_over = err(kv.get, string.rep("é", 257)),
        }
        """,
    )
    assert result["nul"].startswith("kv.set: ") and "NUL" in result["nul"]
    assert result["table_key"].startswith("kv.delete: ") and "must be a string" in result["table_key"]
    assert result["nil_key"].startswith("kv.incr: ") and "must be a string" in result["nil_key"]
    assert result["bad_utf8"].startswith("kv.set: ") and "UTF-8" in result["bad_utf8"]
    assert result["function_value"].startswith("kv.set: ") and "function" in result["function_value"]
    assert result["at_limit"] == 1
    assert "512 bytes" in result["multibyte_over"]  # 514 bytes in 257 characters


def test_a_value_over_the_size_limit_is_a_catchable_error_whatever_its_strings(site):
    # Each string is under max_string_bytes (1 MiB); the value as a whole is over
    # PICLOUD_MAX_VALUE_BYTES (1 MiB): the store refuses it, the run goes on.
    result = lua_json(
        site,
        """
        local big = {string.rep("x", 600000), string.rep("y", 600000)}
        local ok, err = pcall(kv.set, "k", big)
        local ok2, err2 = pcall(docs.insert, "c", {_id = "d", parts = big})
        local ok3, err3 = pcall(kv.set, "k", string.rep("z", 1048576))
        kv.set("after", #big[1] + #big[2])
        return {ok = ok, err = err, ok2 = ok2, err2 = err2, ok3 = ok3, err3 = err3,
                stored = kv.get("k") == nil and docs.get("c", "d") == nil, after = kv.get("after")}
        """,
    )
    assert result["ok"] is False and result["err"].startswith("kv.set: ") and "limit is 1048576" in result["err"]
    assert result["ok2"] is False and result["err2"].startswith("docs.insert: ") and "limit is 1048576" in result["err2"]
    assert result["ok3"] is False and "limit is 1048576" in result["err3"]
    assert result["stored"] is True and result["after"] == 1_200_000


# §7 docs ----------------------------------------------------------------------------


def test_find_pages_every_document_once_in_every_sort(site):
    # 30 documents, the sort field of mixed types with many ties.
    values = ["3", 3, 1, "a", True, False, None, 2.5, "B"]
    inserts = []
    for n in range(30):
        value = values[n % len(values)]
        field = "" if n % 10 == 9 else f", g = {'json.null' if value is None else json.dumps(value)}"
        inserts.append(f'docs.insert("c", {{_id = "d{n:02d}", even = {str(n % 2 == 0).lower()}{field}}})')
    result = lua_json(
        site,
        "\n".join(inserts)
        + """
        local function walk(filter, sort, limit)
          local ids, cursor, seen = {}, nil, {}
          repeat
            local page = docs.find("c", filter, {sort = sort, limit = limit, cursor = cursor})
            for _, d in ipairs(page.docs) do
              assert(not seen[d._id], "duplicate " .. d._id)
              seen[d._id] = true
              ids[#ids + 1] = d._id
            end
            cursor = page.cursor
          until cursor == nil
          return ids
        end
        return {
          by_id = walk(nil, nil, 7), by_g = walk(nil, "g", 4), by_g_desc = walk(nil, "-g", 4),
          even_by_g = walk({even = true}, "g", 3), count = docs.count("c"), even = docs.count("c", {even = true}),
          by_g_whole = walk(nil, "g", 500),
        }
        """,
    )
    ids = [f"d{n:02d}" for n in range(30)]
    assert result["by_id"] == ids
    assert sorted(result["by_g"]) == ids and result["by_g"] == result["by_g_whole"]
    rank = {type(None): 0, bool: 1, int: 3, float: 3, str: 4}

    def key(n):
        value = None if n % 10 == 9 else values[n % len(values)]
        if isinstance(value, bool):
            return (1 + value, 0, "", f"d{n:02d}")
        return (rank[type(value)], value if isinstance(value, (int, float)) else 0,
                value if isinstance(value, str) else "", f"d{n:02d}")

    expected = [f"d{n:02d}" for n in sorted(range(30), key=key)]
    assert result["by_g"] == expected
    assert result["by_g_desc"] == expected[::-1]
    assert result["even_by_g"] == [i for i in expected if int(i[1:]) % 2 == 0]
    assert (result["count"], result["even"]) == (30, 15)


def test_find_limit_defaults_to_50_and_is_at_most_500(site):
    result = lua_json(
        site,
        """
        for i = 1, 55 do docs.insert("many", {n = i}) end
        local function err(...)
          local ok, e = pcall(docs.find, ...)
          return ok and "no error" or e
        end
        local first = docs.find("many")
        return {
          first = #first.docs, cursor = type(first.cursor), all = #docs.find("many", nil, {limit = 500}).docs,
          over = err("many", nil, {limit = 501}), zero = err("many", nil, {limit = 0}),
          no_docs = type(docs.find("empty").docs), no_cursor = docs.find("empty").cursor == nil,
          count_type = math.type(docs.count("many")),
        }
        """,
    )
    assert (result["first"], result["cursor"], result["all"]) == (50, "string", 55)
    assert result["over"].startswith("docs.find: ") and "1 to 500" in result["over"]
    assert "1 to 500" in result["zero"]
    assert (result["no_docs"], result["no_cursor"], result["count_type"]) == ("table", True, "integer")


def test_filters_compare_types_exactly(site):
    result = lua_json(
        site,
        """
        docs.insert("t", {_id = "false", v = false})
        docs.insert("t", {_id = "zero", v = 0})
        docs.insert("t", {_id = "empty", v = ""})
        docs.insert("t", {_id = "null", v = json.null})
        docs.insert("t", {_id = "missing"})
        docs.insert("t", {_id = "one", v = 1})
        docs.insert("t", {_id = "onef", v = 1.0})
        docs.insert("t", {_id = "list", v = {1, json.null}})
        docs.insert("t", {_id = "obj", v = {a = json.null, b = {c = 1}}})
        docs.insert("t", {_id = "dotted", ["a.b"] = 1, a = {b = 2}})
        docs.insert("t", {_id = "quoted", ['say "hi"'] = true})
        local function ids(filter)
          local out = {}
          for _, d in ipairs(docs.find("t", filter).docs) do out[#out + 1] = d._id end
          return table.concat(out, " ")
        end
        return {
          f = ids({v = false}), zero = ids({v = 0}), empty = ids({v = ""}), null = ids({v = json.null}),
          one = ids({v = 1}), onef = ids({v = 1.0}), list = ids({v = {1, json.null}}),
          obj = ids({v = {a = json.null, b = {c = 1}}}), obj_partial = ids({v = {b = {c = 1}}}),
          dotted = ids({["a.b"] = 1}), nested_path = ids({["a.b"] = 2}), quoted = ids({['say "hi"'] = true}),
          two_fields = ids({_id = "one", v = 1}), mismatch = ids({_id = "one", v = 2}),
          count_null = docs.count("t", {v = json.null}),
        }
        """,
    )
    assert result == {
        "f": "false", "zero": "zero", "empty": "empty", "null": "null", "one": "one onef", "onef": "one onef",
        "list": "list", "obj": "obj", "obj_partial": "", "dotted": "dotted", "nested_path": "",
        "quoted": "quoted", "two_fields": "one", "mismatch": "", "count_null": 1,
    }


def test_document_ids_and_replacement(site):
    result = lua_json(
        site,
        """
        local function err(f, ...)
          local ok, e = pcall(f, ...)
          return ok and "no error" or e
        end
        local generated = docs.insert("c", {})
        local given = docs.insert("c", {_id = "é/1 x", n = 1})
        local r = {
          generated = generated, generated_type = type(generated), given = given,
          stored = docs.get("c", generated),
          empty_id = err(docs.insert, "c", {_id = ""}), null_id = err(docs.insert, "c", {_id = json.null}),
          long_id = err(docs.get, "c", string.rep("i", 513)), taken = err(docs.insert, "c", {_id = given}),
          same_id_update = docs.update("c", given, {_id = given, m = 2}),
          missing_update = docs.update("c", "nobody", {m = 1}), created_by_update = docs.get("c", "nobody") == nil,
          bad_collection = err(docs.get, string.rep("c", 65), "x"), slash = err(docs.count, "a/b"),
          other_collection = docs.get("d", given) == nil,
        }
        r.replaced = docs.get("c", given)
        return r
        """,
    )
    assert uuid.UUID(result["generated"]) and result["generated_type"] == "string"
    assert result["stored"] == {"_id": result["generated"]}
    assert result["given"] == "é/1 x"
    assert result["empty_id"].startswith("docs.insert: ") and "1 to 512 bytes" in result["empty_id"]
    assert "must be a string" in result["null_id"]
    assert result["long_id"].startswith("docs.get: ") and "512" in result["long_id"]
    assert result["taken"].startswith("docs.insert: ") and "already exists" in result["taken"]
    assert result["same_id_update"] is True and result["replaced"] == {"_id": "é/1 x", "m": 2}
    assert result["missing_update"] is False and result["created_by_update"] is True
    assert "collection name" in result["bad_collection"] and "collection name" in result["slash"]
    assert result["other_collection"] is True


# §8 environment and ctx ---------------------------------------------------------------


def test_an_http_run_sees_the_documented_globals_and_ctx(site):
    route = site.route("/env", RECORD.replace("TAG", '"http"') + "return {id = ctx.execution_id}")
    response = site.call("/env")
    assert response.status_code == 200, response.text
    record = kv_get(site, "seen/http")
    assert set(record["globals"]) == DOCUMENTED_GLOBALS | {"request"}
    assert record["has_request"] is True and record["event"] is None
    assert record["ctx_keys"] == ["app", "attempt", "execution_id", "script", "source", "trigger_depth"]
    ctx = record["ctx"]
    assert ctx["app"] == {"id": site.app["id"], "slug": site.slug}
    script = site.api.get(f"/api/v1/admin/scripts/{route['script_id']}").json()
    assert ctx["script"] == {"id": script["id"], "name": script["name"], "version": 1}
    assert (ctx["source"], ctx["attempt"], ctx["trigger_depth"]) == ("http", 1, 0)
    [run] = wait_for(lambda: executions(site, source="http"), what="the run's record")
    assert run["id"] == ctx["execution_id"] == response.json()["id"]
    assert run["event_id"] is None and run["trigger_id"] is None and run["parent_execution_id"] is None


def test_ctx_follows_a_new_version_and_a_renamed_app(site):
    route = site.route("/v", 'return {version = ctx.script.version, slug = ctx.app.slug, name = ctx.script.name}')
    assert site.call("/v").json()["version"] == 1
    patched = site.api.patch(f"/api/v1/admin/scripts/{route['script_id']}",
                             json={"source": 'return {version = ctx.script.version, slug = ctx.app.slug}'})
    assert patched.status_code == 200, patched.text
    renamed = site.api.patch(f"/api/v1/admin/apps/{site.app['id']}", json={"slug": site.slug + "-new"})
    assert renamed.status_code == 200, renamed.text
    assert site.call("/v").json() == {"version": 2, "slug": site.slug + "-new"}


def test_execute_runs_as_the_caller(site, make_user):
    user, developer = make_user("developer")
    script = site.script(RECORD.replace("TAG", '"execute"'))
    response = developer.post(f"/api/v1/execute/{script['id']}", json={})
    assert response.status_code == 204, response.text
    record = kv_get(site, "seen/execute")
    assert record["ctx"]["principal"] == {"user_id": user["id"], "username": user["username"]}
    assert (record["ctx"]["source"], record["ctx"]["trigger_depth"], record["ctx"]["attempt"]) == ("execute", 0, 1)
    assert "event_id" not in record["ctx"] and record["has_request"] is True
    [run] = wait_for(lambda: executions(site, source="execute"), what="the run's record")
    assert run["http_status"] == 204 and run["trigger_depth"] == 0 and run["event_id"] is None


def test_print_is_log_info_and_collectgarbage_counts_only(site):
    route = site.route(
        "/gc",
        """
        print("a", 1, nil, true)
        log.warn("w")
        local ok, err = pcall(collectgarbage)
        local ok2, err2 = pcall(collectgarbage, "collect")
        return {same = print == log.info, count = math.type(collectgarbage("count")), ok = ok, ok2 = ok2,
                err = err, err2 = err2}
        """,
    )
    response = site.call("/gc")
    body = response.json()
    assert body["same"] is True and body["count"] == "float" and body["ok"] is False and body["ok2"] is False
    assert 'only "count"' in body["err"] and 'only "count"' in body["err2"]
    [run] = wait_for(lambda: executions(site, script_id=route["script_id"]), what="the run's record")
    assert [(e["level"], e["message"]) for e in run["logs"]] == [("info", "a 1 nil true"), ("warn", "w")]
    assert_timestamps(run)


def test_json_nulls_in_a_request_body_round_trip(site):
    site.route("/nulls", 'kv.set("body", request.json) return json.encode(request.json)', method="POST")
    body = {"a": None, "list": [1, None], "nested": {"b": None, "c": [None]}}
    response = site.call("/nulls", method="POST", json=body)
    assert response.status_code == 200, response.text
    assert json.loads(response.text) == body
    assert kv_get(site, "body") == body


def test_json_nulls_in_event_values_and_documents_round_trip(site):
    add_trigger(site, "kv", site.script('kv.set("copy/" .. event.key, {v = event.value, prev = event.prev_value})\n'),
                key_glob="src/*")
    add_trigger(site, "docs", site.script('kv.set("copy/doc/" .. event.op, {data = event.data, prev = event.prev_data})\n'),
                collection_glob="src")
    value = {"a": None, "list": [None, 2], "deep": {"b": None}}
    kv_put(site, "src/1", value)
    assert wait_for(lambda: kv_get(site, "copy/src/1")) == {"v": value}
    kv_put(site, "src/1", {"x": None})
    assert wait_for(lambda: (lambda c: c if "prev" in c else None)(kv_get(site, "copy/src/1"))) == {
        "v": {"x": None}, "prev": value,
    }
    url = f"/api/v1/admin/apps/{site.app['id']}/docs/src"
    assert site.api.post(url, json={"_id": "d", "nick": None, "tags": [None]}).status_code == 201
    assert site.api.put(f"{url}/d", json={"nick": "x", "gone": None}).status_code == 200
    assert wait_for(lambda: kv_get(site, "copy/doc/insert")) == {"data": {"_id": "d", "nick": None, "tags": [None]}}
    assert wait_for(lambda: kv_get(site, "copy/doc/update")) == {
        "data": {"_id": "d", "nick": "x", "gone": None},
        "prev": {"_id": "d", "nick": None, "tags": [None]},
    }


# §9 events, field by field --------------------------------------------------------------


def test_kv_events_field_by_field(site):
    add_trigger(site, "kv", site.script(
        'local keys = {} for k in pairs(event) do keys[#keys + 1] = k end table.sort(keys)\n'
        'kv.set("ev/" .. ctx.event_id, {event = event, keys = keys})\n'), key_glob="w")
    lua_json(site, 'kv.set("w", {n = 1}) kv.incr("other") return true')
    lua_json(site, 'kv.set("w", 5) return {kv.incr("w", 2), kv.delete("w"), kv.delete("w")}')

    def events():
        items = site.api.get(f"/api/v1/admin/apps/{site.app['id']}/kv", params={"prefix": "ev/"}).json()["items"]
        return [item["value"] for item in items] if len(items) == 4 else None

    recorded = wait_for(events, what="four events")
    shapes = [(r["event"]["op"], r["event"].get("value"), r["event"].get("prev_value"), r["keys"]) for r in recorded]
    # Writes in one millisecond share their ``at``: compare regardless of order.
    assert sorted(shapes, key=json.dumps) == sorted([
        ("set", {"n": 1}, None, ["at", "key", "kind", "op", "value"]),
        ("set", 5, {"n": 1}, ["at", "key", "kind", "op", "prev_value", "value"]),
        ("set", 7, 5, ["at", "key", "kind", "op", "prev_value", "value"]),  # incr is a set
        ("delete", None, 7, ["at", "key", "kind", "op", "prev_value"]),
    ], key=json.dumps)
    assert all(r["event"]["kind"] == "kv" and r["event"]["key"] == "w" for r in recorded)
    assert all(r["event"]["at"].endswith("Z") for r in recorded)
    finished(site)
    assert len(events()) == 4  # deleting a missing key changed nothing and fired nothing


def test_docs_events_field_by_field_and_glob_and_ops(site):
    script = site.script(
        'local keys = {} for k in pairs(event) do keys[#keys + 1] = k end table.sort(keys)\n'
        'kv.set("ev/" .. event.collection .. "/" .. event.op, {event = event, keys = keys, source = ctx.source})\n')
    add_trigger(site, "docs", script, collection_glob="[ab]?", ops=["insert", "delete"])
    add_trigger(site, "docs", script, collection_glob="up*", ops=["update"])
    made = lua_json(
        site,
        """
        local id = docs.insert("a1", {n = 1})
        docs.update("a1", id, {n = 2})
        docs.delete("a1", id)
        docs.insert("A1", {n = 1})
        docs.insert("c1", {n = 1})
        docs.insert("b12", {n = 1})
        docs.insert("up", {_id = "u", n = 1})
        docs.update("up", "u", {n = 2})
        docs.delete("up", "u")
        docs.update("up", "nobody", {n = 1})
        docs.delete("a1", "nobody")
        return {id = id}
        """,
    )
    inserted = wait_for(lambda: kv_get(site, "ev/a1/insert"))
    deleted = wait_for(lambda: kv_get(site, "ev/a1/delete"))
    updated = wait_for(lambda: kv_get(site, "ev/up/update"))
    assert inserted["keys"] == ["at", "collection", "data", "id", "kind", "op"]
    assert inserted["event"]["id"] == made["id"] and inserted["event"]["data"] == {"_id": made["id"], "n": 1}
    assert inserted["source"] == "docs" and inserted["event"]["kind"] == "docs"
    assert deleted["keys"] == ["at", "collection", "id", "kind", "op", "prev_data"]
    assert deleted["event"]["prev_data"] == {"_id": made["id"], "n": 2}
    assert updated["keys"] == ["at", "collection", "data", "id", "kind", "op", "prev_data"]
    assert (updated["event"]["data"], updated["event"]["prev_data"]) == ({"_id": "u", "n": 2}, {"_id": "u", "n": 1})
    finished(site)
    fired = sorted(item["key"] for item in
                   site.api.get(f"/api/v1/admin/apps/{site.app['id']}/kv", params={"prefix": "ev/"}).json()["items"])
    assert fired == ["ev/a1/delete", "ev/a1/insert", "ev/up/update"]  # not A1, c1, b12; not a1's update
    assert len(executions(site, source="docs")) == 3  # no event for the missing documents


def test_a_trigger_runs_as_its_registrant_whoever_writes(site, make_user, admin):
    user, developer = make_user("developer")
    as_developer = dataclasses.replace(site, api=developer)
    add_trigger(as_developer, "kv", record_script(site, "by-dev"), key_glob="watched")
    kv_put(site, "watched", 1)  # written by the admin
    record = seen(site, "by-dev")
    assert record["ctx"]["principal"] == {"user_id": user["id"], "username": user["username"]}
    assert set(record["globals"]) == DOCUMENTED_GLOBALS | {"event"}
    assert record["has_request"] is False
    assert record["ctx_keys"] == [
        "app", "attempt", "event_id", "execution_id", "principal", "script", "source", "trigger_depth",
    ]


def test_a_chain_of_triggers_records_depth_and_parents(site):
    add_trigger(site, "docs", site.script('kv.set("hop", ctx.trigger_depth)\n'), collection_glob="start")
    add_trigger(site, "kv", site.script('kv.set("end", ctx.trigger_depth) log.info("at the end")\n'), key_glob="hop")
    site.route("/start", 'docs.insert("start", {}) return ctx.execution_id')
    http_id = site.call("/start").text
    assert wait_for(lambda: kv_get(site, "end")) == 2
    runs = {r["source"]: r for r in finished(site)}
    docs_run, kv_run = runs["docs"], runs["kv"]
    assert (docs_run["trigger_depth"], docs_run["parent_execution_id"]) == (1, http_id)
    assert (kv_run["trigger_depth"], kv_run["parent_execution_id"]) == (2, docs_run["id"])
    for run in (docs_run, kv_run):
        assert run["status"] == "ok" and run["http_status"] is None and run["attempt"] == 1
        assert run["trigger_id"] is not None and run["event_id"] and run["error"] is None
        assert run["usage"]["instructions"] > 0 and run["usage"]["memory_peak_bytes"] >= 0
        assert_timestamps(run)
    assert [e["message"] for e in kv_run["logs"]] == ["at the end"]


def test_a_skipped_run_is_recorded_with_its_trigger_and_parent(site):
    script = site.script('kv.incr("loop")\n')
    trigger = add_trigger(site, "kv", script, key_glob="loop")
    kv_put(site, "loop", 0)
    [skipped] = wait_for(lambda: executions(site, status="skipped"), what="the skipped run")
    runs = {r["trigger_depth"]: r for r in executions(site, script_id=script["id"])}
    assert skipped["trigger_depth"] == 9 and skipped["parent_execution_id"] == runs[8]["id"]
    assert (skipped["source"], skipped["trigger_id"], skipped["attempt"]) == ("kv", trigger["id"], 1)
    assert skipped["event_id"] and skipped["error"]["message"] and skipped["queued_at"].endswith("Z")
    assert_timestamps(skipped)


def test_a_dead_letter_handler_sees_the_whole_dead_letter(site, make_user):
    failing = site.script('log.error("failing at", ctx.attempt) error("broken " .. ctx.attempt)\n')
    trigger = add_trigger(site, "kv", failing, key_glob="doomed", retry=FAST_RETRY)
    user, developer = make_user("developer")
    handler_trigger = add_trigger(dataclasses.replace(site, api=developer), "dead_letter", record_script(site, "dl"))
    kv_put(site, "doomed", {"x": 1})
    record = seen(site, "dl")
    [dead] = dead_letters(site, open=False)
    event = record["event"]
    assert record["event_keys"] == [
        "attempts", "dead_letter_id", "kind", "last_error", "original_event", "script_id", "source", "trigger_id",
    ]
    assert (event["kind"], event["dead_letter_id"], event["source"]) == ("dead_letter", dead["id"], "kv")
    assert (event["trigger_id"], event["script_id"], event["attempts"]) == (trigger["id"], failing["id"], 3)
    assert event["original_event"] == dead["event"]
    assert event["original_event"]["key"] == "doomed" and event["original_event"]["value"] == {"x": 1}
    assert "broken 3" in event["last_error"]["message"]
    ctx = record["ctx"]
    assert (ctx["source"], ctx["attempt"], ctx["trigger_depth"]) == ("dead_letter", 1, 2)
    assert ctx["principal"] == {"user_id": user["id"], "username": user["username"]}
    failed = [r for r in finished(site, script_id=failing["id"])]
    assert sorted(r["attempt"] for r in failed) == [1, 2, 3]
    assert {r["event_id"] for r in failed} != {ctx["event_id"]}  # the handler's event is its own
    last = next(r for r in failed if r["attempt"] == 3)
    assert [(e["level"], e["message"]) for e in last["logs"]] == [("error", "failing at 3")]
    [handler_run] = executions(site, source="dead_letter")
    assert handler_run["id"] == ctx["execution_id"] and handler_run["event_id"] == ctx["event_id"]
    assert handler_run["trigger_id"] == handler_trigger["id"] and handler_run["parent_execution_id"] == last["id"]
    wait_for(lambda: site.api.get(f"/api/v1/admin/dead-letters/{dead['id']}").json()["resolution"] == "handled")


def test_an_async_run_gets_the_request_and_its_event_id(site):
    site.route("/async/:id", RECORD.replace("TAG", '"async"')
               + 'kv.set("request", {method = request.method, path = request.path, host = request.host, '
                 'params = request.params, query = request.query, json = request.json, '
                 'header = request.headers["x-a"], body = request.body})',
               method="POST", dispatch_mode="async", retry=FAST_RETRY)
    response = site.call("/async/7?q=1", method="POST", json={"n": None, "m": 1}, headers={"X-A": "b"})
    assert response.status_code == 202, response.text
    record = seen(site, "async")
    # The script stores the request after the record ``seen`` waits for.
    assert wait_for(lambda: kv_get(site, "request"), what="the stored request") == {
        "method": "POST", "path": "/async/7", "host": site.host, "params": {"id": "7"}, "query": {"q": "1"},
        "json": {"n": None, "m": 1}, "header": "b", "body": '{"n": null, "m": 1}',
    }
    ctx = record["ctx"]
    assert (ctx["source"], ctx["attempt"], ctx["trigger_depth"]) == ("http", 1, 0)
    assert "principal" not in ctx and record["has_request"] is True and record["event"] is None
    run = wait_for(lambda: (lambda r: r if r["status"] == "ok" else None)(
        execution(site, response.json()["execution_id"])))
    assert run["id"] == ctx["execution_id"] and run["event_id"] == ctx["event_id"]
    assert run["http_status"] == 204 and run["trigger_id"] is None
    assert_timestamps(run)


def test_a_replayed_event_keeps_its_event_id_and_counts_attempts_again(site):
    script = site.script(
        'kv.set("attempt/" .. ctx.event_id .. "/" .. ctx.execution_id, ctx.attempt)\n'
        'if not kv.get("fixed") then error("not yet") end\n'
    )
    add_trigger(site, "kv", script, key_glob="job", retry={**FAST_RETRY, "max_attempts": 2})
    kv_put(site, "job", 1)
    [dead] = wait_for(lambda: dead_letters(site), what="the dead letter")
    kv_put(site, "fixed", True)
    replayed = site.api.post(f"/api/v1/admin/dead-letters/{dead['id']}:replay")
    assert replayed.status_code == 200, replayed.text
    runs = wait_for(lambda: (lambda r: r if any(x["status"] == "ok" for x in r) else None)(
        executions(site, script_id=script["id"])), what="the replayed run")
    assert sorted((r["attempt"], r["status"]) for r in runs) == [(1, "ok"), (1, "script_error"), (2, "script_error")]
    assert len({r["event_id"] for r in runs}) == 1 and len({r["id"] for r in runs}) == 3
    items = site.api.get(f"/api/v1/admin/apps/{site.app['id']}/kv", params={"prefix": "attempt/"}).json()["items"]
    assert sorted(item["value"] for item in items) == [1, 1, 2]
    assert {item["key"].split("/")[1] for item in items} == {runs[0]["event_id"]}


def test_script_errors_from_the_data_plane_fail_a_triggered_run_and_are_retried(site):
    script = site.script('kv.set(string.rep("k", 600), 1)\n')
    add_trigger(site, "kv", script, key_glob="bad-write", retry={**FAST_RETRY, "max_attempts": 2})
    kv_put(site, "bad-write", 1)
    [dead] = wait_for(lambda: dead_letters(site), what="the dead letter")
    assert dead["attempts"] == 2 and dead["last_error"]["status"] == "script_error"
    assert "kv.set" in dead["last_error"]["message"] and "512 bytes" in dead["last_error"]["message"]
    assert dead["last_error"]["line"] == 1
    response = run_lua(site, 'return kv.get(string.rep("k", 600))')
    assert response.status_code == 422 and response.json()["error"]["code"] == "script_error"


def test_a_handler_sees_a_missing_error_line_as_nil(site):
    # Stuck in C: only the timeout ends it, and a timeout has no line.
    stuck = site.script("return ('a'):rep(400):find('.-.-.-b')", timeout_seconds=1)
    add_trigger(site, "kv", stuck, key_glob="stuck", retry={**FAST_RETRY, "max_attempts": 1})
    add_trigger(site, "dead_letter", site.script(
        'kv.set("last_error", {status = event.last_error.status, line_is_nil = event.last_error.line == nil, '
        'message = event.last_error.message, prev_is_null = event.original_event.prev_value == json.null})\n'))
    kv_put(site, "stuck", 1)
    seen_error = wait_for(lambda: kv_get(site, "last_error"), what="the handler run")
    assert seen_error["status"] == "timeout" and seen_error["line_is_nil"] is True and seen_error["message"]
    assert seen_error["prev_is_null"] is True  # the original event is JSON data: its nulls are json.null
    [dead] = dead_letters(site, open=False)
    assert dead["last_error"]["line"] is None  # the admin API still shows the null
