import pytest

from picloud.migrate import SchemaTooNew, applied_number, migrate, newest_known


def test_migrations_are_applied_and_idempotent(database, settings):
    assert applied_number() == newest_known() >= 1
    assert migrate(settings) == []


def test_a_database_from_a_newer_version_is_refused(database, settings):
    database.execute_sql(
        "INSERT INTO schema_migration (name, applied) VALUES ('9999_from_the_future', CURRENT_TIMESTAMP)"
    )
    try:
        with pytest.raises(SchemaTooNew, match="9999_from_the_future"):
            migrate(settings)
    finally:
        database.execute_sql("DELETE FROM schema_migration WHERE name = '9999_from_the_future'")


def test_version_reports_the_newest_applied_migration(anonymous):
    response = anonymous.get("/version")
    assert response.status_code == 200
    body = response.json()
    assert body["schema"] == newest_known()
    assert body["lua"] == "Lua 5.4"
    assert body["product"].count(".") == 2
