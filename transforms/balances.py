"""Balances: what the stated running balance says day by day, and OVERDRAWN (透支).

`daily_balances`: one row per account x currency x calendar day from the first day with a stated balance to
the end of the account's coverage (its last booking date): the day's ending balance — the last stated
`balance_after` of the day in statement order (`booked_at`, `source_row`, `txn_id`), or, on a day without a
stated balance, the last one before it, carried — and `stated_txn_id`, the row that stated it. Carrying is
how Plaid counts "days with a negative balance": an account overdrawn on the 4th and topped up on the 10th
was overdrawn for six days, not one.

`balance_month_features` adds to each account month (same rows) `negative_balance_days`, `low_balance_days`,
`avg_daily_balance`, `min_daily_balance` and `max_daily_balance`. `overdrawn_flags` turns the negative days of
debit accounts into OVERDRAWN flags; `window_dressing_flags` finds balances pushed up around month ends and
drained days later (WINDOW_DRESSING, 冲时点).

A negative balance is not an overdue payment (that is OVERDUE_PENALTY, `transforms.credit`, which needs a
penalty, a failed debit or collection): on a debit account it is an overdraft; on a credit-card statement it is
the normal state (the balance is what the holder owes), so credit cards are never judged here. Which accounts
are credit cards: `is_credit_card` on the reference `accounts.account_type` (docs/rules_credit.md, OVERDRAWN).
"""

from __future__ import annotations

import polars as pl

from liushui.config import OverdrawnRules, WindowDressingRules
from liushui.contracts import MONEY, money_mean
from liushui.vocabularies import AccountType
from transforms.classify import txn_class_is
from transforms.currency_limits import amount_for_currency
from transforms.flag_rows import Rule, finish_flags, fmt_num, fmt_pct, high_when, month_period

_PER_ACCOUNT = ["account_id", "currency"]
_MONTH_KEY = ["account_id", "currency", "month_on"]
STATEMENT_ORDER = ["booked_at", "source_row", "txn_id"]
"""A total order of an account's rows as its statement lists them; txn_id breaks ties of rows of two files."""

CREDIT_CARD_SPELLINGS = r"(?i)^\s*(credit[\s_-]*card|creditcard|信用卡|贷记卡)\s*$"
"""`account_type` values that mean a credit card: the vocabulary's `credit_card` and how people write it."""


def account_type_value(account_type: AccountType) -> str:
    """A value of the published `accounts.account_type` vocabulary (checked by mypy)."""
    return account_type


def is_credit_card(accounts: pl.LazyFrame) -> pl.LazyFrame:
    """One row per reference account: `account_id, is_credit_card`. An account missing from the reference,
    or without a type, is a debit account: the reference is the one place that says otherwise (a layout
    profile's name is not carried to the transactions)."""
    kind = pl.col("account_type").fill_null("")
    return accounts.select(
        "account_id",
        is_credit_card=(kind.str.strip_chars().str.to_lowercase() == account_type_value("credit_card"))
        | kind.str.contains(CREDIT_CARD_SPELLINGS),
    ).unique("account_id", keep="first")


def day_closings(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per account x currency x day with a stated balance: `booked_on, closing_balance, txn_id` (the
    row stating the day's last balance in statement order)."""
    return (
        transactions.filter(pl.col("balance_after").is_not_null())
        .group_by(*_PER_ACCOUNT, "booked_on")
        .agg(
            txn_id=pl.col("txn_id").sort_by(STATEMENT_ORDER).last(),
            closing_balance=pl.col("balance_after").sort_by(STATEMENT_ORDER).last(),
        )
    )


def daily_balances(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per account x currency x day (see the module docstring): `day_on, balance, stated_txn_id`."""
    coverage_end = transactions.group_by("account_id").agg(_end_on=pl.col("booked_on").max())
    next_stated = pl.col("booked_on").shift(-1).over(_PER_ACCOUNT, order_by="booked_on")
    return (
        day_closings(transactions)
        .join(coverage_end, on="account_id")
        .with_columns(_until=(next_stated - pl.duration(days=1)).fill_null(pl.col("_end_on")))
        .with_columns(day_on=pl.date_ranges("booked_on", "_until"))
        .explode("day_on")
        .select(*_PER_ACCOUNT, "day_on", balance="closing_balance", stated_txn_id="txn_id")
    )


def balance_month_features(
    transactions: pl.LazyFrame, account_months: pl.LazyFrame, *, rules: OverdrawnRules
) -> pl.LazyFrame:
    """Add `negative_balance_days`, `low_balance_days` (0 when no day is known) and `avg_daily_balance`,
    `min_daily_balance`, `max_daily_balance` (null then) to every account month (same rows, same order)."""
    produced = [
        "negative_balance_days",
        "low_balance_days",
        "avg_daily_balance",
        "min_daily_balance",
        "max_daily_balance",
    ]
    per_month = (
        daily_balances(transactions)
        .group_by(*_PER_ACCOUNT, month_on=pl.col("day_on").dt.month_start())
        .agg(
            negative_balance_days=(pl.col("balance") < 0).sum().cast(pl.Int64),
            low_balance_days=(pl.col("balance").cast(pl.Float64) < rules.low_balance_limit).sum().cast(pl.Int64),
            avg_daily_balance=money_mean(pl.col("balance")),
            min_daily_balance=pl.col("balance").min(),
            max_daily_balance=pl.col("balance").max(),
        )
    )
    return (
        account_months.drop(produced, strict=False)
        .join(per_month, on=_MONTH_KEY, how="left", maintain_order="left")
        .with_columns(pl.col("negative_balance_days", "low_balance_days").fill_null(0))
    )


# --- OVERDRAWN (透支) ---
OVERDRAWN = Rule(
    code="OVERDRAWN",
    name_zh="透支",
    name_en="Overdrawn account",
    section="overdrawn",
    config_model=OverdrawnRules,
    remediation_zh="保持借记账户余额为正：在扣款前存入足够资金，或把自动扣款日调到入账日之后；"
    "每月余额为负少于{rules.min_days}天。",
    remediation_en="Keep the debit account in credit: fund it before the debits, or move automatic debits after "
    "the day money comes in; fewer than {rules.min_days} days a month ending overdrawn.",
    default_weight=8,
    doc="docs/rules_credit.md",
    behaviour="overdrawn",
)


def overdrawn_flags(
    transactions: pl.LazyFrame, months_with_balances: pl.LazyFrame, accounts: pl.LazyFrame, *, rules: OverdrawnRules
) -> pl.LazyFrame:
    """OVERDRAWN: a main-currency month of a debit account (not a credit card) with at least `min_days`
    calendar days ending with a negative balance. Evidence: the rows that stated those days' balances (a
    carried day's row may be booked in the month before)."""
    debit = months_with_balances.join(is_credit_card(accounts), on="account_id", how="left").filter(
        pl.col("is_main_currency") & ~pl.col("is_credit_card").fill_null(False)
    )
    negative = (
        daily_balances(transactions)
        .filter(pl.col("balance") < 0)
        .group_by(*_PER_ACCOUNT, month_on=pl.col("day_on").dt.month_start())
        .agg(evidence_txn_ids=pl.col("stated_txn_id").unique(), _lowest=pl.col("balance").min())
    )
    days = pl.col("negative_balance_days")
    flagged = (
        debit.filter(days >= rules.min_days)
        .join(negative, on=_MONTH_KEY, how="left")
        .with_columns(
            **month_period(),
            metric_value=days.cast(pl.Float64),
            threshold=pl.lit(float(rules.min_days)),
            limit_name=pl.lit("negative_balance_days_per_month"),
            severity=high_when(days >= rules.high_days),
            reason_zh=pl.format(
                "本月{}天日终余额为负（阈值{}天），最低{}：借记账户透支，不等于逾期。",
                days,
                pl.lit(rules.min_days),
                fmt_num(pl.col("_lowest")),
            ),
            reason_en=pl.format(
                "{} days this month ended with a negative balance (threshold {}), lowest {}: the debit account "
                "was overdrawn (not an overdue payment).",
                days,
                pl.lit(rules.min_days),
                fmt_num(pl.col("_lowest")),
            ),
        )
    )
    return finish_flags(flagged, OVERDRAWN, rules)


# --- WINDOW_DRESSING (冲时点 / 月末冲存款) ---
WINDOW_DRESSING = Rule(
    code="WINDOW_DRESSING",
    name_zh="冲时点",
    name_en="Month-end window dressing",
    section="window_dressing",
    config_model=WindowDressingRules,
    remediation_zh="说明月末前转入、月初转出的资金来源与去向（借款合同、往来协议）；月末余额不再被临时推高："
    "流水中少于{rules.min_month_ends}个月末如此。",
    remediation_en="Explain where the money that arrives before month ends comes from and where it goes days later (a "
    "loan agreement, a trade contract); month-end balances no longer pushed up for the day: fewer than "
    "{rules.min_month_ends} such month ends in the statement.",
    default_weight=15,
    doc="docs/rules_credit.md",
    behaviour="window_dressing",
)

_END_KEY = [*_PER_ACCOUNT, "month_end_on"]


def _lower_median(values: pl.Expr) -> pl.Expr:
    """The lower median, exact (a value of the group: money stays Decimal)."""
    return values.sort().get((values.len() - 1) // 2)


def dressed_month_ends(
    transactions: pl.LazyFrame, main_currencies: pl.LazyFrame, accounts: pl.LazyFrame, *, rules: WindowDressingRules
) -> pl.LazyFrame:
    """One row per month end of a debit account's main currency whose balance was pushed up for it and drained after
    it, of the accounts with at least `min_month_ends` such month ends: `month_end_on, month_end_balance,
    usual_balance, rise, pushed, drained, push_txn_ids, drain_txn_ids, dressed_month_ends` (the account's count).
    `main_currencies`: `account_id, main_currency` (`transforms.months.main_currency`). The measures:
    docs/rules_credit.md (WINDOW_DRESSING)."""
    debit = (
        main_currencies.select("account_id", currency="main_currency")
        .join(is_credit_card(accounts), on="account_id", how="left")
        .filter(~pl.col("is_credit_card").fill_null(False))
        .select(_PER_ACCOUNT)
    )
    # `.cache()` on the frames read by more than one branch below: each is computed once, not once per reader
    days = daily_balances(transactions).join(debit, on=_PER_ACCOUNT, how="semi").cache()
    floor = amount_for_currency(rules.min_push)
    # Only month ends ending at the noise floor at all are looked at closely (a negative usual counts as zero).
    ends = days.filter(
        (pl.col("day_on") == pl.col("day_on").dt.month_end()) & (pl.col("balance").cast(pl.Float64) >= floor)
    ).select(*_PER_ACCOUNT, month_end_on="day_on", month_end_balance="balance")
    offset = (pl.col("day_on") - pl.col("month_end_on")).dt.total_days()
    in_window = offset.is_between(-(rules.days_before_end - 1), rules.days_after_end)
    in_base = (offset.abs() <= rules.baseline_days) & ~in_window
    in_drain = offset.is_between(1, rules.drain_days)
    base_days = 2 * rules.baseline_days + 1 - (rules.days_before_end + rules.days_after_end)
    zero = pl.lit(0).cast(MONEY)
    reach = max(rules.baseline_days, rules.drain_days)
    measured = (
        ends.with_columns(
            day_on=pl.date_ranges(
                pl.col("month_end_on") - pl.duration(days=rules.baseline_days),
                pl.col("month_end_on") + pl.duration(days=reach),
            )
        )
        .explode("day_on")
        .join(days.select(*_PER_ACCOUNT, "day_on", "balance"), on=[*_PER_ACCOUNT, "day_on"])
        .group_by(*_END_KEY, "month_end_balance")
        .agg(
            _base_known=in_base.sum(),
            _drain_known=in_drain.sum(),
            usual_balance=_lower_median(pl.col("balance").filter(in_base)),
            _lowest_after=pl.col("balance").filter(in_drain).min(),
        )
        .filter((pl.col("_base_known") == base_days) & (pl.col("_drain_known") == rules.drain_days))
        .with_columns(
            rise=pl.col("month_end_balance") - pl.max_horizontal("usual_balance", zero),
            drained=pl.col("month_end_balance") - pl.col("_lowest_after"),
        )
        .filter(
            (
                pl.col("month_end_balance").cast(pl.Float64)
                >= rules.balance_multiple * pl.col("usual_balance").cast(pl.Float64)
            )
            & (pl.col("rise").cast(pl.Float64) >= floor)
            & (pl.col("drained").cast(pl.Float64) >= rules.min_drained_share * pl.col("rise").cast(pl.Float64))
        )
        .cache()
    )
    is_leg = pl.col("amount").abs().cast(pl.Float64) >= rules.min_leg_share * pl.col("rise").cast(pl.Float64)
    legs = (
        measured.select(*_END_KEY, "rise")
        .join(transactions.select(*_PER_ACCOUNT, "txn_id", "booked_on", "amount", "txn_class"), on=_PER_ACCOUNT)
        .cache()
    )
    push = (
        legs.filter(
            (pl.col("amount") > 0)
            & ~txn_class_is("salary")  # pay swept to savings on payday is not a balance put there for the day
            & (pl.col("booked_on") > pl.col("month_end_on") - pl.duration(days=rules.push_days))
            & (pl.col("booked_on") <= pl.col("month_end_on"))
            & is_leg
        )
        .group_by(_END_KEY)
        .agg(pushed=pl.col("amount").sum(), push_txn_ids=pl.col("txn_id"))
    )
    drain = (
        legs.filter(
            (pl.col("amount") < 0)
            & (pl.col("booked_on") > pl.col("month_end_on"))
            & (pl.col("booked_on") <= pl.col("month_end_on") + pl.duration(days=rules.drain_days))
            & is_leg
        )
        .group_by(_END_KEY)
        .agg(drain_txn_ids=pl.col("txn_id"))
    )
    return (
        measured.join(push, on=_END_KEY)
        .join(drain, on=_END_KEY)
        .filter(pl.col("pushed").cast(pl.Float64) >= rules.min_push_share * pl.col("rise").cast(pl.Float64))
        .with_columns(dressed_month_ends=pl.len().over(_PER_ACCOUNT).cast(pl.Int64))
        .filter(pl.col("dressed_month_ends") >= rules.min_month_ends)
        .select(
            *_END_KEY,
            "month_end_balance",
            "usual_balance",
            "rise",
            "pushed",
            "drained",
            "push_txn_ids",
            "drain_txn_ids",
            "dressed_month_ends",
        )
    )


def dressing_legs(dressed: pl.LazyFrame, legs: str) -> pl.LazyFrame:
    """`txn_id` of the push (`legs` "push") or drain ("drain") rows of `dressed_month_ends`: money parked on the
    account for a month end is that fact — neither earned income nor a large outflow."""
    return dressed.select(txn_id=f"{legs}_txn_ids").explode("txn_id").drop_nulls().unique()


def window_dressing_flags(dressed: pl.LazyFrame, *, rules: WindowDressingRules) -> pl.LazyFrame:
    """WINDOW_DRESSING: one flag per month whose end a debit account dressed (`dressed_month_ends`, which keeps
    the accounts with at least `min_month_ends` of them). Evidence: the push inflows and the drain outflows."""
    dressed = dressed.with_columns(
        _quarter_end=pl.col("month_end_on").dt.month().is_in([3, 6, 9, 12]),
        month_on=pl.col("month_end_on").dt.month_start(),
    )
    count = pl.col("dressed_month_ends")
    usual = pl.col("usual_balance").cast(pl.Float64)
    multiple = fmt_num(pl.col("month_end_balance").cast(pl.Float64) / usual, 1)
    share = fmt_pct(pl.col("drained").cast(pl.Float64) / pl.col("rise").cast(pl.Float64))
    end_zh = pl.when(pl.col("_quarter_end")).then(pl.lit("季末")).otherwise(pl.lit("月末"))
    end_en = pl.when(pl.col("_quarter_end")).then(pl.lit("quarter end")).otherwise(pl.lit("month end"))
    flagged = dressed.with_columns(
        **month_period(),
        metric_value=count.cast(pl.Float64),
        threshold=pl.lit(float(rules.min_month_ends)),
        limit_name=pl.lit("dressed_month_ends"),
        severity=high_when((count >= rules.high_month_ends) | pl.col("_quarter_end")),
        reason_zh=pl.format(
            "{}{}余额被临时推高：日终余额{}{}，平时约{}；此前{}天内转入{}，其后{}天内回落{}（推高部分的{}）；"
            "本流水共{}个月末如此（阈值{}个）。",
            pl.col("month_end_on").dt.strftime("%Y-%m-%d"),
            end_zh,
            fmt_num(pl.col("month_end_balance")),
            pl.when(usual > 0).then(pl.format("（平时的{}倍）", multiple)).otherwise(pl.lit("")),
            fmt_num(pl.col("usual_balance")),
            pl.lit(rules.push_days),
            fmt_num(pl.col("pushed")),
            pl.lit(rules.drain_days),
            fmt_num(pl.col("drained")),
            share,
            count,
            pl.lit(rules.min_month_ends),
        ),
        reason_en=pl.format(
            "Balance pushed up for the {} {}: it ended the day at {}{}, usually about {}; {} came in within {} days "
            "before and the balance fell {} ({} of the rise) within {} days after; {} month ends of the statement "
            "look like this (threshold {}).",
            end_en,
            pl.col("month_end_on").dt.strftime("%Y-%m-%d"),
            fmt_num(pl.col("month_end_balance")),
            pl.when(usual > 0).then(pl.format(" ({} x usual)", multiple)).otherwise(pl.lit("")),
            fmt_num(pl.col("usual_balance")),
            fmt_num(pl.col("pushed")),
            pl.lit(rules.push_days),
            fmt_num(pl.col("drained")),
            share,
            pl.lit(rules.drain_days),
            count,
            pl.lit(rules.min_month_ends),
        ),
        evidence_txn_ids=pl.concat_list("push_txn_ids", "drain_txn_ids").list.unique(),
    )
    return finish_flags(flagged, WINDOW_DRESSING, rules)
