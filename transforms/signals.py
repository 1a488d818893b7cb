"""All per-account signals from canonical transactions, as one pure composition of the transforms.

Input: canonical transactions of a set of accounts (their *whole* history: trailing windows need it),
the reference tables and the rules. Output: the published account-scoped tables, lazily. The flow calls
this once for a full run, for the affected accounts of an incremental run, or once per shard.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import polars as pl

from liushui.config import Rules
from liushui.contracts import ACCOUNT_MONTHS, RISK_FLAGS, TRANSACTIONS, TRANSFER_LINKS
from transforms.classify import classified_transactions, mark_round_trip_returns
from transforms.credit import borrow_to_repay_links, credit_flags, credit_month_features
from transforms.flags import risk_flags
from transforms.income import income_volatility
from transforms.lenders import classify_lenders
from transforms.months import account_months
from transforms.outflows import large_outflows, with_large_outflow_totals
from transforms.transfers import round_trips, transfer_legs


@dataclass(frozen=True)
class Signals:
    transactions: pl.LazyFrame
    account_months: pl.LazyFrame
    transfer_links: pl.LazyFrame
    risk_flags: pl.LazyFrame

    def collect(self) -> dict[str, pl.DataFrame]:
        frames = pl.collect_all(
            [self.transactions, self.account_months, self.transfer_links, self.risk_flags]
        )
        return dict(zip(["transactions", "account_months", "transfer_links", "risk_flags"], frames, strict=True))


def derive_signals(
    canonical: pl.LazyFrame,
    *,
    accounts: pl.LazyFrame,
    related_parties: pl.LazyFrame,
    lender_registry: pl.DataFrame,
    rules: Rules,
    as_of: date,
) -> Signals:
    classified = classified_transactions(
        classify_lenders(canonical, lender_registry), accounts, related_parties
    ).cache()
    trips = round_trips(classified, rules=rules.round_trip).cache()
    transactions = mark_round_trip_returns(classified, trips).cache()
    months = (
        account_months(transactions, as_of=as_of, min_covered_days=rules.coverage.min_covered_days_for_full_month)
        .pipe(income_volatility, rules=rules.income_volatility)
        .cache()
    )
    large = large_outflows(transactions, months, rules=rules.large_outflow).cache()
    months = credit_month_features(transactions, with_large_outflow_totals(months, large), rules=rules)
    borrow_to_repay = borrow_to_repay_links(transactions, rules=rules.borrow_to_repay)
    links = pl.concat([trips, transfer_legs(transactions), borrow_to_repay])
    flags = pl.concat([
        risk_flags(account_months=months, transactions=transactions, large=large, links=links, rules=rules),
        credit_flags(transactions, months, borrow_to_repay, rules=rules),
    ])
    return Signals(
        transactions=TRANSACTIONS.conform(transactions.sort("account_id", "booked_at", "txn_id")),
        account_months=ACCOUNT_MONTHS.conform(months.sort("account_id", "currency", "month_on")),
        transfer_links=TRANSFER_LINKS.conform(links),
        risk_flags=RISK_FLAGS.conform(flags),
    )
