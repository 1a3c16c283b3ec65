"""Validation and writes shared by the admin API and the dashboard.

Each function takes plain values, raises the ``picloud.errors`` exception whose code
docs/api.md names, and writes inside one transaction, so bad input never leaves half-written
data behind. Every change that routing depends on goes through ``config_change``.
"""
from flask import current_app

from picloud.errors import ValidationFailed

# The largest integer a database id column holds; a larger number names no object.
MAX_ID = 2**63 - 1


def settings():
    """Return the running app's Settings."""
    return current_app.config["PICLOUD"]


def text_field(field, value, *, max_length, default=None):
    """Check an optional text field and return it (or the default when absent)."""
    if value is None:
        return default
    if not isinstance(value, str):
        raise ValidationFailed(field, f"{field} must be a string.")
    if len(value) > max_length:
        raise ValidationFailed(field, f"{field} must be at most {max_length} characters.")
    if "\x00" in value:  # PostgreSQL text cannot hold it
        raise ValidationFailed(field, f"{field} cannot contain the NUL character.")
    return value


_REQUIRED = object()


def bool_field(field, value, *, default=_REQUIRED):
    """Return a boolean field; null (or absent) gives ``default``, or 422 without one."""
    if value is None and default is not _REQUIRED:
        return default
    if not isinstance(value, bool):
        raise ValidationFailed(field, f"{field} must be true or false.")
    return value


def is_id(value):
    """Tell whether ``value`` is an integer that could be an object's id (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_ID


def reject_unknown(data, allowed):
    """Raise 422 naming the first field of ``data`` that is not in ``allowed``."""
    unknown = sorted(set(data) - set(allowed))
    if unknown:
        raise ValidationFailed(unknown[0], f"Unknown field {unknown[0]!r}.")
