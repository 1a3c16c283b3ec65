"""docs/api.md §14: parsing schedules and finding their instants (pure, fixed clock)."""
import datetime

import pytest

from picloud.errors import ValidationFailed
from picloud.outbox.schedule import parse_schedule

D = datetime.datetime


@pytest.mark.parametrize(
    "cron, after, first",
    [
        ("*/5 * * * *", D(2026, 5, 1, 10, 2), D(2026, 5, 1, 10, 5)),
        ("0 9 * * mon-fri", D(2026, 5, 1, 10, 0), D(2026, 5, 4, 9, 0)),  # Friday → Monday
        ("@hourly", D(2026, 5, 1, 10, 0), D(2026, 5, 1, 11, 0)),
        ("@daily", D(2026, 5, 1, 10, 0), D(2026, 5, 2, 0, 0)),
        ("@weekly", D(2026, 5, 1, 10, 0), D(2026, 5, 3, 0, 0)),  # Sunday 00:00
        ("@monthly", D(2026, 5, 1, 10, 0), D(2026, 6, 1, 0, 0)),
        ("@yearly", D(2026, 5, 1, 10, 0), D(2027, 1, 1, 0, 0)),
        ("@annually", D(2026, 5, 1, 10, 0), D(2027, 1, 1, 0, 0)),
        ("@every 1s", D(2026, 5, 1, 10, 0, 0, 500), D(2026, 5, 1, 10, 0, 1)),
        ("@every 15m", D(2026, 5, 1, 10, 7), D(2026, 5, 1, 10, 15)),
        ("@every 2h", D(2026, 5, 1, 11, 0), D(2026, 5, 1, 12, 0)),
    ],
)
def test_accepted_schedules_and_their_next_instant(cron, after, first):
    schedule = parse_schedule(cron)
    assert schedule.cron == cron and schedule.timezone == "UTC"
    assert schedule.next_after(after) == first
    upcoming = schedule.upcoming(after, 5)
    assert len(upcoming) == 5 and upcoming[0] == first and upcoming == sorted(set(upcoming))


@pytest.mark.parametrize(
    "cron",
    [
        "", "   ", None, 5, "* * * *", "* * * * * *", "61 * * * *", "* 24 * * *", "0 0 30 2 *",
        "@midnight", "@reboot", "@every", "@every 0s", "@every 1d", "@every -5s", "@every 367d",
        "@every 10000h", "H * * * *", "R * * * *", "hello", "*/0 * * * *", "x" * 300,
    ],
)
def test_bad_expressions_are_refused_on_the_cron_field(cron):
    with pytest.raises(ValidationFailed) as refused:
        parse_schedule(cron)
    assert refused.value.extra["field"] == "cron" and refused.value.status == 422


@pytest.mark.parametrize("timezone", ["Mars/Olympus", "", "../../etc/passwd", "utc+2", 5, "A" * 100])
def test_bad_timezones_are_refused_on_the_timezone_field(timezone):
    with pytest.raises(ValidationFailed) as refused:
        parse_schedule("@daily", timezone)
    assert refused.value.extra["field"] == "timezone"


def test_a_timezone_moves_the_utc_instants():
    berlin = parse_schedule("0 9 * * *", "Europe/Berlin")
    assert berlin.next_after(D(2026, 1, 10, 0, 0)) == D(2026, 1, 10, 8, 0)  # CET, UTC+1
    assert berlin.next_after(D(2026, 7, 10, 0, 0)) == D(2026, 7, 10, 7, 0)  # CEST, UTC+2


def test_every_counts_from_the_epoch_in_any_timezone():
    utc = parse_schedule("@every 15m")
    kolkata = parse_schedule("@every 15m", "Asia/Kolkata")
    moment = D(2026, 5, 1, 10, 7, 30)
    assert utc.next_after(moment) == kolkata.next_after(moment) == D(2026, 5, 1, 10, 15)


def test_the_latest_instant_at_or_before_a_moment():
    schedule = parse_schedule("*/5 * * * *")
    assert schedule.latest_at_or_before(D(2026, 5, 1, 10, 7, 59)) == D(2026, 5, 1, 10, 5)
    assert schedule.latest_at_or_before(D(2026, 5, 1, 10, 5)) == D(2026, 5, 1, 10, 5)
    assert schedule.latest_at_or_before(D(2026, 5, 1, 10, 5, 0, 1)) == D(2026, 5, 1, 10, 5)
    every = parse_schedule("@every 1s")
    assert every.latest_at_or_before(D(2026, 5, 1, 10, 0, 3, 999_999)) == D(2026, 5, 1, 10, 0, 3)


# Daylight saving time in New York, 2026: clocks jump from 02:00 to 03:00 on 8 March
# (UTC-5 → UTC-4) and fall back from 02:00 to 01:00 on 1 November (UTC-4 → UTC-5).


def instants_on(schedule, start, end):
    found, moment = [], start
    while (moment := schedule.next_after(moment)) < end:
        found.append(moment)
    return found


def test_spring_forward_a_skipped_local_time_fires_at_the_first_moment_after_the_gap():
    schedule = parse_schedule("30 2 * * *", "America/New_York")
    days = instants_on(schedule, D(2026, 3, 7, 0, 0), D(2026, 3, 10, 0, 0))
    assert days == [
        D(2026, 3, 7, 7, 30),  # 02:30 EST
        D(2026, 3, 8, 7, 0),  # 02:30 does not exist: 03:00 EDT
        D(2026, 3, 9, 6, 30),  # 02:30 EDT
    ]


def test_spring_forward_an_hourly_schedule_runs_23_times_that_day():
    schedule = parse_schedule("0 * * * *", "America/New_York")
    day = instants_on(schedule, D(2026, 3, 8, 4, 59), D(2026, 3, 9, 4, 0))  # local midnight to midnight
    assert len(day) == 23
    assert [schedule.local(moment).hour for moment in day[:4]] == [0, 1, 3, 4]


def test_fall_back_a_repeated_local_time_fires_at_both_instants():
    schedule = parse_schedule("30 1 * * *", "America/New_York")
    days = instants_on(schedule, D(2026, 10, 31, 12, 0), D(2026, 11, 2, 12, 0))
    assert days == [
        D(2026, 11, 1, 5, 30),  # 01:30 EDT
        D(2026, 11, 1, 6, 30),  # 01:30 EST, an hour later
        D(2026, 11, 2, 6, 30),
    ]


def test_fall_back_an_hourly_schedule_runs_25_times_that_day():
    schedule = parse_schedule("0 * * * *", "America/New_York")
    day = instants_on(schedule, D(2026, 11, 1, 3, 59), D(2026, 11, 2, 5, 0))
    assert len(day) == 25
    assert len(set(day)) == 25  # 25 distinct instants: 01:00 comes twice, an hour apart


def test_a_daily_schedule_keeps_its_local_time_across_both_changes():
    schedule = parse_schedule("@daily", "Europe/Berlin")
    around_spring = instants_on(schedule, D(2026, 3, 27, 0, 0), D(2026, 3, 31, 0, 0))
    assert [schedule.local(m).hour for m in around_spring] == [0, 0, 0, 0]
    assert around_spring[1] - around_spring[0] == datetime.timedelta(hours=24)
    assert around_spring[2] - around_spring[1] == datetime.timedelta(hours=23)  # the 29th is short
