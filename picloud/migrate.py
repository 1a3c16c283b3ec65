"""Schema migrations: numbered Python files in ``migrations/``, run at start-up."""
import logging
from pathlib import Path

from playhouse.migrations import Runner

from picloud.db import connection, db, migration_lock

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


class SchemaTooNew(Exception):
    """The database was migrated by a newer PiCloud; refusing to run."""


def _runner():
    return Runner(db.obj, directory=str(MIGRATIONS_DIR))


def newest_known():
    """Return the number of the newest migration this version ships."""
    return max((m.idx for m in _runner().migrations()), default=0)


def applied_number():
    """Return the number of the newest migration applied to the database."""
    with connection():
        return max((m.idx for m in _runner().status() if m.applied), default=0)


def migrate(settings):
    """Apply pending migrations; refuse a database from a newer version."""
    with connection(), migration_lock(settings):
        runner = _runner()
        status = runner.status()
        unknown = [m for m in status if m.path is None]
        if unknown:
            names = ", ".join(m.name for m in unknown)
            raise SchemaTooNew(
                f"the database has migrations this version does not know ({names}); "
                "upgrade PiCloud before starting it on this database"
            )
        # Nothing pending: write nothing either, so a server starts on a full disk
        # (up() would create its history table, a write, even with nothing to apply).
        applied = runner.up() if any(not m.applied for m in status) else []
    for name in applied:
        log.info("applied migration %s", name)
    return applied
