"""Scripts: validation (name, source compiles, timeout, sandbox), versions, restore."""
import re

from peewee import IntegrityError

from picloud import models, sandbox
from picloud.cache import config_change
from picloud.errors import Conflict, NotFound, ValidationFailed
from picloud.manager import reject_unknown, settings, text_field
from picloud.models import Route, Script, ScriptVersion, utcnow

NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
MAX_SOURCE_BYTES = 256 * 1024
DESCRIPTION_MAX = 4000
DEFAULT_TIMEOUT_SECONDS = 5
_FIELDS = ("name", "description", "source", "timeout_seconds", "sandbox")


def clean_script(data):
    """Check a new script's fields and return them as stored, defaults filled in."""
    return {
        "name": _name(data.get("name")),
        "source": checked_source(data.get("source")),
        "description": text_field("description", data.get("description"), max_length=DESCRIPTION_MAX, default=""),
        "timeout_seconds": _timeout(data.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)),
        "sandbox": _sandbox(data.get("sandbox")),
    }


def create_script(app, data, user):
    """Create a script in the app, as version 1."""
    reject_unknown(data, _FIELDS + ("app_id",))
    fields = clean_script(data)
    try:
        with config_change():
            script = Script.create(app=app, **fields)
            ScriptVersion.create(
                app=app, script=script, version=1, source=script.source, created_by=_username(user)
            )
    except IntegrityError:
        raise _name_taken(fields["name"]) from None
    return script


def update_script(script, data, user, *, new_version=False):
    """Change a script's fields; a changed source (or ``new_version``) adds a version."""
    reject_unknown(data, _FIELDS + ("app_id",))
    if "app_id" in data and data["app_id"] != script.app_id:
        raise ValidationFailed("app_id", "A script cannot move to another app.")
    changes = {}
    if "name" in data:
        changes["name"] = _name(data["name"])
    if "description" in data:
        changes["description"] = text_field("description", data["description"], max_length=DESCRIPTION_MAX, default="")
    if "timeout_seconds" in data:
        changes["timeout_seconds"] = _timeout(data["timeout_seconds"])
    if "sandbox" in data:
        changes["sandbox"] = _sandbox(data["sandbox"])
    if "source" in data:
        source = checked_source(data["source"])
        if source != script.source or new_version:
            changes["source"] = source
    try:
        with config_change():
            # Re-read under the change lock: the version number must not be taken twice.
            current = Script.get_by_id(script.id)
            if "source" in changes:
                changes["version"] = current.version + 1
                ScriptVersion.create(
                    app=current.app_id,
                    script=current.id,
                    version=changes["version"],
                    source=changes["source"],
                    created_by=_username(user),
                )
            changes["updated_at"] = utcnow()
            Script.update(**changes).where(Script.id == script.id).execute()
    except IntegrityError:
        raise _name_taken(changes.get("name")) from None
    return Script.get_by_id(script.id)


def delete_script(script):
    """Delete a script and its versions; 409 script_in_use while routes or triggers use it."""
    with config_change():
        routes = [r.id for r in Route.using_script(script)]
        triggers = triggers_using(script)
        if routes or triggers:
            raise Conflict(
                "Routes or triggers use this script.", code="script_in_use", routes=routes, triggers=triggers
            )
        ScriptVersion.delete().where(ScriptVersion.script == script.id).execute()
        Script.delete().where(Script.id == script.id).execute()


def triggers_using(script):
    """Return the ids of triggers that run the script (none before triggers exist)."""
    trigger = getattr(models, "Trigger", None)
    if trigger is None:
        return []
    return [row.id for row in trigger.select(trigger.id).where(trigger.script_id == script.id).order_by(trigger.id)]


# require("name") / require 'name' / require "name" with a literal name: what the editor
# can know without running the script (a computed name is only known at run time).
_REQUIRE = re.compile(r"""\brequire\s*\(?\s*(["'])([A-Za-z0-9_.\-]{1,64})\1""")


def required_modules(source):
    """Return the names of the modules a source requires with a literal name, in order."""
    names = []
    for match in _REQUIRE.finditer(source or ""):
        if match.group(2) not in names:
            names.append(match.group(2))
    return names


def module_links(script):
    """Return (modules this script requires, names of the app's scripts that require it)."""
    requires = required_modules(script.source)
    others = Script.select(Script.name, Script.source).where((Script.app == script.app_id) & (Script.id != script.id))
    required_by = sorted(other.name for other in others if script.name in required_modules(other.source))
    return requires, required_by


def script_versions(script):
    """Return the script's versions, newest first, without their sources."""
    return list(ScriptVersion.for_script(script))


def script_version(script, n):
    """Return one version of a script, with its source; 404 if there is none."""
    version = ScriptVersion.get_or_none(ScriptVersion.script == script, ScriptVersion.version == n)
    if version is None:
        raise NotFound("No such version.")
    return version


def restore_version(script, n, user):
    """Make version n's source the current one, as a new version."""
    old = script_version(script, n)
    return update_script(script, {"source": old.source}, user, new_version=True)


def sandbox_info():
    """Return the platform's sandbox defaults and ceilings: ``{"defaults", "ceiling"}``."""
    config = settings()
    return {"defaults": dict(config.sandbox_defaults), "ceiling": dict(config.sandbox_ceilings)}


def _name(name):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValidationFailed("name", "A script name is 1-64 letters, digits or . _ -.")
    return name


def checked_source(source):
    """Return Lua source that may be stored and run, or raise 422 (``compile_error`` with its line)."""
    if not isinstance(source, str):
        raise ValidationFailed("source", "source must be a string of Lua.")
    if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise ValidationFailed("source", f"source must be at most {MAX_SOURCE_BYTES // 1024} KiB.")
    if "\x00" in source:  # PostgreSQL text cannot hold it; a Lua string can say "\0"
        raise ValidationFailed("source", "source cannot contain the NUL character; write \\0 in a string.")
    error = sandbox.check_compile(source)
    if error is not None:
        raise ValidationFailed("source", error.message, code="compile_error", line=error.line)
    return source


def _timeout(value):
    limit = settings().max_timeout_seconds
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= limit:
        raise ValidationFailed("timeout_seconds", f"timeout_seconds must be an integer from 1 to {limit}.")
    return value


def _sandbox(value):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed("sandbox", "sandbox must be an object of knobs.")
    try:
        return sandbox.validate_sandbox(value, settings().sandbox_ceilings)
    except sandbox.InvalidSandbox as exc:
        raise ValidationFailed(exc.field, exc.message, code=exc.code, **(exc.extra or {})) from None


def _username(user):
    return getattr(user, "username", None)


def _name_taken(name):
    return Conflict(f"A script named {name!r} already exists in this app.", code="name_taken", field="name")
