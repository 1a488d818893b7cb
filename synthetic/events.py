"""The column-wise buffers statement rows are built in: interned strings (rows carry int32 codes) and
event arrays (account index, epoch second, cents, string codes, and whether the row is left out of the
file), plus the exact int64-cents -> Decimal(18,2) conversion used when a part becomes a frame."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import polars as pl
import pyarrow as pa
from numpy.typing import ArrayLike


class Strings:
    """Interned strings: rows carry int32 codes, the frame is built with one `gather`. Code 0 is null."""

    def __init__(self) -> None:
        self.items: list[str | None] = [None]
        self.index: dict[str, int] = {}
        self._series: pl.Series | None = None

    def code(self, text: str | None) -> int:
        if text is None:
            return 0
        found = self.index.get(text)
        if found is None:
            found = len(self.items)
            self.items.append(text)
            self.index[text] = found
            self._series = None
        return found

    def lookup(self, codes: np.ndarray) -> pl.Series:
        if self._series is None:
            self._series = pl.Series(self.items, dtype=pl.String)
        return self._series.gather(pl.Series(codes.astype(np.uint32)))


class Events:
    """Column-wise buffer of transactions (account index, time, cents, string codes, hidden, currency)."""

    FIELDS = ("acct", "ts", "cents", "name", "cpacct", "desc", "chan", "drop", "cur")
    DTYPES = (np.int64, np.int64, np.int64, np.int32, np.int32, np.int32, np.int32, np.bool_, np.int8)

    def __init__(self) -> None:
        self.columns: dict[str, list[np.ndarray]] = {f: [] for f in self.FIELDS}

    def add(
        self,
        acct: ArrayLike,
        ts: ArrayLike,
        cents: ArrayLike,
        name: ArrayLike,
        cpacct: ArrayLike,
        desc: ArrayLike,
        chan: ArrayLike,
        drop: ArrayLike = False,
        cur: ArrayLike = 0,
    ) -> None:
        """Rows of one kind: `ts` gives their number, every other field is one value or one per row.
        `cur`: the index of the rows' currency in `synthetic.catalogue.CURRENCIES` (0, the main one, by default)."""
        times = np.asarray(ts, dtype=np.int64)
        n = times.shape[0] if times.ndim else 1
        for field, value, dtype in zip(
            self.FIELDS, (acct, times, cents, name, cpacct, desc, chan, drop, cur), self.DTYPES, strict=True
        ):
            self.columns[field].append(np.broadcast_to(np.asarray(value, dtype=dtype), (n,)))

    def add_rows(self, rows: Sequence[tuple[int, ...]]) -> None:
        """Rows given one tuple each, in the order of `FIELDS` (the currency may be left off: the main one)."""
        if rows:
            self.add(*(np.array(column) for column in zip(*rows, strict=True)))

    def arrays(self) -> dict[str, np.ndarray]:
        return {
            f: np.concatenate(parts) if parts else np.empty(0, dtype=dt)
            for (f, parts), dt in zip(self.columns.items(), self.DTYPES, strict=True)
        }


def money_series(cents: np.ndarray) -> pl.Series:
    """int64 cents -> Decimal(18,2), exactly (the int128 buffer is the cents, sign-extended)."""
    words = np.empty((cents.shape[0], 2), dtype=np.int64)
    words[:, 0] = cents
    words[:, 1] = cents >> 63
    array = pa.Array.from_buffers(pa.decimal128(18, 2), cents.shape[0], [None, pa.py_buffer(words)])
    series = pl.from_arrow(array)
    assert isinstance(series, pl.Series)  # an arrow Array gives a Series
    return series
