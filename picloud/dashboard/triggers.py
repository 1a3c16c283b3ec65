"""The Triggers tab: run a script when KV keys or document collections change, per dead
letter, or on a schedule. Every trigger is edited in its row; the form offers only the
fields of the chosen kind, previews a schedule's next five runs as it is typed and a
retry policy's delays as it is set."""
import re

from flask import g, render_template, request
from flask_wtf import FlaskForm
from wtforms import FloatField, IntegerField, SelectField, SelectMultipleField, StringField
from wtforms.validators import InputRequired, Length, NumberRange, Optional, ValidationError
from wtforms.widgets import CheckboxInput, ListWidget

from picloud.dashboard.base import bp, login_required, notify
from picloud.dashboard.apps import app_page, describe_error, render_tab, script_names, show_error
from picloud.errors import NotFound, ValidationFailed
from picloud.manager.triggers import create_trigger, delete_trigger, update_trigger
from picloud.models import Execution, Script, Trigger, utcnow
from picloud.models.outbox import GLOB_FIELDS
from picloud.outbox.retry import BACKOFFS, DEFAULT_RETRY, MAX_ATTEMPTS, base_delay_ms, validate_retry
from picloud.outbox.schedule import parse_schedule

KINDS = (
    ("kv", "KV keys change"),
    ("docs", "documents change"),
    ("dead_letter", "an event is dead-lettered"),
    ("schedule", "on a schedule"),
)
KIND_LABELS = {"kv": "KV", "docs": "docs", "dead_letter": "dead letter", "schedule": "schedule"}
# Trigger kinds that take a retry policy (a dead-letter handler is never retried).
RETRIED = ("kv", "docs", "schedule")
# Which kinds each op belongs to, so the form offers only the ops of the chosen kind.
OPS = (("set", "kv"), ("insert", "docs"), ("update", "docs"), ("delete", "kv docs"))
PREVIEW_COUNT = 5
# Retry delays listed in the preview before "…".
DELAYS_SHOWN = 8

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h)?\s*$", re.IGNORECASE)
_UNIT_MS = {"ms": 1, "s": 1000, "sec": 1000, "m": 60_000, "min": 60_000, "h": 3_600_000}


def parse_duration_ms(text):
    """Return milliseconds for "500 ms", "1 s", "1.5s", "5 min", "2 h" (a bare number is ms)."""
    match = _DURATION.match(str(text or ""))
    if not match:
        raise ValueError("Write a duration such as 500 ms, 1 s, 5 min or 1 h.")
    number, unit = match.groups()
    return round(float(number) * _UNIT_MS[(unit or "ms").lower()])


def format_duration(ms):
    """Return milliseconds in the largest unit that reads well: 250 ms, 1.5 s, 5 min, 2 h."""
    for unit, size in (("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms >= size and (ms % size == 0 or unit == "s"):
            value = ms / size
            return f"{value:g} {unit}" if unit != "s" else f"{round(value, 3):g} s"
    return f"{ms:g} ms"


class DurationField(StringField):
    """A delay typed in readable units; ``data`` is milliseconds."""

    def process_formdata(self, valuelist):
        if valuelist:
            self.raw_text = valuelist[0]
            try:
                self.data = parse_duration_ms(valuelist[0])
            except ValueError as exc:
                self.data = None
                raise ValidationError(str(exc)) from None

    def _value(self):
        if getattr(self, "raw_text", None) is not None:
            return self.raw_text
        return format_duration(self.data) if isinstance(self.data, (int, float)) else ""


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
        choices=[(op, op) for op, _ in OPS],
        widget=ListWidget(prefix_label=False),
        option_widget=CheckboxInput(),
    )
    max_attempts = IntegerField(
        "Attempts", default=DEFAULT_RETRY["max_attempts"], validators=[InputRequired(), NumberRange(min=1, max=MAX_ATTEMPTS)]
    )
    backoff = SelectField("Backoff", choices=[(b, b) for b in BACKOFFS], default=DEFAULT_RETRY["backoff"])
    base_delay_ms = DurationField("First delay", default=DEFAULT_RETRY["base_delay_ms"], validators=[InputRequired()])
    max_delay_ms = DurationField("Longest delay", default=DEFAULT_RETRY["max_delay_ms"], validators=[InputRequired()])
    jitter = FloatField("Jitter (0–1)", default=DEFAULT_RETRY["jitter"], validators=[Optional(), NumberRange(min=0, max=1)])

    def validate(self, extra_validators=None):
        """Validate the fields of the chosen kind only: the page submits no others."""
        super().validate(extra_validators)
        if self.kind.data not in RETRIED:
            for name in DEFAULT_RETRY:
                self[name].errors = []
        return not any(field.errors for field in self)

    def upcoming(self):
        """Return the schedule's next runs for the preview, or [] while it does not parse."""
        return schedule_preview(self.cron.data, self.timezone.data)[0] if self.cron.data else []

    def retry_policy(self):
        """Return the retry policy the fields hold, or None while they are not one."""
        try:
            return validate_retry({
                "max_attempts": self.max_attempts.data,
                "backoff": self.backoff.data,
                "base_delay_ms": self.base_delay_ms.data,
                "max_delay_ms": self.max_delay_ms.data,
                "jitter": self.jitter.data if self.jitter.data is not None else DEFAULT_RETRY["jitter"],
            })
        except ValidationFailed:
            return None

    def retry_delays(self):
        policy = self.retry_policy()
        return retry_schedule(policy) if policy else []


def trigger_form(app, trigger=None, **kwargs):
    """Return a TriggerForm with the app's scripts to choose from (filled from ``trigger``).

    A trigger's form names its fields ``t<id>-…``, so that it can stand beside the add form.
    """
    if trigger is not None:
        kwargs["prefix"] = f"t{trigger.id}-"
        if "formdata" in kwargs:
            kwargs.update(_fields_of(trigger))
    form = TriggerForm(**kwargs)
    scripts = Script.select(Script.id, Script.name).where(Script.app == app).order_by(Script.name)
    form.script_id.choices = [(s.id, s.name) for s in scripts]
    if trigger is not None:
        form.kind.data = trigger.kind  # a trigger keeps its kind
    return form


def _fields_of(trigger):
    retry = trigger.retry or DEFAULT_RETRY
    return {
        "script_id": trigger.script_id,
        "glob": trigger.glob,
        "ops": list(trigger.ops or []),
        "cron": trigger.cron,
        "timezone": trigger.timezone or "UTC",
        **{name: retry[name] for name in DEFAULT_RETRY},
    }


def form_data(form, kind):
    """Return the API body a submitted TriggerForm stands for, for a trigger of ``kind``.

    Fields of other kinds are refused rather than dropped: a glob typed for a
    dead-letter trigger would otherwise vanish without a word.
    """
    data = {"script_id": form.script_id.data}
    glob = (form.glob.data or "").strip()
    if kind in GLOB_FIELDS:
        data[GLOB_FIELDS[kind]] = glob
        data["ops"] = list(form.ops.data or [])
    elif glob:
        raise ValidationFailed("glob", f"A {KIND_LABELS[kind]} trigger takes no glob: leave it empty.")
    elif form.ops.data:
        raise ValidationFailed("ops", f"A {KIND_LABELS[kind]} trigger takes no ops.")
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


def retry_schedule(policy):
    """Return the delays between attempts as text, e.g. ["1 s", "2 s", "4 s", "8 s"]."""
    waits = [base_delay_ms(policy, attempt) for attempt in range(1, policy["max_attempts"])]
    return [format_duration(ms) for ms in waits]


def retry_text(policy):
    """Return a retry policy in words: "5 attempts, waiting 1 s, 2 s, 4 s, 8 s (±20%)"."""
    policy = policy or DEFAULT_RETRY
    if policy["max_attempts"] == 1:
        return "1 attempt, no retry"
    delays = retry_schedule(policy)
    shown = ", ".join(delays[:DELAYS_SHOWN]) + (", …" if len(delays) > DELAYS_SHOWN else "")
    spread = f" (±{round(policy['jitter'] * 100)}%)" if policy["jitter"] else ""
    return f"{policy['max_attempts']} attempts, waiting {shown}{spread}"


def schedule_preview(cron, timezone):
    """Return (next run times as (local, UTC) datetimes, None) or ([], the error message)."""
    try:
        schedule = parse_schedule(cron, timezone or "UTC")
    except ValidationFailed as exc:
        return [], exc.message
    return [(schedule.local(moment), moment) for moment in schedule.upcoming(utcnow(), PREVIEW_COUNT)], None


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
        **_row_context(),
    )


def _row_context():
    return {"kind_labels": KIND_LABELS, "retried": RETRIED, "retry_text": retry_text}


def _render_edit(app, trigger, form, status=200):
    body = render_template(
        "triggers/_edit_row.html", app=app, trigger=trigger, form=form, script_names=script_names(app), **_row_context()
    )
    return body, status


def _get_trigger(app, trigger_id):
    trigger = Trigger.get_or_none((Trigger.id == trigger_id) & (Trigger.app == app))
    if trigger is None:
        raise NotFound("No such trigger.")
    return trigger


def _show_error(form, exc):
    """Put a manager error on the form field it names (the API's names mapped to the form's)."""
    field = str(exc.extra.get("field", ""))
    if field in GLOB_FIELDS.values():
        exc.extra["field"] = "glob"
    elif field.startswith("retry."):
        exc.extra["field"] = field.removeprefix("retry.")
    show_error(form, exc, "glob")


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
        created = create_trigger(app, form.kind.data, form_data(form, form.kind.data), g.user)
    except ValidationFailed as exc:
        _show_error(form, exc)
        return _render(app, form, status=exc.status)
    notify(f"Added trigger #{created.id}: {KIND_LABELS[created.kind]} → {script_names(app).get(created.script_id)}.")
    return _render(app)


@bp.get("/apps/<slug>/triggers/<id:trigger_id>/edit")
@login_required("triggers.manage")
@app_page
def edit_trigger(app, trigger_id):
    """Turn a trigger's row into its form."""
    trigger = _get_trigger(app, trigger_id)
    return _render_edit(app, trigger, trigger_form(app, trigger, formdata=None))


@bp.post("/apps/<slug>/triggers/<id:trigger_id>")
@login_required("triggers.manage")
@app_page
def save_trigger(app, trigger_id):
    """Save a trigger's script, glob, ops, schedule or retry policy (its kind stays)."""
    trigger = _get_trigger(app, trigger_id)
    form = trigger_form(app, trigger)
    if not form.validate_on_submit():
        return _render_edit(app, trigger, form, 422)
    try:
        update_trigger(trigger, form_data(form, trigger.kind))
    except ValidationFailed as exc:
        _show_error(form, exc)
        return _render_edit(app, trigger, form, exc.status)
    notify(f"Saved trigger #{trigger.id}.")
    return _render(app)


@bp.get("/apps/<slug>/triggers/schedule-preview")
@login_required()
@app_page
def preview_schedule(app):
    """Show the next five run times of the schedule being typed."""
    prefix = request.args.get("prefix", "")
    cron = request.args.get(prefix + "cron", "")
    upcoming, error = schedule_preview(cron, request.args.get(prefix + "timezone", "").strip())
    return render_template(
        "triggers/_schedule_preview.html",
        upcoming=upcoming,
        error=error,
        typed=cron.strip(),
        preview_id=request.args.get("preview_id", "schedule-preview"),
    )


@bp.get("/apps/<slug>/triggers/retry-preview")
@login_required()
@app_page
def preview_retry(app):
    """Show the delays between attempts of the retry policy being set."""
    args = request.args
    prefix = args.get("prefix", "")
    policy, error = None, None
    try:
        policy = validate_retry({
            "max_attempts": int(args.get(prefix + "max_attempts", "")),
            "backoff": args.get(prefix + "backoff", ""),
            "base_delay_ms": parse_duration_ms(args.get(prefix + "base_delay_ms")),
            "max_delay_ms": parse_duration_ms(args.get(prefix + "max_delay_ms")),
            "jitter": float(args.get(prefix + "jitter") or DEFAULT_RETRY["jitter"]),
        })
    except ValidationFailed as exc:
        error = exc.message
    except ValueError:
        error = "Attempts is a whole number; delays read like 500 ms, 1 s, 5 min or 1 h."
    return render_template(
        "triggers/_retry_preview.html",
        policy=policy,
        delays=retry_schedule(policy) if policy else [],
        shown=DELAYS_SHOWN,
        error=error,
        preview_id=args.get("preview_id", "retry-preview"),
    )


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
    notify(f"{'Disabled' if trigger.enabled else 'Enabled'} trigger #{trigger.id}.")
    return _render(app)


@bp.post("/apps/<slug>/triggers/<id:trigger_id>/delete")
@login_required("triggers.manage")
@app_page
def remove_trigger(app, trigger_id):
    """Delete a trigger and its events still waiting to run."""
    trigger = _get_trigger(app, trigger_id)
    delete_trigger(trigger)
    notify(f"Deleted trigger #{trigger.id}.")
    return _render(app)
