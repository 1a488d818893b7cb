"""Peer (d): liushui's own Polars path on the same files, in process, without Prefect / GX / publish.

`core`: read (liushui.ingest) -> classify_lenders -> classified_transactions -> account_months ->
income_volatility -> large_outflows (related flows are columns of account_months), collected and written
to a DuckDB file like the peers (transactions, account_months, large_outflows).
`signals`: read -> the whole `derive_signals` (every signal and flag) sunk to Parquet as the flow does.
Run as `python -m bench.liushui_core core|signals DATA_DIR OUT`; prints a JSON line of timings.
"""

from __future__ import annotations

import json
import linecache
import os
import re
import resource
import shutil
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import FrameType

import duckdb
import polars as pl

from liushui.config import load_rules
from liushui.ingest.inbox import inbox_files, ingest_files
from liushui.reference import read_reference
from transforms.lenders import load_lender_registry


def read(data: Path) -> pl.DataFrame:
    result = ingest_files(
        inbox_files(data / "inbox"),
        known_file_hashes=set(),
        is_known_txn=lambda ids: ids.is_null(),
        batch_id="bench",
        latest_booking=(datetime.now(UTC) + timedelta(hours=8)).date() + timedelta(days=1),
    )
    return result.transactions


def core(data: Path, db: Path) -> dict:
    from transforms.classify import classified_transactions
    from transforms.income import income_volatility
    from transforms.lenders import classify_lenders
    from transforms.months import account_months
    from transforms.outflows import large_outflows

    db.unlink(missing_ok=True)
    steps = {}
    started = time.perf_counter()
    canonical = read(data)
    steps["read"] = round(time.perf_counter() - started, 3)
    t0 = time.perf_counter()
    rules = load_rules()
    accounts, related = read_reference(data / "reference")
    as_of = canonical["booked_at"].max().date()
    # The core path resolves no counterparty to an account of the batch (the peers do not either):
    # large outflows tell parties apart by normalised name and number.
    classified = (
        classified_transactions(
            classify_lenders(canonical.lazy(), load_lender_registry()), accounts.lazy(), related.lazy()
        )
        .with_columns(counterparty_account_id=pl.lit(None, pl.String))
        .collect()
    )
    del canonical
    steps["classify"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    months = (
        account_months(classified.lazy(), as_of=as_of, min_covered_days=rules.coverage.min_covered_days_for_full_month)
        .pipe(income_volatility, rules=rules.income_volatility)
        .collect()
    )
    large = large_outflows(classified.lazy(), months.lazy(), rules=rules.large_outflow).collect()
    steps["months_volatility_large"] = round(time.perf_counter() - t0, 3)
    t0 = time.perf_counter()
    con = duckdb.connect(str(db))
    for name, frame in {"transactions": classified, "account_months": months, "large_outflows": large}.items():
        arrow = frame.to_arrow()  # noqa: F841 - read by name below
        con.execute(f"CREATE TABLE {name} AS SELECT * FROM arrow")
    con.close()
    steps["write"] = round(time.perf_counter() - t0, 3)
    return {
        "wall_s": round(time.perf_counter() - started, 3),
        "steps": steps,
        "rows": classified.height,
        "as_of": str(as_of),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _call_site(frame: FrameType) -> str:
    """What a checkpoint call checkpoints, from its source line: the transform called inside `checkpoint(...)`
    (`large_outflows`), else the name assigned (`owned`), else the calling function and line."""
    while frame.f_back is not None and f"{os.sep}polars{os.sep}" in frame.f_code.co_filename:
        frame = frame.f_back  # called through LazyFrame.pipe: the caller of pipe
    line = linecache.getline(frame.f_code.co_filename, frame.f_lineno)
    called = re.search(r"checkpoint\(\s*(\w+)\(", line)
    if called and called.group(1) != "checkpoint":
        return called.group(1)
    assigned = re.match(r"\s*(\w+)\s*=", line)
    return assigned.group(1) if assigned else f"{frame.f_code.co_name}:{frame.f_lineno}"


def signals(data: Path, staging: Path) -> dict:
    from transforms.signals import derive_signals, spill_to

    shutil.rmtree(staging, ignore_errors=True)
    steps = {}
    started = time.perf_counter()
    canonical = read(data)
    steps["read"] = round(time.perf_counter() - started, 3)
    t0 = time.perf_counter()
    accounts, related = read_reference(data / "reference")
    as_of = canonical["booked_at"].max().date()
    spill = spill_to(staging / "checkpoints")
    checkpoints: list[float] = []
    names: list[str] = []
    last = [time.perf_counter()]

    def timed_checkpoint(frame: pl.LazyFrame) -> pl.LazyFrame:
        """The flow's spill checkpoint, timed: seconds from the previous checkpoint (plan building is
        negligible; the time is the collect + Parquet write of this intermediate), named after its call site."""
        result = spill(frame)
        now = time.perf_counter()
        checkpoints.append(round(now - last[0], 2))
        names.append(_call_site(sys._getframe(1)))
        last[0] = now
        return result

    derive_signals(
        canonical.lazy(),
        accounts=accounts.lazy(),
        related_parties=related.lazy(),
        lender_registry=load_lender_registry(),
        rules=load_rules(),
        as_of=as_of,
        checkpoint=timed_checkpoint,
    ).sink(staging / "tables")
    steps["derive_signals"] = round(time.perf_counter() - t0, 3)
    steps["checkpoints"] = checkpoints
    steps["checkpoint_names"] = names
    steps["sink_tables"] = round(time.perf_counter() - last[0], 3)
    shutil.rmtree(staging, ignore_errors=True)
    return {
        "wall_s": round(time.perf_counter() - started, 3),
        "steps": steps,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    what, data, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    print(json.dumps(core(data, out) if what == "core" else signals(data, out)))
