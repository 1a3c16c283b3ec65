"""Settings: defaults in code, ``PICLOUD_*`` environment on top.

``load_settings`` is pure: it reads a mapping and returns a frozen ``Settings`` or
raises ``ConfigError`` naming the variable that is wrong.
"""
import os
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from picloud.egress.policy import EgressAllow, InvalidAllowEntry
from picloud.sandbox import limits_from_env


class ConfigError(Exception):
    """A configuration value is invalid."""


@dataclass(frozen=True)
class Settings:
    bind: str = "127.0.0.1:8080"
    data_dir: Path = Path("data")
    database_url: str = ""
    secret_key: str = ""
    secrets_key: str = ""
    admin_password: str | None = None
    executor_processes: int = 2
    queue_wait_ms: int = 2000
    max_body_bytes: int = 1_048_576
    max_timeout_seconds: int = 60
    max_trigger_depth: int = 8
    dispatch_poll_ms: int = 100
    max_value_bytes: int = 1_048_576
    log_retention_days: int = 7
    dead_letter_retention_days: int = 30
    proxy_count: int = 0
    egress_allow: EgressAllow = EgressAllow()
    app_max_share: float = 0.5
    sandbox_defaults: dict = field(default_factory=dict)
    sandbox_ceilings: dict = field(default_factory=dict)

    @property
    def is_postgres(self):
        return self.database_url.startswith(("postgresql://", "postgres://"))


# Integer settings: environment name -> (field name, smallest allowed value).
_INTEGERS = {
    "PICLOUD_EXECUTOR_PROCESSES": ("executor_processes", 1),
    "PICLOUD_QUEUE_WAIT_MS": ("queue_wait_ms", 0),
    "PICLOUD_MAX_BODY_BYTES": ("max_body_bytes", 1),
    "PICLOUD_MAX_TIMEOUT_SECONDS": ("max_timeout_seconds", 1),
    "PICLOUD_MAX_TRIGGER_DEPTH": ("max_trigger_depth", 0),
    "PICLOUD_DISPATCH_POLL_MS": ("dispatch_poll_ms", 1),
    "PICLOUD_MAX_VALUE_BYTES": ("max_value_bytes", 1),
    "PICLOUD_LOG_RETENTION_DAYS": ("log_retention_days", 1),
    "PICLOUD_DEAD_LETTER_RETENTION_DAYS": ("dead_letter_retention_days", 1),
    "PICLOUD_PROXY_COUNT": ("proxy_count", 0),
}


def parse_int(name, raw, minimum):
    """Parse one integer setting or raise ConfigError naming it."""
    try:
        value = int(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {value}")
    return value


def parse_share(name, raw):
    """Parse a fraction in (0, 1] or raise ConfigError naming the setting."""
    try:
        value = float(raw.strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not 0 < value <= 1:  # also refuses nan
        raise ConfigError(f"{name} must be more than 0 and at most 1, got {raw.strip()}")
    return value


def parse_bind(raw):
    """Check a host:port bind address and return it unchanged."""
    host, sep, port = raw.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError(f"PICLOUD_BIND must be host:port, got {raw!r}")
    return raw


def parse_database_url(raw, data_dir):
    """Return the database URL, defaulting to SQLite in the data dir."""
    if not raw:
        return f"sqlite:///{data_dir / 'picloud.db'}"
    if raw.startswith(("sqlite:///", "postgresql://", "postgres://")):
        return raw
    raise ConfigError(
        f"DATABASE_URL must start with sqlite:/// or postgresql://, got {raw!r}"
    )


def load_settings(environ=None):
    """Build Settings from an environment mapping (``os.environ`` by default)."""
    env = os.environ if environ is None else environ
    values = {}
    for name, (attr, minimum) in _INTEGERS.items():
        if env.get(name, "").strip():
            values[attr] = parse_int(name, env[name], minimum)
    values.setdefault("executor_processes", os.cpu_count() or 1)
    if env.get("PICLOUD_APP_MAX_SHARE", "").strip():
        values["app_max_share"] = parse_share("PICLOUD_APP_MAX_SHARE", env["PICLOUD_APP_MAX_SHARE"])
    data_dir = Path(env.get("PICLOUD_DATA_DIR") or "data")
    defaults, ceilings = limits_from_env(env)
    try:
        egress_allow = EgressAllow.parse(env.get("PICLOUD_EGRESS_ALLOW", ""))
    except InvalidAllowEntry as exc:
        raise ConfigError(f"PICLOUD_EGRESS_ALLOW: {exc}") from None
    return Settings(
        bind=parse_bind(env.get("PICLOUD_BIND") or "127.0.0.1:8080"),
        data_dir=data_dir,
        database_url=parse_database_url(env.get("DATABASE_URL", ""), data_dir),
        secret_key=env.get("PICLOUD_SECRET_KEY", ""),
        secrets_key=env.get("PICLOUD_SECRETS_KEY", ""),
        admin_password=env.get("PICLOUD_ADMIN_PASSWORD") or None,
        egress_allow=egress_allow,
        sandbox_defaults=defaults,
        sandbox_ceilings=ceilings,
        **values,
    )


def ensure_secret_key(settings):
    """Return the session key: configured, or generated once into the data dir."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret_key"
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when several workers start at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_key_file(path, "PICLOUD_SECRET_KEY")
    with os.fdopen(fd, "w") as out:
        key = secrets.token_hex(32)
        out.write(key)
    return key


def read_key_file(path, variable):
    """Read a key file that another process may be writing right now."""
    for _ in range(50):
        key = path.read_text().strip()
        if key:
            return key
        time.sleep(0.01)
    raise ConfigError(f"{path} is empty; delete it or set {variable}")
