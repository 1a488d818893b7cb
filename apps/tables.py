"""How the listing commands (`flags`, `accounts`, `query`, the tables of `account`) write rows.

Formats (`--format`):
- `table` (default), for reading. In a terminal: a rich table whose id, money, number and date columns never
  wrap or shrink (a table wider than the terminal is printed wider, not cut); text columns wrap. Not a terminal
  (a pipe, `--output FILE`): plain columns aligned with spaces, one line per row, a header line, no borders, no
  title — `grep`, `sort`, `cut -c` and `less -S` work on it; line breaks inside a value become spaces.
  Numbers are shown one way everywhere: exact DECIMAL (money) with thousands separators and its own scale
  (`1,234.50`), other fractional numbers rounded half away from zero to 2 decimals (`0.53`), integers with
  thousands separators (`12,345`), dates ISO, NULL as an empty cell.
- `csv`: RFC 4180 with a header line, raw values (money exact, `-1234.50`, no separators), list and struct
  cells as JSON text.
- `json`: JSON Lines, one object per row (streams, and `jq`, DuckDB's `read_json` and Polars'
  `read_ndjson` read it); exact DECIMAL values as strings (`"-1234.50"`), dates and timestamps as ISO strings.
- `parquet`: a Parquet file (needs `--output`), written by pyarrow from the result's Arrow batches.

csv / json / parquet stream the result batch by batch: a table of any size is written in bounded memory.
Output to a file goes to a temporary file beside it, renamed when complete: a failing query leaves no
half-written file.
"""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Literal, TextIO

import duckdb
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
from rich import box
from rich.cells import cell_len
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

Format = Literal["table", "csv", "json", "parquet"]
ListFormat = Literal["table", "csv", "json"]
"""The formats of the commands that list a bounded set of rows (flags, accounts)."""

BATCH_ROWS = 100_000
"""Rows per Arrow batch when streaming a result to csv / json / parquet."""
_TEXT_MIN_WIDTH = 12
"""The narrowest a wrapping text column gets in a terminal table."""


class OutputError(Exception):
    """The rows cannot be written in the format asked for (a column type the format cannot hold, no --output
    for parquet); the message is fit for the user."""


# Showing one value -------------------------------------------------------------------------------------
def round_half_away(value: float, digits: int) -> float:
    """`value` rounded as DuckDB's round() does it (half away from zero, on the exact binary value), as these
    views have always printed it; Python's round() takes a tie to the even digit."""
    if not math.isfinite(value):
        return value
    return float(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def display(value: object) -> str:
    """A value as the `table` format shows it (module docstring); NULL is the empty string."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return f"{value:,f}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{round_half_away(value, 2) + 0.0:,.2f}" if math.isfinite(value) else str(value)
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return " ".join(display(v) for v in value)
    if isinstance(value, dict):
        return json.dumps({k: display(v) for k, v in value.items()}, ensure_ascii=False)
    return str(value)


_ColumnKind = Literal["rigid", "number", "words", "text"]


def _kind(name: str, values: Sequence[object]) -> _ColumnKind:
    """rigid: ids, dates, flags — never wrapped; number: the same, right-aligned; words: lists (of ids), wrapped
    between items only; text: free text, wrapped anywhere."""
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, int | float | Decimal) and not isinstance(v, bool) for v in present):
        return "number"
    if present and all(isinstance(v, list | tuple) for v in present):
        return "words"
    if (
        name.endswith(("id", "_on", "_at", "code"))
        or name in ("currency", "band", "severity", "status")
        or (present and all(isinstance(v, date | time | bool) for v in present))
    ):
        return "rigid"
    return "text"


def _plain_cell(value: object) -> str:
    return " ".join(display(value).split()) if isinstance(value, str) else display(value)


# The table format ----------------------------------------------------------------------------------------
def write_table(
    names: Sequence[str],
    rows: Sequence[Sequence[object]],
    out: TextIO,
    *,
    terminal: bool,
    title: str,
    console: Console | None = None,
) -> None:
    """`rows` as the `table` format: rich in a terminal (on `console`, else a console on `out`), plain aligned
    columns otherwise."""
    kinds = [_kind(name, [row[i] for row in rows]) for i, name in enumerate(names)]
    if terminal:
        _rich_table(names, kinds, rows, console or Console(file=out), title=title)
        return
    cells = [[_plain_cell(v) for v in row] for row in rows]
    widths = [max([cell_len(name)] + [cell_len(row[i]) for row in cells]) for i, name in enumerate(names)]

    def line(values: Sequence[str]) -> str:
        padded = [
            " " * (w - cell_len(v)) + v if kind == "number" else v + " " * (w - cell_len(v))
            for v, w, kind in zip(values, widths, kinds, strict=True)
        ]
        return "  ".join(padded).rstrip()

    out.write("\n".join([line(list(names)), *(line(row) for row in cells)]) + "\n")


def _name_parts(name: str) -> list[str]:
    """`clean_income` -> `clean_`, `income`: where a header may break."""
    parts = name.split("_")
    return [p + "_" for p in parts[:-1]] + parts[-1:]


def _header(name: str, width: int) -> Text:
    """The column name on as many lines as `width` needs, broken after an underscore (read together, the lines
    are the name): a narrow number column keeps its width instead of its header's."""
    lines = [""]
    for part in _name_parts(name):
        if lines[-1] and cell_len(lines[-1] + part) > width:
            lines.append("")
        lines[-1] += part
    return Text("\n".join(lines), no_wrap=False, overflow="fold")


def _rich_table(
    names: Sequence[str],
    kinds: Sequence[_ColumnKind],
    rows: Sequence[Sequence[object]],
    console: Console,
    *,
    title: str,
) -> None:
    """A rich table whose id / number / date columns keep their full width, text columns wrapping; when even that
    is wider than the terminal, one block of `name  value` lines per row (psql's expanded display) — never a
    cut or folded id."""
    table = RichTable(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), show_edge=False)
    needed = 2 * len(names)  # right padding and separator of each column
    for i, (name, kind) in enumerate(zip(names, kinds, strict=True)):
        texts = [display(row[i]) for row in rows]
        floor = max(cell_len(part) for part in _name_parts(name))
        if kind in ("rigid", "number"):
            width = max([floor] + [cell_len(line) for t in texts for line in t.splitlines()])
            justify: Literal["left", "right"] = "right" if kind == "number" else "left"
            table.add_column(_header(name, width), no_wrap=True, min_width=width, justify=justify)
        elif kind == "words":
            width = max([floor] + [cell_len(word) for t in texts for word in t.split()])
            table.add_column(_header(name, width), min_width=width)
        else:
            width = max(floor, min(_TEXT_MIN_WIDTH, max([cell_len(t) for t in texts] + [cell_len(name)])))
            table.add_column(_header(name, width), overflow="fold", min_width=width)
        needed += width
    if needed <= console.width:
        for row in rows:
            table.add_row(*(Text(display(v)) for v in row))
        console.print(table)
        return
    console.print(Text(title, style="bold"))
    label = max(cell_len(name) for name in names)
    for n, row in enumerate(rows, start=1):
        record = RichTable.grid(padding=(0, 2))
        record.add_column(no_wrap=True, min_width=label, style="dim")
        record.add_column(overflow="fold")
        for name, value in zip(names, row, strict=True):
            record.add_row(name, Text(display(value)))
        console.print(Text(f"-- {n} --", style="dim"))
        console.print(record)


# Machine formats ---------------------------------------------------------------------------------------
def _csv_ready(frame: pl.DataFrame) -> pl.DataFrame:
    """Nested cells (lists, structs) as JSON text: CSV has no nested values."""
    nested = [name for name, dtype in frame.schema.items() if dtype.is_nested()]
    if not nested:
        return frame
    prefix = len('{"v":')
    return frame.with_columns(
        pl.when(pl.col(name).is_not_null())
        .then(pl.struct(pl.col(name).alias("v")).struct.json_encode().str.slice(prefix).str.head(-1))
        .alias(name)
        for name in nested
    )


def _polars(batch: pa.RecordBatch) -> pl.DataFrame:
    try:
        frame = pl.from_arrow(batch)
    except (pl.exceptions.PolarsError, pa.ArrowException, TypeError, ValueError) as exc:
        raise OutputError(f"cannot write this result as text ({exc}); cast the column in SQL, e.g. ::VARCHAR") from exc
    assert isinstance(frame, pl.DataFrame)
    return frame


def write_batches(batches: Iterable[pa.RecordBatch], schema: pa.Schema, fmt: Format, out: TextIO | Path) -> None:
    """Stream Arrow batches as csv / json (to a text stream) or parquet (to a path)."""
    if fmt == "parquet":
        if not isinstance(out, Path):
            raise OutputError("--format parquet needs --output FILE")
        with pq.ParquetWriter(out, schema) as writer:
            for batch in batches:
                writer.write_batch(batch)
        return
    assert not isinstance(out, Path)
    header = True
    for batch in batches:
        frame = _polars(batch)
        if fmt == "csv":
            out.write(_csv_ready(frame).write_csv(include_header=header))
        elif frame.height:
            out.write(frame.write_ndjson())
        header = False
    if header and fmt == "csv":
        out.write(_csv_ready(_polars(pa.RecordBatch.from_pylist([], schema=schema))).write_csv())


# Where the output goes ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Destination:
    """Stdout or a file: `stream` for text formats, `path` for parquet, `terminal` when a person reads it."""

    stream: TextIO
    path: Path | None
    terminal: bool

    def target(self, fmt: Format) -> TextIO | Path:
        """Where `write_batches` writes `fmt`: parquet to the file, text to the stream."""
        return self.path if fmt == "parquet" and self.path is not None else self.stream


@contextmanager
def destination(output: Path | None, fmt: Format) -> Iterator[Destination]:
    """Stdout, or a temporary file beside `output` that replaces it when the block completes (removed when it
    fails)."""
    if output is None:
        if fmt == "parquet":
            raise OutputError("--format parquet needs --output FILE")
        yield Destination(sys.stdout, None, sys.stdout.isatty())
        return
    fd, name = tempfile.mkstemp(dir=output.resolve().parent, prefix=f".{output.name}.", suffix=".part")
    os.close(fd)
    partial = Path(name)
    try:
        with partial.open("w", encoding="utf-8", newline="") as stream:
            yield Destination(stream, partial, terminal=False)
        partial.replace(output)
    finally:
        partial.unlink(missing_ok=True)


def write_frame(frame: pl.DataFrame, fmt: Format, output: Path | None, *, title: str) -> None:
    """A small, fetched result (a listing command's rows) in `fmt`."""
    with destination(output, fmt) as to:
        if fmt == "table":
            write_table(frame.columns, frame.rows(), to.stream, terminal=to.terminal, title=title)
            return
        arrow = frame.to_arrow()
        write_batches(arrow.to_batches(), arrow.schema, fmt, to.target(fmt))


def write_relation(
    relation: duckdb.DuckDBPyRelation, fmt: Format, output: Path | None, *, limit: int | None, title: str
) -> bool:
    """A query's result in `fmt`, never fetched whole: the table format fetches `limit` rows (one more to know
    whether there are more); the others stream Arrow batches (all rows, or the first `limit`).
    True when the table format left rows out."""
    with destination(output, fmt) as to:
        if fmt == "table":
            assert limit is not None
            rows = relation.limit(limit + 1).fetchall()
            write_table(relation.columns, rows[:limit], to.stream, terminal=to.terminal, title=title)
            return len(rows) > limit
        limited = relation if limit is None else relation.limit(limit)
        reader = limited.to_arrow_reader(BATCH_ROWS)
        write_batches(reader, reader.schema, fmt, to.target(fmt))
    return False
