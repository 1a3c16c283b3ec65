"""Run figures that outlive the execution log, and the live server processes.

``RunCount`` and ``RunDuration`` are totals since the app was created: the execution
log's retention never lowers them, so ``/metrics`` counters only grow. ``RunHour`` is
what the Overview chart draws. All three are added to by the execution log writer in
the transaction that writes the runs, by upserts that add (never read-modify-write),
so every process and node sharing the database counts into the same rows.
``ServerProcess`` rows are refreshed by each running server process (``heartbeat``).
"""
import functools

import peewee

from picloud.models.base import BaseModel


def _add(model, rows, key, counters):
    """Insert rows, or add their counters to the rows already there."""
    if not rows:
        return
    # One order everywhere: two writers upserting the same rows never deadlock.
    rows = sorted(rows, key=lambda row: tuple(str(row[name]) for name in key))
    fields = [model._meta.fields[name] for name in (*key, *counters)]
    params = [field.db_value(row[field.name]) for row in rows for field in fields]
    # Written by hand: these run with every batch of the execution log, and building
    # them through the query builder cost more than the rest of the batch's Python.
    database = model._meta.database
    database.execute_sql(_upsert_sql(model._meta.table_name, database.param, key, counters, len(rows)), params)


@functools.lru_cache(maxsize=64)
def _upsert_sql(table, param, key, counters, count):
    """Return INSERT ... ON CONFLICT for ``count`` rows adding to ``counters``."""
    columns = ", ".join(f'"{name}"' for name in (*key, *counters))
    row = "(" + ", ".join([param] * (len(key) + len(counters))) + ")"
    target = ", ".join(f'"{name}"' for name in key)
    updates = ", ".join(f'"{c}" = "{table}"."{c}" + excluded."{c}"' for c in counters)
    return (
        f'INSERT INTO "{table}" ({columns}) VALUES {", ".join([row] * count)} '
        f"ON CONFLICT ({target}) DO UPDATE SET {updates}"
    )


class RunCount(BaseModel):
    """Runs of one app from one source with one outcome, and their summed duration."""

    app_id = peewee.IntegerField()
    source = peewee.CharField(max_length=16)
    # An execution status, or "overloaded" for a request refused before it ran.
    outcome = peewee.CharField(max_length=24)
    runs = peewee.BigIntegerField(default=0)
    duration_seconds = peewee.DoubleField(default=0)

    class Meta:
        table_name = "run_counts"
        indexes = ((("app_id", "source", "outcome"), True),)

    @classmethod
    def add(cls, rows):
        _add(cls, rows, ("app_id", "source", "outcome"), ("runs", "duration_seconds"))


class RunDuration(BaseModel):
    """How many runs of one app and source took at most ``le`` seconds (and more than the
    next smaller bound): one histogram bucket, not cumulative."""

    app_id = peewee.IntegerField()
    source = peewee.CharField(max_length=16)
    le = peewee.CharField(max_length=16)  # the bucket's upper bound as text, or "+Inf"
    runs = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "run_durations"
        indexes = ((("app_id", "source", "le"), True),)

    @classmethod
    def add(cls, rows):
        _add(cls, rows, ("app_id", "source", "le"), ("runs",))


class RunHour(BaseModel):
    """Finished runs, failed runs and overload refusals of one app in one UTC hour."""

    app_id = peewee.IntegerField()
    hour = peewee.DateTimeField()
    runs = peewee.BigIntegerField(default=0)
    errors = peewee.BigIntegerField(default=0)
    overloaded = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "run_hours"
        indexes = ((("app_id", "hour"), True), (("hour",), False))

    @classmethod
    def add(cls, rows):
        _add(cls, rows, ("app_id", "hour"), ("runs", "errors", "overloaded"))

    @classmethod
    def since(cls, app_id, first_hour):
        """Select an app's hours from ``first_hour`` on."""
        return cls.select().where((cls.app_id == app_id) & (cls.hour >= first_hour)).order_by(cls.hour)


class ServerProcess(BaseModel):
    """One running server process and its executor figures when it last reported."""

    id = peewee.CharField(max_length=64, primary_key=True)
    hostname = peewee.CharField(max_length=255)
    pid = peewee.IntegerField()
    slots = peewee.IntegerField()
    busy = peewee.IntegerField()
    waiting = peewee.IntegerField()
    started_at = peewee.DateTimeField()
    seen_at = peewee.DateTimeField(index=True)

    class Meta:
        table_name = "server_processes"

    @classmethod
    def live(cls, seen_since):
        return cls.select().where(cls.seen_at >= seen_since).order_by(cls.hostname, cls.pid)
