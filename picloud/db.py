"""The database: connections, and one class per database for what differs between them.

``db`` is a peewee proxy that models bind to; ``init_db`` points it at the database
named by ``DATABASE_URL``. On PostgreSQL connections come from ``ConnectionPool``; a
peewee "connect" borrows one and "close" gives it back. psycopg 3 cooperates with gevent
once the standard library is patched, so a slow query never blocks other greenlets.

``PooledPostgresDatabase`` and ``LocalSqliteDatabase`` answer the differences every
writer shares, as huey's storage classes do: how a write transaction begins
(``write_transaction``), how a read locks rows (``lock_rows``) and whether a ``NOTIFY``
reaches other processes (``notifies``). Statements whose SQL differs sit beside the
queries they belong to, each choosing by ``is_postgres()``: claiming outbox events
(``outbox/claims.py``), the outbox insert (``outbox/__init__.py``), the KV write path
(``data/kv.py``), document filters and sorts (``data/docs.py``), the configuration
lock (``cache.py``), the token lookup (``auth``) and the execution log's batch upsert
(``executions.py``).

This module also tells which database failures a client may simply retry
(``failure_of``): the server is unreachable or busy, or the disk is full.
"""
import collections
import contextlib
import dataclasses
import fcntl
import logging
import os
import re
import select
import sqlite3
import threading
import time
from pathlib import Path

import peewee
from playhouse.postgres_ext import Psycopg3Database
import psycopg
from psycopg.pq import TransactionStatus

try:  # the blocking original: a zero-timeout poll needs no trip through gevent's hub
    from gevent.monkey import get_original

    _poll = get_original("select", "poll")
except ImportError:  # pragma: no cover - gevent is a dependency; plain Python still works
    _poll = select.poll

log = logging.getLogger(__name__)

db = peewee.DatabaseProxy()

# SQLite: WAL lets readers run beside the writer; the busy timeout makes a writer
# wait for another process's transaction instead of failing at once.
SQLITE_PRAGMAS = {
    "journal_mode": "wal",
    "busy_timeout": 5000,
    "foreign_keys": 1,
    "synchronous": "normal",
}

# What ``failure_of`` answers for a failure a client may retry.
UNAVAILABLE = "unavailable"  # the database cannot be reached or is busy right now
STORAGE_FULL = "storage_full"  # a write failed for lack of disk space

# While PostgreSQL is down, one borrower tries a new connection this often; the
# others fail at once instead of queueing behind a server that is not there.
PROBE_SECONDS = 0.25
# The shortest connect timeout libpq honours: bounds a probe against a silent host.
CONNECT_TIMEOUT_SECONDS = 2
# How long /healthz waits for a pooled connection when every one is busy.
HEALTH_WAIT_SECONDS = 0.5
# Free space on the SQLite file's filesystem that ends a "disk full" state.
FREE_SPACE_MARGIN_BYTES = 1 << 20
# How often the free space is looked at while the disk is known to be full.
SPACE_CHECK_SECONDS = 0.5

_SQLITE_FULL = 13
# SQLite result codes that mean "not right now" rather than a bug in a query: busy,
# locked, an I/O error, the file cannot be opened, is read-only or is not a database.
_SQLITE_UNAVAILABLE = frozenset({5, 6, 8, 10, 14, 26})


# Statements that write: the first word, or for a WITH statement any writing word.
_WRITE_STATEMENT = re.compile(r"\s*(INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER)\b", re.IGNORECASE)
_WRITE_IN_CTE = re.compile(r"\b(INSERT|UPDATE|DELETE|REPLACE)\b", re.IGNORECASE)


class DiskFull(sqlite3.OperationalError):
    """The disk holding the database is full: writes are refused until space is freed."""

    sqlite_errorcode = _SQLITE_FULL


class DatabaseDown(psycopg.OperationalError):
    """PostgreSQL was unreachable a moment ago; not trying again yet."""


class PoolExhausted(psycopg.OperationalError):
    """Every pooled connection stayed busy for as long as a request may wait."""


class ConnectionPool:
    """Connections to one PostgreSQL server, opened on demand and kept for reuse.

    The borrowing greenlet connects for itself, so nothing backs off in the background:
    psycopg-pool's reconnect delay doubled after each failed attempt, which left a
    server failing for as long again as PostgreSQL had been away, and its waiting
    clients sat out the whole pool timeout while no connection could be made. Here a
    failed connection attempt marks the server *down*: borrowers then fail at once,
    except one every PROBE_SECONDS that tries a fresh connection, and the first that
    succeeds ends the outage.
    """

    def __init__(self, url, *, max_size=10, wait_seconds=5.0):
        self.url = url
        self.wait_seconds = wait_seconds
        self._idle = collections.deque()  # most recently returned on the right
        self._slots = threading.BoundedSemaphore(max_size)
        self._lock = threading.Lock()
        self.down_since = None  # time.monotonic() of the attempt that found it down
        self._probe_at = 0.0

    def getconn(self, wait_seconds=None):
        """Borrow a working connection, or raise psycopg.OperationalError."""
        wait = self.wait_seconds if wait_seconds is None else wait_seconds
        if not self._slots.acquire(timeout=wait):
            raise PoolExhausted(f"no database connection became free within {wait:g} s")
        try:
            return self._idle_connection() or self._new_connection()
        except BaseException:
            self._slots.release()
            raise

    def putconn(self, conn):
        """Give a borrowed connection back; keep it only if it is clean and alive."""
        try:
            if _reusable(conn):
                self._idle.append(conn)
                return
            if conn.broken:
                # The server went away under this connection: the idle ones are
                # almost surely dead too, and each would fail a request to show it.
                self.discard_idle()
            conn.close()
        finally:
            self._slots.release()

    def discard_idle(self):
        """Close every idle connection."""
        while self._idle:
            try:
                self._idle.popleft().close()
            except IndexError:
                return

    def close(self):
        self.discard_idle()

    def _idle_connection(self):
        while True:
            try:
                conn = self._idle.pop()
            except IndexError:
                return None
            try:
                check_idle_connection(conn)
                return conn
            except psycopg.Error:
                conn.close()

    def _new_connection(self):
        with self._lock:
            if self.down_since is not None:
                now = time.monotonic()
                if now < self._probe_at:
                    raise DatabaseDown("the database is unreachable; not trying again yet")
                self._probe_at = now + PROBE_SECONDS  # the other borrowers keep failing fast
        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)
        except psycopg.OperationalError as exc:
            self._mark_down(exc)
            raise
        self._mark_up()
        return conn

    def _mark_down(self, exc):
        with self._lock:
            self._probe_at = time.monotonic() + PROBE_SECONDS
            if self.down_since is None:
                self.down_since = time.monotonic()
                log.warning("database unreachable: %s", exc)
        self.discard_idle()

    def _mark_up(self):
        with self._lock:
            if self.down_since is None:
                return
            outage = time.monotonic() - self.down_since
            self.down_since = None
        log.warning("database reachable again after %.1f s", outage)


def _reusable(conn):
    """Tell whether a returned connection may serve the next borrower."""
    if conn.closed or conn.broken:
        return False
    status = conn.info.transaction_status
    if status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        try:
            conn.rollback()
        except psycopg.Error:
            return False
        status = conn.info.transaction_status
    return status == TransactionStatus.IDLE


def check_idle_connection(conn):
    """Raise if a connection leaving the pool is dead; costs no round trip when it is well.

    An idle connection has nothing to read: the server only talks when asked. A socket
    that is readable therefore holds the server's goodbye (a restart, a terminated
    backend) or a message we do not expect, and only then is a real query spent on
    finding out.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    poller = _poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
    if poller.poll(0):
        conn.execute("")


class PooledPostgresDatabase(Psycopg3Database):
    """PostgreSQL through a ConnectionPool."""

    label = "PostgreSQL"
    # NOTIFY reaches every LISTEN connection, other processes' included, at commit.
    notifies = True

    def __init__(self, url, *, max_size=10, **kwargs):
        super().__init__(url, **kwargs)
        # peewee holds one process-wide lock around connect and close. A greenlet
        # waiting for a pooled connection while holding it would stop every other
        # greenlet from giving its connection back: a deadlock. The pool is
        # thread-safe and peewee's connection state is per greenlet, so no lock.
        self._lock = peewee._NoopLock()
        self.url = url
        # wait_seconds: how long a request waits for a connection while all are busy.
        self.pool = ConnectionPool(url, max_size=max_size, wait_seconds=5.0)

    def _connect(self):
        return self.pool.getconn()

    def _close(self, conn):
        self.pool.putconn(conn)

    def close_pool(self):
        self.pool.close()

    def write_transaction(self):
        """Open a transaction that will write; its writers lock the rows they change."""
        return self.atomic()

    def lock_rows(self, query):
        """Return ``query`` locking the rows it reads until the transaction ends."""
        return query.for_update()


class LocalSqliteDatabase(peewee.SqliteDatabase):
    """SQLite in a file, knowing whether the disk under it has room for writes.

    A write that fails for lack of space marks the disk full; the mark lasts until the
    file's filesystem has FREE_SPACE_MARGIN_BYTES free again, looked at no more often
    than every SPACE_CHECK_SECONDS.
    """

    label = "SQLite"
    # No NOTIFY: a writer wakes its own process's dispatcher; others poll.
    notifies = False

    def __init__(self, path, **kwargs):
        super().__init__(path, **kwargs)
        self.directory = None if path == ":memory:" else Path(path).parent
        self.full_since = None
        self._space_checked_at = 0.0
        if self.directory is not None and free_bytes(self.directory) < FREE_SPACE_MARGIN_BYTES:
            self.note_storage_full()  # started on a full disk: serve reads only

    def note_storage_full(self):
        if self.full_since is None:
            self.full_since = time.monotonic()
            self._space_checked_at = time.monotonic()
            log.error("the disk holding the database is full: writes fail until space is freed")

    def is_full(self):
        """Tell whether writes are known to fail for lack of space right now."""
        if self.full_since is None:
            return False
        now = time.monotonic()
        if now - self._space_checked_at < SPACE_CHECK_SECONDS:
            return True
        self._space_checked_at = now
        if free_bytes(self.directory) < FREE_SPACE_MARGIN_BYTES:
            return True
        log.warning("disk space is back after %.1f s: writes resume", now - self.full_since)
        self.full_since = None
        return False

    def execute_sql(self, sql, params=None):
        # While the disk is full, refuse every write rather than let the small ones
        # slip into the last free pages: the database is read-only until space is freed.
        if self.full_since is not None and is_write(sql) and self.is_full():
            message = "database or disk is full (refused until space is freed)"
            raise peewee.OperationalError(DiskFull(message), message)
        try:
            return super().execute_sql(sql, params)
        except peewee.OperationalError as exc:
            self._notice(exc)
            raise

    def commit(self):
        try:
            return super().commit()
        except peewee.OperationalError as exc:
            self._notice(exc)
            raise

    def _notice(self, exc):
        if failure_of(exc) == STORAGE_FULL:
            self.note_storage_full()

    def write_transaction(self):
        """Open a transaction that will write (a savepoint inside an open one).

        It begins IMMEDIATE, taking the write lock up front: a read-then-write (``kv.incr``)
        can neither lose an update nor fail on lock upgrade, and a transaction that read
        first waits its turn instead of failing at its first write.
        """
        return self.atomic("IMMEDIATE") if self.transaction_depth() == 0 else self.atomic()

    def lock_rows(self, query):
        """Return ``query`` as it is: the IMMEDIATE transaction holds the whole file."""
        return query


def is_write(sql):
    """Tell whether an SQL statement writes."""
    if _WRITE_STATEMENT.match(sql):
        return True
    return sql.lstrip()[:4].upper() == "WITH" and _WRITE_IN_CTE.search(sql) is not None


def free_bytes(directory):
    """Return the bytes an unprivileged writer may still use in ``directory``."""
    if directory is None:
        return FREE_SPACE_MARGIN_BYTES
    stats = os.statvfs(directory)
    return stats.f_bavail * stats.f_frsize


def make_database(url):
    """Return an unbound peewee database for a ``DATABASE_URL``."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return LocalSqliteDatabase(path, pragmas=SQLITE_PRAGMAS, timeout=5)
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    return PooledPostgresDatabase(url)


def init_db(url):
    """Point ``db`` at the database for ``url`` and return it."""
    database = make_database(url)
    db.initialize(database)
    return database


def is_postgres():
    """Tell whether the bound database is PostgreSQL (to pick a statement's SQL)."""
    return isinstance(db.obj, peewee.PostgresqlDatabase)


def write_transaction():
    """Open a transaction that will write, as the bound database begins one."""
    return db.obj.write_transaction()


def close_db():
    """Close this greenlet's connection, and the pool if there is one."""
    if db.obj is None:
        return
    if not db.is_closed():
        db.close()
    if isinstance(db.obj, PooledPostgresDatabase):
        db.obj.close_pool()


@contextlib.contextmanager
def connection():
    """Hold a connection for the block, reusing this greenlet's open one."""
    opened = db.connect(reuse_if_open=True)
    try:
        yield db
    finally:
        if opened and not db.in_transaction():
            db.close()


def failure_of(exc):
    """Return UNAVAILABLE or STORAGE_FULL for a failure a client may retry, else None.

    peewee wraps the driver's exception (keeping it as ``orig``) and may wrap its own
    wrapper again; the driver's is found at the bottom.
    """
    for _ in range(8):  # a wrapper of a wrapper of ... is never deeper than a few
        if isinstance(exc, psycopg.errors.DiskFull):
            return STORAGE_FULL
        if isinstance(exc, psycopg.OperationalError):
            return UNAVAILABLE
        if isinstance(exc, sqlite3.Error):
            return _sqlite_failure(exc)
        exc = getattr(exc, "orig", None)
        if exc is None:
            return None
    return None


def record_failure(exc):
    """Return ``failure_of(exc)``, noting a full disk so /healthz reports it."""
    kind = failure_of(exc)
    if kind == STORAGE_FULL and isinstance(db.obj, LocalSqliteDatabase):
        db.obj.note_storage_full()
    return kind


def _sqlite_failure(error):
    code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF
    if code == _SQLITE_FULL:
        return STORAGE_FULL
    if code in _SQLITE_UNAVAILABLE:
        return UNAVAILABLE
    return None


def is_storage_full():
    """Tell whether the SQLite database's disk is known to be full right now."""
    return isinstance(db.obj, LocalSqliteDatabase) and db.obj.is_full()


def health():
    """Return the database's state for /healthz: "ok", UNAVAILABLE or "read_only".

    Never waits long: a PostgreSQL server known to be down is reported as such at once,
    and a check waits at most HEALTH_WAIT_SECONDS for a pooled connection.
    """
    if isinstance(db.obj, PooledPostgresDatabase):
        return _postgres_health(db.obj.pool)
    if not is_available():
        return UNAVAILABLE
    return "read_only" if is_storage_full() else "ok"


def _postgres_health(pool):
    try:
        conn = pool.getconn(wait_seconds=HEALTH_WAIT_SECONDS)
    except psycopg.OperationalError as exc:
        log.debug("database unavailable: %s", exc)
        return UNAVAILABLE
    try:
        conn.execute("SELECT 1")
    except psycopg.Error as exc:
        log.warning("database unavailable: %s", exc)
        return UNAVAILABLE
    finally:
        pool.putconn(conn)
    return "ok"


def is_available():
    """Tell whether a trivial query succeeds right now."""
    try:
        with connection():
            db.execute_sql("SELECT 1")
    except (peewee.PeeweeException, psycopg.Error, OSError) as exc:
        log.warning("database unavailable: %s", exc)
        return False
    return True


@contextlib.contextmanager
def migration_lock(settings):
    """Serialise migrations between processes starting at the same time."""
    if is_postgres():
        with connection():
            db.execute_sql("SELECT pg_advisory_lock(7419230)")
            try:
                yield
            finally:
                db.execute_sql("SELECT pg_advisory_unlock(7419230)")
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with open(settings.data_dir / "migrate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


# What the System page shows ---------------------------------------------------------------

# Above this many rows (by PostgreSQL's own estimate) a table is not counted exactly:
# counting a large table reads all of it.
EXACT_COUNT_BELOW = 100_000


@dataclasses.dataclass(frozen=True)
class TableSize:
    """One table: its rows (exact, or PostgreSQL's estimate) and bytes on disk if known."""

    name: str
    rows: int
    exact: bool
    bytes: int | None


def database_bytes():
    """Return the database's size on disk in bytes (SQLite: the file and its WAL)."""
    if is_postgres():
        return db.execute_sql("SELECT pg_database_size(current_database())").fetchone()[0]
    page_count = db.execute_sql("PRAGMA page_count").fetchone()[0]
    page_size = db.execute_sql("PRAGMA page_size").fetchone()[0]
    wal = Path(db.obj.database + "-wal")
    return page_count * page_size + (wal.stat().st_size if wal.exists() else 0)


def table_sizes():
    """Return a TableSize for every table, largest first."""
    if is_postgres():
        rows = db.execute_sql(
            "SELECT c.relname, c.reltuples::bigint, pg_total_relation_size(c.oid) FROM pg_class c"
            " WHERE c.relkind = 'r' AND c.relnamespace = current_schema()::regnamespace"
        ).fetchall()
        sizes = [
            TableSize(name, estimate, False, size) if estimate >= EXACT_COUNT_BELOW
            else TableSize(name, _count(name), True, size)
            for name, estimate, size in rows
        ]
    else:
        sizes = [TableSize(name, _count(name), True, None) for name in db.get_tables()]
    return sorted(sizes, key=lambda t: (-t.rows, t.name))


def _count(table):
    return db.execute_sql(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0]
