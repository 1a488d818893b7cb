"""Timing of `validate_frame` on a synthetic transactions frame (not part of the test suite).

    .venv/bin/python -m expectations.benchmark --rows 1000000

Builds a frame with the exact `transactions` contract schema (Decimal(18,2) amounts, ...), then times:
the GX import + context, the Polars -> pandas preparation, and `validate_frame` for `transactions` and
`canonical_transactions` (second call: warm context).
"""

from __future__ import annotations

import argparse
import resource
import time
from datetime import date, datetime, timedelta

import polars as pl

from liushui import contracts


def synthetic_transactions(rows: int, *, seed: int = 7) -> pl.DataFrame:
    start = datetime(2023, 1, 1)
    i = pl.int_range(0, rows, eager=True)
    classes = ["salary", "spend", "loan_repayment", "own_transfer_out", "income", "refund"]
    frame = pl.DataFrame({"i": i}).with_columns(
        txn_id=pl.lit("t") + pl.col("i").cast(pl.String),
        account_id=pl.lit("acct") + (pl.col("i") % 5000).cast(pl.String),
        booked_at=pl.lit(start) + pl.duration(minutes=pl.col("i") % 700_000),
        amount=(((pl.col("i") * 7919) % 2_000_000) - 1_000_000 + 1).cast(pl.Decimal(18, 0)) / 100,
        currency=pl.when(pl.col("i") % 50 == 0).then(pl.lit("USD")).otherwise(pl.lit("CNY")),
        balance_after=pl.lit("1000.00").cast(pl.Decimal(18, 2)),
        counterparty_name=pl.lit("某某公司"),
        counterparty_account=pl.lit("6222000011112222"),
        description=pl.lit("工资"),
        channel=pl.lit("网银"),
        source_file=pl.lit("export.csv"),
        source_row=pl.col("i") + 1,
        batch_id=pl.lit("b1"),
        customer_id=pl.lit("cust") + (pl.col("i") % 4000).cast(pl.String),
        txn_class=pl.lit(pl.Series(classes)).get(pl.col("i") % len(classes)),
        related_relation=pl.lit(None, pl.String),
        lender_id=pl.lit(None, pl.String),
    )
    frame = frame.with_columns(
        booked_on=pl.col("booked_at").dt.date(),
        is_clean_income=(pl.col("amount") > 0) & (pl.col("i") % 3 == 0),
    )
    return contracts.TRANSACTIONS.conform(frame).collect()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args()

    t = time.perf_counter()
    frame = synthetic_transactions(args.rows)
    print(f"synthetic frame: {frame.height:,} rows x {frame.width} cols, {time.perf_counter() - t:.2f} s")

    from expectations import runner
    from expectations.gx_frames import to_pandas
    from expectations.suites import suite_for

    t = time.perf_counter()
    runner.gx_session()
    suite_for("transactions")
    print(f"GX import + ephemeral context + suite: {time.perf_counter() - t:.2f} s")

    suite = suite_for("transactions")
    t = time.perf_counter()
    prepared = runner.gx_frame(suite, frame)
    pdf = to_pandas(prepared)
    print(
        f"prepare ({prepared.width} GX columns) + to_pandas: {time.perf_counter() - t:.2f} s "
        f"({pdf.memory_usage(deep=True).sum() / 2**20:.0f} MiB)"
    )
    del pdf, prepared

    as_of = date(2024, 12, 31) + timedelta(days=1)
    for table in ("transactions", "canonical_transactions"):
        source = (
            frame.select(contracts.table(table).names)
            if table != "canonical_transactions"
            else frame.select(contracts.CANONICAL_TRANSACTION.names)
        )
        t = time.perf_counter()
        results = runner.validate_frame(table, source, run_id="bench", as_of=as_of)
        dt = time.perf_counter() - t
        failed = results.filter(~pl.col("success"))
        print(
            f"validate_frame({table!r}): {len(results)} checks, {dt:.2f} s, failed: "
            f"{failed.select('expectation', 'column_name').rows()}"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MiB")


if __name__ == "__main__":
    main()
