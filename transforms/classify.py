"""Classify canonical transactions: who the counterparty is to the customer, and what kind of money moved.

One output row per input transaction, with the columns of `contracts.TRANSACTIONS` beyond the canonical
ones: `booked_on`, `customer_id`, `txn_class`, `related_relation`, `lender_id`, `is_clean_income`.
Inputs are the lender-classified transactions (`transforms.lenders.classify_lenders`: `lender_id`,
`loan_role`), the account reference (`account_id, customer_id, holder_name, account_type`) and the
declared related parties (`customer_id, party_name, party_account, relation`).

The classes are the published vocabulary `liushui.vocabularies.TxnClass`. Other modules test a row's class
with `txn_class_is` and name sets of classes as `TxnClass` tuples, so mypy rejects a class that does not exist
(a misspelt string would silently match no row).
"""

from __future__ import annotations

import polars as pl

from liushui.vocabularies import TxnClass
from transforms.lenders import loan_role_is

REFUND_PATTERN = r"(?i)退款|退货|冲正|抹账|撤销|退回|refund|reversal|chargeback"
SALARY_PATTERN = r"(?i)代发工资|工资|薪资|薪酬|奖金|代发|salary|payroll|wages"
EXCHANGE_PATTERN = r"(?i)购汇|结汇|换汇|外汇买卖|外币兑换|货币兑换|currency exchange|foreign exchange|fx conversion"
"""A currency exchange (购汇 CNY -> USD, 结汇 back): the holder's money moving between the currencies of one
account, `neutral` like a move into a money-market fund — neither spending, income nor a transfer to anyone
(one 87,839 CNY 购汇 is no large outflow, its 12,371 USD no earnings, and neither an own transfer that would count
as related money)."""

INCOME_CLASSES: tuple[TxnClass, ...] = ("salary", "income")
"""Earned income (`is_clean_income`), until `mark_returned_money` finds it only came back or passed through."""
RELATED_OUT_CLASSES: tuple[TxnClass, ...] = ("own_transfer_out", "related_transfer_out")
"""Money to the customer's own accounts or declared related parties."""
RELATED_IN_CLASSES: tuple[TxnClass, ...] = ("own_transfer_in", "related_transfer_in")
"""Money from the customer's own accounts or declared related parties."""


def txn_class_is(*classes: TxnClass) -> pl.Expr:
    """`txn_class` is (one of) `classes`."""
    if len(classes) == 1:
        return pl.col("txn_class") == classes[0]
    return pl.col("txn_class").is_in(classes)


def txn_class_value(txn_class: TxnClass) -> pl.Expr:
    """A class as a literal (for `when/then`)."""
    return pl.lit(txn_class)


def account_owners(transactions: pl.LazyFrame, accounts: pl.LazyFrame) -> pl.LazyFrame:
    """Attach `customer_id` and `holder_name`; an account missing from the reference is its own customer."""
    owners = accounts.select("account_id", "customer_id", "holder_name").unique("account_id", keep="first")
    return transactions.join(owners, on="account_id", how="left").with_columns(
        customer_id=pl.coalesce("customer_id", "account_id")
    )


def counterparty_relation(
    transactions: pl.LazyFrame, accounts: pl.LazyFrame, related_parties: pl.LazyFrame
) -> pl.LazyFrame:
    """Add `related_relation`: own_account (the customer's other account), self (the holder's own name),
    or the declared relation of a related party (matched by account number, then by name)."""
    other_accounts = accounts.select(
        counterparty_account=pl.col("account_id"), _cp_customer=pl.col("customer_id")
    ).unique("counterparty_account", keep="first")
    by_account = (
        related_parties.filter(pl.col("party_account").is_not_null())
        .select("customer_id", counterparty_account=pl.col("party_account"), _rel_acct=pl.col("relation"))
        .unique(["customer_id", "counterparty_account"], keep="first")
    )
    by_name = (
        related_parties.filter(pl.col("party_name").is_not_null())
        .select("customer_id", counterparty_name=pl.col("party_name"), _rel_name=pl.col("relation"))
        .unique(["customer_id", "counterparty_name"], keep="first")
    )
    return (
        transactions.join(other_accounts, on="counterparty_account", how="left")
        .join(by_account, on=["customer_id", "counterparty_account"], how="left")
        .join(by_name, on=["customer_id", "counterparty_name"], how="left")
        .with_columns(
            related_relation=pl.when(
                (pl.col("_cp_customer") == pl.col("customer_id"))
                & (pl.col("counterparty_account") != pl.col("account_id"))
            )
            .then(pl.lit("own_account"))
            .when(pl.col("counterparty_name").is_not_null() & (pl.col("counterparty_name") == pl.col("holder_name")))
            .then(pl.lit("self"))
            .otherwise(pl.coalesce("_rel_acct", "_rel_name"))
        )
        .drop("_cp_customer", "_rel_acct", "_rel_name")
    )


def transaction_class() -> pl.Expr:
    """The class of a row, in priority order: neutral (the export's `flow_tag`), loan events, refunds,
    own/related transfers, income, spend. A currency exchange (`EXCHANGE_PATTERN`) is neutral, as the rows an
    export marks so."""
    inflow = pl.col("amount") > 0
    text = pl.col("description").fill_null("")
    own = pl.col("related_relation").is_in(["own_account", "self"])
    related = pl.col("related_relation").is_not_null()
    value = txn_class_value
    return (
        pl.when(pl.col("flow_tag").is_not_null() | text.str.contains(EXCHANGE_PATTERN))
        .then(value("neutral"))
        .when(loan_role_is("penalty"))
        .then(value("penalty_fee"))
        .when(loan_role_is("failed_debit"))
        .then(value("failed_debit"))
        .when(loan_role_is("disbursement") & inflow)
        .then(value("loan_disbursement"))
        .when(loan_role_is("repayment") & ~inflow)
        .then(value("loan_repayment"))
        .when(loan_role_is("reversal"))
        .then(value("reversal"))
        .when(inflow & text.str.contains(REFUND_PATTERN))
        .then(value("refund"))
        .when(~inflow & text.str.contains(REFUND_PATTERN))
        .then(value("reversal"))
        .when(own & inflow)
        .then(value("own_transfer_in"))
        .when(own)
        .then(value("own_transfer_out"))
        .when(related & inflow)
        .then(value("related_transfer_in"))
        .when(related)
        .then(value("related_transfer_out"))
        .when(inflow & text.str.contains(SALARY_PATTERN))
        .then(value("salary"))
        .when(inflow)
        .then(value("income"))
        .otherwise(value("spend"))
    )


def classified_transactions(
    lender_classified: pl.LazyFrame, accounts: pl.LazyFrame, related_parties: pl.LazyFrame
) -> pl.LazyFrame:
    """Canonical + lender columns -> the published `transactions` shape (before round-trip marking). A frame
    without `flow_tag` (built before neutral rows existed) has none."""
    if "flow_tag" not in lender_classified.collect_schema().names():
        lender_classified = lender_classified.with_columns(flow_tag=pl.lit(None, pl.String))
    return (
        lender_classified.pipe(account_owners, accounts)
        .pipe(counterparty_relation, accounts, related_parties)
        .with_columns(booked_on=pl.col("booked_at").dt.date(), txn_class=transaction_class())
        .with_columns(is_clean_income=txn_class_is(*INCOME_CLASSES))
    )


def mark_returned_money(transactions: pl.LazyFrame, returns: pl.LazyFrame) -> pl.LazyFrame:
    """Money that only came back, passed through or was parked is neither earned income, spending nor a related
    transfer: the legs of round trips (either direction), of cycles, of pass-through months and of dressed month ends.

    `returns` has `txn_id` and `returned_class` (`round_trip_in/_out`, `cycle_in/_out`, `pass_through_in/_out`,
    `window_dressing_in/_out`).
    An inbound leg of class income or related_transfer_in and an outbound leg of class spend or
    related_transfer_out take the listed class (an inbound leg leaves clean income); loans, fees, refunds and
    own transfers keep theirs. The first listed class wins for a row in several."""
    listed = returns.unique("txn_id", keep="first", maintain_order=True)
    listed_in = pl.col("returned_class").is_not_null() & (pl.col("amount") > 0)
    listed_out = pl.col("returned_class").is_not_null() & (pl.col("amount") < 0)
    takes = (listed_in & (pl.col("is_clean_income") | txn_class_is("related_transfer_in"))) | (
        listed_out & txn_class_is("spend", "related_transfer_out")
    )
    return (
        transactions.join(listed, on="txn_id", how="left")
        .with_columns(
            txn_class=pl.when(takes).then(pl.col("returned_class")).otherwise(pl.col("txn_class")),
            is_clean_income=pl.col("is_clean_income") & ~listed_in,
        )
        .drop("returned_class")
    )


def not_earned(transactions: pl.LazyFrame, txn_ids: pl.LazyFrame) -> pl.LazyFrame:
    """`transactions` with the rows in `txn_ids` (`txn_id`) out of clean income, their class unchanged: money
    that is another rule's fact, not the holder's earnings — trade receipts of a month COMMINGLING judges
    (`transforms.commingling.trade_money`), money gathered in a FAN_IN window (`transforms.fan.gathered_inflows`)."""
    listed = txn_ids.select("txn_id").unique().with_columns(_listed=pl.lit(True))
    return (
        transactions.join(listed, on="txn_id", how="left")
        .with_columns(is_clean_income=pl.col("is_clean_income") & pl.col("_listed").is_null())
        .drop("_listed")
    )
