"""Scatter-gather (分散转入再归集): money split from one account across several intermediaries of the batch
and gathered again into one other account within days — the layering step of laundering-shaped flows, which
no single statement shows (each intermediary merely receives and pays on once).

`scatter_gather_flags`: one SCATTER_GATHER flag for the source account and one for the destination account,
per currency of their own legs and month in which such a pattern started.

A *leg pair* is a transfer A -> B (an outflow of A whose counterparty resolves to account B of the batch,
`transforms.counterparty`) and a transfer B -> C with C neither A nor B, B of another customer than A and C,
B's payment leaving at most `max_lead_hours` before A's arrived and at most `window_days` after, carrying
between (1 - `max_loss`) and (1 + `max_gain`) of A's transfer (compared in CNY through the rates table when
the currencies differ, `transforms.counterparty.in_cny`; without a rate the pair is not formed). Both
transfers are at least `min_amount` CNY.

A *pattern* is a source A and a destination C joined by at least `min_intermediaries` distinct
intermediaries B whose first legs all leave A within `window_days` of the earliest (grouped by the month of
the earliest first leg). Each intermediary counts once (its earliest pair). A and C may be the same
customer: money leaving one account of a customer and coming back to another through three strangers is the
pattern too. A cycle through one intermediary is `CYCLE`'s; this rule needs at least `min_intermediaries`
parallel paths.

Evidence: every transaction of the pattern's pairs. Cross-account: computed on the whole transfer graph
(`transforms.signals.cross_account_signals`), each flag belonging to one account.
"""

from __future__ import annotations

import polars as pl

from liushui.config import ScatterGatherRules
from transforms.counterparty import batch_transfers
from transforms.flag_rows import Rule, finish_flags, fmt_num, high_when, month_period

SCATTER_GATHER = Rule(
    code="SCATTER_GATHER",
    name_zh="分散转出再归集",
    name_en="Scatter-gather through intermediaries",
    section="scatter_gather",
    config_model=ScatterGatherRules,
    remediation_zh="说明资金经多个中间账户转出又归集到同一账户的原因并提供合同或凭证；停止通过他人账户分拆、归集资金。",
    remediation_en="Explain why money was split across several intermediary accounts and gathered into one "
    "account again, with contracts or receipts; stop splitting and regathering money through others' accounts.",
    default_weight=20,
    doc="docs/rules_integrity_cycles.md",
    behaviour=None,
)


def scatter_gather_patterns(
    transactions: pl.LazyFrame, accounts: pl.LazyFrame, fx_rates: pl.LazyFrame, *, rules: ScatterGatherRules
) -> pl.LazyFrame:
    """One row per pattern: `source, destination, month_on, intermediaries` (count), `first_at, last_at`,
    `source_currency, destination_currency, total` (first legs, in the source's currency),
    `evidence_txn_ids`."""
    legs = batch_transfers(transactions, accounts, fx_rates, min_amount=rules.min_amount).rename(
        {"from_account": "src", "from_customer": "src_customer", "to_account": "dst", "to_customer": "dst_customer"}
    )
    first = legs.select(
        a_txn="txn_id",
        source="src",
        source_customer="src_customer",
        mid="dst",
        mid_customer="dst_customer",
        a_at="at",
        a_amount="amount",
        a_currency="currency",
        a_cny="amount_cny",
    )
    second = legs.select(
        mid="src",
        b_txn="txn_id",
        destination="dst",
        destination_customer="dst_customer",
        b_at="at",
        b_amount="amount",
        b_currency="currency",
        b_cny="amount_cny",
    )
    native = pl.col("b_amount").cast(pl.Float64) / pl.col("a_amount").cast(pl.Float64)
    ratio = (
        pl.when(pl.col("a_currency") == pl.col("b_currency")).then(native).otherwise(pl.col("b_cny") / pl.col("a_cny"))
    )
    pairs = (
        first.join(second, on="mid")
        .filter(
            (pl.col("destination") != pl.col("source"))
            & (pl.col("destination") != pl.col("mid"))
            & (pl.col("mid_customer") != pl.col("source_customer"))
            & (pl.col("mid_customer") != pl.col("destination_customer"))
            & (pl.col("b_at") >= pl.col("a_at") - pl.duration(hours=rules.max_lead_hours))
            & (pl.col("b_at") - pl.col("a_at") <= pl.duration(days=rules.window_days))
            & ratio.is_between(1 - rules.max_loss, 1 + rules.max_gain)
        )
        # each intermediary once per source and destination: its earliest pair
        .sort("source", "destination", "mid", "a_at", "b_at", "a_txn", "b_txn")
        .unique(["source", "destination", "mid"], keep="first", maintain_order=True)
    )
    windows = pairs.with_columns(_start=pl.col("a_at").min().over("source", "destination")).filter(
        pl.col("a_at") - pl.col("_start") <= pl.duration(days=rules.window_days)
    )
    return (
        windows.group_by("source", "destination")
        .agg(
            intermediaries=pl.col("mid").n_unique(),
            first_at=pl.col("a_at").min(),
            last_at=pl.col("b_at").max(),
            source_currency=pl.col("a_currency").sort_by("a_at", "a_txn").first(),
            destination_currency=pl.col("b_currency").sort_by("b_at", "b_txn").last(),
            total=pl.col("a_amount").sum(),
            evidence_txn_ids=pl.concat_list("a_txn", "b_txn").explode().unique().sort(),
        )
        .filter(pl.col("intermediaries") >= rules.min_intermediaries)
        .with_columns(month_on=pl.col("first_at").dt.date().dt.month_start())
    )


def scatter_gather_flags(
    transactions: pl.LazyFrame, accounts: pl.LazyFrame, fx_rates: pl.LazyFrame, *, rules: ScatterGatherRules
) -> pl.LazyFrame:
    """SCATTER_GATHER: one flag per source and per destination account, currency of its own legs and month
    of the pattern's first leg; metric the distinct intermediaries (the most of the month's patterns),
    threshold `min_intermediaries`; high at twice that; evidence every leg of the month's patterns."""
    patterns = scatter_gather_patterns(transactions, accounts, fx_rates, rules=rules)
    # each pattern once for its source and once for its destination: (role, the account's end, the other end)
    ends = (("source", "转出方", "destination"), ("destination", "归集方", "source"))
    sides = pl.concat(
        [
            patterns.select(
                "month_on",
                "intermediaries",
                "first_at",
                "last_at",
                "total",
                "evidence_txn_ids",
                account_id=role,
                currency=f"{role}_currency",
                _other=other,
                _role_zh=pl.lit(role_zh),
                _role_en=pl.lit(role),
                _total_currency="source_currency",
            )
            for role, role_zh, other in ends
        ]
    )
    flagged = (
        sides.sort(
            "account_id",
            "currency",
            "month_on",
            "intermediaries",
            "_other",
            descending=[False, False, False, True, False],
        )
        .group_by("account_id", "currency", "month_on", maintain_order=True)
        .agg(
            _parties=pl.col("intermediaries").first(),
            _other=pl.col("_other").first(),
            _role_zh=pl.col("_role_zh").first(),
            _role_en=pl.col("_role_en").first(),
            _total=pl.col("total").first(),
            _total_currency=pl.col("_total_currency").first(),
            _first_on=pl.col("first_at").min().dt.date(),
            _last_on=pl.col("last_at").max().dt.date(),
            _count=pl.len(),
            evidence_txn_ids=pl.col("evidence_txn_ids").explode().unique().sort(),
        )
        .with_columns(
            **month_period(),
            metric_value=pl.col("_parties").cast(pl.Float64),
            threshold=pl.lit(float(rules.min_intermediaries)),
            limit_name=pl.lit("distinct_intermediaries"),
            severity=high_when(pl.col("_parties") >= 2 * rules.min_intermediaries),
            reason_zh=pl.format(
                "{}至{}，{} {}经{}个中间账户从{}转到{}（本账户为{}，本月{}起）：资金被分拆经他人账户后又归集。",
                pl.col("_first_on"),
                pl.col("_last_on"),
                fmt_num(pl.col("_total")),
                pl.col("_total_currency"),
                pl.col("_parties"),
                pl.when(pl.col("_role_en") == "source").then(pl.col("account_id")).otherwise(pl.col("_other")),
                pl.when(pl.col("_role_en") == "source").then(pl.col("_other")).otherwise(pl.col("account_id")),
                pl.col("_role_zh"),
                pl.col("_count"),
            ),
            reason_en=pl.format(
                "From {} to {}, {} {} moved from {} to {} through {} intermediary accounts (this account is the "
                "{}; {} such pattern(s) this month): money split across others' accounts and gathered again.",
                pl.col("_first_on"),
                pl.col("_last_on"),
                fmt_num(pl.col("_total")),
                pl.col("_total_currency"),
                pl.when(pl.col("_role_en") == "source").then(pl.col("account_id")).otherwise(pl.col("_other")),
                pl.when(pl.col("_role_en") == "source").then(pl.col("_other")).otherwise(pl.col("account_id")),
                pl.col("_parties"),
                pl.col("_role_en"),
                pl.col("_count"),
            ),
        )
    )
    return finish_flags(flagged, SCATTER_GATHER, rules)
