"""HTTP benchmark: PiCloud's hello-world sync route against a bare Flask view.

Both run under ``gunicorn -c gunicorn.conf.py`` with the same settings and are loaded
by the same client (Debian's ``wrk``, 32 connections, a fixed duration). Prints
requests per second, p50, p99 and the server's CPU per request for each, and the
ratios docs/development.md sets as targets: PiCloud ≥ 60% of the bare view's requests
per second, p99 ≤ bare p99 + 10 ms.
Four references between the two show where the gap comes from, each a bare view
running the hello script: ``in-process`` in a warm sandbox runtime inside the web
worker (no process boundary, which PiCloud keeps so that a script stuck in one C call
can be killed), the other three in a pool of child processes:

- ``lupa-only``: a fresh bare lupa runtime per request behind the smallest possible
  pool (``bench/reference_pools.py``): the floor of a process pool itself;
- ``sandbox-only``: the same pool, with PiCloud's hardened sandbox in the child;
- ``pool-only``: PiCloud's executor pool and nothing else (``bench/pool_app.py``).

``--what-if`` adds PiCloud itself with its scripts run inside the web worker
(``bench/picloud_in_process.py``): what PiCloud would reach without the process
boundary, not a way it can run.

    python bench/http.py [--duration 15] [--connections 32] [--database-url URL] [--what-if]
"""
import os
import sys

# Run as a script, this file's folder heads sys.path, and its name would shadow the
# standard library's ``http`` package for everything imported below.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import re  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import urllib.request  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.support import start_server, stop_server, tree_cpu_seconds  # noqa: E402

EXPECTED = b"Hello from PiCloud!"


def ensure_wrk():
    if shutil.which("wrk"):
        return
    print("installing wrk from Debian ...", flush=True)
    subprocess.run(["apt-get", "install", "-y", "wrk"], check=True, stdout=subprocess.DEVNULL)


def wrk(url, duration, connections, threads=2):
    """Run wrk and return (requests per second, p50 ms, p99 ms, non-2xx count)."""
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", url],
        check=True, capture_output=True, text=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = _latency_ms(re.search(r"^\s+50%\s+([\d.]+\w+)", out, re.M).group(1))
    p99 = _latency_ms(re.search(r"^\s+99%\s+([\d.]+\w+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return rps, p50, p99, int(errors.group(1)) if errors else 0


def _latency_ms(text):
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


TARGETS = (
    ("bare", "bench.bare_app:app"),
    ("in-process", "bench.reference_pools:create('in_process')"),
    ("lupa-only", "bench.reference_pools:create('lupa_only')"),
    ("sandbox-only", "bench.reference_pools:create('sandbox_only')"),
    ("pool-only", "bench.pool_app:app"),
    ("picloud", "app:app"),
)
# Not a reference PiCloud can become as it is: what it would reach without its executors.
WHAT_IF = ("no-boundary", "bench.picloud_in_process:app")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=15, help="seconds of load per target")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds the duration is split into")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--database-url", default="", help="PiCloud's DATABASE_URL (default: SQLite in a temp dir)")
    parser.add_argument("--what-if", action="store_true",
                        help="also load PiCloud with its scripts run inside the web worker (bench/picloud_in_process.py)")
    args = parser.parse_args()
    targets = TARGETS + (WHAT_IF,) if args.what_if else TARGETS
    ensure_wrk()
    workdir = Path(tempfile.mkdtemp(prefix="picloud-bench-"))
    envs = {
        name: {
            "PICLOUD_DATA_DIR": str(workdir / name),
            "PICLOUD_ADMIN_PASSWORD": "bench-password",
            "DATABASE_URL": args.database_url,
        }
        for name in ("picloud", WHAT_IF[0])
    }
    processes, urls = [], {}
    try:
        for name, module in targets:
            process, base_url = start_server(envs.get(name, {}), workdir / f"{name}.log", module, ready_path="/")
            processes.append(process)
            urls[name] = base_url + "/"
            with urllib.request.urlopen(urls[name], timeout=10) as response:
                if response.read() != EXPECTED:
                    raise SystemExit(f"{name} does not answer {EXPECTED!r}")
        for name, _ in targets:
            wrk(urls[name], 3, args.connections)  # warm up: executors, caches, connections
        # Rounds alternate between the targets, so a change in the machine's load
        # (other work on a shared host) weighs on all of them alike.
        runs = {name: [] for name, _ in targets}
        cpu = {name: 0.0 for name, _ in targets}  # CPU seconds of each server's process tree
        per_round = max(1, args.duration // args.rounds)
        for _ in range(args.rounds):
            for (name, _), process in zip(targets, processes):
                before = tree_cpu_seconds(process.pid)
                runs[name].append(wrk(urls[name], per_round, args.connections))
                cpu[name] += tree_cpu_seconds(process.pid) - before
    finally:
        for process in processes:
            stop_server(process)
    results = {name: _combine(measured) for name, measured in runs.items()}

    print(f"{'':12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'non-2xx':>8} {'CPU µs/req':>11}")
    for name, (rps, p50, p99, errors) in results.items():
        # The server's CPU (gunicorn, its workers and their child processes) per request.
        cpu_us = 1e6 * cpu[name] / sum(m[0] * per_round for m in runs[name])
        print(f"{name:12} {rps:8.0f} {p50:8.2f} {p99:8.2f} {errors:8d} {cpu_us:11.0f}")
    bare, pool, picloud = results["bare"], results["pool-only"], results["picloud"]
    print("per round, picloud / bare: " + "  ".join(
        f"{p[0] / b[0]:.2f}" for p, b in zip(runs["picloud"], runs["bare"])
    ))
    print("against bare: " + "   ".join(
        f"{name} {results[name][0] / bare[0]:.2f}" for name, _ in targets[1:]
    ))
    print(f"picloud / pool-only: {picloud[0] / pool[0]:.2f}")
    ratio = picloud[0] / bare[0]
    p99_delta = picloud[2] - bare[2]
    lupa_only = results["lupa-only"][0] / bare[0]
    in_process = results["in-process"][0] / bare[0]
    print("(a shared, noisy machine gives noisy figures: the ratios are measured in one run)")
    print(f"hello req/s vs bare Flask     {ratio:5.2f}x      goal >= 0.60x (0.75x moonshot; references: "
          f"lupa-only {lupa_only:.2f}x, in-process {in_process:.2f}x)   {'ok' if ratio >= 0.60 else 'MISSED'}")
    print(f"hello p99 at {args.connections} connections   {picloud[2]:7.2f} ms  goal <= bare {bare[2]:.2f} ms + 10 ms"
          f"   {'ok' if p99_delta <= 10 else 'MISSED'}")
    print(f"hello non-2xx answers         {picloud[3]:5d}       goal 0   {'ok' if picloud[3] == 0 else 'MISSED'}")
    ok = ratio >= 0.60 and p99_delta <= 10 and picloud[3] == 0
    print("PASS" if ok else "MISS")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0 if ok else 1


def _combine(measured):
    """Mean req/s over the rounds; median p50 and p99; total non-2xx."""
    rps = sum(m[0] for m in measured) / len(measured)
    p50 = sorted(m[1] for m in measured)[len(measured) // 2]
    p99 = sorted(m[2] for m in measured)[len(measured) // 2]
    return rps, p50, p99, sum(m[3] for m in measured)


if __name__ == "__main__":
    sys.exit(main())
