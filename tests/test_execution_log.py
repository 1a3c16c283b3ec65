"""The batched execution log writer, one ``loop()`` step at a time, on the real database."""
import uuid

import pytest

from picloud.db import db
from picloud.executions import BATCH_SIZE, ExecutionLogWriter
from picloud.models import Execution, isoformat, utcnow


def record(app_id=999_001, **fields):
    now = utcnow()
    return {
        "id": str(uuid.uuid4()),
        "app_id": app_id,
        "script_id": 1,
        "source": "http",
        "status": "ok",
        "http_status": 200,
        "queued_at": isoformat(now),
        "started_at": isoformat(now),
        "finished_at": isoformat(now),
        "duration_ms": 1.5,
        "attempt": 1,
        "trigger_id": None,
        "trigger_depth": 0,
        "event_id": None,
        "parent_execution_id": None,
        "error": None,
        "logs": [{"level": "info", "message": "hi", "at": isoformat(now)}],
        "usage": {"instructions": 10, "memory_peak_bytes": 100},
        "http_calls": [],
        **fields,
    }


@pytest.fixture
def writer(database):
    yield ExecutionLogWriter()
    Execution.delete().where(Execution.app_id.between(999_000, 999_999)).execute()


def test_records_wait_in_memory_until_a_loop_writes_them(writer):
    execution = record()
    writer.record(execution)
    assert writer.pending() == 1
    assert not Execution.select().where(Execution.id == execution["id"]).exists()
    writer.loop()
    assert writer.pending() == 0
    assert Execution.get_by_id(execution["id"]).to_dict(exchange=False) == execution


def test_a_later_record_of_the_same_run_wins(writer):
    queued = record(status="queued", started_at=None, finished_at=None, http_status=None, logs=[], usage=None)
    writer.record(queued)
    writer.loop()
    done = {**queued, "status": "timeout", "error": {"message": "late", "line": None}}
    writer.record({**queued, "status": "running"})
    writer.record(done)
    writer.loop()
    stored = Execution.get_by_id(queued["id"])
    assert (stored.status, stored.error) == ("timeout", {"message": "late", "line": None})


def test_many_records_are_written_in_batches(writer):
    records = [record(app_id=999_002) for _ in range(BATCH_SIZE * 2 + 5)]
    for execution in records:
        writer.record(execution)
    assert writer.flush() == BATCH_SIZE
    writer.loop()
    assert Execution.select().where(Execution.app_id == 999_002).count() == len(records)


def test_forgetting_an_app_drops_its_queued_records(writer):
    writer.record(record(app_id=999_004))
    writer.record(record(app_id=999_005))
    writer.forget(lambda execution: execution["app_id"] == 999_004)
    writer.loop()
    assert not Execution.select().where(Execution.app_id == 999_004).exists()
    assert Execution.select().where(Execution.app_id == 999_005).exists()


def test_stop_flushes_what_is_queued(writer):
    writer.start()
    execution = record(app_id=999_006)
    writer.record(execution)
    writer.stop(timeout=5)
    assert Execution.select().where(Execution.id == execution["id"]).exists()


def test_json_columns_are_stored_as_the_exact_text_and_none_as_null(writer):
    execution = record(
        error=None,
        logs=[{"level": "info", "message": 'quote " backslash \\ nul \x00 tab \t é ✓', "at": "2026-01-01T00:00:00Z"}],
        input={"event": {"b": 1, "a": [1.25, None, True, {"z": "y"}]}},
        response=None,
    )
    writer.record(execution)
    writer.loop()
    text = db.execute_sql(f"SELECT input FROM executions WHERE id = {db.param}", (execution["id"],)).fetchone()[0]
    stored = Execution.get_by_id(execution["id"])
    assert (stored.logs, stored.input) == (execution["logs"], execution["input"])
    assert (stored.error, stored.response) == (None, None)
    assert text == '{"event":{"b":1,"a":[1.25,null,true,{"z":"y"}]}}'


def test_a_number_json_cannot_hold_does_not_stop_the_log(writer):
    execution = record(usage={"instructions": 10, "memory_peak_bytes": float("nan")})
    writer.record(execution)
    writer.loop()
    assert writer.pending() == 0
    assert Execution.get_by_id(execution["id"]).usage["instructions"] == 10
