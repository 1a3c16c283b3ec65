"""A per-user session epoch: logging out ends every dashboard session of that user.

Dashboard sessions live in signed cookies; a copy taken before logout would stay
valid until its signature expires. Each session carries the epoch it was opened in,
and logging out moves the user to the next one.
"""
from peewee import IntegerField


def up(migrator, db):
    migrator.migrate(migrator.add_column("user", "session_epoch", IntegerField(default=0)))
