"""The data plane: each app's KV store and document store (docs/api.md §7).

``KVStore`` (``kv.py``) and ``DocStore`` (``docs.py``) are used alike by the admin API,
the dashboard and scripts (``host.py``). Every mutation runs in one transaction with the
outbox events it emits (docs/api.md §9): both are committed or neither is.

Limits, the same from every caller:

- keys and document ids: 1-512 bytes of UTF-8, no NUL character;
- collections: ``^[A-Za-z0-9_.-]{1,64}$``;
- values and documents: any JSON (documents: an object with a string ``_id``), at most
  ``PICLOUD_MAX_VALUE_BYTES`` encoded as compact UTF-8 JSON, nested at most
  ``MAX_DEPTH`` levels, no NaN or infinity; strings inside documents may not hold NUL
  (PostgreSQL's JSONB cannot store it, and both databases must accept the same data);
- listings: ``limit`` 1-500 (default 50) and an opaque ``cursor`` from the previous page.

Document queries (``docs.find`` and ``docs.count`` in Lua):

- ``filter`` maps top-level fields to values. A document matches when every field is
  present and equal to its value: numbers by value (1 equals 1.0), strings, booleans,
  arrays and objects exactly, ``json.null`` only an explicit null.
- ``sort`` is ``"_id"`` (the default), ``"field"`` (ascending) or ``"-field"``
  (descending) on one top-level field. Values of different types order as: missing or
  null, false, true, numbers, strings (by code point), arrays and objects; ties go by
  ``_id``. A cursor is only valid with the sort it was made with.
"""
import dataclasses
import math
import re

from picloud.errors import PayloadTooLarge, ValidationFailed
from picloud.models.data import compact_json
from picloud.outbox import emit_data_event, watching_triggers

MAX_KEY_BYTES = 512
MAX_DEPTH = 100
DEFAULT_LIMIT = 50
MAX_LIMIT = 500
COLLECTION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


@dataclasses.dataclass(frozen=True)
class Origin:
    """What caused a mutation, carried by the events it emits."""

    trigger_depth: int = 0
    parent_execution_id: str | None = None


ADMIN = Origin()


def check_key(key, field="key", what="key"):
    """Return a valid key (or document id); 422 naming ``field`` otherwise."""
    if not isinstance(key, str):
        raise ValidationFailed(field, f"The {what} must be a string.")
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:
        raise ValidationFailed(field, f"The {what} is not valid UTF-8.") from None
    if not 1 <= size <= MAX_KEY_BYTES:
        raise ValidationFailed(field, f"The {what} must be 1 to {MAX_KEY_BYTES} bytes of UTF-8.")
    if "\x00" in key:
        raise ValidationFailed(field, f"The {what} must not contain a NUL character.")
    return key


def check_collection(name):
    """Return a valid collection name; 422 with field ``collection`` otherwise."""
    if not isinstance(name, str) or not COLLECTION_RE.match(name):
        raise ValidationFailed(
            "collection", "A collection name is 1-64 letters, digits or . _ -."
        )
    return name


def check_limit(limit, field="limit"):
    """Return a page size, 1..MAX_LIMIT (None means the default)."""
    if limit is None:
        return DEFAULT_LIMIT
    if isinstance(limit, float) and limit.is_integer():
        limit = int(limit)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed(field, f"The limit must be an integer from 1 to {MAX_LIMIT}.")
    return limit


def check_json(value, field="value", *, allow_nul=True):
    """Check that a value is storable JSON: finite numbers, bounded nesting, string keys.

    Iterative, so a hostile nesting depth cannot exhaust the Python stack.
    """
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict):
            children = item.values()
            for name in item:
                if not isinstance(name, str):
                    raise ValidationFailed(field, "Object keys must be strings.")
                if not allow_nul and "\x00" in name:
                    raise ValidationFailed(field, "Documents cannot hold the NUL character.")
        elif isinstance(item, list):
            children = item
        elif isinstance(item, float):
            if not math.isfinite(item):
                raise ValidationFailed(field, "NaN and infinity are not JSON numbers.")
            continue
        elif isinstance(item, str):
            if not allow_nul and "\x00" in item:
                raise ValidationFailed(field, "Documents cannot hold the NUL character.")
            continue
        elif item is None or isinstance(item, (bool, int)):
            continue
        else:
            raise ValidationFailed(field, f"A {type(item).__name__} is not a JSON value.")
        if depth >= MAX_DEPTH and children:
            raise ValidationFailed(field, f"JSON may be nested at most {MAX_DEPTH} levels.")
        pending.extend((child, depth + 1) for child in children)
    return value


def encode_value(value, max_bytes, field="value", *, allow_nul=True, encode=compact_json):
    """Check a value and return its JSON text (``encode``: compact, or canonical for a
    document); 413 when it is over ``max_bytes``."""
    check_json(value, field, allow_nul=allow_nul)
    text = encode(value)
    size = len(text.encode("utf-8"))
    if size > max_bytes:
        raise PayloadTooLarge(
            f"The {field} is {size} bytes encoded; the limit is {max_bytes}.",
            max_bytes=max_bytes,
        )
    return text


def watching(app_id, kind, op, name):
    """Return the enabled triggers of the app that a mutation would fire (cached lookup).

    A mutation nobody watches emits nothing, so it may run as one statement with no
    transaction around it.
    """
    return watching_triggers(app_id, kind, op, name)


def emit_event(app_id, origin, *, kind, op, name, payload, triggers=None):
    """Queue the outbox events of one mutation, inside its open transaction."""
    return emit_data_event(
        app_id,
        kind=kind,
        op=op,
        name=name,
        payload=payload,
        trigger_depth=origin.trigger_depth,
        parent_execution_id=origin.parent_execution_id,
        triggers=triggers,
    )
