"""Account months: one row per account x currency x month of the account's statement coverage.

Coverage, not calendar: an account's coverage runs from its first to its last booking date. Months inside
it with no activity are real zero months; months outside it do not exist. A month is *full* — and may be
judged — when the coverage holds at least `min_covered_days` of its days and it is before the as-of
month (the as-of month is partial by definition).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from liushui.contracts import MONEY
from transforms.balances import STATEMENT_ORDER
from transforms.classify import RELATED_IN_CLASSES, RELATED_OUT_CLASSES, txn_class_is

_ZERO = pl.lit(0).cast(MONEY)


def _money_sum(condition: pl.Expr, value: pl.Expr | None = None) -> pl.Expr:
    value = pl.col("amount") if value is None else value
    return pl.when(condition).then(value).otherwise(_ZERO).sum()


def main_currency(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per account: the currency with the most transactions (ties: alphabetical)."""
    return (
        transactions.group_by("account_id", "currency")
        .agg(_n=pl.len())
        .sort(["account_id", "_n", "currency"], descending=[False, True, False])
        .unique("account_id", keep="first", maintain_order=True)
        .select("account_id", main_currency="currency")
    )


def coverage_months(transactions: pl.LazyFrame, *, as_of: date, min_covered_days: int) -> pl.LazyFrame:
    """One row per account x month of coverage with `covered_days` and `is_full_month`."""
    as_of_month = as_of.replace(day=1)
    spans = transactions.group_by("account_id").agg(
        start_on=pl.col("booked_on").min(), end_on=pl.col("booked_on").max()
    )
    return (
        spans.with_columns(
            month_on=pl.date_ranges(
                pl.col("start_on").dt.month_start(), pl.col("end_on").dt.month_start(), interval="1mo"
            )
        )
        .explode("month_on")
        .with_columns(
            covered_days=(
                (
                    pl.min_horizontal(pl.col("end_on"), pl.col("month_on").dt.month_end())
                    - pl.max_horizontal(pl.col("start_on"), pl.col("month_on"))
                ).dt.total_days()
                + 1
            ).cast(pl.Int64)
        )
        .with_columns(is_full_month=(pl.col("covered_days") >= min_covered_days) & (pl.col("month_on") < as_of_month))
        .select("account_id", "month_on", "covered_days", "is_full_month")
    )


def monthly_flows(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """Money per account x currency x month, by class. `transactions` is the classified table; neutral rows
    (`txn_class` neutral) count in neither inflow nor outflow."""
    counted = ~txn_class_is("neutral")
    inflow = counted & (pl.col("amount") > 0)
    related_out = txn_class_is(*RELATED_OUT_CLASSES)
    related_in = txn_class_is(*RELATED_IN_CLASSES)
    return transactions.group_by("account_id", "currency", pl.col("booked_on").dt.month_start().alias("month_on")).agg(
        txn_count=pl.len().cast(pl.Int64),
        inflow=_money_sum(inflow),
        outflow=_money_sum(counted & (pl.col("amount") <= 0), -pl.col("amount")),
        clean_income=_money_sum(pl.col("is_clean_income")),
        related_in=_money_sum(related_in),
        related_out=_money_sum(related_out, -pl.col("amount")),
        related_out_count=related_out.sum().cast(pl.Int64),
        loan_disbursed=_money_sum(txn_class_is("loan_disbursement")),
        loan_repaid=_money_sum(txn_class_is("loan_repayment"), -pl.col("amount")),
        closing_balance=pl.col("balance_after").sort_by(STATEMENT_ORDER).drop_nulls().last(),
    )


def account_months(transactions: pl.LazyFrame, *, as_of: date, min_covered_days: int) -> pl.LazyFrame:
    """Flows over every coverage month of every currency the account uses; empty months are zeros and
    carry the previous closing balance forward."""
    months = coverage_months(transactions, as_of=as_of, min_covered_days=min_covered_days)
    currencies = (
        transactions.select("account_id", "currency").unique().join(main_currency(transactions), on="account_id")
    )
    money_columns = ["inflow", "outflow", "clean_income", "related_in", "related_out", "loan_disbursed", "loan_repaid"]
    return (
        months.join(currencies, on="account_id")
        .join(monthly_flows(transactions), on=["account_id", "currency", "month_on"], how="left")
        .sort(["account_id", "currency", "month_on"])
        .with_columns(
            *[pl.col(c).fill_null(_ZERO) for c in money_columns],
            txn_count=pl.col("txn_count").fill_null(0),
            related_out_count=pl.col("related_out_count").fill_null(0),
            closing_balance=pl.col("closing_balance").forward_fill().over(["account_id", "currency"]),
            is_main_currency=pl.col("currency") == pl.col("main_currency"),
        )
        .with_columns(
            related_out_share=pl.when(pl.col("outflow") > 0).then(
                pl.col("related_out").cast(pl.Float64) / pl.col("outflow").cast(pl.Float64)
            ),
            debt_burden=pl.when(pl.col("clean_income") > 0).then(
                pl.col("loan_repaid").cast(pl.Float64) / pl.col("clean_income").cast(pl.Float64)
            ),
        )
        .drop("main_currency")
    )
