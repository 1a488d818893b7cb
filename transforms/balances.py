"""Balances: what the stated running balance says day by day, and OVERDRAWN (透支).

`daily_balances`: one row per account x currency x calendar day from the first day with a stated balance to
the end of the account's coverage (its last booking date): the day's ending balance — the last stated
`balance_after` of the day in statement order (`booked_at`, `source_row`, `txn_id`), or, on a day without a
stated balance, the last one before it, carried — and `stated_txn_id`, the row that stated it. Carrying is
how Plaid counts "days with a negative balance": an account overdrawn on the 4th and topped up on the 10th
was overdrawn for six days, not one.

`balance_month_features` adds to each account month (same rows) `negative_balance_days`, `low_balance_days`
and `avg_daily_balance`. `overdrawn_flags` turns the negative days of debit accounts into OVERDRAWN flags.

A negative balance is not an overdue payment (that is OVERDUE_PENALTY, `transforms.credit`, which needs a
penalty, a failed debit or collection): on a debit account it is an overdraft; on a credit-card statement it is
the normal state (the balance is what the holder owes), so credit cards are never judged here. Which accounts
are credit cards: `is_credit_card` on the reference `accounts.account_type` (docs/rules_credit.md, OVERDRAWN).
"""

from __future__ import annotations

import polars as pl

from liushui.config import OverdrawnRules
from liushui.contracts import money_mean
from liushui.vocabularies import AccountType
from transforms.flag_rows import Rule, finish_flags, fmt_num, high_when, month_period

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
    """Add `negative_balance_days`, `low_balance_days` (0 when no day is known) and `avg_daily_balance` (null
    then) to every account month (same rows, same order)."""
    produced = ["negative_balance_days", "low_balance_days", "avg_daily_balance"]
    per_month = (
        daily_balances(transactions)
        .group_by(*_PER_ACCOUNT, month_on=pl.col("day_on").dt.month_start())
        .agg(
            negative_balance_days=(pl.col("balance") < 0).sum().cast(pl.Int64),
            low_balance_days=(pl.col("balance").cast(pl.Float64) < rules.low_balance_limit).sum().cast(pl.Int64),
            avg_daily_balance=money_mean(pl.col("balance")),
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
