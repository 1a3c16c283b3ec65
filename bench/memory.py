"""Memory benchmark: resident memory of the workers with 100 apps × 10 scripts × 10 routes.

Starts PiCloud under ``gunicorn -c gunicorn.conf.py app:app`` (the settings bench/http.py
uses) on a fresh temporary database and creates, through the admin API from a few client
threads, 100 apps, each claiming its own host (``app-N.bench.test``) with 10 scripts
and 10 routes per script (``GET /sS/rR``): 1,000 scripts and 10,000 routes in all, every
script a different source. Then:

- fill: every route is requested once, each on a fresh connection, so the requests
  spread over the workers and every worker loads every app's domains, route table and
  scripts, and every executor compiles scripts; each answer is checked;
- load: a few keep-alive clients request routes drawn at random from a sample of them
  for a few seconds.

Prints, at start, after the configuration, after the fill and after the load, each
gunicorn worker's resident memory (VmRSS from /proc/<pid>/status) and, apart, the
summed resident memory of its executor processes (separate processes, running the Lua
sandbox); at the end, each worker's peak (VmHWM). Target (docs/development.md): a worker stays
under 300 MB RSS; the verdict is on the workers' peak. The executors are reported, not
judged: the target is about the worker.

    python bench/memory.py [--apps 100] [--scripts 10] [--routes 10] [--clients 8]
                           [--load-seconds 20] [--sample 500] [--database-url URL]
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
import random  # noqa: E402
import shutil  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from pathlib import Path  # noqa: E402

from bench.support import ADMIN_PASSWORD, children, run_threads, start_server, stop_server  # noqa: E402

TARGET_MB = 300


class Api:
    """A keep-alive JSON client of the admin API, one per thread."""

    def __init__(self, port, token=None):
        self.port = port
        self.token = token
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def call(self, method, path, body, status=201):
        headers = {"Content-Type": "application/json"}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        try:
            self.connection.request(method, path, body=json.dumps(body), headers=headers)
            response = self.connection.getresponse()
        except (OSError, http.client.HTTPException):
            # The server closed an idle keep-alive connection: once more on a new one.
            self.connection.close()
            self.connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=120)
            self.connection.request(method, path, body=json.dumps(body), headers=headers)
            response = self.connection.getresponse()
        raw = response.read()
        if response.status != status:
            raise SystemExit(f"{method} {path}: expected {status}, got {response.status}: {raw[:300]!r}")
        return json.loads(raw)

    def close(self):
        self.connection.close()


def in_threads(count, work, items, client=None):
    """Call ``work(client, item)`` for every item from ``count`` threads.

    ``client()`` makes each thread's own client (closed at the end); the first error
    stops every thread and is raised.
    """
    items = iter(items)
    lock = threading.Lock()
    errors = []

    def run():
        state = client() if client else None
        try:
            while not errors:
                with lock:
                    item = next(items, None)
                if item is None:
                    return
                work(state, item)
        except BaseException as error:  # noqa: BLE001 - raised again by the caller
            errors.append(error)
        finally:
            if state is not None:
                state.close()

    run_threads(run, count)
    if errors:
        raise errors[0]


def host_of(app):
    return f"app-{app}.bench.test"


def body_of(app, script, route):
    return f"Hello from app {app}, script {script}, route /s{script}/r{route}".encode()


def source_of(app, script):
    # Every script a different source, as in real use: nothing is shared between them.
    return (
        f"-- app {app}, script {script}\n"
        f"local greeting = \"Hello from app {app}, script {script}, route \"\n"
        "return greeting .. request.path\n"
    )


def create_everything(port, token, apps, scripts, routes, clients):
    """Create the apps, their domains, scripts and routes from ``clients`` threads."""
    done = Counter()
    lock = threading.Lock()

    def create_app(api, n):
        app = api.call("POST", "/api/v1/admin/apps", {"slug": f"app-{n}"})
        api.call("POST", f"/api/v1/admin/apps/{app['id']}/domains", {"pattern": host_of(n)})
        for s in range(scripts):
            script = api.call("POST", "/api/v1/admin/scripts",
                              {"app_id": app["id"], "name": f"script-{s}", "source": source_of(n, s)})
            for r in range(routes):
                api.call("POST", f"/api/v1/admin/apps/{app['id']}/routes",
                         {"method": "GET", "path": f"/s{s}/r{r}", "script_id": script["id"]})
        with lock:
            done["apps"] += 1
            if done["apps"] % 10 == 0:
                print(f"  {done['apps']} apps created", flush=True)

    in_threads(clients, create_app, range(apps), client=lambda: Api(port, token))


def request_route(connection, target):
    """GET one route; return the status, or "wrong body" when a 200 says something else."""
    app, script, route = target
    connection.request("GET", f"/s{script}/r{route}", headers={"Host": host_of(app)})
    response = connection.getresponse()
    body = response.read()
    if response.status == 200 and body != body_of(app, script, route):
        return "wrong body"
    return response.status


def fill(port, targets, clients):
    """Request every route once, each on a fresh connection; return answers by status."""
    answers = Counter()
    lock = threading.Lock()

    def work(_, target):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            answer = request_route(connection, target)
        except (OSError, http.client.HTTPException) as error:
            answer = type(error).__name__
        finally:
            connection.close()
        with lock:
            answers[answer] += 1

    in_threads(clients, work, targets)
    return answers


def load(port, sample, seconds, clients):
    """Request random routes of ``sample`` from keep-alive clients; return (requests/s, answers)."""
    answers = Counter()
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def work():
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        local = Counter()
        while time.monotonic() < deadline:
            try:
                local[request_route(connection, random.choice(sample))] += 1
            except (OSError, http.client.HTTPException) as error:
                local[type(error).__name__] += 1
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        connection.close()
        with lock:
            answers.update(local)

    started = time.monotonic()
    run_threads(work, clients)
    return sum(answers.values()) / (time.monotonic() - started), answers


def status_mb(pid, field):
    """Return a memory field of /proc/<pid>/status (VmRSS, VmHWM) in MB, 0 if the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return 0.0


def snapshot(master):
    """Return {worker pid: (worker VmRSS MB, executors' summed VmRSS MB, executor count)}."""
    result = {}
    for worker in children(master):
        executors = children(worker)
        result[worker] = (status_mb(worker, "VmRSS"), sum(status_mb(e, "VmRSS") for e in executors), len(executors))
    return result


def show(label, memory):
    print(f"{label:16} " + "   ".join(
        f"worker {pid}: {rss:6.1f} MB (executors: {count} x, {executors:6.1f} MB)"
        for pid, (rss, executors, count) in memory.items()
    ), flush=True)


def non_200(answers):
    return sum(count for answer, count in answers.items() if answer != 200)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--scripts", type=int, default=10, help="scripts per app")
    parser.add_argument("--routes", type=int, default=10, help="routes per script")
    parser.add_argument("--clients", type=int, default=8, help="client threads creating and requesting")
    parser.add_argument("--load-seconds", type=int, default=20)
    parser.add_argument("--sample", type=int, default=500, help="routes the load is drawn from")
    parser.add_argument("--database-url", default="", help="PiCloud's DATABASE_URL (default: SQLite in a temp dir)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="picloud-bench-memory-"))
    env = {
        "PICLOUD_DATA_DIR": str(workdir / "data"),
        "PICLOUD_ADMIN_PASSWORD": ADMIN_PASSWORD,
        "DATABASE_URL": args.database_url,
    }
    targets = [(a, s, r) for a in range(args.apps) for s in range(args.scripts) for r in range(args.routes)]
    process = None
    try:
        process, base_url = start_server(env, workdir / "server.log")
        port = int(base_url.rsplit(":", 1)[1])
        time.sleep(2)  # the executor pools finish booting
        show("at start", snapshot(process.pid))
        token = Api(port).call("POST", "/api/v1/auth/token",
                               {"username": "admin", "password": ADMIN_PASSWORD})["token"]
        print(f"creating {args.apps} apps x {args.scripts} scripts x {args.routes} routes "
              f"from {args.clients} clients ...", flush=True)
        started = time.monotonic()
        create_everything(port, token, args.apps, args.scripts, args.routes, args.clients)
        print(f"  created in {time.monotonic() - started:.0f} s", flush=True)
        show("configured", snapshot(process.pid))
        started = time.monotonic()
        filled = fill(port, random.sample(targets, len(targets)), args.clients)
        print(f"filled: {len(targets)} routes requested in {time.monotonic() - started:.0f} s, "
              f"answers {dict(filled)}", flush=True)
        show("after fill", snapshot(process.pid))
        sample = random.sample(targets, min(args.sample, len(targets)))
        rate, loaded = load(port, sample, args.load_seconds, args.clients)
        print(f"load: {args.load_seconds} s over {len(sample)} routes, {rate:.0f} req/s, "
              f"answers {dict(loaded)}", flush=True)
        final = snapshot(process.pid)
        show("after load", final)
        peaks = {worker: status_mb(worker, "VmHWM") for worker in final}
    finally:
        if process is not None:
            stop_server(process)
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    for worker, peak in peaks.items():
        rss, executors, count = final[worker]
        print(f"worker {worker}: VmRSS {rss:.1f} MB, peak VmHWM {peak:.1f} MB; "
              f"its {count} executors: {executors:.1f} MB together")
    worst = max(peaks.values())
    failures = non_200(filled) + non_200(loaded)
    print(f"largest worker peak: {worst:.1f} MB (target < {TARGET_MB} MB); answers other than 200: {failures}")
    ok = worst < TARGET_MB and failures == 0
    print("PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
