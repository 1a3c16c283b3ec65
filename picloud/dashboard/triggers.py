"""The Triggers tab: run a script when KV keys or document collections change, per dead
letter, or on a schedule (with the next five run times previewed as the expression is typed)."""
from flask import g, render_template, request
from flask_wtf import FlaskForm
from wtforms import FloatField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.widgets import CheckboxInput, ListWidget

from picloud.dashboard import bp, login_required
from picloud.dashboard.apps import app_page, describe_error, render_tab, script_names, show_error
from picloud.errors import NotFound, ValidationFailed
from picloud.manager.triggers import create_trigger, delete_trigger, update_trigger
from picloud.models import Execution, Script, Trigger, utcnow
from picloud.models.outbox import GLOB_FIELDS
from picloud.outbox.retry import BACKOFFS, DEFAULT_RETRY
from picloud.outbox.schedule import parse_schedule

KINDS = (
    ("kv", "KV keys change"),
    ("docs", "documents change"),
    ("dead_letter", "an event is dead-lettered"),
    ("schedule", "on a schedule"),
)
# Trigger kinds that take a retry policy.
RETRIED = ("kv", "docs", "schedule")
PREVIEW_COUNT = 5
OPS = ("set", "insert", "update", "delete")


class TriggerForm(FlaskForm):
    kind = SelectField("When", choices=KINDS)
    script_id = SelectField("Run script", coerce=int, choices=[])
    glob = StringField(
        "Key or collection glob",
        validators=[Length(max=1024)],
        description="Shell-style: * ? [...], case-sensitive, e.g. orders/* or users",
    )
    cron = StringField(
        "Schedule",
        validators=[Length(max=200)],
        description="*/5 * * * *, @hourly, @daily, @weekly, @monthly, @yearly or @every 30s",
    )
    timezone = StringField("Timezone", default="UTC", validators=[Length(max=64)])
    ops = SelectMultipleField(
        "Ops (none = all)",
        choices=[(op, op) for op in OPS],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    max_attempts = IntegerField("Max attempts", default=DEFAULT_RETRY["max_attempts"], validators=[InputRequired(), NumberRange(min=1)])
    backoff = SelectField("Backoff", choices=[(b, b) for b in BACKOFFS], default=DEFAULT_RETRY["backoff"])
    base_delay_ms = IntegerField("Base delay (ms)", default=DEFAULT_RETRY["base_delay_ms"], validators=[InputRequired(), NumberRange(min=0)])
    max_delay_ms = IntegerField("Max delay (ms)", default=DEFAULT_RETRY["max_delay_ms"], validators=[InputRequired(), NumberRange(min=0)])
    jitter = FloatField("Jitter (0–1)", default=DEFAULT_RETRY["jitter"], validators=[Optional(), NumberRange(min=0, max=1)])


def trigger_form(app, **kwargs):
    """Return a TriggerForm whose script choices are the app's own."""
    form = TriggerForm(**kwargs)
    scripts = Script.select(Script.id, Script.name).where(Script.app == app).order_by(Script.name)
    form.script_id.choices = [(s.id, s.name) for s in scripts]
    return form


def form_data(form):
    """Return the API body a submitted TriggerForm stands for."""
    kind = form.kind.data
    data = {"script_id": form.script_id.data}
    if kind in GLOB_FIELDS:
        data[GLOB_FIELDS[kind]] = (form.glob.data or "").strip()
        data["ops"] = list(form.ops.data or [])
    if kind == "schedule":
        data["cron"] = (form.cron.data or "").strip()
        data["timezone"] = (form.timezone.data or "").strip() or "UTC"
    if kind in RETRIED:
        data["retry"] = {
            "max_attempts": form.max_attempts.data,
            "backoff": form.backoff.data,
            "base_delay_ms": form.base_delay_ms.data,
            "max_delay_ms": form.max_delay_ms.data,
            "jitter": form.jitter.data if form.jitter.data is not None else DEFAULT_RETRY["jitter"],
        }
    return data


def _render(app, form=None, error=None, status=200):
    triggers = list(Trigger.for_app(app).order_by(Trigger.id))
    return render_tab(
        app,
        "triggers",
        "triggers/index.html",
        "triggers/_list.html",
        status=status,
        triggers=triggers,
        last_runs=Execution.last_of_triggers([t.id for t in triggers]),
        script_names=script_names(app),
        form=form or trigger_form(app, formdata=None),
        error=error,
    )


def schedule_preview(cron, timezone):
    """Return (next run times as (local, UTC) datetimes, None) or ([], the error message)."""
    try:
        schedule = parse_schedule(cron, timezone or "UTC")
    except ValidationFailed as exc:
        return [], exc.message
    return [(schedule.local(moment), moment) for moment in schedule.upcoming(utcnow(), PREVIEW_COUNT)], None


def _get_trigger(app, trigger_id):
    trigger = Trigger.get_or_none((Trigger.id == trigger_id) & (Trigger.app == app))
    if trigger is None:
        raise NotFound("No such trigger.")
    return trigger


@bp.get("/apps/<slug>/triggers")
@login_required()
@app_page
def triggers(app):
    """List the app's triggers, with a form to add one."""
    return _render(app)


@bp.post("/apps/<slug>/triggers")
@login_required("triggers.manage")
@app_page
def add_trigger(app):
    """Create a trigger run as the current user."""
    form = trigger_form(app)
    if not form.validate_on_submit():
        return _render(app, form, status=422)
    try:
        create_trigger(app, form.kind.data, form_data(form), g.user)
    except ValidationFailed as exc:
        field = str(exc.extra.get("field", ""))
        if field in GLOB_FIELDS.values():
            exc.extra["field"] = "glob"
        elif field.startswith("retry."):
            exc.extra["field"] = field.removeprefix("retry.")
        show_error(form, exc, "glob")
        return _render(app, form, status=exc.status)
    return _render(app)


@bp.get("/apps/<slug>/triggers/schedule-preview")
@login_required()
@app_page
def preview_schedule(app):
    """Show the next five run times of the schedule being typed."""
    upcoming, error = schedule_preview(request.args.get("cron", ""), request.args.get("timezone", "").strip())
    return render_template("triggers/_schedule_preview.html", upcoming=upcoming, error=error, typed=request.args.get("cron", "").strip())


@bp.post("/apps/<slug>/triggers/<id:trigger_id>/schedule")
@login_required("triggers.manage")
@app_page
def change_schedule(app, trigger_id):
    """Change a schedule trigger's expression and timezone."""
    trigger = _get_trigger(app, trigger_id)
    data = {"cron": request.form.get("cron", "").strip(), "timezone": request.form.get("timezone", "").strip() or "UTC"}
    try:
        update_trigger(trigger, data)
    except ValidationFailed as exc:
        return _render(app, error=f"Trigger #{trigger.id}: {describe_error(exc)}", status=exc.status)
    return _render(app)


@bp.post("/apps/<slug>/triggers/<id:trigger_id>/toggle")
@login_required("triggers.manage")
@app_page
def toggle_trigger(app, trigger_id):
    """Turn a trigger on or off."""
    trigger = _get_trigger(app, trigger_id)
    try:
        update_trigger(trigger, {"enabled": not trigger.enabled})
    except ValidationFailed as exc:
        return _render(app, error=describe_error(exc), status=exc.status)
    return _render(app)


@bp.post("/apps/<slug>/triggers/<id:trigger_id>/delete")
@login_required("triggers.manage")
@app_page
def remove_trigger(app, trigger_id):
    """Delete a trigger and its events still waiting to run."""
    delete_trigger(_get_trigger(app, trigger_id))
    return _render(app)
