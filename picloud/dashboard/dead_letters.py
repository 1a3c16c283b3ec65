"""The Dead letters tab: events that failed every attempt; inspect, replay, discard."""
import json

from flask import request, url_for

from picloud.dashboard.base import bp, login_required, notify
from picloud.dashboard.apps import app_page, describe_error, go_to, render_tab, script_names
from picloud.errors import Conflict, NotFound
from picloud.models import DeadLetter, Execution
from picloud.outbox.dead_letters import discard, replay, replay_many

PAGE_SIZE = 50


def _show_all():
    return request.values.get("show") == "all"


def _render(app, error=None, status=200):
    show_all = _show_all()
    query = DeadLetter.for_app(app, open_only=not show_all).order_by(DeadLetter.id.desc())
    return render_tab(
        app,
        "dead_letters",
        "dead_letters/index.html",
        "dead_letters/_list.html",
        status=status,
        dead_letters=list(query.limit(PAGE_SIZE)),
        open_count=DeadLetter.for_app(app).count(),
        script_names=script_names(app),
        show_all=show_all,
        error=error,
    )


def _get_dead_letter(app, dead_letter_id):
    dead_letter = DeadLetter.get_or_none((DeadLetter.id == dead_letter_id) & (DeadLetter.app == app))
    if dead_letter is None:
        raise NotFound("No such dead letter.")
    return dead_letter


def _act(app, dead_letter_id, action, done):
    """Replay or discard one dead letter: the list for htmx, else its page."""
    dead_letter = _get_dead_letter(app, dead_letter_id)
    try:
        action(dead_letter)
    except Conflict as exc:
        if request.htmx:
            return _render(app, error=describe_error(exc), status=exc.status)
        return _render_one(app, dead_letter, error=describe_error(exc), status=exc.status)
    notify(f"Dead letter #{dead_letter.id} {done}.")
    if request.htmx:
        return _render(app)
    return go_to(url_for("dashboard.dead_letter", slug=app.slug, dead_letter_id=dead_letter.id))


def _render_one(app, dead_letter, error=None, status=200):
    return render_tab(
        app,
        "dead_letters",
        "dead_letters/show.html",
        status=status,
        dead_letter=dead_letter,
        event_json=json.dumps(dead_letter.event, indent=2, ensure_ascii=False),
        replay_runs=_replay_runs(app, dead_letter),
        script_names=script_names(app),
        error=error,
    )


def _replay_runs(app, dead_letter):
    """Return the runs a replay of this dead letter made (its event id, queued since)."""
    if dead_letter.resolution != "replayed" or dead_letter.resolved_at is None:
        return []
    return list(
        Execution.select()
        .where(
            (Execution.app_id == app.id)
            & (Execution.event_id == dead_letter.event_id)
            & (Execution.started_at >= dead_letter.resolved_at)
        )
        .order_by(Execution.started_at)
        .limit(20)
    )


@bp.get("/apps/<slug>/dead-letters")
@login_required()
@app_page
def dead_letters(app):
    """List the app's open dead letters (all of them with show=all)."""
    return _render(app)


@bp.get("/apps/<slug>/dead-letters/<id:dead_letter_id>")
@login_required()
@app_page
def dead_letter(app, dead_letter_id):
    """Show one dead letter: its event, the last error, the attempts."""
    return _render_one(app, _get_dead_letter(app, dead_letter_id))


@bp.post("/apps/<slug>/dead-letters/<id:dead_letter_id>/replay")
@login_required("dead_letters.manage")
@app_page
def replay_dead_letter(app, dead_letter_id):
    """Queue a dead letter's event again with a fresh attempt count."""
    return _act(app, dead_letter_id, replay, "replayed: its event is queued again")


@bp.post("/apps/<slug>/dead-letters/<id:dead_letter_id>/discard")
@login_required("dead_letters.manage")
@app_page
def discard_dead_letter(app, dead_letter_id):
    """Mark a dead letter discarded."""
    return _act(app, dead_letter_id, discard, "discarded")


@bp.post("/apps/<slug>/dead-letters/replay")
@login_required("dead_letters.manage")
@app_page
def replay_all_dead_letters(app):
    """Replay every open dead letter of the app."""
    count = replay_many(app)
    notify(f"Replayed {count} dead letter{'s' if count != 1 else ''}: their events are queued again.")
    return _render(app)
