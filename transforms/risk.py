"""Account risk and recovery: one row per account (`contracts.ACCOUNT_RISK`).

From the account's flags and months as of the run's as-of date:

- **active flags**: flags whose period ends within `lookback_months` full months before the as-of month. An
  episode (`transforms.flag_rows.episodes`: a trailing-window rule's consecutive firing months, one flag) ends
  with its last month, so it is active exactly while its latest month would have been; it is one flag of
  `active_flag_count`, and its severity is its worst month's, so an ongoing episode that was high counts as high;
- **score** (0-100): per active flag code its weight from config, x `high_multiplier` when any active flag
  of that code is high; summed and capped at 100; the components are kept;
- **band**: the highest band whose lower bound the score reaches;
- **recovery**: clean months since the last severe flag — full, covered months of the main currency after the
  month its period ends, up to the last full month (a month outside the statement is unknown, never clean; a
  month in which an episode with a high month still fired is not clean either: the episode ends after it):
  fewer than `recovering_after_clean_months` -> at_risk, fewer than `recovered_after_clean_months` ->
  recovering, else recovered; fewer than `recovered_after_clean_months` while the statement ends before the
  last full month -> insufficient_history (the months that would show recovery are not covered); an account
  that never had a severe flag is `watch` with active flags and `clean` without;
- **trends**: least-squares slope of clean income (as % of its mean, per month) and of the trailing debt
  burden over the last 6 full months;
- **customer**: `customer_id` and `holder_name` from the reference accounts (an account missing from it is its
  own customer, without a name), so that analysts find accounts by who owns them;
- **remediation and recovery per cause** ("what must change, by when"): for each active code, the latest flag's
  remediation (of flags of one code ending together, the main currency's: a rule judged per currency can fire in
  two currencies in one month, and the account's figures are its main currency's) with today's value and the
  month it is measured in, the target (the threshold), the clean months so far, the months still needed, the date
  the flag stops counting and the points it adds to the score. *Today's value* is the rule's figure on the latest
  window the rule judges, from `account_months` (`CURRENT_VALUE`) for the rules whose metric is a month figure:
  the as-of month so far for the rules that judge it too (events and shares of a month: an overdue fee booked
  this month counts today), else the last full month (a trailing ratio over full months is not known for a
  partial month); an account whose statement ends earlier falls back to the last full month. For the other
  rules it is the metric of the code's flag in the last full month or later (of an episode: its peak month's),
  else unknown ("not flagged since the last full month"). The flag stops counting on the first as-of date whose
  lookback no longer reaches its month: the month after `lookback_months` clean months.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from liushui.config import AccountRiskRules
from liushui.contracts import ACCOUNT_RISK
from liushui.vocabularies import RecoveryStatus, StatementTrust
from transforms.balances import OVERDRAWN
from transforms.classify import account_owners
from transforms.commingling import COMMINGLING
from transforms.credit import (
    BORROWING_FREQUENT,
    CASH_LOAN_RELIANCE,
    DEBT_BURDEN_HIGH,
    MULTI_LENDER,
    OVERDUE_PENALTY,
)
from transforms.flag_rows import fmt_num, severity
from transforms.income import INCOME_VOLATILE
from transforms.integrity import BALANCE_BREAK
from transforms.transfers import RELATED_TRANSFER_HEAVY

TREND_MONTHS = 6

CURRENT_VALUE: dict[str, pl.Expr] = {
    INCOME_VOLATILE.code: pl.col("income_cv"),
    BORROWING_FREQUENT.code: pl.col("disbursement_count").cast(pl.Float64),
    OVERDUE_PENALTY.code: (pl.col("penalty_count") + pl.col("failed_debit_count") + pl.col("collection_count")).cast(
        pl.Float64
    ),
    OVERDRAWN.code: pl.col("negative_balance_days").cast(pl.Float64),
    DEBT_BURDEN_HIGH.code: pl.col("debt_burden_trailing"),
    MULTI_LENDER.code: pl.col("lenders_active_judged").cast(pl.Float64),
    CASH_LOAN_RELIANCE.code: pl.col("loan_share_trailing"),
    RELATED_TRANSFER_HEAVY.code: pl.col("related_out_share"),
    COMMINGLING.code: pl.col("business_in_share"),
}
"""Rules whose metric is a figure of one account month: today's value is that figure on the latest window the rule
judges."""

JUDGED_IN_AS_OF_MONTH: frozenset[str] = frozenset(
    {
        BORROWING_FREQUENT.code,
        MULTI_LENDER.code,
        OVERDUE_PENALTY.code,
        OVERDRAWN.code,
        RELATED_TRANSFER_HEAVY.code,
        COMMINGLING.code,
    }
)
"""Codes of `CURRENT_VALUE` whose rule judges the as-of month too (a month's events or shares, so far): today's
value is the as-of month's figure. The others judge full months only (a trailing ratio, a volatility over full
months): the last full month's."""


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


def _today_values(account_months: pl.LazyFrame, as_of_month_on: date, last_full_month_on: date) -> pl.LazyFrame:
    """One row per account x code of `CURRENT_VALUE`: `_today`, the figure on the latest window the rule judges
    (the as-of month for `JUDGED_IN_AS_OF_MONTH` when the statement reaches it and the figure is defined there,
    e.g. a share of an outflow, else the last full month) of the main currency, and `_today_month`, that month
    (codes whose columns the frame lacks are left out)."""
    present = set(account_months.collect_schema().names())
    usable = {code: expr for code, expr in CURRENT_VALUE.items() if set(expr.meta.root_names()) <= present}
    schema = {"account_id": pl.String, "flag_code": pl.String, "_today": pl.Float64, "_today_month": pl.Date}
    if not usable:
        return pl.LazyFrame(schema=schema)
    latest = pl.col("month_on") == as_of_month_on
    last_full = pl.col("is_full_month") & (pl.col("month_on") == last_full_month_on)
    figures = (
        account_months.filter(pl.col("is_main_currency") & (latest | last_full))
        .select("account_id", "month_on", *(expr.cast(pl.Float64).alias(code) for code, expr in usable.items()))
        .unpivot(index=["account_id", "month_on"], variable_name="flag_code", value_name="_today")
    )
    judged_now = pl.col("flag_code").is_in(sorted(JUDGED_IN_AS_OF_MONTH))
    return (
        figures.filter(pl.col("month_on").eq(last_full_month_on) | judged_now)
        .drop_nulls("_today")
        .sort("account_id", "flag_code", "month_on", descending=[False, False, True])
        .unique(["account_id", "flag_code"], keep="first", maintain_order=True)
        .select("account_id", "flag_code", "_today", _today_month=pl.col("month_on"))
    )


def _clean_months_after(
    flagged: pl.LazyFrame, full_months: pl.LazyFrame, month: pl.Expr, keys: list[str], last_full_month_on: date
) -> pl.LazyFrame:
    """Per row of `flagged` (one per `keys`): `_clean`, the full covered months after `month` up to the last full
    month."""
    return (
        flagged.select(*keys, _since=month)
        .join(full_months, on="account_id", how="left")
        .group_by(keys)
        .agg(_clean=((pl.col("month_on") > pl.col("_since")) & (pl.col("month_on") <= last_full_month_on)).sum())
    )


def account_risk(
    risk_flags: pl.LazyFrame,
    account_months: pl.LazyFrame,
    *,
    accounts: pl.LazyFrame,
    rules: AccountRiskRules,
    as_of: date,
) -> pl.LazyFrame:
    """One row per account of `account_months`; `accounts` is the reference (`contracts.ACCOUNTS_REF`)."""
    as_of_month = as_of.replace(day=1)
    last_full_month_on = pl.select(pl.lit(as_of_month).dt.offset_by("-1mo")).item()
    last_full_month = pl.lit(last_full_month_on)
    active_since = pl.lit(as_of_month).dt.offset_by(f"-{rules.lookback_months}mo")
    judged = (
        account_months.filter(pl.col("is_main_currency"))
        .select("account_id", "currency")
        .unique("account_id", keep="first")
        .pipe(account_owners, accounts)
    )
    full_months = account_months.filter(pl.col("is_main_currency") & pl.col("is_full_month")).select(
        "account_id", "month_on"
    )
    history = full_months.group_by("account_id").agg(
        history_months=(pl.col("month_on") <= last_full_month_on).sum().cast(pl.Int64),
        _covers_last_full_month=(pl.col("month_on") == last_full_month_on).any(),
    )
    severe = pl.col("severity").is_in(rules.severe_severities)
    last_severe = risk_flags.filter(severe).group_by("account_id").agg(last_severe_on=pl.col("period_end_on").max())
    severe_history = last_severe.join(
        _clean_months_after(
            last_severe, full_months, pl.col("last_severe_on").dt.month_start(), ["account_id"], last_full_month_on
        ),
        on="account_id",
        how="left",
    )
    active = risk_flags.filter(pl.col("period_end_on") >= active_since)
    weights = pl.DataFrame(
        {"flag_code": list(rules.weights), "_weight": [float(w) for w in rules.weights.values()]}
    ).lazy()
    main_currency = judged.select("account_id", _main_currency="currency")
    codes = (
        active.join(main_currency, on="account_id", how="left")
        .sort("period_end_on", (pl.col("currency") == pl.col("_main_currency")).fill_null(False), "flag_id")
        .group_by("account_id", "flag_code")
        .agg(
            _high=(pl.col("severity") == severity("high")).any(),
            _rows=pl.len(),
            _last_end=pl.col("period_end_on").last(),
            _metric=pl.col("metric_value").last(),
            _threshold=pl.col("threshold").last(),
            _fix_zh=pl.col("remediation_zh").last(),
            _fix_en=pl.col("remediation_en").last(),
        )
    )
    clears_on = pl.col("_last_end").dt.month_start().dt.offset_by(f"{rules.lookback_months + 1}mo")
    now, now_month = pl.col("recovery_now"), pl.col("recovery_now_month_on")
    month_text = now_month.dt.strftime("%Y-%m")
    so_far = now_month == as_of_month
    now_zh = (
        pl.when(now.is_null())
        .then(pl.lit("上一完整月以来未触发"))
        .otherwise(
            pl.format(
                "当前{}（{}{}）", fmt_num(now), month_text, pl.when(so_far).then(pl.lit("至今")).otherwise(pl.lit(""))
            )
        )
    )
    now_en = (
        pl.when(now.is_null())
        .then(pl.lit("not flagged since the last full month"))
        .otherwise(
            pl.format(
                "now {} ({}{})", fmt_num(now), month_text, pl.when(so_far).then(pl.lit(" so far")).otherwise(pl.lit(""))
            )
        )
    )
    per_code = (
        codes.join(
            _today_values(account_months, as_of_month, last_full_month_on), on=["account_id", "flag_code"], how="left"
        )
        .join(
            _clean_months_after(
                codes,
                full_months,
                pl.col("_last_end").dt.month_start(),
                ["account_id", "flag_code"],
                last_full_month_on,
            ),
            on=["account_id", "flag_code"],
            how="left",
        )
        .join(weights, on="flag_code", how="left")
        .with_columns(
            _flagged_lately=pl.col("_today").is_null() & (pl.col("_last_end") >= last_full_month),
        )
        .with_columns(
            recovery_now=pl.coalesce("_today", pl.when(pl.col("_flagged_lately")).then(pl.col("_metric"))),
            recovery_now_month_on=pl.coalesce(
                pl.when(pl.col("_today").is_not_null()).then(pl.col("_today_month")),
                pl.when(pl.col("_flagged_lately")).then(pl.col("_last_end").dt.month_start()),
            ),
            recovery_target=pl.col("_threshold"),
            recovery_clean_months=pl.col("_clean").fill_null(0).cast(pl.Int64),
            recovery_clears_on=clears_on,
            recovery_months_needed=_months_between(clears_on, pl.lit(as_of_month)).clip(lower_bound=0).cast(pl.Int64),
            recovery_points=pl.col("_weight").fill_null(0.0)
            * pl.when(pl.col("_high")).then(pl.lit(rules.high_multiplier)).otherwise(pl.lit(1.0)),
        )
        .with_columns(
            _fix_zh=pl.format(
                "{}（{}，阈值{}；已有{}个完整月未再触发，还需{}个月，{}起不再计入，计{}分）",
                pl.col("_fix_zh"),
                now_zh,
                fmt_num(pl.col("recovery_target")),
                pl.col("recovery_clean_months"),
                pl.col("recovery_months_needed"),
                pl.col("recovery_clears_on"),
                pl.col("recovery_points").round(1),
            ),
            _fix_en=pl.format(
                "{} ({}, threshold {}; {} clean full months so far, {} more needed; stops counting on {}; "
                "adds {} points)",
                pl.col("_fix_en"),
                now_en,
                fmt_num(pl.col("recovery_target")),
                pl.col("recovery_clean_months"),
                pl.col("recovery_months_needed"),
                pl.col("recovery_clears_on"),
                pl.col("recovery_points").round(1),
            ),
        )
        .sort("account_id", "recovery_points", "flag_code", descending=[False, True, False])
    )
    summary = per_code.group_by("account_id", maintain_order=True).agg(
        active_flags=pl.col("flag_code"),
        active_flag_count=pl.col("_rows").sum().cast(pl.Int64),
        score=pl.col("recovery_points").sum().clip(upper_bound=100.0),
        score_components_json=pl.concat_str(
            pl.lit('"') + pl.col("flag_code") + pl.lit('": ') + pl.col("recovery_points").round(1).cast(pl.String)
        ).str.join(", "),
        remediation_zh=pl.col("_fix_zh"),
        remediation_en=pl.col("_fix_en"),
        recovery_now=pl.col("recovery_now"),
        recovery_now_month_on=pl.col("recovery_now_month_on"),
        recovery_points=pl.col("recovery_points"),
        recovery_target=pl.col("recovery_target"),
        recovery_clean_months=pl.col("recovery_clean_months"),
        recovery_months_needed=pl.col("recovery_months_needed"),
        recovery_clears_on=pl.col("recovery_clears_on"),
        clears_on=pl.col("recovery_clears_on").max(),
        _balance_break=(pl.col("flag_code") == BALANCE_BREAK.code).any(),
    )
    bands = sorted(rules.bands.items(), key=lambda kv: kv[1])
    band = pl.lit(bands[0][0])
    for name, lower in bands[1:]:
        band = pl.when(pl.col("score") >= lower).then(pl.lit(name)).otherwise(band)
    clean_since = pl.col("months_since_severe")
    status = (
        pl.when(pl.col("last_severe_on").is_null())
        .then(pl.when(pl.col("active_flag_count") > 0).then(_status("watch")).otherwise(_status("clean")))
        .when((clean_since < rules.recovered_after_clean_months) & ~pl.col("_covers_last_full_month"))
        .then(_status("insufficient_history"))
        .when(clean_since < rules.recovering_after_clean_months)
        .then(_status("at_risk"))
        .when(clean_since < rules.recovered_after_clean_months)
        .then(_status("recovering"))
        .otherwise(_status("recovered"))
    )
    empty_list = pl.lit([], dtype=pl.List(pl.String))
    return ACCOUNT_RISK.conform(
        judged.join(summary, on="account_id", how="left")
        .join(severe_history, on="account_id", how="left")
        .join(history, on="account_id", how="left")
        .join(_trends(account_months), on="account_id", how="left")
        .with_columns(
            *(
                pl.col(c).fill_null(pl.lit([], dtype=dtype))
                for c, dtype in (
                    ("recovery_now", pl.List(pl.Float64)),
                    ("recovery_now_month_on", pl.List(pl.Date)),
                    ("recovery_points", pl.List(pl.Float64)),
                    ("recovery_target", pl.List(pl.Float64)),
                    ("recovery_clean_months", pl.List(pl.Int64)),
                    ("recovery_months_needed", pl.List(pl.Int64)),
                    ("recovery_clears_on", pl.List(pl.Date)),
                )
            ),
            as_of_on=pl.lit(as_of),
            score=pl.col("score").fill_null(0.0),
            active_flags=pl.col("active_flags").fill_null(empty_list),
            active_flag_count=pl.col("active_flag_count").fill_null(0),
            score_components_json=pl.lit("{") + pl.col("score_components_json").fill_null("") + pl.lit("}"),
            remediation_zh=pl.col("remediation_zh").fill_null(empty_list),
            remediation_en=pl.col("remediation_en").fill_null(empty_list),
            history_months=pl.col("history_months").fill_null(0),
            _covers_last_full_month=pl.col("_covers_last_full_month").fill_null(False),
            statement_trust=pl.when(pl.col("_balance_break").fill_null(False))
            .then(_trust("low"))
            .otherwise(_trust("normal")),
            months_since_severe=pl.when(pl.col("last_severe_on").is_not_null()).then(
                pl.col("_clean").fill_null(0).cast(pl.Int64)
            ),
            rule_version=pl.lit(rules.version),
        )
        .with_columns(band=band.fill_null(pl.lit(bands[0][0])), recovery_status=status)
        .sort("account_id")
    )
