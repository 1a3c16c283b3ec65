"""Sandbox knobs: built-in defaults and ceilings, environment overrides, validation.

Pure functions, no Lua: the manager validates a script's ``sandbox`` object with
``validate_sandbox`` and the orchestrator turns it into the seven numbers of one run
with ``effective_limits`` (docs/api.md §5).
"""
import logging
import re

log = logging.getLogger(__name__)

KNOBS = (
    "max_instructions",
    "max_memory_bytes",
    "max_call_depth",
    "max_string_bytes",
    "max_table_entries",
    "max_output_bytes",
    "max_http_requests",
)

BUILTIN_DEFAULTS = {
    "max_instructions": 10_000_000,
    "max_memory_bytes": 33_554_432,
    "max_call_depth": 200,
    "max_string_bytes": 1_048_576,
    "max_table_entries": 100_000,
    "max_output_bytes": 1_048_576,
    "max_http_requests": 10,
}

BUILTIN_CEILINGS = {
    "max_instructions": 100_000_000,
    "max_memory_bytes": 268_435_456,
    "max_call_depth": 1_000,
    "max_string_bytes": 16_777_216,
    "max_table_entries": 1_000_000,
    "max_output_bytes": 16_777_216,
    "max_http_requests": 100,
}

ENV_DEFAULT_PREFIX = "PICLOUD_SANDBOX_DEFAULT_"
ENV_CEILING_PREFIX = "PICLOUD_SANDBOX_CEILING_"

_DIGITS = re.compile(r"[0-9]+")


class InvalidSandbox(Exception):
    """The sandbox object of a script is not valid."""

    def __init__(self, code, field, message, **extra):
        super().__init__(message)
        self.code = code
        self.field = field
        self.message = message
        self.extra = extra


def limits_from_env(environ):
    """Return (defaults, ceilings) from the built-ins and PICLOUD_SANDBOX_* variables.

    A value that is not a positive integer is logged and ignored; a default above
    its ceiling is clamped to the ceiling (and logged).
    """
    ceilings = _overridden(BUILTIN_CEILINGS, environ, ENV_CEILING_PREFIX)
    defaults = _overridden(BUILTIN_DEFAULTS, environ, ENV_DEFAULT_PREFIX)
    for knob in KNOBS:
        if defaults[knob] > ceilings[knob]:
            log.warning(
                "sandbox default %s=%d is above its ceiling %d; using the ceiling",
                knob, defaults[knob], ceilings[knob],
            )
            defaults[knob] = ceilings[knob]
    return defaults, ceilings


def _overridden(builtin, environ, prefix):
    values = dict(builtin)
    for knob in KNOBS:
        name = prefix + knob.upper()
        raw = environ.get(name)
        if raw is None:
            continue
        text = raw.strip()
        if not _DIGITS.fullmatch(text) or int(text) <= 0:
            log.warning("ignoring %s=%r: not a positive integer", name, raw)
            continue
        values[knob] = int(text)
    return values


def validate_sandbox(overrides, ceilings):
    """Return the validated knob overrides of a script, or raise InvalidSandbox."""
    if overrides is None:
        return {}
    if not isinstance(overrides, dict):
        raise InvalidSandbox("validation_failed", "sandbox", "sandbox must be an object of knobs.")
    for knob in overrides:
        if knob not in KNOBS:
            raise InvalidSandbox(
                "validation_failed", f"sandbox.{knob}", f"unknown sandbox knob {knob!r}."
            )
    valid = {}
    for knob in KNOBS:
        if knob in overrides:
            valid[knob] = _knob_value(knob, overrides[knob], ceilings[knob])
    return valid


def _knob_value(knob, value, ceiling):
    field = f"sandbox.{knob}"
    # bool is an int subclass: True must not pass for 1.
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidSandbox("validation_failed", field, f"{knob} must be a positive integer.")
    if value > ceiling:
        raise InvalidSandbox(
            "exceeds_ceiling", field, f"{knob} may be at most {ceiling:,}.",
            requested=value, ceiling=ceiling,
        )
    return value


def effective_limits(overrides, defaults, ceilings=None):
    """Return all seven knobs of one run: the script's overrides on top of the defaults.

    With ``ceilings``, a stored override above a since-lowered ceiling is clamped.
    """
    overrides = overrides or {}
    limits = {knob: overrides.get(knob, defaults[knob]) for knob in KNOBS}
    if ceilings is not None:
        limits = {knob: min(value, ceilings[knob]) for knob, value in limits.items()}
    return limits
