"""KV: ``/api/v1/admin/apps/{app}/kv`` and ``.../kv/{key}`` (docs/api.md §7).

A key sits in the URL percent-encoded and may hold any character, ``/`` included, even
at its start or twice in a row: the ``data_key`` converter takes the rest of the path
as is, and its rules never merge slashes.
"""
from flask import current_app, request
from werkzeug.routing import BaseConverter

from picloud.admin_api.base import bp, json_body, limit_arg, requires
from picloud.data import MAX_DEPTH
from picloud.data.kv import KVStore
from picloud.errors import BadRequest, NotFound, ValidationFailed
from picloud.manager.apps import resolve_app_id


class DataKeyConverter(BaseConverter):
    """The rest of the path, whatever it holds: a KV key or a document id."""

    regex = ".+"
    part_isolating = False


# Registered (on every app the blueprint joins) before the rules below are added.
bp.record(lambda state: state.app.url_map.converters.setdefault("data_key", DataKeyConverter))


def kv_store(id_or_slug):
    """Return the KV store of the app named in the URL."""
    return KVStore(resolve_app_id(id_or_slug), max_value_bytes=current_app.config["PICLOUD"].max_value_bytes)


def json_value(*, require_object=False, field="value"):
    """Return the request body, any JSON value (or an object); 400 if there is none."""
    if not request.get_data(cache=True):
        raise BadRequest("The request body must be a JSON value.")
    try:
        return json_body(require_object=require_object)
    except RecursionError:
        raise ValidationFailed(field, f"JSON may be nested at most {MAX_DEPTH} levels.") from None


@bp.get("/admin/apps/<id_or_slug>/kv")
@requires("data.read")
def list_kv(id_or_slug):
    """List an app's keys with their values in byte order, optionally under a prefix."""
    entries, next_cursor = kv_store(id_or_slug).list(
        prefix=request.args.get("prefix") or None,
        limit=limit_arg(),
        cursor=request.args.get("cursor") or None,
    )
    return {"items": [entry.to_dict() for entry in entries], "next_cursor": next_cursor}


@bp.get("/admin/apps/<id_or_slug>/kv/<data_key:key>", merge_slashes=False)
@requires("data.read")
def show_kv(id_or_slug, key):
    """Show the value under a key."""
    entry = kv_store(id_or_slug).get(key)
    if entry is None:
        raise NotFound("No such key.")
    return entry.to_dict()


@bp.put("/admin/apps/<id_or_slug>/kv/<data_key:key>", merge_slashes=False)
@requires("data.write")
def put_kv(id_or_slug, key):
    """Store the request body, any JSON value, under a key."""
    store = kv_store(id_or_slug)
    return store.set(key, json_value()).to_dict()


@bp.delete("/admin/apps/<id_or_slug>/kv/<data_key:key>", merge_slashes=False)
@requires("data.write")
def delete_kv(id_or_slug, key):
    """Delete a key."""
    if not kv_store(id_or_slug).delete(key):
        raise NotFound("No such key.")
    return "", 204
