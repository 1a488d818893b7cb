"""Readers for the canonical export format (CSV and Parquet) -> raw text frames (see `parse`).

The canonical CSV has the header names of `contracts.CANONICAL_INPUT_COLUMNS` (optional ones may be
absent); Parquet uses the same column names with text, decimal or timestamp types. Anything else about
the file (encoding, ragged rows) is reported per row or per file, never guessed silently.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from liushui.contracts import CANONICAL_INPUT_COLUMNS, CANONICAL_REQUIRED_INPUT
from liushui.ingest.parse import empty_raw_frame


class FileRejected(Exception):
    """The whole file cannot be read; the message says why (the caller adds the file name)."""


def looks_binary(head: bytes) -> bool:
    return b"\x00" in head


def header_is_canonical(header_cells: list[str]) -> bool:
    """The canonical layout: at least two canonical names, so that a file missing a required column gets
    the precise message ("missing required column(s) booked_at") instead of "unknown layout"."""
    names = {c.strip().lstrip("\ufeff").strip('"') for c in header_cells}
    return "account_id" in names and len(names & set(CANONICAL_INPUT_COLUMNS)) >= 2


def _check_header(names: list[str]) -> None:
    missing = [c for c in CANONICAL_REQUIRED_INPUT if c not in names]
    if missing:
        raise FileRejected(f"missing required column(s) {', '.join(missing)}")
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise FileRejected(f"duplicated column(s) {', '.join(duplicated)}")


def _to_raw_frame(cells: pl.DataFrame, header: list[str]) -> pl.DataFrame:
    """Canonical columns as text + `raw` (all cells of the row joined by ',') + meta columns."""
    known = [c for c in header if c in CANONICAL_INPUT_COLUMNS]
    return pl.concat(
        [
            empty_raw_frame(),
            cells.select(
                *[pl.col(c).cast(pl.String) for c in known],
                source_row=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
                raw=pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in header], separator=","),
            ),
        ],
        how="diagonal_relaxed",
    )


def _is_plain_rectangular(path: Path) -> bool:
    """No quoting anywhere and every line has the header's number of cells. Polars' reader fills a short
    row with nulls, which would hide a truncated row; such files take the row-by-row path instead."""
    try:
        lines = pl.read_csv(path, has_header=False, separator="\x1f", quote_char=None, infer_schema=False,
                            new_columns=["line"], encoding="utf8")
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError):
        return False
    stats = lines.select(
        quoted=pl.col("line").str.contains('"', literal=True).any(),
        widths=pl.col("line").str.count_matches(",", literal=True).unique().implode(),
    )
    return not stats["quoted"][0] and stats["widths"][0].len() == 1


def read_canonical_csv(path: Path) -> pl.DataFrame:
    """Fast path: Polars' reader with every cell as text, for plain rectangular files. Anything else
    (quoted cells, ragged rows, invalid UTF-8) is read row by row so that each bad row is quarantined
    with its own reason."""
    if not _is_plain_rectangular(path):
        return _read_canonical_csv_rowwise(path)
    try:
        cells = pl.read_csv(path, infer_schema=False, encoding="utf8", raise_if_empty=False,
                            )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError, UnicodeDecodeError):
        return _read_canonical_csv_rowwise(path)
    header = [c.lstrip("\ufeff") for c in cells.columns]
    cells.columns = header
    _check_header(header)
    return _to_raw_frame(cells, header)


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError as exc:
        raise FileRejected(f"not UTF-8 or GB18030 text (byte {exc.start})") from None


def _read_canonical_csv_rowwise(path: Path) -> pl.DataFrame:
    """Slow path for malformed files: the csv module splits rows; ragged rows are rejected per row."""
    rows = list(csv.reader(io.StringIO(_decode(path.read_bytes()), newline="")))
    if not rows:
        raise FileRejected("empty file")
    header = [c.strip() for c in rows[0]]
    _check_header(header)
    width = len(header)
    records: dict[str, list] = {c: [] for c in CANONICAL_INPUT_COLUMNS if c in header}
    meta: dict[str, list] = {"source_row": [], "raw": [], "reject_code": [], "reject_reason": []}
    data_rows = rows[1:]
    for number, row in enumerate(data_rows, start=1):  # only malformed files take this path
        ragged = len(row) != width
        for name in records:
            records[name].append(None if ragged else row[header.index(name)])
        meta["source_row"].append(number)
        meta["raw"].append(",".join(row))
        meta["reject_code"].append("ragged_row" if ragged else None)
        meta["reject_reason"].append(f"row has {len(row)} cells, header has {width}" if ragged else None)
    frame = pl.DataFrame({**records, **meta}, schema_overrides={"source_row": pl.Int64})
    return pl.concat([empty_raw_frame(), frame], how="diagonal_relaxed")


_PARQUET_ALLOWED = {"text": (pl.String,), "money": (pl.String, pl.Decimal), "time": (pl.String, pl.Datetime, pl.Date)}
_PARQUET_KIND = {"amount": "money", "balance_after": "money", "booked_at": "time"}


def read_canonical_parquet(path: Path) -> pl.DataFrame:
    try:
        schema = pl.read_parquet_schema(path)
    except Exception as exc:  # pyarrow/polars raise several types for corrupt files
        raise FileRejected(f"not a readable Parquet file ({type(exc).__name__}: {str(exc)[:120]})") from None
    header = list(schema)
    _check_header(header)
    for name in header:
        if name not in CANONICAL_INPUT_COLUMNS:
            continue
        allowed = _PARQUET_ALLOWED[_PARQUET_KIND.get(name, "text")]
        dtype = schema[name]
        if not isinstance(dtype, allowed) and dtype not in allowed:
            raise FileRejected(
                f"column '{name}' has type {dtype}; expected one of "
                f"{', '.join(a.__name__ if isinstance(a, type) else str(a) for a in allowed)}"
                + (" (money must be exact: decimal or text, never float)" if name in _PARQUET_KIND and
                   _PARQUET_KIND[name] == "money" else "")
            )
    if pq.ParquetFile(path).metadata.num_rows == 0:
        return empty_raw_frame()
    cells = pl.read_parquet(path, columns=header).with_columns(
        pl.col(c).dt.strftime("%Y-%m-%d %H:%M:%S%.f") for c in header if schema[c] in (pl.Datetime, pl.Date)
        or isinstance(schema[c], pl.Datetime)
    )
    return _to_raw_frame(cells, header)
