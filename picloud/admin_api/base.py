"""The admin API's blueprint and what its views share: bearer auth, JSON bodies, paging.

Every view declares the capability it needs with ``@requires``; the caller is the
user of the ``Authorization: Bearer`` token.
"""
import functools
import json
import re

from flask import Blueprint, g, request
from werkzeug.routing import IntegerConverter

from picloud.auth import capabilities_of, user_for_token
from picloud.cursor import decode_cursor, encode_cursor
from picloud.errors import BadRequest, Forbidden, Unauthorized, ValidationFailed
from picloud.manager import is_id

bp = Blueprint("api", __name__, url_prefix="/api/v1")


class IdConverter(IntegerConverter):
    """An object id in a URL: a number too large to be one matches no rule (404).

    The bound is in the pattern, not a ``max``: werkzeug checks the method before it
    converts, so a failed conversion could answer 405 instead of 404.
    """

    regex = r"\d{1,18}"  # every 18-digit number is below MAX_ID


DEFAULT_LIMIT = 50
MAX_LIMIT = 500


def authenticate_bearer():
    """Return the user of the request's bearer token, or raise 401."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Send an API token as 'Authorization: Bearer <token>'.")
    user = user_for_token(token.strip())
    if user is None:
        raise Unauthorized("The API token is invalid or revoked.")
    return user


def requires(capability):
    """Authenticate the caller and check one capability before the view runs."""

    def decorator(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            g.user = authenticate_bearer()
            if capability not in capabilities_of(g.user):
                raise Forbidden(capability)
            return view(*args, **kwargs)

        return wrapper

    return decorator


# A \uD800-\uDFFF escape: half of a surrogate pair, or a lone surrogate, which is no
# character and could not be stored as UTF-8.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def json_body(*, require_object=True):
    """Return the request's JSON body, or raise 400 bad_request."""
    raw = request.get_data(cache=True)
    try:
        body = json.loads(raw.decode("utf-8")) if raw else None
        if _SURROGATE_ESCAPE.search(raw):
            json.dumps(body, ensure_ascii=False).encode("utf-8")  # fails on a lone surrogate
    except (UnicodeError, ValueError):
        raise BadRequest("The request body is not valid JSON.") from None
    if require_object and not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def limit_arg():
    """Return the ``limit`` query parameter, 1..MAX_LIMIT."""
    raw = request.args.get("limit")
    if raw is None or raw == "":
        return DEFAULT_LIMIT
    try:
        limit = int(raw)
    except ValueError:
        raise ValidationFailed("limit", "limit must be an integer.") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise ValidationFailed("limit", f"limit must be between 1 and {MAX_LIMIT}.")
    return limit


def paginate(query, key, *, descending=False):
    """Return (rows, next_cursor) for a query paged by its integer id column ``key``."""
    limit = limit_arg()
    cursor = request.args.get("cursor")
    if cursor:
        after = decode_cursor(cursor)
        if not is_id(after):
            raise ValidationFailed("cursor", "cursor is not valid.")
        query = query.where(key < after if descending else key > after)
    rows = list(query.order_by(key.desc() if descending else key).limit(limit + 1))
    more = len(rows) > limit
    rows = rows[:limit]
    next_cursor = encode_cursor(getattr(rows[-1], key.name)) if more else None
    return rows, next_cursor
