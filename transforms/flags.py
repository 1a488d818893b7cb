"""Risk flags: one row per account x period x flag code, explained and with evidence.

Each rule below turns a feature into `contracts.RISK_FLAGS` rows: the metric it judged, the threshold it
crossed, which limit fired, severity, the rule version from `config/rules.yaml`, a reason in Chinese and
English, the remediation, and the ids of the transactions that prove it. A candidate flag without
evidence is dropped (evidence or it did not happen).
"""

from __future__ import annotations

import polars as pl
import polars_hash  # noqa: F401  (registers the stable `chash` namespace)

from liushui.config import (
    IncomeVolatilityRules,
    LargeOutflowRules,
    RelatedTransferRules,
    RoundTripRules,
    Rules,
)
from liushui.contracts import RISK_FLAGS

REMEDIATION: dict[str, tuple[str, str]] = {
    "INCOME_VOLATILE": (
        "稳定收入来源：保持连续数月稳定的工资或经营收入入账。",
        "Stabilise income: several consecutive months of steady salary or business income.",
    ),
    "LARGE_OUTFLOW": (
        "说明大额支出的用途并提供凭证；避免大额资金一次性转出。",
        "Explain the purpose of the large outflow with documents; avoid moving large sums out at once.",
    ),
    "RELATED_TRANSFER_HEAVY": (
        "停止通过本人其他账户或关联方账户频繁划转资金。",
        "Stop routing money through the holder's other accounts or related parties.",
    ),
    "ROUND_TRIP": (
        "停止资金快进快出、虚增流水（刷流水）。",
        "Stop moving money out and back to inflate turnover (round trips).",
    ),
}


def fmt_pct(expr: pl.Expr) -> pl.Expr:
    return (expr * 100).round(1).cast(pl.String) + pl.lit("%")


def fmt_num(expr: pl.Expr, decimals: int = 2) -> pl.Expr:
    """Fixed two-decimal text (money and ratios alike), e.g. 50000.00."""
    return expr.cast(pl.Float64).round(decimals).cast(pl.Decimal(38, decimals)).cast(pl.String)


FLAG_KEY: tuple[str, ...] = ("account_id", "currency", "period_start_on", "period_end_on")
"""What every rule is judged on: one account, in one currency, over one period. `flag_id` hashes the
rule code and these columns, so two flags of one rule can share an id only if they share this key."""


def flag_id_expr(code: str, key: tuple[str, ...] = FLAG_KEY) -> pl.Expr:
    """`flag_id`: the first 32 hex digits of SHA-256 over `code|<key columns as text>`. A null key column
    gives a null id (which the contract's not-null expectation blocks), never a shared one."""
    return (
        pl.concat_str([pl.lit(code), *(pl.col(c).cast(pl.String) for c in key)], separator="|")
        .chash.sha2_256()
        .str.slice(0, 32)
    )


def finish_flags(
    candidates: pl.LazyFrame,
    code: str,
    version: str,
    remediation: tuple[str, str] | None = None,
    *,
    extra_key: tuple[str, ...] = (),
) -> pl.LazyFrame:
    """Common columns of every rule's flags: id, code, version, remediation (`REMEDIATION[code]` unless
    given); candidates without evidence are dropped. `candidates` carries the key (`FLAG_KEY`:
    account_id, currency, period_start_on, period_end_on) and metric_value, threshold, limit_name,
    severity, reason_zh, reason_en, evidence_txn_ids.

    The key is required, not defaulted: a rule whose candidates lack a key column fails here, when the
    query is built. A rule that can fire more than once for one account, currency and period names what
    tells those flags apart in `extra_key` (hashed into `flag_id`). Each rule builds its candidates one
    row per key (a group_by on it, or one row per `account_months` row), so the ids are unique by
    construction; `duplicate_flag_ids` finds any row breaking that, and the blocking primary-key
    expectation on `flag_id` stops a publish that would carry one."""
    key = (*FLAG_KEY, *extra_key)
    missing = [c for c in key if c not in candidates.collect_schema().names()]
    if missing:
        raise ValueError(f"{code}: flag candidates lack the key column(s) {missing}; every flag is judged on {key}")
    remediation_zh, remediation_en = remediation or REMEDIATION[code]
    return RISK_FLAGS.conform(
        candidates.filter(pl.col("evidence_txn_ids").list.len() > 0).with_columns(
            flag_code=pl.lit(code),
            rule_version=pl.lit(version),
            remediation_zh=pl.lit(remediation_zh),
            remediation_en=pl.lit(remediation_en),
            evidence_txn_ids=pl.col("evidence_txn_ids").list.sort(),
            flag_id=flag_id_expr(code, key),
        )
    )


def duplicate_flag_ids(flags: pl.LazyFrame) -> pl.LazyFrame:
    """Flags (`contracts.RISK_FLAGS` rows) sharing a `flag_id`: empty when every rule kept its key unique."""
    return flags.filter(pl.len().over("flag_id") > 1).sort("flag_id", "flag_code", *FLAG_KEY)


def evidence_in_months(flagged: pl.LazyFrame, transactions: pl.LazyFrame, condition: pl.Expr) -> pl.LazyFrame:
    """Collect, per flagged account period, the ids of transactions meeting `condition` inside it."""
    rows = transactions.filter(condition).select("account_id", "currency", "txn_id", "booked_on")
    evidence = (
        flagged.select("account_id", "currency", "period_start_on", "period_end_on")
        .join(rows, on=["account_id", "currency"])
        .filter(pl.col("booked_on").is_between(pl.col("period_start_on"), pl.col("period_end_on")))
        .group_by("account_id", "currency", "period_start_on", "period_end_on")
        .agg(evidence_txn_ids=pl.col("txn_id"))
    )
    return flagged.join(evidence, on=["account_id", "currency", "period_start_on", "period_end_on"], how="left")


def income_volatility_flags(
    account_months: pl.LazyFrame, transactions: pl.LazyFrame, *, rules: IncomeVolatilityRules
) -> pl.LazyFrame:
    """INCOME_VOLATILE: trailing CV of clean income above the threshold (full main-currency months)."""
    flagged = (
        account_months.with_columns(_first_month_on=pl.col("month_on").min().over("account_id", "currency"))
        .filter(pl.col("is_main_currency") & (pl.col("income_cv") > rules.cv_threshold))
        .with_columns(
            # the window, clipped to the account's coverage
            period_start_on=pl.max_horizontal(
                pl.col("month_on").dt.offset_by(f"-{rules.window_months - 1}mo"), pl.col("_first_month_on")
            ),
            period_end_on=pl.col("month_on").dt.month_end(),
            metric_value=pl.col("income_cv"),
            threshold=pl.lit(rules.cv_threshold),
            limit_name=pl.lit("cv_threshold"),
            severity=pl.when(pl.col("income_cv") >= rules.cv_high).then(pl.lit("high")).otherwise(pl.lit("medium")),
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
    )
    with_evidence = evidence_in_months(flagged, transactions, pl.col("is_clean_income"))
    return finish_flags(with_evidence, "INCOME_VOLATILE", rules.version)


def large_outflow_flags(large: pl.LazyFrame, *, rules: LargeOutflowRules) -> pl.LazyFrame:
    """LARGE_OUTFLOW: one flag per account month with at least one large outflow; the largest decides
    the metric, threshold and limit named; every large outflow of the month is evidence."""
    ratio = pl.col("amount_out").cast(pl.Float64) / pl.col("typical_income").cast(pl.Float64)
    return finish_flags(
        large.sort("amount_out", "txn_id", descending=[True, False])
        .group_by("account_id", "currency", "month_on")
        .agg(
            metric_value=pl.col("amount_out").first().cast(pl.Float64),
            threshold=pl.col("limit_amount").first().cast(pl.Float64),
            limit_name=pl.col("limit_name").first(),
            typical_income=pl.col("typical_income").first(),
            count=pl.len(),
            _ratio=ratio.first(),
            evidence_txn_ids=pl.col("txn_id"),
        )
        .with_columns(
            period_start_on=pl.col("month_on"),
            period_end_on=pl.col("month_on").dt.month_end(),
            severity=pl.when(pl.col("_ratio") >= rules.high_multiple).then(pl.lit("high")).otherwise(pl.lit("medium")),
            _limit_zh=pl.when(pl.col("limit_name") == "relative_to_income")
            .then(
                pl.format(
                    "近期月均净收入{}的{}倍", fmt_num(pl.col("typical_income")), pl.lit(str(rules.income_multiple))
                )
            )
            .when(pl.col("limit_name") == "relative_to_statement_income")
            .then(
                pl.format(
                    "流水期内月均净收入{}的{}倍", fmt_num(pl.col("typical_income")), pl.lit(str(rules.income_multiple))
                )
            )
            .when(pl.col("limit_name") == "absolute_floor")
            .then(pl.lit("绝对下限"))
            .otherwise(pl.lit("收入历史不足时的绝对限额")),
            _limit_en=pl.when(pl.col("limit_name") == "relative_to_income")
            .then(
                pl.format(
                    "{} x recent typical monthly income {}",
                    pl.lit(str(rules.income_multiple)),
                    fmt_num(pl.col("typical_income")),
                )
            )
            .when(pl.col("limit_name") == "relative_to_statement_income")
            .then(
                pl.format(
                    "{} x the statement's typical monthly income {}",
                    pl.lit(str(rules.income_multiple)),
                    fmt_num(pl.col("typical_income")),
                )
            )
            .when(pl.col("limit_name") == "absolute_floor")
            .then(pl.lit("the absolute floor"))
            .otherwise(pl.lit("the absolute limit used when income history is too short")),
        )
        .with_columns(
            reason_zh=pl.format(
                "本月{}笔大额支出，最大一笔{}，超过限额{}（{}）。",
                pl.col("count"),
                fmt_num(pl.col("metric_value")),
                fmt_num(pl.col("threshold")),
                pl.col("_limit_zh"),
            ),
            reason_en=pl.format(
                "{} large outflow(s) this month; the largest, {}, exceeds the limit {} ({}).",
                pl.col("count"),
                fmt_num(pl.col("metric_value")),
                fmt_num(pl.col("threshold")),
                pl.col("_limit_en"),
            ),
        ),
        "LARGE_OUTFLOW",
        rules.version,
    )


def related_transfer_flags(
    account_months: pl.LazyFrame, transactions: pl.LazyFrame, *, rules: RelatedTransferRules
) -> pl.LazyFrame:
    """RELATED_TRANSFER_HEAVY: a month whose outflow goes mostly to own accounts / related parties."""
    flagged = account_months.filter(
        pl.col("is_main_currency")
        & (pl.col("related_out_share") >= rules.share_threshold)
        & (pl.col("related_out_count") >= rules.min_count)
    ).with_columns(
        period_start_on=pl.col("month_on"),
        period_end_on=pl.col("month_on").dt.month_end(),
        metric_value=pl.col("related_out_share"),
        threshold=pl.lit(rules.share_threshold),
        limit_name=pl.lit("share_of_outflow"),
        severity=pl.when(pl.col("related_out_share") >= rules.high_share)
        .then(pl.lit("high"))
        .otherwise(pl.lit("medium")),
        reason_zh=pl.format(
            "本月{}笔转给本人其他账户或关联方，共{}，占支出{}，超过阈值{}。",
            pl.col("related_out_count"),
            fmt_num(pl.col("related_out")),
            fmt_pct(pl.col("related_out_share")),
            pl.lit(f"{rules.share_threshold:.0%}"),
        ),
        reason_en=pl.format(
            "{} transfers to own accounts or related parties this month, {} in total, {} of outflow (threshold {}).",
            pl.col("related_out_count"),
            fmt_num(pl.col("related_out")),
            fmt_pct(pl.col("related_out_share")),
            pl.lit(f"{rules.share_threshold:.0%}"),
        ),
    )
    related_out = pl.col("txn_class").is_in(["own_transfer_out", "related_transfer_out"])
    return finish_flags(evidence_in_months(flagged, transactions, related_out), "RELATED_TRANSFER_HEAVY", rules.version)


def round_trip_flags(links: pl.LazyFrame, transactions: pl.LazyFrame, *, rules: RoundTripRules) -> pl.LazyFrame:
    """ROUND_TRIP: a month (of the outgoing leg) with at least `min_count_per_month` round trips."""
    months = transactions.select(
        out_txn_id="txn_id", currency="currency", month_on=pl.col("booked_on").dt.month_start()
    )
    return finish_flags(
        links.filter(pl.col("link_type") == "round_trip")
        .join(months, on="out_txn_id")
        .group_by("account_id", "currency", "month_on")
        .agg(
            count=pl.len(),
            total=pl.col("amount_out").sum(),
            evidence_txn_ids=pl.concat_list("out_txn_id", "in_txn_id").list.explode(
                keep_nulls=False, empty_as_null=False
            ),
        )
        .filter(pl.col("count") >= rules.min_count_per_month)
        .with_columns(
            period_start_on=pl.col("month_on"),
            period_end_on=pl.col("month_on").dt.month_end(),
            metric_value=pl.col("count").cast(pl.Float64),
            threshold=pl.lit(float(rules.min_count_per_month)),
            limit_name=pl.lit("round_trips_per_month"),
            severity=pl.when(pl.col("count") >= rules.high_count).then(pl.lit("high")).otherwise(pl.lit("medium")),
            reason_zh=pl.format(
                "本月{}笔资金在{}天内转出后以相近金额转回（共{}），疑似刷流水。",
                pl.col("count"),
                pl.lit(str(rules.max_days)),
                fmt_num(pl.col("total")),
            ),
            reason_en=pl.format(
                "{} times this month money went out and came back within {} days at a similar "
                "amount ({} in total): likely inflated turnover.",
                pl.col("count"),
                pl.lit(str(rules.max_days)),
                fmt_num(pl.col("total")),
            ),
        ),
        "ROUND_TRIP",
        rules.version,
    )


def risk_flags(
    *,
    account_months: pl.LazyFrame,
    transactions: pl.LazyFrame,
    large: pl.LazyFrame,
    links: pl.LazyFrame,
    rules: Rules,
) -> pl.LazyFrame:
    return pl.concat(
        [
            income_volatility_flags(account_months, transactions, rules=rules.income_volatility),
            large_outflow_flags(large, rules=rules.large_outflow),
            related_transfer_flags(account_months, transactions, rules=rules.related_transfers),
            round_trip_flags(links, transactions, rules=rules.round_trip),
        ]
    ).sort("account_id", "flag_code", "period_start_on", "period_end_on", "currency")
