"""Warm hardened Lua runtimes, one per app: the only Python module that imports lupa.

An ``AppRuntime`` is a ``LuaRuntime`` booted once with ``boot.lua`` that serves the
runs of one app in one executor process: its scripts are compiled once per version,
and every run gets a fresh environment, coroutine, limits and random seed, then a
full collection (docs/sandbox.md "Runtime lifecycle"). ``WarmRuntimes`` keeps a
few of them (an LRU; apps never share one) and throws one away after a limit
error, an internal error, past a heap bound or after ``RUNS_PER_RUNTIME`` runs.

No Python object ever reaches script code: the runtime is created without the
Python bridge, the two callbacks boot.lua receives are hidden in its closures, and
everything crossing the boundary is bytes, numbers, booleans or nil.
"""
import base64
import collections
import functools
import logging
import math
import os
import re
from pathlib import Path

import lupa.lua54 as lupa

from .helpers import GROWTH, HELPERS, HelperError
from .outcome import CompileError, Status
from .protocol import WARM_APPS_PER_EXECUTOR

log = logging.getLogger(__name__)

BOOT_SOURCE = Path(__file__).with_name("boot.lua").read_bytes()
JSON_SOURCE = Path(__file__).with_name("json.lua").read_bytes()
WORLD_SOURCE = Path(__file__).with_name("world.lua").read_bytes()
LUA_VERSION = "Lua %d.%d" % lupa.LUA_VERSION

# Lua copies at most 59 bytes of a chunk name into error messages.
_CHUNK_NAME_BYTES = 40
_UNSAFE_NAME = re.compile(rb"[^A-Za-z0-9_.\-]")
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Memory a host function's result must leave free before it is pushed into Lua:
# an allocation failure outside a protected call would abort the process.
_PUSH_HEADROOM = 64 * 1024
_COMPILE_MEMORY = 256 * 1024 * 1024
# How deep the tables of a job's globals may nest (a request's JSON body among them).
MAX_GLOBALS_DEPTH = 256
# Nesting of the globals' own tables (1: the globals, 2: request, event, ctx): a null
# field there is nil, a null deeper down is data (json.null).
_FIELDS_DEPTH = 2
_INT64 = range(-(2**63), 2**63)

# Compiled chunks one runtime keeps (script versions of its app).
CHUNKS_PER_RUNTIME = 64
# Runs after which a runtime is rebuilt: its string hash seed and interned strings
# live as long as it does.
RUNS_PER_RUNTIME = 1000
# Heap a runtime may keep after a run's full collection, above its booted size
# (cached chunks, interned strings); beyond it the runtime is rebuilt.
HEAP_BOUND_BYTES = 8 * 1024 * 1024
# Outcomes after which a runtime is not reused: its state may be unusual (a hook
# tripped mid-library-call, an allocation failed, the host failed).
_DISCARDING = frozenset({"limit_exceeded", "internal_error"})

_LIMIT_MESSAGES = {
    "max_instructions": "the script ran more than {} Lua instructions (max_instructions)",
    "max_memory_bytes": "the script used more than {} bytes of memory (max_memory_bytes)",
    "max_call_depth": "calls nested deeper than {} (max_call_depth)",
    "max_string_bytes": "a string longer than {} bytes (max_string_bytes)",
    "max_table_entries": "a table with more than {} entries (max_table_entries)",
    "max_output_bytes": "response body and logs longer than {} bytes (max_output_bytes)",
    "max_http_requests": "more than {} outbound HTTP requests (max_http_requests)",
}
# A request body that is not UTF-8 crosses to the web process as base64 (the host
# call is JSON): the one helper result that never reaches script code.
_WIRE_BASE64 = b"wire_base64"


def _deny_attribute(obj, name, value=None):
    raise AttributeError("attribute access is not allowed")


def _new_runtime():
    return lupa.LuaRuntime(
        encoding=None,
        register_eval=False,
        register_builtins=False,
        unpack_returned_tuples=True,
        attribute_handlers=(_deny_attribute, _deny_attribute),
        # 0 = no limit yet, but with lupa's counting allocator so one can be set.
        max_memory=0,
    )


def check_compile(source):
    """Return a CompileError if ``source`` does not compile as Lua text, else None.

    Only compiles, in a throwaway runtime; the chunk is never run.
    """
    lua = _new_runtime()
    lua.set_max_memory(_COMPILE_MEMORY)
    compiles = lua.execute(
        b"local load = load\n"
        # Without debug.traceback lupa adds no traceback to errors.
        b"debug = nil\n"
        b"return function(source)\n"
        b"  local f, err = load(source, '=source', 't', {})\n"
        b"  if f then return true end\n"
        b"  return false, err\n"
        b"end"
    )
    result = compiles(_source_bytes(source))
    if result is True:
        return None
    line, message = split_location(result[1], b"source")
    return CompileError(line=line, message=message)


def _source_bytes(source):
    return source.encode("utf-8", "replace")


@functools.lru_cache(maxsize=1024)
def chunk_name_of(name):
    """Return the chunk name Lua error messages will carry for a script name."""
    raw = _UNSAFE_NAME.sub(b"_", str(name).encode("utf-8", "replace"))[:_CHUNK_NAME_BYTES]
    return raw or b"script"


def split_location(message, chunk_name):
    """Split ``chunk:LINE: text`` into (line, text); other messages have no line."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else str(message)
    prefix = chunk_name.decode("ascii") + ":"
    if text.startswith(prefix):
        number, sep, rest = text[len(prefix):].partition(": ")
        if sep and number.isdigit():
            return int(number), rest
    return None, text


class _Bridge:
    """The three callables boot.lua receives. They never raise into Lua."""

    def __init__(self):
        self.on_log = None
        self.on_call = None
        self.runtime = None  # set during a run, to check memory headroom
        self.max_string = 0  # the run's max_string_bytes, for helper results

    def log(self, level, message):
        try:
            self.on_log(level.decode("ascii"), message)
        except BaseException:  # an exception here would reach Lua as a Python object
            log.exception("log sink failed")

    def call(self, module, fn, args):
        try:
            status, payload = self.on_call(module.decode(), fn.decode(), args)
            status = status.encode("ascii")
        except BaseException:
            log.exception("host call failed in the executor")
            return b"abort", b"host call failed"
        if not self._has_room_for(len(payload)):
            return (b"oom",)
        return status, payload

    def helper(self, name, *args):
        """Compute a crypto/encoding/time helper (helpers.py); return (status, value)."""
        try:
            if name == _WIRE_BASE64:
                return b"ok", base64.b64encode(args[0])
            first = args[0] if args else None
            if isinstance(first, bytes) and len(first) * GROWTH.get(name, 1) > 4 * self.max_string + 1024:
                return b"limit", b"max_string_bytes"
            result = HELPERS[name](*args)
        except HelperError as exc:
            return b"error", str(exc).encode("utf-8")
        except BaseException:  # an exception here would reach Lua as a Python object
            log.exception("helper %r failed", name)
            return b"abort", b"helper failed"
        if isinstance(result, bytes):
            if len(result) > self.max_string:
                return b"limit", b"max_string_bytes"
            if not self._has_room_for(len(result)):
                return (b"oom",)
        return b"ok", result

    def _has_room_for(self, size):
        runtime = self.runtime
        if runtime is None:
            return True
        limit = runtime.get_max_memory()
        return limit == 0 or limit - runtime.get_memory_used() > size + _PUSH_HEADROOM


@functools.cache
def _bytecode(source):
    """Return a sandbox Lua file compiled to bytecode, made once per process.

    Parsing boot.lua is most of a runtime's boot time. Its bytecode and json.lua's
    are produced here, by this process's own Lua, from the packaged sources: the
    only binary chunks the sandbox ever loads (scripts can load text only). They
    are stripped of debug info, which halves their load time; the files are
    written to need none.
    """
    return _new_runtime().execute(
        b"local source = ...\n"
        b"return string.dump(assert(load(source, '=[sandbox]', 't')), true)",
        source,
    )


class AppRuntime:
    """A booted Lua runtime serving the runs of one app, one run at a time."""

    def __init__(self):
        self._bridge = _Bridge()
        self._lua = _new_runtime()
        load = self._lua.globals()[b"load"]
        boot = load(_bytecode(BOOT_SOURCE), b"=[sandbox]", b"b")
        (self._compile, self._setup, self._run, self._report, self._usage, self._finish,
         self._sethook, self._null) = boot(
            self._bridge.log, self._bridge.call, _bytecode(JSON_SOURCE), _bytecode(WORLD_SOURCE),
            self._bridge.helper,
        )
        self._chunks = collections.OrderedDict()
        self.runs = 0
        # What the booted runtime itself keeps; each run's cap is relative to its start.
        self.boot_bytes = int(self._finish())
        self.heap_bytes = self.boot_bytes

    def execute(self, job, globals, on_log, on_call):
        """Run one job; return (result dict, response body bytes).

        ``globals`` maps each global's name to a plain value (``bytes`` for raw
        strings), as ``protocol.decode_globals`` gives them.
        ``job`` has ``source``, ``chunk_name``, ``limits``, ``host_api`` and
        optionally ``script`` (a key naming the source's version);
        ``on_log(level, message_bytes)`` receives each log line and
        ``on_call(module, fn, args_json)`` answers host calls with (status, payload).
        Call ``finish`` after each run, before the next.
        """
        self.runs += 1
        self._bridge.on_log, self._bridge.on_call = on_log, on_call
        self._bridge.runtime = self._lua
        self._bridge.max_string = job["limits"]["max_string_bytes"]
        try:
            return self._execute(job, globals)
        finally:
            # Break the cycle runtime -> callbacks -> bridge -> runtime.
            self._bridge.runtime = self._bridge.on_log = self._bridge.on_call = None

    def finish(self):
        """Clear what the last run left and collect it; return the heap bytes kept."""
        self._lua.set_max_memory(0)
        self.heap_bytes = int(self._finish())
        return self.heap_bytes

    def _chunk(self, job, chunk):
        """Return the compiled chunk of the job's script, or a CompileError."""
        key = (job.get("script") or job["source"], chunk)
        compiled = self._chunks.get(key)
        if compiled is not None:
            self._chunks.move_to_end(key)
            return compiled
        fn = _values(self._compile(_source_bytes(job["source"]), chunk))
        if fn[0] is None:
            line, message = split_location(fn[1], chunk)
            compiled = CompileError(line=line, message=message)
        else:
            compiled = fn[0]
        self._chunks[key] = compiled
        if len(self._chunks) > CHUNKS_PER_RUNTIME:
            self._chunks.popitem(last=False)
        return compiled

    def _execute(self, job, globals):
        limits = job["limits"]
        chunk_name = chunk_name_of(job["chunk_name"])
        compiled = self._chunk(job, chunk_name)
        if isinstance(compiled, CompileError):
            return _result(Status.SCRIPT_ERROR, error=_error(compiled.message, compiled.line)), b""
        start_bytes = self._lua.get_memory_used()
        converter = _GlobalsConverter(self._lua, self._null, limits)
        try:
            globals_table = converter.convert(globals)
        except _GlobalsRefused as refused:
            return self._finish_run(refused.outcome, chunk_name, limits)
        globals_bytes = self._lua.get_memory_used() - start_bytes
        seed = os.urandom(16)
        prepared = _values(self._setup(
            limits["max_instructions"], limits["max_call_depth"], limits["max_string_bytes"],
            limits["max_table_entries"], limits["max_output_bytes"],
            chunk_name, compiled, globals_table,
            # What decoding the globals as JSON in Lua would cost, charged to the script.
            converter.size // 16, globals_bytes,
            _host_spec(job["host_api"]),
            int.from_bytes(seed[:8], "big", signed=True), int.from_bytes(seed[8:], "big", signed=True),
        ))
        if prepared[0] != b"ok":
            return self._finish_run(prepared, chunk_name, limits)
        # Heap at run start + the knob (the globals count as the script's): lauxlib
        # buffers allocate without Lua's emergency collection, so a cap relative
        # to boot would count garbage of earlier runs.
        self._lua.set_max_memory(self._lua.get_memory_used() - globals_bytes + limits["max_memory_bytes"])
        out_of_memory = False
        try:
            returned = _values(self._run())
        except lupa.LuaError as exc:
            # A limit tripped and the hook fired again in the runner itself, or
            # the runner could not allocate: lupa tells by the call's status.
            returned = None
            out_of_memory = isinstance(exc, lupa.LuaMemoryError)
        finally:
            self._lua.set_max_memory(0)
        if returned is None:
            self._sethook()
            returned = _values(self._report())
            if returned[0] is None and out_of_memory:
                returned = (b"limit", b"max_memory_bytes")
        return self._finish_run(returned, chunk_name, limits)

    def _finish_run(self, returned, chunk, limits):
        instructions, peak = _values(self._usage())
        usage = {"instructions": int(instructions), "memory_peak_bytes": int(peak)}
        kind = returned[0]
        if kind == b"ok":
            status, headers, body = returned[1], returned[2], returned[3]
            response = {"status": status, "headers": _header_pairs(headers)}
            return _result(Status.OK, response=response, usage=usage), body
        if kind == b"error":
            line, message = split_location(returned[1], chunk)
            if line is None and len(returned) > 2 and isinstance(returned[2], int):
                line = returned[2]
            return _result(Status.SCRIPT_ERROR, error=_error(message, line), usage=usage), b""
        if kind == b"bad":
            message = returned[1].decode("utf-8", "replace")
            return _result(Status.BAD_SCRIPT_RESPONSE, error=_error(message), usage=usage), b""
        if kind == b"limit" and returned[1].decode("ascii", "replace") in _LIMIT_MESSAGES:
            knob = returned[1].decode("ascii")
            line = returned[2] if len(returned) > 2 and isinstance(returned[2], int) else None
            message = _LIMIT_MESSAGES[knob].format(limits[knob])
            return _result(Status.LIMIT_EXCEEDED, error=_error(message, line), limit=knob, usage=usage), b""
        detail = returned[1] if len(returned) > 1 and isinstance(returned[1], bytes) else b""
        return internal_error(detail.decode("utf-8", "replace") or "the sandbox failed", usage), b""


class WarmRuntimes:
    """The warm runtimes of one executor process, one per app (an LRU).

    A job without an app gets a runtime of its own, thrown away after its run. A
    spare runtime, booted while the executor waits, serves the next app that has
    none, so booting stays off the request's path.
    """

    def __init__(self, capacity=WARM_APPS_PER_EXECUTOR, max_runs=RUNS_PER_RUNTIME, heap_bound=HEAP_BOUND_BYTES):
        self.capacity = capacity
        self.max_runs = max_runs
        self.heap_bound = heap_bound
        self._runtimes = collections.OrderedDict()
        self._spare = None

    def apps(self):
        """Return the apps holding a warm runtime, least recently used first."""
        return list(self._runtimes)

    def take(self, app):
        """Return the runtime to run a job of ``app`` in (None: a single-use one)."""
        runtime = self._runtimes.pop(app, None) if app is not None else None
        if runtime is None:
            runtime, self._spare = self._spare or AppRuntime(), None
        return runtime

    def give_back(self, app, runtime, status):
        """Finish a run of ``app``; keep the runtime warm unless it must be rebuilt."""
        try:
            heap = runtime.finish()
        except Exception:
            log.exception("could not clean up a runtime; dropping it")
            return
        if app is None or status in _DISCARDING or runtime.runs >= self.max_runs:
            return
        if heap > runtime.boot_bytes + self.heap_bound:
            return
        self._runtimes[app] = runtime
        while len(self._runtimes) > self.capacity:
            self._runtimes.popitem(last=False)

    def boot_spare(self):
        """Boot a spare runtime if there is none (call while idle)."""
        if self._spare is None:
            self._spare = AppRuntime()


class _GlobalsRefused(Exception):
    """Job globals the sandbox cannot take; ``outcome`` is what boot.lua would report."""

    def __init__(self, kind, detail):
        super().__init__(detail)
        self.outcome = (kind.encode("ascii"), detail.encode("utf-8", "replace"))


class _GlobalsConverter:
    """Turn a job's globals (plain Python values from the pool) into Lua tables.

    Far cheaper than decoding JSON in Lua. Only bytes, int, float, bool and
    the tables made here are handed to lupa: anything else would reach Lua as a
    Python object (docs/sandbox.md). Bounded as everything entering the sandbox:
    strings by max_string_bytes, tables by max_table_entries and nesting by
    MAX_GLOBALS_DEPTH (never lupa's own recursive conversion). A ``None`` field of
    a global's table (``ctx.principal``, ``event.prev_value``, ``request.json``) is
    nil; deeper down, inside the JSON values those fields carry (a request body, a
    KV value, a document), ``None`` is json.null, in objects as in arrays, so that
    they round-trip as ``json.decode`` and ``kv.get`` give them. Raw bytes come back
    byte for byte.
    """

    def __init__(self, lua, null, limits):
        self._table_from = lua.table_from
        self._null = null
        self._max_string = limits["max_string_bytes"]
        self._max_entries = limits["max_table_entries"]
        # About the length of the globals as JSON text: what the script is charged.
        self.size = 0

    def convert(self, globals):
        if not isinstance(globals, dict):
            raise _GlobalsRefused("internal", "globals: not an object")
        return self._object(globals, 1)

    def _object(self, items, depth):
        self._check_size(items, depth)
        table = {}
        null = self._null if depth > _FIELDS_DEPTH else None
        max_string, size = self._max_string, 0
        for key, value in items.items():
            # Field names and short values repeat run after run: their bytes are kept.
            raw = _UTF8.get(key)
            if raw is None:
                raw = self._string(key)
            elif len(raw) > max_string:
                raise _GlobalsRefused("limit", "max_string_bytes")
            size += len(raw)
            kind = type(value)
            if kind is str:
                text = _UTF8.get(value)
                if text is None:
                    value = self._string(value)
                elif len(text) > max_string:
                    raise _GlobalsRefused("limit", "max_string_bytes")
                else:
                    size += len(text)
                    value = text
            elif value is None:
                if null is None:
                    continue
                value = null
            elif kind is not bool:
                value = self._value(value, depth)
            table[raw] = value
        self.size += size
        return self._table_from(table)

    def _array(self, items, depth):
        self._check_size(items, depth)
        null = self._null
        return self._table_from([null if item is None else self._value(item, depth) for item in items])

    def _check_size(self, container, depth):
        if depth > MAX_GLOBALS_DEPTH:
            raise _GlobalsRefused("internal", f"globals: nested deeper than {MAX_GLOBALS_DEPTH}")
        if len(container) > self._max_entries:
            raise _GlobalsRefused("limit", "max_table_entries")
        self.size += 8 * len(container) + 2

    def _value(self, value, depth):
        kind = type(value)
        if kind is str:
            return self._string(value)
        if kind is bytes:
            return self._bytes(value)
        if kind is dict:
            return self._object(value, depth + 1)
        if kind is list:
            return self._array(value, depth + 1)
        if kind is bool:
            return value
        if kind is int and value in _INT64:
            return value
        if kind is int or kind is float:
            # Beyond 64 bits an integer becomes a float, as Lua reads its text.
            try:
                value = float(value)
            except OverflowError:
                value = math.inf
            if math.isfinite(value):
                return value
            raise _GlobalsRefused("internal", "globals: number out of range")
        raise _GlobalsRefused("internal", f"globals: a {kind.__name__} is not a JSON value")

    def _string(self, text):
        if type(text) is not str:
            raise _GlobalsRefused("internal", "globals: a key is not a string")
        try:
            raw = text.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            # A lone surrogate no decoder made: replaced, as JSON text would have it.
            raw = text.encode("utf-8", "replace")
        if len(raw) <= _UTF8_MAX_LENGTH:
            if len(_UTF8) >= _UTF8_MAX_ENTRIES:
                _UTF8.clear()
            _UTF8[text] = raw
        return self._bytes(raw)

    def _bytes(self, raw):
        if len(raw) > self._max_string:
            raise _GlobalsRefused("limit", "max_string_bytes")
        self.size += len(raw)
        return raw


# UTF-8 of short strings seen in globals (field names, methods, header names and
# values, slugs), kept per process: the same few repeat in every run.
_UTF8 = {}
_UTF8_MAX_ENTRIES = 4096
_UTF8_MAX_LENGTH = 64


def _values(returned):
    if isinstance(returned, tuple):
        return returned
    return (returned,)


def _host_spec(host_api):
    # A job's host_api arrives as lists; the same few specs repeat run after run.
    return _host_spec_text(tuple((module, tuple(fns)) for module, fns in host_api))


@functools.lru_cache(maxsize=256)
def _host_spec_text(host_api):
    # "module fn fn ...", one line per module: cheaper for boot.lua than JSON. The
    # pool lets only identifiers through; anything else would be a programming error.
    lines = []
    for module, fns in host_api:
        words = [module, *fns]
        if not all(_IDENTIFIER.fullmatch(word) for word in words):
            raise ValueError(f"invalid host module {module!r}")
        lines.append(" ".join(words))
    return "\n".join(lines).encode("ascii")


def _header_pairs(text):
    pairs = []
    for line in text.split(b"\n"):
        if line:
            name, _, value = line.partition(b":")
            # Header bytes go out as they are: latin-1 maps each byte to one character.
            pairs.append([name.decode("latin-1"), value.decode("latin-1")])
    return pairs


def internal_error(message, usage=None):
    """Return the result of a run the platform itself failed."""
    return _result(Status.INTERNAL_ERROR, error=_error(message), usage=usage)


def _error(message, line=None):
    return {"message": message, "line": line}


def _result(status, *, response=None, error=None, limit=None, usage=None):
    return {
        "status": status.value,
        "response": response,
        "error": error,
        "limit": limit,
        "usage": usage or {"instructions": 0, "memory_peak_bytes": 0},
    }
