"""WTForms for every dashboard form (validation and CSRF)."""
from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import BooleanField, HiddenField, IntegerField, PasswordField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, NumberRange, Optional, Regexp

from picloud.auth import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH, ROLES, USERNAME_RE
from picloud.manager.apps import MAX_CONCURRENCY_MAX
from picloud.models import Execution
from picloud.routing.match import METHODS


class LoginForm(FlaskForm):
    username = StringField(
        "Username", validators=[DataRequired(), Length(max=255)], render_kw={"autocomplete": "username"}
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired(), Length(max=MAX_PASSWORD_LENGTH)],
        render_kw={"autocomplete": "current-password"},
    )


class TokenForm(FlaskForm):
    name = StringField("Token name", validators=[DataRequired(), Length(max=100)])


class PasswordForm(FlaskForm):
    current = PasswordField(
        "Current password", validators=[DataRequired()], render_kw={"autocomplete": "current-password"}
    )
    password = PasswordField(
        "New password",
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)],
        render_kw={"autocomplete": "new-password"},
    )
    confirm = PasswordField(
        "Repeat new password",
        validators=[EqualTo("password", "Passwords differ.")],
        render_kw={"autocomplete": "new-password"},
    )


class UserForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[DataRequired(), Regexp(USERNAME_RE, message="Letters, digits or . _ @ - (max 64).")],
        render_kw={"autocomplete": "off"},
    )
    password = PasswordField(
        "Password",
        validators=[DataRequired(), Length(min=MIN_PASSWORD_LENGTH, max=MAX_PASSWORD_LENGTH)],
        render_kw={"autocomplete": "new-password"},
    )
    role = SelectField("Role", choices=[(r, r) for r in ROLES], default="developer")


class RoleForm(FlaskForm):
    role = SelectField("Role", choices=[(r, r) for r in ROLES])


class ConfirmForm(FlaskForm):
    """A form with nothing but its CSRF token, for buttons that change state."""


# Apps, domains, scripts, routes and logs (the app pages).

SLUG_HELP = "Lowercase letters, digits and hyphens; starts and ends with a letter or digit."
HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "*")


def strip_text(value):
    """Trim the whitespace around submitted text."""
    return value.strip() if isinstance(value, str) else value


TEXT = {"filters": [strip_text], "default": ""}


class AppForm(FlaskForm):
    slug = StringField("Slug", validators=[DataRequired(), Length(max=63)], description=SLUG_HELP, **TEXT)
    name = StringField("Name", validators=[Length(max=200)], **TEXT)
    description = StringField("Description", validators=[Length(max=4000)], **TEXT)
    force = BooleanField("Take this slug over from the app that used to have it")


class AppDetailsForm(FlaskForm):
    name = StringField("Name", validators=[Length(max=200)], **TEXT)
    description = TextAreaField("Description", validators=[Length(max=4000)], **TEXT)


class ConcurrencyForm(FlaskForm):
    max_concurrency = IntegerField(
        "Most runs at once, per server process",
        validators=[Optional(), NumberRange(min=1, max=MAX_CONCURRENCY_MAX)],
        description="Empty: no limit of its own, only the fair share.",
    )


class RenameForm(FlaskForm):
    slug = StringField("New slug", validators=[DataRequired(), Length(max=63)], description=SLUG_HELP, **TEXT)
    force = BooleanField("Take this slug over")


class SecretForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[DataRequired(), Regexp(r"^[A-Z_][A-Z0-9_]{0,63}$", message="Upper-case letters, digits and _ (max 64), not starting with a digit.")],
        **TEXT,
    )
    value = PasswordField("Value", validators=[InputRequired(), Length(max=64 * 1024)])


class ImportBundleForm(FlaskForm):
    bundle = FileField("Bundle file (JSON)", validators=[FileRequired("Choose a bundle file to import.")])
    prune = BooleanField("Also delete what the bundle does not hold")


class ConfirmImportForm(FlaskForm):
    """The bundle a person reviewed the plan of, sent again to be applied."""

    bundle = HiddenField(validators=[DataRequired()])
    prune = HiddenField()


class DeleteAppForm(FlaskForm):
    confirm_slug = StringField("Type the app's slug to confirm", validators=[DataRequired()], **TEXT)


class DomainForm(FlaskForm):
    pattern = StringField("Domain", validators=[DataRequired(), Length(max=300)], **TEXT)


class ScriptForm(FlaskForm):
    name = StringField(
        "Name",
        validators=[DataRequired(), Regexp(r"^[A-Za-z0-9_.-]{1,64}$", message="1-64 letters, digits or . _ -")],
        **TEXT,
    )
    description = StringField("Description", validators=[Length(max=4000)], **TEXT)


class SourceForm(FlaskForm):
    source = TextAreaField("Source", default="")


class ScriptSettingsForm(FlaskForm):
    """Description, timeout and one optional field per sandbox knob (added by ``with_knobs``)."""

    description = StringField("Description", validators=[Length(max=4000)], **TEXT)
    timeout_seconds = IntegerField("Timeout (seconds)", validators=[InputRequired(), NumberRange(min=1)])

    @classmethod
    def with_knobs(cls, knobs):
        """Return a subclass with an optional integer field ``sandbox_<knob>`` per knob."""
        fields = {
            f"sandbox_{knob}": IntegerField(knob, validators=[Optional(), NumberRange(min=1)])
            for knob in knobs
        }
        return type("SandboxSettingsForm", (cls,), fields)


class RouteForm(FlaskForm):
    method = SelectField("Method", choices=[(m, "any (*)" if m == "*" else m) for m in HTTP_METHODS])
    path = StringField("Path", validators=[DataRequired(), Length(max=1000)], filters=[strip_text], default="/")
    # Typed, not picked: a route may name any host the app's claims cover (a name under a
    # wildcard claim too); the manager checks it. The claimed patterns are offered as a list.
    host = StringField(
        "Host",
        validators=[Length(max=300)],
        description="Empty: every host the app claims.",
        **TEXT,
    )
    script_id = SelectField("Script", coerce=int, choices=[])
    dispatch_mode = SelectField("Dispatch", choices=[("sync", "sync"), ("async", "async")])
    enabled = BooleanField("Enabled", default=True)


class ConsoleForm(FlaskForm):
    """The test console; ``route`` offers the script's routes (set by ``console_form``)."""

    method = SelectField("Method", choices=[(m, m) for m in HTTP_METHODS if m != "*"])
    route = SelectField("Route", choices=[("", "none")], default="")
    path = StringField("Path", validators=[DataRequired(), Length(max=2000)], filters=[strip_text], default="/")
    params = StringField("Route params", validators=[Length(max=4000)], **TEXT)
    query = StringField("Query string", validators=[Length(max=4000)], **TEXT)
    headers = TextAreaField("Headers", validators=[Length(max=16000)], default="")
    body = TextAreaField("JSON body", validators=[Length(max=1_048_576)], default="")
    given = SelectField("Run with", choices=[("request", "a request"), ("event", "an event")], default="request")
    event = TextAreaField("Event (JSON object)", validators=[Length(max=1_048_576)], default="")
    # The editor's text, sent by the page when "draft" is on (an unsaved draft runs as is).
    draft = BooleanField("Run the editor's text, unsaved changes included", default=True)
    source = TextAreaField(validators=[Length(max=262_144)], default="")

    def validate(self, extra_validators=None):
        """Validate the request fields only when the run is given a request (they are not sent otherwise)."""
        super().validate(extra_validators)
        if self.given.data == "event":
            for name in ("method", "route", "path", "params", "query", "headers", "body"):
                self[name].errors = []
        return not any(field.errors for field in self)


class LogFilterForm(FlaskForm):
    """The Logs tab's filters; a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    script = SelectField("Script", choices=[])
    status = SelectField(
        "Status",
        choices=[("", "any status"), ("failed", "errors only")] + [(s, s) for s in (
            "ok", "script_error", "bad_script_response", "timeout", "limit_exceeded",
            "internal_error", "skipped", "queued", "running",
        )],
    )
    source = SelectField(
        "Source",
        choices=[("", "any source")] + [(s, s) for s in Execution.SOURCES],
    )
    live = BooleanField("Live")


class ResolveForm(FlaskForm):
    """The Apps page's "Which app answers this URL?" box; a GET form, so no CSRF token."""

    class Meta:
        csrf = False

    url = StringField("URL", validators=[Length(max=4096)], render_kw={"placeholder": "https://shop.example.com/orders/7"})
    method = SelectField("Method", choices=[(m, m) for m in METHODS], default="GET")
