"""One part's statement: everyday life and the planted behaviours added in a fixed order (the order is
part of the seed's output), then the events assembled into canonical transactions: one row per visible
event, sorted by account then `booked_at` (unique within an account), with the exact running balance per
currency, and the counterparty's number as statements show it: a share of the personal cards and accounts masked
(`6222****1234`, `尾号1234`) or left out (name only) — on planted and ordinary rows alike."""

from __future__ import annotations

import numpy as np
import polars as pl

from liushui.contracts import CANONICAL_INPUT_COLUMNS
from synthetic.behaviours import (
    plant_balance_break,
    plant_commingling,
    plant_fan_in,
    plant_fan_out,
    plant_gather_scatter,
    plant_income_volatile,
    plant_large_outflow,
    plant_overdrawn,
    plant_pass_through,
    plant_related_transfer_heavy,
    plant_round_trip,
    plant_second_currency,
    plant_window_dressing,
)
from synthetic.catalogue import CURRENCIES, PERSON_BINS
from synthetic.draws import DAY, yuan
from synthetic.events import Events, money_series
from synthetic.everyday import business_base, personal_base
from synthetic.lending import (
    label_debt_burden,
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
    part = Part(
        world, np.random.default_rng([world.seed, 1, part_no]), a0, a1, np.random.default_rng([world.seed, 2, part_no])
    )
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
    plant_pass_through(part)
    plant_fan_in(part)
    plant_fan_out(part)
    plant_gather_scatter(part)
    plant_overdrawn(part)
    plant_window_dressing(part)
    plant_second_currency(part)
    plant_related_transfer_heavy(part)  # last: it sizes itself on the month's other outflows
    label_multi_lender(part)
    label_debt_burden(part)
    return _transactions(part)


def _transactions(part: Part) -> pl.DataFrame:
    """The part's events inside the data months, in statement order, as canonical transactions."""
    w = part.w
    ev = part.events.arrays()
    keep = (ev["ts"] < w.data_end_ts) & (ev["ts"] >= int(w.month_start_day[0]) * DAY)
    ev = {k: v[keep] for k, v in ev.items()}
    order = np.lexsort((np.arange(ev["ts"].size), ev["ts"], ev["acct"]))
    ev = {k: v[order] for k, v in ev.items()}
    acct, cents, cur = ev["acct"], ev["cents"], ev["cur"]
    ts = _unique_seconds(acct - part.a0, ev["ts"])
    by_currency = np.lexsort((np.arange(acct.size), cur, acct))  # stable: statement order within a currency
    balance = np.empty_like(cents)
    balance[by_currency] = _running_balances(w, acct[by_currency], cur[by_currency], cents[by_currency])

    visible = ~ev["drop"]
    _label_overdrawn(part, acct[visible], cur[visible], ts[visible], balance[visible])
    n = int(visible.sum())
    strings = w.strings
    cpacct = _shown_numbers(part, ev["cpacct"])
    return pl.DataFrame(
        {
            "account_id": w.acct_series.gather(pl.Series(acct[visible].astype(np.uint32))),
            "txn_id": pl.Series([None], dtype=pl.String).gather(pl.Series(np.zeros(n, np.uint32))),
            "booked_at": pl.Series(ts[visible] * 1_000_000, dtype=pl.Int64).cast(pl.Datetime("us")),
            "amount": money_series(cents[visible]),
            "currency": pl.Series(CURRENCIES, dtype=pl.String).gather(pl.Series(cur[visible].astype(np.uint32))),
            "balance_after": money_series(balance[visible]),
            "counterparty_name": strings.lookup(ev["name"][visible]),
            "counterparty_account": strings.lookup(cpacct[visible]),
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


def _running_balances(w: World, acct: np.ndarray, cur: np.ndarray, cents: np.ndarray) -> np.ndarray:
    """Running balance of rows grouped by account and currency (statement order within a group), from an
    opening balance that keeps it above a floor — except an overdrawn account's main currency, which opens so
    that its lowest point is `World.overdraw_cents` below zero. A second currency opens near its floor."""
    starts = np.flatnonzero(np.r_[True, (acct[1:] != acct[:-1]) | (cur[1:] != cur[:-1])])
    sizes = np.diff(np.r_[starts, acct.size])
    csum = np.cumsum(cents)
    before = np.r_[0, csum[starts[1:] - 1]]
    running = csum - np.repeat(before, sizes)
    lowest = np.minimum.reduceat(running, starts) if acct.size else np.empty(0, np.int64)
    owners = acct[starts]
    main = cur[starts] == 0
    base = yuan(w.salary[owners] * w.opening_share[owners])
    base = np.where(w.is_business[owners], base * 30, base)
    floor = np.where(main, w.floor_cents[owners], w.floor_cents[owners] // 10)
    opening = np.where(main, np.maximum(base, floor - lowest), floor - np.minimum(lowest, 0))
    overdrawn = main & (w.overdraw_cents[owners] > 0)
    opening = np.where(overdrawn, -w.overdraw_cents[owners] - lowest, opening)
    balance: np.ndarray = running + np.repeat(opening, sizes)
    return balance


def _label_overdrawn(part: Part, acct: np.ndarray, cur: np.ndarray, ts: np.ndarray, balance: np.ndarray) -> None:
    """Label `overdrawn` on the months in which an overdrawn account's main-currency balance is below zero."""
    negative = (balance < 0) & (cur == 0)
    for a in part.accounts_with("overdrawn"):
        mine = negative & (acct == a)
        months = np.searchsorted(part.w.month_start_day, ts[mine] // DAY, side="right") - 1
        part.label(a, "overdrawn", np.unique(months))


MASKED_SHARE, TAIL_SHARE, UNNUMBERED_SHARE = 0.18, 0.10, 0.08
"""Of the rows whose counterparty is a person's card or a personal account: shown as `6222****1234`, as
`尾号1234`, or with no number at all (the rest in full)."""


def _shown_numbers(part: Part, cpacct: np.ndarray) -> np.ndarray:
    """The counterparty number codes as the statement shows them (one draw per row, from the part's second
    generator): personal cards and accounts (a known BIN, 16 or 19 digits) masked or dropped at the shares above."""
    strings = part.w.strings
    codes = np.unique(cpacct)
    masked = np.repeat(codes[:, None], 3, axis=1).astype(np.int32)
    for i, code in enumerate(codes.tolist()):
        number = strings.items[code]
        if number is not None and len(number) in (16, 19) and number[:6] in PERSON_BINS and number.isdigit():
            masked[i] = (code, strings.code(f"{number[:4]}****{number[-4:]}"), strings.code(f"尾号{number[-4:]}"))
    at = np.searchsorted(codes, cpacct)
    draw = part.vrng.random(cpacct.size)
    maskable = masked[at, 1] != cpacct
    shown = np.where(
        draw < MASKED_SHARE, masked[at, 1], np.where(draw < MASKED_SHARE + TAIL_SHARE, masked[at, 2], cpacct)
    )
    shown = np.where(
        (draw >= MASKED_SHARE + TAIL_SHARE) & (draw < MASKED_SHARE + TAIL_SHARE + UNNUMBERED_SHARE), 0, shown
    )
    out: np.ndarray = np.where(maskable, shown, cpacct).astype(np.int32)
    return out
