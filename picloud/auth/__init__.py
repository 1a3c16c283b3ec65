"""Users, passwords, API tokens, roles and capabilities, login throttling."""
import datetime
import functools
import hashlib
import re
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
import logging

from peewee import IntegrityError

from picloud.db import STORAGE_FULL, db, failure_of, is_postgres
from picloud.errors import Conflict, TooManyRequests, Unauthorized, ValidationFailed
from picloud.models import ApiToken, LoginFailure, User, utcnow

log = logging.getLogger(__name__)

ROLES = ("admin", "developer", "viewer")

CAPABILITIES = (
    "read",
    "logs.read",
    "data.read",
    "data.write",
    "scripts.manage",
    "scripts.execute",
    "routes.manage",
    "triggers.manage",
    "dead_letters.manage",
    "apps.manage",
    "domains.manage",
    "users.manage",
    "secrets.manage",
    "metrics.read",
)

_VIEWER = ("read", "logs.read", "data.read", "metrics.read")
_DEVELOPER = _VIEWER + (
    "data.write",
    "scripts.manage",
    "scripts.execute",
    "routes.manage",
    "triggers.manage",
    "dead_letters.manage",
    "secrets.manage",
)
ROLE_CAPABILITIES = {
    "viewer": frozenset(_VIEWER),
    "developer": frozenset(_DEVELOPER),
    "admin": frozenset(CAPABILITIES),
}

# Login throttling: this many failures for one username within the window lock it.
MAX_FAILURES = 10
FAILURE_WINDOW = datetime.timedelta(minutes=5)

TOKEN_USE_RESOLUTION = datetime.timedelta(minutes=1)

USERNAME_RE = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher()
# Verified against when the username is unknown, so both cases take as long.
_DUMMY_HASH = _hasher.hash("picloud-dummy-password")


def capabilities_of(user):
    """Return the capabilities a user's role holds."""
    return ROLE_CAPABILITIES.get(user.role, frozenset())


def hash_password(password):
    return _hasher.hash(password)


def verify_password(user, password):
    """Tell whether the password is the user's; for no user, take as long and say no."""
    try:
        matches = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password)
    except (VerificationError, InvalidHashError):
        return False
    return matches and user is not None


def hash_token(token):
    """Hash an API token for storage; tokens are random, so SHA-256 suffices."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def issue_token(user, name):
    """Create an API token for the user; return the row and the only plain copy."""
    token = "pc_" + secrets.token_urlsafe(32)
    row = ApiToken.create(user=user, name=name, token_hash=hash_token(token))
    return row, token


def user_for_token(token):
    """Return the user an API token belongs to, or None."""
    if not token or len(token) > 200:
        return None
    rows = db.execute_sql(_token_user_sql(is_postgres()), (hash_token(token),)).fetchall()
    if not rows:
        return None
    token_id, last_used_at, *user_columns = rows[0]
    user = User(**{
        field.name: field.python_value(value) for field, value in zip(_USER_FIELDS, user_columns)
    })
    last_used_at = ApiToken.last_used_at.python_value(last_used_at)
    now = utcnow()
    if last_used_at is None or now - last_used_at > TOKEN_USE_RESOLUTION:
        # Coarse on purpose: one write a minute per token, not one per call.
        note_token_use(token_id, now)
    return user


def note_token_use(token_id, now):
    """Record when a token was last used; on a full disk, skip it rather than refuse the call."""
    try:
        ApiToken.update(last_used_at=now).where(ApiToken.id == token_id).execute()
    except Exception as exc:
        if failure_of(exc) != STORAGE_FULL:
            raise
        log.info("token %s: last use not recorded, the disk is full", token_id)


# Every API call looks its token up: plain SQL, as building the join cost more than
# running it.
_USER_FIELDS = User._meta.sorted_fields


@functools.lru_cache(maxsize=2)
def _token_user_sql(postgres):
    columns = ", ".join(f'u."{field.column_name}"' for field in _USER_FIELDS)
    return (
        f'SELECT t."id", t."last_used_at", {columns}'
        f' FROM "{ApiToken._meta.table_name}" AS t JOIN "{User._meta.table_name}" AS u ON u."id" = t."user_id"'
        f' WHERE t."token_hash" = {"%s" if postgres else "?"}'
    )


def retry_after_seconds(username):
    """Return seconds until a throttled username may try again, or 0."""
    since = utcnow() - FAILURE_WINDOW
    recent = (
        LoginFailure.select(LoginFailure.at)
        .where(LoginFailure.username == username, LoginFailure.at > since)
        .order_by(LoginFailure.at.desc())
        .limit(MAX_FAILURES)
    )
    times = [row.at for row in recent]
    if len(times) < MAX_FAILURES:
        return 0
    # The lock lifts when the oldest of the last MAX_FAILURES leaves the window.
    remaining = times[-1] + FAILURE_WINDOW - utcnow()
    return max(1, int(remaining.total_seconds() + 0.999))


def record_failure(username):
    with db.atomic():
        LoginFailure.create(username=username)
        LoginFailure.delete().where(LoginFailure.at < utcnow() - FAILURE_WINDOW).execute()


def authenticate(username, password):
    """Return the user for these credentials; raise 429 when throttled, else 401."""
    username = str(username or "")[:255]
    password = str(password or "")[:MAX_PASSWORD_LENGTH]
    if "\x00" in username:  # no username holds it, and PostgreSQL text cannot
        verify_password(None, password)
        raise Unauthorized("Invalid username or password.")
    wait = retry_after_seconds(username)
    if wait:
        raise TooManyRequests(wait, "Too many failed logins for this user; try again later.")
    user = User.get_or_none(User.username == username)
    if not verify_password(user, password):
        record_failure(username)
        raise Unauthorized("Invalid username or password.")
    return user


def validate_username(username):
    if not isinstance(username, str) or not USERNAME_RE.match(username):
        raise ValidationFailed(
            "username", "Username must be 1-64 letters, digits or . _ @ -."
        )
    return username


def validate_password(password):
    if not isinstance(password, str) or not (
        MIN_PASSWORD_LENGTH <= len(password) <= MAX_PASSWORD_LENGTH
    ):
        raise ValidationFailed(
            "password", f"Password must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters."
        )
    return password


def validate_role(role):
    if role not in ROLES:
        raise ValidationFailed("role", f"Role must be one of {', '.join(ROLES)}.")
    return role


def create_user(username, password, role):
    """Create a user; 409 username_taken if the name is in use."""
    validate_username(username)
    validate_password(password)
    validate_role(role)
    try:
        with db.atomic():
            return User.create(username=username, password_hash=hash_password(password), role=role)
    except IntegrityError:
        raise Conflict("That username is taken.", code="username_taken", field="username") from None


def update_user(user, *, username=None, password=None, role=None):
    """Change a user's fields; the last admin cannot be demoted."""
    with db.atomic():
        if username is not None:
            user.username = validate_username(username)
        if password is not None:
            user.password_hash = hash_password(validate_password(password))
        if role is not None:
            validate_role(role)
            if user.role == "admin" and role != "admin":
                _ensure_other_admin(user)
            user.role = role
        user.updated_at = utcnow()
        try:
            user.save()
        except IntegrityError:
            raise Conflict("That username is taken.", code="username_taken", field="username") from None
    return user


def delete_user(user):
    """Delete a user and their tokens; the last admin cannot be deleted."""
    with db.atomic():
        if user.role == "admin":
            _ensure_other_admin(user)
        user.delete_instance(recursive=True)


def _ensure_other_admin(user):
    # Lock the admin rows so two concurrent demotions cannot both pass the check.
    query = User.admins().where(User.id != user.id)
    if not db.lock_rows(query).exists():
        raise Conflict("PiCloud needs at least one admin.", code="last_admin")


def bootstrap_admin(settings, log):
    """Create the first admin on a database with no users."""
    if User.select().exists():
        return None
    password = settings.admin_password or secrets.token_urlsafe(12)
    try:
        with db.atomic():
            user = User.create(username="admin", password_hash=hash_password(password), role="admin")
    except IntegrityError:
        return None  # another worker created it first
    if settings.admin_password:
        log.warning("Created user 'admin' with the password from PICLOUD_ADMIN_PASSWORD.")
    else:
        log.warning("Created user 'admin' with password: %s (shown once; change it)", password)
    return user
