"""The ``kv`` and ``docs`` modules of scripts: host functions of the sandbox (docs/api.md §7).

A script's call crosses to the web process as ``host(module, fn, args)`` with the
arguments decoded from JSON (Lua nil and ``json.null`` both arrive as None; an empty
Lua table as ``{}``) and runs in the greenlet running the script. Each call is one short
transaction on the data of the app the run belongs to: the app comes from the run, never
from the script. Whatever the script did wrong (a bad key, a value too large, a taken
id) raises ``HostError``, a Lua error the script may ``pcall``; anything else ends the
run with ``internal_error``.

Results go back through JSON, where None at the top becomes nil and None inside a table
``json.null``; a missing cursor is therefore left out, not set to None, so that
``while page.cursor do`` ends.
"""
from picloud.data import Origin
from picloud.data.docs import DocStore
from picloud.data.kv import KVStore
from picloud.db import connection
from picloud.errors import PiCloudError, ValidationFailed
from picloud.sandbox import HostError

HOST_API = (
    ("kv", ("get", "set", "delete", "incr", "list")),
    ("docs", ("insert", "get", "update", "delete", "find", "count")),
)

LIST_OPTIONS = ("prefix", "limit", "cursor")
FIND_OPTIONS = ("limit", "cursor", "sort")


def script_host(app_id, ctx, *, max_value_bytes):
    """Return (host_api, host callable) that give one run the data of app ``app_id``.

    ``max_value_bytes`` is PICLOUD_MAX_VALUE_BYTES of the process running the script.
    """
    origin = Origin(
        trigger_depth=ctx.get("trigger_depth") or 0,
        parent_execution_id=ctx.get("execution_id"),
    )
    calls = _calls(
        KVStore(app_id, max_value_bytes=max_value_bytes, origin=origin),
        DocStore(app_id, max_value_bytes=max_value_bytes, origin=origin),
    )

    def host(module, fn, args):
        entry = calls.get((module, fn))
        if entry is None:
            raise HostError(f"{module}.{fn} does not exist")
        call, arity = entry
        label = f"{module}.{fn}"
        if len(args) > arity:
            raise HostError(f"{label} takes at most {arity} argument{'s' if arity > 1 else ''}")
        try:
            with connection():
                return call(*args, *[None] * (arity - len(args)))
        except PiCloudError as exc:
            raise HostError(f"{label}: {exc.message}") from None

    return HOST_API, host


def _calls(kv, docs):
    """Map (module, fn) to (function, number of arguments it takes)."""

    def kv_get(key):
        entry = kv.get(key)
        return entry.value if entry is not None else None

    def kv_set(key, value):
        kv.set(key, value)

    def kv_incr(key, delta):
        return kv.incr(key, 1 if delta is None else delta)

    def kv_list(options):
        options = _options(options, LIST_OPTIONS)
        entries, cursor = kv.list(view="keys", **options)
        return _page("keys", [entry.key for entry in entries], cursor)

    def docs_update(collection, doc_id, doc):
        return docs.replace(collection, doc_id, doc) is not None

    def docs_find(collection, filter, options):
        found, cursor = docs.find(collection, filter, **_options(options, FIND_OPTIONS))
        return _page("docs", found, cursor)

    def docs_insert(collection, doc):
        return docs.insert(collection, doc)["_id"]

    return {
        ("kv", "get"): (kv_get, 1),
        ("kv", "set"): (kv_set, 2),
        ("kv", "delete"): (kv.delete, 1),
        ("kv", "incr"): (kv_incr, 2),
        ("kv", "list"): (kv_list, 1),
        ("docs", "insert"): (docs_insert, 2),
        ("docs", "get"): (docs.get, 2),
        ("docs", "update"): (docs_update, 3),
        ("docs", "delete"): (docs.delete, 2),
        ("docs", "find"): (docs_find, 3),
        ("docs", "count"): (docs.count, 2),
    }


def _options(options, allowed):
    """Return the options table of a call as keyword arguments."""
    if options is None or options == []:
        return {}
    if not isinstance(options, dict):
        raise ValidationFailed("options", f"options must be a table with {', '.join(allowed)}")
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValidationFailed("options", f"unknown option {unknown[0]!r} (known: {', '.join(allowed)})")
    return options


def _page(name, items, cursor):
    page = {name: items}
    if cursor is not None:
        page["cursor"] = cursor
    return page
