"""Monthly income volatility over a trailing window of full months.

Adds to each account month (`transforms.months.account_months`): `window_months` (full months in the
trailing window ending at this month), `income_cv` (population standard deviation / mean of clean income
over those months; null when fewer than `min_months` or the mean is 0), `income_swing_share` (share of
consecutive full-month pairs in the window whose clean income moved by >= `swing_pct`), and
`typical_income` (median clean income of the *previous* full months in the window: the base the
large-outflow rule compares against, so a month is never its own base).
"""

from __future__ import annotations

import polars as pl

from liushui.config import IncomeVolatilityRules
from liushui.contracts import MONEY


def income_volatility(account_months: pl.LazyFrame, *, rules: IncomeVolatilityRules) -> pl.LazyFrame:
    window = rules.window_months
    per_account = ["account_id", "currency"]
    income = pl.when(pl.col("is_full_month")).then(pl.col("clean_income").cast(pl.Float64))
    previous = pl.col("_income").shift(1).over(per_account)
    swing = (
        pl.when(pl.col("_income").is_not_null() & previous.is_not_null())
        .then(
            pl.when(previous > 0)
            .then((pl.col("_income") - previous).abs() / previous >= rules.swing_pct)
            .otherwise(pl.col("_income") > 0)
        )
        .cast(pl.Float64)
    )
    rolling = dict(window_size=window, min_samples=1)
    return (
        account_months.sort([*per_account, "month_on"])
        .with_columns(_income=income)
        .with_columns(_swing=swing)
        .with_columns(
            window_months=pl.col("_income").is_not_null().cast(pl.Int64).rolling_sum(**rolling).over(per_account),
            _mean=pl.col("_income").rolling_mean(**rolling).over(per_account),
            _std=pl.col("_income").rolling_std(ddof=0, **rolling).over(per_account),
            _swings=pl.col("_swing").rolling_sum(**rolling).over(per_account),
            _pairs=pl.col("_swing").is_not_null().cast(pl.Int64).rolling_sum(**rolling).over(per_account),
            typical_income=pl.col("_income").shift(1).rolling_median(**rolling).over(per_account).round(2).cast(MONEY),
            income_history_months=pl.col("_income")
            .shift(1)
            .is_not_null()
            .cast(pl.Int64)
            .rolling_sum(**rolling)
            .over(per_account)
            .fill_null(0),
        )
        .with_columns(
            window_months=pl.col("window_months").fill_null(0),
            income_cv=pl.when(
                pl.col("is_full_month") & (pl.col("window_months") >= rules.min_months) & (pl.col("_mean") > 0)
            ).then(pl.col("_std") / pl.col("_mean")),
            income_swing_share=pl.when(pl.col("is_full_month") & (pl.col("_pairs") > 0)).then(
                pl.col("_swings") / pl.col("_pairs")
            ),
        )
        .drop("_income", "_swing", "_mean", "_std", "_swings", "_pairs")
    )
