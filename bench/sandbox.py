"""Sandbox benchmark: the per-run overhead of warm runtimes and the count hook's cost.

Each figure is measured against a baseline in the same run and printed next to its
goal (targets: docs/development.md):

- the per-run overhead of a warm runtime, in process and in CPU time: a trivial
  script in an app's warm ``AppRuntime`` (fresh environment, coroutine, limits,
  seed, response mapping, full collection) against the same script as a bare
  in-process lupa call (goal: under 100 us); next to it what a fresh hardened
  runtime per run costs;
- executions per second (wall clock) of the trivial script through the executor
  pool, the job's app warm in its executors: the in-process cost plus framing,
  pipes and the parent's Python;
- the sandbox's cost on Lua code itself: a tight numeric loop against the same code
  under a count hook that never fires, Lua 5.4's own floor once any count hook is
  set (goal: at most 1.1x), and a table/string heavy script against a bare runtime
  without a hook (goal: under 1.25x).

    python bench/sandbox.py [--seconds 3] [--processes 2]
"""
import argparse
import os
import sys
import threading
import time
from pathlib import Path

# Run as a script, this folder heads sys.path and bench/http.py would shadow the
# standard library's http package; the project root goes there instead.
HERE = Path(__file__).resolve().parent
sys.path[:] = [str(HERE.parent)] + [p for p in sys.path if Path(p or ".").resolve() != HERE]

import lupa.lua54 as lupa  # noqa: E402

from picloud.sandbox import BUILTIN_DEFAULTS, ExecutionJob, ExecutorPool  # noqa: E402
from picloud.sandbox.runtime import AppRuntime  # noqa: E402

TRIVIAL = 'return "Hello from PiCloud!"'

TIGHT_LOOP = """
local s = 0
for i = 1, 20000000 do s = s + i end
return s
"""

TABLE_STRING = """
local total = 0
for round = 1, 8 do
  local words = {}
  for i = 1, 20000 do words[i] = string.format("item-%05d", i) end
  local index = {}
  for i, w in ipairs(words) do index[w] = i end
  for i = 1, #words do
    local up = words[i]:upper()
    if up:find("ITEM%-0") then total = total + #up end
    total = total + index[words[i]]
  end
  table.sort(words, function(a, b) return a > b end)
  local csv = table.concat(words, ",")
  local _, count = csv:gsub("item", "x")
  local parts = {}
  for part in csv:gmatch("[^,]+") do parts[#parts + 1] = part:sub(-3) end
  total = total + count + #parts
end
return total
"""


def rate(function, seconds):
    """Call ``function`` repeatedly for about ``seconds``; return calls per second."""
    function()
    count, started = 0, time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(50):
            function()
        count += 50
        now = time.perf_counter()
        if now >= deadline:
            return count / (now - started)


def cpu_rate(function, seconds, batch=200):
    """Return calls per CPU second of ``function``: the best batch within about ``seconds``.

    CPU time of this process, best of many batches: on a shared machine, wall time
    would count other processes' turns, and a mean would count their cache misses.
    """
    function()
    best = float("inf")
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        started = time.process_time()
        for _ in range(batch):
            function()
        best = min(best, time.process_time() - started)
    return batch / best


def concurrent_rate(function, seconds, threads):
    counts = [0] * threads
    deadline = time.perf_counter() + seconds

    def worker(slot):
        while time.perf_counter() < deadline:
            function()
            counts[slot] += 1

    started = time.perf_counter()
    pool = [threading.Thread(target=worker, args=(slot,)) for slot in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def bare_runtime():
    return lupa.LuaRuntime(encoding=None, register_eval=False, register_builtins=False)


def bare_rate(seconds):
    """Return calls per second of the trivial script as a bare in-process lupa call."""
    lua = bare_runtime()
    trivial = lua.execute(f"return function() {TRIVIAL} end")
    return cpu_rate(trivial, seconds, batch=20000)


def in_process_figures(seconds):
    """Return runs per second of the trivial script: (warm AppRuntime, fresh AppRuntime each run)."""
    job = {"source": TRIVIAL, "chunk_name": "bench", "limits": dict(BUILTIN_DEFAULTS), "host_api": ()}
    globals = {"request": {"method": "GET", "path": "/", "params": {}, "query": {}, "headers": {}, "body": b""}}
    warm = AppRuntime()

    def warm_run():
        result, _ = warm.execute(job, globals, lambda *a: None, None)
        warm.finish()
        assert result["status"] == "ok", result

    def fresh_run():
        runtime = AppRuntime()
        runtime.execute(job, globals, lambda *a: None, None)
        runtime.finish()

    return cpu_rate(warm_run, seconds), cpu_rate(fresh_run, seconds, batch=20)


def pool_figures(seconds, processes):
    """Return runs per second through the pool: (one caller, two callers per process)."""
    job = ExecutionJob(TRIVIAL, "bench", {}, dict(BUILTIN_DEFAULTS), 5, app="bench")
    with ExecutorPool(processes) as pool:
        sequential = rate(lambda: pool.run(job), seconds)
        parallel = concurrent_rate(lambda: pool.run(job), seconds, threads=2 * processes)
    return sequential, parallel


def cpu_seconds(function):
    started = time.process_time()
    function()
    return time.process_time() - started


def hook_costs(source, repeat=7):
    """Return CPU seconds of ``source``: (bare, count hook alone, sandbox), least of ``repeat``.

    "Count hook alone" installs a hook that never fires: what Lua 5.4 itself charges
    for trapping every instruction once any count hook is set. Runs alternate so all
    three meet the same machine load; CPU time and the minimum keep other processes'
    noise out of the ratios.
    """
    lua = bare_runtime()
    bare_chunk = lua.execute(f"return function() {source} end")
    trapped_chunk = lua.execute(
        "local chunk = load(...)\n"
        "return function() debug.sethook(function() end, '', 0x7fffffff) chunk() debug.sethook() end",
        source.encode(),
    )
    limits = {**BUILTIN_DEFAULTS, "max_instructions": 10**12, "max_memory_bytes": 1 << 30}
    job = {"source": source, "chunk_name": "bench", "limits": limits, "host_api": ()}
    warm = AppRuntime()

    def sandboxed():
        result, _ = warm.execute(job, {}, lambda *a: None, lambda *a: ("error", b""))
        warm.finish()
        assert result["status"] == "ok", result

    runs = ([], [], [])
    for _ in range(repeat):
        for times, function in zip(runs, (bare_chunk, trapped_chunk, sandboxed)):
            times.append(cpu_seconds(function))
    return tuple(min(times) for times in runs)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="time per throughput figure")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 2, help="executor processes")
    args = parser.parse_args()

    print(f"sandbox benchmark: {args.processes} executor processes, {args.seconds:g} s per figure")
    print("(a shared, noisy machine gives noisy figures: compare ratios within one run)\n")
    bare = bare_rate(args.seconds)
    warm, fresh = in_process_figures(args.seconds)
    sequential, parallel = pool_figures(args.seconds, args.processes)
    print("trivial script (executions/s; in process: per CPU second, best batch)")
    print(f"  bare in-process lupa call       {bare:12,.0f}")
    print(f"  warm runtime, in process        {warm:12,.0f}   ratio {warm / bare:.4f}")
    print(f"  fresh runtime each run          {fresh:12,.0f}   ratio {fresh / bare:.4f}")
    print(f"  executor pool, one caller       {sequential:12,.0f}   (wall clock)")
    print(f"  executor pool, {2 * args.processes} callers        {parallel:12,.0f}   (wall clock)")
    warm_us = (1 / warm - 1 / bare) * 1e6
    print(f"  per-run overhead, warm          {warm_us:9,.0f} us   goal < 100 us   {verdict(warm_us < 100)}")
    print(f"  per-run overhead, fresh         {(1 / fresh - 1 / bare) * 1e6:9,.0f} us   (what warm runtimes save)")
    print(f"  wall time per run, through pool {1e6 / sequential:9,.0f} us   (one caller: + framing, pipes, two processes)\n")

    print("sandbox cost on Lua code, CPU time (least of 7)")
    bare_seconds, trapped, sandboxed = hook_costs(TIGHT_LOOP)
    ratio = sandboxed / trapped
    print(f"  tight numeric loop   bare {bare_seconds * 1000:6.1f} ms   never-firing hook {trapped * 1000:6.1f} ms"
          f"   sandbox {sandboxed * 1000:6.1f} ms = {ratio:.2f}x the hook   goal <= 1.10x   {verdict(ratio <= 1.1)}")
    bare_seconds, trapped, sandboxed = hook_costs(TABLE_STRING)
    ratio = sandboxed / bare_seconds
    print(f"  table/string script  bare {bare_seconds * 1000:6.1f} ms   never-firing hook {trapped * 1000:6.1f} ms"
          f"   sandbox {sandboxed * 1000:6.1f} ms = {ratio:.2f}x bare       goal <  1.25x   {verdict(ratio < 1.25)}")


def verdict(met):
    return "ok" if met else "MISSED"


if __name__ == "__main__":
    main()
