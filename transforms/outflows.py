"""Large outflows: a single outflow large relative to the account's own trailing typical income.

One output row per outflow that crossed its limit: `txn_id, account_id, currency, month_on, booked_at,
amount_out, typical_income, limit_amount, limit_name`. The limit is

- `relative_to_income`: `income_multiple` x typical monthly clean income of the trailing window before
  the month;
- `relative_to_statement_income`: early in a statement (fewer than `min_months` full months before the
  month) the base is the median clean income of all full months of the statement, when it has at least
  `min_months` of them — a lender judges the statement it was given as a whole;
- `absolute_floor`: the currency's noise floor, when the relative limit would be below it (a noise floor,
  small: 4 x a low income is large even far below 20,000 — low incomes are the riskiest segment);
- `no_history_absolute`: the currency's `no_history_limit`, when the whole statement has fewer than
  `min_months` full months — a relative rule needs a base;
- `no_income_absolute`: the same limit when the base is a typical clean income of zero (every outflow would
  be "many times" nothing).

Absolute amounts are per currency (`large_outflow.limits`); an unlisted currency takes the CNY row and the
flag says so (`transforms.currency_limits`).

Not money leaving in a block, never judged: moves between the holder's own accounts; neutral rows (a move into a
money-market fund, a currency exchange within the account: `transforms.classify`); regular commitments —
the same party paid a similar amount (within `recurring_tolerance`) in at least `recurring_months` months of
the statement (rent, a mortgage, school fees); and the legs of money that came
back or only passed through (`returned`: the outflows of round trips in either direction, of cycles, of
pass-through months, of window-dressing drains and a collecting hub's payments onward) — one fact, one flag:
those are ROUND_TRIP, CYCLE, PASS_THROUGH, WINDOW_DRESSING and GATHER_SCATTER.

`large_outflow_flags`: one LARGE_OUTFLOW flag (`contracts.RISK_FLAGS`) per account, currency and month with
at least one large outflow. Rule and defaults: docs/rules_core.md.
"""

from __future__ import annotations

import polars as pl

from liushui.config import LargeOutflowRules
from liushui.contracts import MONEY
from transforms.classify import txn_class_is
from transforms.counterparty import normalised_name, normalised_number
from transforms.currency_limits import amount_for_currency, fallback_note_en, fallback_note_zh
from transforms.flag_rows import Rule, finish_flags, fmt_num, high_when, month_period

_ABSOLUTE_LIMITS = ("absolute_floor", "no_history_absolute", "no_income_absolute")
"""Limit names whose amount is the currency table's, not the income's."""


def large_outflows(
    transactions: pl.LazyFrame,
    account_months: pl.LazyFrame,
    *,
    rules: LargeOutflowRules,
    returned: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Outflows at or above their limit. `returned` (`txn_id`): outflows that are legs of money that came back
    or passed through, which are not judged."""
    per_account = ["account_id", "currency"]
    full_income = pl.when(pl.col("is_full_month")).then(pl.col("clean_income"))
    trailing = (pl.col("income_history_months") >= rules.min_months) & pl.col("typical_income").is_not_null()
    statement = pl.col("_statement_months") >= rules.min_months
    base = account_months.with_columns(
        # as the trailing base (`transforms.income`): the mean of the full months, the best one left out
        _statement_income=pl.when(full_income.count().over(per_account) >= 2)
        .then(
            (full_income.sum().over(per_account) - full_income.max().over(per_account))
            / (full_income.count().over(per_account) - 1)
        )
        .otherwise(full_income.sum().over(per_account))
        .cast(pl.Float64)
        .round(2)
        .cast(MONEY),
        _statement_months=full_income.count().over(per_account),
    ).select(
        *per_account,
        "month_on",
        base_name=pl.when(trailing).then(pl.lit("trailing")).when(statement).then(pl.lit("statement")),
        typical_income=pl.when(trailing)
        .then(pl.col("typical_income"))
        .when(statement)
        .then(pl.col("_statement_income")),
    )
    floor = amount_for_currency({c: limits.absolute_floor for c, limits in rules.limits.items()})
    no_base = amount_for_currency({c: limits.no_history_limit for c, limits in rules.limits.items()})
    relative = pl.col("typical_income").cast(pl.Float64) * rules.income_multiple
    outflows = transactions.filter((pl.col("amount") < 0) & ~txn_class_is("own_transfer_out", "neutral")).with_columns(
        month_on=pl.col("booked_on").dt.month_start(), amount_out=-pl.col("amount"), _party=_party()
    )
    if returned is not None:
        outflows = outflows.join(returned.select("txn_id"), on="txn_id", how="anti")
    over_limit = (
        outflows.join(base, on=["account_id", "currency", "month_on"], how="left")
        .with_columns(
            limit_name=pl.when(pl.col("base_name").is_null())
            .then(pl.lit("no_history_absolute"))
            .when(pl.col("typical_income") <= 0)
            .then(pl.lit("no_income_absolute"))
            .when(relative < floor)
            .then(pl.lit("absolute_floor"))
            .when(pl.col("base_name") == "trailing")
            .then(pl.lit("relative_to_income"))
            .otherwise(pl.lit("relative_to_statement_income")),
        )
        .with_columns(
            limit_amount=pl.when(pl.col("limit_name").is_in(["no_history_absolute", "no_income_absolute"]))
            .then(no_base)
            .when(pl.col("limit_name") == "absolute_floor")
            .then(floor)
            .otherwise(relative)
            .round(2)
            .cast(MONEY)
        )
        .filter(pl.col("amount_out") >= pl.col("limit_amount"))
        .select(
            "txn_id",
            "account_id",
            "currency",
            "month_on",
            "booked_at",
            "amount_out",
            "typical_income",
            "limit_amount",
            "limit_name",
            "_party",
        )
    )
    return over_limit.join(_recurring(over_limit, outflows, rules=rules), on="txn_id", how="anti").drop("_party")


def _party() -> pl.Expr:
    """Who was paid: the resolved account, else the normalised name, else the normalised number."""
    return pl.coalesce(
        pl.col("counterparty_account_id"),
        normalised_name(pl.col("counterparty_name")),
        normalised_number(pl.col("counterparty_account")),
    )


def _recurring(candidates: pl.LazyFrame, outflows: pl.LazyFrame, *, rules: LargeOutflowRules) -> pl.LazyFrame:
    """`txn_id` of the candidates that are a regular commitment: the same party was paid within
    `recurring_tolerance` of the amount in at least `recurring_months` distinct months of the statement (rent,
    a mortgage, school fees): a payment the budget already carries every month is not money leaving in a block.
    Only the few candidates are joined with the party's other outflows."""
    # One join, candidates (with their party) against the party's outflows: given a semi join of the outflows
    # with the candidates first, Polars' optimizer joined every outflow with its party's others before applying it
    # (quadratic in the payments to one merchant: 8 s and 3 GiB at 1 M rows).
    peers = outflows.filter(pl.col("_party").is_not_null() & (pl.col("_party") != "")).select(
        "account_id", "currency", "_party", _peer_month="month_on", _peer_amount="amount_out"
    )
    tolerance = pl.col("amount_out").cast(pl.Float64) * rules.recurring_tolerance
    return (
        candidates.select("txn_id", "account_id", "currency", "_party", "amount_out")
        .join(peers, on=["account_id", "currency", "_party"])
        .filter((pl.col("_peer_amount") - pl.col("amount_out")).abs().cast(pl.Float64) <= tolerance)
        .group_by("txn_id")
        .agg(_months=pl.col("_peer_month").n_unique())
        .filter(pl.col("_months") >= rules.recurring_months)
        .select("txn_id")
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


LARGE_OUTFLOW = Rule(
    code="LARGE_OUTFLOW",
    name_zh="大额支出",
    name_en="Large outflow",
    section="large_outflow",
    config_model=LargeOutflowRules,
    remediation_zh="说明大额支出的用途并提供凭证；避免大额资金一次性转出。",
    remediation_en="Explain the purpose of the large outflow with documents; avoid moving large sums out at once.",
    default_weight=8,
    doc="docs/rules_core.md",
    behaviour="large_outflow",
)


def large_outflow_flags(large: pl.LazyFrame, *, rules: LargeOutflowRules) -> pl.LazyFrame:
    """LARGE_OUTFLOW: one flag per account month with at least one large outflow (`large_outflows` rows);
    the largest decides the metric, threshold and limit named; every large outflow of the month is evidence."""
    ratio = pl.when(pl.col("typical_income") > 0).then(
        pl.col("amount_out").cast(pl.Float64) / pl.col("typical_income").cast(pl.Float64)
    )
    floors = {c: limits.absolute_floor for c, limits in rules.limits.items()}
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
            **month_period(),
            severity=high_when(pl.col("_ratio") >= rules.high_multiple),
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
            .when(pl.col("limit_name") == "no_income_absolute")
            .then(pl.lit("无净收入时的绝对限额"))
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
            .when(pl.col("limit_name") == "no_income_absolute")
            .then(pl.lit("the absolute limit used when there is no clean income"))
            .otherwise(pl.lit("the absolute limit used when income history is too short")),
            _absolute=pl.col("limit_name").is_in(_ABSOLUTE_LIMITS),
        )
        .with_columns(
            _note_zh=pl.when(pl.col("_absolute")).then(fallback_note_zh(floors)).otherwise(pl.lit("")),
            _note_en=pl.when(pl.col("_absolute")).then(fallback_note_en(floors)).otherwise(pl.lit("")),
        )
        .with_columns(
            reason_zh=pl.format(
                "本月{}笔大额支出，最大一笔{}，超过限额{}（{}）{}。",
                pl.col("count"),
                fmt_num(pl.col("metric_value")),
                fmt_num(pl.col("threshold")),
                pl.col("_limit_zh"),
                pl.col("_note_zh"),
            ),
            reason_en=pl.format(
                "{} large outflow(s) this month; the largest, {}, exceeds the limit {} ({}){}.",
                pl.col("count"),
                fmt_num(pl.col("metric_value")),
                fmt_num(pl.col("threshold")),
                pl.col("_limit_en"),
                pl.col("_note_en"),
            ),
        ),
        LARGE_OUTFLOW,
        rules,
    )
