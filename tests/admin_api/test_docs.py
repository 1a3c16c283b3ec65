"""docs/api.md §7: the docs admin API — collections, insert, get, replace, delete, list, and every error."""
import uuid

import pytest

from tests.data.conftest import docs_url
from tests.support.apps import other_site, site  # noqa: F401  (fixtures)


def insert(site, collection, doc):
    response = site.api.post(docs_url(site, collection), json=doc)
    assert response.status_code == 201, response.text
    return response.json()


def test_insert_honours_the_id_and_answers_the_doc(site):
    doc = insert(site, "orders", {"_id": "o1", "total": 5, "lines": [{"sku": "a", "n": None}]})
    assert doc == {"_id": "o1", "total": 5, "lines": [{"sku": "a", "n": None}]}
    shown = site.api.get(docs_url(site, "orders", "o1"))
    assert shown.status_code == 200 and shown.json() == doc


def test_insert_without_an_id_gets_a_uuid(site):
    doc = insert(site, "notes", {"text": "hi"})
    assert uuid.UUID(doc["_id"]) and doc["text"] == "hi"
    assert site.api.get(docs_url(site, "notes", doc["_id"])).json() == doc
    empty = insert(site, "notes", {})
    assert set(empty) == {"_id"}


def test_an_existing_id_is_409_id_taken(site):
    insert(site, "c", {"_id": "same", "v": 1})
    response = site.api.post(docs_url(site, "c"), json={"_id": "same", "v": 2})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "id_taken"
    assert site.api.get(docs_url(site, "c", "same")).json()["v"] == 1
    # The same id in another collection is another document.
    assert insert(site, "d", {"_id": "same"})["_id"] == "same"


@pytest.mark.parametrize(
    "body, status, field",
    [
        ({"_id": 7}, 422, "_id"),
        ({"_id": ""}, 422, "_id"),
        ({"_id": "x" * 513}, 422, "_id"),
        ({"text": "nul\x00"}, 422, "document"),
        ([1, 2], 400, None),
        ("text", 400, None),
    ],
)
def test_bad_documents(site, body, status, field):
    response = site.api.post(docs_url(site, "c"), json=body)
    assert response.status_code == status, response.text
    if field:
        assert response.json()["error"]["field"] == field
    assert site.api.get(docs_url(site)).json()["collections"] == []


@pytest.mark.parametrize("collection", ["has space", "x" * 65, "ümlaut", "semi;colon"])
def test_bad_collection_names_are_422(site, collection):
    response = site.api.post(docs_url(site, collection), json={"a": 1})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == "collection"
    listed = site.api.get(docs_url(site, collection))
    assert listed.status_code == 422 and listed.json()["error"]["field"] == "collection"


def test_collections_with_counts(site):
    assert site.api.get(docs_url(site)).json() == {"collections": []}
    for collection, n in (("users", 3), ("orders", 1), ("a.b_c-D", 2)):
        for _ in range(n):
            insert(site, collection, {})
    assert site.api.get(docs_url(site)).json() == {
        "collections": [{"name": "a.b_c-D", "count": 2}, {"name": "orders", "count": 1}, {"name": "users", "count": 3}]
    }


def test_replace_answers_the_new_doc(site):
    insert(site, "c", {"_id": "d", "old": True})
    replaced = site.api.put(docs_url(site, "c", "d"), json={"new": 1})
    assert replaced.status_code == 200
    assert replaced.json() == {"_id": "d", "new": 1}
    assert site.api.get(docs_url(site, "c", "d")).json() == {"_id": "d", "new": 1}
    same_id = site.api.put(docs_url(site, "c", "d"), json={"_id": "d", "newer": 2})
    assert same_id.status_code == 200 and same_id.json() == {"_id": "d", "newer": 2}


def test_replace_errors(site):
    insert(site, "c", {"_id": "d", "v": 1})
    missing = site.api.put(docs_url(site, "c", "nope"), json={"v": 2})
    assert missing.status_code == 404
    other_id = site.api.put(docs_url(site, "c", "d"), json={"_id": "e", "v": 2})
    assert other_id.status_code == 422 and other_id.json()["error"]["field"] == "_id"
    not_object = site.api.put(docs_url(site, "c", "d"), json=[1])
    assert not_object.status_code == 400
    assert site.api.get(docs_url(site, "c", "d")).json() == {"_id": "d", "v": 1}
    assert site.api.get(docs_url(site, "c", "nope")).status_code == 404


def test_delete_answers_204_then_404(site):
    insert(site, "c", {"_id": "d"})
    deleted = site.api.delete(docs_url(site, "c", "d"))
    assert deleted.status_code == 204
    assert site.api.get(docs_url(site, "c", "d")).status_code == 404
    assert site.api.delete(docs_url(site, "c", "d")).status_code == 404
    assert site.api.get(docs_url(site)).json()["collections"] == []


@pytest.mark.parametrize("doc_id", ["a/b", "/x//y/", "sp ace?#", "ü✓", "%41"])
def test_ids_may_hold_any_character_when_url_encoded(site, doc_id):
    insert(site, "c", {"_id": doc_id, "v": 1})
    assert site.api.get(docs_url(site, "c", doc_id)).json() == {"_id": doc_id, "v": 1}
    assert site.api.put(docs_url(site, "c", doc_id), json={"v": 2}).json() == {"_id": doc_id, "v": 2}
    assert site.api.delete(docs_url(site, "c", doc_id)).status_code == 204


def test_list_a_collection_by_id_in_pages(site):
    ids = [f"d{i:02}" for i in range(7)]
    for doc_id in reversed(ids):
        insert(site, "c", {"_id": doc_id, "n": int(doc_id[1:])})
    insert(site, "other", {"_id": "x"})
    seen, cursor, pages = [], None, 0
    while True:
        body = site.api.get(docs_url(site, "c"), params={"limit": 3, **({"cursor": cursor} if cursor else {})}).json()
        seen += body["docs"]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [d["_id"] for d in seen] == ids and pages == 3
    assert seen[4] == {"_id": "d04", "n": 4}
    assert site.api.get(docs_url(site, "empty")).json() == {"docs": [], "next_cursor": None}
    bad = site.api.get(docs_url(site, "c"), params={"cursor": "bm9wZQ"})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor"


def test_another_apps_documents_are_404(site, other_site):
    insert(site, "c", {"_id": "mine", "v": 1})
    insert(other_site, "c", {"_id": "theirs"})
    assert other_site.api.get(docs_url(other_site, "c", "mine")).status_code == 404
    assert other_site.api.put(docs_url(other_site, "c", "mine"), json={"v": 9}).status_code == 404
    assert other_site.api.delete(docs_url(other_site, "c", "mine")).status_code == 404
    assert [d["_id"] for d in other_site.api.get(docs_url(other_site, "c")).json()["docs"]] == ["theirs"]
    assert other_site.api.get(docs_url(other_site)).json()["collections"] == [{"name": "c", "count": 1}]
    assert site.api.get(docs_url(site, "c", "mine")).json() == {"_id": "mine", "v": 1}


def test_former_slug_redirects(site):
    insert(site, "c", {"_id": "d"})
    old = site.slug
    assert site.api.patch(f"/api/v1/admin/apps/{site.app['id']}", json={"slug": old + "-new"}).status_code == 200
    response = site.api.get(f"/api/v1/admin/apps/{old}/docs/c/d")
    assert response.status_code == 308
    assert response.headers["Location"] == f"/api/v1/admin/apps/{old}-new/docs/c/d"
    assert site.api.get(response.headers["Location"]).json() == {"_id": "d"}


def test_capabilities(site, make_user, anonymous):
    insert(site, "c", {"_id": "d"})
    _, viewer = make_user("viewer")
    assert viewer.get(docs_url(site)).status_code == 200
    assert viewer.get(docs_url(site, "c")).status_code == 200
    assert viewer.get(docs_url(site, "c", "d")).status_code == 200
    for response in (
        viewer.post(docs_url(site, "c"), json={}),
        viewer.put(docs_url(site, "c", "d"), json={}),
        viewer.delete(docs_url(site, "c", "d")),
    ):
        assert response.status_code == 403
        assert response.json()["error"]["capability"] == "data.write"
    assert anonymous.get(docs_url(site)).status_code == 401
    _, developer = make_user("developer")
    assert developer.put(docs_url(site, "c", "d"), json={"by": "dev"}).status_code == 200
    assert site.api.get(docs_url(site, "c", "d")).json() == {"_id": "d", "by": "dev"}
