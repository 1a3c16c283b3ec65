"""A deploy's plan as a readable diff: what changes, field by field, sources line by line."""
import dataclasses
import difflib
import json

from picloud.cli.folder import script_file

MARKS = {"create": "+", "update": "~", "delete": "-", "keep": " "}
COLOURS = {"create": "green", "update": "yellow", "delete": "red", "keep": None}
GLOB_FIELDS = {"kv": "key_glob", "docs": "collection_glob"}
# Values a field left out of picloud.toml takes, where it is not null: not worth a line.
DEFAULTS = {"enabled": True, "dispatch_mode": "sync", "timeout_seconds": 5}


@dataclasses.dataclass(frozen=True)
class Line:
    """One printed line of a plan, with the colour it is shown in on a terminal."""

    text: str
    colour: str | None = None


def changes(plan):
    """Count the plan's steps per action."""
    counts = {action: 0 for action in MARKS}
    for step in plan:
        counts[step["action"]] += 1
    return counts


def render(plan, deployed, local):
    """Return the Lines showing a plan: one per change, with what differs beneath it."""
    before = _things(deployed)
    after = _things(local)
    lines = []
    for step in plan:
        if step["action"] == "keep":
            continue
        action, kind, name = step["action"], step["kind"], step["name"]
        lines.append(Line(f"{MARKS[action]} {kind} {name}", COLOURS[action]))
        if action == "update":
            lines.extend(_details(kind, name, before.get((kind, name)), after.get((kind, name))))
    kept = changes(plan)["keep"]
    if kept:
        lines.append(Line(f"  ({kept} unchanged)"))
    return lines


def _things(bundle):
    """Index a bundle's things by (kind, plan name)."""
    things = {("app", bundle["app"].get("slug")): bundle["app"]}
    for script in bundle.get("scripts", []):
        things[("script", script.get("name"))] = script
    for route in bundle.get("routes", []):
        if isinstance(route, dict):
            things[("route", route_name(route))] = route
    for trigger in bundle.get("triggers", []):
        if isinstance(trigger, dict):
            things[("trigger", trigger_name(trigger))] = trigger
    return things


def route_name(route):
    """Return a route's plan name, ``METHOD host/path``."""
    return f"{str(route.get('method', '')).upper()} {route.get('host') or ''}{route.get('path', '')}"


def trigger_name(trigger):
    """Return a trigger's plan name, ``kind target → script``."""
    kind = trigger.get("kind")
    target = trigger.get(GLOB_FIELDS[kind]) if kind in GLOB_FIELDS else trigger.get("cron") or ""
    return f"{kind} {target} → {trigger.get('script')}"


def _details(kind, name, before, after):
    """Show how a thing changes: a unified diff of a script's source, old → new for fields."""
    if before is None or after is None:
        return []
    lines = []
    if kind == "script" and before.get("source") != after.get("source"):
        diff = difflib.unified_diff(
            before.get("source", "").splitlines(),
            after.get("source", "").splitlines(),
            fromfile=f"{script_file(name)} (deployed)",
            tofile=script_file(name),
            lineterm="",
        )
        for text in diff:
            colour = {"+": "green", "-": "red", "@": "cyan"}.get(text[:1])
            lines.append(Line("    " + text, None if text.startswith(("+++", "---")) else colour))
    for field in sorted(set(before) | set(after)):
        if field in ("source", "slug") or before.get(field) == after.get(field):
            continue
        if field in after:
            lines.append(Line(f"    {field}: {_shown(before[field]) if field in before else '(default)'} → {_shown(after[field])}"))
        elif before[field] not in (None, "", {}, []) and before[field] != DEFAULTS.get(field):
            lines.append(Line(f"    {field}: {_shown(before[field])} → (default)"))
    return lines


def _shown(value):
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
