"""Messages between the web process and its executor processes.

A frame is 8 bytes — the lengths of a JSON object and of a binary payload, both
big-endian — then the JSON text, then the payload. JSON and raw bytes only, never
pickle: a compromised executor must not be able to make the web process run code,
and the web process bounds and validates everything it reads.

Parent -> executor: ``job`` (payload: the globals in ``marshal`` format), ``reply``
to a host call (payload: the result as JSON text). ``marshal`` only travels this
way: the executor trusts its parent, which sends it code anyway, and ``marshal`` is
far cheaper than JSON for the globals of every run; the web process never reads it.
Executor -> parent: ``ready``, ``log`` (a batch of entries), ``call`` (payload: the
arguments as a JSON array) and ``result`` (payload: the usage, 16 bytes, then the
response body). A result's header holds no per-run number, only the outcome and the
logs not yet sent: for the runs of one script it is most often the same bytes, which
the web process checks once.
"""
import json
import marshal
import math
import os
import re
import struct

from dataclasses import dataclass

from .errors import ProtocolError
from .limits import KNOBS
from .outcome import ScriptResponse, Status

_LENGTHS = struct.Struct(">II")
# A result's usage: instructions, peak memory bytes.
USAGE = struct.Struct(">QQ")

# Exit status of an executor process that ran out of memory mid-job.
EXIT_OUT_OF_MEMORY = 3

# Apps whose warm runtimes one executor keeps (least recently used dropped first);
# the pool mirrors the list to send an app's runs where its runtime is.
WARM_APPS_PER_EXECUTOR = 32

# What the web process accepts from an executor. A result's log batch and headers
# fit easily; payloads are response bodies (at most the 16 MiB output ceiling) and
# host call arguments.
MAX_HEADER_FROM_EXECUTOR = 8 * 1024 * 1024
MAX_PAYLOAD_FROM_EXECUTOR = 64 * 1024 * 1024
# What an executor accepts from the web process (source, globals, host results).
MAX_HEADER_FROM_PARENT = 16 * 1024 * 1024
MAX_PAYLOAD_FROM_PARENT = 256 * 1024 * 1024


def encode_frame(header, payload=b""):
    """Return the bytes of one frame."""
    return frame_of(encode_header(header), payload)


def encode_header(header):
    """Return the JSON bytes of a frame's header (for ``frame_of``)."""
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return text.encode("utf-8", "surrogateescape")


def frame_of(header_bytes, payload=b""):
    """Return the bytes of one frame from an encoded header and a payload."""
    return b"".join((_LENGTHS.pack(len(header_bytes), len(payload)), header_bytes, payload))


def encode_value(value):
    """Return JSON text (UTF-8 bytes) for a plain value; ``bytes`` stay raw bytes.

    Raw bytes (a request body that is not UTF-8) travel inside JSON strings as
    they are: boot.lua's decoder takes string contents byte for byte.
    """
    text = json.dumps(value, ensure_ascii=False, allow_nan=False, default=_raw_bytes)
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


def encode_globals(globals):
    """Return a job's globals for the executor (``decode_globals`` reads them).

    Raises ValueError for a value marshal cannot carry; the executor refuses any
    type a JSON value could not have.
    """
    return marshal.dumps(globals)


def decode_globals(data):
    """Return the globals of a job, in the executor."""
    return marshal.loads(data)


def _raw_bytes(value):
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", "surrogateescape")
    raise TypeError(f"{type(value).__name__} is not a plain value")


def result_header(result):
    """Return the header of a result message for a runtime's result dict (its usage
    travels in the payload, ``result_payload``)."""
    header = {"t": "result", "status": result["status"]}
    for field in ("response", "error", "limit"):
        if result[field] is not None:
            header[field] = result[field]
    return header


def result_payload(usage, body):
    """Return the payload of a result message: the usage, then the body."""
    return USAGE.pack(usage["instructions"], usage["memory_peak_bytes"]) + body


def split_result_payload(payload):
    """Return (usage dict, body) of a result message's payload."""
    if len(payload) < USAGE.size:
        raise ProtocolError("a result's payload starts with its usage")
    instructions, peak = USAGE.unpack_from(payload)
    return {"instructions": instructions, "memory_peak_bytes": peak}, payload[USAGE.size:]


def parse_header(data):
    """Return the header of a frame (a JSON object with a type ``t``)."""
    return _parse_header(data)


def _parse_header(data):
    try:
        header = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise ProtocolError(f"invalid message: {exc}") from None
    if not isinstance(header, dict) or not isinstance(header.get("t"), str):
        raise ProtocolError("a message must be an object with a type")
    return header


class FrameDecoder:
    """Split a byte stream into (header, payload) frames, refusing oversized ones."""

    def __init__(self, max_header, max_payload):
        self._max_header = max_header
        self._max_payload = max_payload
        self._buffer = bytearray()

    def feed(self, data):
        self._buffer += data

    def wanted(self):
        """Return how many more bytes would complete the frame being read."""
        if len(self._buffer) < _LENGTHS.size:
            return _LENGTHS.size - len(self._buffer)
        header_size, payload_size = _LENGTHS.unpack_from(self._buffer)
        return max(1, _LENGTHS.size + header_size + payload_size - len(self._buffer))

    def next_frame(self):
        """Return the next complete frame, or None until more bytes arrive.

        The header comes as its raw bytes (``parse_header`` reads it): the reader
        may know those bytes already.
        """
        if len(self._buffer) < _LENGTHS.size:
            return None
        header_size, payload_size = _LENGTHS.unpack_from(self._buffer)
        if header_size > self._max_header or payload_size > self._max_payload:
            raise ProtocolError(f"message too large ({header_size} + {payload_size} bytes)")
        end = _LENGTHS.size + header_size + payload_size
        if len(self._buffer) < end:
            return None
        header = bytes(self._buffer[_LENGTHS.size:_LENGTHS.size + header_size])
        payload = bytes(self._buffer[_LENGTHS.size + header_size:end])
        del self._buffer[:end]
        return header, payload


class Channel:
    """Blocking frame I/O on two pipe descriptors (the executor's side).

    Headers from the parent repeat run after run (a script's job, a host call's
    reply): each distinct one is parsed once. Callers treat headers as read-only.
    """

    _HEADER_CACHE = 256

    def __init__(self, read_fd, write_fd):
        self._read_fd = read_fd
        self._write_fd = write_fd
        self._buffer = bytearray()
        self._headers = {}

    def send(self, header, payload=b""):
        data = memoryview(encode_frame(header, payload))
        while data:
            written = os.write(self._write_fd, data)
            data = data[written:]

    def receive(self):
        """Return the next (header, payload), or None when the other side closed."""
        if not self._fill(_LENGTHS.size):
            return None
        header_size, payload_size = _LENGTHS.unpack_from(self._buffer)
        if header_size > MAX_HEADER_FROM_PARENT or payload_size > MAX_PAYLOAD_FROM_PARENT:
            raise ProtocolError("message too large")
        end = _LENGTHS.size + header_size + payload_size
        if not self._fill(end):
            return None
        header = bytes(self._buffer[_LENGTHS.size:_LENGTHS.size + header_size])
        payload = bytes(self._buffer[_LENGTHS.size + header_size:end])
        del self._buffer[:end]
        return self._parsed(header), payload

    def _parsed(self, header):
        parsed = self._headers.get(header)
        if parsed is None:
            parsed = _parse_header(header)
            if len(self._headers) >= self._HEADER_CACHE:
                self._headers.clear()
            self._headers[header] = parsed
        return parsed

    def _fill(self, size):
        """Read until the buffer holds ``size`` bytes; False when the other side closed.

        Reads take what the pipe has (a whole small frame in one call) but never
        more than the frame being read needs beyond 64 KiB.
        """
        while len(self._buffer) < size:
            chunk = os.read(self._read_fd, min(max(size - len(self._buffer), 65536), 1 << 20))
            if not chunk:
                return False
            self._buffer += chunk
        return True


# Checks of what the web process reads from an executor --------------------------------
# An executor runs untrusted scripts: every field of its messages is checked before the
# web process acts on it, and anything malformed is a ProtocolError.

MAX_ERROR_MESSAGE = 16 * 1024
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+\-.^_`|~]+")
_HEADER_VALUE_BAD = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_LOG_LEVELS = frozenset({"info", "warn", "error"})


def require(condition, message):
    """Raise ProtocolError with ``message`` unless ``condition`` holds."""
    if not condition:
        raise ProtocolError(message)


def is_int(value):
    """Tell whether ``value`` is an int (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def log_entries(entries):
    """Return a batch of log entries as (level, message, at) tuples."""
    require(isinstance(entries, list), "log entries must be a list")
    checked = []
    for entry in entries:
        require(isinstance(entry, list) and len(entry) == 3, "a log entry is [level, message, at]")
        level, message, at = entry
        require(level in _LOG_LEVELS and isinstance(message, str), "invalid log entry")
        require(isinstance(at, (int, float)) and not isinstance(at, bool), "invalid log time")
        checked.append((level, message, float(at)))
    return checked


def call_arguments(payload):
    """Return the arguments of a host call (a JSON array with finite numbers only)."""
    try:
        args = json.loads(payload, parse_float=_finite_float, parse_constant=_no_constant)
    except (ValueError, RecursionError):
        raise ProtocolError("invalid host call arguments") from None
    require(isinstance(args, list), "host call arguments must be a list")
    return args


@dataclass(frozen=True)
class CheckedResult:
    """The checked fields of a result header: what does not change from run to run."""

    status: Status
    response_status: int | None = None
    headers: tuple = ()  # ((name, value), ...)
    error: dict | None = None
    limit: str | None = None


def checked_result(header):
    """Return the CheckedResult of a result header, validating every field."""
    try:
        status = Status(header.get("status"))
    except ValueError:
        raise ProtocolError("unknown status") from None
    if status is Status.OK:
        response_status, headers = response(header.get("response"))
        return CheckedResult(status, response_status=response_status, headers=headers)
    failure = error(header.get("error"))
    require(failure is not None, "a failed run needs an error")
    limit = header.get("limit")
    if status is Status.LIMIT_EXCEEDED:
        require(limit in KNOBS, "unknown limit")
    else:
        limit = None
    return CheckedResult(status, error=failure, limit=limit)


def script_response(result, body, limits):
    """Return the ScriptResponse of an OK result and its body, within the job's limits."""
    require(len(result.headers) <= limits["max_table_entries"] + 1, "too many headers")
    require(len(body) <= limits["max_output_bytes"], "response body over the limit")
    return ScriptResponse(status=result.response_status, headers=result.headers, body=body)


def error(value):
    """Return a result's error ({"message", "line"}), or None."""
    if value is None:
        return None
    require(isinstance(value, dict), "error must be an object")
    message, line = value.get("message"), value.get("line")
    require(isinstance(message, str) and len(message) <= MAX_ERROR_MESSAGE, "invalid error message")
    require(line is None or (is_int(line) and line > 0), "invalid error line")
    return {"message": message, "line": line}


def response(value):
    """Return (status, header pairs) of a result's response."""
    require(isinstance(value, dict), "response must be an object")
    status, headers = value.get("status"), value.get("headers")
    require(is_int(status) and 200 <= status <= 599, "invalid response status")
    require(isinstance(headers, list), "invalid headers")
    pairs = []
    for pair in headers:
        require(isinstance(pair, list) and len(pair) == 2, "a header is [name, value]")
        name, text = pair
        require(isinstance(name, str) and _HEADER_NAME.fullmatch(name), "invalid header name")
        require(isinstance(text, str) and not _HEADER_VALUE_BAD.search(text), "invalid header value")
        pairs.append((name, text))
    return status, tuple(pairs)


def _finite_float(text):
    value = float(text)
    if not math.isfinite(value):
        raise ValueError("number out of range")
    return value


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")
