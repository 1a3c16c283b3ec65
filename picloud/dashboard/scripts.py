"""The Scripts tab and the script page: editor, versions, sandbox settings, test console."""
import dataclasses
import json
from urllib.parse import parse_qsl, urlencode

from flask import current_app, g, request, url_for

from picloud import orchestrator
from picloud.cache import ScriptSnapshot
from picloud.dashboard.base import bp, login_required, notify
from picloud.dashboard.apps import app_page, describe_error, go_to, render_tab, show_error
from picloud.dashboard.diffs import line_diff, summary
from picloud.dashboard.forms import ConfirmForm, ConsoleForm, ScriptForm, ScriptSettingsForm, SourceForm
from picloud.errors import Conflict, NotFound, ValidationFailed
from picloud.invocation import (
    UNHOLDABLE_JSON,
    Invocation,
    UnholdableJSON,
    first_values,
    request_table,
    script_json,
)
from picloud.manager import scripts as manager
from picloud.manager.routes import route_urls
from picloud.models import DeadLetter, Execution, Route, Script
from picloud.routing.match import LITERAL, match_segments, parse_path, split_request_path

# How long a console run waits for a free execution slot before giving up.
CONSOLE_WAIT_SECONDS = 5
# Past runs and dead letters the console offers to load as its input.
PAST_INPUTS = 15

# What a new script starts from: small, runnable, and showing the globals it gets.
SCRIPT_TEMPLATE = """\
-- Runs for each request routed here.
-- request: method, path, host, params, query, headers, body, json
-- Return a string, a table (sent as JSON) or {status = ..., headers = ..., body = ...}.
local name = request.query.name or "world"
log.info("greeting " .. name)
return {
  status = 200,
  headers = {["content-type"] = "text/plain; charset=utf-8"},
  body = "Hello, " .. name .. "!",
}
"""


def _get_script(app, script_id):
    script = Script.get_or_none((Script.id == script_id) & (Script.app == app))
    if script is None:
        raise NotFound("No such script.")
    return script


def _render_list(app, form=None, status=200):
    listed = Script.listing(app).order_by(Script.name)
    return render_tab(
        app,
        "scripts",
        "scripts/index.html",
        status=status,
        scripts=listed,
        form=form or ScriptForm(formdata=None),
    )


@bp.get("/apps/<slug>/scripts")
@login_required()
@app_page
def scripts(app):
    """List the app's scripts, with a form to create one."""
    return _render_list(app)


@bp.post("/apps/<slug>/scripts")
@login_required("scripts.manage")
@app_page
def create_script(app):
    """Create a script from the starting template and open it in the editor."""
    form = ScriptForm()
    if not form.validate_on_submit():
        return _render_list(app, form, 422)
    data = {"name": form.name.data, "source": SCRIPT_TEMPLATE, "description": form.description.data}
    try:
        script = manager.create_script(app, data, g.user)
    except (Conflict, ValidationFailed) as exc:
        show_error(form, exc, "name")
        return _render_list(app, form, exc.status)
    return go_to(url_for("dashboard.script", slug=app.slug, script_id=script.id))


# The script page ---------------------------------------------------------------------


def settings_form(script):
    """Return the timeout and sandbox form: the posted values, else the script's own."""
    info = manager.sandbox_info()
    form_class = ScriptSettingsForm.with_knobs(info["defaults"])
    kwargs = {}
    if request.method == "GET":
        kwargs.update(
            description=script.description or "",
            timeout_seconds=script.timeout_seconds,
            **{f"sandbox_{knob}": value for knob, value in (script.sandbox or {}).items()},
        )
    form = form_class(**kwargs)
    form.knobs = [
        (form[f"sandbox_{knob}"], info["defaults"][knob], info["ceiling"].get(knob))
        for knob in info["defaults"]
    ]
    return form


def _script_routes(script):
    found = []
    for route in Route.select().where(Route.script == script).order_by(Route.path):
        found.append({**route.to_dict(), "urls": route_urls(route)})
    return found


@bp.get("/apps/<slug>/scripts/<id:script_id>")
@login_required()
@app_page
def script(app, script_id):
    """Show the script page: editor, versions, sandbox settings, routes, test console."""
    script = _get_script(app, script_id)
    console = console_form(script, formdata=None)
    fill_console(console, app, request.args.get("run", ""))  # "Run again" from a run's page
    return _render_script(app, script, None, error_line=request.args.get("line", type=int), console=console)


def _render_script(app, script, partial, status=200, **context):
    """Render one part of the script page for htmx, else the whole page showing that part's state."""
    if partial is None or not request.htmx:
        context = {
            "source_form": SourceForm(formdata=None),
            "settings_form": settings_form(script),
            "console": console_form(script, formdata=None),
            "confirm": ConfirmForm(),
            "versions": manager.script_versions(script),
            "routes": _script_routes(script),
            "modules": manager.module_links(script),
            "max_timeout": _max_timeout(),
            **context,
        }
    return render_tab(app, "scripts", "scripts/show.html", partial, status=status, script=script, **context)


def _max_timeout():
    return current_app.config["PICLOUD"].max_timeout_seconds


@bp.post("/apps/<slug>/scripts/<id:script_id>/source")
@login_required("scripts.manage")
@app_page
def save_source(app, script_id):
    """Save the editor's source as a new version; a compile error answers 422 with its line."""
    script = _get_script(app, script_id)
    source = SourceForm().source.data.replace("\r\n", "\n")  # CSRFProtect checked the token
    try:
        script = manager.update_script(script, {"source": source}, g.user)
    except (ValidationFailed, Conflict) as exc:
        return _render_script(
            app, script, "scripts/_save_status.html", exc.status,
            error=exc.message, line=exc.extra.get("line"), source=source,
        )
    body, status = _render_script(app, script, "scripts/_save_status.html", saved=True)
    return body, status, {"HX-Trigger": "script-saved"}


@bp.get("/apps/<slug>/scripts/<id:script_id>/versions")
@login_required()
@app_page
def versions(app, script_id):
    """List a script's versions (the history panel refreshes itself after a save)."""
    script = _get_script(app, script_id)
    return render_tab(
        app,
        "scripts",
        "scripts/_versions.html",
        script=script,
        versions=manager.script_versions(script),
        confirm=ConfirmForm(),
    )


@bp.get("/apps/<slug>/scripts/<id:script_id>/versions/<id:number>")
@login_required()
@app_page
def version(app, script_id, number):
    """Show what one version changed against the one before it (or the current), or its source."""
    script = _get_script(app, script_id)
    version = manager.script_version(script, number)
    against = request.args.get("against", "previous")
    base_number = {"previous": number - 1, "current": script.version}.get(against)
    base = None
    if base_number and base_number != number and against != "source":
        base = manager.script_version(script, base_number)
    rows = line_diff(base.source, version.source) if base else None
    return render_tab(
        app,
        "scripts",
        "scripts/_version_source.html",
        script=script,
        version=version,
        base=base,
        against=against if base or against == "source" else "source",
        rows=rows,
        changes=summary(rows) if rows is not None else None,
    )


@bp.post("/apps/<slug>/scripts/<id:script_id>/versions/<id:number>/restore")
@login_required("scripts.manage")
@app_page
def restore_version(app, script_id, number):
    """Make an old version the current source (as a new version) and reopen the editor."""
    script = _get_script(app, script_id)
    restored = manager.restore_version(script, number, g.user)
    notify(f"Restored version {number} of {script.name} as version {restored.version}.")
    return go_to(url_for("dashboard.script", slug=app.slug, script_id=script.id))


@bp.post("/apps/<slug>/scripts/<id:script_id>/settings")
@login_required("scripts.manage")
@app_page
def save_script_settings(app, script_id):
    """Save the description, timeout and sandbox limits (a blank knob means the default)."""
    script = _get_script(app, script_id)
    form = settings_form(script)
    saved = False
    status = 200
    if not form.validate_on_submit():
        status = 422
    else:
        data = {
            "description": form.description.data,
            "timeout_seconds": form.timeout_seconds.data,
            "sandbox": {
                field.name.removeprefix("sandbox_"): field.data
                for field, _, _ in form.knobs
                if field.data is not None
            },
        }
        try:
            script = manager.update_script(script, data, g.user)
            saved = True
        except (ValidationFailed, Conflict) as exc:
            show_error(form, exc, "timeout_seconds")
            status = exc.status
    return _render_script(
        app, script, "scripts/_settings.html", status, settings_form=form, saved=saved, max_timeout=_max_timeout()
    )


@bp.post("/apps/<slug>/scripts/<id:script_id>/delete")
@login_required("scripts.manage")
@app_page
def delete_script(app, script_id):
    """Delete a script that no route or trigger uses."""
    script = _get_script(app, script_id)
    try:
        manager.delete_script(script)
    except Conflict as exc:
        return _render_script(
            app, script, "scripts/_delete.html", exc.status, delete_error=describe_error(exc), confirm=ConfirmForm()
        )
    notify(f"Deleted the script {script.name}.")
    return go_to(url_for("dashboard.scripts", slug=app.slug))


# The test console --------------------------------------------------------------------


def console_form(script, **kwargs):
    """Return the console form offering the script's routes to run it behind, and its past inputs."""
    form = ConsoleForm(**kwargs)
    form.past_inputs = past_inputs(script)
    form.routes = {str(route.id): route for route in Route.select().where(Route.script == script).order_by(Route.path)}
    form.route.choices = [("", "none: type the params")] + [
        (key, f"{route.method} {route.path}") for key, route in form.routes.items()
    ]
    return form


@bp.post("/apps/<slug>/scripts/<id:script_id>/run")
@login_required("scripts.execute")
@app_page
def run_script(app, script_id):
    """Run the script (or the editor's unsaved draft) with the console's request or event."""
    script = _get_script(app, script_id)
    form = console_form(script)
    result = None
    status = 200
    snapshot = console_script(form, script) if form.validate_on_submit() else None
    globals = console_globals(form) if snapshot is not None else None
    if globals is None:
        status = 422
    else:
        invocation = Invocation(
            script=snapshot,
            globals=globals,
            source="execute",
            wait_seconds=CONSOLE_WAIT_SECONDS,
            principal={"user_id": g.user.id, "username": g.user.username},
        )
        try:
            execution, outcome = orchestrator.run_script(invocation)
        except orchestrator.Overloaded:
            # Shown in the console (htmx swaps no 5xx): the run never started.
            form.method.errors.append("Every execution slot is busy; try again in a moment.")
        else:
            result = console_result(execution, outcome)
            result["draft"] = snapshot.source != script.source
    return _render_script(app, script, "scripts/_console.html", status, console=form, result=result)


@bp.get("/apps/<slug>/scripts/<id:script_id>/console")
@login_required("scripts.execute")
@app_page
def load_console(app, script_id):
    """Fill the console with a past run's request or event (``run``) or a dead letter's event."""
    script = _get_script(app, script_id)
    form = console_form(script, formdata=None)
    fill_console(form, app, request.args.get("run", ""))
    return _render_script(app, script, "scripts/_console.html", console=form)


def console_script(form, script):
    """Return the ScriptSnapshot the console runs: the saved script, or the editor's draft."""
    snapshot = ScriptSnapshot.of(script)
    draft = (form.source.data or "").replace("\r\n", "\n")
    if not form.draft.data or not draft.strip() or draft == snapshot.source:
        return snapshot
    try:
        checked = manager.checked_source(draft)
    except ValidationFailed as exc:
        line = exc.extra.get("line")
        form.draft.errors.append(f"The editor's text does not compile{f' (line {line})' if line else ''}: {exc.message}")
        return None
    # A snapshot of its own: the warm runtime caches chunks by their source, never mixing the two.
    return dataclasses.replace(snapshot, source=checked)


def console_globals(form):
    """Return the run's globals from the console (a request, or an event), or None marking the field."""
    if form.given.data != "event":
        table = console_request(form)
        return None if table is None else {"request": table}
    text = (form.event.data or "").strip()
    event = _decoded_json(form.event, text.encode("utf-8")) if text else None
    if event is REFUSED:
        return None
    if not isinstance(event, dict):
        form.event.errors.append('An event is a JSON object, such as {"kind": "kv", "op": "set", "key": "a"}.')
        return None
    return {"event": event}


# What _decoded_json returns for JSON the console refuses (None is JSON's null).
REFUSED = object()


def _decoded_json(field, raw):
    """Return a console field's JSON as a script can hold it, or REFUSED with the error on the field."""
    try:
        return script_json(raw)
    except UnholdableJSON as exc:
        field.errors.append(UNHOLDABLE_JSON.format(exc))
    except ValueError as exc:
        field.errors.append(f"Not valid JSON: {exc}")
    return REFUSED


def fill_console(form, app, source):
    """Fill the console from a past run (its execution id) or a dead letter ("dead-letter-N")."""
    given = {}
    if source.startswith("dead-letter-") and source.removeprefix("dead-letter-").isdigit():
        letter = DeadLetter.get_or_none(
            (DeadLetter.id == int(source.removeprefix("dead-letter-"))) & (DeadLetter.app == app)
        )
        if letter is not None:  # an async route's dead letter holds its request
            given = {"request" if letter.source == "http" else "event": letter.event}
    elif source:
        execution = Execution.get_or_none((Execution.id == source) & (Execution.app_id == app.id))
        given = (execution.input if execution is not None else None) or {}
    if given.get("event") is not None:
        form.given.data, form.event.data = "event", json.dumps(given["event"], indent=2, ensure_ascii=False)
    elif given.get("request"):
        _fill_request(form, given["request"])


def _fill_request(form, req):
    form.given.data = "request"
    form.method.data = req.get("method") if req.get("method") in dict(form.method.choices) else "GET"
    form.path.data = req.get("path") or "/"
    form.query.data = urlencode(req.get("query") or {})
    form.params.data = urlencode(req.get("params") or {})
    form.headers.data = "\n".join(
        f"{name}: {value}"
        for name, value in sorted((req.get("headers") or {}).items())
        if value != "[redacted]" and name not in ("content-length", "host")
    )
    body = req.get("body") or ""
    form.body.data = "" if req.get("binary") or not isinstance(body, str) else body


def past_inputs(script):
    """Return what the console can load: (value, label) of the script's recent runs and dead letters."""
    runs = (
        Execution.select(Execution.id, Execution.source, Execution.status, Execution.queued_at, Execution.input)
        .where((Execution.script_id == script.id) & Execution.input.is_null(False))
        .order_by(Execution.queued_at.desc())
        .limit(PAST_INPUTS)
    )
    choices = [
        (run.id, f"{run.queued_at:%Y-%m-%d %H:%M:%S} · {run.source} · {run.status}")
        for run in runs
    ]
    letters = (
        DeadLetter.select(DeadLetter.id, DeadLetter.source, DeadLetter.created_at)
        .where((DeadLetter.script_id == script.id) & (DeadLetter.app == script.app_id) & (DeadLetter.source != "http"))
        .order_by(DeadLetter.id.desc())
        .limit(PAST_INPUTS)
    )
    choices += [(f"dead-letter-{letter.id}", f"dead letter #{letter.id} · {letter.source} event") for letter in letters]
    return choices


def console_result(execution, outcome):
    """Flatten a run's outcome into what the console shows."""
    response = None
    if outcome.response is not None:
        response = {
            "status": outcome.response.status,
            "headers": list(outcome.response.headers),
            "body": _readable_body(outcome.response),
        }
    return {
        "status": execution.status,
        "http_status": execution.http_status,
        "execution_id": execution.id,
        "duration_ms": round(outcome.duration_ms, 2) if outcome.duration_ms is not None else None,
        # The record's error and usage: secrets masked, outbound requests counted.
        "usage": execution.usage or outcome.usage or {},
        "error": execution.error if outcome.error else None,
        "http_calls": list(execution.http_calls),
        "limit": outcome.limit,
        "response": response,
        "logs": list(execution.logs),
    }


def _readable_body(response):
    text = response.body.decode("utf-8", "replace")
    content_type = next((v for k, v in response.headers if k.lower() == "content-type"), "")
    if "json" in content_type:
        try:
            return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
        except ValueError:
            pass
    return text


def console_request(form):
    """Return the script's ``request`` table built from the console, or None marking the faulty field."""
    headers = _console_headers(form)
    if headers is None:
        return None
    body = (form.body.data or "").encode("utf-8")
    decoded = None
    if body.strip():
        decoded = _decoded_json(form.body, body)
        if decoded is REFUSED:
            return None
        headers.setdefault("content-type", "application/json")
    path = form.path.data if form.path.data.startswith("/") else "/" + form.path.data
    path, params = _console_params(form, path)
    if params is None:
        return None
    return request_table(
        method=form.method.data,
        path=path,
        host=request.host.rsplit(":", 1)[0],
        params=params,
        query=first_values(parse_qsl((form.query.data or "").lstrip("?"), keep_blank_values=True)),
        headers=headers,
        body=body,
        json_body=decoded,
    )


def _console_headers(form):
    headers = {}
    for number, line in enumerate((form.headers.data or "").splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip():
            form.headers.errors.append(f"Line {number} is not 'Name: value'.")
            return None
        headers.setdefault(name.strip().lower(), value.strip())
    return headers


def _console_params(form, path):
    """Return (path, route params) of a console run, or (path, None) marking the faulty field.

    Behind a chosen route the params come from the path, as the route would match it;
    a path that does not match is built from the route with the typed params instead.
    Without a route the typed params are the params.
    """
    typed = first_values(parse_qsl(form.params.data or "", keep_blank_values=True))
    route = form.routes.get(form.route.data)
    if route is None:
        return path, typed
    segments = parse_path(route.path)
    matched = match_segments(segments, split_request_path(path))
    if matched is not None:
        return path, {**typed, **matched}
    missing = [name for kind, name in segments if kind != LITERAL and name not in typed]
    if missing:
        form.path.errors.append(
            f"The path does not match {route.path}: type a path it matches, or give {missing[0]} in the route params."
        )
        return path, None
    filled = [text if kind == LITERAL else typed[text] for kind, text in segments]
    return "/" + "/".join(filled), typed
