"""Opaque page cursors: a JSON position in URL-safe base64, for every paged listing."""
import base64
import binascii
import json

from picloud.errors import ValidationFailed

MAX_CURSOR_CHARS = 4096


def encode_cursor(position):
    """Make an opaque cursor of a JSON-encodable position."""
    raw = json.dumps(position, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor):
    """Return the position in a cursor; 422 with field ``cursor`` when it is not one."""
    if not isinstance(cursor, str) or len(cursor) > MAX_CURSOR_CHARS:
        raise ValidationFailed("cursor", "The cursor is not valid.")
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        return json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, UnicodeError, binascii.Error):
        raise ValidationFailed("cursor", "The cursor is not valid.") from None
