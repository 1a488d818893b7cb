"""Monthly income volatility over a trailing window of full months, and the INCOME_VOLATILE rule.

`income_volatility` adds to each account month (`transforms.months.account_months`): `window_months` (full
months in the trailing window ending at this month), `income_cv` (population standard deviation / mean of
clean income over those months; null when fewer than `min_months` or the mean is 0), `income_swing_share`
(share of consecutive full-month pairs in the window whose clean income moved by >= `swing_pct`), and
`typical_income` (the mean clean income of the *previous* full months in the window with the best of them
left out: the base the large-outflow rule compares against, so a month is never its own base). Why not the
median: a freelancer paid in lumps (30,000 one month, nothing the next two) has a median near zero and every
2,000 card bill would be "many times" the income; why not the plain mean: one windfall (a bonus, an
inheritance) would raise the base and hide the large outflows that follow it. Leaving out the best month does
both: a steady salary gives its own level, a lump earner the money they live on, a windfall is dropped.

`income_volatility_flags`: one INCOME_VOLATILE flag (`contracts.RISK_FLAGS`) per episode of consecutive
main-currency account months whose trailing CV is above the threshold (`transforms.flag_rows.episodes`), leaving
out the months whose window holds a stop or fall that INCOME_STOPPED flags (one fact, one flag). Rule and
defaults: docs/rules_core.md.
"""

from __future__ import annotations

import polars as pl

from liushui.config import IncomeVolatilityRules
from liushui.contracts import MONEY
from transforms.flag_rows import Rule, evidence_in_months, finish_flags, fmt_num, fmt_pct, high_when


def income_volatility(account_months: pl.LazyFrame, *, rules: IncomeVolatilityRules) -> pl.LazyFrame:
    window = rules.window_months
    per_account = ["account_id", "currency"]
    income = pl.when(pl.col("is_full_month")).then(pl.col("clean_income").cast(pl.Float64))
    previous = pl.col("_income").shift(1).over(per_account)
    previous_income = pl.col("_income").shift(1)
    swing = (
        pl.when(pl.col("_income").is_not_null() & previous.is_not_null())
        .then(
            pl.when(previous > 0)
            .then((pl.col("_income") - previous).abs() / previous >= rules.swing_pct)
            .otherwise(pl.col("_income") > 0)
        )
        .cast(pl.Float64)
    )
    return (
        account_months.sort([*per_account, "month_on"])
        .with_columns(_income=income)
        .with_columns(_swing=swing)
        .with_columns(
            window_months=pl.col("_income")
            .is_not_null()
            .cast(pl.Int64)
            .rolling_sum(window_size=window, min_samples=1)
            .over(per_account),
            _mean=pl.col("_income").rolling_mean(window_size=window, min_samples=1).over(per_account),
            _std=pl.col("_income").rolling_std(window_size=window, min_samples=1, ddof=0).over(per_account),
            _swings=pl.col("_swing").rolling_sum(window_size=window, min_samples=1).over(per_account),
            _pairs=pl.col("_swing")
            .is_not_null()
            .cast(pl.Int64)
            .rolling_sum(window_size=window, min_samples=1)
            .over(per_account),
            _prev_sum=previous_income.rolling_sum(window_size=window, min_samples=1).over(per_account),
            _prev_max=previous_income.rolling_max(window_size=window, min_samples=1).over(per_account),
            income_history_months=pl.col("_income")
            .shift(1)
            .is_not_null()
            .cast(pl.Int64)
            .rolling_sum(window_size=window, min_samples=1)
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
        .with_columns(
            # the mean of the previous months, the best one left out (a single month is its own mean)
            typical_income=pl.when(pl.col("income_history_months") >= 2)
            .then((pl.col("_prev_sum") - pl.col("_prev_max")) / (pl.col("income_history_months") - 1))
            .otherwise(pl.col("_prev_sum"))
            .round(2)
            .cast(MONEY)
        )
        .drop("_income", "_swing", "_mean", "_std", "_swings", "_pairs", "_prev_sum", "_prev_max")
    )


INCOME_VOLATILE = Rule(
    code="INCOME_VOLATILE",
    name_zh="收入不稳定",
    name_en="Volatile income",
    section="income_volatility",
    config_model=IncomeVolatilityRules,
    remediation_zh="稳定收入来源：保持连续数月稳定的工资或经营收入入账。",
    remediation_en="Stabilise income: several consecutive months of steady salary or business income.",
    default_weight=10,
    doc="docs/rules_core.md",
    behaviour="income_volatile",
    episodic=True,
)


def explained_by_stops(
    account_months: pl.LazyFrame, stopped: pl.LazyFrame, *, rules: IncomeVolatilityRules
) -> pl.LazyFrame:
    """The account months whose trailing window holds the change an INCOME_STOPPED flag (`stopped`: its
    `contracts.RISK_FLAGS` rows) stands for: the month of the flag's `period_end_on` (a stopped stream's first
    missed payment, a fallen stream's low payment) and the `window_months - 1` months after it."""
    changes = stopped.select("account_id", "currency", _change_on=pl.col("period_end_on").dt.month_start()).unique()
    return (
        account_months.select("account_id", "currency", "month_on")
        .join(changes, on=["account_id", "currency"])
        .filter(
            (pl.col("month_on") >= pl.col("_change_on"))
            & (pl.col("month_on") < pl.col("_change_on").dt.offset_by(f"{rules.window_months}mo"))
        )
        .select("account_id", "currency", "month_on")
        .unique()
    )


def income_volatility_flags(
    account_months: pl.LazyFrame,
    transactions: pl.LazyFrame,
    *,
    rules: IncomeVolatilityRules,
    stopped: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """INCOME_VOLATILE: trailing CV of clean income above the threshold (full main-currency months).
    `account_months` carries `income_volatility`'s columns; evidence: the clean-income rows of the window.

    One fact, one flag: a month whose window holds the stop or fall of a main income stream that INCOME_STOPPED
    flags (`stopped`, its flags) is not judged here — 20,000 a month that ends is a stop, not volatility
    (`explained_by_stops`)."""
    judged = account_months.with_columns(_first_month_on=pl.col("month_on").min().over("account_id", "currency"))
    if stopped is not None:
        judged = judged.join(
            explained_by_stops(account_months, stopped, rules=rules),
            on=["account_id", "currency", "month_on"],
            how="anti",
        )
    flagged = judged.filter(pl.col("is_main_currency") & (pl.col("income_cv") > rules.cv_threshold)).with_columns(
        # the window, clipped to the account's coverage
        period_start_on=pl.max_horizontal(
            pl.col("month_on").dt.offset_by(f"-{rules.window_months - 1}mo"), pl.col("_first_month_on")
        ),
        period_end_on=pl.col("month_on").dt.month_end(),
        metric_value=pl.col("income_cv"),
        threshold=pl.lit(rules.cv_threshold),
        limit_name=pl.lit("cv_threshold"),
        severity=high_when(pl.col("income_cv") >= rules.cv_high),
        reason_zh=pl.format(
            "近{}个完整月净收入变异系数{}，超过阈值{}；{}的月份环比波动≥{}。",
            pl.col("window_months"),
            fmt_num(pl.col("income_cv")),
            pl.lit(str(rules.cv_threshold)),
            fmt_pct(pl.col("income_swing_share").fill_null(0)),
            pl.lit(f"{rules.swing_pct:.0%}"),
        ),
        reason_en=pl.format(
            "Clean income over the last {} full months has a coefficient of variation of {} (threshold {}); "
            "{} of months swung by >= {} against the previous month.",
            pl.col("window_months"),
            fmt_num(pl.col("income_cv")),
            pl.lit(str(rules.cv_threshold)),
            fmt_pct(pl.col("income_swing_share").fill_null(0)),
            pl.lit(f"{rules.swing_pct:.0%}"),
        ),
    )
    with_evidence = evidence_in_months(flagged, transactions, pl.col("is_clean_income"))
    return finish_flags(with_evidence, INCOME_VOLATILE, rules)
