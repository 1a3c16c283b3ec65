"""References for bench/http.py: the hello script through the smallest process pool.

Each gunicorn worker starts its own children (as many as PICLOUD_EXECUTOR_PROCESSES,
default: the CPU count) and hands each request to a free one over a pipe, with a
4-byte length in front of every message. Nothing else: no job validation, no logs,
no timeout. Two kinds of child:

- ``lupa_only``: the script runs in a fresh bare ``LuaRuntime`` per request: no count
  hook, no guarded library, no environment. This is the floor a process pool with a
  fresh runtime per run sets ("sandbox-only" in docs/development.md).
- ``sandbox_only``: the script runs in a warm ``AppRuntime`` of PiCloud's sandbox
  (fresh environment, count hook, response mapping, full collection per run), but
  still behind this minimal pool: what a hardened run costs, apart from PiCloud's
  pool and protocol.

And one without a pool: ``in_process`` runs the same warm ``AppRuntime`` inside the
web worker itself. PiCloud does not do this (a script stuck inside one C call could not
be stopped); it measures what the process boundary costs.

    gunicorn -c gunicorn.conf.py "bench.reference_pools:create('lupa_only')"
"""
import os
import queue
import struct
import subprocess
import sys
from pathlib import Path

from flask import Flask
from gevent.socket import wait_read

ROOT = Path(__file__).resolve().parent.parent
HELLO = b'return "Hello from PiCloud!"'
_LENGTH = struct.Struct(">I")

# The child's loop; {run} turns the source into the response body.
_CHILD = """
import os, struct, sys
sys.path.insert(0, {root!r})
{setup}
LENGTH = struct.Struct(">I")

def read(size):
    data = b""
    while len(data) < size:
        chunk = os.read(0, size - len(data))
        if not chunk:
            sys.exit(0)
        data += chunk
    return data

while True:
    source = read(LENGTH.unpack(read(4))[0])
    body = {run}
    os.write(1, LENGTH.pack(len(body)) + body)
"""

_LUPA_ONLY = {
    "setup": "import lupa.lua54 as lupa",
    "run": "lupa.LuaRuntime(encoding=None, register_eval=False, register_builtins=False).execute(source)",
}
_SANDBOX_ONLY = {
    "setup": (
        "from picloud.sandbox.limits import BUILTIN_DEFAULTS\n"
        "from picloud.sandbox.runtime import AppRuntime\n"
        "RUNTIME = AppRuntime()\n"
        "LIMITS = dict(BUILTIN_DEFAULTS)\n"
        "GLOBALS = {'request': {'method': 'GET', 'path': '/', 'params': {}, 'query': {}, 'headers': {}, 'body': b''}}\n"
        "def run(source):\n"
        "    job = {'source': source.decode(), 'chunk_name': 'hello', 'limits': LIMITS, 'host_api': []}\n"
        "    body = RUNTIME.execute(job, GLOBALS, lambda *a: None, None)[1]\n"
        "    RUNTIME.finish()\n"
        "    return body"
    ),
    "run": "run(source)",
}

_CHILDREN = {"lupa_only": _LUPA_ONLY, "sandbox_only": _SANDBOX_ONLY}


class _InProcess:
    """The hello script in a warm sandbox runtime of the web worker itself."""

    def __init__(self):
        namespace = {}
        exec(_SANDBOX_ONLY["setup"], namespace)
        self.run = namespace["run"]


class _Pool:
    """Child processes running the hello script, taken in turn by the worker's greenlets."""

    def __init__(self, child):
        code = _CHILD.format(root=str(ROOT), **child)
        self._idle = queue.Queue()
        for _ in range(int(os.environ.get("PICLOUD_EXECUTOR_PROCESSES") or os.cpu_count() or 1)):
            process = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
            os.set_blocking(process.stdout.fileno(), False)
            self._idle.put(process)

    def run(self, source):
        process = self._idle.get()
        try:
            os.write(process.stdin.fileno(), _LENGTH.pack(len(source)) + source)
            return self._read_reply(process.stdout.fileno())
        finally:
            self._idle.put(process)

    @staticmethod
    def _read_reply(fd):
        data = b""
        while len(data) < _LENGTH.size or len(data) < _LENGTH.size + _LENGTH.unpack_from(data)[0]:
            try:
                chunk = os.read(fd, 65536)
            except BlockingIOError:
                wait_read(fd)
                continue
            if not chunk:
                raise RuntimeError("a reference child process died")
            data += chunk
        return data[_LENGTH.size:]


def create(child):
    """Return the WSGI app for ``child``: "lupa_only", "sandbox_only" or "in_process"."""
    app = Flask(__name__)
    # gunicorn imports this module in each worker after forking (no preload), so the
    # children belong to one worker, as the executor pool's do.
    pool = _InProcess() if child == "in_process" else _Pool(_CHILDREN[child])

    @app.get("/")
    def hello():
        return pool.run(HELLO), 200, {"Content-Type": "text/plain; charset=utf-8"}

    return app

