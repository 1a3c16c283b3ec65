"""The model base class and time helpers shared by every model.

Timestamps are naive UTC datetimes in the database and ISO 8601 with ``Z`` in JSON.
"""
import datetime

import peewee

from picloud.db import db


def utcnow():
    """Return the current UTC time, naive, to the microsecond."""
    return datetime.datetime.now(datetime.UTC).replace(tzinfo=None)


def isoformat(moment):
    """Format a stored UTC datetime for JSON, or None."""
    if moment is None:
        return None
    return moment.isoformat(timespec="milliseconds") + "Z"


class BaseModel(peewee.Model):
    class Meta:
        database = db
        legacy_table_names = False
