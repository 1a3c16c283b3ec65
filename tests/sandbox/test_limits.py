"""Sandbox knobs: validation of a script's overrides, environment defaults and ceilings."""
import logging

import pytest

from picloud.sandbox import (
    BUILTIN_CEILINGS,
    BUILTIN_DEFAULTS,
    KNOBS,
    InvalidSandbox,
    effective_limits,
    limits_from_env,
    validate_sandbox,
)


def test_knobs_are_the_seven_of_the_contract_in_order():
    assert KNOBS == (
        "max_instructions",
        "max_memory_bytes",
        "max_call_depth",
        "max_string_bytes",
        "max_table_entries",
        "max_output_bytes",
        "max_http_requests",
    )
    assert (BUILTIN_DEFAULTS["max_http_requests"], BUILTIN_CEILINGS["max_http_requests"]) == (10, 100)
    assert BUILTIN_DEFAULTS["max_instructions"] == 10_000_000
    assert BUILTIN_CEILINGS["max_memory_bytes"] == 268_435_456
    assert all(BUILTIN_DEFAULTS[k] <= BUILTIN_CEILINGS[k] for k in KNOBS)


def test_absent_or_empty_sandbox_means_defaults():
    assert validate_sandbox(None, BUILTIN_CEILINGS) == {}
    assert validate_sandbox({}, BUILTIN_CEILINGS) == {}


def test_valid_overrides_are_returned():
    overrides = {"max_call_depth": 50, "max_instructions": 1000}
    assert validate_sandbox(overrides, BUILTIN_CEILINGS) == overrides


def test_value_equal_to_the_ceiling_is_accepted():
    assert validate_sandbox({"max_call_depth": 1000}, BUILTIN_CEILINGS) == {"max_call_depth": 1000}


def test_unknown_knob_names_its_field():
    with pytest.raises(InvalidSandbox) as caught:
        validate_sandbox({"max_cpu": 5}, BUILTIN_CEILINGS)
    assert caught.value.code == "validation_failed"
    assert caught.value.field == "sandbox.max_cpu"


@pytest.mark.parametrize("value", [0, -1, 1.5, 10.0, "100", None, True, False, [1], {}])
def test_value_that_is_not_a_positive_integer_fails(value):
    with pytest.raises(InvalidSandbox) as caught:
        validate_sandbox({"max_instructions": value}, BUILTIN_CEILINGS)
    assert caught.value.code == "validation_failed"
    assert caught.value.field == "sandbox.max_instructions"
    assert caught.value.message


def test_value_above_the_ceiling_reports_requested_and_ceiling():
    with pytest.raises(InvalidSandbox) as caught:
        validate_sandbox({"max_instructions": 100_000_001}, BUILTIN_CEILINGS)
    error = caught.value
    assert error.code == "exceeds_ceiling"
    assert error.field == "sandbox.max_instructions"
    assert error.extra == {"requested": 100_000_001, "ceiling": 100_000_000}


def test_sandbox_that_is_not_an_object_fails():
    with pytest.raises(InvalidSandbox) as caught:
        validate_sandbox([1, 2], BUILTIN_CEILINGS)
    assert (caught.value.code, caught.value.field) == ("validation_failed", "sandbox")


def test_ceilings_from_the_environment_apply():
    defaults, ceilings = limits_from_env({"PICLOUD_SANDBOX_CEILING_MAX_CALL_DEPTH": "300"})
    with pytest.raises(InvalidSandbox) as caught:
        validate_sandbox({"max_call_depth": 301}, ceilings)
    assert caught.value.extra == {"requested": 301, "ceiling": 300}


def test_no_environment_gives_the_built_ins():
    defaults, ceilings = limits_from_env({})
    assert defaults == BUILTIN_DEFAULTS
    assert ceilings == BUILTIN_CEILINGS
    assert defaults is not BUILTIN_DEFAULTS


def test_environment_overrides_defaults_and_ceilings():
    defaults, ceilings = limits_from_env({
        "PICLOUD_SANDBOX_DEFAULT_MAX_INSTRUCTIONS": "5000",
        "PICLOUD_SANDBOX_CEILING_MAX_OUTPUT_BYTES": " 2048 ",
    })
    assert defaults["max_instructions"] == 5000
    assert ceilings["max_output_bytes"] == 2048
    assert defaults["max_output_bytes"] == 2048  # the default was clamped to the new ceiling


@pytest.mark.parametrize("raw", ["", "abc", "0", "-5", "1.5", "1e6", "1_000"])
def test_invalid_environment_value_warns_and_is_ignored(raw, caplog):
    with caplog.at_level(logging.WARNING):
        defaults, _ = limits_from_env({"PICLOUD_SANDBOX_DEFAULT_MAX_CALL_DEPTH": raw})
    assert defaults["max_call_depth"] == BUILTIN_DEFAULTS["max_call_depth"]
    assert "PICLOUD_SANDBOX_DEFAULT_MAX_CALL_DEPTH" in caplog.text


def test_default_above_its_ceiling_is_clamped_with_a_warning(caplog):
    with caplog.at_level(logging.WARNING):
        defaults, ceilings = limits_from_env({"PICLOUD_SANDBOX_DEFAULT_MAX_CALL_DEPTH": "5000"})
    assert defaults["max_call_depth"] == ceilings["max_call_depth"] == 1000
    assert "max_call_depth" in caplog.text


def test_effective_limits_put_overrides_on_defaults():
    limits = effective_limits({"max_call_depth": 10}, BUILTIN_DEFAULTS)
    assert list(limits) == list(KNOBS)
    assert limits["max_call_depth"] == 10
    assert limits["max_instructions"] == BUILTIN_DEFAULTS["max_instructions"]
    assert effective_limits(None, BUILTIN_DEFAULTS) == BUILTIN_DEFAULTS


def test_effective_limits_clamp_to_lowered_ceilings():
    ceilings = {**BUILTIN_CEILINGS, "max_call_depth": 20}
    assert effective_limits({"max_call_depth": 500}, BUILTIN_DEFAULTS, ceilings)["max_call_depth"] == 20


def test_max_http_requests_follows_the_same_rules_as_every_knob(caplog):
    with pytest.raises(InvalidSandbox) as caught:
        validate_sandbox({"max_http_requests": 101}, BUILTIN_CEILINGS)
    assert (caught.value.code, caught.value.field) == ("exceeds_ceiling", "sandbox.max_http_requests")
    assert caught.value.extra == {"requested": 101, "ceiling": 100}
    defaults, ceilings = limits_from_env({
        "PICLOUD_SANDBOX_DEFAULT_MAX_HTTP_REQUESTS": "3", "PICLOUD_SANDBOX_CEILING_MAX_HTTP_REQUESTS": "20",
    })
    assert (defaults["max_http_requests"], ceilings["max_http_requests"]) == (3, 20)
    with caplog.at_level(logging.WARNING):
        defaults, _ = limits_from_env({"PICLOUD_SANDBOX_DEFAULT_MAX_HTTP_REQUESTS": "many"})
    assert defaults["max_http_requests"] == 10
    assert "PICLOUD_SANDBOX_DEFAULT_MAX_HTTP_REQUESTS" in caplog.text
