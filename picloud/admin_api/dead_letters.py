"""Dead letters: ``/api/v1/admin/apps/{app}/dead-letters`` and their replay and discard (docs/api.md §9)."""
from flask import request

from picloud.admin_api.base import bp, json_body, paginate, requires
from picloud.errors import BadRequest, NotFound, ValidationFailed
from picloud.manager import reject_unknown
from picloud.manager.apps import resolve_app
from picloud.models import DeadLetter
from picloud.outbox.dead_letters import discard, replay, replay_many


def get_dead_letter(dead_letter_id):
    dead_letter = DeadLetter.get_or_none(DeadLetter.id == dead_letter_id)
    if dead_letter is None:
        raise NotFound("No such dead letter.")
    return dead_letter


def open_arg():
    """Return the ``open`` query parameter: true (the default) or false."""
    raw = request.args.get("open", "true").lower()
    if raw not in ("true", "false"):
        raise ValidationFailed("open", "open must be true or false.")
    return raw == "true"


@bp.get("/admin/apps/<id_or_slug>/dead-letters")
@requires("read")
def list_dead_letters(id_or_slug):
    """List the app's dead letters, newest first: the open ones, or all with open=false."""
    query = DeadLetter.for_app(resolve_app(id_or_slug), open_only=open_arg())
    dead_letters, next_cursor = paginate(query, DeadLetter.id, descending=True)
    return {"dead_letters": [d.to_dict() for d in dead_letters], "next_cursor": next_cursor}


@bp.get("/admin/dead-letters/<id:dead_letter_id>")
@requires("read")
def show_dead_letter(dead_letter_id):
    """Show a dead letter."""
    return get_dead_letter(dead_letter_id).to_dict()


@bp.post("/admin/dead-letters/<id:dead_letter_id>:replay")
@requires("dead_letters.manage")
def replay_dead_letter(dead_letter_id):
    """Queue a dead letter's event again with the same event id and a fresh attempt count."""
    return replay(get_dead_letter(dead_letter_id)).to_dict()


@bp.post("/admin/dead-letters/<id:dead_letter_id>:discard")
@requires("dead_letters.manage")
def discard_dead_letter(dead_letter_id):
    """Mark a dead letter discarded."""
    return discard(get_dead_letter(dead_letter_id)).to_dict()


@bp.post("/admin/apps/<id_or_slug>/dead-letters:replay")
@requires("dead_letters.manage")
def replay_dead_letters(id_or_slug):
    """Replay the listed open dead letters of the app, or all of them."""
    app = resolve_app(id_or_slug)
    body = json_body(require_object=False)
    if body is None:
        body = {}
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    reject_unknown(body, ("ids",))
    return {"replayed": replay_many(app, body.get("ids"))}
