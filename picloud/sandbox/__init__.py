"""The Lua sandbox: limits, the script environment and the executor pool.

This package is the only code in PiCloud that imports lupa, and it imports nothing
else from PiCloud. docs/sandbox.md describes the attacks it answers and how.

- ``limits``: the six knobs, their defaults and ceilings, validation (docs/api.md §5).
- ``boot.lua`` + ``runtime``: a warm, hardened Lua 5.4 runtime per app in each
  executor and a fresh environment per run (docs/sandbox.md "Runtime lifecycle"),
  the script environment of docs/api.md §8 and the return-value mapping of §6.
- ``worker``: the executor process; ``pool``: the processes and their wall-clock
  timeouts, usable from greenlets (gevent) or threads.

Conventions scripts see (docs/api.md §8 states them for script authors):

- JSON: a table whose keys are exactly 1..n encodes as an array, any other table
  (the empty one included) as an object; integer keys of objects become strings.
  ``json.null`` keeps array positions; decoding gives ``json.null`` for every null.
- Host function arguments and results travel as JSON: a ``nil`` argument or
  ``json.null`` arrives as ``None``; a ``None`` result is ``nil``, a ``None`` inside a
  list or dict is ``json.null``.
- Job globals (``request``, ``event``, ``ctx``): ``None`` as a dict value is simply
  absent (``ctx.principal == nil``), ``None`` in a list is ``json.null``; ``bytes``
  become Lua strings byte for byte.
- ``max_call_depth`` counts every active function frame (library functions too)
  and is checked each time the instruction hook fires: a recursion deeper than the
  limit is stopped as soon as it runs long enough to be sampled.
- The execution log counts as a table leaving the sandbox: more than
  ``max_table_entries`` lines is a ``max_table_entries`` limit; the lines' bytes
  count toward ``max_output_bytes`` with the response body.
- ``max_string_bytes`` is checked by ``string.rep/format/gsub/char/pack``,
  ``utf8.char``, ``os.date``, ``table.concat``, ``json.encode/decode``, logs, host
  calls, the request and the response; ``..`` and same-length copies (``upper``,
  ``reverse``...) are bounded by ``max_memory_bytes``. C work the hook cannot see
  (``rep``, ``concat``, ``move``, ``sort``, ``unpack``, ``insert``/``remove``,
  ``gsub``, ``os.date``, JSON, ``load``) is charged to ``max_instructions``; tables
  with metatables take Lua paths under the hook.
- ``find``/``match``/``gmatch`` are Lua's own: a backtracking pattern is stopped
  by the process kill at ``timeout_seconds``, the bound for every C path.
- ``os.clock()`` counts this execution's CPU time only.
"""
from .errors import HostError, HostLimit, Overloaded
from .limits import (
    BUILTIN_CEILINGS,
    BUILTIN_DEFAULTS,
    KNOBS,
    InvalidSandbox,
    effective_limits,
    limits_from_env,
    validate_sandbox,
)
from .outcome import CompileError, ExecutionJob, Outcome, ScriptResponse, Status
from .pool import ExecutorPool
from .runtime import LUA_VERSION, MAX_GLOBALS_DEPTH, check_compile

__all__ = [
    "BUILTIN_CEILINGS",
    "BUILTIN_DEFAULTS",
    "KNOBS",
    "LUA_VERSION",
    "MAX_GLOBALS_DEPTH",
    "CompileError",
    "ExecutionJob",
    "ExecutorPool",
    "HostError",
    "HostLimit",
    "InvalidSandbox",
    "Outcome",
    "Overloaded",
    "ScriptResponse",
    "Status",
    "check_compile",
    "effective_limits",
    "limits_from_env",
    "validate_sandbox",
]
