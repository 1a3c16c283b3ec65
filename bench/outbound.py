"""Outbound HTTP benchmark: a route that calls a local upstream, and runs waiting on a slow one.

Starts a local upstream (a minimal gevent HTTP/1.1 server in a process of its own:
``/`` answers at once, ``/slow`` after 1 s; the CPU it spends per call is printed) and
PiCloud under ``gunicorn -c gunicorn.conf.py app:app`` with ``PICLOUD_EGRESS_ALLOW``
naming the upstream, on a fresh temporary database, with three apps:

- ``hello`` (``hello.bench.test``): ``GET /`` returns a greeting (the baseline);
- ``caller`` (``caller.bench.test``): ``GET /call`` makes one ``http.get`` to the
  upstream and returns its body;
- ``waiter`` (``waiter.bench.test``): ``GET /wait`` calls the upstream's ``/slow``.

Two figures, each against a baseline measured in the same run:

1. Throughput: ``wrk`` (32 connections) on the hello route, then on the calling route,
   alternating; the calling route's requests per second as a ratio of hello's.
   Target (docs/development.md): ≥ 0.5×.
2. Waiting: with runs of ``waiter`` kept in flight (each waits 1 s on the upstream), the
   CPU time the whole server (gunicorn, workers, executors) uses per second of wall
   time, against the same server idle; then the hello route at a fixed rate, alone and
   while the waiters wait. Targets: the CPU stays idle (a waiting run costs no CPU) and
   hello's p99 stays under 50 ms.

    python bench/outbound.py [--duration 10] [--rounds 2] [--connections 32] [--waiters N]
                             [--rate 100] [--database-url URL]
"""
import os
import sys

# Run as a script, this file's folder heads sys.path, and bench/http.py there would
# shadow the standard library's ``http`` package.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import http.client  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.fairness import GREETING, HELLO_HOST, fixed_rate, non_2xx, percentile  # noqa: E402
from bench.support import (  # noqa: E402
    ADMIN_PASSWORD, Background, Client, children, expect, free_port, start_server, stop_server, tree_cpu_seconds,
)

TARGET_RATIO = 0.5
TARGET_P99_MS = 50.0
# A waiting run should cost (next to) nothing: the server's CPU while runs wait, in
# percent of one core, may exceed the idle server's by at most this.
TARGET_EXTRA_CPU_PERCENT = 5.0
CALLER_HOST = "caller.bench.test"
WAITER_HOST = "waiter.bench.test"
SLOW_SECONDS = 1.0

UPSTREAM = r"""
import socket
import sys
from gevent import monkey
monkey.patch_all()
import gevent
from gevent.server import StreamServer

# The smallest HTTP/1.1 server that answers these GETs, kept alive: on a 2-core machine
# every microsecond the upstream spends is taken from the server under test, and a real
# upstream runs elsewhere. (gevent's pywsgi costs several times as much per request.)
ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 8\r\n\r\nupstream"

def handle(sock, address):
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    pending = b""
    while True:
        data = sock.recv(65536)
        if not data:
            break
        pending += data
        while b"\r\n\r\n" in pending:  # requests without bodies: GETs only
            head, _, pending = pending.partition(b"\r\n\r\n")
            if head.startswith(b"GET /slow "):
                gevent.sleep(float(sys.argv[2]))
            sock.sendall(ANSWER)
    sock.close()

StreamServer(("127.0.0.1", int(sys.argv[1])), handle).serve_forever()
"""


def start_upstream():
    """Start the upstream; return (process, port) once it answers."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", UPSTREAM, str(port), str(SLOW_SECONDS)])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/")
            if connection.getresponse().read() == b"upstream":
                return process, port
        except OSError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("the upstream did not start")


def set_up(base_url, upstream_port):
    """Create the three apps, their scripts and routes; return the admin client."""
    api = Client.admin(base_url)
    upstream = f"http://127.0.0.1:{upstream_port}"
    for slug, host, path, source in (
        ("hello", HELLO_HOST, "/", f"return {GREETING.decode()!r}\n"),
        ("caller", CALLER_HOST, "/call", f'return http.get("{upstream}/").body\n'),
        ("waiter", WAITER_HOST, "/wait", f'local r, err = http.get("{upstream}/slow") return r and r.body or err\n'),
    ):
        app = expect(api.call("POST", "/api/v1/admin/apps", {"slug": slug}), 201)
        expect(api.call("POST", f"/api/v1/admin/apps/{app['id']}/domains", {"pattern": host}), 201)
        script = expect(api.call("POST", "/api/v1/admin/scripts",
                                 {"app_id": app["id"], "name": slug, "source": source}), 201)
        expect(api.call("POST", f"/api/v1/admin/apps/{app['id']}/routes",
                        {"method": "GET", "path": path, "script_id": script["id"]}), 201)
    for path, host, body in (("/", HELLO_HOST, GREETING), ("/call", CALLER_HOST, b"upstream")):
        if api.call("GET", path, host=host) != (200, body):
            raise SystemExit(f"GET {path} on {host} did not answer {body!r}")
    return api


def wrk(url, host, duration, connections):
    """Run wrk; return (requests per second, p99 ms, non-2xx count)."""
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-H", f"Host: {host}", url],
        check=True, capture_output=True, text=True,
    ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    value, unit = re.search(r"99%\s+([\d.]+)(\w+)", out).groups()
    p99 = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    failed = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rate, p99, int(failed.group(1)) if failed else 0


def cpu_percent(root, seconds):
    """Return the server's CPU use over ``seconds``, in percent of one core."""
    before, started = tree_cpu_seconds(root), time.monotonic()
    time.sleep(seconds)
    return 100 * (tree_cpu_seconds(root) - before) / (time.monotonic() - started)


class Waiters(Background):
    """Threads that each keep one ``GET /wait`` in flight until stopped."""

    def __init__(self, port, count):
        super().__init__(count)
        self.port = port
        self.answers = Counter()

    def __enter__(self):
        super().__enter__()
        time.sleep(SLOW_SECONDS / 2)  # every waiter's first run under way
        return self

    def work(self):
        while not self.stopping.is_set():
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                connection.request("GET", "/wait", headers={"Host": WAITER_HOST})
                response = connection.getresponse()
                self.answers[response.status if response.read() == b"upstream" else "wrong body"] += 1
            except OSError as error:
                self.answers[type(error).__name__] += 1
            finally:
                connection.close()


def measure_throughput(base_url, upstream, args):
    """Alternate hello and calling rounds; return the runs and the upstream's CPU µs per call."""
    runs = {"hello": [], "calling": []}
    wrk(base_url + "/", HELLO_HOST, 3, args.connections)  # warm up
    wrk(base_url + "/call", CALLER_HOST, 3, args.connections)
    upstream_seconds = calls = 0
    for round_number in range(args.rounds):
        hello = wrk(base_url + "/", HELLO_HOST, args.duration, args.connections)
        before = tree_cpu_seconds(upstream.pid)
        calling = wrk(base_url + "/call", CALLER_HOST, args.duration, args.connections)
        upstream_seconds += tree_cpu_seconds(upstream.pid) - before
        calls += calling[0] * args.duration
        runs["hello"].append(hello)
        runs["calling"].append(calling)
        print(f"round {round_number + 1}: hello {hello[0]:.0f} req/s, calling {calling[0]:.0f} req/s "
              f"({calling[0] / hello[0]:.2f}x)", flush=True)
    return runs, 1e6 * upstream_seconds / max(calls, 1)


def measure_waiting(process, port, waiters, args):
    idle = cpu_percent(process.pid, args.duration / 2)
    with Waiters(port, waiters) as waiting:
        busy = cpu_percent(process.pid, args.duration / 2)
    alone, alone_answers = fixed_rate(port, args.rate, args.duration)
    with Waiters(port, waiters) as waiting_hello:
        contended, contended_answers = fixed_rate(port, args.rate, args.duration)
    answers = waiting.answers + waiting_hello.answers
    return idle, busy, (alone, alone_answers), (contended, contended_answers), answers


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="alternating hello/calling rounds")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--waiters", type=int, default=None,
                        help="runs kept waiting on the slow upstream (default: executor processes per worker - 1, at least 1)")
    parser.add_argument("--rate", type=float, default=100, help="hello requests per second while runs wait")
    parser.add_argument("--database-url", default="", help="PiCloud's DATABASE_URL (default: SQLite in a temp dir)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is needed (Debian: apt-get install wrk)")

    workdir = Path(tempfile.mkdtemp(prefix="picloud-bench-outbound-"))
    upstream = process = None
    try:
        upstream, upstream_port = start_upstream()
        env = {
            "PICLOUD_DATA_DIR": str(workdir / "data"),
            "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
            "DATABASE_URL": args.database_url,
            "PICLOUD_EGRESS_ALLOW": f"127.0.0.1:{upstream_port}",
        }
        process, base_url = start_server(env, workdir / "server.log")
        port = int(base_url.rpartition(":")[2])
        set_up(base_url, upstream_port)
        executors = [len(children(worker)) for worker in children(process.pid)]
        waiters = args.waiters if args.waiters is not None else max(1, max(executors) - 1)
        print(f"{len(executors)} workers with {'+'.join(map(str, executors))} executor processes; "
              f"{args.rounds} x {args.duration} s per route; {waiters} waiter(s) on a {SLOW_SECONDS:g} s upstream",
              flush=True)
        runs, upstream_us = measure_throughput(base_url, upstream, args)
        idle, busy, alone, contended, wait_answers = measure_waiting(process, port, waiters, args)
    finally:
        if process is not None:
            stop_server(process)
        if upstream is not None:
            upstream.kill()
            upstream.wait()
        shutil.rmtree(workdir, ignore_errors=True)

    hello_rate = sum(r[0] for r in runs["hello"]) / len(runs["hello"])
    calling_rate = sum(r[0] for r in runs["calling"]) / len(runs["calling"])
    ratio = calling_rate / hello_rate
    print()
    print(f"{'route':10} {'req/s':>9} {'p99 ms':>8} {'non-2xx':>8}")
    for name, measured in runs.items():
        rate = sum(r[0] for r in measured) / len(measured)
        print(f"{name:10} {rate:9.0f} {max(r[1] for r in measured):8.1f} {sum(r[2] for r in measured):8d}")
    print(f"calling / hello: {ratio:.2f}x (target >= {TARGET_RATIO}x); the upstream used {upstream_us:.0f} µs "
          f"of CPU per call")
    print()
    print(f"server CPU idle: {idle:.1f}% of a core; with {waiters} run(s) waiting: {busy:.1f}% "
          f"(target: at most {TARGET_EXTRA_CPU_PERCENT:g} points more)")
    print(f"{'hello route':14} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8}")
    for name, (latencies, answers) in (("alone", alone), ("runs waiting", contended)):
        print(f"{name:14} {len(latencies):9d} {percentile(latencies, 0.5):8.2f} {percentile(latencies, 0.99):8.2f} "
              f"{non_2xx(answers):8d}")
    print(f"waiter answers: {dict(wait_answers)} (200 expected)")
    p99 = percentile(contended[0], 0.99)
    print(f"hello p99 while runs wait: {p99:.2f} ms (target < {TARGET_P99_MS:g} ms)")
    ok = (ratio >= TARGET_RATIO and busy - idle <= TARGET_EXTRA_CPU_PERCENT and p99 < TARGET_P99_MS
          and non_2xx(contended[1]) == 0)
    print("PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
