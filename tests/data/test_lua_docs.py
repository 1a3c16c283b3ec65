"""docs/api.md §7: ``docs.*`` in scripts, through real routes over HTTP."""
import uuid

from tests.data.conftest import docs_url, lua_json

PEOPLE = """
docs.insert("people", {_id = "p1", name = "ann", age = 31, city = "oslo", admin = true})
docs.insert("people", {_id = "p2", name = "bob", age = 25, city = "rome", admin = false})
docs.insert("people", {_id = "p3", name = "cid", age = 40, city = "oslo", tags = {"x", "y"}})
docs.insert("people", {_id = "p4", name = "dee", age = 25.5, city = json.null})
docs.insert("people", {_id = "p5", name = "eve", age = "unknown", city = "rome", tags = {"x"}})
docs.insert("people", {_id = "p6", name = "fay", city = "oslo", address = {zip = "0150", town = "oslo"}})
docs.insert("people", {_id = "p7", name = "gus", age = 19, city = "oslo"})
"""

# Collect every page of a find into one list of ids.
ALL_PAGES = """
local function ids(coll, filter, sort, limit)
  local out, cursor, pages = {}, nil, 0
  repeat
    local page = docs.find(coll, filter, {sort = sort, limit = limit, cursor = cursor})
    for _, d in ipairs(page.docs) do out[#out + 1] = d._id end
    cursor = page.cursor
    pages = pages + 1
  until cursor == nil
  return {ids = table.concat(out, " "), pages = pages}
end
"""


def test_insert_get_update_delete(site):
    result = lua_json(
        site,
        """
        local generated = docs.insert("users", {name = "ann", tags = {"a", json.null}})
        local given = docs.insert("users", {_id = "bob", name = "bob", nick = json.null})
        local ok, err = pcall(docs.insert, "users", {_id = "bob"})
        local bob = docs.get("users", "bob")
        local ann = docs.get("users", generated)
        local r = {
          generated = generated, given = given, taken_ok = ok, taken = err,
          bob = bob, nick_is_null = bob.nick == json.null, ann_tag_null = ann.tags[2] == json.null,
          missing = docs.get("users", "nobody") == nil,
        }
        r.updated = docs.update("users", "bob", {name = "robert"})
        r.updated_missing = docs.update("users", "nobody", {name = "x"})
        r.after_update = docs.get("users", "bob")
        r.deleted = docs.delete("users", "bob")
        r.deleted_again = docs.delete("users", "bob")
        r.after_delete = docs.get("users", "bob") == nil
        return r
        """,
    )
    assert uuid.UUID(result["generated"])
    assert result["given"] == "bob"
    assert result["taken_ok"] is False and "docs.insert" in result["taken"] and "_id already exists" in result["taken"]
    assert result["bob"] == {"_id": "bob", "name": "bob", "nick": None}
    assert result["nick_is_null"] is True and result["ann_tag_null"] is True
    assert result["missing"] is True
    assert result["updated"] is True and result["updated_missing"] is False
    assert result["after_update"] == {"_id": "bob", "name": "robert"}
    assert result["deleted"] is True and result["deleted_again"] is False and result["after_delete"] is True
    ann = site.api.get(docs_url(site, "users", result["generated"])).json()
    assert ann == {"_id": result["generated"], "name": "ann", "tags": ["a", None]}


def test_find_filters_top_level_fields_by_equality(site):
    result = lua_json(
        site,
        PEOPLE
        + ALL_PAGES
        + """
        return {
          oslo = ids("people", {city = "oslo"}).ids,
          oslo_25 = ids("people", {city = "rome", age = 25}).ids,
          number = ids("people", {age = 25.0}).ids,
          float = ids("people", {age = 25.5}).ids,
          text_not_number = ids("people", {age = "25"}).ids,
          yes = ids("people", {admin = true}).ids,
          no = ids("people", {admin = false}).ids,
          null = ids("people", {city = json.null}).ids,
          array = ids("people", {tags = {"x"}}).ids,
          object = ids("people", {address = {town = "oslo", zip = "0150"}}).ids,
          partial_object = ids("people", {address = {town = "oslo"}}).ids,
          by_id = ids("people", {_id = "p3"}).ids,
          none = ids("people", {city = "paris"}).ids,
          empty_filter = ids("people", {}).ids,
          other_collection = ids("nobody").ids,
        }
        """,
    )
    assert result == {
        "oslo": "p1 p3 p6 p7",
        "oslo_25": "p2",
        "number": "p2",
        "float": "p4",
        "text_not_number": "",
        "yes": "p1",
        "no": "p2",
        "null": "p4",
        "array": "p5",
        "object": "p6",
        "partial_object": "",
        "by_id": "p3",
        "none": "",
        "empty_filter": "p1 p2 p3 p4 p5 p6 p7",
        "other_collection": "",
    }


def test_find_sorts_pages_and_counts(site):
    result = lua_json(
        site,
        PEOPLE
        + ALL_PAGES
        + """
        local first = docs.find("people", nil, {limit = 2})
        return {
          default = ids("people", nil, nil, 3),
          age = ids("people", nil, "age", 2),
          age_desc = ids("people", nil, "-age", 3),
          name_desc = ids("people", {city = "oslo"}, "-name", 1),
          by_id_desc = ids("people", nil, "-_id", 4).ids,
          first = {#first.docs, first.docs[1].name, first.cursor ~= nil},
          count = docs.count("people"),
          count_oslo = docs.count("people", {city = "oslo"}),
          count_none = docs.count("nobody"),
        }
        """,
    )
    assert result["default"] == {"ids": "p1 p2 p3 p4 p5 p6 p7", "pages": 3}
    # Missing first, then numbers by value (ties by _id), then strings.
    assert result["age"] == {"ids": "p6 p7 p2 p4 p1 p3 p5", "pages": 4}
    assert result["age_desc"] == {"ids": "p5 p3 p1 p4 p2 p7 p6", "pages": 3}
    assert result["name_desc"] == {"ids": "p7 p6 p3 p1", "pages": 4}
    assert result["by_id_desc"] == "p7 p6 p5 p4 p3 p2 p1"
    assert result["first"] == [2, "ann", True]
    assert (result["count"], result["count_oslo"], result["count_none"]) == (7, 4, 0)


def test_bad_arguments_are_catchable_errors(site):
    result = lua_json(
        site,
        """
        docs.insert("c", {_id = "a", n = 1})
        docs.insert("c", {_id = "b", n = 2})
        local function err(f, ...)
          local ok, e = pcall(f, ...)
          return ok and "no error" or e
        end
        local page = docs.find("c", nil, {sort = "n", limit = 1})
        return {
          collection = err(docs.insert, "bad name", {}),
          not_object = err(docs.insert, "c", "text"),
          id_type = err(docs.insert, "c", {_id = 5}),
          id_change = err(docs.update, "c", "a", {_id = "b"}),
          filter = err(docs.find, "c", "x"),
          option = err(docs.find, "c", nil, {order = "n"}),
          sort = err(docs.find, "c", nil, {sort = "-"}),
          limit = err(docs.count, "c", {}, 1),
          cursor_for_other_sort = err(docs.find, "c", nil, {sort = "-n", cursor = page.cursor}),
          unchanged = docs.get("c", "a"),
        }
        """,
    )
    assert "collection name" in result["collection"]
    assert "JSON object" in result["not_object"]
    assert "document id must be a string" in result["id_type"]
    assert "_id cannot change" in result["id_change"]
    assert "filter" in result["filter"]
    assert "unknown option 'order'" in result["option"]
    assert "sort" in result["sort"]
    assert "at most 2 arguments" in result["limit"]
    assert "cursor" in result["cursor_for_other_sort"]
    assert result["unchanged"] == {"_id": "a", "n": 1}


def test_apps_never_see_each_others_documents(site, other_site):
    lua_json(site, 'docs.insert("c", {_id = "mine", v = 1}) return true')
    lua_json(other_site, 'docs.insert("c", {_id = "theirs"}) return true')
    result = lua_json(
        other_site,
        """
        local seen = {get = docs.get("c", "mine") == nil}
        seen.update = docs.update("c", "mine", {v = 2})
        seen.delete = docs.delete("c", "mine")
        seen.count = docs.count("c")
        seen.ids = {}
        for _, d in ipairs(docs.find("c").docs) do seen.ids[#seen.ids + 1] = d._id end
        seen.insert = docs.insert("c", {_id = "mine"})
        return seen
        """,
    )
    assert result == {"get": True, "update": False, "delete": False, "count": 1, "ids": ["theirs"], "insert": "mine"}
    assert site.api.get(docs_url(site, "c", "mine")).json() == {"_id": "mine", "v": 1}
