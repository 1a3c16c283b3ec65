"""Docs: ``/api/v1/admin/apps/{app}/docs``, ``.../docs/{collection}[/{id}]`` (docs/api.md §7).

Collections exist while they hold documents: listing an empty or unknown (but valid)
collection answers an empty page. A PUT replaces an existing document (404 if there is
none, as ``docs.update`` in Lua changes nothing then); an ``_id`` in its body must be
the one in the URL.
"""
from flask import current_app, request

from picloud.admin_api.base import bp, limit_arg, requires
from picloud.admin_api.kv import json_value
from picloud.data.docs import DocStore
from picloud.errors import NotFound
from picloud.manager.apps import resolve_app_id


def doc_store(id_or_slug):
    """Return the document store of the app named in the URL."""
    return DocStore(resolve_app_id(id_or_slug), max_value_bytes=current_app.config["PICLOUD"].max_value_bytes)


@bp.get("/admin/apps/<id_or_slug>/docs")
@requires("data.read")
def list_collections(id_or_slug):
    """List an app's collections with how many documents each holds."""
    counts = doc_store(id_or_slug).collections()
    return {"collections": [{"name": name, "count": count} for name, count in counts]}


@bp.get("/admin/apps/<id_or_slug>/docs/<collection>")
@requires("data.read")
def list_docs(id_or_slug, collection):
    """List the documents of a collection by ``_id``."""
    docs, next_cursor = doc_store(id_or_slug).find(
        collection, limit=limit_arg(), cursor=request.args.get("cursor") or None
    )
    return {"docs": docs, "next_cursor": next_cursor}


@bp.post("/admin/apps/<id_or_slug>/docs/<collection>")
@requires("data.write")
def insert_doc(id_or_slug, collection):
    """Insert a document, with the body's ``_id`` or a new one."""
    store = doc_store(id_or_slug)
    return store.insert(collection, json_value(require_object=True, field="document")), 201


@bp.get("/admin/apps/<id_or_slug>/docs/<collection>/<data_key:doc_id>", merge_slashes=False)
@requires("data.read")
def show_doc(id_or_slug, collection, doc_id):
    """Show a document."""
    doc = doc_store(id_or_slug).get(collection, doc_id)
    if doc is None:
        raise NotFound("No such document.")
    return doc


@bp.put("/admin/apps/<id_or_slug>/docs/<collection>/<data_key:doc_id>", merge_slashes=False)
@requires("data.write")
def replace_doc(id_or_slug, collection, doc_id):
    """Replace a document with the body."""
    store = doc_store(id_or_slug)
    doc = store.replace(collection, doc_id, json_value(require_object=True, field="document"))
    if doc is None:
        raise NotFound("No such document.")
    return doc


@bp.delete("/admin/apps/<id_or_slug>/docs/<collection>/<data_key:doc_id>", merge_slashes=False)
@requires("data.write")
def delete_doc(id_or_slug, collection, doc_id):
    """Delete a document."""
    if not doc_store(id_or_slug).delete(collection, doc_id):
        raise NotFound("No such document.")
    return "", 204
