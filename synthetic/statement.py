"""One part's statement: everyday life and the planted behaviours added in a fixed order (the order is
part of the seed's output), then the events assembled into canonical transactions: one row per visible
event, sorted by account then `booked_at` (unique within an account), with the exact running balance."""

from __future__ import annotations

import numpy as np
import polars as pl

from liushui.contracts import CANONICAL_INPUT_COLUMNS
from synthetic.behaviours import (
    plant_balance_break,
    plant_commingling,
    plant_income_volatile,
    plant_large_outflow,
    plant_related_transfer_heavy,
    plant_round_trip,
)
from synthetic.draws import DAY, yuan
from synthetic.events import Events, money_series
from synthetic.everyday import business_base, personal_base
from synthetic.lending import (
    label_multi_lender,
    plant_borrow_to_repay,
    plant_debt_burden_high,
    plant_multi_lender,
    plant_overdue,
)
from synthetic.part import Part
from synthetic.world import World


def part_frame(world: World, part_no: int, a0: int, a1: int) -> pl.DataFrame:
    """The canonical transactions of accounts `a0` .. `a1 - 1`, drawn with the part's own generator."""
    part = Part(world, np.random.default_rng([world.seed, 1, part_no]), a0, a1)
    personal_base(part)
    business_base(part)
    plant_income_volatile(part)
    plant_large_outflow(part)
    plant_round_trip(part)
    plant_multi_lender(part)
    plant_borrow_to_repay(part)
    plant_overdue(part)
    plant_debt_burden_high(part)
    plant_commingling(part)
    plant_balance_break(part)
    cycles = world.cycle_rows
    inside = (cycles["acct"] >= a0) & (cycles["acct"] < a1)
    part.events.add(*(cycles[f][inside] for f in Events.FIELDS))
    plant_related_transfer_heavy(part)  # last: it sizes itself on the month's other outflows
    label_multi_lender(part)
    return _transactions(part)


def _transactions(part: Part) -> pl.DataFrame:
    """The part's events inside the data months, in statement order, as canonical transactions."""
    w = part.w
    ev = part.events.arrays()
    keep = (ev["ts"] < w.data_end_ts) & (ev["ts"] >= int(w.month_start_day[0]) * DAY)
    ev = {k: v[keep] for k, v in ev.items()}
    order = np.lexsort((np.arange(ev["ts"].size), ev["ts"], ev["acct"]))
    ev = {k: v[order] for k, v in ev.items()}
    acct, cents = ev["acct"], ev["cents"]
    ts = _unique_seconds(acct - part.a0, ev["ts"])
    balance = _running_balances(w, acct, cents)

    visible = ~ev["drop"]
    n = int(visible.sum())
    strings = w.strings
    return pl.DataFrame(
        {
            "account_id": w.acct_series.gather(pl.Series(acct[visible].astype(np.uint32))),
            "txn_id": pl.Series([None], dtype=pl.String).gather(pl.Series(np.zeros(n, np.uint32))),
            "booked_at": pl.Series(ts[visible] * 1_000_000, dtype=pl.Int64).cast(pl.Datetime("us")),
            "amount": money_series(cents[visible]),
            "currency": pl.Series(["CNY"], dtype=pl.String).gather(pl.Series(np.zeros(n, np.uint32))),
            "balance_after": money_series(balance[visible]),
            "counterparty_name": strings.lookup(ev["name"][visible]),
            "counterparty_account": strings.lookup(ev["cpacct"][visible]),
            "description": strings.lookup(ev["desc"][visible]),
            "channel": strings.lookup(ev["chan"][visible]),
        }
    ).select(list(CANONICAL_INPUT_COLUMNS))


def _unique_seconds(local_acct: np.ndarray, ts: np.ndarray) -> np.ndarray:
    """Unique timestamps within an account: push ties forward by whole seconds, keeping the order.
    `local_acct`: the sorted events' account index within the part (it keeps accounts apart)."""
    k = np.arange(local_acct.size, dtype=np.int64)
    offset = local_acct << 40
    unique: np.ndarray = np.maximum.accumulate(ts - k + offset) - offset + k
    return unique


def _running_balances(w: World, acct: np.ndarray, cents: np.ndarray) -> np.ndarray:
    """Running balance in statement order, from an opening balance that keeps it above a floor."""
    starts = np.flatnonzero(np.r_[True, acct[1:] != acct[:-1]])
    csum = np.cumsum(cents)
    before = np.r_[0, csum[starts[1:] - 1]]
    running = csum - np.repeat(before, np.diff(np.r_[starts, acct.size]))
    lowest = np.minimum.reduceat(running, starts)
    owners = acct[starts]
    base = yuan(w.salary[owners] * w.opening_share[owners])
    base = np.where(w.is_business[owners], base * 30, base)
    opening = np.maximum(base, w.floor_cents[owners] - lowest)
    balance: np.ndarray = running + np.repeat(opening, np.diff(np.r_[starts, acct.size]))
    return balance
