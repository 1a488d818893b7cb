"""Transfers between an account and its own / related parties, and the links between transactions.

`round_trips`: one row per round trip — money out of an account to a party and back from the same
party (or, for the customer's related parties and own accounts, from any of them) within `max_days`,
of a similar amount. `transfer_legs`: one row per transfer whose two legs are both in the batch (an
outflow of account A to account B and the matching inflow of B from A). Both have the
`contracts.TRANSFER_LINKS` columns.
"""

from __future__ import annotations

import polars as pl
import polars_hash  # noqa: F401  (registers the stable `chash` namespace)

from liushui.config import RoundTripRules
from liushui.contracts import TRANSFER_LINKS

_LOAN_CLASSES = ("loan_disbursement", "loan_repayment", "penalty_fee", "failed_debit", "refund", "reversal")


def _party_key() -> pl.Expr:
    """Who the money went to / came from. Related parties of the customer and own accounts form one
    group: money out to the spouse and back from the holder's other account is still a round trip."""
    party = pl.coalesce(pl.col("counterparty_account"), pl.col("counterparty_name"))
    return (
        pl.when(pl.col("related_relation").is_not_null())
        .then(pl.lit("related:") + pl.col("customer_id"))
        .otherwise(pl.lit("party:") + party)
    )


def link_id_expr(link_type: str) -> pl.Expr:
    return (
        pl.concat_str([pl.lit(link_type), pl.col("out_txn_id"), pl.col("in_txn_id")], separator="|")
        .chash.sha2_256()
        .str.slice(0, 32)
    )


def one_to_one(pairs: pl.LazyFrame, *, order: list[str]) -> pl.LazyFrame:
    """Keep each outgoing and each incoming transaction in at most one pair: for every outflow its
    earliest match, then for every inflow the earliest outflow that chose it."""
    return (
        pairs.sort(order)
        .unique("out_txn_id", keep="first", maintain_order=True)
        .unique("in_txn_id", keep="first", maintain_order=True)
    )


def round_trips(transactions: pl.LazyFrame, *, rules: RoundTripRules) -> pl.LazyFrame:
    """Round trips (刷流水): out to a party, back from the same party group within N days, similar amount."""
    candidates = transactions.filter(
        ~pl.col("txn_class").is_in(_LOAN_CLASSES)
        & (pl.col("amount").abs() >= rules.min_amount)
        & (pl.col("counterparty_account").is_not_null() | pl.col("counterparty_name").is_not_null())
    ).with_columns(_party=_party_key())
    outs = candidates.filter(pl.col("amount") < 0).select(
        "account_id",
        "_party",
        "currency",
        out_txn_id="txn_id",
        out_at="booked_at",
        amount_out=pl.col("amount").abs(),
        counterparty=pl.coalesce("counterparty_name", "counterparty_account"),
    )
    ins = candidates.filter(pl.col("amount") > 0).select(
        "account_id", "_party", "currency", in_txn_id="txn_id", in_at="booked_at", amount_in="amount"
    )
    tolerance = pl.lit(rules.amount_tolerance)
    pairs = (
        outs.join(ins, on=["account_id", "_party", "currency"], how="inner")
        .filter(
            (pl.col("in_at") > pl.col("out_at"))
            & ((pl.col("in_at") - pl.col("out_at")) <= pl.duration(days=rules.max_days))
            & (
                (pl.col("amount_in") - pl.col("amount_out")).abs().cast(pl.Float64)
                <= tolerance * pl.col("amount_out").cast(pl.Float64)
            )
        )
        .with_columns(days_apart=(pl.col("in_at").dt.date() - pl.col("out_at").dt.date()).dt.total_days())
    )
    return TRANSFER_LINKS.conform(
        one_to_one(pairs, order=["out_at", "out_txn_id", "in_at", "in_txn_id"]).with_columns(
            link_type=pl.lit("round_trip"),
            link_id=link_id_expr("round_trip"),
            evidence_txn_ids=pl.concat_list("out_txn_id", "in_txn_id"),
        )
    )


def transfer_legs(transactions: pl.LazyFrame, *, max_days: int = 3) -> pl.LazyFrame:
    """Both legs of a transfer inside the batch: A's outflow to account B matched with B's inflow from A."""
    outs = transactions.filter((pl.col("amount") < 0) & pl.col("counterparty_account").is_not_null()).select(
        "account_id",
        "currency",
        _to=pl.col("counterparty_account"),
        out_txn_id="txn_id",
        out_at="booked_at",
        amount_out=pl.col("amount").abs(),
        counterparty="counterparty_account",
    )
    ins = transactions.filter((pl.col("amount") > 0) & pl.col("counterparty_account").is_not_null()).select(
        _to=pl.col("account_id"),
        account_id=pl.col("counterparty_account"),
        currency="currency",
        in_txn_id="txn_id",
        in_at="booked_at",
        amount_in="amount",
    )
    pairs = (
        outs.join(ins, on=["account_id", "_to", "currency"], how="inner")
        .filter(
            (pl.col("amount_in") == pl.col("amount_out"))
            & ((pl.col("in_at") - pl.col("out_at")).abs() <= pl.duration(days=max_days))
        )
        .with_columns(
            days_apart=(pl.col("in_at").dt.date() - pl.col("out_at").dt.date()).dt.total_days().abs(),
            _gap=(pl.col("in_at") - pl.col("out_at")).abs(),
        )
    )
    return TRANSFER_LINKS.conform(
        one_to_one(pairs, order=["_gap", "out_txn_id", "in_txn_id"]).with_columns(
            link_type=pl.lit("transfer_legs"),
            link_id=link_id_expr("transfer_legs"),
            evidence_txn_ids=pl.concat_list("out_txn_id", "in_txn_id"),
        )
    )
