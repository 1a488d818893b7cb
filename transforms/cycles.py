"""Cycles: money moving A -> B -> ... -> A among accounts of different customers of one batch.

`cycle_links`: `contracts.TRANSFER_LINKS` rows, one per hop of each chain (link_type `cycle`).
`cycle_inbound_ids`: the inbound legs of those hops (`in_txn_id`), which are not earned income.
`cycle_flags`: one CYCLE flag per participating account, currency and month in which a chain of it started.

A *hop* is an outflow of account X of at least `min_amount` CNY (another currency converted through the
rates table when it has the currency, else taken as it is) whose counterparty resolves to account Y of the
batch (`transforms.counterparty`: id, declared number, masked number with the holder's name, mirrored leg,
unique holder name), of another customer. Transfers within one customer are own transfers (the
related-transfer rule).

A *chain* is a sequence of hops X1 -> X2 -> ... -> Xk -> X1 (3 <= k <= `max_length`, distinct accounts) where
each hop leaves the account the previous hop entered, at most `max_hop_lead_hours` before the previous hop
(an account passing money on often pays from its balance before the money it forwards has arrived: the
same day, a few hours early), never earlier than that before the first hop, and at most `window_days`
after the first. Amounts shrink along a chain by the fees taken at every hop: a hop may carry
at most `max_hop_gain` more than the one before it, and at least (1 - `max_total_loss`) of the first hop
— a cumulative bound from the first hop, so eight hops losing 1 % each chain, a chain losing 40 % does not.
A hop may change currency: two amounts in different currencies are compared in CNY through the rates table
(`fx_rates.csv`, `transforms.counterparty.in_cny`); without a rate for a currency they cannot be compared,
and the hop is not chained. Length 2 (A -> B -> A) is a round trip, not a cycle.

Vectorised and bounded: the hop edge list is one join; paths grow by one self-join per length up to
`max_length` (a loop over lengths, never over rows). A path is closed by any hop back to its start (an
equi-join on its last account and its start) and extended by the successors of its last hop: that hop's
`max_next_hops` earliest possible next hops, computed once. Of the paths from one first hop to one last hop
only one is kept, and of those from one first hop at most `MAX_PATHS_PER_START`: the paths in memory are
at most (hops) x `MAX_PATHS_PER_START` per length, however dense the graph (a chain beyond those bounds in
a very dense graph can be missed). `chain_id` — a hash of the chain's sorted outflow ids — removes rotations
(found from equal timestamps).

A hop outflow belongs to at most one chain. Overlapping chains are chosen in rounds: in each round every
chain that comes first (earliest start, then shorter, then tighter, then chain_id) among all remaining chains sharing a
hop with it is kept, and the chains overlapping a kept chain are dropped; the rest go to the next round.
A chain dropped for overlapping a chain that was itself not kept therefore still gets its turn.
`SELECTION_ROUNDS` bounds the rounds (each keeps at least the first remaining chain).

Both legs: when the receiving account's inflow from the sender is in the batch (`counterparty.mirrored_legs`:
same amount or its conversion, within 3 days) it is the hop's `in_txn_id`. Otherwise `in_txn_id` is the
outflow of the next hop (the money leaving the receiving account; for the last hop that is the chain's first
outflow) and `amount_in` its amount. Every link of a chain carries the chain's every transaction id (all
outflows and all inbound legs found) as evidence.

Scale: only outflows of `min_amount` or more to batch accounts of other customers whose receiving account
itself sends such an outflow become hops, so the self-joins run on a small edge list even for tens of
millions of rows.
"""

from __future__ import annotations

import polars as pl

from liushui.config import CycleRules
from liushui.contracts import TRANSFER_LINKS
from transforms.checkpoints import Checkpoint, in_memory
from transforms.counterparty import batch_transfers, mirrored_legs
from transforms.flag_rows import Rule, finish_flags, fmt_num, month_period, severity
from transforms.stable_ids import stable_id
from transforms.transfers import link_id_expr, link_type_is, link_type_value

SELECTION_ROUNDS = 4
"""Rounds of choosing among overlapping chains; a chain still overlapping after them is not published."""
MAX_PATHS_PER_START = 16
"""Paths grown from one first hop, per length (closing ones first, then the earliest): the memory bound on a
dense graph, where the paths reachable from one hop grow as `max_next_hops` to the power of the length."""
CHAIN_ORDER = ["_first_at", "chain_length", "_span", "chain_id"]
"""Which of two overlapping chains is kept: the earlier, then the shorter, then the tighter (first to last hop),
then by id. Of the chains that one hop closes in several ways, the tightest is the money going round."""


def cycle_hops(
    transactions: pl.LazyFrame, accounts: pl.LazyFrame, fx_rates: pl.LazyFrame, *, rules: CycleRules
) -> pl.LazyFrame:
    """One row per candidate hop: `txn_id, from_account, to_account, currency, at, amount` (positive),
    `amount_cny` (null without a rate). `transactions` carry `customer_id` and the resolved
    `counterparty_account_id`."""
    transfers = batch_transfers(transactions, accounts, fx_rates, min_amount=rules.min_amount)
    senders = transfers.select(to_account="from_account").unique()
    return (
        transfers.join(senders, on="to_account", how="semi")
        .filter(pl.col("to_customer") != pl.col("from_customer"))
        .select("txn_id", "currency", "amount_cny", "from_account", "to_account", "at", "amount")
    )


def _ratio(a: str, b: str) -> pl.Expr:
    """Hop amount `a` over hop amount `b` (column prefixes): natively in one currency, else in CNY (null
    without a rate: not comparable)."""
    native = pl.col(f"{a}amount").cast(pl.Float64) / pl.col(f"{b}amount").cast(pl.Float64)
    return (
        pl.when(pl.col(f"{a}currency") == pl.col(f"{b}currency"))
        .then(native)
        .otherwise(pl.col(f"{a}cny") / pl.col(f"{b}cny"))
    )


def _appended(paths: pl.LazyFrame) -> pl.LazyFrame:
    """Paths with their next hop (`_txn, _to, _at, _amount, _currency, _cny`) appended."""
    return paths.with_columns(
        hop_txn=pl.concat_list("hop_txn", "_txn"),
        hop_from=pl.concat_list("hop_from", "_last_to"),
        hop_to=pl.concat_list("hop_to", "_to"),
        hop_at=pl.concat_list("hop_at", "_at"),
        hop_amount=pl.concat_list("hop_amount", "_amount"),
        hop_currency=pl.concat_list("hop_currency", "_currency"),
        _last_txn=pl.col("_txn"),
        _last_to=pl.col("_to"),
        _last_at=pl.col("_at"),
        _last_amount=pl.col("_amount"),
        _last_currency=pl.col("_currency"),
        _last_cny=pl.col("_cny"),
    ).drop("_txn", "_to", "_at", "_amount", "_currency", "_cny")


def _chains(hops: pl.LazyFrame, *, rules: CycleRules, checkpoint: Checkpoint) -> pl.LazyFrame:
    """One row per closed chain (overlaps not yet resolved): list columns of its hops in order (`hop_txn,
    hop_from, hop_to, hop_at, hop_amount, hop_currency`), `chain_id`, `chain_length`, `_first_at`.

    Two joins per length: the hops that close a path (on its last account and its start: an equi-join, never
    capped), and the successors that extend it — each hop's `max_next_hops` earliest possible next hops,
    computed once — so a join never multiplies a path by the full out-degree of a busy account. The paths of
    each length go through `checkpoint`: a plan grown length by length took 9 s to plan on ten rows."""
    window = pl.duration(days=rules.window_days)
    lead = pl.duration(hours=rules.max_hop_lead_hours)
    nxt = hops.select(
        _last_to="from_account",
        _txn="txn_id",
        _to="to_account",
        _at="at",
        _amount="amount",
        _currency="currency",
        _cny="amount_cny",
    )
    prev = hops.select(
        _last_txn="txn_id",
        _last_from="from_account",
        _last_to="to_account",
        _last_at="at",
        _last_amount="amount",
        _last_currency="currency",
        _last_cny="amount_cny",
    )
    successors = (
        prev.join(nxt, on="_last_to")
        .filter(
            (pl.col("_at") >= pl.col("_last_at") - lead)
            & (pl.col("_at") - pl.col("_last_at") <= window)
            & (pl.col("_to") != pl.col("_last_from"))
            & (_ratio("_", "_last_") <= 1 + rules.max_hop_gain)
            & (_ratio("_", "_last_") >= 1 - rules.max_total_loss)
        )
        .sort("_last_txn", "_at", "_txn")
        .filter(pl.int_range(pl.len()).over("_last_txn") < rules.max_next_hops)
        .select("_last_txn", "_txn", "_to", "_at", "_amount", "_currency", "_cny")
        .pipe(checkpoint)
    )
    paths = hops.select(
        hop_txn=pl.concat_list("txn_id"),
        hop_from=pl.concat_list("from_account"),
        hop_to=pl.concat_list("to_account"),
        hop_at=pl.concat_list("at"),
        hop_amount=pl.concat_list("amount"),
        hop_currency=pl.concat_list("currency"),
        _start="from_account",
        _start_txn="txn_id",
        _first_at="at",
        _first_amount="amount",
        _first_currency="currency",
        _first_cny="amount_cny",
        _last_txn="txn_id",
        _last_to="to_account",
        _last_at="at",
        _last_amount="amount",
        _last_currency="currency",
        _last_cny="amount_cny",
    )
    in_window = (
        (pl.col("_at") >= pl.col("_last_at") - lead)
        & (pl.col("_at") >= pl.col("_first_at") - lead)
        & (pl.col("_at") - pl.col("_first_at") <= window)
    )
    kept_from_first = _ratio("_", "_first_") >= 1 - rules.max_total_loss
    closed = []
    for length in range(2, rules.max_length + 1):
        if length >= 3:  # length 2 closes a round trip, not a cycle
            closing = paths.join(nxt, left_on=["_last_to", "_start"], right_on=["_last_to", "_to"]).with_columns(
                _to=pl.col("_start")
            )
            closed.append(
                _appended(
                    closing.filter(in_window & kept_from_first & (_ratio("_", "_last_") <= 1 + rules.max_hop_gain))
                ).with_columns(chain_length=pl.lit(length, pl.Int64))
            )
        if length == rules.max_length:
            break
        paths = _appended(
            paths.join(successors, on="_last_txn")
            .filter(
                in_window
                & kept_from_first
                & (pl.col("_to") != pl.col("_start"))
                & ~pl.col("hop_from").list.contains(pl.col("_to"))
            )
            # one path per (first hop, last hop), at most MAX_PATHS_PER_START per first hop
            .sort("_start_txn", "_at", "_txn")
            .unique(["_start_txn", "_txn"], keep="first", maintain_order=True)
            .filter(pl.int_range(pl.len()).over("_start_txn") < MAX_PATHS_PER_START)
        ).pipe(checkpoint)  # read twice: closed at the next length, and extended further
    chains = pl.concat(closed).with_columns(
        chain_id=stable_id(pl.col("hop_txn").list.sort().list.join("|")),
        _span=pl.col("hop_at").list.max() - pl.col("hop_at").list.min(),
    )
    # one row per chain: rotations of one chain are found from equal timestamps
    return chains.sort(*CHAIN_ORDER, pl.col("hop_txn").list.first()).unique(
        "chain_id", keep="first", maintain_order=True
    )


def _disjoint_chains(chains: pl.LazyFrame, *, checkpoint: Checkpoint) -> pl.LazyFrame:
    """The chains kept when a hop may belong to one chain only (rounds: module docstring); each round's
    remaining chains go through `checkpoint`."""
    remaining = chains.select(*CHAIN_ORDER, "hop_txn").pipe(checkpoint)
    kept_ids = []
    for _ in range(SELECTION_ROUNDS):
        hops = remaining.select(*CHAIN_ORDER, txn_id="hop_txn").explode("txn_id").cache()
        kept = (
            hops.with_columns(_owner=pl.col("chain_id").sort_by(CHAIN_ORDER).first().over("txn_id"))
            .group_by("chain_id")
            .agg(_is_kept=(pl.col("_owner") == pl.col("chain_id")).all())
            .filter(pl.col("_is_kept"))
            .select("chain_id")
            .cache()
        )
        kept_ids.append(kept)
        taken = hops.join(kept, on="chain_id", how="semi").select("txn_id")
        blocked = hops.join(taken, on="txn_id", how="semi").select("chain_id").unique()
        remaining = remaining.join(blocked, on="chain_id", how="anti").pipe(checkpoint)
    return chains.join(pl.concat(kept_ids), on="chain_id", how="semi")


def cycle_links(
    transactions: pl.LazyFrame,
    accounts: pl.LazyFrame,
    fx_rates: pl.LazyFrame,
    *,
    rules: CycleRules,
    checkpoint: Checkpoint = in_memory,
) -> pl.LazyFrame:
    """One `TRANSFER_LINKS` row per hop of every chain (see the module docstring). `transactions`: the
    transfer graph with `customer_id` and the resolved counterparty (`counterparty.resolved_counterparties`);
    `checkpoint` (`transforms.checkpoints`) cuts the plan between the lengths and rounds of the search."""
    # through the checkpoint: each is read by more than one branch, and computed once
    hops = cycle_hops(transactions, accounts, fx_rates, rules=rules).pipe(checkpoint)
    chains = _chains(hops, rules=rules, checkpoint=checkpoint).pipe(checkpoint)
    chains = _disjoint_chains(chains, checkpoint=checkpoint)
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
    legs = mirrored_legs(transactions, fx_rates).select("out_txn_id", "in_txn_id", "in_at", _leg_amount="amount_in")
    with_legs = hop_rows.join(legs, left_on="txn_id", right_on="out_txn_id", how="left").cache()
    evidence = with_legs.group_by("chain_id").agg(
        evidence_txn_ids=pl.concat_list("txn_id", "in_txn_id").list.explode().drop_nulls().unique().sort()
    )
    links = with_legs.join(evidence, on="chain_id").with_columns(
        out_txn_id=pl.col("txn_id"),
        in_txn_id=pl.coalesce("in_txn_id", "next_txn"),
        amount_in=pl.coalesce("_leg_amount", "next_amount"),
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
    (in the currency of the account's own hop: a chain may change currency); metric
    the longest chain length, threshold 3 (the shortest cycle); severity high; the reason lists every
    chain (A→B→C→A); evidence: every transaction of those chains."""
    booked = transactions.select(out_txn_id="txn_id", _out_at="booked_at", currency="currency")
    hops = links.filter(link_type_is("cycle")).join(booked, on="out_txn_id")
    chains = (
        hops.sort("chain_id", "_out_at", "out_txn_id")
        .group_by("chain_id", maintain_order=True)
        .agg(
            chain_length=pl.col("chain_length").first(),
            month_on=pl.col("_out_at").first().dt.date().dt.month_start(),
            _path=pl.col("account_id").str.join("→") + pl.lit("→") + pl.col("account_id").first(),
            _amount=pl.col("amount_out").first(),
            _first_currency=pl.col("currency").first(),
            _days=(pl.col("_out_at").last().dt.date() - pl.col("_out_at").first().dt.date()).dt.total_days(),
            evidence_txn_ids=pl.col("evidence_txn_ids").first(),
            _accounts=pl.col("account_id"),
            _currencies=pl.col("currency"),
        )
        .with_columns(
            _chain_zh=pl.format(
                "{}（{}跳，首笔{} {}，{}天）",
                pl.col("_path"),
                pl.col("chain_length"),
                fmt_num(pl.col("_amount")),
                pl.col("_first_currency"),
                pl.col("_days"),
            ),
            _chain_en=pl.format(
                "{} ({} hops, first hop {} {}, {} days)",
                pl.col("_path"),
                pl.col("chain_length"),
                fmt_num(pl.col("_amount")),
                pl.col("_first_currency"),
                pl.col("_days"),
            ),
        )
        .explode("_accounts", "_currencies")
        .rename({"_accounts": "account_id", "_currencies": "currency"})
        .unique(["chain_id", "account_id", "currency"], keep="first", maintain_order=True)
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
                "本月参与{}条跨客户资金闭环（{}天内、末跳金额不低于首跳的{}）：{}。资金在不同客户账户间转了一圈回到起点，"
                "疑似循环转账虚增流水。",
                pl.col("count"),
                pl.lit(str(rules.window_days)),
                pl.lit(f"{1 - rules.max_total_loss:.0%}"),
                pl.col("_chains_zh"),
            ),
            reason_en=pl.format(
                "Took part in {} cycle(s) across customers this month (within {} days, each hop carrying at least {} "
                "of the first): {}. Money went round other customers' accounts back to where it started: likely "
                "inflated turnover.",
                pl.col("count"),
                pl.lit(str(rules.window_days)),
                pl.lit(f"{1 - rules.max_total_loss:.0%}"),
                pl.col("_chains_en"),
            ),
        ),
        CYCLE,
        rules,
    )
