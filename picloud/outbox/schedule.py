"""When a schedule trigger fires (docs/api.md §14), as pure functions.

A schedule is a 5-field cron expression, a macro (``@hourly`` …) or ``@every <n>s|m|h``,
read in an IANA timezone. Cron times are found by ``croniter`` on timezone-aware
datetimes, so daylight saving time behaves as croniter documents: a local time that a
spring-forward skips fires at the first moment after the gap (02:30 → 03:00), and a
local time that a fall-back repeats fires at both occurrences, which are two distinct
instants. ``@every`` counts whole intervals from the Unix epoch in UTC — ``@every 15m``
fires at :00, :15, :30 and :45 of every hour, in any timezone — so every process
computes the same instants.

Every instant here is a naive UTC datetime, as the database stores them.
"""
import datetime
import re
import zoneinfo
from dataclasses import dataclass

from croniter import croniter

from picloud.errors import ValidationFailed

MACROS = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",  # Sunday 00:00
    "@monthly": "0 0 1 * *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
}
_EVERY = re.compile(r"^@every\s+(\d{1,9})\s*([smh])$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600}
# Longer intervals are better said with a cron expression.
MAX_EVERY_SECONDS = 366 * 86_400
# A cron field is made of numbers, names (jan, mon), "*", "?" and "L", joined by
# , - / and #. croniter's H (hashed) and R (random) are refused: each process would
# pick its own instants.
_TOKEN = re.compile(r"^(\*|\?|[0-9]{1,4}|[a-zA-Z]{3}|[0-9]{0,2}[lL])$")
_SEPARATORS = re.compile(r"[,\-/#]")
MAX_CRON_LENGTH = 200
MAX_TIMEZONE_LENGTH = 64
_EPOCH = datetime.datetime(1970, 1, 1)
_UTC = datetime.timezone.utc


@dataclass(frozen=True)
class Schedule:
    """A validated schedule: a cron expression in a timezone, or a fixed interval."""

    cron: str  # as the user wrote it
    timezone: str
    expression: str | None  # the 5-field expression (macros expanded); None for @every
    every_seconds: int | None

    def next_after(self, moment):
        """Return the first firing instant strictly after ``moment``."""
        if self.every_seconds:
            elapsed = int((moment - _EPOCH).total_seconds())
            return _EPOCH + datetime.timedelta(seconds=(elapsed // self.every_seconds + 1) * self.every_seconds)
        return _to_utc(croniter(self.expression, self._local(moment)).get_next(datetime.datetime))

    def latest_at_or_before(self, moment):
        """Return the last firing instant at or before ``moment``."""
        if self.every_seconds:
            elapsed = (moment - _EPOCH).total_seconds()
            return _EPOCH + datetime.timedelta(seconds=int(elapsed // self.every_seconds) * self.every_seconds)
        # Firing instants are whole minutes: anything before the next second counts.
        start = moment.replace(microsecond=0) + datetime.timedelta(seconds=1)
        return _to_utc(croniter(self.expression, self._local(start)).get_prev(datetime.datetime))

    def upcoming(self, moment, count=5):
        """Return the next ``count`` firing instants after ``moment``."""
        instants = []
        for _ in range(count):
            moment = self.next_after(moment)
            instants.append(moment)
        return instants

    def local(self, moment):
        """Return a UTC instant as an aware datetime in the schedule's timezone."""
        return self._local(moment)

    def _local(self, moment):
        return moment.replace(tzinfo=_UTC).astimezone(zoneinfo.ZoneInfo(self.timezone))


def _to_utc(aware):
    return aware.astimezone(_UTC).replace(tzinfo=None)


def parse_schedule(cron, timezone="UTC"):
    """Return the Schedule for ``cron`` in ``timezone``, or raise 422 naming the field."""
    timezone = parse_timezone(timezone)
    if not isinstance(cron, str) or not cron.strip():
        raise ValidationFailed("cron", "cron is required: a 5-field expression, a macro or @every <n>s|m|h.")
    text = " ".join(cron.split())
    if len(text) > MAX_CRON_LENGTH:
        raise ValidationFailed("cron", f"cron must be at most {MAX_CRON_LENGTH} characters.")
    if text.startswith("@every"):
        return Schedule(text, timezone, None, _every_seconds(text))
    if text.startswith("@"):
        if text.lower() not in MACROS:
            raise ValidationFailed("cron", f"Unknown macro {text!r}: use {', '.join(MACROS)} or @every <n>s|m|h.")
        expression = MACROS[text.lower()]
    else:
        expression = _checked_expression(text)
    schedule = Schedule(text, timezone, expression, None)
    try:
        schedule.next_after(datetime.datetime(2000, 1, 1))
    except Exception:  # croniter finds no instant (31 February) or rejects a value
        raise ValidationFailed("cron", f"{text!r} never fires.") from None
    return schedule


def parse_timezone(value):
    """Return an IANA timezone name that zoneinfo knows, or raise 422 on ``timezone``."""
    if value is None:
        return "UTC"
    if not isinstance(value, str) or not value or len(value) > MAX_TIMEZONE_LENGTH:
        raise ValidationFailed("timezone", "timezone must be an IANA name such as Europe/Berlin.")
    try:
        zoneinfo.ZoneInfo(value)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ValidationFailed("timezone", f"Unknown timezone {value!r}: use an IANA name such as Europe/Berlin.") from None
    return value


def _every_seconds(text):
    match = _EVERY.match(text)
    if match is None:
        raise ValidationFailed("cron", "@every takes a whole number and a unit: @every 30s, @every 5m, @every 2h.")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if not 1 <= seconds <= MAX_EVERY_SECONDS:
        raise ValidationFailed("cron", "@every must be at least 1 second and at most 366 days.")
    return seconds


def _checked_expression(text):
    fields = text.split(" ")
    if len(fields) != 5:
        raise ValidationFailed("cron", "A cron expression has 5 fields: minute hour day-of-month month day-of-week.")
    for part in fields:
        if not all(_TOKEN.match(token) for token in _SEPARATORS.split(part) if token):
            raise ValidationFailed("cron", f"{part!r} is not a valid cron field.")
    try:
        valid = croniter.is_valid(text)
    except Exception:
        valid = False
    if not valid:
        raise ValidationFailed("cron", f"{text!r} is not a valid cron expression.")
    return text
