"""The retry policy of triggers and async routes (docs/api.md §9), as pure functions.

A policy is a plain dict ``{"max_attempts", "backoff", "base_delay_ms", "max_delay_ms",
"jitter"}``. ``validate_retry`` fills in the defaults and answers 422 naming the field
(``retry.<name>``); ``next_delay_ms`` says how long to wait after a failed attempt.
"""
from picloud.errors import ValidationFailed

DEFAULT_RETRY = {
    "max_attempts": 5,
    "backoff": "exponential",
    "base_delay_ms": 1000,
    "max_delay_ms": 300_000,
    "jitter": 0.2,
}

BACKOFFS = ("exponential", "linear", "constant")

# Bounds that keep a policy sensible: a day between attempts, a hundred attempts.
MAX_ATTEMPTS = 100
MAX_DELAY_MS = 86_400_000


def validate_retry(value):
    """Return the complete policy for ``value`` (None = the defaults), or raise 422."""
    if value is None:
        return dict(DEFAULT_RETRY)
    if not isinstance(value, dict):
        raise ValidationFailed("retry", "retry must be an object.")
    unknown = sorted(set(value) - set(DEFAULT_RETRY))
    if unknown:
        raise ValidationFailed(f"retry.{unknown[0]}", f"Unknown retry setting {unknown[0]!r}.")
    policy = {**DEFAULT_RETRY, **value}
    policy["max_attempts"] = _integer("max_attempts", policy["max_attempts"], 1, MAX_ATTEMPTS)
    if policy["backoff"] not in BACKOFFS:
        raise ValidationFailed("retry.backoff", "backoff must be exponential, linear or constant.")
    policy["base_delay_ms"] = _integer("base_delay_ms", policy["base_delay_ms"], 0, MAX_DELAY_MS)
    policy["max_delay_ms"] = _integer("max_delay_ms", policy["max_delay_ms"], 0, MAX_DELAY_MS)
    if policy["max_delay_ms"] < policy["base_delay_ms"]:
        raise ValidationFailed("retry.max_delay_ms", "max_delay_ms must be at least base_delay_ms.")
    jitter = policy["jitter"]
    if isinstance(jitter, bool) or not isinstance(jitter, (int, float)) or not 0 <= jitter <= 1:
        raise ValidationFailed("retry.jitter", "jitter must be a number from 0 to 1.")
    policy["jitter"] = float(jitter)
    return policy


def _integer(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationFailed(f"retry.{name}", f"{name} must be an integer from {low} to {high:,}.")
    return value


def base_delay_ms(policy, attempt):
    """Return the delay after failed attempt ``attempt`` (1-based) before jitter."""
    base = policy["base_delay_ms"]
    if policy["backoff"] == "exponential":
        # 2**(n-1) overflows nothing in Python, but keep the exponent small: past
        # 2**40 every base above zero is already over the cap.
        delay = base * 2 ** min(attempt - 1, 40)
    elif policy["backoff"] == "linear":
        delay = base * attempt
    else:
        delay = base
    return min(delay, policy["max_delay_ms"])


def next_delay_ms(policy, attempt, rng):
    """Return the jittered delay after failed attempt ``attempt``, spread uniformly by ±jitter."""
    delay = base_delay_ms(policy, attempt)
    spread = policy["jitter"] * delay
    return max(0.0, delay + rng.uniform(-spread, spread))


def has_attempts_left(policy, attempt):
    """Tell whether another attempt follows failed attempt ``attempt``."""
    return attempt < policy["max_attempts"]
