"""Secrets of apps: validation, writes, the values a run may read, and masking (docs/api.md §12).

Values are write-only: they are sealed by the vault before they are stored and only
``picloud.reach`` opens them, for the runs of the same app and for masking what a run
records. Every change is a configuration change, so every process drops the values
it holds for the app.
"""
import re

from picloud.errors import NotFound, ValidationFailed
from picloud.manager.apps import owned_by_app
from picloud.models import Secret, utcnow
from picloud.cache import config_change
from picloud.vault import vault

NAME_RE = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
MAX_VALUE_BYTES = 64 * 1024


def list_secrets(app_id):
    """Return an app's secrets (names and dates), by name."""
    return list(Secret.for_app(app_id))


def put_secret(app_id, name, value):
    """Set or replace a secret; 422 for a bad name or value."""
    check_name(name)
    check_value(value)
    token = vault().seal(value)
    # config_change serialises changes between processes: update-or-create cannot race.
    with config_change():
        now = utcnow()
        updated = (
            Secret.update(token=token, updated_at=now)
            .where((Secret.app == app_id) & (Secret.name == name))
            .execute()
        )
        if not updated:
            Secret.create(app=app_id, name=name, token=token, created_at=now, updated_at=now)
    return Secret.named(app_id, name)


def delete_secret(app_id, name):
    """Delete a secret; 404 when the app has none by that name."""
    with config_change():
        deleted = Secret.delete().where((Secret.app == app_id) & (Secret.name == name)).execute()
    if not deleted:
        raise NotFound("No such secret.")


def reseal_all():
    """Re-encrypt every stored secret under the vault's first key; return how many."""
    opener = vault()
    with config_change():
        rows = list(Secret.select(Secret.id, Secret.token))
        for row in rows:
            Secret.update(token=opener.reseal(row.token)).where(Secret.id == row.id).execute()
    return len(rows)


def check_name(name):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise ValidationFailed(
            "name", "A secret name is 1-64 upper-case letters, digits or underscores, not starting with a digit."
        )


def check_value(value):
    if not isinstance(value, str):
        raise ValidationFailed("value", "value must be a string.")
    if len(value.encode("utf-8", "surrogatepass")) > MAX_VALUE_BYTES:
        raise ValidationFailed("value", f"value must be at most {MAX_VALUE_BYTES} bytes.")
    if "\x00" in value or any("\ud800" <= c <= "\udfff" for c in value):
        raise ValidationFailed("value", "value cannot contain NUL characters or lone surrogates.")


owned_by_app(lambda app_id: Secret.delete().where(Secret.app == app_id).execute())
