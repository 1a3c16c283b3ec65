"""Secrets of apps: a name and the Fernet token of its value (docs/api.md §12).

The value itself is never a column: ``picloud.vault`` seals it before it is stored
and opens it only for a run of the same app.
"""
import peewee

from picloud.models.apps import App
from picloud.models.base import BaseModel, isoformat, utcnow


class Secret(BaseModel):
    # No index of its own on app: the unique index starts with it.
    app = peewee.ForeignKeyField(App, on_delete="CASCADE", index=False)
    name = peewee.CharField(max_length=64)
    token = peewee.TextField()
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    class Meta:
        table_name = "app_secrets"
        indexes = ((("app", "name"), True),)

    @classmethod
    def for_app(cls, app_id):
        return cls.select().where(cls.app == app_id).order_by(cls.name)

    @classmethod
    def named(cls, app_id, name):
        return cls.get_or_none((cls.app == app_id) & (cls.name == name))

    def to_dict(self):
        """Return the API shape: the name and dates, never the value."""
        return {
            "name": self.name,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }
