"""A CSV file split into records natively (pyarrow.csv: quotes, doubled quotes and line breaks inside quoted
cells handled in C++), with nothing padded: a record whose cell count is not the header's is set aside with
its text, its cell count and its physical line, never filled up with nulls the way Polars' reader fills a
short row.

`split_native` gives up (returns None) whenever it could not give the exact answer, and the caller reads
the file row by row instead: text that is not UTF-8, an odd number of quote characters (a quoted cell left
open at the end of the file, or a stray quote), a ragged record that spans lines (a stray quote swallowed
the following lines: each line must stay one row), or a record larger than a parser block.
"""

from __future__ import annotations

import codecs
import csv
import io
from dataclasses import dataclass

import polars as pl
import pyarrow as pa
import pyarrow.csv as pacsv

BLOCK_BYTES = 16 * 1024 * 1024
"""pyarrow's parser block; one record must fit in it (a larger one: the row-by-row reader)."""
HEAD_BYTES = 64 * 1024
_LINE_BREAK = r"\r\n|\r|\n"
"""A physical line ends at CR LF, CR or LF (as the row-by-row reader's universal newlines)."""


@dataclass(frozen=True)
class NativeRecords:
    """The records of a CSV file: its header (the first record's cells as written), the data records of the
    header's width and the ragged ones. Blank records (every cell empty or whitespace) are not records."""

    header: list[str]
    cells: pl.DataFrame
    """``c0`` .. ``c{width-1}`` (text as written, never null), ``_row`` (1-based ordinal among the data
    records, ragged ones included) and ``_line`` (the physical line the record starts on)."""
    ragged: pl.DataFrame
    """``_row``, ``_line``, ``text`` (the record as written) and ``n_cells``, one row per ragged record."""


def split_native(data: bytes) -> NativeRecords | None:
    """The records of the CSV text in `data` (UTF-8, BOM optional), or None when only the row-by-row reader
    can split it exactly (see the module docstring)."""
    if not data or data.count(b'"') % 2:
        return None
    width = _header_width(data)
    if width is None:
        return None
    invalid: list[tuple[int | None, str, int]] = []

    def set_aside(row: pacsv.InvalidRow) -> str:
        invalid.append((row.number, row.text, row.actual_columns))
        return "skip"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(data)),
            # one thread: the parser numbers invalid rows only when it reads in order
            read_options=pacsv.ReadOptions(autogenerate_column_names=True, use_threads=False, block_size=BLOCK_BYTES),
            parse_options=pacsv.ParseOptions(
                newlines_in_values=True, ignore_empty_lines=False, invalid_row_handler=set_aside
            ),
            convert_options=pacsv.ConvertOptions(
                column_types={f"f{i}": pa.string() for i in range(width)}, strings_can_be_null=False
            ),
        )
    except pa.ArrowException:  # not UTF-8, a record larger than a block, ...
        return None
    if table.num_columns != width or not all(pa.types.is_string(t) for t in table.schema.types):
        return None
    if any(number is None or "\n" in text or "\r" in text for number, text, _ in invalid):
        return None
    frame = pl.DataFrame(table.rename_columns([f"c{i}" for i in range(width)]))
    invalid_rows = [(int(n or 0), text, n_cells) for n, text, n_cells in invalid]
    return _numbered(frame, invalid_rows, one_line_each=_physical_lines(data) == frame.height + len(invalid))


def _physical_lines(data: bytes) -> int:
    """Lines ended by CR LF, CR or LF, and a last line without an end (counted natively)."""
    breaks = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    return breaks + (0 if data.endswith((b"\n", b"\r")) else 1)


def _header_width(data: bytes) -> int | None:
    """The number of cells of the first record (None: no first record in the first bytes)."""
    head = codecs.getincrementaldecoder("utf-8-sig")(errors="replace").decode(data[:HEAD_BYTES])
    try:
        first = next(csv.reader(io.StringIO(head, newline="")), None)
    except csv.Error:
        return None
    return len(first) if first else None


def _is_blank_text(text: str) -> bool:
    try:
        cells = next(csv.reader([text]), [])
    except csv.Error:
        return False
    return not any(c.strip() for c in cells)


def _numbered(frame: pl.DataFrame, invalid: list[tuple[int, str, int]], *, one_line_each: bool) -> NativeRecords | None:
    """Number the records: pyarrow numbers every record from 1 (the header, blank lines and the skipped
    invalid records included), so the table's rows are the numbers the invalid ones left free, in order.
    A record spans 1 + the line breaks inside its cells physical lines (`one_line_each`: the file has as
    many lines as records, so no cell holds a line break)."""
    invalid = sorted(invalid)
    cols = frame.columns
    total = frame.height + len(invalid)
    numbers = pl.int_range(1, total + 1, eager=True, dtype=pl.Int64)
    if invalid:
        numbers = numbers.filter(~numbers.is_in(pl.Series([n for n, _, _ in invalid], dtype=pl.Int64).implode()))
    if numbers.len() != frame.height or frame.height == 0:
        return None
    span = pl.lit(1) if one_line_each else 1 + pl.sum_horizontal(pl.col(c).str.count_matches(_LINE_BREAK) for c in cols)
    # a blank record has a blank first cell: the other cells are looked at only when some first cell is
    first_blank = frame.select(pl.col(cols[0]).str.strip_chars() == "").to_series()
    blank = pl.all_horizontal(pl.col(c).str.strip_chars() == "" for c in cols) if first_blank.any() else pl.lit(False)
    meta = frame.select(_rec=numbers, _span=span.cast(pl.Int64), _blank=blank, _invalid=pl.lit(False))
    if meta["_blank"][0]:
        return None  # a blank first record: the header is further down (the row-by-row reader skips it)
    if invalid:
        aside = pl.DataFrame(
            {
                "_rec": [n for n, _, _ in invalid],
                "_span": [1] * len(invalid),
                "_blank": [_is_blank_text(t) for _, t, _ in invalid],  # one Python call per invalid record
                "_invalid": [True] * len(invalid),
            },
            schema=meta.schema,
        )
        meta = pl.concat([meta, aside]).sort("_rec")
    meta = meta.with_columns(
        _line=pl.col("_span").cum_sum() - pl.col("_span") + 1,
        _row=((pl.col("_rec") > 1) & ~pl.col("_blank")).cum_sum().cast(pl.Int64),
    )
    in_table = meta.filter(~pl.col("_invalid"))
    cells = frame.with_columns(in_table["_row"], in_table["_line"], _keep=~in_table["_blank"]).slice(1)
    ragged = (
        meta.filter(pl.col("_invalid"))
        .with_columns(
            text=pl.Series([t for _, t, _ in invalid], dtype=pl.String),
            n_cells=pl.Series([k for _, _, k in invalid], dtype=pl.Int64),
        )
        .filter(~pl.col("_blank"))
        .select("_row", "_line", "text", "n_cells")
    )
    header = [str(c) for c in frame.row(0)]
    return NativeRecords(header, cells.filter(pl.col("_keep")).drop("_keep"), ragged)
