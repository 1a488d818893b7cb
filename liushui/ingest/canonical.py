"""Readers for the canonical export format (CSV and Parquet) -> raw text frames (see `parse`).

The canonical CSV has the header names of `contracts.CANONICAL_INPUT_COLUMNS` (optional ones may be
absent; matched case-insensitively, surrounding spaces ignored; other columns are ignored); Parquet uses
the same column names with text, decimal or timestamp types. Anything else about the file (encoding,
ragged rows, a cut-off last row) is reported per row or per file, never guessed silently.

Encodings: UTF-8 (with or without BOM), UTF-16 with a BOM, and GB18030/GBK. A file that is UTF-8 but for a
few damaged bytes (a GBK line pasted in, a multi-byte character cut at the end) stays UTF-8: the damaged
rows are quarantined (`bad_encoding`) with their bytes shown as ``\\xNN``; only a file whose non-ASCII text
is mostly not UTF-8 is decoded as GB18030.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from liushui.contracts import CANONICAL_INPUT_COLUMNS, CANONICAL_REQUIRED_INPUT
from liushui.ingest.native_csv import split_native
from liushui.ingest.parse import empty_raw_frame

PARQUET_MAGIC = b"PAR1"
# Leading bytes of formats that are sometimes renamed to .csv; named in the rejection message.
_BINARY_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive, e.g. an .xlsx workbook, but not a readable one"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 file, e.g. a legacy .xls workbook, but not named .xls"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"Rar!", "a RAR archive"),
)
_CONTROL_BYTES = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f\x7f]")
_UNDECODABLE = re.compile("[\udc80-\udcff]")  # bytes kept by the surrogateescape error handler
_ASCII = bytes(range(128))
_MAX_FIELD_CHARS = 1 << 30


class FileRejected(Exception):
    """The whole file cannot be read; the message says why (the caller adds the file name)."""


def binary_kind(head: bytes) -> str | None:
    """What a file's first bytes say it is when it is not text (None: plausibly text).

    One NUL inside a cell does not make a file binary (that row is quarantined); a known magic number or
    more than 2 % control bytes does. UTF-16 starts with a byte-order mark and is text."""
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return None
    for magic, kind in _BINARY_MAGIC:
        if head.startswith(magic):
            return kind
    sample = head[:8192]
    controls = len(_CONTROL_BYTES.findall(sample))
    if controls > max(2, len(sample) // 50):
        hint = " (UTF-16 without a byte-order mark?)" if sample.count(0) * 3 > len(sample) else ""
        return f"{controls} control bytes in the first {len(sample)}{hint}"
    return None


def canonical_name(header_cell: str) -> str:
    """Header names match case-insensitively, ignoring surrounding spaces, quotes and a BOM."""
    return header_cell.replace("\ufeff", "").strip().strip('"').strip().lower()


def header_is_canonical(header_cells: list[str]) -> bool:
    """The canonical layout: at least two canonical names, so that a file missing a required column gets
    the precise message ("missing required column(s) booked_at") instead of "unknown layout"."""
    names = {canonical_name(c) for c in header_cells}
    return "account_id" in names and len(names & set(CANONICAL_INPUT_COLUMNS)) >= 2


def _check_header(names: list[str]) -> None:
    missing = [c for c in CANONICAL_REQUIRED_INPUT if c not in names]
    if missing:
        raise FileRejected(f"missing required column(s) {', '.join(missing)}")
    duplicated = sorted({n for n in names if n in CANONICAL_INPUT_COLUMNS and names.count(n) > 1})
    if duplicated:
        raise FileRejected(f"duplicated column(s) {', '.join(duplicated)} (names compared case-insensitively)")


def _to_raw_frame(cells: pl.DataFrame, header: list[str]) -> pl.DataFrame:
    """Canonical columns as text + `raw` (all cells of the row joined by ',') + meta columns."""
    positions = [i for i, c in enumerate(header) if c in CANONICAL_INPUT_COLUMNS]
    source = cells.columns
    return pl.concat(
        [
            empty_raw_frame(),
            cells.select(
                *[pl.col(source[i]).cast(pl.String).alias(header[i]) for i in positions],
                source_row=pl.int_range(1, pl.len() + 1, dtype=pl.Int64),
                raw=pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in source], separator=","),
            ),
        ],
        how="diagonal_relaxed",
    )


# ---------------------------------------------------------------------------------------------------
# CSV


def _plain_header(source: Path | io.BytesIO) -> list[str] | None:
    """The header cells when the file is plain rectangular UTF-8, else None.

    Plain: valid UTF-8, no quotes, no bare CR line endings, every line with the header's number of cells.
    Polars' reader fills a short row with nulls (hiding a truncated row) and does not split on a bare CR,
    so anything else takes the row-by-row path."""
    try:
        lines = pl.read_csv(
            source,
            has_header=False,
            separator="\x1f",
            quote_char=None,
            infer_schema=False,
            new_columns=["line"],
            encoding="utf8",
        )
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError):
        return None
    if isinstance(source, io.BytesIO):
        source.seek(0)
    stats = lines.select(
        irregular=pl.col("line").str.contains('["\r]').any(),
        widths=pl.col("line").fill_null("").str.count_matches(",", literal=True).unique().implode(),
    )
    if lines.is_empty() or stats["irregular"][0] or stats["widths"][0].len() != 1:
        return None
    first: str = lines["line"][0]
    return first.lstrip("\ufeff").split(",")


def _read_plain(source: Path | io.BytesIO, header_cells: list[str]) -> pl.DataFrame:
    header = [canonical_name(c) for c in header_cells]
    _check_header(header)
    cells = pl.read_csv(
        source,
        infer_schema=False,
        encoding="utf8",
        quote_char=None,
        raise_if_empty=False,
        new_columns=[f"c{i}" for i in range(len(header))],
    )
    # plain: one record per line, the header on line 1
    return _to_raw_frame(cells, header).with_columns(source_line=pl.col("source_row") + 1)


def read_canonical_csv(path: Path) -> pl.DataFrame:
    """Native paths first: Polars' reader for plain rectangular files, pyarrow's (`native_csv`) for files
    with quoted cells or ragged rows, both with every cell as text; other encodings are transcoded to UTF-8
    first. Only what neither can split exactly (damaged bytes, a quote left open, a stray quote that
    swallows lines) is read row by row, so that each bad row is quarantined with its own reason."""
    data = path.read_bytes()
    if b'"' not in data:
        header = _plain_header(io.BytesIO(data))
        if header is not None:
            return _read_plain(io.BytesIO(data), header)
    if not data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        native = _read_native(data)
        if native is not None:
            return native
    text = decode_text(data)
    if not _UNDECODABLE.search(text):
        return read_canonical_text(text)
    return _read_canonical_csv_rowwise(text)


def read_canonical_text(text: str) -> pl.DataFrame:
    """The canonical reader on decoded text (an Excel sheet as CSV: `liushui.ingest.workbook`)."""
    utf8 = text.encode("utf-8")
    header = _plain_header(io.BytesIO(utf8))
    if header is not None:
        return _read_plain(io.BytesIO(utf8), header)
    native = _read_native(utf8)
    if native is not None:
        return native
    return _read_canonical_csv_rowwise(text)


def _as_csv_cell(cell: pl.Expr) -> pl.Expr:
    """A cell as CSV writes it: quoted (quotes doubled) when it holds a delimiter, a quote or a line break."""
    quoted = pl.concat_str(pl.lit('"'), cell.str.replace_all('"', '""', literal=True), pl.lit('"'))
    return pl.when(cell.str.contains(r'[,"\r\n]')).then(quoted).otherwise(cell)


def _raw_as_csv(cells: pl.DataFrame, source: list[str]) -> pl.Series:
    """Each record written back as a CSV line. The cells joined by commas are that line unless a cell holds a
    comma, a quote or a line break: only those records are written with quotes."""
    joined = cells.select(pl.concat_str([pl.col(c) for c in source], separator=",")).to_series()
    needs_quotes = (joined.str.count_matches(",", literal=True) != len(source) - 1) | joined.str.contains('["\r\n]')
    rows = needs_quotes.arg_true()
    if rows.len() == 0:
        return joined
    quoted = cells[rows].select(pl.concat_str([_as_csv_cell(pl.col(c)) for c in source], separator=","))
    return joined.scatter(rows, quoted.to_series())


def _read_native(data: bytes) -> pl.DataFrame | None:
    """The raw frame from pyarrow's reader (quotes handled natively, ragged rows quarantined with their line,
    nothing padded), or None when only the row-by-row reader splits the file exactly."""
    records = split_native(data)
    if records is None:
        return None
    header = [canonical_name(c) for c in records.header]
    _check_header(header)
    width = len(header)
    cells = records.cells
    source = [f"c{i}" for i in range(width)]
    good = cells.select(
        *[pl.col(source[i]).alias(name) for i, name in enumerate(header) if name in CANONICAL_INPUT_COLUMNS],
        source_row=pl.col("_row"),
        source_line=pl.col("_line"),
        raw=_raw_as_csv(cells, source),
    )
    ragged = records.ragged.select(
        source_row=pl.col("_row"),
        source_line=pl.col("_line"),
        raw=pl.col("text"),
        reject_code=pl.lit("ragged_row"),
        reject_reason=_ragged_reason(pl.col("n_cells"), width, pl.col("_line")),
    )
    frame = pl.concat([empty_raw_frame(), good, ragged], how="diagonal_relaxed")
    return frame.sort("source_row") if ragged.height else frame


def _ragged_reason(n_cells: pl.Expr, width: int, line: pl.Expr) -> pl.Expr:
    return pl.format("row has {} cells, header has {} (line {})", n_cells, pl.lit(width), line)


def decode_text(data: bytes) -> str:
    """UTF-16 (BOM), UTF-8 (BOM optional), else GB18030; damaged UTF-8 keeps its bad bytes as surrogates."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            return data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise FileRejected(
                f"starts with a UTF-16 byte-order mark but is not UTF-16 text (byte {exc.start})"
            ) from None
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8) :]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        cut_at_end = exc.reason == "unexpected end of data" and exc.end == len(data)
    if cut_at_end or _mostly_utf8(data):  # cut inside the last character, or a few damaged lines
        return data.decode("utf-8", errors="surrogateescape")
    try:
        return data.decode("gb18030")
    except UnicodeDecodeError:
        return data.decode("utf-8", errors="surrogateescape")


def _mostly_utf8(data: bytes) -> bool:
    """More valid non-ASCII UTF-8 characters than invalid sequences (counted without per-character Python:
    GBK text decoded as UTF-8 is almost all invalid sequences)."""
    replaced = data.decode("utf-8", errors="replace")
    invalid = replaced.count("\ufffd")
    ascii_bytes = len(data) - len(data.translate(None, _ASCII))
    return len(replaced) - ascii_bytes - invalid > invalid


def _shown(text: str) -> str:
    """Undecodable bytes as \\xNN, so a quarantined row shows exactly what was in the file."""
    return text.encode("utf-8", errors="surrogateescape").decode("utf-8", errors="backslashreplace")


def _split_line(line: str) -> list[str]:
    try:
        return next(csv.reader([line]), [])
    except csv.Error:
        return line.rstrip("\r\n").split(",")


def _records(text: str) -> Iterator[tuple[list[str], str, str | None, int]]:
    """(cells, raw text, reader problem, physical line it starts on) per record. Blank lines are not records.

    A quoted cell may span lines. When a record that spans lines is short of cells, or its quote is never
    closed (a file cut inside a quoted cell, or a stray quote), each physical line is read on its own so
    that no row hides inside another row's cell; the line with the unclosed quote is flagged."""
    stream = io.StringIO(text, newline="")
    consumed: list[str] = []
    at_end = [False]

    def feed() -> Iterator[str]:
        for line in stream:
            consumed.append(line)
            yield line
        at_end[0] = True  # the reader asked past the last line: only an open quote does that

    reader = csv.reader(feed())
    header: list[str] | None = None
    line_no = 0  # physical lines before the record
    try:
        for record in reader:
            lines = consumed.copy()
            consumed.clear()
            start, line_no = line_no + 1, line_no + len(lines)
            if not any(c.strip() for c in record):
                continue
            if header is None:
                header = record
                yield record, "".join(lines), None, start
                continue
            unclosed = at_end[0] and _unclosed_quote(lines)
            if len(lines) > 1 and (unclosed or len(record) < len(header)):
                for i, line in enumerate(lines):
                    if line.strip():
                        problem = "unclosed_quote" if unclosed and i == 0 else None
                        yield _split_line(line), line.rstrip("\r\n"), problem, start + i
                continue
            yield record, "".join(lines).rstrip("\r\n"), "unclosed_quote" if unclosed else None, start
    except csv.Error as exc:
        raise FileRejected(f"cannot split rows after line {reader.line_num}: {exc}") from None


def _unclosed_quote(lines: list[str]) -> bool:
    """A record whose quoted cell is still open at the end of the file (the csv module would accept it)."""
    try:
        list(csv.reader(lines, strict=True))
    except csv.Error:
        return True
    return False


def _read_canonical_csv_rowwise(text: str) -> pl.DataFrame:
    """Slow path for irregular files: the csv module splits rows; reader problems are rejected per row."""
    old_limit = csv.field_size_limit(_MAX_FIELD_CHARS)
    try:
        records = _records(text)
        first = next(records, None)
        if first is None:
            raise FileRejected("empty file (no header line)")
        header = [canonical_name(c) for c in first[0]]
        _check_header(header)
        width = len(header)
        wanted = {name: header.index(name) for name in CANONICAL_INPUT_COLUMNS if name in header}
        values: dict[str, list[str | None]] = {name: [] for name in wanted}
        meta: dict[str, list[str | None]] = {"raw": [], "reject_code": [], "reject_reason": []}
        lines: list[int] = []
        for row, raw, problem, line in records:  # only irregular files take this path
            damaged = _UNDECODABLE.search(raw) is not None
            code: str | None
            reason: str | None
            if problem == "unclosed_quote":
                code, reason = problem, "a quoted cell is never closed: the file is cut off or has a stray quote"
            elif damaged:
                code, reason = "bad_encoding", "bytes that are not valid in the file's encoding (shown as \\xNN)"
            elif len(row) != width:
                code, reason = "ragged_row", f"row has {len(row)} cells, header has {width} (line {line})"
            else:
                code = reason = None
            for name, position in wanted.items():
                values[name].append(None if code else row[position])
            meta["raw"].append(_shown(raw) if damaged else raw)
            meta["reject_code"].append(code)
            meta["reject_reason"].append(reason)
            lines.append(line)
    finally:
        csv.field_size_limit(old_limit)
    frame = pl.DataFrame(
        {**values, **meta}, schema={**dict.fromkeys(values, pl.String), **dict.fromkeys(meta, pl.String)}
    )
    frame = frame.with_columns(
        source_row=pl.int_range(1, pl.len() + 1, dtype=pl.Int64), source_line=pl.Series(lines, dtype=pl.Int64)
    )
    return pl.concat([empty_raw_frame(), frame], how="diagonal_relaxed")


# ---------------------------------------------------------------------------------------------------
# Parquet

_PARQUET_ALLOWED = {
    "text": (pl.String,),
    "money": (pl.String, pl.Decimal, pl.Float64, pl.Float32),
    "time": (pl.String, pl.Datetime, pl.Date),
}
_PARQUET_KIND = {"amount": "money", "balance_after": "money", "booked_at": "time"}
FLOAT_CENT_TOLERANCE = 1e-6
"""A float money value is taken when it is this close to a whole number of cents (x * 100)."""
_FLOAT_MAX_CENTS = float(2**53)
"""Beyond 2**53 cents a float64 cannot tell one cent from the next."""
_FLOAT_REJECT = {"amount": ("bad_amount", "amount"), "balance_after": ("bad_balance", "balance")}


def float_money(cells: pl.DataFrame, column: str, canonical: str) -> pl.DataFrame:
    """A float money column (what pandas and Spark write) as exact decimal text: a value within
    FLOAT_CENT_TOLERANCE of a whole number of cents becomes that amount ('12.30'); any other value (0.125,
    noise beyond the tolerance, NaN, inf) becomes null and its row is rejected (`bad_amount` /
    `bad_balance`) with the value in the reason, so the row goes to quarantine, never the file."""
    x = pl.col(column).cast(pl.Float64)
    cents = x * 100
    whole = cents.round(0)
    exact = x.is_finite() & (whole.abs() < _FLOAT_MAX_CENTS) & ((cents - whole).abs() < FLOAT_CENT_TOLERANCE)
    c = whole.cast(pl.Int64, strict=False)
    text = pl.concat_str(
        pl.when(c < 0).then(pl.lit("-")).otherwise(pl.lit("")),
        (c.abs() // 100).cast(pl.String),
        pl.lit("."),
        (c.abs() % 100).cast(pl.String).str.zfill(2),
    )
    code, noun = _FLOAT_REJECT[canonical]
    bad = x.is_not_null() & ~exact
    reason = pl.format(
        "not an exact {} (a float that is not a whole number of cents: money is never rounded) in column '{}': '{}'",
        pl.lit(noun),
        pl.lit(canonical),
        x.cast(pl.String),
    )
    return cells.with_columns(
        pl.when(exact).then(text).otherwise(None).alias(column),
        pl.when(bad).then(pl.lit(code)).alias(f"_{column}_code"),
        pl.when(bad).then(reason).alias(f"_{column}_reason"),
    )


def _unreadable(exc: Exception) -> FileRejected:
    first_line = (str(exc).splitlines() or [""])[0][:160]
    return FileRejected(f"not a readable Parquet file ({type(exc).__name__}: {first_line})")


def read_canonical_parquet(path: Path) -> pl.DataFrame:
    try:
        schema = pl.read_parquet_schema(path)
    except Exception as exc:  # noqa: BLE001 - pyarrow/polars raise several types for corrupt files
        raise _unreadable(exc) from None
    names = list(schema)
    header = [canonical_name(c) for c in names]
    _check_header(header)
    for name, canonical in zip(names, header, strict=True):
        if canonical not in CANONICAL_INPUT_COLUMNS:
            continue
        kind = _PARQUET_KIND.get(canonical, "text")
        allowed = _PARQUET_ALLOWED[kind]
        dtype = schema[name]
        if not isinstance(dtype, allowed) and dtype not in allowed:
            raise FileRejected(
                f"column '{name}' has type {dtype}; expected one of "
                f"{', '.join(a.__name__ if isinstance(a, type) else str(a) for a in allowed)}"
                + (" (money: decimal, text, or float exact at cents)" if kind == "money" else "")
                + (
                    " (an id must be text: a number loses leading zeros)"
                    if kind == "text" and dtype.is_integer()
                    else ""
                )
            )
    try:
        if pq.ParquetFile(path).metadata.num_rows == 0:
            return empty_raw_frame()
        cells = pl.read_parquet(path, columns=names)
    except Exception as exc:  # noqa: BLE001 - a corrupt page surfaces only when the data is read
        raise _unreadable(exc) from None
    cells = cells.with_columns(
        pl.col(c).dt.strftime("%Y-%m-%d %H:%M:%S%.f")
        for c in names
        if schema[c] == pl.Date or isinstance(schema[c], pl.Datetime)
    )
    floats = [
        (name, canonical)
        for name, canonical in zip(names, header, strict=True)
        if _PARQUET_KIND.get(canonical) == "money" and schema[name].is_float()
    ]
    if not floats:
        return _to_raw_frame(cells, header)
    raw_text = pl.concat_str([pl.col(c).cast(pl.String).fill_null("") for c in names], separator=",")
    cells = cells.with_columns(raw_text.alias("_raw_as_written"))
    for name, canonical in floats:
        cells = float_money(cells, name, canonical)
    return with_float_rejects(cells, header, [name for name, _ in floats])


def with_float_rejects(cells: pl.DataFrame, header: list[str], floats: list[str]) -> pl.DataFrame:
    """The raw frame of `cells` (with `float_money` applied to `floats`), the first float reject of each
    row as its reject code and reason, and `raw` as the cells were written (the float values)."""
    meta = [c for c in cells.columns if c.startswith("_")]
    frame = _to_raw_frame(cells.drop(meta), header)
    code = cells.select(pl.coalesce([pl.col(f"_{c}_code") for c in floats])).to_series()
    reason = cells.select(pl.coalesce([pl.col(f"_{c}_reason") for c in floats])).to_series()
    return frame.with_columns(
        reject_code=pl.coalesce(pl.col("reject_code"), pl.lit(code)),
        reject_reason=pl.coalesce(pl.col("reject_reason"), pl.lit(reason)),
        raw=pl.lit(cells["_raw_as_written"]) if "_raw_as_written" in cells.columns else pl.col("raw"),
    )
