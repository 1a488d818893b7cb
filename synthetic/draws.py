"""Small random draws and money units shared by every part of the generator: times of day, account
numbers, amounts as int64 cents (never zero). Each helper consumes the generator it is given in a fixed
order, which is what keeps a seed's output byte-identical."""

from __future__ import annotations

import zlib

import numpy as np
from numpy.typing import ArrayLike

DAY = 86_400
"""Seconds in a day: event times are epoch seconds (local time)."""
HOUR = 3_600


def digits(rng: np.random.Generator, prefix: str, length: int) -> str:
    """`prefix` followed by random digits, `length` characters in all (account and card numbers)."""
    return prefix + "".join(map(str, rng.integers(0, 10, size=length - len(prefix))))


def fixed_account(name: str) -> str:
    """A stable corporate account number for a well-known institution (independent of the seed)."""
    return f"{zlib.crc32(name.encode()) % 10**10:010d}{zlib.crc32(name[::-1].encode()) % 10**9:09d}"


def tod(rng: np.random.Generator, n: int, lo: int = 7, hi: int = 23) -> np.ndarray:
    """`n` times of day in seconds, between `lo` and `hi` o'clock."""
    return rng.integers(lo * HOUR, hi * HOUR, size=n)


def round_to(cents: ArrayLike, unit_cents: int) -> np.ndarray:
    """Cents rounded to whole `unit_cents` (at least one unit), as int64."""
    return (np.maximum(np.rint(np.atleast_1d(cents) / unit_cents), 1) * unit_cents).astype(np.int64)


def yuan(amount: ArrayLike) -> np.ndarray:
    """Float yuan -> int64 cents, at least one cent (generated amounts are never zero)."""
    return np.maximum(np.rint(np.atleast_1d(np.asarray(amount, dtype=np.float64)) * 100), 1).astype(np.int64)
