"""Secrets of apps, an app's outbound allow-list, and the outbound calls of each run.

Secret values are stored as Fernet tokens (``picloud.vault``): the database alone
never holds a plaintext.
"""
import datetime

from peewee import CharField, DateTimeField, ForeignKeyField, Model, TextField


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    # The table of 0002 that secrets reference; not created here.
    class App(Base):
        class Meta:
            table_name = "app"

    class Secret(Base):
        app = ForeignKeyField(App, on_delete="CASCADE", index=False)
        name = CharField(max_length=64)
        token = TextField()
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            table_name = "app_secrets"
            indexes = ((("app", "name"), True),)

    db.create_tables([Secret])
    migrator.migrate(
        migrator.add_column("app", "egress_hosts", TextField(null=True)),
        migrator.add_column("executions", "http_calls", TextField(null=True)),
    )
