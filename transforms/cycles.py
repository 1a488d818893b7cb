"""Cycles: money moving A -> B -> C -> A among accounts of different customers of one batch.

`cycle_links`: `contracts.TRANSFER_LINKS` rows, one per hop of each chain (link_type `cycle`).
`cycle_inbound_ids`: the inbound legs of those hops (`in_txn_id`), which are not earned income.
`cycle_flags`: one CYCLE flag per participating account, currency and month in which a chain of it started.

A *hop* is an outflow of account X of at least `min_amount` whose counterparty is account Y of the
dataset, of another customer: matched by `counterparty_account == Y`, or — only when the counterparty
account is missing — by `counterparty_name ==` Y's `holder_name` when exactly one account of the reference
has that holder name. Transfers within one customer are own transfers (the related-transfer rule).

A *chain* is a sequence of hops X1 -> X2 -> ... -> Xk -> X1 (3 <= k <= `max_length`, distinct accounts,
one currency) where each hop leaves the account the previous hop entered, is not earlier than it, moves
an amount within `amount_tolerance` of the previous hop's amount, and the last hop is at most
`window_days` after the first. Length 2 (A -> B -> A) is a round trip, not a cycle.

Vectorised: the hop edge list is one join; paths grow by one self-join per length up to `max_length`
(a loop over lengths, never over rows); a path whose next hop returns to its start is a chain. A chain
is found once from each hop only when hops share a timestamp (date-only exports); `chain_id` — a hash of
the chain's sorted outflow ids — removes those duplicates. A hop outflow belongs to at most one chain:
when chains overlap, the one starting first (then shorter, then by chain_id) keeps its hops and the
others are dropped.

Both legs: when the receiving account's inflow from the sender is in the batch (same amount, within
`LEG_MAX_DAYS`, the same rule as `transforms.transfers.transfer_legs`) it is the hop's `in_txn_id`.
Otherwise `in_txn_id` is the outflow of the next hop (the money leaving the receiving account; for the
last hop that is the chain's first outflow) and `amount_in` its amount. Every link of a chain carries
the chain's every transaction id (all outflows and all inbound legs found) as evidence.

Scale: only large outflows to dataset accounts of other customers whose receiving account itself sends a
large outflow become hops, so the self-joins run on a small edge list even for tens of millions of rows.
"""

from __future__ import annotations

import polars as pl

from liushui.config import CycleRules
from liushui.contracts import TRANSFER_LINKS
from transforms.flag_rows import Rule, finish_flags, fmt_num, month_period, severity
from transforms.stable_ids import stable_id
from transforms.transfers import link_id_expr, link_type_is, link_type_value, one_to_one

LEG_MAX_DAYS = 3
"""Days between a hop's outflow and the receiving account's inflow (as `transfer_legs`)."""


def _unique_holder_accounts(accounts: pl.LazyFrame) -> pl.LazyFrame:
    """holder_name -> account_id, for names held by exactly one account of the reference."""
    return (
        accounts.filter(pl.col("holder_name").is_not_null())
        .group_by("holder_name")
        .agg(_account=pl.col("account_id").first(), _n=pl.col("account_id").n_unique())
        .filter(pl.col("_n") == 1)
        .select(counterparty_name="holder_name", _named_account="_account")
    )


def _other_account(large: pl.LazyFrame, accounts: pl.LazyFrame) -> pl.LazyFrame:
    """The dataset account on the other side: the counterparty account, else the uniquely named holder."""
    return large.join(_unique_holder_accounts(accounts), on="counterparty_name", how="left").with_columns(
        _other=pl.coalesce("counterparty_account", "_named_account")
    )


def cycle_hops(transactions: pl.LazyFrame, accounts: pl.LazyFrame, *, rules: CycleRules) -> pl.LazyFrame:
    """One row per candidate hop: `txn_id, from_account, to_account, currency, at, amount` (positive)."""
    outs = _other_account(
        transactions.filter(pl.col("amount") <= -rules.min_amount).select(
            "txn_id",
            "account_id",
            "customer_id",
            "currency",
            "booked_at",
            "amount",
            "counterparty_account",
            "counterparty_name",
        ),
        accounts,
    ).filter(pl.col("_other").is_not_null() & (pl.col("_other") != pl.col("account_id")))
    senders = outs.select(_other="account_id", _to_customer="customer_id").unique("_other")
    return (
        outs.join(senders, on="_other")
        .filter(pl.col("_to_customer") != pl.col("customer_id"))
        .select(
            "txn_id",
            "currency",
            from_account="account_id",
            to_account="_other",
            at="booked_at",
            amount=-pl.col("amount"),
        )
    )


def _chains(hops: pl.LazyFrame, *, rules: CycleRules) -> pl.LazyFrame:
    """One row per chain: list columns of its hops in order (`hop_txn, hop_from, hop_to, hop_at,
    hop_amount`), `chain_id`, `chain_length`."""
    nxt = hops.select("currency", _last_to="from_account", _txn="txn_id", _to="to_account", _at="at", _amount="amount")
    paths = hops.select(
        "currency",
        hop_txn=pl.concat_list("txn_id"),
        hop_from=pl.concat_list("from_account"),
        hop_to=pl.concat_list("to_account"),
        hop_at=pl.concat_list("at"),
        hop_amount=pl.concat_list("amount"),
        _start="from_account",
        _first_at="at",
        _last_to="to_account",
        _last_at="at",
        _last_amount="amount",
    )
    tolerance = pl.lit(rules.amount_tolerance)
    closed = []
    for length in range(2, rules.max_length + 1):
        extended = (
            paths.join(nxt, on=["currency", "_last_to"])
            .filter(
                (pl.col("_at") >= pl.col("_last_at"))
                & (pl.col("_at") - pl.col("_first_at") <= pl.duration(days=rules.window_days))
                & (
                    (pl.col("_amount") - pl.col("_last_amount")).abs().cast(pl.Float64)
                    <= tolerance * pl.col("_last_amount").cast(pl.Float64)
                )
                & ((pl.col("_to") == pl.col("_start")) | ~pl.col("hop_from").list.contains(pl.col("_to")))
            )
            .with_columns(
                hop_txn=pl.concat_list("hop_txn", "_txn"),
                hop_from=pl.concat_list("hop_from", "_last_to"),
                hop_to=pl.concat_list("hop_to", "_to"),
                hop_at=pl.concat_list("hop_at", "_at"),
                hop_amount=pl.concat_list("hop_amount", "_amount"),
                _last_to=pl.col("_to"),
                _last_at=pl.col("_at"),
                _last_amount=pl.col("_amount"),
            )
            .drop("_txn", "_to", "_at", "_amount")
            .cache()  # read twice: the chains closed at this length and the paths extended further
        )
        is_closed = pl.col("_last_to") == pl.col("_start")
        if length >= 3:
            closed.append(extended.filter(is_closed).with_columns(chain_length=pl.lit(length, pl.Int64)))
        paths = extended.filter(~is_closed)
    chains = pl.concat(closed).with_columns(chain_id=stable_id(pl.col("hop_txn").list.sort().list.join("|")))
    # one row per chain (rotations found from equal timestamps), then one chain per outflow
    chains = chains.sort("_first_at", "chain_length", "chain_id", pl.col("hop_txn").list.first()).unique(
        "chain_id", keep="first", maintain_order=True
    )
    order = ["_first_at", "chain_length", "chain_id"]
    kept = (
        chains.select(*order, txn_id=pl.col("hop_txn"))
        .explode("txn_id")
        .with_columns(_owner=pl.col("chain_id").sort_by(order).first().over("txn_id"))
        .group_by("chain_id")
        .agg(_is_kept=(pl.col("_owner") == pl.col("chain_id")).all())
        .filter(pl.col("_is_kept"))
        .select("chain_id")
    )
    return chains.join(kept, on="chain_id", how="semi").select(
        "chain_id", "chain_length", "currency", "hop_txn", "hop_from", "hop_to", "hop_at", "hop_amount"
    )


def _inbound_legs(
    hop_rows: pl.LazyFrame, transactions: pl.LazyFrame, accounts: pl.LazyFrame, *, rules: CycleRules
) -> pl.LazyFrame:
    """The receiving account's inflow from the sender for each hop (out_txn_id -> in_txn_id)."""
    ins = _other_account(
        transactions.filter(pl.col("amount") >= rules.min_amount).select(
            "txn_id",
            "account_id",
            "currency",
            "booked_at",
            "amount",
            "counterparty_account",
            "counterparty_name",
        ),
        accounts,
    ).select(
        "currency",
        to_account="account_id",
        from_account="_other",
        in_txn_id="txn_id",
        in_at="booked_at",
        amount_out="amount",
    )
    pairs = (
        hop_rows.select("currency", "from_account", "to_account", "amount_out", out_txn_id="txn_id", out_at="at")
        .join(ins, on=["currency", "from_account", "to_account", "amount_out"])
        .with_columns(_gap=(pl.col("in_at") - pl.col("out_at")).abs())
        .filter(pl.col("_gap") <= pl.duration(days=LEG_MAX_DAYS))
    )
    return one_to_one(pairs, order=["_gap", "out_txn_id", "in_txn_id"]).select("out_txn_id", "in_txn_id", "in_at")


def cycle_links(transactions: pl.LazyFrame, accounts: pl.LazyFrame, *, rules: CycleRules) -> pl.LazyFrame:
    """One `TRANSFER_LINKS` row per hop of every chain (see the module docstring)."""
    chains = _chains(cycle_hops(transactions, accounts, rules=rules), rules=rules)
    hop_rows = (
        chains.with_columns(
            hop_index=pl.int_ranges(pl.col("chain_length")),
            # the next hop's outflow, wrapping round to the first for the last hop
            next_txn=pl.concat_list(pl.col("hop_txn").list.slice(1), pl.col("hop_txn").list.first()),
            next_at=pl.concat_list(pl.col("hop_at").list.slice(1), pl.col("hop_at").list.first()),
            next_amount=pl.concat_list(pl.col("hop_amount").list.slice(1), pl.col("hop_amount").list.first()),
        )
        .explode(
            ["hop_index", "hop_txn", "hop_from", "hop_to", "hop_at", "hop_amount", "next_txn", "next_at", "next_amount"]
        )
        .rename(
            {
                "hop_txn": "txn_id",
                "hop_from": "from_account",
                "hop_to": "to_account",
                "hop_at": "at",
                "hop_amount": "amount_out",
            }
        )
    )
    legs = _inbound_legs(hop_rows, transactions, accounts, rules=rules)
    with_legs = hop_rows.join(legs, left_on="txn_id", right_on="out_txn_id", how="left")
    evidence = with_legs.group_by("chain_id").agg(
        evidence_txn_ids=pl.concat_list("txn_id", "in_txn_id").list.explode().drop_nulls().unique().sort()
    )
    links = with_legs.join(evidence, on="chain_id").with_columns(
        out_txn_id=pl.col("txn_id"),
        in_txn_id=pl.coalesce("in_txn_id", "next_txn"),
        amount_in=pl.when(pl.col("in_at").is_not_null()).then(pl.col("amount_out")).otherwise(pl.col("next_amount")),
        days_apart=(pl.coalesce("in_at", "next_at").dt.date() - pl.col("at").dt.date()).dt.total_days().abs(),
    )
    return TRANSFER_LINKS.conform(
        links.with_columns(
            link_type=link_type_value("cycle"),
            link_id=link_id_expr("cycle"),
            account_id=pl.col("from_account"),
            counterparty=pl.col("to_account"),
        ).sort("chain_id", "hop_index")
    )


def cycle_inbound_ids(links: pl.LazyFrame) -> pl.LazyFrame:
    """`in_txn_id` of every cycle hop whose inbound leg was found (not the next hop's outflow): money
    that came round the circle is not earned income."""
    cycle = links.filter(link_type_is("cycle"))
    return (
        cycle.select("in_txn_id")
        .join(cycle.select(in_txn_id="out_txn_id"), on="in_txn_id", how="anti")
        .unique()
        .sort("in_txn_id")
    )


CYCLE = Rule(
    code="CYCLE",
    name_zh="循环转账",
    name_en="Money cycling across customers",
    section="cycles",
    config_model=CycleRules,
    remediation_zh="停止在不同客户的账户之间循环转账虚增流水；说明每笔往来的真实交易背景并提供合同或凭证。",
    remediation_en="Stop moving money in a circle through other customers' accounts to inflate turnover; explain "
    "the real purpose of each transfer with contracts or receipts.",
    default_weight=25,
    doc="docs/rules_integrity_cycles.md",
    behaviour="cycle",
)


def cycle_flags(links: pl.LazyFrame, transactions: pl.LazyFrame, *, rules: CycleRules) -> pl.LazyFrame:
    """CYCLE: one flag per participating account, currency and month in which one of its chains started
    (a chain moves one currency, so the chains of one account in two currencies are two flags); metric
    the longest chain length, threshold 3 (the shortest cycle); severity high; the reason lists every
    chain (A→B→C→A); evidence: every transaction of those chains."""
    booked = transactions.select(out_txn_id="txn_id", _out_at="booked_at", currency="currency")
    hops = links.filter(link_type_is("cycle")).join(booked, on="out_txn_id")
    chains = (
        hops.sort("chain_id", "_out_at", "out_txn_id")
        .group_by("chain_id", maintain_order=True)
        .agg(
            chain_length=pl.col("chain_length").first(),
            currency=pl.col("currency").first(),
            month_on=pl.col("_out_at").first().dt.date().dt.month_start(),
            _path=pl.col("account_id").str.join("→") + pl.lit("→") + pl.col("account_id").first(),
            _amount=pl.col("amount_out").first(),
            _days=(pl.col("_out_at").last().dt.date() - pl.col("_out_at").first().dt.date()).dt.total_days(),
            evidence_txn_ids=pl.col("evidence_txn_ids").first(),
            _accounts=pl.col("account_id"),
        )
        .with_columns(
            _chain_zh=pl.format("{}（首笔{}，{}天）", pl.col("_path"), fmt_num(pl.col("_amount")), pl.col("_days")),
            _chain_en=pl.format(
                "{} (first hop {}, {} days)", pl.col("_path"), fmt_num(pl.col("_amount")), pl.col("_days")
            ),
        )
        .explode("_accounts")
        .rename({"_accounts": "account_id"})
    )
    return finish_flags(
        chains.sort("account_id", "currency", "month_on", "chain_id")
        .group_by("account_id", "currency", "month_on", maintain_order=True)
        .agg(
            count=pl.len(),
            metric_value=pl.col("chain_length").max().cast(pl.Float64),
            _chains_zh=pl.col("_chain_zh").str.join("；"),
            _chains_en=pl.col("_chain_en").str.join("; "),
            evidence_txn_ids=pl.col("evidence_txn_ids").list.explode().unique(),
        )
        .with_columns(
            **month_period(),
            threshold=pl.lit(3.0),
            limit_name=pl.lit("cycle_length"),
            severity=severity("high"),
            reason_zh=pl.format(
                "本月参与{}条跨客户资金闭环（{}天内、每跳金额相差不超过{}）：{}。资金在不同客户账户间转了一圈回到起点，"
                "疑似循环转账虚增流水。",
                pl.col("count"),
                pl.lit(str(rules.window_days)),
                pl.lit(f"{rules.amount_tolerance:.0%}"),
                pl.col("_chains_zh"),
            ),
            reason_en=pl.format(
                "Took part in {} cycle(s) across customers this month (within {} days, each hop within {} of the "
                "previous): {}. Money went round other customers' accounts back to where it started: likely "
                "inflated turnover.",
                pl.col("count"),
                pl.lit(str(rules.window_days)),
                pl.lit(f"{rules.amount_tolerance:.0%}"),
                pl.col("_chains_en"),
            ),
        ),
        CYCLE,
        rules,
    )
