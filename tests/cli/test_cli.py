"""docs/cli.md: the ``picloud`` command, run as a subprocess against a real server."""
import json
import os
import queue
import stat
import subprocess
import sys
import threading
import time
import tomllib
import uuid

import pytest
import requests
import tomli_w

from tests.conftest import ADMIN_PASSWORD
from tests.support.apps import new_site, site, wait_for  # noqa: F401  (fixtures)
from tests.support.live import ROOT


@pytest.fixture
def config_home(tmp_path):
    """An empty config directory, so no saved login of this machine is used."""
    home = tmp_path / "config"
    home.mkdir()
    return home


@pytest.fixture
def picloud(server, admin, config_home):
    """Run ``python -m picloud.cli ARGS`` logged in as admin; return the CompletedProcess."""

    def run(*args, input=None, env=None, login=True):
        environ = {k: v for k, v in os.environ.items() if not k.startswith("PICLOUD_")}
        environ["XDG_CONFIG_HOME"] = str(config_home)
        if login:
            environ.update(PICLOUD_URL=server.url, PICLOUD_TOKEN=admin.token)
        environ.update(env or {})
        return subprocess.run(
            [sys.executable, "-m", "picloud.cli", *map(str, args)],
            cwd=ROOT, env=environ, input=input if input is not None else "",
            capture_output=True, text=True, timeout=120,
        )

    return run


def ok(result):
    assert result.returncode == 0, (result.returncode, result.stdout, result.stderr)
    return result.stdout


def versions(site, script):
    listed = site.api.get(f"/api/v1/admin/scripts/{script['id']}/versions").json()["versions"]
    return [v["version"] for v in listed]


def bundle(site):
    return site.api.get(f"/api/v1/admin/apps/{site.app['id']}/bundle").json()


# Login and the saved token.


def test_login_reads_stdin_and_saves_a_token_only_its_owner_can_read(picloud, server, config_home):
    result = picloud("login", server.url, input=f"admin\n{ADMIN_PASSWORD}\n", login=False)
    assert "Logged in" in ok(result)
    saved = config_home / "picloud" / "config.json"
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    config = json.loads(saved.read_text())
    assert config["url"] == server.url and config["token"]
    # The saved login is used when no PICLOUD_* variable is set.
    listed = json.loads(ok(picloud("apps", "--json", login=False)))
    assert "default" in [a["slug"] for a in listed]
    # An older file with a loose mode is tightened on the next login.
    saved.chmod(0o644)
    ok(picloud("login", server.url + "/", input=f"admin\n{ADMIN_PASSWORD}\n", login=False))
    assert stat.S_IMODE(saved.stat().st_mode) == 0o600
    assert json.loads(saved.read_text())["token"] != config["token"]


def test_login_with_a_wrong_password_exits_1_with_the_api_message(picloud, server, config_home):
    result = picloud("login", server.url, input="admin\nwrong-password\n", login=False)
    assert result.returncode == 1
    assert "Error:" in result.stderr and "password" in result.stderr.lower()
    assert not (config_home / "picloud" / "config.json").exists()
    missing = picloud("login", server.url, input="admin\n", login=False)
    assert missing.returncode == 2 and "Password" in missing.stderr


def test_environment_overrides_the_saved_login(picloud, server):
    ok(picloud("login", server.url, input=f"admin\n{ADMIN_PASSWORD}\n", login=False))
    result = picloud("apps", login=False, env={"PICLOUD_TOKEN": "not-a-token"})
    assert result.returncode == 1 and "invalid" in result.stderr.lower()
    # The saved token is never sent to another server.
    elsewhere = picloud("apps", login=False, env={"PICLOUD_URL": "http://127.0.0.1:9"})
    assert elsewhere.returncode == 1 and "Not logged in" in elsewhere.stderr


def test_without_a_login_commands_exit_1(picloud):
    result = picloud("apps", login=False)
    assert result.returncode == 1 and "picloud login" in result.stderr


def test_bad_usage_exits_2(picloud, tmp_path):
    assert picloud("no-such-command").returncode == 2
    assert picloud("run", "not-a-number").returncode == 2
    assert picloud("run", "1", "--json", "{not json").returncode == 2
    assert picloud("pull", "default").returncode == 2
    assert picloud("deploy", str(tmp_path / "missing")).returncode == 2
    assert picloud("kv", "get", "default").returncode == 2


def test_the_command_imports_nothing_of_the_server():
    code = "import sys, picloud.cli; print(sorted(m for m in sys.modules if m.split('.')[0] in ('flask', 'peewee', 'lupa', 'gevent', 'psycopg')))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "[]", result.stderr


def test_the_console_script_is_python_m_picloud_cli():
    with open(ROOT / "pyproject.toml", "rb") as project:
        scripts = tomllib.load(project)["project"]["scripts"]
    assert scripts == {"picloud": "picloud.cli:main"}
    installed = os.path.join(os.path.dirname(sys.executable), "picloud")
    if not os.path.exists(installed):
        pytest.skip("the project is not installed in this environment (.ci/run installs it)")
    result = subprocess.run([installed, "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "deploy" in result.stdout


# Apps.


def test_apps_lists_slugs_and_domains(picloud, site):
    plain = ok(picloud("apps"))
    assert plain.splitlines()[0].split() == ["SLUG", "NAME", "DOMAINS"]
    assert any(line.split()[0] == site.slug and site.host in line for line in plain.splitlines())
    listed = json.loads(ok(picloud("apps", "--json")))
    mine = next(a for a in listed if a["slug"] == site.slug)
    assert [d["pattern"] for d in mine["domains"]] == [site.host]


# Pull and deploy.


def furnish(site):
    page = site.script('return "page v1"\n', name="page", description="The page.")
    other = site.script('return "other"\n', name="other", sandbox={"max_instructions": 1000000})
    site.route("/", script=page)
    site.route("/other/:id", script=other, host=site.host)
    worker = site.script('log.info("seen " .. event.key)\n', name="worker")
    site.route("/jobs", script=worker, method="POST", dispatch_mode="async",
               retry={"max_attempts": 2, "backoff": "constant", "base_delay_ms": 10, "max_delay_ms": 10, "jitter": 0})
    site.api.post(f"/api/v1/admin/apps/{site.app['id']}/triggers/kv",
                  json={"script_id": worker["id"], "key_glob": "jobs/*", "ops": ["set"]})
    site.api.post(f"/api/v1/admin/apps/{site.app['id']}/triggers/schedule",
                  json={"script_id": worker["id"], "cron": "@daily", "timezone": "Asia/Tokyo"})
    return {"page": page, "other": other, "worker": worker}


def test_pull_writes_the_app_as_a_folder(picloud, site, tmp_path):
    furnish(site)
    folder = tmp_path / "app"
    output = ok(picloud("pull", site.slug, folder))
    assert "3 scripts, 3 routes, 2 triggers" in output
    assert (folder / "scripts" / "page.lua").read_text() == 'return "page v1"\n'
    assert sorted(p.name for p in (folder / "scripts").iterdir()) == ["other.lua", "page.lua", "worker.lua"]
    manifest = tomllib.loads((folder / "picloud.toml").read_text())
    assert manifest["format"] == 1 and manifest["app"]["slug"] == site.slug
    assert manifest["domains"] == [site.host]
    assert manifest["scripts"]["page"] == {"description": "The page.", "timeout_seconds": 5}
    assert manifest["scripts"]["other"]["sandbox"] == {"max_instructions": 1000000}
    assert {"method": "GET", "path": "/", "script": "page", "dispatch_mode": "sync", "enabled": True} in manifest["routes"]
    assert manifest["triggers"][0]["key_glob"] == "jobs/*" and manifest["triggers"][0]["script"] == "worker"
    assert manifest["triggers"][1] == {"kind": "schedule", "script": "worker", "cron": "@daily",
                                       "timezone": "Asia/Tokyo", "enabled": True,
                                       "retry": manifest["triggers"][0]["retry"]}
    jobs = next(r for r in manifest["routes"] if r["path"] == "/jobs")
    assert jobs["retry"]["backoff"] == "constant" and "host" not in jobs
    assert "[[routes]]" in (folder / "picloud.toml").read_text()
    # Pulling again removes the file of a script the app no longer has.
    (folder / "scripts" / "gone.lua").write_text("return 1")
    assert "gone.lua" in ok(picloud("pull", site.slug, folder))
    assert not (folder / "scripts" / "gone.lua").exists()


def test_pull_edit_deploy_updates_exactly_that_script(picloud, site, tmp_path):
    scripts = furnish(site)
    folder = tmp_path / "app"
    ok(picloud("pull", site.slug, folder))
    (folder / "scripts" / "page.lua").write_text('return "page v2"\n')
    before = bundle(site)
    preview = ok(picloud("deploy", folder, "--dry-run"))
    assert "~ script page" in preview and '+return "page v2"' in preview and '-return "page v1"' in preview
    assert "Dry run" in preview and bundle(site) == before
    output = ok(picloud("deploy", folder))
    assert "0 created, 1 updated, 0 deleted" in output
    assert versions(site, scripts["page"]) == [2, 1]
    assert versions(site, scripts["other"]) == [1] and versions(site, scripts["worker"]) == [1]
    assert site.call("/").text == "page v2"
    # A second deploy changes nothing.
    again = ok(picloud("deploy", folder))
    assert "Nothing to deploy" in again
    assert versions(site, scripts["page"]) == [2, 1]


def test_deploy_shows_field_changes_and_creates(picloud, site, tmp_path):
    furnish(site)
    folder = tmp_path / "app"
    ok(picloud("pull", site.slug, folder))
    manifest = tomllib.loads((folder / "picloud.toml").read_text())
    manifest["scripts"]["other"]["timeout_seconds"] = 9
    manifest["routes"].append({"method": "POST", "path": "/new", "script": "fresh"})
    (folder / "picloud.toml").write_text(tomli_w.dumps(manifest))
    (folder / "scripts" / "fresh.lua").write_text('return "fresh"\n')
    output = ok(picloud("deploy", folder))
    assert "+ script fresh" in output and "+ route POST /new" in output
    assert "~ script other" in output and "timeout_seconds: 5 → 9" in output
    assert site.call("/new", method="POST").text == "fresh"


def test_deploy_of_a_bad_script_exits_1_naming_the_file_and_changes_nothing(picloud, site, tmp_path):
    furnish(site)
    folder = tmp_path / "app"
    ok(picloud("pull", site.slug, folder))
    (folder / "scripts" / "page.lua").write_text('return "changed"\n')
    (folder / "scripts" / "other.lua").write_text("return +\n")
    before = bundle(site)
    result = picloud("deploy", folder)
    assert result.returncode == 1
    assert "scripts[0].source" in result.stderr and "scripts/other.lua" in result.stderr
    assert bundle(site) == before
    (folder / "picloud.toml").write_text("this is not toml")
    broken = picloud("deploy", folder)
    assert broken.returncode == 1 and "picloud.toml" in broken.stderr


def test_deploy_prune_needs_yes_off_a_terminal(picloud, site, tmp_path):
    furnish(site)
    folder = tmp_path / "app"
    ok(picloud("pull", site.slug, folder))
    extra = site.script('return "extra"\n', name="extra")
    kept = ok(picloud("deploy", folder))
    assert "Nothing to deploy" in kept
    refused = picloud("deploy", folder, "--prune")
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert "- script extra" in ok(picloud("deploy", folder, "--prune", "--dry-run"))
    assert "extra" in [s["name"] for s in bundle(site)["scripts"]]
    output = ok(picloud("deploy", folder, "--prune", "--yes"))
    assert "- script extra" in output and "1 deleted" in output
    assert site.api.get(f"/api/v1/admin/scripts/{extra['id']}").status_code == 404


def test_deploy_to_another_app_with_the_app_option(picloud, site, tmp_path, admin, server):
    furnish(site)
    folder = tmp_path / "app"
    ok(picloud("pull", site.slug, folder))
    target = new_site(admin, server.url, "copy")
    manifest = tomllib.loads((folder / "picloud.toml").read_text())
    manifest["domains"] = [target.host]
    for route in manifest["routes"]:
        route.pop("host", None)
    (folder / "picloud.toml").write_text(tomli_w.dumps(manifest))
    output = ok(picloud("deploy", folder, "--app", target.slug))
    assert "+ script page" in output and "+ trigger kv jobs/* → worker" in output
    assert target.call("/").text == "page v1"
    assert bundle(site)["domains"] == [site.host]


# Logs and runs.


def test_logs_prints_recent_executions_with_their_logs(picloud, site):
    marker = uuid.uuid4().hex
    site.route("/log", source=f'log.info("marker {marker}")\nreturn "ok"\n')
    assert site.call("/log").status_code == 200
    wait_for(lambda: marker in ok(picloud("logs", site.slug)), what="the run in the logs")
    lines = ok(picloud("logs", site.slug, "--json")).splitlines()
    runs = [json.loads(line) for line in lines]
    run = next(r for r in runs if any(marker in entry["message"] for entry in r["logs"]))
    assert run["status"] == "ok" and run["source"] == "http"


def test_logs_follow_shows_a_run_made_after_it_started(picloud, site, server, admin, config_home):
    site.route("/tail", source='log.info("tail " .. request.query.n)\nreturn "ok"\n')
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PICLOUD_")}
    environ.update(XDG_CONFIG_HOME=str(config_home), PICLOUD_URL=server.url, PICLOUD_TOKEN=admin.token)
    follower = subprocess.Popen(
        [sys.executable, "-m", "picloud.cli", "logs", site.slug, "--follow"],
        cwd=ROOT, env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in follower.stdout], daemon=True).start()
    try:
        time.sleep(2)  # it has printed the (empty) history and is following
        marker = uuid.uuid4().hex
        assert site.call(f"/tail?n={marker}").status_code == 200
        seen = []
        deadline = time.monotonic() + 30
        while not any(f"tail {marker}" in line for line in seen):
            assert time.monotonic() < deadline, f"no run in {seen!r}"
            try:
                seen.append(lines.get(timeout=1))
            except queue.Empty:
                assert follower.poll() is None, follower.stderr.read()
        assert any(" ok " in line for line in seen)
    finally:
        follower.terminate()
        follower.wait(10)


def test_run_prints_the_response_body(picloud, site):
    script = site.script("return {got = request.json}\n")
    output = ok(picloud("run", script["id"], "--json", '{"a": [1, 2]}'))
    assert json.loads(output) == {"got": {"a": [1, 2]}}
    hello = site.script('return "plain text"\n')
    assert ok(picloud("run", hello["id"])) == "plain text"
    failing = site.script('error("boom")\n')
    result = picloud("run", failing["id"])
    assert result.returncode == 1 and "Error:" in result.stderr
    teapot = site.script('return {status = 418, body = "short and stout"}\n')
    refused = picloud("run", teapot["id"])
    assert refused.returncode == 1 and refused.stdout == "short and stout"
    missing = picloud("run", 999999999)
    assert missing.returncode == 1 and "No such script" in missing.stderr


# Data and secrets.


def test_kv_set_get_and_list(picloud, site):
    ok(picloud("kv", "set", site.slug, "user/1", '{"name": "Ada", "age": 36}'))
    ok(picloud("kv", "set", site.slug, "user/2", "just text"))
    ok(picloud("kv", "set", site.slug, "count", "42"))
    assert json.loads(ok(picloud("kv", "get", site.slug, "user/1"))) == {"name": "Ada", "age": 36}
    assert json.loads(ok(picloud("kv", "get", site.slug, "user/2"))) == "just text"
    assert json.loads(ok(picloud("kv", "get", site.slug, "count"))) == 42
    items = json.loads(ok(picloud("kv", "list", site.slug, "--prefix", "user/", "--json")))
    assert [i["key"] for i in items] == ["user/1", "user/2"]
    plain = ok(picloud("kv", "list", site.slug)).splitlines()
    assert 'user/2\t"just text"' in plain and "count\t42" in plain
    missing = picloud("kv", "get", site.slug, "nope")
    assert missing.returncode == 1 and missing.stderr.startswith("Error:")


def test_secrets_set_list_and_rm(picloud, site):
    ok(picloud("secrets", "set", site.slug, "API_KEY", "s3cret-value"))
    ok(picloud("secrets", "set", site.slug, "FROM_STDIN", input="piped-value\n"))
    listed = json.loads(ok(picloud("secrets", "list", site.slug, "--json")))
    assert sorted(s["name"] for s in listed) == ["API_KEY", "FROM_STDIN"]
    assert "s3cret-value" not in ok(picloud("secrets", "list", site.slug))
    script = site.script("return secrets.FROM_STDIN .. '|' .. secrets.API_KEY\n")
    assert ok(picloud("run", script["id"])) == "piped-value|s3cret-value"
    ok(picloud("secrets", "rm", site.slug, "API_KEY"))
    assert [s["name"] for s in json.loads(ok(picloud("secrets", "list", site.slug, "--json")))] == ["FROM_STDIN"]
    bad = picloud("secrets", "set", site.slug, "lower-case", "x")
    assert bad.returncode == 1 and bad.stderr.startswith("Error:")


def test_the_readme_flow_changes_the_default_app_live(picloud, server, tmp_path):
    folder = tmp_path / "myapp"
    ok(picloud("pull", "default", folder))
    hello = folder / "scripts" / "hello.lua"
    original = hello.read_text()
    try:
        hello.write_text('return "Hello from my laptop!"\n')
        output = ok(picloud("deploy", folder))
        assert "~ script hello" in output and "0 created, 1 updated, 0 deleted" in output
        assert requests.get(server.url + "/", timeout=30).text == "Hello from my laptop!"
        assert "Nothing to deploy" in ok(picloud("deploy", folder))
    finally:
        hello.write_text(original)
        ok(picloud("deploy", folder))
    assert requests.get(server.url + "/", timeout=30).text == original.split('"')[1]


def test_app_fields_left_out_of_picloud_toml_are_null(picloud, site, tmp_path):
    assert site.api.patch(f"/api/v1/admin/apps/{site.app['id']}",
                          json={"max_concurrency": 3, "egress_hosts": ["api.example.com"]}).status_code == 200
    folder = tmp_path / "app"
    ok(picloud("pull", site.slug, folder))
    manifest = tomllib.loads((folder / "picloud.toml").read_text())
    assert manifest["app"]["max_concurrency"] == 3 and manifest["app"]["egress_hosts"] == ["api.example.com"]
    del manifest["app"]["max_concurrency"]
    (folder / "picloud.toml").write_text(tomli_w.dumps(manifest))
    output = ok(picloud("deploy", folder))
    assert f"~ app {site.slug}" in output and "max_concurrency: 3 → null" in output
    app = site.api.get(f"/api/v1/admin/apps/{site.app['id']}").json()
    assert app["max_concurrency"] is None and app["egress_hosts"] == ["api.example.com"]


def test_a_former_slug_is_followed_to_the_app(picloud, site, tmp_path):
    furnish(site)
    old = site.slug
    renamed = site.api.patch(f"/api/v1/admin/apps/{site.app['id']}", json={"slug": old + "-new"})
    assert renamed.status_code == 200, renamed.text
    folder = tmp_path / "app"
    assert "3 scripts" in ok(picloud("pull", old, folder))
    (folder / "scripts" / "page.lua").write_text('return "renamed"\n')
    assert "1 updated" in ok(picloud("deploy", folder, "--app", old))
    assert site.call("/").text == "renamed"
