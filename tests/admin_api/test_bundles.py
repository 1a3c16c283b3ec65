"""docs/api.md §17: export an app as a bundle and apply one — plan, dry run, prune, all or nothing."""
import copy
import uuid

from tests.support.apps import add_trigger, new_site, other_site, site  # noqa: F401  (fixtures)

RETRY = {"max_attempts": 2, "backoff": "linear", "base_delay_ms": 10, "max_delay_ms": 100, "jitter": 0.0}


def bundle_url(site, **flags):
    query = "&".join(f"{k}={'true' if v else 'false'}" for k, v in flags.items())
    return f"/api/v1/admin/apps/{site.app['id']}/bundle" + (f"?{query}" if query else "")


def export(site, api=None):
    response = (api or site.api).get(bundle_url(site))
    assert response.status_code == 200, response.text
    return response.json()


def apply(site, bundle, api=None, **flags):
    return (api or site.api).put(bundle_url(site, **flags), json=bundle)


def plan_of(response):
    assert response.status_code == 200, response.text
    return {(step["kind"], step["name"]): step["action"] for step in response.json()["plan"]}


def versions(site, script):
    return [v["version"] for v in site.api.get(f"/api/v1/admin/scripts/{script['id']}/versions").json()["versions"]]


def furnished(site):
    """Give the site one of everything a bundle holds; return the scripts by name."""
    api_script = site.script('return {ok = true}\n', name="api", description="The API.",
                             timeout_seconds=7, sandbox={"max_instructions": 5000000})
    worker = site.script('log.info(event.key)\n', name="worker")
    site.route("/items/:id", script=api_script, method="GET", host=site.host)
    site.route("/jobs", script=worker, method="POST", dispatch_mode="async", retry=RETRY)
    add_trigger(site, "kv", worker, key_glob="orders/*", ops=["set"])
    add_trigger(site, "docs", worker, collection_glob="users", retry=RETRY)
    add_trigger(site, "dead_letter", worker)
    add_trigger(site, "schedule", worker, cron="0 3 * * *", timezone="Europe/Paris")
    return {"api": api_script, "worker": worker}


def test_export_holds_the_app_configuration_by_name(site):
    furnished(site)
    bundle = export(site)
    assert set(bundle) == {"format", "app", "domains", "scripts", "routes", "triggers"}
    assert bundle["format"] == 1
    assert bundle["app"] == {"slug": site.slug, "name": site.slug, "description": "",
                             "egress_hosts": None, "max_concurrency": None} | {
        k: v for k, v in bundle["app"].items() if k in ("egress_hosts", "max_concurrency")}
    assert bundle["domains"] == [site.host]
    assert bundle["scripts"] == [
        {"name": "api", "description": "The API.", "source": "return {ok = true}\n", "timeout_seconds": 7,
         "sandbox": {"max_instructions": 5000000}},
        {"name": "worker", "description": "", "source": "log.info(event.key)\n", "timeout_seconds": 5, "sandbox": {}},
    ]
    assert bundle["routes"] == [
        {"method": "POST", "path": "/jobs", "host": None, "script": "worker", "dispatch_mode": "async",
         "enabled": True, "retry": RETRY},
        {"method": "GET", "path": "/items/:id", "host": site.host, "script": "api", "dispatch_mode": "sync",
         "enabled": True, "retry": None},
    ]
    kinds = {t["kind"]: t for t in bundle["triggers"]}
    assert kinds["kv"] == {"kind": "kv", "script": "worker", "key_glob": "orders/*", "ops": ["set"],
                           "enabled": True, "retry": kinds["kv"]["retry"]}
    assert kinds["docs"]["collection_glob"] == "users" and kinds["docs"]["retry"] == RETRY
    assert kinds["dead_letter"] == {"kind": "dead_letter", "script": "worker", "enabled": True, "retry": None}
    assert kinds["schedule"] == {"kind": "schedule", "script": "worker", "cron": "0 3 * * *",
                                 "timezone": "Europe/Paris", "enabled": True, "retry": kinds["kv"]["retry"]}
    text = str(bundle)
    assert "'id'" not in text and "script_id" not in text and "created_at" not in text


def test_export_holds_no_data(site):
    furnished(site)
    assert site.api.put(f"/api/v1/admin/apps/{site.app['id']}/kv/secret-key", json="data").status_code == 200
    assert "secret-key" not in str(export(site))


def test_applying_the_exported_bundle_keeps_everything_and_bumps_no_version(site):
    scripts = furnished(site)
    before = export(site)
    response = apply(site, before)
    assert response.json()["applied"] is True
    plan = response.json()["plan"]
    assert {step["action"] for step in plan} == {"keep"}
    assert [s["kind"] for s in plan].count("trigger") == 4 and [s["kind"] for s in plan].count("route") == 2
    assert versions(site, scripts["api"]) == [1]
    assert export(site) == before


def test_round_trip_into_a_fresh_app(site, admin, server):
    furnished(site)
    bundle = export(site)
    fresh = new_site(admin, server.url, "fresh")
    moved = copy.deepcopy(bundle)
    moved["domains"] = [fresh.host]
    moved["routes"][1]["host"] = fresh.host
    response = apply(fresh, moved)
    plan = plan_of(response)
    assert plan[("script", "api")] == "create" and plan[("route", f"GET {fresh.host}/items/:id")] == "create"
    assert plan[("trigger", "kv orders/* → worker")] == "create"
    assert plan[("trigger", "dead_letter  → worker")] == "create"
    assert plan[("trigger", "schedule 0 3 * * * → worker")] == "create"
    assert plan[("domain", fresh.host)] == "keep"
    copied = export(fresh)
    assert copied["app"]["slug"] == fresh.slug  # the bundle's slug is not taken
    for section in ("scripts", "routes", "triggers"):
        assert copied[section] == moved[section]
    assert fresh.call("/items/7").json() == {"ok": True}
    assert plan_of(apply(fresh, copied)) == {key: "keep" for key in plan}


def test_changing_one_script_updates_exactly_that_script(site):
    scripts = furnished(site)
    bundle = export(site)
    bundle["scripts"][0]["source"] = "return {ok = false}\n"
    plan = plan_of(apply(site, bundle))
    assert plan[("script", "api")] == "update"
    assert [k for k, action in plan.items() if action != "keep"] == [("script", "api")]
    assert versions(site, scripts["api"]) == [2, 1]
    assert versions(site, scripts["worker"]) == [1]
    assert site.call("/items/1").json() == {"ok": False}


def test_dry_run_plans_without_writing(site):
    scripts = furnished(site)
    before = export(site)
    bundle = copy.deepcopy(before)
    bundle["scripts"][0]["timeout_seconds"] = 9
    bundle["scripts"].append({"name": "extra", "source": "return 1"})
    bundle["routes"].append({"method": "GET", "path": "/extra", "script": "extra"})
    response = apply(site, bundle, dry_run=True)
    plan = plan_of(response)
    assert response.json()["applied"] is False
    assert plan[("script", "api")] == "update" and plan[("script", "extra")] == "create"
    assert plan[("route", "GET /extra")] == "create"
    assert export(site) == before
    assert versions(site, scripts["api"]) == [1]
    assert site.call("/extra").status_code == 404
    # A dry run finds the problems a real apply would.
    bundle["routes"].append({"method": "GET", "path": "/extra/", "script": "extra"})
    failed = apply(site, bundle, dry_run=True)
    assert failed.status_code == 422 and failed.json()["error"]["field"] == f"routes[{len(bundle['routes']) - 1}]"


def test_things_absent_from_the_bundle_are_kept_unless_pruned(site):
    furnished(site)
    bundle = export(site)
    bundle["scripts"] = [s for s in bundle["scripts"] if s["name"] == "api"]
    bundle["routes"] = [r for r in bundle["routes"] if r["script"] == "api"]
    bundle["triggers"] = []
    kept = plan_of(apply(site, bundle))
    assert kept[("script", "worker")] == "keep" and kept[("route", "POST /jobs")] == "keep"
    assert kept[("trigger", "kv orders/* → worker")] == "keep"
    assert len(export(site)["triggers"]) == 4
    pruned = plan_of(apply(site, bundle, prune=True))
    assert pruned[("script", "worker")] == "delete" and pruned[("route", "POST /jobs")] == "delete"
    assert pruned[("trigger", "docs users → worker")] == "delete"
    assert pruned[("script", "api")] == "keep"
    after = export(site)
    assert [s["name"] for s in after["scripts"]] == ["api"]
    assert [r["path"] for r in after["routes"]] == ["/items/:id"] and after["triggers"] == []
    assert site.call("/jobs", method="POST").status_code == 404


def test_prune_removes_a_domain_unless_a_route_of_the_bundle_needs_it(site):
    furnished(site)
    extra = f"extra-{uuid.uuid4().hex[:8]}.test"
    bundle = export(site)
    bundle["domains"].append(extra)
    assert plan_of(apply(site, bundle))[("domain", extra)] == "create"
    bundle["domains"] = [extra]
    before = export(site)
    response = apply(site, bundle, prune=True)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == "routes[1].host" and error["code"] == "host_not_claimed"
    assert export(site) == before
    bundle["routes"][1]["host"] = extra
    plan = plan_of(apply(site, bundle, prune=True))
    assert plan[("domain", site.host)] == "delete" and plan[("route", f"GET {extra}/items/:id")] == "create"
    assert plan[("route", f"GET {site.host}/items/:id")] == "delete"
    assert export(site)["domains"] == [extra]


def test_a_bad_bundle_changes_nothing_and_names_the_first_bad_path(site):
    scripts = furnished(site)
    before = export(site)
    bundle = copy.deepcopy(before)
    bundle["app"]["description"] = "changed"
    bundle["scripts"][0]["source"] = "return 'changed'"
    bundle["scripts"].append({"name": "new", "source": "return 1"})
    bundle["scripts"].append({"name": "broken", "source": "return +"})
    response = apply(site, bundle)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "scripts[3].source" and error["code"] == "compile_error" and error["line"] == 1
    bundle["scripts"].pop()
    bundle["routes"].append({"method": "GET", "path": "/new", "script": "missing"})
    response = apply(site, bundle)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "routes[2].script"
    assert "missing" in response.json()["error"]["message"]
    assert export(site) == before
    assert versions(site, scripts["api"]) == [1]


def test_a_conflict_with_another_app_rolls_back_every_earlier_write(site, other_site):
    furnished(site)
    before = export(site)
    bundle = copy.deepcopy(before)
    bundle["scripts"][1]["source"] = "return 'changed'"
    bundle["domains"].append(other_site.host)
    response = apply(site, bundle)
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["field"] == "domains[1]" and error["code"] == "domain_taken"
    assert error["held_by"] == {"id": other_site.app["id"], "slug": other_site.slug}
    assert export(site) == before


def test_bad_fields_answer_422_at_their_bundle_path(site):
    furnished(site)
    base = export(site)
    cases = [
        (lambda b: b["scripts"][1].update(timeout_seconds=0), "scripts[1].timeout_seconds", "validation_failed"),
        (lambda b: b["scripts"][0].update(sandbox={"max_bananas": 1}), "scripts[0].sandbox.max_bananas", None),
        (lambda b: b["scripts"][0].update(colour="red"), "scripts[0].colour", None),
        (lambda b: b["scripts"].append(dict(b["scripts"][0])), "scripts[2]", "duplicate"),
        (lambda b: b["routes"][0].update(method="FETCH"), "routes[0].method", None),
        (lambda b: b["routes"][0].update(path="/api/x"), "routes[0].path", "reserved_path"),
        (lambda b: b["routes"][0].update(retry={"max_attempts": 0}), "routes[0].retry.max_attempts", None),
        (lambda b: b["routes"][1].update(host="elsewhere.test"), "routes[1].host", "host_not_claimed"),
        (lambda b: b["routes"][0].update(script=None), "routes[0].script", None),
        (lambda b: b["triggers"][0].update(kind="smoke"), "triggers[0].kind", None),
        (lambda b: b["triggers"].append({"kind": "kv", "script": "api", "key_glob": ""}), "triggers[4].key_glob", None),
        (lambda b: b["domains"].append("bad host!"), "domains[1]", None),
        (lambda b: b["app"].update(name=7), "app.name", None),
        (lambda b: b.update(scripts={}), "scripts", None),
        (lambda b: b.update(extras=[]), "extras", None),
    ]
    for change, field, code in cases:
        bundle = copy.deepcopy(base)
        change(bundle)
        response = apply(site, bundle)
        assert response.status_code == 422, (field, response.text)
        error = response.json()["error"]
        assert error["field"] == field, (field, error)
        if code:
            assert error["code"] == code, (field, error)
    assert export(site) == base


def test_a_bundle_of_another_format_is_refused(site):
    before = export(site)
    for fmt in (0, 2, "1", None):
        bundle = {**before, "format": fmt}
        response = apply(site, bundle)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "unsupported_format" and error["field"] == "format"
        assert "format 1" in error["message"]
    missing = {k: v for k, v in before.items() if k != "format"}
    assert apply(site, missing).json()["error"]["code"] == "unsupported_format"
    assert apply(site, [1]).status_code == 400
    assert site.api.put(bundle_url(site) + "?dry_run=maybe", json=before).json()["error"]["field"] == "dry_run"


def test_each_change_needs_its_own_capability(site, make_user):
    furnished(site)
    _, developer = make_user("developer")
    _, viewer = make_user("viewer")
    before = export(site, viewer)  # reading needs only read
    assert plan_of(apply(site, before, viewer)) == plan_of(apply(site, before))
    script_change = copy.deepcopy(before)
    script_change["scripts"][0]["description"] = "viewers cannot"
    denied = apply(site, script_change, viewer)
    assert denied.status_code == 403 and denied.json()["error"]["capability"] == "scripts.manage"
    assert apply(site, script_change, viewer, dry_run=True).status_code == 403
    assert plan_of(apply(site, script_change, developer))[("script", "api")] == "update"
    for change, capability in [
        (lambda b: b["domains"].append(f"d-{uuid.uuid4().hex[:8]}.test"), "domains.manage"),
        (lambda b: b["app"].update(description="developers cannot"), "apps.manage"),
    ]:
        bundle = copy.deepcopy(script_change)
        bundle["routes"][0]["enabled"] = False
        change(bundle)
        denied = apply(site, bundle, developer)
        assert denied.status_code == 403 and denied.json()["error"]["capability"] == capability
    assert export(site) == {**before, "scripts": [dict(before["scripts"][0], description="viewers cannot"),
                                                  before["scripts"][1]]}
    route_off = copy.deepcopy(script_change)
    route_off["routes"][0]["enabled"] = False
    route_off["triggers"][0]["enabled"] = False
    assert set(plan_of(apply(site, route_off, developer)).values()) == {"keep", "update"}


def test_app_fields_are_applied_with_apps_manage(site, make_user):
    before = export(site)
    bundle = copy.deepcopy(before)
    bundle["app"].update(name="Shop", description="Sells tea.", egress_hosts=["API.Example.com", "*.cdn.test"],
                         max_concurrency=2, slug="ignored-slug")
    _, developer = make_user("developer")
    denied = apply(site, bundle, developer)
    assert denied.status_code == 403 and denied.json()["error"]["capability"] == "apps.manage"
    assert plan_of(apply(site, bundle))[("app", site.slug)] == "update"
    assert export(site)["app"] == {"slug": site.slug, "name": "Shop", "description": "Sells tea.",
                                   "egress_hosts": ["api.example.com", "*.cdn.test"], "max_concurrency": 2}
    assert plan_of(apply(site, bundle))[("app", site.slug)] == "keep"  # hosts compared as stored
    bundle["app"]["max_concurrency"] = 0
    response = apply(site, bundle)
    assert response.status_code == 422 and response.json()["error"]["field"] == "app.max_concurrency"
    bundle["app"].update(max_concurrency=2, egress_hosts=["not a host"])
    response = apply(site, bundle)
    assert response.status_code == 422 and response.json()["error"]["field"] == "app.egress_hosts[0]"
    # Left out of the bundle's app: left as it is; null: back to no limit.
    assert plan_of(apply(site, {**before, "app": {}}))[("app", site.slug)] == "keep"
    apply(site, {**before, "app": {"max_concurrency": None, "egress_hosts": None}})
    assert export(site)["app"]["max_concurrency"] is None and export(site)["app"]["egress_hosts"] is None


def test_bundles_of_another_app_are_not_found(site, other_site):
    assert site.api.get(f"/api/v1/admin/apps/{uuid.uuid4().hex[:12]}/bundle").status_code == 404
    assert site.api.put(f"/api/v1/admin/apps/no-such-app-{uuid.uuid4().hex[:6]}/bundle",
                        json={"format": 1}).status_code == 404
    assert site.api.get(bundle_url(site), headers={"Authorization": "Bearer nope"}).status_code == 401


def test_schedule_triggers_are_matched_by_their_cron(site):
    furnished(site)
    bundle = export(site)
    schedule = next(t for t in bundle["triggers"] if t["kind"] == "schedule")
    schedule["timezone"] = "UTC"
    plan = plan_of(apply(site, bundle))
    assert plan[("trigger", "schedule 0 3 * * * → worker")] == "update"
    schedule["cron"] = "@hourly"
    schedule.pop("timezone")
    plan = plan_of(apply(site, bundle, prune=True))
    assert plan[("trigger", "schedule @hourly → worker")] == "create"
    assert plan[("trigger", "schedule 0 3 * * * → worker")] == "delete"
    after = next(t for t in export(site)["triggers"] if t["kind"] == "schedule")
    assert (after["cron"], after["timezone"]) == ("@hourly", "UTC")
    listed = site.api.get(f"/api/v1/admin/apps/{site.app['id']}/triggers").json()["triggers"]
    assert [t["next_run_at"] for t in listed if t["kind"] == "schedule"][0] is not None
    schedule["timezone"] = "Mars/Olympus"
    response = apply(site, bundle)
    index = bundle["triggers"].index(schedule)
    assert response.status_code == 422 and response.json()["error"]["field"] == f"triggers[{index}].timezone"
