"""Apps and what they own: slug history, domain claims, scripts, routes, executions.

Every table an app owns carries ``app_id``; ``picloud.manager.apps.delete_app`` removes
them table by table. Ids of apps, scripts and routes are never reused (AUTOINCREMENT on
SQLite), so rows left behind by a deleted object can never surface under a new one.
"""
import json

import peewee

from picloud.models.base import BaseModel, isoformat, utcnow


class IdField(peewee.AutoField):
    """An integer primary key that is never reused, on SQLite as on PostgreSQL."""

    def ddl(self, ctx):
        node = super().ddl(ctx)
        # SQLite reuses the largest rowid after a delete unless told AUTOINCREMENT;
        # PostgreSQL sequences never go back, so only SQLite needs the keyword.
        if ctx.state.field_types.get("AUTO") == "INTEGER":
            return peewee.NodeList((node, peewee.SQL("AUTOINCREMENT")))
        return node


class JSONField(peewee.TextField):
    """A JSON value stored as text (portable between SQLite and PostgreSQL)."""

    def db_value(self, value):
        if value is None:
            return None
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)

    def python_value(self, value):
        if value is None:
            return None
        return json.loads(value)


class App(BaseModel):
    id = IdField()
    slug = peewee.CharField(max_length=63, unique=True)
    name = peewee.CharField(max_length=200)
    description = peewee.TextField(default="")
    # Host names (``*.`` wildcards allowed) scripts may call; None = any public host.
    egress_hosts = JSONField(null=True)
    # Most executions it may have at once in one server process (None: its share only).
    max_concurrency = peewee.IntegerField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    @classmethod
    def by_slug(cls, slug):
        return cls.get_or_none(cls.slug == slug)

    def to_dict(self, domains=None):
        if domains is None:
            domains = Domain.for_app(self)
        return {
            "id": self.id,
            "slug": self.slug,
            "name": self.name,
            "description": self.description,
            "egress_hosts": self.egress_hosts,
            "max_concurrency": self.max_concurrency,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
            "domains": [d.to_dict() for d in domains],
        }


class AppSlugHistory(BaseModel):
    """A former slug of an app; it redirects to the app for as long as the row lives."""

    app = peewee.ForeignKeyField(App, backref="former_slugs", on_delete="CASCADE")
    slug = peewee.CharField(max_length=63, unique=True)
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "app_slug_history"


class Domain(BaseModel):
    """A claim of an exact host or a ``*.`` wildcard by one app."""

    app = peewee.ForeignKeyField(App, backref="domains", on_delete="CASCADE")
    pattern = peewee.CharField(max_length=260, unique=True)
    kind = peewee.CharField(max_length=16)  # "exact" or "wildcard"
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "app_domains"

    @classmethod
    def for_app(cls, app):
        return cls.select().where(cls.app == app).order_by(cls.id)

    def to_dict(self):
        return {
            "id": self.id,
            "app_id": self.app_id,
            "pattern": self.pattern,
            "kind": self.kind,
            "created_at": isoformat(self.created_at),
        }


class Script(BaseModel):
    id = IdField()
    app = peewee.ForeignKeyField(App, backref="scripts", on_delete="CASCADE")
    name = peewee.CharField(max_length=64)
    description = peewee.TextField(default="")
    source = peewee.TextField()
    timeout_seconds = peewee.IntegerField(default=5)
    sandbox = JSONField(default=dict)
    version = peewee.IntegerField(default=1)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        indexes = ((("app", "name"), True),)

    @classmethod
    def for_app(cls, app):
        return cls.select().where(cls.app == app)

    @classmethod
    def listing(cls, app):
        """Select the scripts of an app without their (possibly large) source."""
        return cls.select(*[f for f in cls._meta.sorted_fields if f is not cls.source]).where(
            cls.app == app
        )

    def to_dict(self, with_source=True):
        body = {
            "id": self.id,
            "app_id": self.app_id,
            "name": self.name,
            "description": self.description,
            "timeout_seconds": self.timeout_seconds,
            "sandbox": self.sandbox or {},
            "version": self.version,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }
        if with_source:
            body["source"] = self.source
        return body


class ScriptVersion(BaseModel):
    """The source of one version of a script, kept for history and restore."""

    app = peewee.ForeignKeyField(App, on_delete="CASCADE")
    script = peewee.ForeignKeyField(Script, backref="versions", on_delete="CASCADE")
    version = peewee.IntegerField()
    source = peewee.TextField()
    # The username, kept as text so history outlives a deleted user; None = PiCloud itself.
    created_by = peewee.CharField(max_length=64, null=True)
    created_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "script_versions"
        indexes = ((("script", "version"), True),)

    @classmethod
    def for_script(cls, script):
        return (
            cls.select(cls.id, cls.version, cls.created_by, cls.created_at)
            .where(cls.script == script)
            .order_by(cls.version.desc())
        )

    def to_dict(self, with_source=False):
        body = {
            "version": self.version,
            "created_at": isoformat(self.created_at),
            "created_by": self.created_by,
        }
        if with_source:
            body["source"] = self.source
        return body


class Route(BaseModel):
    id = IdField()
    app = peewee.ForeignKeyField(App, backref="routes", on_delete="CASCADE")
    method = peewee.CharField(max_length=8)
    path = peewee.CharField(max_length=1024)
    host = peewee.CharField(max_length=260, null=True)
    script = peewee.ForeignKeyField(Script, backref="routes", on_delete="RESTRICT")
    dispatch_mode = peewee.CharField(max_length=8, default="sync")
    enabled = peewee.BooleanField(default=True)
    retry = JSONField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    @classmethod
    def for_app(cls, app):
        return cls.select().where(cls.app == app)

    @classmethod
    def using_script(cls, script):
        return cls.select(cls.id).where(cls.script == script).order_by(cls.id)

    def to_dict(self):
        return {
            "id": self.id,
            "app_id": self.app_id,
            "method": self.method,
            "path": self.path,
            "host": self.host,
            "script_id": self.script_id,
            "dispatch_mode": self.dispatch_mode,
            "enabled": self.enabled,
            "retry": self.retry,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


class Execution(BaseModel):
    """One run of one script. Written in batches by ``picloud.executions``."""

    id = peewee.CharField(max_length=36, primary_key=True)
    # Plain integers, not foreign keys: a run's log outlives its script, and the
    # batched writer must not fail because a script was deleted mid-flight.
    app_id = peewee.IntegerField()
    script_id = peewee.IntegerField(null=True)
    source = peewee.CharField(max_length=16)
    status = peewee.CharField(max_length=24)
    http_status = peewee.IntegerField(null=True)
    queued_at = peewee.DateTimeField()
    started_at = peewee.DateTimeField(null=True)
    finished_at = peewee.DateTimeField(null=True)
    duration_ms = peewee.FloatField(null=True)
    attempt = peewee.IntegerField(default=1)
    trigger_id = peewee.IntegerField(null=True)
    trigger_depth = peewee.IntegerField(default=0)
    event_id = peewee.CharField(max_length=36, null=True)
    parent_execution_id = peewee.CharField(max_length=36, null=True)
    error = JSONField(null=True)
    logs = JSONField(null=True)
    usage = JSONField(null=True)
    # [{method, url (no query string), status, error, duration_ms}], docs/api.md §11.
    http_calls = JSONField(null=True)
    # What the run was given ({"request": ...} or {"event": ...}) and, for HTTP runs, what
    # it answered ({"status", "headers", "body"}): bounded previews, see invocation.py.
    input = JSONField(null=True)
    response = JSONField(null=True)

    class Meta:
        table_name = "executions"
        indexes = (
            (("app_id", "queued_at", "id"), False),
            (("app_id", "script_id", "queued_at"), False),
            (("app_id", "status", "queued_at"), False),
            (("app_id", "source", "queued_at"), False),
            (("queued_at",), False),
        )

    FIELDS = (
        "id", "app_id", "script_id", "source", "status", "http_status", "queued_at",
        "started_at", "finished_at", "duration_ms", "attempt", "trigger_id",
        "trigger_depth", "event_id", "parent_execution_id", "error", "logs", "usage",
        "http_calls", "input", "response",
    )
    # What started a run (docs/api.md §10).
    SOURCES = ("http", "execute", "kv", "docs", "dead_letter", "schedule")
    # Statuses that end a run; "queued", "running" and "skipped" are not failures.
    FAILED = ("script_error", "bad_script_response", "timeout", "limit_exceeded", "internal_error")

    @classmethod
    def recent(cls, app, *, script_id=None, status=None, source=None):
        """Select an app's executions, newest first, optionally filtered.

        ``status`` is one status, or ``"failed"`` for every status of a failed run.
        """
        query = cls.select().where(cls.app_id == _id_of(app))
        if script_id is not None:
            query = query.where(cls.script_id == script_id)
        if status == "failed":
            query = query.where(cls.status.in_(cls.FAILED))
        elif status is not None:
            query = query.where(cls.status == status)
        if source is not None:
            query = query.where(cls.source == source)
        return query.order_by(cls.queued_at.desc(), cls.id.desc())

    @classmethod
    def last_of_triggers(cls, trigger_ids):
        """Return {trigger id: its latest finished execution} for the triggers that ran."""
        last = {}
        for trigger_id in trigger_ids:
            row = (
                cls.select(cls.id, cls.status, cls.queued_at, cls.finished_at, cls.trigger_id)
                .where((cls.trigger_id == trigger_id) & cls.status.not_in(("queued", "running")))
                .order_by(cls.queued_at.desc())
                .first()
            )
            if row is not None:
                last[trigger_id] = row
        return last

    @classmethod
    def older_than(cls, moment):
        return cls.queued_at < moment

    def to_dict(self, *, exchange=True):
        """Return the API shape; listings leave out the run's ``input`` and ``response``."""
        record = {
            "id": self.id,
            "app_id": self.app_id,
            "script_id": self.script_id,
            "source": self.source,
            "status": self.status,
            "http_status": self.http_status,
            "queued_at": isoformat(self.queued_at),
            "started_at": isoformat(self.started_at),
            "finished_at": isoformat(self.finished_at),
            "duration_ms": self.duration_ms,
            "attempt": self.attempt,
            "trigger_id": self.trigger_id,
            "trigger_depth": self.trigger_depth,
            "event_id": self.event_id,
            "parent_execution_id": self.parent_execution_id,
            "error": self.error,
            "logs": self.logs or [],
            "usage": self.usage,
            "http_calls": self.http_calls or [],
        }
        if exchange:
            record.update(input=self.input, response=self.response)
        return record


class ConfigVersion(BaseModel):
    """A single counter bumped with every configuration change (domains, routes, scripts,
    triggers, apps).

    Other processes sharing a SQLite database compare it to notice changes; on
    PostgreSQL they are told at once by ``NOTIFY`` and the counter is the fallback.
    """

    version = peewee.BigIntegerField(default=0)

    class Meta:
        table_name = "config_version"

    @classmethod
    def bump(cls):
        cls.update(version=cls.version + 1).where(cls.id == 1).execute()

    @classmethod
    def current(cls):
        # Plain SQL: on SQLite every data mutation reads it (picloud/cache.py), and
        # building the query costs more than running it.
        row = cls._meta.database.execute_sql("SELECT version FROM config_version WHERE id = 1").fetchone()
        return row[0] if row else 0


def _id_of(app):
    return app if isinstance(app, int) else app.id
