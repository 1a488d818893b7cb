"""Gather-scatter (集中转入再分散转出): one personal account that many strangers pay within days and that pays
most of that money on to many other strangers within days after — a collecting hub (过桥账户; the hub shape of
the AMLworld typologies: a fan-in feeding a fan-out through one account).

`gather_scatter_flags`: one GATHER_SCATTER flag per account, currency of the gathered inflows and month (of the
gather window's last inflow) with a window of `gather_days` in which at least `min_senders` distinct senders paid
the account and, from the window's first inflow to `scatter_days` after its last, the account paid at least
`min_share_out` of that money on to at least `min_receivers` distinct receivers who are not among the window's
senders. The month's flag is its window with the most senders (then the largest share).

What counts is what `transforms.fan` counts (`fanned_rows`: personal accounts only; no merchants, business
accounts, loans, salary or payroll), narrowed to strangers: inflows of class income or pass_through_in,
outflows of class spend or pass_through_out. Not counted:

- own accounts and declared related parties (classes related_transfer_*, own_transfer_*): a family pooling money
  for a wedding and paying the caterers is not a hub, and money moving among relatives is
  RELATED_TRANSFER_HEAVY's fact;
- legs of round trips and cycles (their own facts), and outflows back to a sender of the window (money returned
  is not scattered);
- rows below `min_amount` CNY.

Parties are `transforms.counterparty.party_keys` over the account's candidate rows of both directions, so a
receiver shown masked on one row and in full on another is one receiver, and a sender paid back under another
form of its name is still a sender. Amounts are irregular on both sides and the outflows need not mirror the
inflows (ten inflows may leave as four payments): only the totals are compared. An outflow in another currency
than the gathered money counts through the rates table (both sides in CNY); without a rate it does not count.

One fact, one flag: a hub shows a fan-in and a fan-out; `without_hub_fans` drops the FAN_IN / FAN_OUT flags that
share a transaction with the account's GATHER_SCATTER flags, and `hub_inflows` are not earned income.

Evidence: the window's gathered inflows and the scattered outflows.
"""

from __future__ import annotations

import polars as pl

from liushui.config import GatherScatterRules
from liushui.vocabularies import TxnClass
from transforms.classify import SALARY_PATTERN, txn_class_is
from transforms.counterparty import in_cny
from transforms.fan import fanned_rows
from transforms.flag_rows import Rule, finish_flags, fmt_num, fmt_pct, high_when, month_period

GATHER_SCATTER = Rule(
    code="GATHER_SCATTER",
    name_zh="集中转入再分散转出",
    name_en="Gather-scatter hub",
    section="gather_scatter",
    config_model=GatherScatterRules,
    remediation_zh="说明{rules.gather_days}天内多名转款人转入、随后又转给多名收款人的资金背景（代收代付、合伙款等）并提供"
    "合同或凭证；停止为他人归集并分发资金。",
    remediation_en="Explain why many people paid this account within {rules.gather_days} days and the money went on "
    "to many others (collecting and paying on someone's behalf, a shared venture) with contracts or receipts; stop "
    "gathering and distributing other people's money.",
    default_weight=20,
    doc="docs/rules_integrity_cycles.md",
    behaviour="gather_scatter",
)

GATHER_CLASSES: tuple[TxnClass, ...] = ("income", "pass_through_in")
"""Inflows from strangers that may be gathered money."""
SCATTER_CLASSES: tuple[TxnClass, ...] = ("spend", "pass_through_out")
"""Outflows to strangers that may be scattered money."""

_KEY = ["account_id", "currency"]
_WINDOW = ["account_id", "currency", "_end_at"]


def _exact_sum(amounts: pl.Expr) -> pl.Expr:
    """The sum of float amounts, each rounded to cents and added as integers: the same whatever the rows' order (a
    float sum is not, and an incremental night must publish what a full rebuild does, to the last bit)."""
    return (amounts * 100).round(0).cast(pl.Int64).sum().cast(pl.Float64) / 100


def _hub_rows(
    transactions: pl.LazyFrame, accounts: pl.LazyFrame, fx_rates: pl.LazyFrame, *, rules: GatherScatterRules
) -> pl.LazyFrame:
    """The candidate rows of both directions with their party and `_cny` (null in another currency without a
    rate), of at least `min_amount` CNY."""
    condition = ((pl.col("amount") > 0) & txn_class_is(*GATHER_CLASSES)) | (
        (pl.col("amount") < 0)
        & txn_class_is(*SCATTER_CLASSES)
        & ~pl.col("description").fill_null("").str.contains(SALARY_PATTERN)
    )
    # a CNY row below the floor can never count: left out before the party keys are drawn (every small
    # purchase of every account would otherwise join the others of its name); other currencies wait for the rate
    plausible = (pl.col("currency") != "CNY") | (pl.col("amount").abs() >= rules.min_amount)
    return (
        fanned_rows(transactions, accounts, condition & plausible, min_amount=0)
        .pipe(in_cny, fx_rates, amount="_amount", currency="currency", at="booked_at", out="_cny")
        .filter(pl.coalesce("_cny", "_amount") >= rules.min_amount)
    )


def _gather_windows(inflows: pl.LazyFrame, *, rules: GatherScatterRules) -> pl.LazyFrame:
    """Every window of `gather_days` ending at an inflow that no later inflow extends, with at least
    `min_senders` senders: `_senders,
    _start_at, _end_at, _in_total` (in the currency) and `_rate` (CNY per unit; null when a row lacks one)."""
    return (
        inflows.sort(*_KEY, "booked_at")
        .rolling(index_column="booked_at", period=f"{rules.gather_days}d", group_by=_KEY)
        .agg(
            _senders=pl.col("_party").n_unique(),
            _start_at=pl.col("booked_at").min(),
            _in_total=_exact_sum(pl.col("_amount")),
            _in_cny=_exact_sum(pl.col("_cny")),
            _rated=pl.col("_cny").is_not_null().all(),
        )
        .rename({"booked_at": "_end_at"})
        .unique(_WINDOW)
        .sort(_WINDOW)
        # a window that the next inflow would still extend is part of a larger one: judged whole, else a
        # window cut before the burst's last inflow would look as if more of its money went on
        .with_columns(_next_at=pl.col("_end_at").shift(-1).over(_KEY))
        .filter(
            (pl.col("_senders") >= rules.min_senders)
            & (
                pl.col("_next_at").is_null()
                | (pl.col("_next_at") >= pl.col("_start_at") + pl.duration(days=rules.gather_days))
            )
        )
        .with_columns(_rate=pl.when(pl.col("_rated")).then(pl.col("_in_cny") / pl.col("_in_total")))
        .drop("_in_cny", "_rated", "_next_at")
    )


def gather_scatter_hubs(
    transactions: pl.LazyFrame, accounts: pl.LazyFrame, fx_rates: pl.LazyFrame, *, rules: GatherScatterRules
) -> pl.LazyFrame:
    """One row per account, currency and month with a hub (module docstring): `month_on, _senders, _receivers,
    _start_at, _end_at, _last_out_at, _in_total, _share, evidence_txn_ids`."""
    rows = _hub_rows(transactions, accounts, fx_rates, rules=rules).cache()
    inflows = rows.filter(pl.col("_is_inflow"))
    windows = _gather_windows(inflows, rules=rules).cache()
    gathered = (
        windows.select(*_WINDOW, "_start_at")
        .join(inflows.select(*_KEY, "txn_id", "booked_at", "_party"), on=_KEY)
        .filter(pl.col("booked_at").is_between(pl.col("_start_at"), pl.col("_end_at")))
        .select(*_WINDOW, "txn_id", "_party")
    )
    outflows = rows.filter(~pl.col("_is_inflow")).select(
        "account_id",
        _out_txn="txn_id",
        _out_at="booked_at",
        _party="_party",
        _out_currency="currency",
        _out_amount="_amount",
        _out_cny="_cny",
    )
    in_currency = (
        pl.when(pl.col("_out_currency") == pl.col("currency"))
        .then(pl.col("_out_amount"))
        .otherwise(pl.col("_out_cny") / pl.col("_rate"))
    )
    scattered = (
        windows.select(*_WINDOW, "_start_at", "_rate")
        .join(outflows, on="account_id")
        .filter(
            pl.col("_out_at").is_between(pl.col("_start_at"), pl.col("_end_at") + pl.duration(days=rules.scatter_days))
        )
        .join(gathered.select(*_WINDOW, "_party"), on=[*_WINDOW, "_party"], how="anti")  # paid back: no scatter
        .with_columns(_value=in_currency)
        .filter(pl.col("_value").is_not_null())
        .group_by(_WINDOW)
        .agg(
            _receivers=pl.col("_party").n_unique(),
            _out_total=_exact_sum(pl.col("_value")),
            _last_out_at=pl.col("_out_at").max(),
            _out_ids=pl.col("_out_txn"),
        )
    )
    hubs = (
        windows.join(scattered, on=_WINDOW)
        .with_columns(_share=(pl.col("_out_total") / pl.col("_in_total")).clip(upper_bound=1.0))
        .filter((pl.col("_receivers") >= rules.min_receivers) & (pl.col("_share") >= rules.min_share_out))
        .with_columns(month_on=pl.col("_end_at").dt.date().dt.month_start())
        .sort(*_KEY, "month_on", "_senders", "_share", "_end_at", descending=[False, False, False, True, True, False])
        .unique([*_KEY, "month_on"], keep="first", maintain_order=True)
    )
    gathered_ids = gathered.group_by(_WINDOW).agg(_in_ids=pl.col("txn_id"))
    return hubs.join(gathered_ids, on=_WINDOW).with_columns(
        evidence_txn_ids=pl.concat_list("_in_ids", "_out_ids").list.unique().list.sort()
    )


def gather_scatter_flags(
    transactions: pl.LazyFrame, accounts: pl.LazyFrame, fx_rates: pl.LazyFrame, *, rules: GatherScatterRules
) -> pl.LazyFrame:
    """GATHER_SCATTER (module docstring): metric the share of the gathered money paid on to the receivers,
    threshold `min_share_out`; high from `high_share_out`, or at twice `min_senders` senders or `min_receivers`
    receivers; evidence the gathered inflows and the scattered outflows."""
    start, end = pl.col("_start_at").dt.date(), pl.col("_end_at").dt.date()
    last = pl.col("_last_out_at").dt.date()
    days = pl.max_horizontal((last - start).dt.total_days(), pl.lit(0)).cast(pl.String)
    share, total = fmt_pct(pl.col("_share")), fmt_num(pl.col("_in_total"))
    senders, receivers = pl.col("_senders"), pl.col("_receivers")
    flagged = gather_scatter_hubs(transactions, accounts, fx_rates, rules=rules).with_columns(
        **month_period(),
        metric_value=pl.col("_share"),
        threshold=pl.lit(rules.min_share_out),
        limit_name=pl.lit("share_scattered"),
        severity=high_when(
            (pl.col("_share") >= rules.high_share_out)
            | (senders >= 2 * rules.min_senders)
            | (receivers >= 2 * rules.min_receivers)
        ),
        reason_zh=pl.format(
            "{}至{}的{}天内有{}名不同转款人转入共{} {}，至{}已将其中{}转给{}名其他收款人（首笔转入后{}天内）："
            "资金从多方集中转入后又分散转出，本账户是归集再分发的中转账户。",
            start,
            end,
            pl.lit(str(rules.gather_days)),
            senders,
            total,
            pl.col("currency"),
            last,
            share,
            receivers,
            days,
        ),
        reason_en=pl.format(
            "Within {} days ({} to {}) {} distinct senders paid in {} {}; by {} {} of it had gone on to {} other "
            "receivers ({} days after the first inflow): money gathered from many parties and scattered to many "
            "others, a collecting hub.",
            pl.lit(str(rules.gather_days)),
            start,
            end,
            senders,
            total,
            pl.col("currency"),
            last,
            share,
            receivers,
            days,
        ),
    )
    return finish_flags(flagged, GATHER_SCATTER, rules)


def without_hub_fans(fan_flags: pl.LazyFrame, hub_flags: pl.LazyFrame) -> pl.LazyFrame:
    """`fan_flags` (FAN_IN / FAN_OUT rows) without those sharing an evidence transaction with a GATHER_SCATTER
    flag of their account: the hub is one fact, its gathering and its scattering are not two more."""
    hub_ids = hub_flags.select("account_id", _txn="evidence_txn_ids").explode("_txn")
    covered = (
        fan_flags.select("flag_id", "account_id", _txn="evidence_txn_ids")
        .explode("_txn")
        .join(hub_ids, on=["account_id", "_txn"], how="semi")
        .select("flag_id")
        .unique()
    )
    return fan_flags.join(covered, on="flag_id", how="anti")


def _hub_legs(hub_flags: pl.LazyFrame, transactions: pl.LazyFrame, side: pl.Expr) -> pl.LazyFrame:
    evidence = hub_flags.select(txn_id="evidence_txn_ids").explode("txn_id").drop_nulls().unique()
    return evidence.join(transactions.filter(side).select("txn_id"), on="txn_id", how="semi")


def hub_inflows(hub_flags: pl.LazyFrame, transactions: pl.LazyFrame) -> pl.LazyFrame:
    """`txn_id` of the gathered inflows of GATHER_SCATTER flags: money collected to be paid on is not earned."""
    return _hub_legs(hub_flags, transactions, pl.col("amount") > 0)


def hub_outflows(hub_flags: pl.LazyFrame, transactions: pl.LazyFrame) -> pl.LazyFrame:
    """`txn_id` of the scattered outflows of GATHER_SCATTER flags: paying on the gathered money is the hub's fact,
    not a large outflow of the holder's own money."""
    return _hub_legs(hub_flags, transactions, pl.col("amount") < 0)
