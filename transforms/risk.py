"""Account risk and recovery: one row per account (`contracts.ACCOUNT_RISK`).

From the account's flags and months as of the run's as-of date:

- **active flags**: flags whose period ends within `lookback_months` full months before the as-of month;
- **score** (0-100): per active flag code its weight from config, x `high_multiplier` when any active flag
  of that code is high; summed and capped at 100; the components are kept;
- **band**: the highest band whose lower bound the score reaches;
- **recovery**: months since the last severe flag (the month its period ends) to the last full month:
  fewer than `recovering_after_clean_months` -> at_risk, fewer than `recovered_after_clean_months` ->
  recovering, else recovered; an account that never had a severe flag is `watch` with active flags and
  `clean` without;
- **trends**: least-squares slope of clean income (as % of its mean, per month) and of the trailing debt
  burden over the last 6 full months;
- **remediation**: for each active code, the latest flag's remediation with its current value and the
  threshold it must get under (of flags of one code ending together, the main currency's: a rule judged
  per currency can fire in two currencies in one month, and the account's figures are its main currency's).
"""

from __future__ import annotations

from datetime import date

import polars as pl

from liushui.config import AccountRiskRules
from liushui.contracts import ACCOUNT_RISK
from liushui.vocabularies import RecoveryStatus, StatementTrust
from transforms.flag_rows import fmt_num, severity
from transforms.integrity import BALANCE_BREAK

TREND_MONTHS = 6


def _status(status: RecoveryStatus) -> pl.Expr:
    return pl.lit(status)


def _trust(trust: StatementTrust) -> pl.Expr:
    return pl.lit(trust)


def _slope(y: pl.Expr, x: pl.Expr) -> pl.Expr:
    """Least-squares slope of y on x (both per group); null with fewer than 2 points."""
    x_mean, y_mean = x.mean(), y.mean()
    denominator = ((x - x_mean) ** 2).sum()
    return pl.when(denominator > 0).then(((x - x_mean) * (y - y_mean)).sum() / denominator)


def _months_between(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    return (later.dt.year() - earlier.dt.year()) * 12 + later.dt.month() - earlier.dt.month()


def _trends(account_months: pl.LazyFrame) -> pl.LazyFrame:
    recent = (
        account_months.filter(pl.col("is_main_currency") & pl.col("is_full_month"))
        .sort("account_id", "month_on")
        .group_by("account_id", maintain_order=True)
        .tail(TREND_MONTHS)
        .with_columns(_x=pl.col("month_on").rank("ordinal").over("account_id").cast(pl.Float64))
    )
    income = pl.col("clean_income").cast(pl.Float64)
    return recent.group_by("account_id").agg(
        clean_income_last=pl.col("clean_income").sort_by("month_on").last(),
        clean_income_trend_pct=pl.when(income.mean() > 0).then(_slope(income, pl.col("_x")) / income.mean() * 100),
        debt_burden_last=pl.col("debt_burden_trailing").sort_by("month_on").last(),
        debt_burden_trend=_slope(pl.col("debt_burden_trailing"), pl.col("_x")),
    )


def account_risk(
    risk_flags: pl.LazyFrame, account_months: pl.LazyFrame, *, rules: AccountRiskRules, as_of: date
) -> pl.LazyFrame:
    as_of_month = as_of.replace(day=1)
    last_full_month = pl.lit(as_of_month).dt.offset_by("-1mo")
    active_since = pl.lit(as_of_month).dt.offset_by(f"-{rules.lookback_months}mo")
    accounts = (
        account_months.filter(pl.col("is_main_currency"))
        .select("account_id", "currency")
        .unique("account_id", keep="first")
    )
    severe = pl.col("severity").is_in(rules.severe_severities)
    severe_history = risk_flags.filter(severe).group_by("account_id").agg(last_severe_on=pl.col("period_end_on").max())
    active = risk_flags.filter(pl.col("period_end_on") >= active_since)
    weights = pl.DataFrame(
        {"flag_code": list(rules.weights), "_weight": [float(w) for w in rules.weights.values()]}
    ).lazy()
    main_currency = accounts.select("account_id", _main_currency="currency")
    per_code = (
        active.join(main_currency, on="account_id", how="left")
        .sort("period_end_on", (pl.col("currency") == pl.col("_main_currency")).fill_null(False), "flag_id")
        .group_by("account_id", "flag_code")
        .agg(
            _high=(pl.col("severity") == severity("high")).any(),
            _rows=pl.len(),
            _metric=pl.col("metric_value").last(),
            _threshold=pl.col("threshold").last(),
            _fix_zh=pl.col("remediation_zh").last(),
            _fix_en=pl.col("remediation_en").last(),
        )
        .join(weights, on="flag_code", how="left")
        .with_columns(
            _points=pl.col("_weight").fill_null(0.0)
            * pl.when(pl.col("_high")).then(pl.lit(rules.high_multiplier)).otherwise(pl.lit(1.0)),
            _fix_zh=pl.format(
                "{}（当前{}，阈值{}）", pl.col("_fix_zh"), fmt_num(pl.col("_metric")), fmt_num(pl.col("_threshold"))
            ),
            _fix_en=pl.format(
                "{} (now {}, threshold {})",
                pl.col("_fix_en"),
                fmt_num(pl.col("_metric")),
                fmt_num(pl.col("_threshold")),
            ),
        )
        .sort("account_id", "_points", "flag_code", descending=[False, True, False])
    )
    summary = per_code.group_by("account_id", maintain_order=True).agg(
        active_flags=pl.col("flag_code"),
        active_flag_count=pl.col("_rows").sum().cast(pl.Int64),
        score=pl.col("_points").sum().clip(upper_bound=100.0),
        score_components_json=pl.concat_str(
            pl.lit('"') + pl.col("flag_code") + pl.lit('": ') + pl.col("_points").round(1).cast(pl.String)
        ).str.join(", "),
        remediation_zh=pl.col("_fix_zh"),
        remediation_en=pl.col("_fix_en"),
        _balance_break=(pl.col("flag_code") == BALANCE_BREAK.code).any(),
    )
    bands = sorted(rules.bands.items(), key=lambda kv: kv[1])
    band = pl.lit(bands[0][0])
    for name, lower in bands[1:]:
        band = pl.when(pl.col("score") >= lower).then(pl.lit(name)).otherwise(band)
    months_since = _months_between(last_full_month, pl.col("last_severe_on").dt.month_start())
    status = (
        pl.when(pl.col("last_severe_on").is_null())
        .then(pl.when(pl.col("active_flag_count") > 0).then(_status("watch")).otherwise(_status("clean")))
        .when(pl.col("months_since_severe") < rules.recovering_after_clean_months)
        .then(_status("at_risk"))
        .when(pl.col("months_since_severe") < rules.recovered_after_clean_months)
        .then(_status("recovering"))
        .otherwise(_status("recovered"))
    )
    empty_list = pl.lit([], dtype=pl.List(pl.String))
    return ACCOUNT_RISK.conform(
        accounts.join(summary, on="account_id", how="left")
        .join(severe_history, on="account_id", how="left")
        .join(_trends(account_months), on="account_id", how="left")
        .with_columns(
            as_of_on=pl.lit(as_of),
            score=pl.col("score").fill_null(0.0),
            active_flags=pl.col("active_flags").fill_null(empty_list),
            active_flag_count=pl.col("active_flag_count").fill_null(0),
            score_components_json=pl.lit("{") + pl.col("score_components_json").fill_null("") + pl.lit("}"),
            remediation_zh=pl.col("remediation_zh").fill_null(empty_list),
            remediation_en=pl.col("remediation_en").fill_null(empty_list),
            statement_trust=pl.when(pl.col("_balance_break").fill_null(False))
            .then(_trust("low"))
            .otherwise(_trust("normal")),
            months_since_severe=months_since.clip(lower_bound=0).cast(pl.Int64),
            rule_version=pl.lit(rules.version),
        )
        .with_columns(band=band.fill_null(pl.lit(bands[0][0])), recovery_status=status)
        .sort("account_id")
    )
