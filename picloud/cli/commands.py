"""The ``picloud`` commands (docs/cli.md).

Exit status 0 on success, 1 when the server answers an error (its message on stderr), 2
on bad usage. ``PICLOUD_URL`` and ``PICLOUD_TOKEN`` override the login ``picloud login``
saved.
"""
import json
import os
import re
import socket
import sys
import time

import click

from picloud.cli import plan as plans
from picloud.cli.client import ApiError, Client, Login, app_path, error_of, load_login, normalize_url, save_login
from picloud.cli.folder import FolderError, read_folder, script_file, write_folder

# How often ``logs --follow`` asks for new executions, and how many it looks at each time.
FOLLOW_INTERVAL_SECONDS = 1.0
FOLLOW_WINDOW = 100
TOKEN_NAME_MAX = 100
_SCRIPT_FIELD = re.compile(r"^scripts\[(\d+)\]")


class Cli(click.Group):
    """The command group: an error answer from the server or a bad folder exits 1 with its message."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except ApiError as exc:
            raise click.ClickException(describe(exc)) from None
        except FolderError as exc:
            raise click.ClickException(str(exc)) from None


def describe(exc):
    """Return an API error's message, with the field it names."""
    return f"{exc.message} (field: {exc.field})" if exc.field else exc.message


def connect():
    """Return a Client for the saved login (or PICLOUD_URL and PICLOUD_TOKEN)."""
    login = load_login(os.environ)
    if login is None or not login.token:
        raise click.ClickException("Not logged in: run `picloud login URL`, or set PICLOUD_URL and PICLOUD_TOKEN.")
    return Client(login)


def echo_json(value):
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


@click.group(cls=Cli, context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Manage PiCloud apps from a terminal: pull an app into a folder, deploy it back, tail its logs."""


# Login and apps.


@main.command()
@click.argument("url")
def login(url):
    """Log in to the server at URL and save a new API token (asks username, then password)."""
    url = normalize_url(url)
    username = ask("Username")
    password = ask("Password", hide=True)
    name = f"picloud CLI on {socket.gethostname()}"[:TOKEN_NAME_MAX]
    issued = Client(Login(url, None)).call(
        "POST", "/api/v1/auth/token", body={"username": username, "password": password, "name": name}
    )
    path = save_login(Login(url, issued["token"]), os.environ)
    click.echo(f"Logged in to {url} as {username}; the token is saved in {path}.")


def ask(label, hide=False):
    """Prompt on a terminal; otherwise read one line of standard input."""
    if sys.stdin.isatty():
        return click.prompt(label, hide_input=hide)
    line = sys.stdin.readline()
    if not line:
        raise click.UsageError(f"{label} expected as a line on standard input.")
    return line.rstrip("\r\n")


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the apps as JSON.")
def apps(as_json):
    """List the apps you can see."""
    found = connect().every("/api/v1/admin/apps", "apps")
    if as_json:
        echo_json(found)
        return
    rows = [(a["slug"], a["name"], " ".join(d["pattern"] for d in a["domains"]) or "-") for a in found]
    width = max([len("SLUG")] + [len(r[0]) for r in rows])
    name_width = max([len("NAME")] + [len(r[1]) for r in rows])
    click.echo(f"{'SLUG':<{width}}  {'NAME':<{name_width}}  DOMAINS")
    for slug, name, domains in rows:
        click.echo(f"{slug:<{width}}  {name:<{name_width}}  {domains}")


# Pull and deploy.


@main.command()
@click.argument("app")
@click.argument("directory", metavar="DIR", type=click.Path(file_okay=False))
def pull(app, directory):
    """Write APP's configuration into DIR: picloud.toml and scripts/<name>.lua."""
    bundle = connect().call("GET", app_path(app, "bundle"))
    removed = write_folder(bundle, directory)
    click.echo(
        f"Pulled {bundle['app']['slug']} into {directory}: {len(bundle['scripts'])} scripts, "
        f"{len(bundle['routes'])} routes, {len(bundle['triggers'])} triggers."
    )
    for path in removed:
        click.echo(f"Removed {path}: the app has no such script.")


@main.command()
@click.argument("directory", metavar="DIR", type=click.Path(exists=True, file_okay=False))
@click.option("--app", "app", help="The app to deploy to (default: slug in picloud.toml).")
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option("--prune", is_flag=True, help="Delete what the folder does not hold.")
@click.option("--yes", is_flag=True, help="Do not ask before deleting (needed with --prune off a terminal).")
def deploy(directory, app, dry_run, prune, yes):
    """Apply DIR to its app: show the plan as a diff, then make the app match the folder."""
    local = read_folder(directory)
    app = app or local["app"].get("slug")
    if not app:
        raise click.UsageError("No app to deploy to: set slug in [app] of picloud.toml, or pass --app.")
    if prune and not yes and not dry_run and not sys.stdin.isatty():
        raise click.UsageError("--prune deletes what the folder lacks: pass --yes as well when not on a terminal.")
    client = connect()
    deployed = client.call("GET", app_path(app, "bundle"))
    preview = apply_folder(client, app, local, dry_run=True, prune=prune)
    for line in plans.render(preview["plan"], deployed, local):
        click.secho(line.text, fg=line.colour)
    counts = plans.changes(preview["plan"])
    if not counts["create"] + counts["update"] + counts["delete"]:
        click.echo(f"Nothing to deploy: {app} already matches {directory}.")
        return
    if dry_run:
        click.echo("Dry run: nothing was changed.")
        return
    if counts["delete"] and not yes:
        click.confirm(f"Delete {counts['delete']} things from {app}?", abort=True)
    applied = apply_folder(client, app, local, dry_run=False, prune=prune)
    counts = plans.changes(applied["plan"])
    click.echo(
        f"Deployed {directory} to {app}: {counts['create']} created, {counts['update']} updated, "
        f"{counts['delete']} deleted."
    )


def apply_folder(client, app, bundle, *, dry_run, prune):
    """PUT the folder's bundle; name the file behind a bad script in the error."""
    query = {"dry_run": str(dry_run).lower(), "prune": str(prune).lower()}
    try:
        return client.call("PUT", app_path(app, "bundle"), query=query, body=bundle)
    except ApiError as exc:
        match = _SCRIPT_FIELD.match(exc.field or "")
        if match and int(match.group(1)) < len(bundle["scripts"]):
            exc.field += f" = {script_file(bundle['scripts'][int(match.group(1))]['name'])}"
        raise


# Logs and runs.


@main.command()
@click.argument("app")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new executions as they finish.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON execution per line.")
@click.option("--limit", "-n", default=20, show_default=True, type=click.IntRange(1, 500),
              help="How many recent executions to print first.")
def logs(app, follow, as_json, limit):
    """Print APP's recent executions with their logs; --follow streams new ones."""
    client = connect()
    names = _script_names(client, app)
    recent = client.call("GET", app_path(app, "executions"), query={"limit": limit})["executions"]
    seen = set()
    for execution in reversed(recent):
        seen.add(execution["id"])
        _show(execution, names, as_json)
    if not follow:
        return
    try:
        while True:
            time.sleep(FOLLOW_INTERVAL_SECONDS)
            window = client.call("GET", app_path(app, "executions"), query={"limit": FOLLOW_WINDOW})["executions"]
            for execution in reversed(window):
                if execution["id"] in seen or execution["status"] in ("queued", "running"):
                    continue
                seen.add(execution["id"])
                if execution["script_id"] not in names:
                    names = _script_names(client, app)
                _show(execution, names, as_json)
    except KeyboardInterrupt:
        pass


def _script_names(client, app):
    scripts = client.every("/api/v1/admin/scripts", "scripts", {"app": app})
    return {script["id"]: script["name"] for script in scripts}


def _show(execution, names, as_json):
    if as_json:
        click.echo(json.dumps(execution, ensure_ascii=False))
        return
    script = names.get(execution["script_id"], f"script {execution['script_id']}")
    duration = f"{execution['duration_ms']:.1f} ms" if execution.get("duration_ms") is not None else "-"
    status = execution["status"]
    colour = "green" if status == "ok" else "red"
    head = (f"{execution['queued_at']}  {click.style(status, fg=colour)}  {execution.get('http_status') or '-'}"
            f"  {script}  {execution['source']}  {duration}  {execution['id']}")
    click.echo(head)
    for entry in execution.get("logs") or []:
        click.echo(f"    {entry['level']:<5}  {entry['message']}")
    error = execution.get("error")
    if error:
        where = f" (line {error['line']})" if error.get("line") else ""
        click.secho(f"    error  {error['message']}{where}", fg="red")


@main.command()
@click.argument("script_id", metavar="SCRIPT_ID", type=int)
@click.option("--json", "body", metavar="BODY", help="A JSON request body (the script's request.json).")
def run(script_id, body):
    """Run a script once and print its response body."""
    data = b""
    if body is not None:
        try:
            data = json.dumps(json.loads(body)).encode("utf-8")
        except ValueError:
            raise click.BadParameter("BODY must be JSON.", param_hint="--json") from None
    response = connect().request("POST", f"/api/v1/execute/{script_id}", data=data)
    if response.status >= 400:
        error = error_of(response)
        if error.code is not None:
            raise error
    output = response.body
    if sys.stdout.isatty() and output and not output.endswith(b"\n"):
        output += b"\n"
    click.echo(output, nl=False)
    if response.status >= 400:
        sys.exit(1)


# Data and secrets.


@main.group()
def kv():
    """Read and write an app's key-value store."""


@kv.command("get")
@click.argument("app")
@click.argument("key")
def kv_get(app, key):
    """Print the JSON value of KEY."""
    echo_json(connect().call("GET", app_path(app, "kv", key))["value"])


@kv.command("set")
@click.argument("app")
@click.argument("key")
@click.argument("value")
def kv_set(app, key, value):
    """Set KEY to VALUE: JSON when it parses as JSON, else the string itself."""
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    connect().call("PUT", app_path(app, "kv", key), data=json.dumps(parsed).encode("utf-8"))


@kv.command("list")
@click.argument("app")
@click.option("--prefix", help="Only keys starting with this.")
@click.option("--json", "as_json", is_flag=True, help="Print the items as JSON.")
def kv_list(app, prefix, as_json):
    """List keys with their values."""
    items = connect().every(app_path(app, "kv"), "items", {"prefix": prefix})
    if as_json:
        echo_json(items)
        return
    for item in items:
        click.echo(f"{item['key']}\t{json.dumps(item['value'], ensure_ascii=False)}")


@main.group()
def secrets():
    """Set, list and remove an app's secrets (values are never shown)."""


@secrets.command("set")
@click.argument("app")
@click.argument("name")
@click.argument("value", required=False)
def secrets_set(app, name, value):
    """Set secret NAME to VALUE (read from standard input when VALUE is left out)."""
    if value is None:
        if sys.stdin.isatty():
            value = click.prompt("Value", hide_input=True)
        else:
            value = sys.stdin.read()
            value = value[:-2] if value.endswith("\r\n") else value.removesuffix("\n")
    connect().call("PUT", app_path(app, "secrets", name), body={"value": value})
    click.echo(f"Set secret {name} of {app}.")


@secrets.command("list")
@click.argument("app")
@click.option("--json", "as_json", is_flag=True, help="Print the secrets as JSON.")
def secrets_list(app, as_json):
    """List the names of the app's secrets."""
    found = connect().call("GET", app_path(app, "secrets"))["secrets"]
    if as_json:
        echo_json(found)
        return
    for secret in found:
        click.echo(f"{secret['name']}\t{secret['updated_at']}")


@secrets.command("rm")
@click.argument("app")
@click.argument("name")
def secrets_rm(app, name):
    """Remove secret NAME."""
    connect().call("DELETE", app_path(app, "secrets", name))
    click.echo(f"Removed secret {name} of {app}.")
