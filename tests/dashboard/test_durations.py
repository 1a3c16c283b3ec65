"""Retry delays typed and shown in readable units (pure)."""
import pytest

from picloud.dashboard.triggers import format_duration, parse_duration_ms


def test_durations_read_and_write_in_readable_units():
    assert [parse_duration_ms(t) for t in ("500", "500 ms", "1s", "1.5 s", "2 min", "5m", "1 h", " 3 SEC ")] == [
        500, 500, 1000, 1500, 120_000, 300_000, 3_600_000, 3000,
    ]
    assert [format_duration(ms) for ms in (0, 250, 1000, 1500, 60_000, 90_000, 300_000, 7_200_000)] == [
        "0 ms", "250 ms", "1 s", "1.5 s", "1 min", "90 s", "5 min", "2 h",
    ]
    for bad in ("", "soon", "-1 s", "1 day"):
        with pytest.raises(ValueError):
            parse_duration_ms(bad)
