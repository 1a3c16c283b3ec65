"""Secrets at rest: the Fernet keys, sealing values before they are stored, opening them.

The key comes from ``PICLOUD_SECRETS_KEY`` or is generated once into the data dir (like
the session key). ``PICLOUD_SECRETS_KEY`` may list several keys, comma-separated: the
first seals, every one opens — that is how a key is rotated (``python app.py
rotate-secrets`` re-seals every value under the first key; docs/integrations.md).
An invalid key stops the server at start, before any value could be sealed with it.
"""
import logging
import os

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from picloud.config import ConfigError, read_key_file

log = logging.getLogger(__name__)

KEY_FILE = "secrets_key"


class SealedValueUnreadable(Exception):
    """A stored secret cannot be opened with the configured keys."""


class Vault:
    """Seal and open secret values with one or more Fernet keys."""

    def __init__(self, keys):
        if not keys:
            raise ConfigError("PICLOUD_SECRETS_KEY holds no key")
        self._fernet = MultiFernet([_fernet(key) for key in keys])

    def seal(self, value):
        """Return the token of a text value."""
        return self._fernet.encrypt(value.encode("utf-8")).decode("ascii")

    def open(self, token):
        """Return the text a token holds, or raise SealedValueUnreadable."""
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except (InvalidToken, UnicodeError, ValueError):
            raise SealedValueUnreadable("a secret cannot be opened with the configured keys") from None

    def reseal(self, token):
        """Return the token re-encrypted under the first key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, ValueError):
            raise SealedValueUnreadable("a secret cannot be opened with the configured keys") from None


def _fernet(key):
    try:
        return Fernet(key.strip().encode("ascii"))
    except (ValueError, UnicodeError):
        raise ConfigError(
            "PICLOUD_SECRETS_KEY must be Fernet keys (32 url-safe base64-encoded bytes each, "
            "comma-separated); generate one with: python -c "
            "'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from None


def load_vault(settings):
    """Return the Vault of the configured keys, or of a key generated once into the data dir."""
    if settings.secrets_key.strip():
        return Vault([key for key in settings.secrets_key.split(",") if key.strip()])
    return Vault([_generated_key(settings.data_dir)])


def _generated_key(data_dir):
    path = data_dir / KEY_FILE
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: when several workers start at once, exactly one writes the key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return read_key_file(path, "PICLOUD_SECRETS_KEY")
    key = Fernet.generate_key().decode("ascii")
    with os.fdopen(fd, "w") as out:
        out.write(key)
    log.info("generated the secrets key in %s; back it up with the database", path)
    return key


_current = None


def init_vault(settings):
    """Load this process's vault (an invalid key raises ConfigError)."""
    global _current
    _current = load_vault(settings)
    return _current


def vault():
    """Return this process's vault."""
    return _current
