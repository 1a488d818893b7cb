"""What a night recomputes: the run's decisions, as pure functions of what was published and what arrived.

The nightly flow reads the prior state and tonight's files, calls these, and writes; nothing here reads a
file, the clock or the environment (the caller passes `now_utc`). Each decision is the place where an
incremental night could silently differ from a full rebuild, so each has literal-row tests
(tests/test_scope.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Literal

import polars as pl

from liushui.contracts import CANONICAL_TRANSACTION

LOCAL_TZ_OFFSET = timedelta(hours=8)
"""Asia/Shanghai: bank dates are local, and "tomorrow" is tomorrow there."""

RunMode = Literal["full", "incremental"]


def run_mode(*, full_rebuild: bool, last_run: tuple[str, str] | None, fingerprint: str, as_of: date) -> RunMode:
    """`full` when asked, on the first run, when the rules / lenders / reference / schema changed since the
    last published run (`last_run` = its (config fingerprint, as-of month "YYYY-MM")), or when the as-of
    month moved (every trailing window and the partial month shift); else `incremental`."""
    if full_rebuild or last_run is None:
        return "full"
    last_fingerprint, last_month = last_run
    return "full" if last_fingerprint != fingerprint or last_month != as_of.strftime("%Y-%m") else "incremental"


def as_of_date(*, explicit: date | None, published_max: date | None, tonight_max: date | None, today: date) -> date:
    """The date the night's signals are judged at: the one asked for, else the latest booking date among the
    published and tonight's rows, else today (an empty database and an empty inbox)."""
    if explicit is not None:
        return explicit
    known = [d for d in (published_max, tonight_max) if d is not None]
    return max(known) if known else today


def latest_plausible_booking(*, as_of: date | None, now_utc: datetime) -> date:
    """The last booking date accepted from input: tomorrow in bank local time (or an explicit as-of date when
    it is later). Rows booked after an explicit past as-of date are kept; the signals just don't judge them."""
    tomorrow = (now_utc.astimezone(UTC) + LOCAL_TZ_OFFSET).date() + timedelta(days=1)
    return max(tomorrow, as_of) if as_of else tomorrow


def affected_accounts(new: pl.DataFrame, accounts_ref: pl.DataFrame) -> pl.Series:
    """Accounts whose published figures a batch of new rows can change: the accounts with new rows, the
    other accounts of the same customers (own transfers), and accounts of the dataset that the new rows
    name as counterparty (the other leg of a transfer). `new` has account_id and counterparty_account;
    `accounts_ref` is the reference `accounts` table (account_id, customer_id, ...)."""
    touched = new.select(pl.concat([pl.col("account_id"), pl.col("counterparty_account").drop_nulls()]).unique())
    customers = accounts_ref.join(touched, on="account_id", how="semi").select("customer_id").unique()
    siblings = accounts_ref.join(customers, on="customer_id", how="semi").select("account_id")
    named = accounts_ref.join(touched, on="account_id", how="semi").select("account_id")
    return pl.concat([new.select("account_id"), siblings, named]).unique()["account_id"].sort()


def accounts_to_recompute(new: pl.DataFrame, accounts_ref: pl.DataFrame, cross_changed: pl.Series) -> pl.Series:
    """An incremental night's accounts: those the new rows affect, and those whose cross-account rows
    (cycle links and flags on the whole transfer graph) change tonight although they received nothing."""
    return pl.concat([affected_accounts(new, accounts_ref), cross_changed.cast(pl.String)]).unique().sort()


def tonight_rows(published: pl.LazyFrame, staged: pl.LazyFrame) -> pl.LazyFrame:
    """Tonight's canonical rows that are not published yet, each txn_id once (the first delivered wins, as a
    full rebuild keeps it). Published txn_ids are unique, so only tonight's rows need deduplicating and the
    published side can stream."""
    return (
        CANONICAL_TRANSACTION.conform(staged)
        .join(published.select("txn_id"), on="txn_id", how="anti", maintain_order="left")
        .unique("txn_id", keep="first", maintain_order=True)
    )


def shard_count(*, min_shards: int, shard_rows: int, rows: int) -> int:
    """At least `min_shards`, and enough that a shard holds about `shard_rows` rows (history + night)."""
    return max(min_shards, -(-rows // shard_rows))
