"""liushui end to end (`liushui run` as a subprocess): full run, then a one-day nightly increment.

Each can run against Prefect's temporary server (no PREFECT_API_URL: every `liushui run` starts and stops
its own, as on a developer's machine) or against a long-running `prefect server start` (`served_prefect`;
PREFECT_API_URL set for the child, as in production behind `liushui serve`).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import polars as pl

from bench.measure import measured

ROOT = Path(__file__).resolve().parent.parent
CLI = str(Path(sys.executable).parent / "liushui")
INCREMENT_DAY = "2026-10-31"
INCREMENT_SOURCE_DAY = "2026-10-30"
INCREMENT_SHARE = 0.05


def bench_env(out: Path, api_url: str | None = None) -> dict:
    """The CLI's environment: a Prefect home of the benchmark's own (other jobs on the machine use
    theirs), everything else as liushui sets it (offline, quiet). With `api_url` the child talks to that
    Prefect server (PREFECT_API_URL) instead of starting a temporary one."""
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)
    if api_url:
        env["PREFECT_HOME"] = str((out / "prefect_served").resolve())
        env["PREFECT_API_URL"] = api_url
    else:
        env["PREFECT_HOME"] = str((out / "prefect_home").resolve())
    return env


@contextlib.contextmanager
def served_prefect(out: Path) -> Iterator[dict]:
    """A long-running Prefect server for the `*_served` measurements, started once and stopped on exit:
    `flows.deploy.local_prefect_server` (what `liushui serve` starts when no PREFECT_API_URL is given:
    `prefect server start` on 127.0.0.1 and a free port, analytics off, ready when /api/health answers),
    with its own PREFECT_HOME under `out` and liushui's offline environment. Yields
    {"api_url", "start_s"}; its log is `<out>/prefect_served/server.log`."""
    from flows.deploy import local_prefect_server
    from liushui.runtime import OFFLINE_ENV

    home = (out / "prefect_served").resolve()
    saved = {k: os.environ.get(k) for k in OFFLINE_ENV}
    for key, value in OFFLINE_ENV.items():
        if key != "PREFECT_HOME":
            os.environ.setdefault(key, value)
    try:
        started = time.perf_counter()
        with local_prefect_server(home=home) as api_url:
            yield {"api_url": api_url, "start_s": round(time.perf_counter() - started, 1)}
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def warm_up(out: Path, api_url: str | None = None) -> dict:
    """One run on an empty inbox: the first run on a fresh PREFECT_HOME migrates Prefect's database
    (~30 s), and the first run against a fresh server registers the flow; measured runs should not pay
    either."""
    empty = out / "empty_inbox"
    empty.mkdir(parents=True, exist_ok=True)
    db = out / ("warmup_served" if api_url else "warmup") / "warmup.duckdb"
    shutil.rmtree(db.parent, ignore_errors=True)
    db.parent.mkdir(parents=True)
    return _run(empty, empty, db, out, echo=False, api_url=api_url)


def stage_table(db: Path) -> list[dict]:
    """`pipeline_runs` rows (read-only): mode, status, stage seconds and peak RSS per stage."""
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT run_id, mode, status, stage_seconds_json, stage_peak_rss_mb_json, counts_json, "
            "started_at, finished_at FROM pipeline_runs ORDER BY started_at"
        ).fetchall()
    finally:
        con.close()
    return [
        {
            "run_id": r[0],
            "mode": r[1],
            "status": r[2],
            "stage_seconds": json.loads(r[3] or "{}"),
            "stage_peak_rss_mb": json.loads(r[4] or "{}"),
            "counts": json.loads(r[5] or "{}"),
            "flow_seconds": (r[7] - r[6]).total_seconds() if r[6] and r[7] else None,
        }
        for r in rows
    ]


def _prefect_overhead(lines: list) -> float | None:
    """Seconds from process start to the flow's first stage line (interpreter start, imports, Prefect's
    temporary server start unless a server is given, flow run creation)."""
    for t, line in lines:
        if line.startswith("liushui: ingest ..."):
            return t
    return None


def _run(inbox: Path, reference: Path, db: Path, out: Path, *, api_url: str | None = None, **kw) -> dict:
    """`liushui run` as a subprocess; if the CLI itself crashes before the flow starts (a traceback, no
    stage line), the same flow through `bench.flow_driver`, and the result says so."""
    cmd = [CLI, "run", "--inbox", str(inbox), "--reference", str(reference), "--db", str(db)]
    result = measured(cmd, env=bench_env(out, api_url), **kw)
    text = [ln for _, ln in result["lines"]]
    if (
        result["returncode"] == 1
        and any("Traceback" in ln for ln in text)
        and not any(ln.startswith("liushui: ingest") for ln in text)
    ):
        error = next((ln for ln in reversed(text) if "Error" in ln), text[-1] if text else "")
        for p in (db, db.with_name(db.name + ".lock")):
            p.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "bench.flow_driver", str(inbox), str(reference), str(db)]
        result = measured(cmd, env=bench_env(out, api_url), **kw)
        result["via"] = f"bench.flow_driver (the CLI failed to start: {error.strip()[:160]})"
    return result


def _summarise(result: dict, db: Path, api_url: str | None = None) -> dict:
    result = dict(result)
    result["prefect"] = "served" if api_url else "temporary"
    lines = result.pop("lines")
    result["tail"] = [ln for _, ln in lines[-12:]]
    result["stage_lines"] = [[t, ln] for t, ln in lines if ln.startswith("liushui:")]
    result["first_line_s"] = lines[0][0] if lines else None
    result["before_ingest_s"] = _prefect_overhead(lines)
    result["runs"] = stage_table(db) if db.exists() else []
    return result


def full_run(
    data: Path, out: Path, *, timeout_s: float = 3600, rss_limit_mib: float = 20 * 1024, api_url: str | None = None
) -> dict:
    """`liushui run` on a fresh database in `full_run_dir` (the increments start from it), or in a
    folder of its own when measured against a served Prefect."""
    work = full_run_dir(out, data) if api_url is None else out / f"liushui_served_{data.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db = work / "liushui.duckdb"
    result = _run(
        data / "inbox", data / "reference", db, out, timeout_s=timeout_s, rss_limit_mib=rss_limit_mib, api_url=api_url
    )
    return _summarise(result, db, api_url)


def full_run_dir(out: Path, data: Path) -> Path:
    return out / f"liushui_{data.name}"


def published_full_run(db_dir: Path) -> bool:
    """Does `db_dir` hold a database whose last run was a published full run (an increment's base)?"""
    db = db_dir / "liushui.duckdb"
    if not db.exists():
        return False
    try:
        runs = stage_table(db)
    except duckdb.Error:
        return False
    return bool(runs) and runs[-1]["mode"] == "full" and runs[-1]["status"] == "published"


def write_increment(data: Path, target: Path) -> dict:
    """A canonical CSV with one new day (INCREMENT_DAY) for ~5 % of the accounts: each chosen account's
    rows of INCREMENT_SOURCE_DAY, booked one day later, amounts changed by a few cents per yuan; txn_id
    and balance_after empty (a bank export without balances for that day). The generator's data runs to
    2026-10-31, so the new rows land on the last day of the as-of month: the as-of month does not change
    and the run is incremental."""
    parts = sorted((data / "inbox").glob("*transactions_part*.parquet"))  # composed data: s<k>_ prefixes
    if not parts:
        raise FileNotFoundError(f"no transactions_part*.parquet in {data / 'inbox'}")
    day = pl.lit(INCREMENT_SOURCE_DAY).str.to_date()
    rows = (
        pl.scan_parquet(parts)
        .filter(pl.col("booked_at").dt.date() == day)
        .filter((pl.col("account_id").hash(seed=11) % 1000) < int(INCREMENT_SHARE * 2 * 1000))
        .collect()
    )
    # Only the Parquet half of the parts is read, so take 2 x 5 % of those accounts = ~5 % of all.
    frame = rows.with_columns(
        booked_at=(pl.col("booked_at") + pl.duration(days=1)).dt.strftime("%Y-%m-%d %H:%M:%S"),
        amount=(pl.col("amount").cast(pl.Float64) * 1.013 + pl.when(pl.col("amount") < 0).then(-0.07).otherwise(0.07))
        .round(2)
        .cast(pl.Decimal(18, 2)),
        txn_id=pl.lit(None, pl.String),
        balance_after=pl.lit(None, pl.Decimal(18, 2)),
    ).select(rows.columns)
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.write_csv(target)
    n_accounts_total = pl.read_csv(data / "reference" / "accounts.csv", columns=["account_id"]).height
    return {
        "rows": frame.height,
        "accounts": frame["account_id"].n_unique(),
        "accounts_total": n_accounts_total,
        "day": INCREMENT_DAY,
    }


def increment_run(
    data: Path, out: Path, full_db_dir: Path, *, timeout_s: float = 3600, api_url: str | None = None
) -> dict:
    """Copy the full run's database, add the increment file to the inbox (symlinks to the same files
    plus the new one), run again (against `api_url`'s Prefect server when given)."""
    work = out / (f"increment_served_{data.name}" if api_url else f"increment_{data.name}")
    shutil.rmtree(work, ignore_errors=True)
    inbox = work / "inbox"
    inbox.mkdir(parents=True)
    for f in sorted((data / "inbox").iterdir()):
        (inbox / f.name).symlink_to(f.resolve())
    info = write_increment(data, inbox / f"increment_{INCREMENT_DAY}.csv")
    db = work / "liushui.duckdb"
    shutil.copy(full_db_dir / "liushui.duckdb", db)
    _copy_file_hashes(full_db_dir, work)
    result = _summarise(_run(inbox, data / "reference", db, out, timeout_s=timeout_s, api_url=api_url), db, api_url)
    result["increment"] = info
    result["base"] = str(full_db_dir)
    return result


def quiet_runs(data: Path, out: Path, full_db_dir: Path, *, repeat: int = 3, timeout_s: float = 600, **kw) -> dict:
    """Nights with nothing new: `liushui run` `repeat` times on the full run's inbox against a copy of its
    database (every file known: flows/noop.py answers without Prefect). Each run is timed from its process
    start; `first_line_s` is when its first output line came. The summary's `wall_s` is the median run,
    `first_line_s` the slowest first line, `peak_rss_mib` the largest."""
    work = out / f"quiet_{data.name}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    db = work / "liushui.duckdb"
    shutil.copy(full_db_dir / "liushui.duckdb", db)
    _copy_file_hashes(full_db_dir, work)
    runs = []
    for _ in range(repeat):
        result = _run(data / "inbox", data / "reference", db, out, echo=False, timeout_s=timeout_s, **kw)
        lines = result.pop("lines")
        recorded = stage_table(db)[-1] if db.exists() else {}
        runs.append(
            {
                **{k: result[k] for k in ("wall_s", "cpu_s", "peak_rss_mib", "returncode", "killed")},
                "first_line_s": lines[0][0] if lines else None,
                "first_line": lines[0][1] if lines else "",
                "status": recorded.get("status"),
                "mode": recorded.get("mode"),
                "stages": recorded.get("stage_seconds", {}),
                "load": [result["load_start"][0], result["load_end"][0]],
                "tail": [ln for _, ln in lines[-4:]],
            }
        )
    quiet = [r for r in runs if r["status"] == "nothing_new" and r["returncode"] in (0, 4)]  # 4: rows quarantined
    walls = sorted(r["wall_s"] for r in runs)
    firsts = [r["first_line_s"] for r in runs if r["first_line_s"] is not None]
    return {
        "runs": runs,
        "wall_s": walls[len(walls) // 2],
        "cpu_s": sorted(r["cpu_s"] for r in runs)[len(runs) // 2],
        "first_line_s": max(firsts) if firsts else None,
        "peak_rss_mib": max(r["peak_rss_mib"] for r in runs),
        "returncode": 0 if len(quiet) == len(runs) else next(r["returncode"] or 1 for r in runs if r not in quiet),
        "killed": next((r["killed"] for r in runs if r["killed"]), None),
        "load_start": [runs[0]["load"][0]],
        "load_end": [runs[-1]["load"][1]],
    }


def _copy_file_hashes(full_db_dir: Path, work: Path) -> None:
    """The database's remembered inbox hashes (`liushui.file_hashes`) go with its copy, as they would stay
    beside it from one night to the next."""
    hashes = full_db_dir / "liushui.file-hashes.json"
    if hashes.exists():
        shutil.copy(hashes, work / hashes.name)
