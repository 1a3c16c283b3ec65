"""docs/api.md §9: the retry policy — validation, backoff maths, jitter bounds (pure)."""
import random

import pytest

from picloud.errors import ValidationFailed
from picloud.outbox.retry import DEFAULT_RETRY, base_delay_ms, has_attempts_left, next_delay_ms, validate_retry


def policy(**changes):
    return {**DEFAULT_RETRY, "jitter": 0.0, **changes}


def test_absent_policy_is_the_documented_defaults():
    assert validate_retry(None) == {
        "max_attempts": 5,
        "backoff": "exponential",
        "base_delay_ms": 1000,
        "max_delay_ms": 300000,
        "jitter": 0.2,
    }


def test_a_partial_policy_is_completed_with_defaults():
    assert validate_retry({"max_attempts": 2, "backoff": "linear"}) == {
        **DEFAULT_RETRY,
        "max_attempts": 2,
        "backoff": "linear",
    }


@pytest.mark.parametrize(
    "value, field",
    [
        ("fast", "retry"),
        ([], "retry"),
        ({"tries": 3}, "retry.tries"),
        ({"max_attempts": 0}, "retry.max_attempts"),
        ({"max_attempts": 2.5}, "retry.max_attempts"),
        ({"max_attempts": True}, "retry.max_attempts"),
        ({"max_attempts": 101}, "retry.max_attempts"),
        ({"backoff": "fibonacci"}, "retry.backoff"),
        ({"base_delay_ms": -1}, "retry.base_delay_ms"),
        ({"base_delay_ms": "10"}, "retry.base_delay_ms"),
        ({"max_delay_ms": 10, "base_delay_ms": 20}, "retry.max_delay_ms"),
        ({"max_delay_ms": 86_400_001}, "retry.max_delay_ms"),
        ({"jitter": 1.5}, "retry.jitter"),
        ({"jitter": -0.1}, "retry.jitter"),
        ({"jitter": "0.2"}, "retry.jitter"),
    ],
)
def test_invalid_settings_name_their_field(value, field):
    with pytest.raises(ValidationFailed) as caught:
        validate_retry(value)
    assert caught.value.status == 422
    assert caught.value.extra["field"] == field


@pytest.mark.parametrize(
    "backoff, expected",
    [
        ("exponential", [100, 200, 400, 800, 1600]),
        ("linear", [100, 200, 300, 400, 500]),
        ("constant", [100, 100, 100, 100, 100]),
    ],
)
def test_delay_after_each_failed_attempt(backoff, expected):
    p = policy(backoff=backoff, base_delay_ms=100)
    assert [base_delay_ms(p, n) for n in range(1, 6)] == expected


@pytest.mark.parametrize("backoff", ["exponential", "linear", "constant"])
def test_delays_are_capped_at_max_delay(backoff):
    p = policy(backoff=backoff, base_delay_ms=700, max_delay_ms=1000)
    assert all(base_delay_ms(p, n) <= 1000 for n in range(1, 200))
    assert base_delay_ms(p, 199) == (700 if backoff == "constant" else 1000)


def test_a_huge_attempt_number_does_not_overflow():
    assert base_delay_ms(policy(max_delay_ms=5000), 10_000) == 5000


def test_without_jitter_the_delay_is_exact():
    p = policy(base_delay_ms=250)
    assert next_delay_ms(p, 3, random.Random(1)) == 1000


def test_jitter_spreads_uniformly_within_bounds():
    rng = random.Random(42)
    p = policy(base_delay_ms=1000, jitter=0.2)
    samples = [next_delay_ms(p, 1, rng) for _ in range(5000)]
    assert min(samples) >= 800 and max(samples) <= 1200
    # Uniform over ±20%: both halves get about as many, and the ends are reached.
    below = sum(1 for s in samples if s < 1000)
    assert 2200 < below < 2800
    assert min(samples) < 820 and max(samples) > 1180


def test_jitter_applies_after_the_cap():
    rng = random.Random(7)
    p = policy(base_delay_ms=1000, max_delay_ms=2000, jitter=0.5)
    samples = [next_delay_ms(p, 10, rng) for _ in range(2000)]
    assert min(samples) >= 1000 and max(samples) <= 3000
    assert max(samples) > 2000  # the spread is around the capped delay, both ways


def test_attempts_left_counts_up_to_max_attempts():
    p = policy(max_attempts=3)
    assert [has_attempts_left(p, n) for n in (1, 2, 3)] == [True, True, False]
