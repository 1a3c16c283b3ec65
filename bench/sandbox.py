"""Sandbox benchmark: the executor pool's per-run overhead and the count hook's cost.

Each figure is measured against a baseline in the same run (targets: docs/development.md):

- executions per second of a trivial script through the executor pool against a
  bare in-process lupa call, and the overhead of one run in microseconds
  (target: under 1 ms);
- the sandbox's cost on Lua code itself: a tight numeric loop and a table/string
  heavy script, each run in a sandbox (count hook, guarded library) against the
  same code in a bare runtime without a hook (targets: at most 2x, under 25%),
  next to the floor Lua sets: the same code with a count hook that never fires.

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
from picloud.sandbox.runtime import LuaSandbox  # noqa: E402

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


def pool_figures(seconds, processes):
    lua = bare_runtime()
    trivial = lua.execute(f"return function() {TRIVIAL} end")
    bare = rate(trivial, seconds)
    job = ExecutionJob(TRIVIAL, "bench", {}, dict(BUILTIN_DEFAULTS), 5)
    with ExecutorPool(processes) as pool:
        sequential = rate(lambda: pool.run(job), seconds)
        parallel = concurrent_rate(lambda: pool.run(job), seconds, threads=2 * processes)
    overhead_us = (1 / sequential - 1 / bare) * 1e6
    return bare, sequential, parallel, overhead_us


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

    def sandboxed():
        result, _ = LuaSandbox().execute(job, b"{}", lambda *a: None, lambda *a: ("error", b""))
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

    print(f"sandbox benchmark: {args.processes} executor processes, {args.seconds:g} s per figure\n")
    bare, sequential, parallel, overhead_us = pool_figures(args.seconds, args.processes)
    print("trivial script (executions/s)")
    print(f"  bare in-process lupa call     {bare:12,.0f}")
    print(f"  executor pool, one caller     {sequential:12,.0f}   ratio {sequential / bare:.4f}")
    print(f"  executor pool, {2 * args.processes} callers      {parallel:12,.0f}   ratio {parallel / bare:.4f}")
    verdict = "ok" if overhead_us < 1000 else "MISSED"
    print(f"  overhead per run              {overhead_us:9,.0f} us   target < 1000 us   {verdict}\n")

    print("sandbox (count hook + guarded library) vs a bare runtime without hook, CPU time")
    print("  (hook alone: a count hook that never fires, Lua's own cost of trapping each instruction)")
    for name, source, limit, target in [
        ("tight numeric loop", TIGHT_LOOP, 2.0, "<= 2.00x"),
        ("table/string script", TABLE_STRING, 1.25, "<  1.25x"),
    ]:
        bare_seconds, trapped, sandboxed = hook_costs(source)
        ratio = sandboxed / bare_seconds
        verdict = "ok" if ratio <= limit else "MISSED"
        print(f"  {name:20} bare {bare_seconds * 1000:6.1f} ms   hook alone {trapped / bare_seconds:.2f}x"
              f"   sandbox {sandboxed * 1000:6.1f} ms = {ratio:.2f}x   target {target}   {verdict}")


if __name__ == "__main__":
    main()
