"""An app's document store: ``docs.*`` in scripts, ``/api/v1/admin/apps/{app}/docs``.

This is the one module that filters and sorts documents by their fields, so the one
that knows the dialect. On PostgreSQL ``data`` is JSONB: a filter is a containment test
(``data @> '{"field": value}'``, served by a GIN index), with nested values pinned by
exact equality since containment of an array or object only means "includes". On
SQLite ``data`` is JSON text with sorted keys: fields are read with ``json_type`` and
``json_extract``, and nested values compare as canonical text. The semantics both
implement are in ``picloud.data``'s docstring.
"""
import contextlib
import functools
import operator
import re
import uuid

from peewee import SQL, Case, Cast, IntegrityError, NodeList, Tuple, fn

from picloud.data import (
    ADMIN,
    check_collection,
    check_json,
    check_key,
    check_limit,
    emit_event,
    encode_value,
    watching,
)
from picloud.cursor import decode_cursor, encode_cursor
from picloud.db import db, is_postgres, write_transaction
from picloud.errors import Conflict, ValidationFailed
from picloud.models import isoformat, utcnow
from picloud.models.data import Document, canonical_json

ID_FIELD = "_id"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
PREVIEW_CHARS = 200

# The order of JSON types when sorting by a field; numbers and strings also by value.
RANK_MISSING_OR_NULL, RANK_FALSE, RANK_TRUE, RANK_NUMBER, RANK_STRING, RANK_NESTED = range(6)

# Field names SQLite's JSON path syntax reaches: ones whose JSON text needs no escape.
_PLAIN_FIELD = re.compile(r'^[^"\\\x00-\x1f]*$')


class DocStore:
    """One app's collections of JSON documents."""

    def __init__(self, app_id, *, max_value_bytes, origin=ADMIN):
        self.app_id = app_id
        self.max_value_bytes = max_value_bytes
        self.origin = origin

    def collections(self):
        """Return [(name, number of documents)] of the app's collections, by name."""
        return list(Document.collection_counts(self.app_id))

    def get(self, collection, doc_id):
        """Return a document, or None."""
        row = Document.lookup(self.app_id, check_collection(collection), _check_id(doc_id)).first()
        return row.data if row else None

    def insert(self, collection, doc):
        """Add a document, with a new UUID ``_id`` unless it has one; return it.

        An ``_id`` already in the collection answers 409 ``id_taken``.
        """
        check_collection(collection)
        doc = _check_document(doc)
        doc_id = _check_id(doc[ID_FIELD]) if ID_FIELD in doc else str(uuid.uuid4())
        doc = {**doc, ID_FIELD: doc_id}
        text = encode_value(doc, self.max_value_bytes, "document", allow_nul=False, encode=canonical_json)
        now = utcnow()
        triggers = watching(self.app_id, "docs", "insert", collection)
        # Nobody watching: the insert alone is the whole mutation, atomic by itself.
        with write_transaction() if triggers else contextlib.nullcontext():
            try:
                _insert_document(self.app_id, collection, doc_id, text, now)
            except IntegrityError:
                raise Conflict(
                    "A document with this _id already exists.", code="id_taken", field=ID_FIELD
                ) from None
            if triggers:
                self._emit("insert", collection, doc_id, doc, None, now, triggers)
        return doc

    def replace(self, collection, doc_id, doc):
        """Replace a document with a new one; return it, or None if there was none."""
        check_collection(collection)
        _check_id(doc_id)
        doc = _check_document(doc)
        if doc.get(ID_FIELD, doc_id) != doc_id:
            raise ValidationFailed(ID_FIELD, "A document's _id cannot change.", code="id_mismatch")
        doc = {**doc, ID_FIELD: doc_id}
        encode_value(doc, self.max_value_bytes, "document", allow_nul=False)
        now = utcnow()
        triggers = watching(self.app_id, "docs", "update", collection)
        if not triggers:
            updated = (
                Document.update(data=doc, updated_at=now)
                .where(
                    (Document.app == self.app_id)
                    & (Document.collection == collection)
                    & (Document.doc_id == doc_id)
                )
                .execute()
            )
            return doc if updated else None
        with write_transaction():
            previous = db.lock_rows(Document.lookup(self.app_id, collection, doc_id)).first()
            if previous is None:
                return None
            Document.update(data=doc, updated_at=now).where(Document.id == previous.id).execute()
            self._emit("update", collection, doc_id, doc, previous.data, now, triggers)
        return doc

    def delete(self, collection, doc_id):
        """Delete a document; tell whether it existed."""
        check_collection(collection)
        _check_id(doc_id)
        now = utcnow()
        triggers = watching(self.app_id, "docs", "delete", collection)
        if not triggers:
            deleted = (
                Document.delete()
                .where(
                    (Document.app == self.app_id)
                    & (Document.collection == collection)
                    & (Document.doc_id == doc_id)
                )
                .execute()
            )
            return bool(deleted)
        with write_transaction():
            previous = db.lock_rows(Document.lookup(self.app_id, collection, doc_id)).first()
            if previous is None:
                return False
            Document.delete().where(Document.id == previous.id).execute()
            self._emit("delete", collection, doc_id, None, previous.data, now, triggers)
        return True

    def find(self, collection, filter=None, *, limit=None, cursor=None, sort=None):
        """Return (documents, next cursor): one page of the matching documents in ``sort`` order."""
        rows, next_cursor = self._page(self._matching(collection, filter), limit, cursor, sort)
        return [row.data for row in rows], next_cursor

    def browse(self, collection, *, limit=None, cursor=None):
        """Return (rows, next cursor): a page of a collection by ``_id``, each row with its
        ``doc_id``, ``updated_at`` and the document's JSON cut to PREVIEW_CHARS + 1 characters
        as ``preview`` (longer than PREVIEW_CHARS: it was cut).
        """
        data = Cast(Document.data, "TEXT") if is_postgres() else Document.data
        query = (
            Document.select(
                Document.doc_id,
                Document.updated_at,
                # One character more than a listing shows tells a cut preview from a whole
                # one; coerce(False) keeps the JSON column's reader from decoding it.
                fn.substr(data, 1, PREVIEW_CHARS + 1).coerce(False).alias("preview"),
            )
            .where(
                (Document.app == self.app_id)
                & (Document.collection == check_collection(collection))
            )
        )
        return self._page(query, limit, cursor, None)

    def _page(self, query, limit, cursor, sort):
        limit = check_limit(limit)
        field, descending = _check_sort(sort)
        spec = _sort_spec(field, descending)
        if field == ID_FIELD:
            keys = (Document.doc_id,)
        else:
            keys = _sort_keys(field)
            query = query.select_extend(*(key.alias(f"sort_{n}") for n, key in enumerate(keys)))
        if cursor is not None:
            after = _check_position(decode_cursor(cursor), spec, len(keys))
            row, position = Tuple(*keys), Tuple(*after)
            query = query.where(row < position if descending else row > position)
        order = [key.desc() if descending else key.asc() for key in keys]
        rows = list(query.order_by(*order).limit(limit + 1))
        if len(rows) <= limit:
            return rows, None
        rows = rows[:limit]
        return rows, encode_cursor([spec, *_position(rows[-1], field, len(keys))])

    def count(self, collection, filter=None):
        """Return how many documents of a collection match a filter."""
        return self._matching(collection, filter).count()

    def _matching(self, collection, filter):
        query = Document.in_collection(self.app_id, check_collection(collection))
        filter = _check_filter(filter)
        if filter:
            query = query.where(_filter_condition(filter))
        return query

    def _emit(self, op, collection, doc_id, data, prev_data, at, triggers):
        emit_event(
            self.app_id,
            self.origin,
            kind="docs",
            op=op,
            name=collection,
            payload={
                "kind": "docs",
                "op": op,
                "collection": collection,
                "id": doc_id,
                "data": data,
                "prev_data": prev_data,
                "at": isoformat(at),
            },
            triggers=triggers,
        )


def _insert_document(app_id, collection, doc_id, text, now):
    """Insert one document row, its canonical JSON ``text`` (plain SQL: scripts' inserts
    are a hot path)."""
    p = db.param
    data = "CAST(%s AS jsonb)" if is_postgres() else "?"
    db.execute_sql(
        "INSERT INTO documents (app_id, collection, doc_id, data, created_at, updated_at)"
        f" VALUES ({p}, {p}, {p}, {data}, {p}, {p})",
        (app_id, collection, doc_id, text, now, now),
    )


def _check_id(doc_id):
    return check_key(doc_id, ID_FIELD, "document id")


def _check_document(doc):
    # An empty Lua table crosses the boundary as an empty array.
    if doc == []:
        doc = {}
    if not isinstance(doc, dict):
        raise ValidationFailed("document", "A document must be a JSON object.")
    return doc


def _check_filter(filter):
    if filter is None or filter == []:
        return {}
    if not isinstance(filter, dict):
        raise ValidationFailed("filter", "A filter must be an object of field = value.")
    return check_json(filter, "filter", allow_nul=False)


def _check_sort(sort):
    """Return (field, descending) of a sort: "field" or "-field"."""
    if sort is None:
        return ID_FIELD, False
    if not isinstance(sort, str) or sort in ("", "-"):
        raise ValidationFailed("sort", 'sort is a field name, "-" in front for descending.')
    descending = sort.startswith("-")
    field = sort[1:] if descending else sort
    check_key(field, "sort", "sort field")
    return field, descending


def _sort_spec(field, descending):
    return ("-" if descending else "") + field


def _check_position(position, spec, size):
    """Return the keys after which a page starts, from a decoded cursor made for ``spec``."""
    if (
        not isinstance(position, list)
        or len(position) != size + 1
        or position[0] != spec
        or not isinstance(position[-1], str)
    ):
        raise ValidationFailed("cursor", "The cursor is not valid for this sort.")
    keys = position[1:]
    if size > 1:
        rank, number, text = keys[:3]
        if (
            not isinstance(rank, int)
            or not isinstance(number, (int, float))
            or isinstance(number, bool)
            or not isinstance(text, str)
        ):
            raise ValidationFailed("cursor", "The cursor is not valid for this sort.")
    return keys


def _position(row, field, size):
    if field == ID_FIELD:
        return [row.doc_id]
    return [getattr(row, f"sort_{n}") for n in range(size - 1)] + [row.doc_id]


# The dialects.


def _filter_condition(filter):
    if is_postgres():
        condition = Document.data.contains(filter)
        for field, value in filter.items():
            if isinstance(value, (dict, list)):
                condition &= Document.data[field] == value
        return condition
    return functools.reduce(
        operator.and_, [_sqlite_equals(field, value) for field, value in filter.items()]
    )


def _sort_keys(field):
    """Return (type rank, number, string, doc_id) expressions ordering documents by ``field``."""
    if is_postgres():
        value = Document.data[field]
        kind = fn.jsonb_typeof(value)
        rank = Case(
            kind,
            (
                ("boolean", Case(None, ((value.as_text() == "true", RANK_TRUE),), RANK_FALSE)),
                ("number", RANK_NUMBER),
                ("string", RANK_STRING),
                ("array", RANK_NESTED),
                ("object", RANK_NESTED),
            ),
            RANK_MISSING_OR_NULL,
        )
        number = Case(None, ((kind == "number", value.as_float()),), 0.0)
        # Code point order, as on SQLite, whatever the database's collation.
        text = NodeList((Case(None, ((kind == "string", value.as_text()),), ""), SQL('COLLATE "C"')))
        return rank, number, text, Document.doc_id
    kind, value = _sqlite_member(field)
    rank = Case(
        kind,
        (
            ("false", RANK_FALSE),
            ("true", RANK_TRUE),
            ("integer", RANK_NUMBER),
            ("real", RANK_NUMBER),
            ("text", RANK_STRING),
            ("array", RANK_NESTED),
            ("object", RANK_NESTED),
        ),
        RANK_MISSING_OR_NULL,
    )
    number = Case(None, ((kind.in_(("integer", "real")), value),), 0)
    text = Case(None, ((kind == "text", value),), "")
    return rank, number, text, Document.doc_id


def _sqlite_member(field):
    """Return (JSON type, SQL value) expressions of a top-level field of ``data`` on SQLite.

    The SQL value of an array or object is its JSON text, which is canonical (sorted
    keys) because documents are stored that way.
    """
    if _PLAIN_FIELD.match(field):
        path = '$."' + field + '"'
        return fn.json_type(Document.data, path), fn.json_extract(Document.data, path)
    # A name whose JSON text has escapes is out of reach of SQLite's paths; json_each
    # compares decoded names.
    return _sqlite_each(field, "type"), _sqlite_each(field, "value")


def _sqlite_each(field, column):
    return NodeList(
        (
            SQL(f"(SELECT member.{column} FROM json_each("),
            Document.data,
            SQL(") AS member WHERE member.key = ?)", [field]),
        ),
        glue="",
    )


def _sqlite_equals(field, value):
    kind, stored = _sqlite_member(field)
    if value is None:
        return kind == "null"
    if isinstance(value, bool):
        return kind == ("true" if value else "false")
    if isinstance(value, (int, float)):
        if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
            value = float(value)  # SQLite reads such a literal as a real, too
        return kind.in_(("integer", "real")) & (stored == value)
    if isinstance(value, str):
        return (kind == "text") & (stored == value)
    nested = "array" if isinstance(value, list) else "object"
    return (kind == nested) & (stored == canonical_json(value))
