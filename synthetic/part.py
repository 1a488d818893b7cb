"""One part of the sample while its rows are being built: a contiguous range of accounts, its own random
generator, the event buffer, and what later steps read back (income per account-month, disbursements).
The steps that add rows (`synthetic.everyday`, `synthetic.lending`, `synthetic.behaviours`) are
functions of a `Part`; `synthetic.statement` runs them in order and assembles the frame."""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from numpy.typing import ArrayLike

from synthetic.draws import DAY
from synthetic.events import Events
from synthetic.world import World


class Part:
    """The rows of accounts `a0` .. `a1 - 1` (whole customers), drawn with `rng`; the later variety (both
    round-trip directions, pass-through, fan-in / fan-out, overdrafts, a second currency, masked counterparty
    numbers) with `vrng`, so that adding it left the older draws as they were."""

    def __init__(
        self, world: World, rng: np.random.Generator, a0: int, a1: int, vrng: np.random.Generator | None = None
    ) -> None:
        self.w = world
        self.rng = rng
        self.vrng = vrng if vrng is not None else np.random.default_rng([world.seed, 2, a0])
        self.a0, self.a1 = a0, a1
        self.events = Events()
        self.disbursements: list[tuple[int, int, int]] = []  # (account, epoch day, lender)
        self.repaid: list[tuple[int, int, int]] = []  # (account, month, cents): repayments out of income
        self.salary_cents = np.zeros((a1 - a0, world.months), np.int64)
        self.side_cents = np.zeros((a1 - a0, world.months), np.int64)
        self.c = world.strings.code

    def ts(self, m: ArrayLike, day0: ArrayLike, secs: ArrayLike) -> np.ndarray:
        """Epoch seconds of day `day0` (0-based, clipped to the month) of month `m`, at `secs` after midnight."""
        months = np.asarray(m)
        day = np.clip(day0, 0, self.w.month_len[months] - 1)
        seconds: np.ndarray = (self.w.month_start_day[months] + day) * DAY + np.asarray(secs)
        return seconds

    def month_of(self, ts: int) -> int:
        """The month index of epoch second `ts`."""
        return int(np.searchsorted(self.w.month_start_day, ts // DAY, side="right") - 1)

    def accounts_with(self, behaviour: str) -> list[int]:
        """The part's accounts on which `behaviour` is planted."""
        return [a for a in range(self.a0, self.a1) if behaviour in self.w.beh[a]]

    def label(self, a: int, behaviour: str, months: Iterable[int]) -> None:
        """Record ground truth: `behaviour` planted on account `a` in `months`."""
        self.w.labels.extend((a, behaviour, int(m)) for m in months)
