"""Fairness benchmark: one app's hello route while another app's script spins to its timeout.

Starts PiCloud under ``gunicorn -c gunicorn.conf.py app:app`` (the settings bench/http.py
uses) on a fresh temporary database and creates two apps, each claiming its own host:

- ``spinner`` (``spinner.bench.test``): ``GET /spin`` runs ``while true do end`` with a
  timeout of a few seconds. Its instruction budget is raised (through
  ``PICLOUD_SANDBOX_CEILING_MAX_INSTRUCTIONS``) far above what it can use in that time,
  so every run ends at its timeout (504) with the executor process killed and replaced,
  not early at ``max_instructions``.
- ``hello`` (``hello.bench.test``): ``GET /`` returns a greeting.

The hello route is loaded at a fixed rate (an open-loop client: each request has a
scheduled start, and its latency is counted from that schedule, so a stall shows in full
instead of merely slowing the client down) in alternating phases: alone (the baseline,
measured in the same run), and while spinners keep ``GET /spin`` requests continuously in
flight, each sending its next request as soon as the last one timed out.

How many spinners: by default the executor processes of one worker minus one (one on
the 2-core machine), which leaves every worker a free executor however the kernel
spreads the connections. ``--spinners 3`` (or more) floods every executor the spinning
app may take: the gate of each worker then keeps the spinning app to its fair share
(``PICLOUD_APP_MAX_SHARE``, one of two slots here) while the hello app's requests keep
coming, and the hello route must not notice (docs/concurrency.md).

Prints the hello route's p50, p99 and non-2xx answers for both phases and the spinners'
answers. Target (docs/development.md): with the spinners running, the hello route's p99 stays under
50 ms (and it answers nothing but 2xx).

    python bench/fairness.py [--rate 100] [--duration 20] [--rounds 2] [--spin-timeout 3]
                             [--spinners N] [--database-url URL]
"""
import os
import sys

# Run as a script, this file's folder heads sys.path, and bench/http.py there would
# shadow the standard library's ``http`` package that urllib needs.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import argparse  # noqa: E402
import http.client  # noqa: E402
import json  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.support import (  # noqa: E402
    ADMIN_PASSWORD, Background, Client, children, expect, run_threads, start_server, stop_server,
)

TARGET_P99_MS = 50.0
HELLO_HOST = "hello.bench.test"
SPINNER_HOST = "spinner.bench.test"
GREETING = b"Hello from the other app!"
# Far more instructions than a tight loop runs in any timeout a script may ask for.
SPIN_INSTRUCTIONS = 10**13


def executor_counts(master):
    """Return (worker ids, executor processes of each) once the workers have as many each.

    The spin that ``check_routes`` ran had its executor killed; wait for the replacement.
    """
    deadline = time.monotonic() + 30
    while True:
        workers = children(master)
        executors = [len(children(worker)) for worker in workers]
        if len(set(executors)) == 1 or time.monotonic() > deadline:
            return workers, executors
        time.sleep(0.2)


def set_up(base_url, spin_timeout):
    """Create the two apps, their scripts and routes; return the admin client."""
    api = Client.admin(base_url)
    for slug, host, source, path, extra in (
        ("spinner", SPINNER_HOST, "while true do end\n", "/spin",
         {"timeout_seconds": spin_timeout, "sandbox": {"max_instructions": SPIN_INSTRUCTIONS}}),
        ("hello", HELLO_HOST, f"return {GREETING.decode()!r}\n", "/", {}),
    ):
        app = expect(api.call("POST", "/api/v1/admin/apps", {"slug": slug}), 201)
        expect(api.call("POST", f"/api/v1/admin/apps/{app['id']}/domains", {"pattern": host}), 201)
        script = expect(api.call("POST", "/api/v1/admin/scripts",
                                 {"app_id": app["id"], "name": slug, "source": source, **extra}), 201)
        expect(api.call("POST", f"/api/v1/admin/apps/{app['id']}/routes",
                        {"method": "GET", "path": path, "script_id": script["id"]}), 201)
    return api


def check_routes(api, spin_timeout):
    """Check that hello answers its greeting and that a spin ends at its timeout."""
    status, body = api.call("GET", "/", host=HELLO_HOST)
    if (status, body) != (200, GREETING):
        raise SystemExit(f"the hello route answered {status}: {body!r}")
    started = time.monotonic()
    status, body = api.call("GET", "/spin", host=SPINNER_HOST)
    elapsed = time.monotonic() - started
    code = json.loads(body)["error"]["code"] if status >= 400 else None
    if status != 504 or code != "timeout" or elapsed < spin_timeout:
        raise SystemExit(f"a spin answered {status} {code} after {elapsed:.1f} s, not 504 timeout")


class Spinners(Background):
    """Threads that each keep one ``GET /spin`` in flight until stopped."""

    def __init__(self, port, count, spin_timeout):
        super().__init__(count)
        self.port = port
        self.spin_timeout = spin_timeout
        self.answers = Counter()

    def work(self):
        while not self.stopping.is_set():
            # A fresh connection each time, as separate callers would: each spin lands on
            # whichever worker accepts it.
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.spin_timeout + 60)
            try:
                connection.request("GET", "/spin", headers={"Host": SPINNER_HOST})
                response = connection.getresponse()
                response.read()
                self.answers[response.status] += 1
            except OSError as error:
                self.answers[type(error).__name__] += 1
            finally:
                connection.close()


def fixed_rate(port, rate, duration, clients=32):
    """Request the hello route ``rate`` times a second for ``duration`` seconds.

    Returns (latencies in ms, each from the request's scheduled start; answers by status).
    """
    total = int(rate * duration)
    next_request = iter(range(total))
    lock = threading.Lock()
    latencies, answers = [], Counter()
    started = time.monotonic() + 0.1

    def work():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                n = next(next_request, None)
            if n is None:
                break
            scheduled = started + n / rate
            time.sleep(max(0.0, scheduled - time.monotonic()))
            try:
                connection.request("GET", "/", headers={"Host": HELLO_HOST})
                response = connection.getresponse()
                body = response.read()
                answer = response.status if body == GREETING or response.status != 200 else "wrong body"
            except (OSError, http.client.HTTPException) as error:
                answer = type(error).__name__
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            finished = time.monotonic()
            with lock:
                latencies.append((finished - scheduled) * 1000)
                answers[answer] += 1
        connection.close()

    run_threads(work, clients)
    return latencies, answers


def percentile(values, fraction):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def non_2xx(answers):
    return sum(count for answer, count in answers.items() if not (isinstance(answer, int) and 200 <= answer < 300))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=100, help="hello requests per second")
    parser.add_argument("--duration", type=int, default=20, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=2, help="alternating baseline/spinning rounds")
    parser.add_argument("--spin-timeout", type=int, default=3, help="timeout_seconds of the spinning script")
    parser.add_argument("--spinners", type=int, default=None,
                        help="spins kept in flight (default: executor processes per worker - 1, at least 1)")
    parser.add_argument("--database-url", default="", help="PiCloud's DATABASE_URL (default: SQLite in a temp dir)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="picloud-bench-fairness-"))
    env = {
        "PICLOUD_DATA_DIR": str(workdir / "data"),
        "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "DATABASE_URL": args.database_url,
        "PICLOUD_SANDBOX_CEILING_MAX_INSTRUCTIONS": str(SPIN_INSTRUCTIONS),
    }
    process = None
    try:
        process, base_url = start_server(env, workdir / "server.log")
        port = int(base_url.rpartition(":")[2])
        api = set_up(base_url, args.spin_timeout)
        check_routes(api, args.spin_timeout)
        workers, executors = executor_counts(process.pid)
        spinners = args.spinners if args.spinners is not None else max(1, max(executors) - 1)
        print(f"{len(workers)} workers with {'+'.join(map(str, executors))} executor processes; "
              f"{spinners} spinner(s) of {args.spin_timeout} s; hello at {args.rate:g}/s, "
              f"{args.rounds} x {args.duration} s per phase", flush=True)
        fixed_rate(port, args.rate, 2)  # warm up: connections, caches
        phases = {"alone": ([], Counter()), "spinning": ([], Counter())}
        spin_answers = Counter()
        for round_number in range(args.rounds):
            alone, answers = fixed_rate(port, args.rate, args.duration)
            phases["alone"][0].extend(alone)
            phases["alone"][1].update(answers)
            with Spinners(port, spinners, args.spin_timeout) as spinning:
                time.sleep(1)  # every spinner's first run under way
                contended, answers = fixed_rate(port, args.rate, args.duration)
            phases["spinning"][0].extend(contended)
            phases["spinning"][1].update(answers)
            spin_answers.update(spinning.answers)
            print(f"round {round_number + 1}: p99 alone {percentile(alone, 0.99):.1f} ms, "
                  f"spinning {percentile(contended, 0.99):.1f} ms", flush=True)
    finally:
        if process is not None:
            stop_server(process)
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"{'hello route':14} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'non-2xx':>8}")
    for name, (latencies, answers) in phases.items():
        print(f"{name:14} {len(latencies):9d} {percentile(latencies, 0.5):8.2f} {percentile(latencies, 0.99):8.2f} "
              f"{max(latencies):8.1f} {non_2xx(answers):8d}")
    others = {answer: count for answer, count in phases["spinning"][1].items() if answer != 200}
    if others:
        print(f"hello answers other than 200 while spinning: {dict(others)}")
    print(f"spinner answers: {dict(spin_answers)} (504 expected)")
    latencies, answers = phases["spinning"]
    p99 = percentile(latencies, 0.99)
    print(f"hello p99 while spinning: {p99:.2f} ms (target < {TARGET_P99_MS:g} ms); "
          f"non-2xx: {non_2xx(answers)} (target 0)")
    ok = p99 < TARGET_P99_MS and non_2xx(answers) == 0
    print("PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
