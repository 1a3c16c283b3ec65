"""The Data tab: browse and edit an app's KV store and document collections.

Listings never load whole values: the stores hand them the first PREVIEW_CHARS characters
of each value's JSON, so a page of keys or documents stays small however large the values
are; the full value is read only on its own page, to view and edit.

Keys and document ids may hold any character, so the pages take them from the query
string (``?key=``, ``?id=``) or a form field, never from the path. Values and documents
are edited as JSON text; every write goes through the same stores as the admin API and
scripts, so it emits the same trigger events.
"""
import json

from flask import current_app, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Regexp

from picloud.dashboard.base import bp, login_required
from picloud.dashboard.apps import app_page, go_to, render_tab, show_error
from picloud.dashboard.forms import ConfirmForm
from picloud.data import COLLECTION_RE, MAX_KEY_BYTES
from picloud.data.docs import PREVIEW_CHARS as DOC_PREVIEW_CHARS
from picloud.data.docs import DocStore
from picloud.data.kv import PREVIEW_CHARS as KV_PREVIEW_CHARS
from picloud.data.kv import KVStore
from picloud.errors import BadRequest, NotFound, PiCloudError

PAGE_SIZE = 50


class KeySearchForm(FlaskForm):
    """The KV browser's prefix search; a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    prefix = StringField("Key prefix", validators=[Length(max=MAX_KEY_BYTES)])


class KeyForm(FlaskForm):
    key = StringField("Key", validators=[DataRequired(), Length(max=MAX_KEY_BYTES)])
    value = TextAreaField(
        "Value (JSON)",
        validators=[DataRequired()],
        description='Any JSON value: 42, "text", [1, 2], {"name": "pi"}, null',
    )


class ValueForm(FlaskForm):
    value = TextAreaField("Value (JSON)", validators=[DataRequired()])


class NewDocumentForm(FlaskForm):
    collection = StringField(
        "Collection",
        validators=[DataRequired(), Regexp(COLLECTION_RE, message="1-64 letters, digits or . _ -")],
    )
    document = TextAreaField(
        "Document (JSON object)",
        validators=[DataRequired()],
        description="Without an _id one is generated.",
    )


class DocumentForm(FlaskForm):
    document = TextAreaField("Document (JSON object)", validators=[DataRequired()])


class DeleteForm(ConfirmForm):
    """The id of what to delete rides in a form field: keys may hold any character."""

    target = HiddenField()


def kv_store(app):
    return KVStore(app.id, max_value_bytes=current_app.config["PICLOUD"].max_value_bytes)


def doc_store(app):
    return DocStore(app.id, max_value_bytes=current_app.config["PICLOUD"].max_value_bytes)


INVALID = object()


def parse_json(field):
    """Return the JSON in a text field, or INVALID with the parse error put on the field."""
    try:
        return json.loads(field.data)
    except ValueError as exc:
        field.errors = list(field.errors or ()) + [f"Not valid JSON: {exc}"]
    except RecursionError:
        field.errors = list(field.errors or ()) + ["This JSON is nested too deeply."]
    return INVALID


def pretty(value):
    """Format a JSON value for reading and editing."""
    return json.dumps(value, indent=2, ensure_ascii=False)


# KV


def _render_keys(app, form=None, status=200, message=None):
    search = KeySearchForm(formdata=request.args)
    prefix = search.prefix.data or None
    cursor = request.args.get("cursor") or None
    try:
        entries, next_cursor = kv_store(app).list(
            prefix=prefix, limit=PAGE_SIZE, cursor=cursor, view="preview"
        )
        error = None
    except PiCloudError as exc:  # a hand-edited prefix or cursor: show it, list nothing
        entries, next_cursor, error = [], None, exc.message
    return render_tab(
        app,
        "data",
        "data/index.html",
        "data/_keys.html",
        status=status,
        search=search,
        entries=entries,
        preview_chars=KV_PREVIEW_CHARS,
        error=error,
        message=message,
        first_url=url_for("dashboard.data", slug=app.slug, prefix=prefix) if cursor else None,
        next_url=(
            url_for("dashboard.data", slug=app.slug, prefix=prefix, cursor=next_cursor)
            if next_cursor
            else None
        ),
        form=form or KeyForm(formdata=None),
    )


@bp.get("/apps/<slug>/data")
@login_required("data.read")
@app_page
def data(app):
    """Browse the app's KV keys, optionally those under a prefix."""
    return _render_keys(app)


@bp.post("/apps/<slug>/data/kv")
@login_required("data.write")
@app_page
def set_key(app):
    """Store a JSON value under a key, new or not."""
    form = KeyForm()
    if not form.validate_on_submit():
        return _render_keys(app, form, status=422)
    value = parse_json(form.value)
    if value is INVALID:
        return _render_keys(app, form, status=422)
    try:
        kv_store(app).set(form.key.data, value)
    except PiCloudError as exc:
        show_error(form, exc, "value")
        return _render_keys(app, form, status=exc.status)
    return _render_keys(app, message=f"Saved {form.key.data}.")


def _render_key(app, key, form=None, status=200, message=None):
    try:
        entry = kv_store(app).get(key)
    except PiCloudError:  # not a valid key: there is nothing under it
        entry = None
    if entry is None:
        raise NotFound("No such key.")
    return render_tab(
        app,
        "data",
        "data/key.html",
        status=status,
        entry=entry,
        form=form or ValueForm(formdata=None, value=pretty(entry.value)),
        delete_form=DeleteForm(formdata=None, target=key),
        message=message,
    )


@bp.get("/apps/<slug>/data/kv/entry")
@login_required("data.read")
@app_page
def key(app):
    """Show the value under a key, with forms to change or delete it."""
    return _render_key(app, request.args.get("key", ""))


@bp.post("/apps/<slug>/data/kv/entry")
@login_required("data.write")
@app_page
def save_key(app):
    """Replace the value under an existing key."""
    key = request.args.get("key", "")
    form = ValueForm()
    if not form.validate_on_submit():
        return _render_key(app, key, form, status=422)
    value = parse_json(form.value)
    if value is INVALID:
        return _render_key(app, key, form, status=422)
    try:
        kv_store(app).set(key, value)
    except PiCloudError as exc:
        show_error(form, exc, "value")
        return _render_key(app, key, form, status=exc.status)
    return _render_key(app, key, message="Saved.")


@bp.post("/apps/<slug>/data/kv/delete")
@login_required("data.write")
@app_page
def delete_key(app):
    """Delete a key and go back to the key list."""
    form = DeleteForm()
    if not form.validate_on_submit():
        raise BadRequest("The form has expired; reload the page.")
    if not kv_store(app).delete(form.target.data):
        raise NotFound("No such key.")
    return go_to(url_for("dashboard.data", slug=app.slug))


# Documents


@bp.get("/apps/<slug>/data/docs")
@login_required("data.read")
@app_page
def collections(app):
    """List the app's collections with their sizes, with a form to insert a document."""
    return _render_collections(app)


def _render_collections(app, form=None, status=200):
    return render_tab(
        app,
        "data",
        "data/collections.html",
        status=status,
        collections=doc_store(app).collections(),
        form=form or NewDocumentForm(formdata=None),
    )


@bp.post("/apps/<slug>/data/docs")
@login_required("data.write")
@app_page
def insert_document(app):
    """Insert a document into a collection and show it."""
    form = NewDocumentForm()
    if not form.validate_on_submit():
        return _render_collections(app, form, status=422)
    doc = parse_json(form.document)
    if doc is INVALID:
        return _render_collections(app, form, status=422)
    try:
        doc = doc_store(app).insert(form.collection.data, doc)
    except PiCloudError as exc:
        show_error(form, exc, "document")
        return _render_collections(app, form, status=exc.status)
    return go_to(url_for("dashboard.document", slug=app.slug, collection=form.collection.data, id=doc["_id"]))


@bp.get("/apps/<slug>/data/docs/<collection>")
@login_required("data.read")
@app_page
def collection(app, collection):
    """Browse a collection's documents by _id."""
    cursor = request.args.get("cursor") or None
    try:
        rows, next_cursor = doc_store(app).browse(collection, limit=PAGE_SIZE, cursor=cursor)
    except PiCloudError as exc:
        raise NotFound(exc.message) from None
    return render_tab(
        app,
        "data",
        "data/collection.html",
        "data/_documents.html",
        collection=collection,
        rows=[
            {"doc_id": row.doc_id, "updated_at": row.updated_at, "preview": row.preview}
            for row in rows
        ],
        preview_chars=DOC_PREVIEW_CHARS,
        first_url=url_for("dashboard.collection", slug=app.slug, collection=collection) if cursor else None,
        next_url=(
            url_for("dashboard.collection", slug=app.slug, collection=collection, cursor=next_cursor)
            if next_cursor
            else None
        ),
    )


def _render_document(app, collection, doc_id, form=None, status=200, message=None):
    try:
        doc = doc_store(app).get(collection, doc_id)
    except PiCloudError:
        doc = None
    if doc is None:
        raise NotFound("No such document.")
    return render_tab(
        app,
        "data",
        "data/document.html",
        status=status,
        collection=collection,
        doc_id=doc_id,
        form=form or DocumentForm(formdata=None, document=pretty(doc)),
        delete_form=DeleteForm(formdata=None, target=doc_id),
        message=message,
    )


@bp.get("/apps/<slug>/data/docs/<collection>/doc")
@login_required("data.read")
@app_page
def document(app, collection):
    """Show a document, with forms to replace or delete it."""
    return _render_document(app, collection, request.args.get("id", ""))


@bp.post("/apps/<slug>/data/docs/<collection>/doc")
@login_required("data.write")
@app_page
def save_document(app, collection):
    """Replace a document with the edited JSON."""
    doc_id = request.args.get("id", "")
    form = DocumentForm()
    if not form.validate_on_submit():
        return _render_document(app, collection, doc_id, form, status=422)
    doc = parse_json(form.document)
    if doc is INVALID:
        return _render_document(app, collection, doc_id, form, status=422)
    try:
        saved = doc_store(app).replace(collection, doc_id, doc)
    except PiCloudError as exc:
        show_error(form, exc, "document")
        return _render_document(app, collection, doc_id, form, status=exc.status)
    if saved is None:
        raise NotFound("No such document.")
    return _render_document(app, collection, doc_id, message="Saved.")


@bp.post("/apps/<slug>/data/docs/<collection>/delete")
@login_required("data.write")
@app_page
def delete_document(app, collection):
    """Delete a document and go back to its collection."""
    form = DeleteForm()
    if not form.validate_on_submit():
        raise BadRequest("The form has expired; reload the page.")
    try:
        deleted = doc_store(app).delete(collection, form.target.data)
    except PiCloudError:
        deleted = False
    if not deleted:
        raise NotFound("No such document.")
    return go_to(url_for("dashboard.collection", slug=app.slug, collection=collection))
