"""A reference for bench/http.py: a bare Flask view that runs the hello script in the
executor pool, with nothing of PiCloud around it (no hosts, routes, gate or log).

The gap between it and the bare view is what the process-pool sandbox itself costs;
the gap between it and PiCloud is what PiCloud adds on top.
"""
import os

from flask import Flask

from picloud.sandbox import BUILTIN_DEFAULTS, ExecutionJob, ExecutorPool
from picloud.services import services

app = Flask(__name__)
pool = services(app).add(ExecutorPool(int(os.environ.get("PICLOUD_EXECUTOR_PROCESSES") or os.cpu_count() or 1)))
HELLO = ExecutionJob(
    source='return "Hello from PiCloud!"\n',
    chunk_name="hello",
    globals={"request": {"method": "GET", "path": "/", "params": {}, "query": {}, "headers": {}, "body": b""}},
    limits=dict(BUILTIN_DEFAULTS),
    timeout_seconds=5,
    app="hello",
)


@app.get("/")
def hello():
    """Run the hello script and answer with its response."""
    outcome = pool.run(HELLO, wait_seconds=2)
    return outcome.response.body, outcome.response.status, list(outcome.response.headers)
