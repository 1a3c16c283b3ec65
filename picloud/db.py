"""The database: the one module that knows SQLite from PostgreSQL.

``db`` is a peewee proxy that models bind to; ``init_db`` points it at the database
named by ``DATABASE_URL``. On PostgreSQL connections come from a psycopg-pool pool; a
peewee "connect" borrows one and "close" gives it back. psycopg 3 cooperates with gevent
once the standard library is patched, so a slow query never blocks other greenlets.
"""
import contextlib
import fcntl
import logging
import select
from pathlib import Path

import peewee
from playhouse.postgres_ext import Psycopg3Database
import psycopg
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

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


class PooledPostgresDatabase(Psycopg3Database):
    """PostgreSQL through a psycopg-pool ConnectionPool."""

    def __init__(self, url, *, min_size=1, max_size=10, **kwargs):
        super().__init__(url, **kwargs)
        # peewee holds one process-wide lock around connect and close. A greenlet
        # waiting in getconn() while holding it would stop every other greenlet
        # from giving its connection back: a deadlock. The pool is thread-safe and
        # peewee's connection state is per greenlet, so no lock is needed.
        self._lock = peewee._NoopLock()
        self.url = url
        self.pool = ConnectionPool(
            url,
            min_size=min_size,
            max_size=max_size,
            kwargs={"autocommit": True},
            # How long a request waits for a connection before failing (503).
            timeout=5,
            open=False,
            # A server restart leaves dead sockets in the pool: check on borrow.
            check=check_idle_connection,
        )

    def _connect(self):
        if self.pool.closed:
            self.pool.open(wait=False)
        return self.pool.getconn()

    def _close(self, conn):
        self.pool.putconn(conn)

    def close_pool(self):
        self.pool.close()


def check_idle_connection(conn):
    """Raise if a connection leaving the pool is dead; costs no round trip when it is well.

    An idle connection has nothing to read: the server only talks when asked. A socket
    that is readable therefore holds the server's goodbye (a restart, a terminated
    backend) or a message we do not expect, and only then is a real query spent on
    finding out. A connection that is not idle is checked the full way.
    """
    if conn.closed or conn.broken:
        raise psycopg.OperationalError("the connection is closed")
    if conn.info.transaction_status != TransactionStatus.IDLE:
        ConnectionPool.check_connection(conn)
        return
    poller = _poll()
    poller.register(conn.fileno(), select.POLLIN | select.POLLPRI)
    if poller.poll(0):
        ConnectionPool.check_connection(conn)


def make_database(url):
    """Return an unbound peewee database for a ``DATABASE_URL``."""
    if url.startswith("sqlite:///"):
        path = url[len("sqlite:///"):]
        if path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        return peewee.SqliteDatabase(path, pragmas=SQLITE_PRAGMAS, timeout=5)
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    return PooledPostgresDatabase(url)


def init_db(url):
    """Point ``db`` at the database for ``url`` and return it."""
    database = make_database(url)
    db.initialize(database)
    return database


def is_postgres():
    """Tell whether the bound database is PostgreSQL."""
    return isinstance(db.obj, peewee.PostgresqlDatabase)


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


def is_available():
    """Tell whether a trivial query succeeds right now."""
    try:
        with connection():
            db.execute_sql("SELECT 1")
    except (peewee.PeeweeException, psycopg.Error, PoolTimeout, OSError) as exc:
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
