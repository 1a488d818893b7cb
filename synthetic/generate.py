"""Deterministic sample data: canonical bank-statement exports with planted, labelled risk behaviours.

`generate_sample` writes, under `out_dir`:

- `inbox/transactions_partNNN.csv|.parquet`: canonical transactions (`CANONICAL_INPUT_COLUMNS`), one
  part per chunk of customers (~200k rows each), every account entirely inside one part, rows sorted by
  account then `booked_at` (local time, unique within an account). `txn_id` is empty; `balance_after` is
  the exact running balance in statement order (per currency: some accounts carry USD or HKD rows too).
  Every second CSV part is written with every cell quoted and empty cells as `""` (as Polars / pandas write
  with quote_style=always); a small sample is split so that it has such a file.
- `inbox/overlap_export.csv`: a re-export of the last two months of 2-3 accounts, row for row identical
  to rows already in the parts (the pipeline must deduplicate it).
- `reference/accounts.csv`, `reference/related_parties.csv`: ownership and declared related parties.
- `reference/fx_rates.csv`: currency, rate_to_cny — the rates the currency-changing hops of cycles use.
- `labels.csv`: ground truth, one row per account x behaviour x month in which the behaviour was
  planted (`month_on` = first day of the month).

Label months per behaviour: income_volatile every month from the 3rd on; large_outflow, round_trip,
related_transfer_heavy, overdue, debt_burden_high, commingling, balance_break the months planted;
multi_lender every month whose 90 days ending on its last day hold disbursements (放款) from >= 4
distinct lenders (computed from the rows); borrow_to_repay the months of each pair's repayment leg;
cycle the months of each participant's legs; pass_through, fan_in, fan_out and gather_scatter the months planted;
overdrawn the months in which the account's main-currency balance is below zero; income_stopped the last 3 months,
in which an ordinary salaried account's salary no longer arrives; window_dressing the months whose end was dressed
(the money leaves in the first days of the next).

Money is generated as integer cents (int64) and only ever formatted / converted to Decimal(18,2); the
bulk of the rows (merchant spending, salary, bills, family transfers) is drawn with numpy per chunk,
while the planted behaviours add a handful of rows per affected account. Same arguments and seed give
byte-identical files.

This module writes the files; what it writes is drawn by `synthetic.world` (customers, accounts, habits,
which behaviour goes where), `synthetic.statement` (one part's rows: `synthetic.everyday`,
`synthetic.lending`, `synthetic.behaviours`) and `synthetic.reference` (reference tables and labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from synthetic.catalogue import BEHAVIOURS, LENDERS, Lender
from synthetic.draws import DAY
from synthetic.reference import accounts_frame, fx_rates_frame, labels_frame, related_parties_frame
from synthetic.statement import part_frame
from synthetic.world import World

__all__ = [
    "BEHAVIOURS",
    "BOOKED_AT_FORMAT",
    "FILE_FORMATS",
    "MIN_ACCOUNTS",
    "LENDERS",
    "ROWS_PER_PART",
    "GeneratedSample",
    "Lender",
    "generate_sample",
]

FILE_FORMATS = ("both", "csv", "parquet")
ROWS_PER_PART = 200_000
BOOKED_AT_FORMAT = "%Y-%m-%d %H:%M:%S"
MIN_ACCOUNTS = 40
"""Fewer accounts cannot carry every planted behaviour and still leave ordinary customers."""
# The rough number of rows per account-month (used to turn `target_rows` into a number of accounts).
_ROWS_PER_ACCOUNT_MONTH = 80.0


@dataclass(frozen=True)
class GeneratedSample:
    """What `generate_sample` wrote."""

    out_dir: Path
    transaction_files: tuple[Path, ...]
    overlap_file: Path
    accounts_file: Path
    related_parties_file: Path
    fx_rates_file: Path
    labels_file: Path
    n_accounts: int
    n_customers: int
    n_rows: int
    """Transaction rows in the parts (the overlap re-export not included)."""
    n_overlap_rows: int
    n_label_rows: int


def generate_sample(
    out_dir: Path,
    *,
    seed: int = 7,
    n_accounts: int = 200,
    months: int = 12,
    end_month: date = date(2026, 10, 1),
    file_format: str = "both",
    target_rows: int | None = None,
) -> GeneratedSample:
    """Write a deterministic sample dataset (inbox, reference data, labels) under `out_dir`.

    `months` full calendar months ending with `end_month` (inclusive) are generated. `target_rows`, when
    given, overrides `n_accounts` with the number of accounts that yields about that many rows.
    `file_format`: "both" alternates CSV and Parquet parts (part 0 CSV, part 1 Parquet, ...), "csv" or
    "parquet" writes only that format. The overlap re-export is always CSV.
    """
    n_accounts = _checked_n_accounts(n_accounts, months=months, file_format=file_format, target_rows=target_rows)
    out_dir = Path(out_dir)
    inbox = out_dir / "inbox"
    reference = out_dir / "reference"
    inbox.mkdir(parents=True, exist_ok=True)
    reference.mkdir(parents=True, exist_ok=True)
    for stale in [*inbox.glob("transactions_part*"), inbox / "overlap_export.csv"]:
        stale.unlink(missing_ok=True)

    world = World(seed, n_accounts, months, date(end_month.year, end_month.month, 1))
    files, n_rows, overlap = _write_parts(world, inbox, file_format)
    overlap_file = inbox / "overlap_export.csv"
    overlap.write_csv(overlap_file, datetime_format=BOOKED_AT_FORMAT)

    accounts_file = reference / "accounts.csv"
    related_file = reference / "related_parties.csv"
    fx_file = reference / "fx_rates.csv"
    labels_file = out_dir / "labels.csv"
    accounts_frame(world).write_csv(accounts_file)
    related_parties_frame(world).write_csv(related_file)
    fx_rates_frame().write_csv(fx_file)
    labels = labels_frame(world)
    labels.write_csv(labels_file)
    return GeneratedSample(
        out_dir=out_dir,
        transaction_files=tuple(files),
        overlap_file=overlap_file,
        accounts_file=accounts_file,
        related_parties_file=related_file,
        fx_rates_file=fx_file,
        labels_file=labels_file,
        n_accounts=world.n,
        n_customers=world.n_customers,
        n_rows=n_rows,
        n_overlap_rows=overlap.height,
        n_label_rows=labels.height,
    )


def _checked_n_accounts(n_accounts: int, *, months: int, file_format: str, target_rows: int | None) -> int:
    """The number of accounts to generate (from `target_rows` when given); ValueError on bad arguments."""
    if file_format not in FILE_FORMATS:
        raise ValueError(f"file_format must be one of {FILE_FORMATS}, got {file_format!r}")
    if months < 6:
        raise ValueError(f"months must be >= 6 (behaviours need history), got {months}")
    if target_rows is not None:
        if target_rows <= 0:
            raise ValueError(f"target_rows must be positive, got {target_rows}")
        n_accounts = max(MIN_ACCOUNTS, round(target_rows / (months * _ROWS_PER_ACCOUNT_MONTH)))
    if n_accounts < MIN_ACCOUNTS:
        raise ValueError(f"n_accounts must be >= {MIN_ACCOUNTS} to plant every behaviour, got {n_accounts}")
    return n_accounts


def _write_parts(world: World, inbox: Path, file_format: str) -> tuple[list[Path], int, pl.DataFrame]:
    """Write the transaction parts, one in memory at a time: (their paths, their rows, the overlap
    re-export: the last two months of the world's overlap accounts, as they are in the parts)."""
    overlap_cutoff_us = int(world.month_start_day[world.months - 2]) * DAY * 1_000_000
    overlap_ids = pl.Series([world.account_ids[a] for a in world.overlap_accounts], dtype=pl.String)
    files: list[Path] = []
    overlap_frames: list[pl.DataFrame] = []
    n_rows = 0
    parts = plan_parts(world, file_format)
    for part_no, (a0, a1, fmt) in enumerate(parts):
        frame = part_frame(world, part_no, a0, a1)
        n_rows += frame.height
        path = inbox / f"transactions_part{part_no:03d}.{fmt}"
        if fmt == "csv":
            quoted = sum(1 for _, _, f in parts[:part_no] if f == "csv") % 2 == 1
            frame.write_csv(path, datetime_format=BOOKED_AT_FORMAT, quote_style="always" if quoted else "necessary")
        else:
            frame.write_parquet(path, compression="zstd", statistics=True)
        files.append(path)
        overlap_frames.append(
            frame.filter(
                pl.col("account_id").is_in(overlap_ids.implode())
                & (pl.col("booked_at").dt.epoch("us") >= overlap_cutoff_us)
            )
        )
        del frame
    return files, n_rows, pl.concat(overlap_frames)


def plan_parts(world: World, file_format: str) -> list[tuple[int, int, str]]:
    """Contiguous account ranges (never splitting a customer) of about ROWS_PER_PART rows each, with the
    format of each part's file: (first account, end account, "csv" / "parquet"). Every second CSV part is
    written quoted (`_write_parts`)."""
    est = world.months * np.where(world.is_business, 45.0, world.lam + 12.0)
    boundaries = [0]
    acc = 0.0
    for a in range(world.n):
        acc += est[a]
        customer_ends = a + 1 == world.n or world.cust_of[a + 1] != world.cust_of[a]
        if acc >= ROWS_PER_PART and customer_ends and a + 1 < world.n:
            boundaries.append(a + 1)
            acc = 0.0
    boundaries.append(world.n)
    if file_format != "parquet" and len(boundaries) == 2:
        # A small sample still gets both formats, and a plain and a quoted CSV: thirds (CSV, Parquet, quoted
        # CSV) or, CSV only, halves (plain, quoted).
        pieces = 3 if file_format == "both" else 2
        cumulative = np.cumsum(est)
        boundaries = [0]
        for k in range(1, pieces):
            cut = int(np.searchsorted(cumulative, est.sum() * k / pieces))
            while cut < world.n - 1 and world.cust_of[cut] == world.cust_of[cut - 1]:
                cut += 1
            boundaries.append(max(boundaries[-1] + 1, cut))
        boundaries.append(world.n)
    formats = {"csv": ("csv",), "parquet": ("parquet",), "both": ("csv", "parquet")}[file_format]
    return [(boundaries[i], boundaries[i + 1], formats[i % len(formats)]) for i in range(len(boundaries) - 1)]
