"""The per-app data stores: KV entries and documents (docs/api.md §7).

Keys, collections and document ids compare byte by byte on both databases (SQLite's
BINARY collation, PostgreSQL columns declared ``COLLATE "C"``), so listings page in the
same order everywhere. Filtering and sorting documents by their fields is
dialect-specific and lives in ``picloud.data.docs``.
"""
import json

import peewee

from picloud.models.apps import App
from picloud.models.base import BaseModel, isoformat, utcnow


def compact_json(value):
    """Encode a JSON value the way the stores keep and measure it."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def canonical_json(value):
    """Encode a JSON value compactly with sorted keys: equal objects give equal text."""
    return json.dumps(
        value, separators=(",", ":"), ensure_ascii=False, allow_nan=False, sort_keys=True
    )


class KVEntry(BaseModel):
    """One key of an app's KV store; the value is kept as the JSON text it was sized by."""

    # No index of its own on app: the unique index starts with it.
    app = peewee.ForeignKeyField(App, on_delete="CASCADE", index=False)
    key = peewee.CharField(max_length=512)
    value_json = peewee.TextField(column_name="value")
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "kv_entries"
        indexes = ((("app", "key"), True),)

    @classmethod
    def for_app(cls, app_id):
        return cls.select().where(cls.app == app_id)

    @classmethod
    def lookup(cls, app_id, key):
        return cls.for_app(app_id).where(cls.key == key)

    @classmethod
    def value_preview(cls, chars):
        """Select the start of the value's JSON as ``preview``."""
        return peewee.fn.substr(cls.value_json, 1, chars).coerce(False).alias("preview")

    @property
    def value(self):
        return json.loads(self.value_json)

    def to_dict(self):
        return {"key": self.key, "value": self.value, "updated_at": isoformat(self.updated_at)}


class Document(BaseModel):
    """One document of an app's collection; ``data`` holds the whole object, ``_id`` included.

    ``data`` is JSONB on PostgreSQL (with a GIN index for containment filters) and JSON
    text on SQLite.
    """

    app = peewee.ForeignKeyField(App, on_delete="CASCADE", index=False)
    collection = peewee.CharField(max_length=64)
    doc_id = peewee.CharField(max_length=512)
    # Sorted keys let SQLite compare nested filter values as text (picloud.data.docs).
    data = peewee.JSONField(dumps=canonical_json)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "documents"
        indexes = ((("app", "collection", "doc_id"), True),)

    @classmethod
    def in_collection(cls, app_id, collection):
        return cls.select().where((cls.app == app_id) & (cls.collection == collection))

    @classmethod
    def lookup(cls, app_id, collection, doc_id):
        return cls.in_collection(app_id, collection).where(cls.doc_id == doc_id)

    @classmethod
    def collection_counts(cls, app_id):
        """Select (collection, count) of an app's collections, by name."""
        return (
            cls.select(cls.collection, peewee.fn.COUNT(cls.id).alias("count"))
            .where(cls.app == app_id)
            .group_by(cls.collection)
            .order_by(cls.collection)
            .tuples()
        )
