"""Users, API tokens and failed logins."""
import peewee

from picloud.models.base import BaseModel, isoformat, utcnow


class User(BaseModel):
    username = peewee.CharField(max_length=64, unique=True)
    password_hash = peewee.CharField(max_length=255)
    role = peewee.CharField(max_length=16)
    # Dashboard sessions opened in an older epoch are over (see picloud/dashboard).
    session_epoch = peewee.IntegerField(default=0)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    @classmethod
    def admins(cls):
        return cls.select().where(cls.role == "admin")

    def end_sessions(self):
        """End every dashboard session of this user (logging out does)."""
        User.update(session_epoch=User.session_epoch + 1).where(User.id == self.id).execute()

    def to_dict(self):
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "created_at": isoformat(self.created_at),
            "updated_at": isoformat(self.updated_at),
        }


class ApiToken(BaseModel):
    user = peewee.ForeignKeyField(User, backref="tokens", on_delete="CASCADE")
    name = peewee.CharField(max_length=100)
    token_hash = peewee.CharField(max_length=64, unique=True)
    created_at = peewee.DateTimeField(default=utcnow)
    last_used_at = peewee.DateTimeField(null=True)

    def to_dict(self):
        return {
            "id": self.id,
            "name": self.name,
            "created_at": isoformat(self.created_at),
            "last_used_at": isoformat(self.last_used_at),
        }


class LoginFailure(BaseModel):
    """One failed login, kept for the throttling window."""

    username = peewee.CharField(max_length=255, index=True)
    at = peewee.DateTimeField(default=utcnow, index=True)
