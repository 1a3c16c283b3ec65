"""The process-wide configuration cache and its invalidation, and the lookups it serves.

Domains, apps, routes, scripts and triggers are loaded from the database on a miss and
then served from one ``ConfigCache`` until a configuration change drops them all.

A change (``config_change``) bumps the ``config_version`` counter in its own transaction
and, on PostgreSQL, sends ``NOTIFY picloud_config``. The changing process drops its
cache as soon as the transaction commits, so it never serves a stale route after its
own API call returned. Other processes hear the NOTIFY on a dedicated connection
(``ConfigListener``) or, on SQLite or while that connection is down, compare the
counter at most every half second.
"""
import contextlib
import logging
import threading
import time
from dataclasses import dataclass

import psycopg

from picloud.db import db, is_postgres, write_transaction
from picloud.models import App, Script
from picloud.models.apps import ConfigVersion
from picloud.services import services

log = logging.getLogger(__name__)

CHANNEL = "picloud_config"
# How stale another process's change may be, at most, on the polling path.
CHECK_INTERVAL = 0.5


class ConfigCache:
    """Loaded lookups keyed by name, dropped together on any configuration change."""

    def __init__(self):
        self._generation = 0
        self._entries = {}
        self._seen_version = None
        self._checked_at = 0.0
        # True while a LISTEN connection delivers every change (PostgreSQL only).
        self.listening = False

    def get(self, key, load, *, exact=False):
        """Return the cached value for key, loading it on a miss.

        ``exact`` lookups (what the data plane decides with: an app's triggers, an
        app's id) compare the change counter every time when no LISTEN connection
        delivers changes, instead of at most every CHECK_INTERVAL: on SQLite that
        read is local and cheap, and a trigger created by another process a moment
        ago must see the next write.
        """
        self.check_remote(force=exact)
        try:
            return self._entries[key]
        except KeyError:
            pass
        generation = self._generation
        value = load()
        # A change committed while loading may have been read half: keep it only if
        # no invalidation happened meanwhile.
        if generation == self._generation:
            self._entries[key] = value
        return value

    def invalidate(self):
        self._generation += 1
        self._entries = {}

    def check_remote(self, force=False):
        """Notice another process's change by the counter, at most every CHECK_INTERVAL."""
        if self.listening:
            return
        now = time.monotonic()
        if not force and now - self._checked_at < CHECK_INTERVAL:
            return
        self._checked_at = now
        try:
            version = ConfigVersion.current()
        except Exception:
            self._checked_at = 0.0  # check again on the next lookup
            raise
        if version != self._seen_version:
            if self._seen_version is not None:
                self.invalidate()
            self._seen_version = version


cache = ConfigCache()


@contextlib.contextmanager
def config_change():
    """Run a block as one transaction that every process's cache will notice."""
    with write_transaction():
        if is_postgres():
            # Serialise configuration changes between processes: every check-then-write
            # in the manager (slugs, conflicts, claims) then sees committed state. On
            # SQLite the write transaction holds the file's write lock, to the same effect.
            db.execute_sql("SELECT pg_advisory_xact_lock(7419231)")
        yield
        ConfigVersion.bump()
        if db.notifies:
            db.execute_sql("SELECT pg_notify(%s, '')", (CHANNEL,))
        db.after_commit(cache.invalidate)
    cache.invalidate()


class ConfigListener:
    """A service holding a LISTEN connection on PostgreSQL; drops the cache on NOTIFY."""

    RETRY_SECONDS = 1.0

    def __init__(self, url):
        self.url = url
        self._stopping = threading.Event()
        self._thread = None

    def start(self):
        self._thread = threading.Thread(target=self._run, name="config-listener", daemon=True)
        self._thread.start()

    def stop(self, timeout=None):
        self._stopping.set()
        if self._thread is not None:
            self._thread.join(min(timeout or 2.0, 2.0))

    def _run(self):
        while not self._stopping.is_set():
            try:
                self.listen_once()
            except Exception as exc:
                log.warning("config listener lost its connection: %s", exc)
            finally:
                cache.listening = False
            self._stopping.wait(self.RETRY_SECONDS)

    def listen_once(self):
        """Hold one LISTEN connection until it fails or the service stops."""
        with psycopg.connect(self.url, autocommit=True, connect_timeout=5) as conn:
            conn.execute(f"LISTEN {CHANNEL}")
            # Whatever changed while nobody listened is covered by starting afresh.
            cache.invalidate()
            cache.listening = True
            while not self._stopping.is_set():
                for _ in conn.notifies(timeout=1.0):
                    cache.invalidate()
                # A dead server shows up here rather than as a silent, endless wait.
                conn.execute("SELECT 1")


def init_app(app):
    """Register the LISTEN connection that drops the cache on another process's change."""
    if db.notifies:
        services(app).add(ConfigListener(db.obj.url))


# Lookups served from the cache ---------------------------------------------------------


@dataclass(frozen=True)
class AppInfo:
    id: int
    slug: str
    egress_hosts: tuple | None = None  # host names the app's scripts may call; None: any
    max_concurrency: int | None = None  # most runs at once in one server process; None: its share only


@dataclass(frozen=True)
class ScriptSnapshot:
    """What running a script needs, detached from the database row."""

    id: int
    app_id: int
    name: str
    version: int
    source: str
    timeout_seconds: int
    sandbox: dict

    @classmethod
    def of(cls, script):
        """Return a snapshot of a Script row (or the snapshot itself)."""
        if isinstance(script, cls):
            return script
        return cls(
            id=script.id,
            app_id=script.app_id,
            name=script.name,
            version=script.version,
            source=script.source,
            timeout_seconds=script.timeout_seconds,
            sandbox=dict(script.sandbox or {}),
        )


def app_info(app_id):
    """Return AppInfo for an app id, or None."""
    return cache.get(("app", app_id), lambda: _load_app(app_id))


def script(script_id):
    """Return a ScriptSnapshot, or None if the script is gone."""
    return cache.get(("script", script_id), lambda: _load_script(script_id))


def script_named(app_id, name):
    """Return a ScriptSnapshot of the app's script ``name`` (a module), or None."""
    return cache.get(("script_named", app_id, name), lambda: _load_script_named(app_id, name))


def _load_app(app_id):
    row = (
        App.select(App.id, App.slug, App.egress_hosts, App.max_concurrency)
        .where(App.id == app_id)
        .tuples()
        .first()
    )
    if row is None:
        return None
    app_id, slug, egress_hosts, max_concurrency = row
    return AppInfo(app_id, slug, tuple(egress_hosts) if egress_hosts is not None else None, max_concurrency)


def _load_script_named(app_id, name):
    row = Script.get_or_none((Script.app == app_id) & (Script.name == name))
    return ScriptSnapshot.of(row) if row else None


def _load_script(script_id):
    row = Script.get_or_none(Script.id == script_id)
    return ScriptSnapshot.of(row) if row else None
