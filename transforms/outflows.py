"""Large outflows: a single outflow large relative to the account's own trailing typical income.

One output row per outflow that crossed its limit: `txn_id, account_id, currency, month_on, booked_at,
amount_out, typical_income, limit_amount, limit_name`. The limit is

- `relative_to_income`: `income_multiple` x typical monthly clean income, when that is above the floor;
- `absolute_floor`: the floor, when the relative limit would be below it;
- `no_history_absolute`: `no_history_limit`, when the account has fewer than `min_months` full months of
  income history before this month — a relative rule needs a base.

Moves between the holder's own accounts are not money leaving and are not judged.
"""

from __future__ import annotations

import polars as pl

from liushui.config import LargeOutflowRules
from liushui.contracts import MONEY


def large_outflows(
    transactions: pl.LazyFrame, account_months: pl.LazyFrame, *, rules: LargeOutflowRules
) -> pl.LazyFrame:
    base = account_months.select("account_id", "currency", "month_on", "typical_income", "income_history_months")
    relative = pl.col("typical_income").cast(pl.Float64) * rules.income_multiple
    has_history = (pl.col("income_history_months") >= rules.min_months) & pl.col("typical_income").is_not_null()
    return (
        transactions.filter((pl.col("amount") < 0) & (pl.col("txn_class") != "own_transfer_out"))
        .with_columns(month_on=pl.col("booked_on").dt.month_start(), amount_out=-pl.col("amount"))
        .join(base, on=["account_id", "currency", "month_on"], how="left")
        .with_columns(
            limit_name=pl.when(~has_history.fill_null(False)).then(pl.lit("no_history_absolute"))
            .when(relative >= rules.absolute_floor).then(pl.lit("relative_to_income"))
            .otherwise(pl.lit("absolute_floor")),
        )
        .with_columns(
            limit_amount=pl.when(pl.col("limit_name") == "no_history_absolute").then(pl.lit(rules.no_history_limit))
            .when(pl.col("limit_name") == "relative_to_income").then(relative)
            .otherwise(pl.lit(rules.absolute_floor))
            .round(2).cast(MONEY)
        )
        .filter(pl.col("amount_out") >= pl.col("limit_amount"))
        .select("txn_id", "account_id", "currency", "month_on", "booked_at", "amount_out", "typical_income",
                "limit_amount", "limit_name")
    )


def with_large_outflow_totals(account_months: pl.LazyFrame, large: pl.LazyFrame) -> pl.LazyFrame:
    """Add `large_outflow_count` and `large_outflow_sum` to each account month."""
    totals = large.group_by("account_id", "currency", "month_on").agg(
        large_outflow_count=pl.len().cast(pl.Int64), large_outflow_sum=pl.col("amount_out").sum()
    )
    return account_months.join(totals, on=["account_id", "currency", "month_on"], how="left").with_columns(
        large_outflow_count=pl.col("large_outflow_count").fill_null(0),
        large_outflow_sum=pl.col("large_outflow_sum").fill_null(pl.lit(0).cast(MONEY)),
    )
