"""A what-if reference for bench/http.py: PiCloud itself, its scripts run inside the web worker.

Everything of PiCloud stays (hosts, routes, the gate, the execution log, job checks,
outcomes), except the executor process: each worker runs a job in a warm
``AppRuntime`` of its own, one per app, as an executor would, and answers host calls
directly. PiCloud does not run this way. A script stuck inside one C call would freeze
the worker with every request it holds, and a long run holds up the worker's other
requests meanwhile (its p99 shows it). It measures what PiCloud would reach without the
process boundary. For the hello route only: no timeout, no runtime rebuilt after a
failed run, and the executor processes PiCloud starts stay idle.

    gunicorn -c gunicorn.conf.py bench.picloud_in_process:app
"""
from gevent import monkey

monkey.patch_all()

import time  # noqa: E402

from picloud.sandbox import pool, protocol  # noqa: E402
from picloud.sandbox.runtime import AppRuntime  # noqa: E402

_runtimes = {}  # app -> its warm runtime in this worker


def _run_here(self, job, host=None, wait_seconds=None):
    """ExecutorPool.run, without the executor: the job runs in this process."""
    pool._check_job(job, host)
    runtime = _runtimes.get(job.app)
    if runtime is None:
        runtime = _runtimes[job.app] = AppRuntime()
    run = pool._RunState(job)
    started = time.monotonic()
    logs = []

    def on_log(level, message):
        logs.append([level, message.decode("utf-8", "replace"), time.time()])

    def on_call(module, fn, args_json):
        reply, payload = run.host_call(host, {"module": module, "fn": fn}, args_json)
        if reply is pool._OK_REPLY:
            return "ok", payload
        reply = protocol.parse_header(reply)
        return reply["status"], reply.get("message", "").encode()

    spec = {"source": job.source, "chunk_name": job.chunk_name, "limits": dict(job.limits),
            "host_api": job.host_api, "script": job.source}
    # The job's globals as they are: an executor gets the same values, through marshal.
    result, body = runtime.execute(spec, job.globals, on_log, on_call)
    runtime.finish()
    run.add_logs(logs)
    checked = protocol.checked_result(protocol.result_header(result))
    return run.outcome(checked, protocol.result_payload(result["usage"], body), pool._elapsed_ms(started))


pool.ExecutorPool.run = _run_here

from app import app  # noqa: E402,F401
