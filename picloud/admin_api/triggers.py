"""Triggers: ``/api/v1/admin/apps/{app}/triggers`` and ``/api/v1/admin/triggers/{id}`` (docs/api.md §9)."""
from flask import g

from picloud.admin_api.base import bp, json_body, paginate, requires
from picloud.errors import NotFound
from picloud.manager.apps import resolve_app
from picloud.models import Trigger
from picloud.manager.triggers import create_trigger, delete_trigger, update_trigger


def get_trigger(trigger_id):
    trigger = Trigger.get_or_none(Trigger.id == trigger_id)
    if trigger is None:
        raise NotFound("No such trigger.")
    return trigger


@bp.get("/admin/apps/<id_or_slug>/triggers")
@requires("read")
def list_triggers(id_or_slug):
    """List the app's triggers."""
    triggers, next_cursor = paginate(Trigger.for_app(resolve_app(id_or_slug)), Trigger.id)
    return {"triggers": [t.to_dict() for t in triggers], "next_cursor": next_cursor}


@bp.post("/admin/apps/<id_or_slug>/triggers/<any(kv, docs, dead_letter, schedule):kind>")
@requires("triggers.manage")
def add_trigger(id_or_slug, kind):
    """Create a kv, docs, dead-letter or schedule trigger in the app, run as the caller."""
    return create_trigger(resolve_app(id_or_slug), kind, json_body(), g.user).to_dict(), 201


@bp.get("/admin/triggers/<id:trigger_id>")
@requires("read")
def show_trigger(trigger_id):
    """Show a trigger."""
    return get_trigger(trigger_id).to_dict()


@bp.patch("/admin/triggers/<id:trigger_id>")
@requires("triggers.manage")
def change_trigger(trigger_id):
    """Change a trigger's script, glob, ops, schedule, retry policy or enabled flag."""
    return update_trigger(get_trigger(trigger_id), json_body()).to_dict()


@bp.delete("/admin/triggers/<id:trigger_id>")
@requires("triggers.manage")
def remove_trigger(trigger_id):
    """Delete a trigger and its events still waiting to run."""
    delete_trigger(get_trigger(trigger_id))
    return "", 204
