"""Schedules, run figures for metrics and the overview, live server processes.

- ``triggers`` gains a schedule's ``cron``, ``timezone`` and ``next_run_at``;
  ``schedule_ticks`` makes a tick's identity (trigger, scheduled time) unique, so
  processes racing for one tick cannot both queue it.
- ``run_counts`` and ``run_durations`` hold totals of finished runs per app, source and
  outcome, written with the execution log and never purged with it: counters that only
  grow. ``run_hours`` holds runs, errors and overload refusals per app and hour.
- ``server_processes`` holds each live server process's executor figures, refreshed
  every few seconds, so one process can report them for all.
"""
import datetime

from peewee import (
    AutoField,
    BigIntegerField,
    CharField,
    DateTimeField,
    DoubleField,
    ForeignKeyField,
    IntegerField,
    Model,
    NodeList,
    SQL,
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

    # The table of 0004 that ticks reference; not created here.
    class Trigger(Base):
        id = IdField()

        class Meta:
            table_name = "triggers"

    class ScheduleTick(Base):
        trigger = ForeignKeyField(Trigger, on_delete="CASCADE", index=False)
        scheduled_at = DateTimeField()
        event_id = CharField(max_length=36)
        created_at = DateTimeField(default=datetime.datetime.utcnow, index=True)

        class Meta:
            table_name = "schedule_ticks"
            indexes = ((("trigger", "scheduled_at"), True),)

    class RunCount(Base):
        app_id = IntegerField()
        source = CharField(max_length=16)
        outcome = CharField(max_length=24)
        runs = BigIntegerField(default=0)
        duration_seconds = DoubleField(default=0)

        class Meta:
            table_name = "run_counts"
            indexes = ((("app_id", "source", "outcome"), True),)

    class RunDuration(Base):
        app_id = IntegerField()
        source = CharField(max_length=16)
        le = CharField(max_length=16)
        runs = BigIntegerField(default=0)

        class Meta:
            table_name = "run_durations"
            indexes = ((("app_id", "source", "le"), True),)

    class RunHour(Base):
        app_id = IntegerField()
        hour = DateTimeField()
        runs = BigIntegerField(default=0)
        errors = BigIntegerField(default=0)
        overloaded = BigIntegerField(default=0)

        class Meta:
            table_name = "run_hours"
            indexes = ((("app_id", "hour"), True), (("hour",), False))

    class ServerProcess(Base):
        id = CharField(max_length=64, primary_key=True)
        hostname = CharField(max_length=255)
        pid = IntegerField()
        slots = IntegerField()
        busy = IntegerField()
        waiting = IntegerField()
        started_at = DateTimeField()
        seen_at = DateTimeField(index=True)

        class Meta:
            table_name = "server_processes"

    db.create_tables([ScheduleTick, RunCount, RunDuration, RunHour, ServerProcess])
    migrator.migrate(
        migrator.add_column("triggers", "cron", CharField(max_length=200, null=True)),
        migrator.add_column("triggers", "timezone", CharField(max_length=64, null=True)),
        migrator.add_column("triggers", "next_run_at", DateTimeField(null=True)),
        migrator.add_index("triggers", ("kind", "enabled", "next_run_at"), False),
        # The Triggers tab shows each trigger's last run.
        migrator.add_index("executions", ("trigger_id", "queued_at"), False),
    )
