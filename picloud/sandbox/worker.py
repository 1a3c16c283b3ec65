"""Executor process: runs one job at a time, each in a fresh environment of its app's warm runtime.

The pool runs this module (``python -m picloud.sandbox.worker``, through a small
bootstrap that skips the web app's imports) with the job pipe on stdin and the
result pipe on stdout, both moved aside at once so a stray print cannot corrupt
the protocol. It answers each job with a ``result`` message, then cleans up the
run (a full collection) and boots a spare runtime while the pool already has the
result; it exits when the pool closes the pipe, when its parent disappears, or
when the pool kills it at a job's timeout.
"""
import locale
import os
import resource
import sys
import threading
import time
import traceback

from . import protocol
from .protocol import EXIT_OUT_OF_MEMORY, Channel, decode_globals
from .runtime import WarmRuntimes, internal_error

# RLIMIT_AS on top of what the process already maps, per job: a backstop for
# work outside the Lua heap (which max_memory bounds), not the limit itself.
ADDRESS_SPACE_HEADROOM = 512 * 1024 * 1024
LOG_FLUSH_BYTES = 64 * 1024
LOG_FLUSH_SECONDS = 0.1
_CONTROL_CHARACTERS = {code: "\ufffd" for code in [*range(0, 9), *range(11, 32), 127]}


def main():
    """Serve jobs from the pool until it closes the pipe."""
    channel = _take_over_stdio()
    _harden()
    logs = LogStream(channel)
    threading.Thread(target=logs.flush_periodically, daemon=True).start()
    runtimes = WarmRuntimes()
    runtimes.boot_spare()
    address_space = AddressSpace()
    channel.send({"t": "ready", "pid": os.getpid()})
    while True:
        frame = channel.receive()
        if frame is None:
            return
        header, payload = frame
        if header.get("t") != "job":
            sys.exit(2)
        app = header.get("app")
        try:
            address_space.limit_for(header["limits"]["max_memory_bytes"])
            runtime = runtimes.take(app)
            status = _serve(runtime, header, payload, channel, logs)
            runtimes.give_back(app, runtime, status)
            runtimes.boot_spare()
        except MemoryError:
            sys.exit(EXIT_OUT_OF_MEMORY)


def _take_over_stdio():
    os.closerange(3, _descriptor_limit())
    read_fd, write_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(2, 1)
    os.close(devnull)
    # Pipes created by a gevent parent may arrive non-blocking.
    os.set_blocking(read_fd, True)
    os.set_blocking(write_fd, True)
    return Channel(read_fd, write_fd)


def _descriptor_limit():
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft if soft != resource.RLIM_INFINITY else 65536


def _harden():
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Lua formats numbers and dates with the C library: keep its locale fixed.
    locale.setlocale(locale.LC_ALL, "C")
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent_pid):
    # A job spinning in C never reads its pipe: notice a vanished parent anyway.
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(0)


class AddressSpace:
    """RLIMIT_AS for each job: what the process maps at start, plus the job's heap twice."""

    def __init__(self):
        page = os.sysconf("SC_PAGE_SIZE")
        with open("/proc/self/statm") as statm:
            self._mapped = int(statm.read().split()[0]) * page
        self._current = None

    def limit_for(self, max_memory_bytes):
        if max_memory_bytes == self._current:
            return
        limit = self._mapped + 2 * max_memory_bytes + ADDRESS_SPACE_HEADROOM
        _, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        self._current = max_memory_bytes


def _serve(runtime, job, payload, channel, logs):
    """Run one job and send its result; return the result's status."""
    def on_call(module, fn, args_json):
        logs.send_after_logs({"t": "call", "module": module, "fn": fn}, args_json)
        frame = channel.receive()
        if frame is None:
            sys.exit(0)
        reply, payload = frame
        if reply.get("t") != "reply":
            sys.exit(2)
        if reply.get("status") == "ok":
            return "ok", payload
        return reply.get("status", "abort"), str(reply.get("message", "")).encode("utf-8", "replace")

    try:
        result, body = runtime.execute(job, decode_globals(payload), logs.add, on_call)
    except MemoryError:
        raise
    except Exception:
        # An internal error: the runtime is thrown away after it (WarmRuntimes).
        traceback.print_exc()
        result, body = internal_error("the executor failed"), b""
    logs.send_after_logs(
        protocol.result_header(result), protocol.result_payload(result["usage"], body), logs_key="logs"
    )
    return result["status"]


class LogStream:
    """Log entries of the running job, sent to the pool in batches as they come.

    A thread flushes them every LOG_FLUSH_SECONDS even while Lua runs (lupa
    releases the GIL), so the pool has what a script logged before it was killed
    at its timeout. One lock orders every message of a job: logs, calls, result.
    """

    def __init__(self, channel):
        self._channel = channel
        self._lock = threading.Lock()
        self._pending = []
        self._pending_bytes = 0

    def add(self, level, message):
        # Log text is shown in the dashboard: valid UTF-8, no control characters.
        text = message.decode("utf-8", "replace").translate(_CONTROL_CHARACTERS)
        with self._lock:
            self._pending.append([level, text, time.time()])
            self._pending_bytes += len(message) + 32
            if self._pending_bytes >= LOG_FLUSH_BYTES:
                self._send_pending()

    def send_after_logs(self, header, payload=b"", logs_key=None):
        """Send a message after the pending log entries (inside it, as ``logs_key``, if any)."""
        with self._lock:
            if logs_key:
                if self._pending:
                    header[logs_key], self._pending, self._pending_bytes = self._pending, [], 0
            else:
                self._send_pending()
            self._channel.send(header, payload)

    def flush_periodically(self):
        while True:
            time.sleep(LOG_FLUSH_SECONDS)
            with self._lock:
                self._send_pending()

    def _send_pending(self):
        if self._pending:
            entries, self._pending, self._pending_bytes = self._pending, [], 0
            self._channel.send({"t": "log", "entries": entries})


if __name__ == "__main__":
    main()
