"""Build sandbox jobs for tests with sensible defaults."""
import json

from picloud.sandbox import BUILTIN_DEFAULTS, ExecutionJob


def make_job(source, *, globals=None, timeout=5, host_api=(), chunk_name="main", app="tests", **limits):
    """Return an ExecutionJob running ``source`` with the default limits but ``limits``.

    Every job shares the warm runtime of one app unless ``app`` says otherwise, so
    each test also checks that what earlier tests ran left nothing behind.
    """
    return ExecutionJob(
        source=source,
        chunk_name=chunk_name,
        globals=globals if globals is not None else {},
        limits={**BUILTIN_DEFAULTS, **limits},
        timeout_seconds=timeout,
        host_api=host_api,
        app=app,
    )


def body_json(outcome):
    """Return the decoded JSON body of an OK outcome."""
    assert outcome.status.value == "ok", outcome
    return json.loads(outcome.response.body)


def body_text(outcome):
    """Return the text body of an OK outcome."""
    assert outcome.status.value == "ok", outcome
    return outcome.response.body.decode("utf-8")
