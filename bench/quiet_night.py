"""A night with nothing new: how long `liushui run` takes, and how soon it prints its first line.

    python -m bench.quiet_night --rows 1000000

Generates the benchmark data of that size once (`bench.data`), publishes it with one full `liushui run`
(Prefect's temporary server, as on a developer's machine), then runs `liushui run` on the same inbox
`--repeat` times: every file is known, so each is a night with nothing to do (flows/noop.py answers it
without starting Prefect). Each run is a subprocess measured from its start: wall time, the time to its first
output line, its `pipeline_runs` row (status, stages). The section between the markers in BENCHMARKS.md is
replaced (or appended); nothing else in the file is touched.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.data import dataset
from bench.ingest_formats import update_markdown
from bench.liushui_run import _run, stage_table

ROOT = Path(__file__).resolve().parents[1]
QUIET_TARGET_S = 5.0
FIRST_LINE_TARGET_S = 1.0


def markers(n: int) -> tuple[str, str]:
    return f"<!-- bench.quiet_night {n}: start -->", f"<!-- bench.quiet_night {n}: end -->"


def measure(rows: int, out: Path, repeat: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(the publishing full run, the quiet runs): each with wall_s, first_line_s and its pipeline_runs row."""
    data = dataset(out, rows)
    db = out / f"quiet_night_{rows}" / "liushui.duckdb"
    if db.exists():  # a fresh database: the full run is measured too, and publishes what the quiet runs find
        for path in db.parent.iterdir():
            if path.is_file():
                path.unlink()
    db.parent.mkdir(parents=True, exist_ok=True)
    runs = []
    for _ in range(repeat + 1):
        result = _run(data / "inbox", data / "reference", db, out, echo=False)
        if result["returncode"] not in (0, 4):
            raise SystemExit(f"liushui run failed ({result['returncode']}): {result['lines'][-5:]}")
        recorded = stage_table(db)[-1]
        runs.append(
            {
                "wall_s": result["wall_s"],
                "cpu_s": result["cpu_s"],
                "first_line_s": result["lines"][0][0] if result["lines"] else None,
                "first_line": result["lines"][0][1] if result["lines"] else "",
                "status": recorded["status"],
                "mode": recorded["mode"],
                "stages": recorded["stage_seconds"],
                "load": (result["load_start"][0], result["load_end"][0]),
            }
        )
    return runs[0], runs[1:]


def section(rows: int, full: dict[str, Any], quiet: list[dict[str, Any]], command: str) -> str:
    start, end = markers(rows)
    walls = [q["wall_s"] for q in quiet]
    firsts = [q["first_line_s"] for q in [full, *quiet] if q["first_line_s"] is not None]
    median = statistics.median(walls)
    first = max(firsts)
    load = (min(q["load"][0] for q in [full, *quiet]), max(q["load"][1] for q in [full, *quiet]))
    lines = [
        start,
        f"## A night with nothing new ({rows:,} rows published)",
        "",
        f"`{command}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}; load average (1 min) {load[0]:.1f} → {load[1]:.1f}.",
        "",
        "One full `liushui run` publishes the data, then `liushui run` on the same inbox again: every file is "
        "known, so the night has nothing to do and is answered without starting Prefect or Great Expectations "
        "(flows/noop.py), recorded in `pipeline_runs` as `nothing_new`. Each run is a subprocess timed from its "
        "start (interpreter start and imports included).",
        "",
        "| target | measured | met? |",
        "|---|---|---|",
        f"| a run on an inbox with nothing new ≤ {QUIET_TARGET_S:g} s | median {median:.2f} s of {len(walls)} "
        f"(each: {', '.join(f'{w:.2f}' for w in walls)}) | {'yes' if median <= QUIET_TARGET_S else 'no'} |",
        f"| first progress line within {FIRST_LINE_TARGET_S:g} s of the command | at most {first:.2f} s over "
        f"{len(firsts)} runs (`{full['first_line']}`) | {'yes' if first <= FIRST_LINE_TARGET_S else 'no'} |",
        "",
        "| run | status, mode | wall s | CPU s | first line s | stages (s) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for name, run in [("full run (publishes)", full), *((f"nothing new #{i}", q) for i, q in enumerate(quiet, 1))]:
        stages = ", ".join(f"{k} {v:.1f}" for k, v in run["stages"].items())
        lines.append(
            f"| {name} | {run['status']}, {run['mode']} | {run['wall_s']:.2f} | {run['cpu_s']:.1f} | "
            f"{run['first_line_s']:.2f} | {stages} |"
        )
    lines += [
        "",
        "What remains of a quiet night is Python start-up and the command line's imports (Polars, DuckDB, PyArrow, "
        "the rule registry: ~2 s), hashing the inbox files, and the publish of its `pipeline_runs` row (a copy of "
        "the database file, then the swap).",
        end,
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    args = parser.parse_args(argv)
    full, quiet = measure(args.rows, args.out, args.repeat)
    for name, run in [("full", full), *(("quiet", q) for q in quiet)]:
        print(f"{name:6} {run['status']:12} wall {run['wall_s']:7.2f} s, first line {run['first_line_s']:.2f} s")
    command = f"python -m bench.quiet_night --rows {args.rows}" + (
        f" --repeat {args.repeat}" if args.repeat != 3 else ""
    )
    text = section(args.rows, full, quiet, command)
    start, end = markers(args.rows)
    update_markdown(args.markdown, text, args.rows, markers=(start, end))


if __name__ == "__main__":
    main()
