"""Events benchmark: 10,000 KV writes, each triggering a script that writes a document.

For each database it starts PiCloud under ``gunicorn -c gunicorn.conf.py`` on a fresh
temporary database, creates an app with a kv trigger (``bench/*`` → a script doing
``docs.insert``), and writes the keys through the admin KV API from a few keep-alive
clients. Every write commits with its event; the dispatchers drain the events while
the writes go on.

It prints, per database:
- the write rate of the burst (KV writes committed per second);
- the drain rate: events run per second, from the first event queued to the last run
  finished (all events ran, checked against the documents written); and, apart, the
  backlog left when the writes stopped and the rate it drained at with nothing else
  competing for the workers (shown when at least 100 events were left);
- commit → start latency of first attempts, p50 and p99 (an execution's
  ``started_at`` − ``queued_at``; ``queued_at`` is taken inside the writing
  transaction): for the burst, where it includes time spent queued behind a backlog
  whenever writes outpace the drain, and for a paced phase after it (writes on a fixed
  schedule well inside the drain rate), where it is the dispatch latency itself;
- as the baseline of this machine at this moment, the latency of one durable
  single-row commit on that database.

Targets (docs/development.md): ≥ 1,500 events/s drained on PostgreSQL; p50 under 50 ms on both.

    python bench/events.py [--events 10000] [--clients 8] [--paced-events 500] [--paced-rate 20]
                           [--workers 2] [--backend sqlite|postgres|both]
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
import uuid  # noqa: E402
from pathlib import Path  # noqa: E402
from urllib.parse import quote  # noqa: E402

from bench.support import ADMIN_PASSWORD, Client, expect, start_server  # noqa: E402

PG_ADMIN_URL = os.environ.get("PICLOUD_BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")

TRIGGERED = 'docs.insert("out", {key = event.key, value = event.value})\n'


def temporary_postgres():
    import psycopg

    name = f"picloud_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop():
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name, drop


def set_up(base_url):
    """Create the app and the trigger; return (client, app)."""
    api = Client.admin(base_url)
    app = expect(api.call("POST", "/api/v1/admin/apps", {"slug": "bench"}), 201)
    triggered = expect(api.call("POST", "/api/v1/admin/scripts",
                                {"app_id": app["id"], "name": "triggered", "source": TRIGGERED}), 201)
    expect(api.call("POST", f"/api/v1/admin/apps/{app['id']}/triggers/kv",
                    {"script_id": triggered["id"], "key_glob": "bench/*", "ops": ["set"]}), 201)
    return api, app


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

    threads = [threading.Thread(target=work) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise SystemExit(f"{len(failures)} writes failed, e.g. {failures[0]!r}")
    return time.monotonic() - started


def wait_until_drained(api, app, events, timeout=600):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        collections = expect(api.call("GET", f"/api/v1/admin/apps/{app['id']}/docs"), 200)["collections"]
        done = sum(c["count"] for c in collections if c["name"] == "out")
        if done >= events:
            return done
        time.sleep(0.25)
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
    try:
        api, app = set_up(base_url)
        # The burst: as fast as the clients can write; the dispatchers drain meanwhile.
        write_seconds = write_all(api, app, [f"bench/{n}" for n in range(args.events)], args.clients)
        writes_done = datetime.datetime.now(datetime.UTC).replace(tzinfo=None)
        wait_until_drained(api, app, args.events)
        burst = triggered_runs(api, app, args.events)
        # Paced writes well inside what the system drains: latency without a backlog.
        total = args.events + args.paced_events
        write_all(api, app, [f"bench/paced/{n}" for n in range(args.paced_events)], 1, rate=args.paced_rate)
        wait_until_drained(api, app, total)
        burst_ids = {r["id"] for r in burst}
        paced = [r for r in triggered_runs(api, app, total) if r["id"] not in burst_ids]
    finally:
        process.terminate()
        process.wait(60)
        if drop:
            drop()
    ok = [r for r in burst if r["status"] == "ok"]
    last_finish = max(moment(r["finished_at"]) for r in ok)
    span = (last_finish - min(moment(r["queued_at"]) for r in ok)).total_seconds()
    # The backlog left when the writes stopped, drained with nothing else running.
    backlog = [r for r in ok if moment(r["started_at"]) >= writes_done]
    backlog_seconds = (last_finish - writes_done).total_seconds()
    burst_latency, paced_latency = latencies_ms(burst), latencies_ms(paced)
    return {
        "backend": backend,
        "events": len(ok),
        "failed": len(burst) - len(ok),
        "write_rate": args.events / write_seconds,
        "drain_rate": len(ok) / span,
        "backlog": len(backlog),
        "backlog_rate": len(backlog) / backlog_seconds if len(backlog) >= 100 else None,
        "p50": statistics.median(burst_latency),
        "p99": percentile(burst_latency, 0.99),
        "paced_p50": statistics.median(paced_latency),
        "paced_p99": percentile(paced_latency, 0.99),
        "commit_ms": baseline,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--clients", type=int, default=8, help="concurrent writing clients in the burst")
    parser.add_argument("--paced-events", type=int, default=500)
    parser.add_argument("--paced-rate", type=float, default=20, help="writes per second in the paced phase")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers (WEB_CONCURRENCY)")
    parser.add_argument("--backend", choices=("sqlite", "postgres", "both"), default="both")
    args = parser.parse_args()
    backends = ("sqlite", "postgres") if args.backend == "both" else (args.backend,)
    results = []
    for backend in backends:
        with tempfile.TemporaryDirectory(prefix=f"picloud-bench-{backend}-") as workdir:
            print(f"{backend}: {args.events:,} KV writes, then {args.paced_events} at {args.paced_rate:g}/s, "
                  f"{args.workers} workers ...", flush=True)
            results.append(measure(backend, args, Path(workdir)))
    print()
    print(f"{'database':<10} {'events':>7} {'failed':>6} {'writes/s':>9} {'drained/s':>10} {'backlog':>8} "
          f"{'backlog/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'paced p50':>10} {'paced p99':>10} {'1 commit ms':>12}")
    for r in results:
        print(f"{r['backend']:<10} {r['events']:>7,} {r['failed']:>6} {r['write_rate']:>9,.0f} "
              f"{r['drain_rate']:>10,.0f} {r['backlog']:>8,} "
              f"{(format(r['backlog_rate'], ',.0f') if r['backlog_rate'] else '—'):>10} {r['p50']:>8.1f} {r['p99']:>8.1f} {r['paced_p50']:>10.1f} "
              f"{r['paced_p99']:>10.1f} {r['commit_ms']:>12.2f}")
    for r in results:
        targets = [f"p50 {'ok' if r['p50'] < 50 else 'MISSED'} (< 50 ms; paced: "
                   f"{'ok' if r['paced_p50'] < 50 else 'MISSED'})"]
        if r["backend"] == "postgres":
            targets.insert(0, f"drain {'ok' if r['drain_rate'] >= 1500 else 'MISSED'} (≥ 1,500/s)")
        print(f"{r['backend']}: " + ", ".join(targets))


if __name__ == "__main__":
    main()
