"""The values that cross the sandbox boundary: a job in, an outcome out."""
import enum
from dataclasses import dataclass, field


class Status(str, enum.Enum):
    """How one execution ended (docs/api.md §6 and §10)."""

    OK = "ok"  # the script returned a value that became a response
    SCRIPT_ERROR = "script_error"  # the script raised an error or does not compile
    BAD_SCRIPT_RESPONSE = "bad_script_response"  # the return value cannot be a response
    TIMEOUT = "timeout"  # timeout_seconds passed; the executor process was killed
    LIMIT_EXCEEDED = "limit_exceeded"  # a sandbox knob was exceeded; Outcome.limit names it
    INTERNAL_ERROR = "internal_error"  # the platform failed: host function, executor process


@dataclass(frozen=True)
class CompileError:
    """Where and why a Lua source does not compile."""

    line: int | None
    message: str


@dataclass(frozen=True)
class ExecutionJob:
    """One script run: source, globals, limits and the host modules it may call.

    ``globals`` holds plain JSON-like values (``bytes`` allowed for raw strings such
    as a request body); each top-level key becomes a global. ``limits`` has all six
    knobs. ``host_api`` lists ``(module, (fn, ...))`` pairs, e.g. ``("kv", ("get",))``.
    ``app`` names whose warm runtime the run may share (the runs of one app); a job
    without one runs in a runtime of its own.
    """

    source: str
    chunk_name: str
    globals: dict
    limits: dict
    timeout_seconds: float
    host_api: tuple = ()
    app: str | None = None


@dataclass(frozen=True)
class ScriptResponse:
    """The HTTP response a script's return value maps to (docs/api.md §6)."""

    status: int
    headers: tuple  # ((name, value), ...), the content type included
    body: bytes


@dataclass(frozen=True)
class Outcome:
    """How one execution ended, with what it logged and consumed."""

    status: Status
    response: ScriptResponse | None = None  # set when status is OK
    error: dict | None = None  # {"message": str, "line": int | None} unless OK
    limit: str | None = None  # the knob, when status is LIMIT_EXCEEDED
    logs: tuple = ()  # ((level, message, at), ...); level info|warn|error, at unix time
    usage: dict = field(default_factory=lambda: {"instructions": 0, "memory_peak_bytes": 0})
    duration_ms: float = 0.0
    # For INTERNAL_ERROR: what failed outside the script when it was a failure a caller
    # may retry ("database_unavailable", "storage_full"), as the web process tells.
    cause: str | None = None
