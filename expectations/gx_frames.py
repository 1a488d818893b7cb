"""How a Polars frame reaches GX (GX 1.24 has no Polars support): only the columns the suite's data
checks read, in one Polars ``select`` (source columns as they are, Decimal money as exact Int64 minor
units, List columns as their length, the suite's business derivations), then ``to_pandas()`` through
pyarrow with dtypes GX's pandas metrics handle vectorised. The source frame is never changed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

from .suites import Suite


def gx_frame(suite: Suite, frame: pl.DataFrame) -> pl.DataFrame:
    """The (Polars) frame GX will see: the columns the data checks read, derived where needed.

    A column whose sources are missing from `frame` is left out: its expectations then fail in GX
    ("column does not exist"), they never silently pass.
    """
    present = set(frame.columns)
    exprs: list[pl.Expr] = []
    seen: set[str] = set()
    for check in suite.checks:
        if check.is_schema_check:
            continue
        for name in check.gx_columns:
            if name in seen:
                continue
            seen.add(name)
            derived = suite.derived_column(name)
            if derived is not None:
                if set(derived.sources) <= present:
                    exprs.append(derived.expr.alias(name))
            elif name in present:
                exprs.append(pl.col(name))
    return frame.select(exprs) if exprs else pl.DataFrame()


# pandas datetime64[ns] range (GX compares datetimes vectorised only for ns columns; any other unit falls
# back to a per-row Python `map`, ~6 s per 1M rows). Values outside are clipped to the bounds: still far
# outside any plausible range, so range checks fail on them as they should.
_NS_MIN = datetime(1677, 9, 22)
_NS_MAX = datetime(2262, 4, 11)


def gx_cast(name: str, dtype: pl.DataType, *, has_nulls: bool) -> pl.Expr | None:
    """The cast of one prepared column to what GX's pandas metrics handle vectorised (None: as it is).

    * Datetime / Date -> Datetime("ns") (clipped to the ns range).
    * Integers with no null -> Int64 (numpy int64: exact, vectorised).
    * Integers with nulls -> Float64 (NaN): GX handles pandas' nullable ``Int64`` only through slow
      per-row paths and breaks on ``pd.NA`` in column-pair comparisons. Exact up to 2**53 (90 trillion
      currency units in cents); these columns are only range-checked.
    """
    c = pl.col(name)
    if dtype == pl.Datetime("ns") and getattr(dtype, "time_zone", None) is None:
        return None
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            c = c.dt.replace_time_zone(None)
        return c.cast(pl.Datetime("us")).clip(_NS_MIN, _NS_MAX).cast(pl.Datetime("ns"))
    if dtype.is_integer():
        return c.cast(pl.Float64 if has_nulls else pl.Int64)
    return None


def _gx_dtypes(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast the prepared frame to what GX's pandas metrics handle vectorised (see `gx_cast`)."""
    casts = [
        cast
        for name, dtype in frame.schema.items()
        if (cast := gx_cast(name, dtype, has_nulls=frame[name].null_count() > 0)) is not None
    ]
    return frame.with_columns(casts) if casts else frame


def to_pandas(frame: pl.DataFrame) -> Any:
    """The prepared frame as the pandas frame GX validates (a frame of no column keeps its row count)."""
    import pandas as pd  # type: ignore[import-untyped]

    if frame.width == 0:
        return pd.DataFrame(index=pd.RangeIndex(frame.height))
    return _gx_dtypes(frame).to_pandas()
