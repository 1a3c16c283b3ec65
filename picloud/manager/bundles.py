"""App bundles: an app's whole configuration as one JSON document (docs/api.md §17).

A bundle names scripts by name, so it moves between apps and installations; it holds
no data, secrets or logs. Applying one reads it whole first (every field checked by the
same manager functions the admin API uses), compares it with the app thing by thing
into a plan, checks the caller holds the capability of every change, then writes the
changes through those manager functions inside one configuration change. A problem
anywhere rolls everything back and answers 422 naming the bundle path of the problem
(``scripts[2].source``). A dry run writes too, then rolls back, so it finds every
problem a real apply would.
"""
import contextlib
import dataclasses

from picloud.cache import config_change
from picloud.errors import Conflict, Forbidden, PiCloudError, ValidationFailed
from picloud.manager import reject_unknown
from picloud.manager.apps import clean_app_fields, update_app
from picloud.manager.domains import add_domain, delete_domain, normalize_pattern
from picloud.manager.routes import clean_route, create_route, delete_route, route_key, update_route
from picloud.manager.scripts import clean_script, create_script, delete_script, update_script
from picloud.manager.triggers import clean_trigger, create_trigger, delete_trigger, fields_of, update_trigger
from picloud.models import Domain, Route, Script, Trigger
from picloud.models.outbox import GLOB_FIELDS

FORMAT = 1
SECTIONS = ("format", "app", "domains", "scripts", "routes", "triggers")
# The app's fields a bundle carries; the slug is informative only (an apply never renames).
APP_FIELDS = ("name", "description", "egress_hosts", "max_concurrency")
SCRIPT_FIELDS = ("name", "description", "source", "timeout_seconds", "sandbox")
ROUTE_FIELDS = ("method", "path", "host", "script", "dispatch_mode", "enabled", "retry")
# A trigger's JSON fields that describe its state rather than its configuration.
TRIGGER_STATE = ("id", "app_id", "script_id", "registered_by", "created_at", "updated_at", "next_run_at")
# The capability each kind of change needs.
CAPABILITIES = {
    "app": "apps.manage",
    "domain": "domains.manage",
    "script": "scripts.manage",
    "route": "routes.manage",
    "trigger": "triggers.manage",
}


@dataclasses.dataclass(frozen=True)
class Step:
    """What an apply does to one thing of the app."""

    action: str  # create, update, delete or keep
    kind: str  # app, domain, script, route or trigger
    name: str

    def to_dict(self):
        return {"action": self.action, "kind": self.kind, "name": self.name}


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The plan of an apply, and whether it was written (False for a dry run)."""

    plan: tuple
    applied: bool

    def to_dict(self):
        return {"plan": [step.to_dict() for step in self.plan], "applied": self.applied}


class _DryRun(Exception):
    """Roll the apply back once every change has been written and checked."""


# Export.


def export_bundle(app):
    """Return the app's configuration as a bundle, in a stable order."""
    scripts = sorted(Script.for_app(app), key=lambda s: s.name)
    names = {script.id: script.name for script in scripts}
    shown = app.to_dict()
    return {
        "format": FORMAT,
        "app": {"slug": app.slug, **{field: shown.get(field) for field in APP_FIELDS}},
        "domains": sorted(d.pattern for d in Domain.for_app(app)),
        "scripts": [_script_entry(script) for script in scripts],
        "routes": sorted((_route_entry(r, names) for r in Route.for_app(app)), key=_route_order),
        "triggers": sorted((_trigger_entry(t, names) for t in Trigger.for_app(app)), key=_trigger_name),
    }


def _script_entry(script):
    return {
        "name": script.name,
        "description": script.description,
        "source": script.source,
        "timeout_seconds": script.timeout_seconds,
        "sandbox": script.sandbox or {},
    }


def _route_entry(route, names):
    return {
        "method": route.method,
        "path": route.path,
        "host": route.host,
        "script": names[route.script_id],
        "dispatch_mode": route.dispatch_mode,
        "enabled": route.enabled,
        "retry": route.retry,
    }


def _trigger_entry(trigger, names):
    shown = {k: v for k, v in trigger.to_dict().items() if k not in TRIGGER_STATE}
    own = {k: v for k, v in shown.items() if k not in ("kind", "enabled", "retry")}
    return {"kind": trigger.kind, "script": names[trigger.script_id], **own,
            "enabled": shown["enabled"], "retry": shown["retry"]}


def _route_order(entry):
    return entry["host"] or "", entry["path"], entry["method"]


# Plan names, as docs/api.md §17 spells them.


def route_name(entry):
    """Return a route's plan name: ``METHOD host/path`` (host empty when null)."""
    return f"{entry['method']} {entry['host'] or ''}{entry['path']}"


def trigger_target(entry):
    """Return what a trigger watches: its glob, its cron, or nothing (dead letters)."""
    glob_field = GLOB_FIELDS.get(entry["kind"])
    if glob_field:
        return entry[glob_field]
    return entry.get("cron") or ""


def _trigger_name(entry):
    return f"{entry['kind']} {trigger_target(entry)} → {entry['script']}"


# Reading a bundle.


@dataclasses.dataclass(frozen=True)
class _Bundle:
    """A bundle with every field checked and written as the app stores it."""

    app: dict  # only the fields the bundle names
    domains: tuple  # patterns
    scripts: tuple  # script entries
    routes: tuple  # route entries
    triggers: tuple  # trigger entries


def read_bundle(bundle, app):
    """Check a bundle's shape and fields; return it normalised, or raise 422 at its path."""
    if not isinstance(bundle, dict):
        raise ValidationFailed("", "A bundle is a JSON object.")
    _check_format(bundle.get("format"))
    reject_unknown(bundle, SECTIONS)
    return _Bundle(
        app=_read_app(bundle.get("app"), app),
        domains=_read_list(bundle, "domains", _read_domain, key=lambda p: p),
        scripts=_read_list(bundle, "scripts", _read_script, key=lambda s: s["name"]),
        routes=_read_list(bundle, "routes", _read_route, key=_route_key),
        triggers=tuple(_read_items(bundle, "triggers", _read_trigger)),
    )


def _check_format(value):
    if value is None:
        raise ValidationFailed("format", f"A bundle names its format; this server reads format {FORMAT}.",
                               code="unsupported_format")
    if value != FORMAT or isinstance(value, bool):
        raise ValidationFailed(
            "format", f"This bundle is format {value!r}; this server reads format {FORMAT} only.",
            code="unsupported_format",
        )


def _read_app(value, app):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValidationFailed("app", "app must be an object.")
    with _at("app"):
        reject_unknown(value, ("slug",) + APP_FIELDS)
        fields = {k: v for k, v in value.items() if k in APP_FIELDS}
        return {**fields, **clean_app_fields(app, fields)}


def _read_items(bundle, section, read):
    value = bundle.get(section, [])
    if not isinstance(value, list):
        raise ValidationFailed(section, f"{section} must be a list.")
    for index, item in enumerate(value):
        with _at(f"{section}[{index}]"):
            entry = read(item)
        yield entry


def _read_list(bundle, section, read, key):
    """Read a section whose things are identified by ``key``; 422 on a repeated one."""
    seen = {}
    items = []
    for index, item in enumerate(_read_items(bundle, section, read)):
        if key(item) in seen:
            raise ValidationFailed(f"{section}[{index}]", f"{section}[{index}] repeats {section}[{seen[key(item)]}].",
                                   code="duplicate")
        seen[key(item)] = index
        items.append(item)
    return tuple(items)


def _read_domain(value):
    try:
        pattern, _kind = normalize_pattern(value)
    except ValidationFailed as exc:  # a domain entry is the pattern itself
        raise ValidationFailed("", exc.message, code=exc.code) from None
    return pattern


def _object(value, allowed):
    if not isinstance(value, dict):
        raise ValidationFailed("", "Each entry must be an object.")
    reject_unknown(value, allowed)
    return value


def _read_script(value):
    return clean_script(_object(value, SCRIPT_FIELDS))


def _read_route(value):
    value = _object(value, ROUTE_FIELDS)
    script = _script_name(value.get("script"))
    fields = clean_route({k: v for k, v in value.items() if k != "script"})
    del fields["script_id"]
    return {**fields, "script": script}


def _route_key(entry):
    return route_key(entry["method"], entry["host"], entry["path"])


def _read_trigger(value):
    if not isinstance(value, dict):
        raise ValidationFailed("", "Each entry must be an object.")
    kind = value.get("kind")
    fields = clean_trigger(kind, value)  # checks kind first
    own = [f for f in fields_of(kind) if f != "script_id"]
    reject_unknown(value, ("kind", "script", "retry", *own))
    return {"kind": kind, "script": _script_name(value.get("script")), **fields}


def _script_name(value):
    if not isinstance(value, str) or not value:
        raise ValidationFailed("script", "script must be the name of a script.")
    return value


@contextlib.contextmanager
def _at(path):
    """Re-raise a manager error about a field as a 422 about the bundle path holding it."""
    try:
        yield
    except (ValidationFailed, Conflict) as exc:
        extra = dict(exc.extra)
        field = extra.pop("field", "")
        if field == "script_id":
            field = "script"
        full = ".".join(part for part in (path, field) if part)
        raise ValidationFailed(full, exc.message, code=exc.code, **extra) from None


# Applying a bundle.


def apply_bundle(app, bundle, user, capabilities, *, dry_run=False, prune=False):
    """Bring the app to the bundle's configuration in one transaction; return the Outcome."""
    wanted = read_bundle(bundle, app)
    try:
        with config_change():
            apply = _Apply(app, wanted, user, prune)
            plan = apply.plan()
            _check_capabilities(plan, capabilities)
            apply.write()
            if dry_run:
                raise _DryRun()
    except _DryRun:
        return Outcome(plan=tuple(plan), applied=False)
    return Outcome(plan=tuple(plan), applied=True)


def _check_capabilities(plan, capabilities):
    for step in plan:
        needed = CAPABILITIES[step.kind]
        if step.action != "keep" and needed not in capabilities:
            raise Forbidden(needed, f"Changing a {step.kind} ({step.name}) needs the {needed} capability.")


class _Apply:
    """One apply: the app's current things matched with the bundle's, then the writes."""

    def __init__(self, app, wanted, user, prune):
        self.app = app
        self.wanted = wanted
        self.user = user
        self.prune = prune
        self.scripts = {s.name: s for s in Script.for_app(app)}
        names = {s.id: s.name for s in self.scripts.values()}
        self.domains = {d.pattern: d for d in Domain.for_app(app)}
        self.routes = {}  # route key -> (route, entry)
        for route in Route.for_app(app).order_by(Route.id):
            entry = _route_entry(route, names)
            self.routes.setdefault(_route_key(entry), (route, entry))
        self.triggers = {}  # plan name -> [(trigger, entry)], oldest first
        for trigger in Trigger.for_app(app).order_by(Trigger.id):
            entry = _trigger_entry(trigger, names)
            self.triggers.setdefault(_trigger_name(entry), []).append((trigger, entry))
        self.app_changes = {}
        self.script_changes = {}  # name -> changed fields
        self.route_changes = {}  # bundle index -> changed fields
        self.trigger_matches = []  # per bundle trigger: (trigger, changed fields) or None
        self.gone = {"domain": [], "script": [], "route": [], "trigger": []}

    # The plan.

    def plan(self):
        """Match every thing of the bundle with the app's; return the Steps in order."""
        return [
            *self._plan_app(),
            *self._plan_domains(),
            *self._plan_scripts(),
            *self._plan_routes(),
            *self._plan_triggers(),
        ]

    def _plan_app(self):
        shown = self.app.to_dict()
        self.app_changes = {k: v for k, v in self.wanted.app.items() if shown.get(k) != v}
        return [Step("update" if self.app_changes else "keep", "app", self.app.slug)]

    def _plan_domains(self):
        steps = [Step("keep" if p in self.domains else "create", "domain", p) for p in self.wanted.domains]
        return steps + self._absent("domain", self.domains, set(self.wanted.domains))

    def _plan_scripts(self):
        steps = []
        for entry in self.wanted.scripts:
            current = self.scripts.get(entry["name"])
            if current is None:
                steps.append(Step("create", "script", entry["name"]))
                continue
            changes = _changed(_script_entry(current), entry)
            self.script_changes[entry["name"]] = changes
            steps.append(Step("update" if changes else "keep", "script", entry["name"]))
        return steps + self._absent("script", self.scripts, {e["name"] for e in self.wanted.scripts})

    def _plan_routes(self):
        steps = []
        for index, entry in enumerate(self.wanted.routes):
            match = self.routes.get(_route_key(entry))
            if match is None:
                steps.append(Step("create", "route", route_name(entry)))
                continue
            changes = _changed(match[1], entry)
            self.route_changes[index] = changes
            steps.append(Step("update" if changes else "keep", "route", route_name(entry)))
        wanted = {_route_key(e) for e in self.wanted.routes}
        return steps + self._absent("route", {k: r for k, (r, _e) in self.routes.items()}, wanted,
                                    name=lambda k: route_name(self.routes[k][1]))

    def _plan_triggers(self):
        unmatched = {name: list(pairs) for name, pairs in self.triggers.items()}
        steps = []
        for entry in self.wanted.triggers:
            name = _trigger_name(entry)
            pairs = unmatched.get(name)
            if not pairs:
                self.trigger_matches.append(None)
                steps.append(Step("create", "trigger", name))
                continue
            trigger, current = pairs.pop(0)
            changes = _changed(current, entry)
            self.trigger_matches.append((trigger, changes))
            steps.append(Step("update" if changes else "keep", "trigger", name))
        for name, pairs in unmatched.items():
            for trigger, _entry in pairs:
                steps.append(self._gone_step("trigger", trigger, name))
        return steps

    def _absent(self, kind, current, wanted, name=lambda key: key):
        return [self._gone_step(kind, thing, name(key)) for key, thing in current.items() if key not in wanted]

    def _gone_step(self, kind, thing, name):
        if not self.prune:
            return Step("keep", kind, name)
        self.gone[kind].append(thing)
        return Step("delete", kind, name)

    # The writes, in an order where each one finds what it needs.

    def write(self):
        """Write every change of the plan; raise 422 at the bundle path of a problem."""
        if self.app_changes:
            with _at("app"):
                update_app(self.app, **self.app_changes)
        for index, pattern in enumerate(self.wanted.domains):
            if pattern not in self.domains:
                with _at(f"domains[{index}]"):
                    add_domain(self.app, pattern)
        self._write_scripts()
        for trigger in self.gone["trigger"]:
            delete_trigger(trigger)
        for route in self.gone["route"]:
            delete_route(route)
        route_indexes = self._write_routes()
        self._write_triggers()
        for script in self.gone["script"]:
            delete_script(script)
        for domain in self.gone["domain"]:
            self._delete_domain(domain, route_indexes)

    def _write_scripts(self):
        for index, entry in enumerate(self.wanted.scripts):
            with _at(f"scripts[{index}]"):
                if entry["name"] not in self.scripts:
                    self.scripts[entry["name"]] = create_script(self.app, entry, self.user)
                elif self.script_changes[entry["name"]]:
                    script = self.scripts[entry["name"]]
                    update_script(script, self.script_changes[entry["name"]], self.user)

    def _write_routes(self):
        """Create and update the bundle's routes; return {route id: bundle index}."""
        indexes = {}
        for index, entry in enumerate(self.wanted.routes):
            with _at(f"routes[{index}]"):
                match = self.routes.get(_route_key(entry))
                data = {k: v for k, v in entry.items() if k != "script"}
                if match is None:
                    route = create_route(self.app, {**data, "script_id": self._script_id(entry)})
                else:
                    route = match[0]
                    changes = dict(self.route_changes[index])
                    if "script" in changes:
                        changes["script_id"] = self._script_id(changes.pop("script"))
                    if changes:
                        update_route(route, changes)
                indexes[route.id] = index
        return indexes

    def _write_triggers(self):
        for index, (entry, match) in enumerate(zip(self.wanted.triggers, self.trigger_matches)):
            with _at(f"triggers[{index}]"):
                data = {k: v for k, v in entry.items() if k in fields_of(entry["kind"])}
                if match is None:
                    data["script_id"] = self._script_id(entry)
                    create_trigger(self.app, entry["kind"], data, self.user)
                elif match[1]:
                    update_trigger(match[0], {k: v for k, v in match[1].items() if k in data})

    def _script_id(self, entry_or_name):
        """Return the id of the script a route or trigger names; 422 on ``script`` if none."""
        name = entry_or_name["script"] if isinstance(entry_or_name, dict) else entry_or_name
        script = self.scripts.get(name)
        if script is None or script in self.gone["script"]:
            where = "in the bundle" if self.prune else "in the bundle or the app"
            raise ValidationFailed("script", f"No script named {name!r} {where}.")
        return script.id

    def _delete_domain(self, domain, route_indexes):
        try:
            delete_domain(self.app, domain.id)
        except PiCloudError as exc:
            if exc.code != "domain_in_use":
                raise
            stranded = [route_indexes[r] for r in exc.extra["routes"] if r in route_indexes]
            if not stranded:
                raise
            index = min(stranded)
            raise ValidationFailed(
                f"routes[{index}].host",
                f"No domain of the bundle covers this route's host ({self.wanted.routes[index]['host']}).",
                code="host_not_claimed",
            ) from None


def _changed(current, wanted):
    """Return the fields of ``wanted`` whose value differs from ``current``'s."""
    return {k: v for k, v in wanted.items() if current.get(k) != v}
