"""All per-account signals from canonical transactions, as one pure composition of the transforms.

Input: canonical transactions of a set of accounts (their *whole* history: trailing windows need it),
the reference tables and the rules. Output: the published account-scoped tables, lazily. The flow calls
this once for a full run or once for the affected accounts of an incremental run.

Shared intermediate frames (classified transactions, account months, ...) feed many branches. They go
through `checkpoint`, which materialises them: leaving them as lazy `.cache()` nodes lets Polars 2.1
re-plan the shared sub-plans once per branch (measured on 190k rows: 281 s with `.cache()`, 1.4 s with
checkpoints). Where the data lives in between is the caller's choice: in memory by default, or spilled to
Parquet and scanned back for data larger than memory.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from liushui.config import STAGING_COMPRESSION, Rules
from liushui.contracts import (
    ACCOUNT_MONTHS,
    ACCOUNT_RISK,
    FX_RATES_REF,
    INCOME_STREAMS,
    MONEY,
    RISK_FLAGS,
    TRANSACTIONS,
    TRANSFER_LINKS,
    Table,
)
from liushui.vocabularies import LinkType
from transforms.balances import (
    balance_month_features,
    dressed_month_ends,
    dressing_legs,
    overdrawn_flags,
    window_dressing_flags,
)
from transforms.checkpoints import Checkpoint, in_memory
from transforms.classify import (
    account_owners,
    classified_transactions,
    mark_returned_money,
    not_earned,
    txn_class_value,
)
from transforms.commingling import commingling_flags, commingling_month_features, trade_money
from transforms.counterparty import resolved_counterparties
from transforms.credit import borrow_to_repay_links, credit_flags, credit_month_features
from transforms.cycles import CYCLE, cycle_flags, cycle_inbound_ids, cycle_links
from transforms.fan import fan_in_flags, fan_out_flags, gathered_inflows
from transforms.gather_scatter import gather_scatter_flags, hub_inflows, hub_outflows, without_hub_fans
from transforms.income import income_volatility, income_volatility_flags
from transforms.income_streams import income_stopped_flags, income_streams
from transforms.integrity import balance_breaks, integrity_flags, integrity_month_features
from transforms.lenders import classify_lenders
from transforms.months import account_months, main_currency
from transforms.outflows import large_outflow_flags, large_outflows, with_large_outflow_totals
from transforms.pass_through import pass_through_flags, pass_through_legs, pass_through_months
from transforms.risk import account_risk
from transforms.scatter_gather import SCATTER_GATHER, scatter_gather_flags
from transforms.transfers import link_type_is, related_transfer_flags, round_trip_flags, round_trips, transfer_legs

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

MONTH_KEY = ["account_id", "currency", "month_on"]


def spill_to(directory: Path) -> Checkpoint:
    """A checkpoint that writes each intermediate frame to Parquet in `directory` and scans it back:
    memory then holds one stage's working set, not every intermediate table at once."""
    directory.mkdir(parents=True, exist_ok=True)
    counter = iter(range(1_000_000))

    def checkpoint(frame: pl.LazyFrame) -> pl.LazyFrame:
        path = directory / f"checkpoint_{next(counter):03d}.parquet"
        frame.sink_parquet(path, compression=STAGING_COMPRESSION)
        return pl.scan_parquet(path)

    return checkpoint


@dataclass(frozen=True)
class Signals:
    transactions: pl.LazyFrame
    account_months: pl.LazyFrame
    income_streams: pl.LazyFrame
    transfer_links: pl.LazyFrame
    risk_flags: pl.LazyFrame
    account_risk: pl.LazyFrame

    def collect(self) -> dict[str, pl.DataFrame]:
        names = [f.name for f in fields(self)]
        frames = pl.collect_all([getattr(self, name) for name in names])
        return dict(zip(names, frames, strict=True))

    def sink(self, directory: Path) -> dict[str, Path]:
        """Write every table to `<directory>/<table>.parquet` (streaming where the plan allows)."""
        directory.mkdir(parents=True, exist_ok=True)
        paths = {}
        for f in fields(self):
            paths[f.name] = directory / f"{f.name}.parquet"
            getattr(self, f.name).sink_parquet(paths[f.name], compression=STAGING_COMPRESSION)
        return paths


def _with_month_features(
    months: pl.LazyFrame, features: pl.LazyFrame, *, zero: dict[str, PolarsDataType]
) -> pl.LazyFrame:
    """Left-join per-month features; months without a feature row get zeros (counts and money)."""
    return months.join(features, on=MONTH_KEY, how="left").with_columns(
        pl.col(name).fill_null(pl.lit(0).cast(dtype)) for name, dtype in zero.items()
    )


@dataclass(frozen=True)
class CrossAccount:
    """Patterns that span accounts of the batch, computed once on the whole transfer graph: the resolved
    counterparties, cycles (links and flags) and both legs of transfers. Every link and flag belongs to one
    account (`account_id`), so a shard keeps the rows of its accounts."""

    links: pl.LazyFrame
    flags: pl.LazyFrame
    cycle_returns: pl.LazyFrame
    """`in_txn_id` of inbound cycle legs: not earned income."""
    resolutions: pl.LazyFrame
    """`txn_id, counterparty_account_id, counterparty_resolution` of the graph's resolved rows
    (`transforms.counterparty`); published on `transactions`."""

    def for_accounts(self, account_ids: pl.LazyFrame) -> CrossAccount:
        keep = account_ids.select("account_id").unique()
        return CrossAccount(
            links=self.links.join(keep, on="account_id", how="semi"),
            flags=self.flags.join(keep, on="account_id", how="semi"),
            cycle_returns=self.cycle_returns,
            resolutions=self.resolutions,
        )


CROSS_LINK_TYPES: tuple[LinkType, ...] = ("cycle", "transfer_legs")
CROSS_FLAG_CODES: tuple[str, ...] = (CYCLE.code, SCATTER_GATHER.code)
"""The published rows that `cross_account_signals` produces (TRANSFER_LINKS.link_type, RISK_FLAGS.flag_code)."""


def cross_account_changes(
    cross: CrossAccount, published_links: pl.DataFrame, published_flags: pl.DataFrame
) -> pl.Series:
    """Accounts whose cross-account rows (cycle and transfer-leg links, cycle flags) differ between `cross`
    and what is published: a night's rows can open or close a cycle through accounts that received no
    row, and those accounts must be recomputed too. Rows are compared whole."""

    def differing(new_rows: pl.DataFrame, old_rows: pl.DataFrame, table: Table) -> pl.DataFrame:
        new, old = table.conform(new_rows).collect(), table.conform(old_rows).collect()
        new_h, old_h = new.hash_rows(), old.hash_rows()
        return pl.concat(
            [
                new.filter(~new_h.is_in(old_h.implode())).select("account_id"),
                old.filter(~old_h.is_in(new_h.implode())).select("account_id"),
            ]
        )

    links = differing(cross.links.collect(), published_links, TRANSFER_LINKS)
    flags = differing(cross.flags.collect(), published_flags, RISK_FLAGS)
    return pl.concat([links, flags])["account_id"].unique().sort()


def cross_account_signals(
    canonical: pl.LazyFrame,
    *,
    accounts: pl.LazyFrame,
    rules: Rules,
    as_of: date,
    checkpoint: Checkpoint = in_memory,
    fx_rates: pl.LazyFrame | None = None,
) -> CrossAccount:
    """Resolved counterparties, cycles and transfer legs over all accounts (as of `as_of`); `fx_rates`
    (`contracts.FX_RATES_REF`) compares amounts across currencies."""
    # Only the transfer graph: rows naming a counterparty account (transfer legs) or big enough to be a
    # cycle hop or its inbound leg; at 50M rows this is a fraction of the night.
    # (min_amount is CNY: a row in another currency is kept whatever its figure, to be converted later)
    graph = canonical.filter(
        (pl.col("booked_at").dt.date() <= as_of)
        & (
            pl.col("counterparty_account").is_not_null()
            | (pl.col("currency") != "CNY")
            | (pl.col("amount").abs() >= min(rules.cycles.min_amount, rules.scatter_gather.min_amount))
        )
    )
    fx = fx_rates if fx_rates is not None else FX_RATES_REF.empty().lazy()
    owned = checkpoint(resolved_counterparties(checkpoint(account_owners(graph, accounts)), accounts, fx))
    cycles = checkpoint(cycle_links(owned, accounts, fx, rules=rules.cycles, checkpoint=checkpoint))
    # both legs, joined on the resolved account rather than on the number the statement shows
    legs = transfer_legs(owned.with_columns(counterparty_account=pl.col("counterparty_account_id")))
    return CrossAccount(
        links=checkpoint(pl.concat([cycles, legs])),
        flags=checkpoint(
            pl.concat(
                [
                    cycle_flags(cycles, owned, rules=rules.cycles),
                    scatter_gather_flags(owned, accounts, fx, rules=rules.scatter_gather),
                ]
            )
        ),
        cycle_returns=checkpoint(cycle_inbound_ids(cycles)),
        resolutions=checkpoint(
            owned.filter(pl.col("counterparty_account_id").is_not_null()).select(
                "txn_id", "counterparty_account_id", "counterparty_resolution"
            )
        ),
    )


def derive_signals(
    canonical: pl.LazyFrame,
    *,
    accounts: pl.LazyFrame,
    related_parties: pl.LazyFrame,
    lender_registry: pl.DataFrame,
    rules: Rules,
    as_of: date,
    checkpoint: Checkpoint = in_memory,
    fx_rates: pl.LazyFrame | None = None,
) -> Signals:
    """Every signal for the accounts in `canonical`, in one process."""
    cross = cross_account_signals(
        canonical, accounts=accounts, rules=rules, as_of=as_of, checkpoint=checkpoint, fx_rates=fx_rates
    )
    return account_signals(
        canonical,
        cross,
        accounts=accounts,
        related_parties=related_parties,
        lender_registry=lender_registry,
        rules=rules,
        as_of=as_of,
        checkpoint=checkpoint,
        fx_rates=fx_rates,
    )


def account_signals(
    canonical: pl.LazyFrame,
    cross: CrossAccount,
    *,
    accounts: pl.LazyFrame,
    related_parties: pl.LazyFrame,
    lender_registry: pl.DataFrame,
    rules: Rules,
    as_of: date,
    checkpoint: Checkpoint = in_memory,
    fx_rates: pl.LazyFrame | None = None,
) -> Signals:
    """The per-account signals of the accounts in `canonical` (all of them, or one shard), with the
    cross-account patterns computed beforehand on the whole batch; `fx_rates` (`contracts.FX_RATES_REF`)
    compares a hub's outflows in another currency with what it gathered."""
    classified = checkpoint(
        classified_transactions(classify_lenders(canonical, lender_registry), accounts, related_parties).join(
            cross.resolutions, on="txn_id", how="left"
        )
    )
    cross = cross.for_accounts(classified)
    # Signals are as of `as_of`: rows booked later are published (classified) but not judged, so that a
    # backfill for a past date sees exactly what was known then.
    known_then = pl.col("booked_on") <= as_of
    trips = checkpoint(round_trips(classified.filter(known_then), rules=rules.round_trip))
    cycle_outs = cross.links.filter(link_type_is("cycle")).select(txn_id="out_txn_id")
    cycle_ins = cross.cycle_returns.select(txn_id="in_txn_id")
    # Legs of money that came back (round trips, cycles) are that fact, not money passing through.
    came_back = pl.concat(
        [trips.select(txn_id="out_txn_id"), trips.select(txn_id="in_txn_id"), cycle_outs, cycle_ins]
    ).unique()
    passing = checkpoint(pass_through_months(classified.filter(known_then), came_back, rules=rules.pass_through))
    passed_in, passed_out = pass_through_legs(passing)
    dressed = checkpoint(
        dressed_month_ends(
            classified.filter(known_then),
            main_currency(classified.filter(known_then)),
            accounts,
            rules=rules.window_dressing,
        )
    )
    # One fact, one flag: money that came back, passed through or was parked over month ends is neither clean income,
    # spending, a related transfer nor a large outflow.
    returned = pl.concat(
        [
            trips.select(txn_id="in_txn_id", returned_class=txn_class_value("round_trip_in")),
            trips.select(txn_id="out_txn_id", returned_class=txn_class_value("round_trip_out")),
            cycle_ins.with_columns(returned_class=txn_class_value("cycle_in")),
            cycle_outs.with_columns(returned_class=txn_class_value("cycle_out")),
            passed_in.with_columns(returned_class=txn_class_value("pass_through_in")),
            passed_out.with_columns(returned_class=txn_class_value("pass_through_out")),
            dressing_legs(dressed, "push").with_columns(returned_class=txn_class_value("window_dressing_in")),
            dressing_legs(dressed, "drain").with_columns(returned_class=txn_class_value("window_dressing_out")),
        ]
    )
    marked = mark_returned_money(classified, returned)
    # One fact, one flag: in the months a personal account trades through (COMMINGLING), its receipts are
    # turnover and its supplier payments the business's — neither clean income nor large personal outflows.
    business = checkpoint(commingling_month_features(marked.filter(known_then), accounts))
    trade = checkpoint(trade_money(marked.filter(known_then), business, accounts, rules=rules.commingling))
    # ... and money gathered from many parties within days (FAN_IN, or a hub's, GATHER_SCATTER) is not earned
    # income either.
    gathered = checkpoint(gathered_inflows(marked.filter(known_then), accounts, rules=rules.fan_in))
    fx = fx_rates if fx_rates is not None else FX_RATES_REF.empty().lazy()
    hubs = checkpoint(gather_scatter_flags(marked.filter(known_then), accounts, fx, rules=rules.gather_scatter))
    published_transactions = checkpoint(
        not_earned(marked, pl.concat([trade.select("txn_id"), gathered, hub_inflows(hubs, marked)]))
    )
    transactions = published_transactions.filter(known_then)
    returned_out = pl.concat(
        [
            trips.select(txn_id="out_txn_id"),
            cycle_outs,
            passed_out,
            trade.filter(pl.col("business_direction") == "out").select("txn_id"),
            dressing_legs(dressed, "drain"),
            hub_outflows(hubs, marked),
        ]
    )

    months = checkpoint(
        account_months(transactions, as_of=as_of, min_covered_days=rules.coverage.min_covered_days_for_full_month).pipe(
            income_volatility, rules=rules.income_volatility
        )
    )
    large = checkpoint(large_outflows(transactions, months, rules=rules.large_outflow, returned=returned_out))
    breaks = checkpoint(balance_breaks(transactions, rules=rules.statement_integrity))
    borrow_to_repay = checkpoint(borrow_to_repay_links(transactions, rules=rules.borrow_to_repay))
    months = credit_month_features(
        transactions, with_large_outflow_totals(months, large), rules=rules, borrow_to_repay=borrow_to_repay
    ).pipe(lambda m: balance_month_features(transactions, m, rules=rules.overdrawn))
    months = _with_month_features(months, integrity_month_features(breaks), zero={"balance_breaks": pl.Int64})
    months = checkpoint(
        _with_month_features(
            months,
            business,
            zero={
                "business_in_count": pl.Int64,
                "business_in": MONEY,
                "business_out_count": pl.Int64,
                "business_out": MONEY,
            },
        )
    )

    streams = checkpoint(income_streams(transactions, months, rules=rules.income_streams, as_of=as_of))
    links = pl.concat([trips, borrow_to_repay, cross.links])
    stopped = checkpoint(income_stopped_flags(streams, months, transactions, rules=rules.income_streams))
    flags = pl.concat(
        [
            income_volatility_flags(months, transactions, rules=rules.income_volatility, stopped=stopped),
            stopped,
            large_outflow_flags(large, rules=rules.large_outflow),
            related_transfer_flags(months, transactions, rules=rules.related_transfers),
            round_trip_flags(links, transactions, rules=rules.round_trip),
            pass_through_flags(passing, rules=rules.pass_through),
            credit_flags(
                transactions,
                months,
                borrow_to_repay,
                rules=rules,
                lender_names=lender_registry.lazy().select("lender_id", "name_zh", "name_en"),
            ),
            overdrawn_flags(transactions, months, accounts, rules=rules.overdrawn),
            window_dressing_flags(dressed, rules=rules.window_dressing),
            integrity_flags(breaks, rules=rules.statement_integrity),
            commingling_flags(transactions, business, accounts, rules=rules.commingling),
            # one fact, one flag: a hub's gathering and scattering are its GATHER_SCATTER flag
            without_hub_fans(
                pl.concat(
                    [
                        fan_in_flags(transactions, accounts, rules=rules.fan_in),
                        fan_out_flags(transactions, accounts, rules=rules.fan_out),
                    ]
                ),
                hubs,
            ),
            hubs,
            cross.flags,
        ]
    ).sort("account_id", "flag_code", "period_start_on", "period_end_on", "currency")
    flags = checkpoint(flags)
    return Signals(
        transactions=TRANSACTIONS.conform(published_transactions.sort("account_id", "booked_at", "txn_id")),
        account_months=ACCOUNT_MONTHS.conform(months.sort(MONTH_KEY)),
        income_streams=INCOME_STREAMS.conform(streams),
        transfer_links=TRANSFER_LINKS.conform(links.sort("link_type", "link_id")),
        risk_flags=RISK_FLAGS.conform(flags),
        account_risk=ACCOUNT_RISK.conform(
            account_risk(flags, months, accounts=accounts, rules=rules.account_risk, as_of=as_of)
        ),
    )
