"""Users, API tokens and failed logins."""
import datetime

from peewee import CharField, DateTimeField, ForeignKeyField, Model


def up(migrator, db):
    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    class User(Base):
        username = CharField(max_length=64, unique=True)
        password_hash = CharField(max_length=255)
        role = CharField(max_length=16)
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

    class ApiToken(Base):
        user = ForeignKeyField(User, on_delete="CASCADE")
        name = CharField(max_length=100)
        token_hash = CharField(max_length=64, unique=True)
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        last_used_at = DateTimeField(null=True)

    class LoginFailure(Base):
        username = CharField(max_length=255, index=True)
        at = DateTimeField(default=datetime.datetime.utcnow, index=True)

    db.create_tables([User, ApiToken, LoginFailure])
