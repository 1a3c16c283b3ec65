"""The per-app data stores: KV entries and documents."""
import datetime

from peewee import (
    AutoField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    JSONField,
    Model,
    PostgresqlDatabase,
    TextField,
)


def up(migrator, db):
    postgres = isinstance(db, PostgresqlDatabase)
    # Byte order for keys and ids on PostgreSQL, as SQLite's default BINARY collation
    # gives: prefix ranges and cursors then mean the same thing on both databases.
    byte_order = '"C"' if postgres else None

    class Base(Model):
        class Meta:
            database = db
            legacy_table_names = False

    # The table of 0002 that these reference; not created here.
    class App(Base):
        id = AutoField()

    # No index of its own on app_id: the unique indexes start with it.
    class KVEntry(Base):
        app = ForeignKeyField(App, on_delete="CASCADE", index=False)
        key = CharField(max_length=512, collation=byte_order)
        value = TextField()
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            table_name = "kv_entries"
            indexes = ((("app", "key"), True),)

    class Document(Base):
        app = ForeignKeyField(App, on_delete="CASCADE", index=False)
        collection = CharField(max_length=64, collation=byte_order)
        doc_id = CharField(max_length=512, collation=byte_order)
        data = JSONField()  # JSONB on PostgreSQL, TEXT on SQLite
        created_at = DateTimeField(default=datetime.datetime.utcnow)
        updated_at = DateTimeField(default=datetime.datetime.utcnow)

        class Meta:
            table_name = "documents"
            indexes = ((("app", "collection", "doc_id"), True),)

    db.create_tables([KVEntry, Document])
    if postgres:
        # Serves docs.find's top-level equality filters (data @> '{"field": value}').
        db.execute_sql(
            "CREATE INDEX documents_data_gin ON documents USING GIN (data jsonb_path_ops)"
        )
