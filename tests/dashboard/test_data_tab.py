"""The Data tab over HTTP: the KV browser, keys, collections and documents, as a browser posts them."""
import html
import json
import uuid
from urllib.parse import quote

import pytest

from tests.conftest import ADMIN_PASSWORD
from tests.data.conftest import add_trigger, docs_url, kv_url, wait_for
from tests.support.apps import other_site, site  # noqa: F401  (fixtures)
from tests.support.dashboard import Dashboard


@pytest.fixture(scope="module")
def dash(server):
    return Dashboard(server.url, "admin", ADMIN_PASSWORD)


def data_path(site, rest=""):
    return f"/admin/apps/{site.slug}/data{rest}"


def text_of(response):
    return html.unescape(response.text)


def put(site, key, value):
    assert site.api.put(kv_url(site, key), json=value).status_code == 200


def test_the_data_tab_lists_keys_with_previews(site, dash):
    put(site, "user/1", {"name": "ann"})
    put(site, "user/2", [1, None])
    put(site, "long-value", "x" * 500)
    page = dash.get(data_path(site))
    assert page.status_code == 200
    assert 'aria-selected="true">Data<' in page.text
    body = text_of(page)
    assert '{"name":"ann"}' in body and "[1,null]" in body
    assert "x" * 150 in body and "x" * 250 not in body  # a long value shows its start only
    assert body.index("long-value") < body.index("user/1") < body.index("user/2")

    searched = text_of(dash.get(data_path(site), params={"prefix": "user/"}))
    assert "user/1" in searched and "user/2" in searched and "long-value" not in searched
    partial = dash.get(data_path(site), params={"prefix": "user/"}, htmx=True)
    assert partial.status_code == 200 and "<html" not in partial.text and 'id="keys"' in partial.text


def test_the_key_list_pages(site, dash):
    for i in range(55):
        put(site, f"k{i:02}", i)
    first = text_of(dash.get(data_path(site)))
    assert "k49" in first and "k50" not in first and "More keys" in first
    next_url = html.unescape(first.split('More keys')[0].rsplit('href="', 1)[1].split('"')[0])
    second = text_of(dash.get(next_url))
    assert "k50" in second and "k54" in second and "k49" not in second and "More keys" not in second


def test_set_a_key_from_the_form(site, dash):
    saved = dash.post(data_path(site, "/kv"), {"key": "from/dashboard", "value": '{"a": [1, null]}'}, htmx=True)
    assert saved.status_code == 200
    assert "Saved from/dashboard." in text_of(saved) and "<html" not in saved.text
    assert site.api.get(kv_url(site, "from/dashboard")).json()["value"] == {"a": [1, None]}

    null = dash.post(data_path(site, "/kv"), {"key": "nothing", "value": "null"}, htmx=True)
    assert null.status_code == 200
    assert site.api.get(kv_url(site, "nothing")).json()["value"] is None

    broken = dash.post(data_path(site, "/kv"), {"key": "broken", "value": "{nope"}, htmx=True)
    assert broken.status_code == 422 and "Not valid JSON" in text_of(broken)
    long_key = dash.post(data_path(site, "/kv"), {"key": "é" * 300, "value": "1"}, htmx=True)
    assert long_key.status_code == 422 and "512 bytes" in text_of(long_key)
    empty = dash.post(data_path(site, "/kv"), {"key": "", "value": "1"}, htmx=True)
    assert empty.status_code == 422
    keys = [i["key"] for i in site.api.get(kv_url(site)).json()["items"]]
    assert keys == ["from/dashboard", "nothing"]


def test_view_edit_and_delete_a_key(site, dash):
    key = "a/b?c&d"
    put(site, key, {"v": 1})
    page = dash.get(data_path(site, "/kv/entry"), params={"key": key})
    assert page.status_code == 200
    assert '"v": 1' in text_of(page)

    saved = dash.post(data_path(site, "/kv/entry?key=" + quote(key, safe="")), {"value": "[2, 3]"})
    assert saved.status_code == 200 and "Saved." in text_of(saved)
    assert site.api.get(kv_url(site, key)).json()["value"] == [2, 3]
    broken = dash.post(data_path(site, "/kv/entry?key=" + quote(key, safe="")), {"value": "[2,"})
    assert broken.status_code == 422 and "Not valid JSON" in text_of(broken)

    deleted = dash.post(data_path(site, "/kv/delete"), {"target": key}, htmx=True)
    assert deleted.status_code == 200 and deleted.headers["HX-Redirect"] == data_path(site)
    assert site.api.get(kv_url(site, key)).status_code == 404
    assert dash.get(data_path(site, "/kv/entry"), params={"key": key}).status_code == 404
    assert dash.get(data_path(site, "/kv/entry"), params={"key": ""}).status_code == 404
    assert dash.get(data_path(site, "/kv/entry"), params={"key": "x" * 600}).status_code == 404
    assert dash.post(data_path(site, "/kv/delete"), {"target": key}).status_code == 404


def test_viewers_read_but_cannot_write(site, server, admin):
    username, password = f"viewer-{uuid.uuid4().hex[:8]}", "viewer-password-1"
    created = admin.post("/api/v1/admin/users", json={"username": username, "password": password, "role": "viewer"})
    assert created.status_code == 201
    viewer = Dashboard(server.url, username, password)
    put(site, "k", 1)
    assert site.api.post(docs_url(site, "c"), json={"_id": "d"}).status_code == 201
    page = viewer.get(data_path(site))
    assert page.status_code == 200 and "Set a key" not in page.text
    key_page = viewer.get(data_path(site, "/kv/entry"), params={"key": "k"})
    assert key_page.status_code == 200 and "Save value" not in key_page.text
    assert viewer.get(data_path(site, "/docs/c/doc"), params={"id": "d"}).status_code == 200
    for path, form in (
        ("/kv", {"key": "k", "value": "2"}),
        ("/kv/entry?key=k", {"value": "2"}),
        ("/kv/delete", {"target": "k"}),
        ("/docs", {"collection": "c", "document": "{}"}),
        ("/docs/c/delete", {"target": "d"}),
    ):
        assert viewer.post(data_path(site, path), form).status_code == 403
    assert site.api.get(kv_url(site, "k")).json()["value"] == 1
    assert site.api.get(docs_url(site, "c", "d")).status_code == 200


def test_collections_insert_browse_edit_and_delete_documents(site, dash):
    for doc_id in ("o1", "o2"):
        assert site.api.post(docs_url(site, "orders"), json={"_id": doc_id, "total": 1}).status_code == 201
    assert site.api.post(docs_url(site, "users"), json={}).status_code == 201
    listing = text_of(dash.get(data_path(site, "/docs")))
    assert "orders" in listing and "users" in listing

    inserted = dash.post(data_path(site, "/docs"), {"collection": "orders", "document": '{"_id": "o/3", "total": 9}'})
    assert inserted.status_code == 303
    assert inserted.headers["Location"] == data_path(site, "/docs/orders/doc?id=o/3")
    assert site.api.get(docs_url(site, "orders", "o/3")).json() == {"_id": "o/3", "total": 9}
    taken = dash.post(data_path(site, "/docs"), {"collection": "orders", "document": '{"_id": "o1"}'})
    assert taken.status_code == 409 and "already exists" in text_of(taken)
    for form, message in (
        ({"collection": "orders", "document": "[1]"}, "JSON object"),
        ({"collection": "orders", "document": "{"}, "Not valid JSON"),
        ({"collection": "bad name", "document": "{}"}, "letters, digits"),
    ):
        refused = dash.post(data_path(site, "/docs"), form)
        assert refused.status_code == 422 and message in text_of(refused)

    browse = dash.get(data_path(site, "/docs/orders"))
    assert browse.status_code == 200
    assert all(doc_id in text_of(browse) for doc_id in ("o1", "o2", "o/3"))
    assert "<html" not in dash.get(data_path(site, "/docs/orders"), htmx=True).text

    page = dash.get(data_path(site, "/docs/orders/doc"), params={"id": "o1"})
    assert page.status_code == 200 and '"total": 1' in text_of(page)
    saved = dash.post(data_path(site, "/docs/orders/doc?id=o1"), {"document": '{"total": 5}'})
    assert saved.status_code == 200 and "Saved." in text_of(saved)
    assert site.api.get(docs_url(site, "orders", "o1")).json() == {"_id": "o1", "total": 5}
    moved = dash.post(data_path(site, "/docs/orders/doc?id=o1"), {"document": '{"_id": "o9"}'})
    assert moved.status_code == 422 and "cannot change" in text_of(moved)

    deleted = dash.post(data_path(site, "/docs/orders/delete"), {"target": "o1"})
    assert deleted.status_code == 303 and deleted.headers["Location"] == data_path(site, "/docs/orders")
    assert site.api.get(docs_url(site, "orders", "o1")).status_code == 404
    assert dash.get(data_path(site, "/docs/orders/doc"), params={"id": "o1"}).status_code == 404


def test_setting_a_key_in_the_data_tab_fires_kv_triggers(site, dash):
    add_trigger(site, "kv", site.script('kv.set("seen", {key = event.key, value = event.value})'), key_glob="tab/*")
    assert dash.post(data_path(site, "/kv"), {"key": "tab/1", "value": '"hi"'}, htmx=True).status_code == 200
    seen = wait_for(lambda: site.api.get(kv_url(site, "seen")).json().get("value"), what="the triggered run")
    assert seen == {"key": "tab/1", "value": "hi"}


def test_a_former_slug_redirects_to_the_same_page(site, dash):
    old = site.slug
    assert site.api.patch(f"/api/v1/admin/apps/{site.app['id']}", json={"slug": old + "-new"}).status_code == 200
    response = dash.get(f"/admin/apps/{old}/data/kv/entry?key=a%2Fb")
    assert response.status_code == 301
    assert response.headers["Location"] == f"/admin/apps/{old}-new/data/kv/entry?key=a%2Fb"


# Listings show previews: a page's size does not grow with the values on it.

HUGE_UNITS = 174_000  # '"<&é' is 6 bytes of JSON: about 1 MiB, under PICLOUD_MAX_VALUE_BYTES
ROWS = 12


def huge_value(n):
    """A value of about 1 MiB whose JSON and HTML both need escaping at every character."""
    return {"body": '"<&é' * HUGE_UNITS, "n": n}


def as_json(value):
    """Send a value as compact UTF-8 JSON, so that 1 MiB of it fits in one request body."""
    body = json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
    return {"data": body, "headers": {"Content-Type": "application/json"}}


def test_the_key_list_stays_small_with_values_of_a_mebibyte(site, dash):
    for n in range(ROWS):
        put(site, f"small/{n:02}", {"n": n})
        assert site.api.put(kv_url(site, f"large/{n:02}"), **as_json(huge_value(n))).status_code == 200
    small = dash.get(data_path(site), params={"prefix": "small/"}, htmx=True)
    large = dash.get(data_path(site), params={"prefix": "large/"}, htmx=True)
    assert small.status_code == large.status_code == 200
    assert len(large.content) - len(small.content) < ROWS * 1500  # a preview's worth per row
    assert len(large.content) < 40_000
    body = text_of(large)
    assert all(f"large/{n:02}" in body for n in range(ROWS))
    assert body.count('class="cut"') == ROWS and 'class="cut"' not in text_of(small)
    assert '{"body":"\\"<&é' in body  # each row shows its value's start

    whole = dash.get(data_path(site), params={"prefix": "large/"})  # the page around it too
    assert len(whole.content) < len(large.content) + 20_000

    opened = dash.get(data_path(site, "/kv/entry"), params={"key": "large/03"})
    assert opened.status_code == 200  # the value itself is loaded on its own page only
    assert text_of(opened).count('\\"<&é') == HUGE_UNITS and '"n": 3' in text_of(opened)


def test_a_collection_page_stays_small_with_documents_of_a_mebibyte(site, dash):
    for n in range(ROWS):
        small = site.api.post(docs_url(site, "small"), json={"_id": f"d{n:02}", "n": n})
        large = site.api.post(docs_url(site, "large"), **as_json({"_id": f"d{n:02}", **huge_value(n)}))
        assert small.status_code == large.status_code == 201, large.text
    small = dash.get(data_path(site, "/docs/small"), htmx=True)
    large = dash.get(data_path(site, "/docs/large"), htmx=True)
    assert small.status_code == large.status_code == 200
    assert len(large.content) - len(small.content) < ROWS * 1500
    assert len(large.content) < 40_000
    assert text_of(large).count('class="cut"') == ROWS and 'class="cut"' not in small.text
    assert '"n":' in text_of(small) and "'n'" not in text_of(small)  # a short document shows as JSON

    opened = dash.get(data_path(site, "/docs/large/doc"), params={"id": "d05"})
    assert opened.status_code == 200 and text_of(opened).count('\\"<&é') == HUGE_UNITS


def test_a_preview_is_marked_cut_only_when_the_value_is_longer_than_it(site, dash):
    from picloud.data.kv import PREVIEW_CHARS

    whole = "x" * (PREVIEW_CHARS - 2)  # with its quotes, exactly PREVIEW_CHARS characters of JSON
    put(site, "edge/whole", whole)
    put(site, "edge/longer", whole + "y")
    page = text_of(dash.get(data_path(site), params={"prefix": "edge/"}, htmx=True))
    rows = {key: row for row in page.split("<tr")[1:] for key in ("whole", "longer") if f"edge/{key}<" in row}
    assert f'"{whole}"' in rows["whole"] and 'class="cut"' not in rows["whole"]
    assert 'class="cut"' in rows["longer"]
