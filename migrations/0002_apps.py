"""Apps, slug history, domain claims, scripts and their versions, routes, executions."""
import datetime

from peewee import (
    SQL,
    AutoField,
    BigIntegerField,
    BooleanField,
    CharField,
    DateTimeField,
    FloatField,
    ForeignKeyField,
    IntegerField,
    Model,
    NodeList,
    TextField,
)


class IdField(AutoField):
    def ddl(self, ctx):
        node = super().ddl(ctx)
        if ctx.state.field_types.get("AUTO") == "INTEGER":  # SQLite: never reuse ids
            return NodeList((node, SQL("AUTOINCREMENT")))
        return node


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class App(Base):
        id = IdField()
        slug = CharField(max_length=63, unique=True)
        name = CharField(max_length=200)
        description = TextField(default="")
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

    class AppSlugHistory(Base):
        app = ForeignKeyField(App, on_delete="CASCADE")
        slug = CharField(max_length=63, unique=True)
        created_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            table_name = "app_slug_history"

    class Domain(Base):
        app = ForeignKeyField(App, on_delete="CASCADE")
        pattern = CharField(max_length=260, unique=True)
        kind = CharField(max_length=16)
        created_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            table_name = "app_domains"

    class Script(Base):
        id = IdField()
        app = ForeignKeyField(App, on_delete="CASCADE")
        name = CharField(max_length=64)
        description = TextField(default="")
        source = TextField()
        timeout_seconds = IntegerField(default=5)
        sandbox = TextField(null=True)
        version = IntegerField(default=1)
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            indexes = ((("app", "name"), True),)

    class ScriptVersion(Base):
        app = ForeignKeyField(App, on_delete="CASCADE")
        script = ForeignKeyField(Script, on_delete="CASCADE")
        version = IntegerField()
        source = TextField()
        created_by = CharField(max_length=64, null=True)
        created_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            table_name = "script_versions"
            indexes = ((("script", "version"), True),)

    class Route(Base):
        id = IdField()
        app = ForeignKeyField(App, on_delete="CASCADE")
        method = CharField(max_length=8)
        path = CharField(max_length=1024)
        host = CharField(max_length=260, null=True)
        script = ForeignKeyField(Script, on_delete="RESTRICT")
        dispatch_mode = CharField(max_length=8, default="sync")
        enabled = BooleanField(default=True)
        retry = TextField(null=True)
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

    class Execution(Base):
        id = CharField(max_length=36, primary_key=True)
        app_id = IntegerField()
        script_id = IntegerField(null=True)
        source = CharField(max_length=16)
        status = CharField(max_length=24)
        http_status = IntegerField(null=True)
        queued_at = DateTimeField()
        started_at = DateTimeField(null=True)
        finished_at = DateTimeField(null=True)
        duration_ms = FloatField(null=True)
        attempt = IntegerField(default=1)
        trigger_id = IntegerField(null=True)
        trigger_depth = IntegerField(default=0)
        event_id = CharField(max_length=36, null=True)
        parent_execution_id = CharField(max_length=36, null=True)
        error = TextField(null=True)
        logs = TextField(null=True)
        usage = TextField(null=True)

        class Meta:
            table_name = "executions"
            indexes = (
                (("app_id", "queued_at", "id"), False),
                (("app_id", "script_id", "queued_at"), False),
                (("app_id", "status", "queued_at"), False),
                (("app_id", "source", "queued_at"), False),
                (("queued_at",), False),
            )

    class ConfigVersion(Base):
        version = BigIntegerField(default=0)

        class Meta:
            table_name = "config_version"

    db.create_tables([App, AppSlugHistory, Domain, Script, ScriptVersion, Route, Execution, ConfigVersion])
    ConfigVersion.insert(id=1, version=0).execute()
