"""Retention benchmark: purge 1M execution rows on PostgreSQL while hello traffic runs.

Starts PiCloud under ``gunicorn -c gunicorn.conf.py app:app`` on a fresh temporary
PostgreSQL database, writes ``--rows`` execution rows aged 20 to 60 days straight into
it (one ``INSERT … SELECT generate_series``; the server itself keeps 90 days), then loads
the default app's hello route (``GET /`` on ``localhost``) at a fixed rate (an open-loop
client: each request has a scheduled start, and its latency counts from that schedule,
so a stall shows in full) through ``--rounds`` rounds of two phases:

1. quiet: nothing purges;
2. purging: PiCloud's retention code (``picloud.retention``) deletes the next slice of
   the rows by age, batch by batch and resting between batches as the service does,
   from this process — as another server process or node sharing the database would.

Alternating the phases spreads both over the same stretch of time, so a machine whose
load drifts (other work on it) weighs on both alike. Prints p50 and p99 of all quiet and
all purging requests (a purge phase counts the requests scheduled while it ran), the p99
of each 10 s while purging, the purge's rate, and the p99 ratio next to its goal:
purging keeps p99 within 2× of quiet (docs/operations.md).

    python bench/retention.py [--rows 1000000] [--rounds 4] [--rate 100] [--quiet 20] [--workers 2]
"""
import os
import sys

# Run as a script, this file's folder heads sys.path, and bench/http.py there would
# shadow the standard library's ``http`` package that urllib needs.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import datetime  # noqa: E402
import http.client  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

import psycopg  # noqa: E402

from bench.support import ADMIN_PASSWORD, Background, start_server, stop_server, temporary_postgres  # noqa: E402
from picloud import db as database  # noqa: E402
from picloud import retention  # noqa: E402
from picloud.config import load_settings  # noqa: E402

GOAL_RATIO = 2.0
WINDOW_SECONDS = 10
GREETING = b"Hello from PiCloud!"

FILL_SQL = """
INSERT INTO executions (id, app_id, script_id, source, status, http_status, queued_at, started_at,
                        finished_at, duration_ms, attempt, trigger_depth, logs, usage)
SELECT md5(g::text || %(salt)s), 1, 1, 'http', 'ok', 200, t, t, t + interval '1 ms', 0.4, 1, 0,
       '[{"level":"info","message":"served one request","at":"2026-01-01T00:00:00.000Z"}]',
       '{"instructions":42,"memory_peak_bytes":20480,"http_requests":0}'
FROM generate_series(1, %(rows)s) AS g,
     LATERAL (SELECT (now() AT TIME ZONE 'UTC') - interval '60 days' + g * (interval '40 days' / %(rows)s)) AS at(t)
"""
OLDEST_DAYS, SPAN_DAYS = 60, 40


class Traffic(Background):
    """Request the hello route ``rate`` times a second from ``clients`` connections until stopped.

    Keeps (scheduled start, latency in ms, answer) for every request.
    """

    def __init__(self, port, rate, clients=16):
        super().__init__(clients)
        self.port = port
        self.rate = rate
        self.samples = []
        self._lock = threading.Lock()
        self._next = 0
        self._started = time.monotonic() + 0.1

    def work(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while not self.stopping.is_set():
            with self._lock:
                scheduled = self._started + self._next / self.rate
                self._next += 1
            time.sleep(max(0.0, scheduled - time.monotonic()))
            try:
                connection.request("GET", "/", headers={"Host": "localhost"})
                response = connection.getresponse()
                body = response.read()
                answer = response.status if body == GREETING or response.status != 200 else "wrong body"
            except (OSError, http.client.HTTPException) as error:
                answer = type(error).__name__
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            latency = (time.monotonic() - scheduled) * 1000
            with self._lock:
                self.samples.append((scheduled, latency, answer))
        connection.close()

    def during(self, spans):
        """Return (latencies, answers) of the requests scheduled within any [start, end) span."""
        with self._lock:
            chosen = [
                (latency, answer) for scheduled, latency, answer in self.samples
                if any(start <= scheduled < end for start, end in spans)
            ]
        return [latency for latency, _ in chosen], Counter(answer for _, answer in chosen)


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def purge_slice(settings, cutoff):
    """Purge rows older than ``cutoff`` as the retention service does: a batch per loop(),
    then its rest. Returns the rows purged."""
    # The service's clock, set so that its cutoff (now minus the retention) is ``cutoff``.
    clock = cutoff + datetime.timedelta(days=settings.log_retention_days)
    purger = retention.Retention(settings, clock=lambda: clock)
    before = old_rows(cutoff)
    with database.connection():
        while purger.loop():
            time.sleep(purger.rest_seconds())
    return before - old_rows(cutoff)


def old_rows(cutoff):
    with database.connection():
        return database.db.execute_sql("SELECT count(*) FROM executions WHERE queued_at < %s", (cutoff,)).fetchone()[0]


def report(name, latencies, answers):
    failed = {answer: n for answer, n in answers.items() if not (isinstance(answer, int) and 200 <= answer < 300)}
    print(f"{name:>8}: {len(latencies):6d} requests  p50 {percentile(latencies, 0.5):7.2f} ms  "
          f"p99 {percentile(latencies, 0.99):7.2f} ms  non-2xx {sum(failed.values())} {failed or ''}", flush=True)
    return percentile(latencies, 0.99)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="expired execution rows to purge")
    parser.add_argument("--rate", type=float, default=100, help="hello requests per second")
    parser.add_argument("--rounds", type=int, default=4, help="quiet and purging phases, alternating")
    parser.add_argument("--quiet", type=int, default=20, help="seconds of each quiet phase")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    args = parser.parse_args()

    url, drop = temporary_postgres()
    workdir = Path(tempfile.mkdtemp(prefix="picloud-retention-"))
    env = {
        "DATABASE_URL": url,
        "PICLOUD_DATA_DIR": str(workdir),
        "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "WEB_CONCURRENCY": str(args.workers),
        "PICLOUD_LOG_RETENTION_DAYS": "90",  # the server itself leaves the old rows alone
    }
    process = None
    try:
        process, base_url = start_server(env, workdir / "server.log")
        port = int(base_url.rsplit(":", 1)[1])
        print(f"writing {args.rows:,} execution rows {SPAN_DAYS + 20}-20 days old ...", flush=True)
        started = time.monotonic()
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute(FILL_SQL, {"rows": args.rows, "salt": uuid.uuid4().hex})
            conn.execute("ANALYZE executions")
            now = conn.execute("SELECT now() AT TIME ZONE 'UTC'").fetchone()[0]
        print(f"written in {time.monotonic() - started:.1f} s", flush=True)
        database.init_db(url)
        settings = dataclasses.replace(
            load_settings({"DATABASE_URL": url, "PICLOUD_DATA_DIR": str(workdir)}), log_retention_days=7
        )
        quiet, purging, purged, purge_seconds = [], [], 0, 0.0
        with Traffic(port, args.rate) as traffic:
            time.sleep(3)  # warm up: executors, caches, connections
            for round_ in range(args.rounds):
                start = time.monotonic()
                time.sleep(args.quiet)
                quiet.append((start, time.monotonic()))
                cutoff = now - datetime.timedelta(days=OLDEST_DAYS - SPAN_DAYS * (round_ + 1) / args.rounds)
                start = time.monotonic()
                purged += purge_slice(settings, cutoff)
                purging.append((start, time.monotonic()))
                purge_seconds += purging[-1][1] - start
                print(f"round {round_ + 1}: purged {purged:,} rows so far", flush=True)
        database.close_db()
        quiet_p99 = report("quiet", *traffic.during(quiet))
        purging_p99 = report("purging", *traffic.during(purging))
        windows = []
        for start, end in purging:
            for moment in range(int(start), int(end), WINDOW_SECONDS):
                latencies, _ = traffic.during([(moment, min(moment + WINDOW_SECONDS, end))])
                windows.append(f"{percentile(latencies, 0.99):.0f}")
        print(f"p99 (ms) of each {WINDOW_SECONDS} s while purging: {' '.join(windows)}")
        print(f"purged {purged:,} rows in {purge_seconds:.1f} s ({purged / purge_seconds:,.0f} rows/s), "
              f"{retention.BATCH_SIZE} per batch, resting {retention.YIELD_FACTOR}x each batch's time")
        ratio = purging_p99 / quiet_p99
        verdict = "met" if ratio <= GOAL_RATIO else "NOT met"
        print(f"p99 while purging / quiet: {ratio:.2f}x   goal: <= {GOAL_RATIO:.1f}x   ({verdict})")
    finally:
        if process is not None:
            stop_server(process)
        drop()


if __name__ == "__main__":
    main()
