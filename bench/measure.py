"""Run one measured command as a child process: wall time, peak memory, stderr lines with timestamps.

Memory is reported two ways:
- `peak_rss_mib`: `ru_maxrss` of the waited children (the largest single process of the tree), read in
  a fresh wrapper process (`python -m bench.measure`) so that earlier measurements do not leak into it;
- `tree_peak_rss_mib`: the sum of the RSS of the whole process tree, sampled every 0.25 s (catches the
  Prefect server subprocess next to the flow process).
A watchdog kills the child's process group when the tree exceeds `rss_limit_mib` or the timeout passes,
and records that instead of letting the machine run out of memory.
"""

from __future__ import annotations

import contextlib
import json
import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil


def _tree_rss(proc: psutil.Process) -> int:
    total = 0
    try:
        procs = [proc, *proc.children(recursive=True)]
    except psutil.Error:
        return 0
    for p in procs:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


def run_measured(
    cmd: list[str],
    *,
    env: dict | None = None,
    timeout_s: float = 3600,
    rss_limit_mib: float = 20 * 1024,
    echo: bool = True,
    cwd: str | None = None,
) -> dict:
    """Run `cmd` (its own session), return a dict of measurements. Used inside the wrapper process."""
    load_start = os.getloadavg()
    started = time.perf_counter()
    child = subprocess.Popen(
        cmd,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    ps = psutil.Process(child.pid)
    state = {"tree_peak": 0, "killed": None, "peak_at_s": 0.0}
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            rss = _tree_rss(ps)
            if rss > state["tree_peak"]:
                state["tree_peak"] = rss
                state["peak_at_s"] = time.perf_counter() - started
            elapsed = time.perf_counter() - started
            reason = None
            if rss > rss_limit_mib * 2**20:
                reason = f"tree RSS {rss / 2**20:.0f} MiB > limit {rss_limit_mib:.0f} MiB"
            elif elapsed > timeout_s:
                reason = f"timeout after {elapsed:.0f} s"
            if reason:
                state["killed"] = reason
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(child.pid, signal.SIGKILL)
                return
            done.wait(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    lines: list[tuple[float, str]] = []
    assert child.stdout is not None
    for line in child.stdout:
        t = time.perf_counter() - started
        lines.append((round(t, 3), line.rstrip("\n")))
        if echo:
            print(f"  [{t:7.1f}s] {line.rstrip()}", file=sys.stderr, flush=True)
    rc = child.wait()
    wall = time.perf_counter() - started
    done.set()
    watcher.join()
    return {
        "cmd": cmd,
        "returncode": rc,
        "wall_s": round(wall, 3),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        "cpu_s": round(
            resource.getrusage(resource.RUSAGE_CHILDREN).ru_utime
            + resource.getrusage(resource.RUSAGE_CHILDREN).ru_stime,
            1,
        ),
        "tree_peak_rss_mib": round(state["tree_peak"] / 2**20, 1),
        "tree_peak_at_s": round(state["peak_at_s"], 1),
        "killed": state["killed"],
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "lines": lines,
    }


def measured(
    cmd: list[str],
    *,
    env: dict | None = None,
    timeout_s: float = 3600,
    rss_limit_mib: float = 20 * 1024,
    echo: bool = True,
) -> dict:
    """Run `cmd` under a fresh wrapper process (so `ru_maxrss` of the children is this command's alone)."""
    spec = json.dumps({"cmd": cmd, "timeout_s": timeout_s, "rss_limit_mib": rss_limit_mib, "echo": echo})
    out = subprocess.run(
        [sys.executable, "-m", "bench.measure", spec],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    if out.returncode != 0:
        raise RuntimeError(f"measure wrapper failed ({out.returncode}) for {cmd}")
    return json.loads(out.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    spec = json.loads(sys.argv[1])
    result = run_measured(
        spec["cmd"], timeout_s=spec["timeout_s"], rss_limit_mib=spec["rss_limit_mib"], echo=spec["echo"]
    )
    print(json.dumps(result, ensure_ascii=False))
