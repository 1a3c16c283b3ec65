"""The System page: database size, rows per table, live server processes; admins only."""
import re

from picloud.models import App


def test_an_admin_sees_the_database_and_the_processes(dash, database):
    page = dash.get("/admin/system")
    assert page.status_code == 200
    assert re.search(r"(SQLite|PostgreSQL) database on disk", page.text)
    assert re.search(r'<span class="stat">[\d.]+ [kMG]?B</span>', page.text) or "Bytes</span>" in page.text
    # Every table is listed with its rows, counted exactly while small.
    apps = re.search(r'<td class="mono">app</td>\s*<td class="num">([\d,]+)</td>', page.text)
    assert apps and int(apps.group(1).replace(",", "")) == App.select().count()
    for table in ("executions", "outbox_events", "dead_letters", "run_counts", "app_slug_history"):
        assert f'<td class="mono">{table}</td>' in page.text
    # The suite's server reports itself.
    assert re.search(r'<td class="num">2</td><td class="num">\d+</td><td class="num">\d+</td>', page.text)
    assert 'href="/admin/system" aria-current="page">System</a>' in page.text


def test_only_admins_see_the_system_page(login_as):
    for role in ("developer", "viewer"):
        session = login_as(role)
        refused = session.get("/admin/system")
        assert refused.status_code == 403 and "apps.manage" in refused.text
        assert 'href="/admin/system"' not in session.get("/admin/apps").text
