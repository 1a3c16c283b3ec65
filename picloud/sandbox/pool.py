"""A pool of executor processes, each running one job at a time.

Lua runs outside the web process (docs/architecture.md, "Process model"): a script stuck in a
C function is ended by killing its process at the timeout, never by freezing the
server. Processes are started with ``subprocess`` (never a fork of the web process)
and spoken to over pipes with the frames of ``protocol``.

``ExecutorPool.run`` blocks only its caller: under gevent monkey-patching every wait
(a free slot, a pipe becoming readable) yields to other greenlets; without gevent
it blocks the calling thread. Callers take free executors in FIFO order; among
the free ones, a caller gets one that already holds its app's warm runtime when
there is one (pool affinity: booting a runtime costs more than a run).
"""
import logging
import os
import re
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import OrderedDict, deque
from pathlib import Path

from . import protocol
from .errors import HostError, HostLimit, Overloaded, ProtocolError
from .limits import KNOBS
from .outcome import Outcome, Status
from .protocol import EXIT_OUT_OF_MEMORY

log = logging.getLogger(__name__)

WORKER_MODULE = "picloud.sandbox.worker"
# Runs the worker module with `picloud` as a bare package: the executor imports
# only picloud.sandbox, not the web app (Flask, database drivers: ~1 s and ~35 MB
# per process). Equivalent to `python -m picloud.sandbox.worker` otherwise.
_BOOTSTRAP = (
    "import runpy, sys, types\n"
    "package = types.ModuleType('picloud')\n"
    "package.__path__ = [sys.argv.pop(1)]\n"
    "sys.modules['picloud'] = package\n"
    f"runpy.run_module({WORKER_MODULE!r}, run_name='__main__', alter_sys=True)\n"
)
START_TIMEOUT_SECONDS = 60.0
RESTART_BACKOFF_SECONDS = (0.5, 1, 2, 5, 10, 30)
MAX_HOST_ERROR_MESSAGE = 4 * 1024
_READ_CHUNK = 1 << 20
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Names of the script environment that globals and host modules must not replace.
RESERVED_NAMES = frozenset({
    "string", "table", "math", "utf8", "coroutine", "os", "json", "log", "print",
    "pairs", "ipairs", "next", "select", "type", "tostring", "tonumber", "rawget",
    "rawset", "rawequal", "rawlen", "getmetatable", "setmetatable", "pcall", "xpcall",
    "error", "assert", "unpack", "load", "collectgarbage", "_ENV", "_G",
    "crypto", "encoding", "time", "require",
})


class ExecutorPool:
    """A fixed number of executor processes; ``run`` executes one job on a free one."""

    def __init__(self, processes, *, recycle_after=None):
        if processes < 1:
            raise ValueError("an executor pool needs at least one process")
        self.size = processes
        self.recycle_after = recycle_after
        self._lock = threading.Lock()
        self._idle = deque()
        self._waiters = deque()
        self._executors = set()
        self._running = False

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc_info):
        self.stop()

    def start(self):
        """Start every executor process and wait until each is ready."""
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        executors = [_Executor() for _ in range(self.size)]
        try:
            for executor in executors:
                executor.spawn()
            for executor in executors:
                executor.await_ready(deadline)
        except BaseException:
            for executor in executors:
                executor.kill()
            raise
        with self._lock:
            self._running = True
            self._idle.extend(executors)
            self._executors.update(executors)

    def stop(self):
        """Stop the pool: idle processes now, busy ones when their run ends."""
        with self._lock:
            self._running = False
            idle, self._idle = list(self._idle), deque()
            waiters, self._waiters = list(self._waiters), deque()
        for waiter in waiters:
            waiter.event.set()
        for executor in idle:
            self._retire(executor)

    def free_slots(self):
        """Return how many runs could start now without waiting."""
        with self._lock:
            return max(0, len(self._idle) - len(self._waiters))

    def pids(self):
        """Return the process ids of the live executors (idle or busy)."""
        with self._lock:
            return {executor.pid for executor in self._executors}

    def run(self, job, host=None, wait_seconds=None):
        """Run ``job`` on the next free executor and return its Outcome.

        ``host(module, fn, args)`` answers the script's host calls in this
        greenlet/thread. Raises Overloaded when no executor frees up within
        ``wait_seconds`` (None waits for as long as it takes).
        """
        frame = _job_frame(job, host)
        deadline = None if wait_seconds is None else time.monotonic() + wait_seconds
        executor = self._acquire(wait_seconds, job.app)
        while not executor.alive():
            # It died while idle (killed from outside): never hand a caller a corpse.
            self._retire(executor)
            self._replace()
            executor = self._acquire(None if deadline is None else max(0.0, deadline - time.monotonic()), job.app)
        reusable = False
        try:
            outcome, reusable = executor.execute(job, frame, host)
        finally:
            # Anything but a clean result (timeout, crash, our caller cancelled)
            # leaves the process in an unknown state: replace it.
            if reusable and not self._worn_out(executor):
                self._release(executor)
            else:
                self._retire(executor)
                self._replace()
        return outcome

    def _worn_out(self, executor):
        return self.recycle_after is not None and executor.jobs_run >= self.recycle_after

    def _acquire(self, wait_seconds, app=None):
        with self._lock:
            if not self._running:
                raise Overloaded("the executor pool is not running")
            if self._idle and not self._waiters:
                return self._take_idle(app)
            waiter = _Waiter()
            self._waiters.append(waiter)
        try:
            waiter.event.wait(wait_seconds)
        except BaseException:
            # Cancelled (a greenlet killed, a timeout): pass on what we were handed.
            executor = self._abandon(waiter)
            if executor is not None:
                self._release(executor)
            raise
        executor = self._abandon(waiter)
        if executor is None:
            raise Overloaded()
        return executor

    def _take_idle(self, app):
        """Pop an idle executor, one warm for ``app`` if any (the lock is held)."""
        if app is not None:
            for executor in self._idle:
                if executor.holds(app):
                    self._idle.remove(executor)
                    return executor
        return self._idle.popleft()

    def _abandon(self, waiter):
        """Stop waiting; return the executor handed to the waiter, if any."""
        with self._lock:
            executor, waiter.executor = waiter.executor, None
            if executor is None and waiter in self._waiters:
                self._waiters.remove(waiter)
        return executor

    def _release(self, executor):
        with self._lock:
            if self._running:
                self._executors.add(executor)
                if self._waiters:
                    waiter = self._waiters.popleft()
                    waiter.executor = executor
                    waiter.event.set()
                else:
                    self._idle.append(executor)
                return
        self._retire(executor)

    def _retire(self, executor):
        with self._lock:
            self._executors.discard(executor)
        executor.kill()

    def _replace(self):
        thread = threading.Thread(target=self._start_replacement, name="executor-restart", daemon=True)
        thread.start()

    def _start_replacement(self):
        for delay in (0, *RESTART_BACKOFF_SECONDS):
            time.sleep(delay)
            if not self._running:
                return
            executor = _Executor()
            try:
                executor.spawn()
                executor.await_ready(time.monotonic() + START_TIMEOUT_SECONDS)
            except Exception:
                log.exception("could not start an executor process")
                executor.kill()
                continue
            self._release(executor)
            return
        log.error("gave up restarting an executor process; the pool has one fewer")


class _Waiter:
    def __init__(self):
        self.event = threading.Event()
        self.executor = None


class _Timeout(Exception):
    """The job's deadline passed."""


class _Gone(Exception):
    """The executor process closed its pipe (it died)."""


class _Executor:
    """One executor process and the web process's ends of its pipes."""

    def __init__(self):
        self.process = None
        self.jobs_run = 0
        # The apps whose runtimes the process keeps warm, as far as this side can
        # tell (the executor drops one after a limit or internal error).
        self._warm_apps = OrderedDict()
        # Result headers already checked, by their bytes: the runs of one script
        # mostly end with the same ones.
        self._results = {}
        self._decoder = protocol.FrameDecoder(
            protocol.MAX_HEADER_FROM_EXECUTOR, protocol.MAX_PAYLOAD_FROM_EXECUTOR
        )

    def _remember(self, raw, result):
        _keep(self._results, raw, result, _RESULTS_KEPT)

    def holds(self, app):
        """Tell whether this executor likely holds a warm runtime of ``app``."""
        return app in self._warm_apps

    def _note_run(self, app, status):
        if app is None:
            return
        if status in (Status.LIMIT_EXCEEDED, Status.INTERNAL_ERROR):
            self._warm_apps.pop(app, None)
            return
        self._warm_apps[app] = True
        self._warm_apps.move_to_end(app)
        while len(self._warm_apps) > protocol.WARM_APPS_PER_EXECUTOR:
            self._warm_apps.popitem(last=False)

    @property
    def pid(self):
        return self.process.pid if self.process else None

    def alive(self):
        return self.process is not None and self.process.poll() is None

    def spawn(self):
        package_dir = str(Path(__file__).resolve().parents[1])
        self.process = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP, package_dir],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            cwd="/",
            env=_worker_environment(),
            # A session of its own puts the process in an autogroup of its own where the
            # kernel groups CPU time by session: a script spinning in one executor then
            # competes for CPU as one process, instead of eating the web process's share.
            start_new_session=True,
        )
        self._to_child = self.process.stdin.fileno()
        self._from_child = self.process.stdout.fileno()
        os.set_blocking(self._to_child, False)
        os.set_blocking(self._from_child, False)

    def await_ready(self, deadline):
        try:
            raw, _ = self._read(deadline)
            header = protocol.parse_header(raw)
        except (_Timeout, _Gone):
            self.kill()
            raise RuntimeError(f"executor process {self.pid} did not start") from None
        if header.get("t") != "ready":
            raise ProtocolError(f"expected ready, got {header.get('t')!r}")

    def kill(self):
        if self.process is None:
            return
        if self.process.poll() is None:
            try:
                self.process.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.process.wait()
        for pipe in (self.process.stdin, self.process.stdout):
            try:
                pipe.close()
            except OSError:
                pass

    def execute(self, job, frame, host):
        """Run one job; return (Outcome, whether this process can take another)."""
        started = time.monotonic()
        deadline = started + job.timeout_seconds
        run = _RunState(job)
        try:
            self._write(frame, deadline)
            while True:
                raw, payload = self._read(deadline)
                result = self._results.get(raw)
                if result is None:
                    header = _call_headers.get(raw) or protocol.parse_header(raw)
                    kind = header["t"]
                    if kind == "log":
                        run.add_logs(header.get("entries"))
                        continue
                    if kind == "call":
                        _remember_call(raw, header)
                        self._answer(run, host, header, payload, deadline)
                        continue
                    if kind != "result":
                        raise ProtocolError(f"unexpected message {kind!r}")
                    run.add_logs(header.get("logs", []))
                    result = protocol.checked_result(header)
                    if "logs" not in header and len(raw) <= _RESULT_KEPT_BYTES:
                        self._remember(raw, result)
                outcome = run.outcome(result, payload, _elapsed_ms(started))
                self.jobs_run += 1
                self._note_run(job.app, outcome.status)
                return outcome, True
        except _Timeout:
            self.kill()
            message = f"the script did not finish within {job.timeout_seconds:g} s"
            return run.failed(Status.TIMEOUT, message, _elapsed_ms(started)), False
        except (_Gone, BrokenPipeError):
            return self._died(run, started), False
        except ProtocolError as exc:
            log.error("executor process %s sent an invalid message: %s", self.pid, exc)
            self.kill()
            return run.failed(Status.INTERNAL_ERROR, "the executor failed", _elapsed_ms(started)), False

    def _died(self, run, started):
        self.kill()
        code = self.process.returncode
        if code == EXIT_OUT_OF_MEMORY:
            return run.limit("max_memory_bytes", _elapsed_ms(started))
        reason = f"signal {-code}" if code < 0 else f"exit status {code}"
        log.error("executor process %s died during a run (%s)", self.pid, reason)
        return run.failed(Status.INTERNAL_ERROR, f"the executor process died ({reason})", _elapsed_ms(started))

    def _answer(self, run, host, header, payload, deadline):
        reply, result = run.host_call(host, header, payload)
        if time.monotonic() > deadline:
            raise _Timeout()
        self._write(protocol.frame_of(reply, result), deadline)

    def _write(self, data, deadline):
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._to_child, view)
            except BlockingIOError:
                _wait_for(self._to_child, writable=True, deadline=deadline)
                continue
            view = view[written:]

    def _read(self, deadline):
        while True:
            frame = self._decoder.next_frame()
            if frame is not None:
                return frame
            try:
                chunk = os.read(self._from_child, min(_READ_CHUNK, max(self._decoder.wanted(), 65536)))
            except BlockingIOError:
                _wait_for(self._from_child, writable=False, deadline=deadline)
                continue
            if not chunk:
                raise _Gone()
            self._decoder.feed(chunk)


class _RunState:
    """What the web process learns about one run: logs, host failures, outcome."""

    def __init__(self, job):
        self.job = job
        self.limits = job.limits
        self.logs = []
        self.log_chars = 0
        self.host_failure = None
        self.allowed = _allowed(job.host_api)

    def add_logs(self, entries):
        for entry in protocol.log_entries(entries):
            self.log_chars += len(entry[1])
            self.logs.append(entry)
        protocol.require(self.log_chars <= self.limits["max_output_bytes"], "log output over the limit")
        protocol.require(len(self.logs) <= self.limits["max_table_entries"], "too many log entries")

    def host_call(self, host, header, payload):
        """Call the host function; return the encoded reply header and payload for the executor."""
        module, fn = header.get("module"), header.get("fn")
        protocol.require(isinstance(module, str) and isinstance(fn, str), "invalid host call")
        protocol.require((module, fn) in self.allowed, "call of a host function the job does not offer")
        args = protocol.call_arguments(payload)
        try:
            value = host(module, fn, args)
            return _OK_REPLY, protocol.encode_value(value)
        except HostError as exc:
            message = str(exc)[:MAX_HOST_ERROR_MESSAGE]
            return protocol.encode_header({"t": "reply", "status": "error", "message": message}), b""
        except HostLimit as exc:
            if exc.knob not in KNOBS:
                raise ValueError(f"unknown knob {exc.knob!r}") from None
            return protocol.encode_header({"t": "reply", "status": "limit", "message": exc.knob}), b""
        except Exception:
            log.exception("host function %s.%s failed", module, fn)
            self.host_failure = f"host function {module}.{fn} failed"
            return protocol.encode_header({"t": "reply", "status": "abort", "message": self.host_failure}), b""

    def outcome(self, result, payload, duration_ms):
        """Build the Outcome of a checked result header and its payload (usage, body)."""
        usage, body = protocol.split_result_payload(payload)
        if self.host_failure:
            return self.failed(Status.INTERNAL_ERROR, self.host_failure, duration_ms, usage)
        logs = tuple(self.logs)
        if result.status is Status.OK:
            response = protocol.script_response(result, body, self.limits)
            return Outcome(Status.OK, response=response, logs=logs, usage=usage, duration_ms=duration_ms)
        return Outcome(result.status, error=result.error, limit=result.limit, logs=logs, usage=usage,
                       duration_ms=duration_ms)

    def failed(self, status, message, duration_ms, usage=None):
        return Outcome(
            status,
            error={"message": message, "line": None},
            logs=tuple(self.logs),
            usage=usage or _no_usage(),
            duration_ms=duration_ms,
        )

    def limit(self, knob, duration_ms):
        message = f"the executor ran out of memory (limit {self.limits[knob]} bytes)"
        return Outcome(
            Status.LIMIT_EXCEEDED,
            error={"message": message, "line": None},
            limit=knob,
            logs=tuple(self.logs),
            usage=_no_usage(),
            duration_ms=duration_ms,
        )


def _no_usage():
    return {"instructions": 0, "memory_peak_bytes": 0}


def _job_frame(job, host):
    """Return the job message for an executor, refusing a job it cannot run as asked."""
    _check_job(job, host)
    limits = tuple(job.limits[knob] for knob in KNOBS)
    key = (job.source, job.chunk_name, limits, job.host_api, job.app)
    try:
        header = _job_headers.get(key)
    except TypeError:  # a host_api given as lists: not cached
        header, key = None, None
    if header is None:
        # Source, limits and host modules repeat run after run (only the globals
        # change): their JSON is made once per combination.
        header = protocol.encode_header({
            "t": "job",
            "source": job.source,
            "chunk_name": job.chunk_name,
            "limits": dict(zip(KNOBS, limits)),
            "host_api": [[module, list(fns)] for module, fns in job.host_api],
            "app": job.app,
        })
        if key is not None:
            _keep(_job_headers, key, header)
    try:
        return protocol.frame_of(header, protocol.encode_globals(job.globals))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"job globals must be plain JSON-like values: {exc}") from None


_JOB_HEADER_CACHE = 512
# Checked result headers kept per executor, and the largest one kept.
_RESULTS_KEPT = 256
_RESULT_KEPT_BYTES = 4096
_job_headers = {}
# Global names and host APIs already found valid (they are few and repeat).
_checked_names = {}
_allowed_calls = {}
# The reply to a host call that succeeded: the same bytes every time.
_OK_REPLY = protocol.encode_header({"t": "reply", "status": "ok"})
# Parsed host call headers ({"t": "call", "module", "fn"}): a handful repeat for ever.
_call_headers = {}
_CALL_HEADER_KEPT_BYTES = 256


def _keep(cache, key, value, most=_JOB_HEADER_CACHE):
    """Keep ``key`` → ``value`` in a cache of at most ``most`` entries (full: start over)."""
    if len(cache) >= most:
        cache.clear()
    cache[key] = value


def _remember_call(raw, header):
    if len(raw) <= _CALL_HEADER_KEPT_BYTES and raw not in _call_headers:
        _keep(_call_headers, raw, header)


def _check_job(job, host):
    """Refuse a job the sandbox cannot run as asked (a programming error)."""
    for knob in KNOBS:
        value = job.limits.get(knob)
        if value.__class__ is not int or value <= 0:
            if not protocol.is_int(value) or value <= 0:
                raise ValueError(f"job limit {knob} must be a positive integer")
    if not job.timeout_seconds > 0:
        raise ValueError("job timeout_seconds must be positive")
    if job.app is not None and not isinstance(job.app, str):
        raise ValueError("job app must be a string or None")
    if not isinstance(job.globals, dict):
        raise ValueError("job globals must be a dict")
    if job.host_api and host is None:
        raise ValueError("a job with host functions needs a host")
    try:
        key = (tuple(job.globals), job.host_api)
        if key in _checked_names:
            return
    except TypeError:  # host_api not hashable: checked in full (and refused) below
        key = None
    names = set()
    for name in job.globals:
        _check_name(name, "global")
        names.add(name)
    for module, fns in job.host_api:
        _check_name(module, "host module")
        if module in names:
            raise ValueError(f"host module {module!r} is also a global")
        for fn in fns:
            if not isinstance(fn, str) or not _IDENTIFIER.fullmatch(fn):
                raise ValueError(f"invalid host function name {fn!r}")
    if key is not None:
        _keep(_checked_names, key, True)


def _allowed(host_api):
    """Return the set of (module, fn) a job's host API offers."""
    try:
        allowed = _allowed_calls.get(host_api)
    except TypeError:
        return {(module, fn) for module, fns in host_api for fn in fns}
    if allowed is None:
        allowed = frozenset((module, fn) for module, fns in host_api for fn in fns)
        _keep(_allowed_calls, host_api, allowed)
    return allowed


def _check_name(name, what):
    if not isinstance(name, str) or not _IDENTIFIER.fullmatch(name) or name in RESERVED_NAMES:
        raise ValueError(f"invalid {what} name {name!r}")


def _worker_environment():
    """Return the environment of an executor process: no secrets of the web process."""
    env = {"PYTHONDONTWRITEBYTECODE": "1"}
    for name in ("PATH", "TZ", "LANG", "LC_ALL"):
        if name in os.environ:
            env[name] = os.environ[name]
    return env


def _elapsed_ms(started):
    return (time.monotonic() - started) * 1000.0


def _gevent_patched():
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and monkey.is_module_patched("select")


def _wait_for(fd, *, writable, deadline):
    """Wait until ``fd`` is ready, yielding to other greenlets under gevent."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise _Timeout()
    if _gevent_patched():
        from gevent.socket import wait_read, wait_write

        try:
            (wait_write if writable else wait_read)(fd, timeout=remaining)
        except socket.timeout:
            raise _Timeout() from None
        return
    poller = select.poll()
    poller.register(fd, select.POLLOUT if writable else select.POLLIN)
    if not poller.poll(remaining * 1000):
        raise _Timeout()
