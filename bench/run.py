"""Benchmarks: liushui end to end, its nightly increment and its feature stage, against peers on the
same files in the same run (DuckDB SQL as a dbt-duckdb project would write it, pandas, a DuckDB floor).

    python -m bench.run --targets          # what the targets table needs: 1 M, 10 M, 50 M, 100 M (~2.5 h)
    python -m bench.run --rows 1000000 --rows 10000000 [--rows 50000000] [--only STEPS] [--out bench/out]

`liushui run` is measured with Prefect's temporary server (`run`, `increment`: every process starts its
own, as without PREFECT_API_URL) and against one long-running `prefect server start` that the benchmark
starts once and stops at the end (`increment_served`, optional `run_served`: PREFECT_API_URL set, as a
nightly deployment behind `liushui serve` runs). The increments start from the database of `run`, this
invocation's or, when `run` is not among the steps, the one an earlier invocation left in the out folder.

Every measurement runs in a child process (fresh interpreter, its own peak memory) and is stored in
`<out>/results.json` (merged by row count, so a later run for 50M keeps the 1M / 10M results);
BENCHMARKS.md is regenerated from that file. `--render-only` rewrites BENCHMARKS.md without measuring.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shlex
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from bench import liushui_run
from bench.data import FORMATS, dataset, info, variant
from bench.measure import measured
from bench.report import render, sanity_check

ROOT = Path(__file__).resolve().parent.parent
STEPS = (
    "floor",
    "sql",
    "pandas",
    "core",
    "signals",
    "run",
    "quiet",
    "increment",
    "increment_served",
    "formats",
    "run_served",
)
DEFAULT_STEPS = STEPS[:-1]  # run_served: a second full run (~200 s at 10 M) for a 13 s difference; ask for it
SERVED_STEPS = ("increment_served", "run_served")
TARGETS_PLAN: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1_000_000, DEFAULT_STEPS),
    (10_000_000, DEFAULT_STEPS),
    (50_000_000, ("sql", "run", "quiet", "increment", "increment_served")),
    (100_000_000, ("run",)),
)
"""`--targets`: what the speed issue's targets table needs at each size (the 1 M set also checks that the
peers compute the same thing). About 2 h 30 min on the 2-core machine, most of it the 50 M and 100 M runs."""


def _py(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def _peer(cmd: list[str], **kw) -> dict:
    result = measured(cmd, echo=False, **kw)
    lines = result.pop("lines")
    try:
        result["inner"] = json.loads(lines[-1][1])
    except (IndexError, ValueError):
        result["inner"] = None
        result["tail"] = [ln for _, ln in lines[-15:]]
    return result


def measure_rows(
    rows: int,
    out: Path,
    steps: tuple[str, ...],
    *,
    timeout_s: float,
    rss_limit_mib: float,
    pandas_max_rows: int,
    api_url: str | None = None,
    save: Callable[[dict], None] = lambda partial: None,
) -> dict:
    """Measure `steps` for one row count. `save` is called with the results so far after every step, so
    that a later step's crash (or a killed invocation) keeps what was measured."""
    data = dataset(out, rows)
    res: dict = {
        "rows_target": rows,
        "data": info(data),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "load_start": os.getloadavg(),
    }
    res["git"] = _git_state()
    work = out / f"peers_{rows}"
    work.mkdir(parents=True, exist_ok=True)
    kw = {"timeout_s": timeout_s, "rss_limit_mib": rss_limit_mib}

    def log(name: str, r: dict) -> None:
        r["git"] = _git_state()  # per step: the code may move during a long invocation
        save(res)
        inner = r.get("inner") or {}
        print(
            f"bench {rows:>11,} {name:<10} wall {r['wall_s']:8.1f} s  cpu {r.get('cpu_s', 0):7.1f} s  "
            f"peak {r['peak_rss_mib']:8.0f} MiB  rc {r['returncode']} {r.get('killed') or ''} "
            f"{inner.get('steps', '')}  load {r['load_start'][0]:.1f}->{r['load_end'][0]:.1f}",
            file=sys.stderr,
            flush=True,
        )

    if "floor" in steps:
        res["floor"] = _peer(_py("bench.peer_floor", str(data)), **kw)
        log("floor", res["floor"])
    if "sql" in steps:
        res["sql"] = _peer(_py("bench.peer_sql", str(data), str(work / "sql.duckdb")), **kw)
        log("sql", res["sql"])
    if "pandas" in steps and rows <= pandas_max_rows:
        res["pandas"] = _peer(_py("bench.peer_pandas", str(data), str(work / "pandas.duckdb")), **kw)
        log("pandas", res["pandas"])
    if "core" in steps:
        res["core"] = _peer(_py("bench.liushui_core", "core", str(data), str(work / "liushui_core.duckdb")), **kw)
        log("core", res["core"])
    if "signals" in steps:
        res["signals"] = _peer(_py("bench.liushui_core", "signals", str(data), str(work / "signals_staging")), **kw)
        log("signals", res["signals"])
    base = liushui_run.full_run_dir(out, data)
    if "run" in steps:
        res["run"] = liushui_run.full_run(data, out, **kw)
        log("run", res["run"])
        base_ok = res["run"]["returncode"] in (0, 3) and not res["run"]["killed"]
    else:
        base_ok = liushui_run.published_full_run(base)
    if "quiet" in steps:
        if base_ok:
            res["quiet"] = liushui_run.quiet_runs(data, out, base, timeout_s=timeout_s, rss_limit_mib=rss_limit_mib)
            log("quiet", res["quiet"])
        else:
            print(f"bench {rows:>11,} quiet      skipped: no published full run in {base}", file=sys.stderr)
    for key in ("increment", "increment_served"):
        if key not in steps:
            continue
        if not base_ok:
            print(f"bench {rows:>11,} {key:<10} skipped: no published full run in {base}", file=sys.stderr)
            continue
        served = api_url if key.endswith("_served") else None
        res[key] = liushui_run.increment_run(data, out, base, timeout_s=timeout_s, api_url=served)
        log(key, res[key])
    if "formats" in steps:
        res["formats"] = {}
        for fmt, name in FORMATS.items():
            one = variant(out, rows, fmt)
            measured_fmt: dict = {"data": str(one)}
            res["formats"][fmt] = measured_fmt
            measured_fmt["sql"] = _peer(_py("bench.peer_sql", str(one), str(work / f"sql_{fmt}.duckdb")), **kw)
            log(f"{name}: sql", measured_fmt["sql"])
            if rows <= pandas_max_rows:
                measured_fmt["pandas"] = _peer(
                    _py("bench.peer_pandas", str(one), str(work / f"pandas_{fmt}.duckdb")), **kw
                )
                log(f"{name}: pandas", measured_fmt["pandas"])
            measured_fmt["run"] = liushui_run.full_run(one, out, **kw)
            log(f"{name}: run", measured_fmt["run"])
    if "run_served" in steps:
        res["run_served"] = liushui_run.full_run(data, out, api_url=api_url, **kw)
        log("run_served", res["run_served"])
    if (work / "pandas.duckdb").exists() and rows <= 2_000_000:
        res["sanity"] = sanity_check(
            work / "sql.duckdb",
            work / "pandas.duckdb",
            work / "liushui_core.duckdb",
            out / f"liushui_data_{rows}" / "liushui.duckdb",
        )
        print(f"bench sanity: {json.dumps(res['sanity'], ensure_ascii=False)[:600]}", file=sys.stderr)
    res["load_end"] = os.getloadavg()
    res["finished_at"] = datetime.now(UTC).isoformat(timespec="seconds")
    return res


def _kept_sections(markdown: Path) -> str:
    """The sections other benchmarks own in the file (`bench.ingest_formats`, between their markers), kept."""
    if not markdown.exists():
        return ""
    section = r"<!-- (bench\.[a-z_]+ \d+): start -->.*?<!-- \1: end -->\n?"
    blocks = re.finditer(section, markdown.read_text(encoding="utf-8"), re.DOTALL)
    return "".join("\n" + block.group(0) for block in blocks)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, action="append", help="row count (repeatable; default 1M and 10M)")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument(
        "--only",
        default=",".join(DEFAULT_STEPS),
        help=f"comma-separated steps of {','.join(STEPS)} (default: all but run_served)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help="seconds per measured command (default: 40 min, or 1 min per million rows when that is longer: "
        "100 min at 100 M, where the target is to complete at all)",
    )
    parser.add_argument(
        "--rss-limit-mib",
        type=float,
        default=18 * 1024,
        help="kill a measured command whose process tree exceeds this RSS",
    )
    parser.add_argument("--pandas-max-rows", type=int, default=10_000_000)
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument(
        "--targets",
        action="store_true",
        help="measure what the targets table needs: "
        + "; ".join(f"{n // 1_000_000} M: {','.join(st)}" for n, st in TARGETS_PLAN)
        + " (--rows and --only are then ignored)",
    )
    args = parser.parse_args(argv)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    store = out / "results.json"
    results = json.loads(store.read_text()) if store.exists() else {"by_rows": {}}
    if not args.render_only:
        steps = tuple(s.strip() for s in args.only.split(",") if s.strip())
        unknown = set(steps) - set(STEPS)
        if unknown:
            parser.error(f"unknown steps {sorted(unknown)}")
        plan = TARGETS_PLAN if args.targets else tuple((rows, steps) for rows in args.rows or [1_000_000, 10_000_000])
        steps = tuple(dict.fromkeys(step for _, planned in plan for step in planned))
        results["command"] = "python -m bench.run " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
        if {"run", "increment"} & set(steps):
            started = time.perf_counter()
            warm = liushui_run.warm_up(out)
            print(
                f"bench warm-up (Prefect home) {time.perf_counter() - started:.1f} s rc {warm['returncode']}",
                file=sys.stderr,
                flush=True,
            )
        with contextlib.ExitStack() as stack:
            server = None
            if set(SERVED_STEPS) & set(steps):
                server = stack.enter_context(liushui_run.served_prefect(out))
                started = time.perf_counter()
                warm = liushui_run.warm_up(out, api_url=server["api_url"])
                server["warm_up_s"] = round(time.perf_counter() - started, 1)
                print(
                    f"bench Prefect server {server['api_url']} up in {server['start_s']:.1f} s; warm-up run "
                    f"{server['warm_up_s']:.1f} s rc {warm['returncode']}",
                    file=sys.stderr,
                    flush=True,
                )
            for rows, steps in plan:

                def save(partial: dict, rows: int = rows, steps: tuple[str, ...] = steps) -> None:
                    provisional = {**results, "by_rows": {**results["by_rows"]}}
                    _merge(
                        provisional,
                        rows,
                        {**partial, "finished_at": "(in progress)", "load_end": os.getloadavg()},
                        steps,
                    )
                    store.write_text(json.dumps(provisional, indent=1, ensure_ascii=False, default=str))

                new = measure_rows(
                    rows,
                    out,
                    steps,
                    timeout_s=args.timeout or max(40 * 60.0, rows / 1_000_000 * 60),
                    rss_limit_mib=args.rss_limit_mib,
                    pandas_max_rows=args.pandas_max_rows,
                    api_url=server["api_url"] if server else None,
                    save=save,
                )
                if server:
                    new["prefect_server"] = {k: server[k] for k in ("start_s", "warm_up_s")}
                _merge(results, rows, new, steps)
                store.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str))
        results["machine"] = machine()
        store.write_text(json.dumps(results, indent=1, ensure_ascii=False, default=str))
    args.markdown.write_text(render(results) + _kept_sections(args.markdown))
    print(f"bench: wrote {args.markdown}", file=sys.stderr)
    return 0


def _merge(results: dict, rows: int, new: dict, steps: tuple[str, ...]) -> None:
    """Fold one invocation's measurements for `rows` into `results` (later steps replace earlier ones)."""
    merged = results["by_rows"].get(str(rows), {}) | new
    merged["commands"] = [*merged.get("commands", []), results["command"]]
    merged["invocations"] = [
        *merged.get("invocations", []),
        {
            "command": results["command"],
            "steps": [s for s in steps if s in new],
            "started_at": new["started_at"],
            "finished_at": new["finished_at"],
            "git": new["git"],
            "load_start": new["load_start"],
            "load_end": new["load_end"],
        },
    ]
    results["by_rows"][str(rows)] = merged


def _git_state() -> str:
    """The code measured: HEAD and whether liushui's own files (outside bench/) had uncommitted edits."""
    import subprocess

    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = [
            ln[3:]
            for ln in subprocess.run(
                ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
            ).stdout.splitlines()
            if ln[3:].startswith(("liushui/", "flows/", "transforms/", "expectations/"))
        ]
    except OSError:
        return "unknown"
    return head + (f" + uncommitted edits in {', '.join(dirty)}" if dirty else "")


def machine() -> dict:
    cpu = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        platform.processor(),
    )
    mem_kib = next(
        int(ln.split()[1]) for ln in Path("/proc/meminfo").read_text().splitlines() if ln.startswith("MemTotal")
    )
    import duckdb
    import great_expectations
    import pandas
    import polars
    import prefect
    import pyarrow

    return {
        "nproc": len(os.sched_getaffinity(0)),
        "mem_gib": round(mem_kib / 2**20, 1),
        "cpu": cpu,
        "python": platform.python_version(),
        "polars": polars.__version__,
        "duckdb": duckdb.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
        "prefect": prefect.__version__,
        "great_expectations": great_expectations.__version__,
        "date": datetime.now(UTC).date().isoformat(),
    }


if __name__ == "__main__":
    raise SystemExit(main())
