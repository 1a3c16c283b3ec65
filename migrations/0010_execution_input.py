"""What a run was given and what it answered: executions gain ``input`` and ``response``.

``input`` holds the run's ``request`` (HTTP and console runs) or ``event`` (triggered
runs), ``response`` the answer of an HTTP run; both are bounded previews (JSON text).
"""
from peewee import TextField


def up(migrator, db):
    migrator.migrate(
        migrator.add_column("executions", "input", TextField(null=True)),
        migrator.add_column("executions", "response", TextField(null=True)),
    )
