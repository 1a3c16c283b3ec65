"""Events benchmark: a backlog of KV events drained, against a bare Flask view, and paced writes.

Measures, in one run and on the same machine at the same moment:

- the baseline: requests per second of a bare Flask view returning the hello text
  (``bench/bare_app.py``) under ``gunicorn -c gunicorn.conf.py`` with the same workers,
  loaded by ``wrk`` at 32 connections (as bench/http.py does);
- per database, PiCloud under the same gunicorn settings on a fresh temporary database,
  with an app whose kv trigger (``bench/*``) runs a script writing one document:
  - the backlog: ``/api/v1/execute`` runs of a writer script, each setting 100 keys
    (each ``kv.set`` its own transaction with its event, as any write), queue the events
    much faster than they drain; the drain rate is counted from the moment the writes
    stopped to the last run finished, over the events that started meanwhile. Every
    event must run (checked against the documents written);
  - paced writes through the admin KV API, one client on a fixed schedule well inside
    the drain rate: commit → start latency of each first attempt (an execution's
    ``started_at`` − ``queued_at``; ``queued_at`` is taken inside the writing
    transaction), p50 and p99;
  - as a second baseline, the latency of one durable single-row commit on that database.

Targets (docs/development.md): the PostgreSQL backlog drains at ≥ 0.25× the bare view's
requests per second; commit → start p50 of paced writes under 50 ms on both databases.
The machine is shared: read the figures with the baselines printed next to them.

    python bench/events.py [--writer-runs 100] [--keys-per-run 100] [--paced-events 300]
                           [--paced-rate 20] [--workers 2] [--backend sqlite|postgres|both]
"""
import os
import sys

# Run as a script, this file's folder heads sys.path, and bench/http.py there would
# shadow the standard library's ``http`` package that urllib needs.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import datetime  # noqa: E402
import http.client  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import quote  # noqa: E402

from bench.http import ensure_wrk, wrk  # noqa: E402
from bench.support import (  # noqa: E402
    ADMIN_PASSWORD, Client, expect, run_threads, start_server, stop_server, temporary_postgres,
)


TRIGGERED = 'docs.insert("out", {key = event.key, value = event.value})\n'
# Sets keys-per-run keys, each in its own transaction with its event.
WRITER = 'for i = 1, request.json.keys do kv.set("bench/" .. ctx.execution_id .. "/" .. i, i) end\n'
TARGET_RATIO = 0.25
TARGET_P50_MS = 50.0


def set_up(base_url):
    """Create the app, the trigger and the writer script; return (client, app, writer)."""
    api = Client.admin(base_url)
    app = expect(api.call("POST", "/api/v1/admin/apps", {"slug": "bench"}), 201)
    triggered = expect(api.call("POST", "/api/v1/admin/scripts",
                                {"app_id": app["id"], "name": "triggered", "source": TRIGGERED}), 201)
    expect(api.call("POST", f"/api/v1/admin/apps/{app['id']}/triggers/kv",
                    {"script_id": triggered["id"], "key_glob": "bench/*", "ops": ["set"]}), 201)
    writer = expect(api.call("POST", "/api/v1/admin/scripts",
                             {"app_id": app["id"], "name": "writer", "source": WRITER, "timeout_seconds": 60}), 201)
    return api, app, writer


def queue_backlog(api, writer, runs, keys_per_run, clients):
    """Run the writer ``runs`` times from ``clients`` threads; return the seconds taken.

    A run answered 503 is tried again: the keys it set before failing still count, so
    at least ``runs × keys_per_run`` events are queued.
    """
    pending = iter(range(runs))
    lock = threading.Lock()
    failures = []
    started = time.monotonic()

    def work():
        while True:
            with lock:
                if next(pending, None) is None:
                    return
            for _ in range(5):  # a 503 (the database busy, no slot) is worth another try
                status, body = api.call("POST", f"/api/v1/execute/{writer['id']}", {"keys": keys_per_run})
                if status != 503:
                    break
                time.sleep(1)
            if status >= 300:
                failures.append((status, body))

    run_threads(work, clients)
    if failures:
        raise SystemExit(f"{len(failures)} writer runs failed, e.g. {failures[0]!r}")
    return time.monotonic() - started


def bare_flask_rps(workers, duration, workdir):
    """Return the bare Flask view's requests per second under the same gunicorn settings."""
    ensure_wrk()
    process, base_url = start_server({"WEB_CONCURRENCY": str(workers)}, workdir / "bare.log",
                                     module="bench.bare_app:app", ready_path="/")
    try:
        wrk(base_url + "/", 2, 32)  # warm up
        return wrk(base_url + "/", duration, 32)[0]
    finally:
        stop_server(process)


def write_all(api, app, keys, clients, rate=None):
    """PUT each key through the admin KV API from ``clients`` keep-alive threads.

    With ``rate``, writes start on a fixed schedule of ``rate`` per second (pass one
    client). Returns the seconds taken.
    """
    pending = iter(enumerate(keys))
    lock = threading.Lock()
    failures = []
    host, port = api.base_url.removeprefix("http://").split(":")
    started = time.monotonic()

    def work():
        connection = http.client.HTTPConnection(host, int(port), timeout=120)
        headers = {"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"}
        while True:
            with lock:
                n, key = next(pending, (None, None))
            if key is None:
                connection.close()
                return
            if rate:
                time.sleep(max(0.0, started + n / rate - time.monotonic()))
            connection.request("PUT", f"/api/v1/admin/apps/{app['id']}/kv/{quote(key, safe='')}", body=str(n),
                               headers=headers)
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                failures.append((response.status, body))

    run_threads(work, clients)
    if failures:
        raise SystemExit(f"{len(failures)} writes failed, e.g. {failures[0]!r}")
    return time.monotonic() - started


def wait_until_drained(api, app, events, timeout=600):
    """Wait until ``events`` documents are written; return how many there are.

    Each look counts the collection, which costs the database tens of milliseconds
    with a large backlog, so it looks once a second: the drain is timed from the runs'
    own timestamps, not from when this notices.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        collections = expect(api.call("GET", f"/api/v1/admin/apps/{app['id']}/docs"), 200)["collections"]
        done = sum(c["count"] for c in collections if c["name"] == "out")
        if done >= events:
            return done
        time.sleep(1.0)
    raise SystemExit(f"only {done} of {events} events ran within {timeout}s")


def triggered_runs(api, app, events):
    """Return every kv execution of the app (once each), waiting until all are logged."""
    deadline = time.monotonic() + 60
    while True:
        runs, cursor = {}, None
        while True:
            path = f"/api/v1/admin/apps/{app['id']}/executions?source=kv&limit=500"
            body = expect(api.call("GET", path + (f"&cursor={cursor}" if cursor else "")), 200)
            runs.update((run["id"], run) for run in body["executions"])
            cursor = body["next_cursor"]
            if not cursor:
                break
        if len(runs) >= events or time.monotonic() > deadline:
            return list(runs.values())
        time.sleep(0.5)


def commit_baseline_ms(url, count=200):
    """Return the mean latency of a durable single-row commit on ``url``'s database."""
    if url.startswith("sqlite:///"):
        import sqlite3

        connection = sqlite3.connect(url.removeprefix("sqlite:///") + ".baseline", isolation_level=None)
        connection.execute("PRAGMA journal_mode=wal")
        connection.execute("PRAGMA synchronous=normal")  # as PiCloud runs SQLite
        execute = connection.execute
    else:
        import psycopg

        connection = psycopg.connect(url, autocommit=True)
        execute = connection.execute
    execute("CREATE TABLE bench_baseline (n integer)")
    started = time.perf_counter()
    for n in range(count):
        execute("INSERT INTO bench_baseline VALUES (1)")
    elapsed = time.perf_counter() - started
    execute("DROP TABLE bench_baseline")
    connection.close()
    return elapsed / count * 1000


def moment(text):
    return datetime.datetime.fromisoformat(text.removesuffix("Z"))


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latencies_ms(runs):
    """Return commit → start latencies of the first attempts among ``runs``."""
    return [
        (moment(r["started_at"]) - moment(r["queued_at"])).total_seconds() * 1000
        for r in runs
        if r["status"] == "ok" and r["attempt"] == 1
    ]


def measure(backend, args, workdir):
    drop = None
    if backend == "postgres":
        url, drop = temporary_postgres()
    else:
        url = f"sqlite:///{workdir / 'picloud.db'}"
    env = {
        "DATABASE_URL": url,
        "PICLOUD_DATA_DIR": str(workdir),
        "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "WEB_CONCURRENCY": str(args.workers),
    }
    baseline = commit_baseline_ms(url)
    process, base_url = start_server(env, workdir / f"{backend}.log")
    events = args.writer_runs * args.keys_per_run
    try:
        api, app, writer = set_up(base_url)
        write_seconds = queue_backlog(api, writer, args.writer_runs, args.keys_per_run, args.clients)
        writes_done = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        wait_until_drained(api, app, events)
        backlog_runs = triggered_runs(api, app, events)
        # Paced writes well inside what the system drains: latency without a backlog.
        total = events + args.paced_events
        write_all(api, app, [f"bench/paced/{n}" for n in range(args.paced_events)], 1, rate=args.paced_rate)
        wait_until_drained(api, app, total)
        seen = {r["id"] for r in backlog_runs}
        paced = [r for r in triggered_runs(api, app, total) if r["id"] not in seen]
    finally:
        stop_server(process)
        if drop:
            drop()
    ok = [r for r in backlog_runs if r["status"] == "ok"]
    last_finish = max(moment(r["finished_at"]) for r in ok)
    after_writes = [r for r in ok if moment(r["started_at"]) >= writes_done]
    paced_latency = latencies_ms(paced)
    return {
        "backend": backend,
        "events": len(ok),
        "failed": len(backlog_runs) - len(ok),
        "queue_rate": events / write_seconds,
        "backlog": len(after_writes),
        "drain_rate": len(after_writes) / (last_finish - writes_done).total_seconds() if after_writes else 0.0,
        "paced_p50": statistics.median(paced_latency),
        "paced_p99": percentile(paced_latency, 0.99),
        "commit_ms": baseline,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writer-runs", type=int, default=100, help="runs of the writer script")
    parser.add_argument("--keys-per-run", type=int, default=100, help="keys (events) each writer run sets")
    parser.add_argument("--clients", type=int, default=4, help="concurrent writer runs")
    parser.add_argument("--paced-events", type=int, default=300)
    parser.add_argument("--paced-rate", type=float, default=20, help="writes per second in the paced phase")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (WEB_CONCURRENCY)")
    parser.add_argument("--bare-duration", type=int, default=10, help="seconds of wrk load on the bare view")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    with tempfile.TemporaryDirectory(prefix="picloud-bench-bare-") as workdir:
        bare = bare_flask_rps(args.workers, args.bare_duration, Path(workdir))
    print(f"bare Flask hello: {bare:,.0f} req/s (wrk, 32 connections, {args.workers} workers)", flush=True)
    results = []
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"picloud-bench-{backend}-") as workdir:
            print(f"{backend}: a backlog of {args.writer_runs * args.keys_per_run:,} events, then "
                  f"{args.paced_events} paced writes at {args.paced_rate:g}/s, {args.workers} workers ...", flush=True)
            results.append(measure(backend, args, Path(workdir)))
    print()
    print(f"{'database':<10} {'events':>7} {'failed':>6} {'queued/s':>9} {'backlog':>8} {'drained/s':>10} "
          f"{'x bare':>7} {'paced p50':>10} {'paced p99':>10} {'1 commit ms':>12}")
    for r in results:
        print(f"{r['backend']:<10} {r['events']:>7,} {r['failed']:>6} {r['queue_rate']:>9,.0f} {r['backlog']:>8,} "
              f"{r['drain_rate']:>10,.0f} {r['drain_rate'] / bare:>7.2f} {r['paced_p50']:>10.1f} "
              f"{r['paced_p99']:>10.1f} {r['commit_ms']:>12.2f}")
    print()
    for r in results:
        ratio = r["drain_rate"] / bare
        if r["backend"] == "postgres":
            print(f"postgres backlog drain: {r['drain_rate']:,.0f} events/s = {ratio:.2f}x bare Flask "
                  f"(goal >= {TARGET_RATIO}x): {'ok' if ratio >= TARGET_RATIO else 'MISSED'}")
        print(f"{r['backend']} paced commit->start p50: {r['paced_p50']:.1f} ms (goal < {TARGET_P50_MS:g} ms): "
              f"{'ok' if r['paced_p50'] < TARGET_P50_MS else 'MISSED'}")


if __name__ == "__main__":
    main()
