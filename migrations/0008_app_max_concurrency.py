"""An app's own cap on its concurrent executions in one server process (null: none)."""
from peewee import IntegerField


def up(migrator, db):
    migrator.migrate(migrator.add_column("app", "max_concurrency", IntegerField(null=True)))
