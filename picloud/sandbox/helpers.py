"""The ``crypto``, ``encoding`` and ``time`` helpers of scripts, computed in the executor.

Hashes and codecs run as Python's C implementations (hashlib, hmac, base64), not as
Lua loops that would burn the instruction budget: hashing 1 MiB costs a millisecond.
world.lua checks every argument's type before it calls here, so these functions see
only bytes, integers, floats and None, and return bytes, a float or a bool. Nothing of
Python reaches Lua: runtime.py turns their result or ``HelperError`` into plain values.
"""
import base64
import binascii
import datetime
import hashlib
import hmac
import os
import re
import time
import uuid
from urllib.parse import quote, unquote_to_bytes

MAX_RANDOM_BYTES = 1024
HMAC_ALGORITHMS = {b"sha1": hashlib.sha1, b"sha256": hashlib.sha256, b"sha512": hashlib.sha512}
# RFC 3986 unreserved characters: everything else is percent-encoded.
_UNRESERVED = "-._~"
_BASE64URL = re.compile(rb"[A-Za-z0-9_-]*")
_PERCENT = re.compile(rb"%(?![0-9A-Fa-f]{2})")
# How many bytes of output a helper can make per byte of input, to refuse before making it.
GROWTH = {b"hex_encode": 2, b"base64_encode": 2, b"base64url_encode": 2, b"url_encode": 3}


class HelperError(Exception):
    """A helper was called with arguments it cannot take; the script sees the message."""


def _bytes(value, what):
    if not isinstance(value, bytes):
        raise HelperError(f"{what}: string expected")
    return value


def sha1(data):
    return hashlib.sha1(_bytes(data, "sha1")).digest()


def sha256(data):
    return hashlib.sha256(_bytes(data, "sha256")).digest()


def hmac_digest(algorithm, key, data):
    digest = HMAC_ALGORITHMS.get(algorithm)
    if digest is None:
        raise HelperError('hmac: unknown algorithm (use "sha1", "sha256" or "sha512")')
    return hmac.new(_bytes(key, "hmac"), _bytes(data, "hmac"), digest).digest()


def random_bytes(n):
    if not isinstance(n, int) or isinstance(n, bool) or not 0 <= n <= MAX_RANDOM_BYTES:
        raise HelperError(f"random_bytes: n must be an integer from 0 to {MAX_RANDOM_BYTES}")
    return os.urandom(n)


def new_uuid():
    return str(uuid.uuid4()).encode("ascii")


def equals(a, b):
    return hmac.compare_digest(_bytes(a, "equals"), _bytes(b, "equals"))


def hex_encode(data):
    return binascii.hexlify(_bytes(data, "hex_encode"))


def hex_decode(text):
    try:
        return binascii.unhexlify(_bytes(text, "hex_decode"))
    except (binascii.Error, ValueError):
        raise HelperError("hex_decode: invalid hex string") from None


def base64_encode(data):
    return base64.b64encode(_bytes(data, "base64_encode"))


def base64_decode(text):
    try:
        return base64.b64decode(_bytes(text, "base64_decode"), validate=True)
    except (binascii.Error, ValueError):
        raise HelperError("base64_decode: invalid base64 string") from None


def base64url_encode(data):
    return base64.urlsafe_b64encode(_bytes(data, "base64url_encode")).rstrip(b"=")


def base64url_decode(text):
    text = _bytes(text, "base64url_decode").rstrip(b"=")
    if not _BASE64URL.fullmatch(text) or len(text) % 4 == 1:
        raise HelperError("base64url_decode: invalid base64url string")
    try:
        return base64.urlsafe_b64decode(text + b"=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise HelperError("base64url_decode: invalid base64url string") from None


def url_encode(data):
    return quote(_bytes(data, "url_encode"), safe=_UNRESERVED).encode("ascii")


def url_decode(text):
    text = _bytes(text, "url_decode")
    if _PERCENT.search(text):
        raise HelperError("url_decode: invalid percent-encoding")
    return unquote_to_bytes(text)


def now():
    return round(time.time(), 3)


def iso(moment=None):
    if moment is None:
        moment = time.time()
    if isinstance(moment, bool) or not isinstance(moment, (int, float)):
        raise HelperError("iso: number expected")
    try:
        when = datetime.datetime.fromtimestamp(moment, datetime.UTC)
    except (OverflowError, OSError, ValueError):
        raise HelperError("iso: time out of range") from None
    return (when.strftime("%Y-%m-%dT%H:%M:%S.") + f"{when.microsecond // 1000:03d}Z").encode("ascii")


HELPERS = {
    b"sha1": sha1,
    b"sha256": sha256,
    b"hmac": hmac_digest,
    b"random_bytes": random_bytes,
    b"uuid": new_uuid,
    b"equals": equals,
    b"hex_encode": hex_encode,
    b"hex_decode": hex_decode,
    b"base64_encode": base64_encode,
    b"base64_decode": base64_decode,
    b"base64url_encode": base64url_encode,
    b"base64url_decode": base64url_decode,
    b"url_encode": url_encode,
    b"url_decode": url_decode,
    b"now": now,
    b"iso": iso,
}
