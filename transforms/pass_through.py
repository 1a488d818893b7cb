"""Pass-through (快进快出, 过桥): an account through which money merely passes — most of what arrives in a month
leaves again within days, and the balance never holds it.

`pass_through_months`: one row per account x currency x month (of the arrival) that passed through, with
`inflow` (the month's money in, own transfers and round-trip and cycle legs aside), `passed` (the part of it that left
within `max_days`), `passed_share`, `passed_inflows`, `median_balance` and the legs: `in_txn_ids` (the inflows
of which at least half left within `max_days`) and `out_txn_ids` (the outflows that carried them away).

How "left within days" is measured: newest money leaves first. Each outflow is carried by the latest inflow
before it that can pass through (below), when that arrived at most `max_days` calendar days earlier (a salary
arriving in between does not take the outflow: the money passing was there first); an inflow has passed
through by what its outflows carried, at most its own amount. Each outflow is counted once, so money is never
counted as leaving twice; money left standing does not hide later money passing (a conduit with a buffer is
still a conduit), so the balance is judged on its own: the month's median stated balance must stay below
`max_balance_share` x its inflow (not judged when the statement states no balances). A salary spent over the
month leaves a little each day, far less than it brought. Moves between the holder's own accounts are neither
inflow nor outflow here (the money stays the customer's).

Which inflows can pass through: not salary (earned money spent at once is still earned: rent and card payments
on pay day), not loan disbursements (a loan paid straight to a seller is the loan's use; borrowing to repay is
BORROW_TO_REPAY), not refunds or reversals, not an inflow below `min_leg` of its currency (interest, a red packet,
a friend's 490 between the 33,800 that arrived and the 32,575 that left: real statements are full of them, and
as the latest inflow it would otherwise take the outflow and hide the money passing), and no leg of a round trip
or a cycle (ROUND_TRIP's and CYCLE's fact, left out altogether).
The others still count in the month's inflow, so a salary keeps an ordinary account away from the share.

`pass_through_flags`: one PASS_THROUGH flag (`contracts.RISK_FLAGS`) per such month. Rule and defaults:
docs/rules_core.md.
"""

from __future__ import annotations

import polars as pl

from liushui.config import PassThroughRules
from liushui.contracts import money_cents
from liushui.vocabularies import TxnClass
from transforms.classify import txn_class_is
from transforms.currency_limits import amount_for_currency
from transforms.flag_rows import Rule, finish_flags, fmt_num, fmt_pct, high_when, month_period

_OWN_CLASSES: tuple[TxnClass, ...] = ("own_transfer_in", "own_transfer_out")
_NEVER_PASSING: tuple[TxnClass, ...] = ("salary", "loan_disbursement", "refund", "reversal")
"""Inflows that count in the month's inflow but never as money passing through (why: the module docstring)."""
_PER_ACCOUNT = ["account_id", "currency"]
_MONTH_KEY = ["account_id", "currency", "month_on"]


def passed_inflows(transactions: pl.LazyFrame, came_back: pl.LazyFrame, *, rules: PassThroughRules) -> pl.LazyFrame:
    """One row per inflow (own transfers and the legs in `came_back` aside): `txn_id, account_id, currency,
    month_on, in_cents, can_pass` (its class can pass through), `passed_cents` (what left within `max_days`,
    carried by `out_txn_ids`)."""
    flows = transactions.filter(~txn_class_is(*_OWN_CLASSES) & (pl.col("amount") != 0)).join(
        came_back.select("txn_id"), on="txn_id", how="anti"
    )
    inflows = (
        flows.filter(pl.col("amount") > 0)
        .select(
            "txn_id",
            *_PER_ACCOUNT,
            month_on=pl.col("booked_on").dt.month_start(),
            in_at=pl.col("booked_at"),
            in_cents=money_cents(pl.col("amount")),
            can_pass=~txn_class_is(*_NEVER_PASSING)
            & (pl.col("amount").abs().cast(pl.Float64) >= amount_for_currency(rules.min_leg)),
        )
        .sort("in_at", "txn_id")
    )
    carried = (
        flows.filter(pl.col("amount") < 0)
        .select(*_PER_ACCOUNT, out_txn_id="txn_id", out_at="booked_at", out_cents=-money_cents(pl.col("amount")))
        .sort("out_at")
        .join_asof(
            inflows.filter("can_pass").select("txn_id", *_PER_ACCOUNT, "in_at"),
            left_on="out_at",
            right_on="in_at",
            by=_PER_ACCOUNT,
            strategy="backward",
            check_sortedness=False,  # both sides are sorted on the key as a whole, hence within every group
        )
        # days as the statement counts them: local calendar days
        .filter((pl.col("out_at").dt.date() - pl.col("in_at").dt.date()).dt.total_days() <= rules.max_days)
        .group_by("txn_id")
        .agg(carried_cents=pl.col("out_cents").sum(), out_txn_ids=pl.col("out_txn_id"))
    )
    return (
        inflows.join(carried, on="txn_id", how="left")
        .with_columns(passed_cents=pl.min_horizontal("in_cents", pl.col("carried_cents").fill_null(0)))
        .drop("in_at", "carried_cents")
    )


def pass_through_months(
    transactions: pl.LazyFrame, came_back: pl.LazyFrame, *, rules: PassThroughRules
) -> pl.LazyFrame:
    """`came_back`: the `txn_id` of round-trip and cycle legs, left out (money that came back is that fact).
    The months that passed through (`passed_share >= share_threshold`, at least `min_inflows` inflows of
    which half or more passed, at least `min_passed` of the currency passed, the median stated balance below
    `max_balance_share` of the inflow), with their legs."""
    is_leg = pl.col("can_pass") & (pl.col("passed_cents") * 2 >= pl.col("in_cents"))
    balances = transactions.group_by(*_PER_ACCOUNT, month_on=pl.col("booked_on").dt.month_start()).agg(
        median_balance=pl.col("balance_after").cast(pl.Float64).median()
    )
    return (
        passed_inflows(transactions, came_back, rules=rules)
        .group_by(_MONTH_KEY)
        .agg(
            inflow=pl.col("in_cents").sum().cast(pl.Float64) / 100,
            passed=pl.col("passed_cents").filter(pl.col("can_pass")).sum().cast(pl.Float64) / 100,
            passed_inflows=is_leg.sum().cast(pl.Int64),
            in_txn_ids=pl.col("txn_id").filter(is_leg),
            out_txn_ids=pl.col("out_txn_ids").filter(is_leg).list.explode(keep_nulls=False, empty_as_null=False),
        )
        .join(balances, on=_MONTH_KEY, how="left")
        .with_columns(passed_share=pl.col("passed") / pl.col("inflow"))
        .filter(
            (pl.col("passed_share") >= rules.share_threshold)
            & (pl.col("passed_inflows") >= rules.min_inflows)
            & (pl.col("passed") >= amount_for_currency(rules.min_passed))
            & (
                pl.col("median_balance").is_null()
                | (pl.col("median_balance") < rules.max_balance_share * pl.col("inflow"))
            )
        )
    )


def pass_through_legs(months: pl.LazyFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """(`txn_id` of the inflow legs, `txn_id` of the outflow legs) of pass-through months (`pass_through_months`)."""
    return (
        months.select(txn_id="in_txn_ids").explode("txn_id").drop_nulls(),
        months.select(txn_id="out_txn_ids").explode("txn_id").drop_nulls(),
    )


PASS_THROUGH = Rule(
    code="PASS_THROUGH",
    name_zh="快进快出",
    name_en="Pass-through account (money in and straight out)",
    section="pass_through",
    config_model=PassThroughRules,
    remediation_zh="停止资金快进快出（过桥）：入账资金不应在{rules.max_days}天内大部分转出；说明资金来源与去向。",
    remediation_en=(
        "Stop passing money through the account (过桥): most money received should not leave within "
        "{rules.max_days} days; explain where the money came from and where it went."
    ),
    default_weight=20,
    doc="docs/rules_core.md",
    behaviour="pass_through",
)


def pass_through_flags(months: pl.LazyFrame, *, rules: PassThroughRules) -> pl.LazyFrame:
    """PASS_THROUGH: one flag per pass-through month (`pass_through_months`); evidence: its legs, in and out."""
    return finish_flags(
        months.with_columns(
            **month_period(),
            metric_value=pl.col("passed_share"),
            threshold=pl.lit(rules.share_threshold),
            limit_name=pl.lit("share_passed_within_days"),
            severity=high_when(pl.col("passed_share") >= rules.high_share),
            evidence_txn_ids=pl.concat_list("in_txn_ids", "out_txn_ids").list.unique(),
            reason_zh=pl.format(
                "本月入账{}中{}（{}）在{}天内即转出，涉及{}笔入账，阈值{}；疑似过桥、快进快出。",
                fmt_num(pl.col("inflow")),
                fmt_num(pl.col("passed")),
                fmt_pct(pl.col("passed_share")),
                pl.lit(str(rules.max_days)),
                pl.col("passed_inflows"),
                pl.lit(f"{rules.share_threshold:.0%}"),
            ),
            reason_en=pl.format(
                "Of {} received this month, {} ({}) left again within {} days, through {} inflows (threshold {}): "
                "the account is a conduit.",
                fmt_num(pl.col("inflow")),
                fmt_num(pl.col("passed")),
                fmt_pct(pl.col("passed_share")),
                pl.lit(str(rules.max_days)),
                pl.col("passed_inflows"),
                pl.lit(f"{rules.share_threshold:.0%}"),
            ),
        ),
        PASS_THROUGH,
        rules,
    )
