"""Triggers, the outbox of events waiting to run, and dead letters."""
import datetime

from peewee import (
    SQL,
    AutoField,
    BooleanField,
    CharField,
    DateTimeField,
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

    # The tables of 0002 that these reference; not created here.
    class App(Base):
        id = IdField()

    class Script(Base):
        id = IdField()

    class Trigger(Base):
        id = IdField()
        app = ForeignKeyField(App, on_delete="CASCADE")
        kind = CharField(max_length=16)
        script = ForeignKeyField(Script, on_delete="CASCADE")
        glob = CharField(max_length=1024, null=True)
        ops = TextField(null=True)
        retry = TextField(null=True)
        enabled = BooleanField(default=True)
        registered_by = IntegerField(null=True)
        registered_by_name = CharField(max_length=64, null=True)
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            table_name = "triggers"
            indexes = ((("app", "kind", "enabled"), False),)

    class OutboxEvent(Base):
        id = CharField(max_length=36, primary_key=True)
        app = ForeignKeyField(App, on_delete="CASCADE")
        kind = CharField(max_length=16)
        trigger_id = IntegerField(null=True)
        script = ForeignKeyField(Script, on_delete="CASCADE")
        payload = TextField()
        principal = TextField(null=True)
        retry = TextField(null=True)
        trigger_depth = IntegerField(default=0)
        parent_execution_id = CharField(max_length=36, null=True)
        execution_id = CharField(max_length=36)
        attempt = IntegerField(default=1)
        queued_at = DateTimeField(default=datetime.datetime.utcnow)
        available_at = DateTimeField()
        claimed_by = CharField(max_length=64, null=True)
        lease_until = DateTimeField(null=True)
        created_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            table_name = "outbox_events"
            indexes = ((("available_at",), False),)

    class DeadLetter(Base):
        id = IdField()
        app = ForeignKeyField(App, on_delete="CASCADE")
        source = CharField(max_length=16)
        trigger_id = IntegerField(null=True)
        script_id = IntegerField()
        event = TextField()
        event_id = CharField(max_length=36)
        attempts = IntegerField()
        last_error = TextField(null=True)
        principal = TextField(null=True)
        retry = TextField(null=True)
        trigger_depth = IntegerField(default=1)
        parent_execution_id = CharField(max_length=36, null=True)
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        resolution = CharField(max_length=16, null=True)
        resolved_at = DateTimeField(null=True)

        class Meta:
            table_name = "dead_letters"
            indexes = ((("app", "resolution"), False), (("resolved_at",), False))

    db.create_tables([Trigger, OutboxEvent, DeadLetter])
