"""A bank export as text, the only Python-level work of reading one: decoding the bytes (the profile's
encoding, or ``auto``), finding the header line, and splitting the data section into records and cells
with the csv module, up to the first footer line. Cells stay text; `profile_read` does the cell work."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from liushui.ingest.canonical import binary_kind
from liushui.ingest.profile_spec import Profile, ProfileSpec, norm_header
from liushui.ingest.workbook import WorkbookError, is_workbook, sheet_csv

CHUNK_BYTES = 16 * 1024 * 1024  # incremental decoding chunk
BINARY_SNIFF_BYTES = 8192
_FIELD_SIZE_LIMIT = 64 * 1024 * 1024


class LayoutError(Exception):
    """A whole file cannot be read with a layout (unknown, empty, binary, no header, undecodable)."""


# Decoding -------------------------------------------------------------------------------------------
def auto_encodings(head: bytes) -> list[str]:
    """The encodings ``auto`` tries, in order: the byte-order mark's, else strict utf-8 then gb18030."""
    if head.startswith(codecs.BOM_UTF8):
        return ["utf-8-sig"]
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return ["utf-16"]
    return ["utf-8", "gb18030"]


def _sniff_binary(head: bytes, name: str) -> None:
    """One NUL inside a cell is a bad row (quarantined by `parse`), not a binary file."""
    kind = binary_kind(head)
    if kind is not None:
        raise LayoutError(f"{name}: binary content ({kind}), not a text export")


def _decode_stream(path: Path, encoding: str, errors: str = "strict") -> str:
    """Decode a file with an incremental decoder in chunks (no second full-size bytes copy)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    parts: list[str] = []
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            parts.append(decoder.decode(chunk))
        parts.append(decoder.decode(b"", final=True))
    return "".join(parts)


def decode_file(path: Path, encoding: str) -> str:
    """The file's text. ``auto``: BOM, strict utf-8, gb18030, then charset-normalizer."""
    name = path.name
    try:
        with path.open("rb") as fh:
            head = fh.read(BINARY_SNIFF_BYTES)
    except OSError as exc:
        raise LayoutError(f"{name}: cannot read file: {exc.strerror or exc}") from None
    if not head.strip():
        raise LayoutError(f"{name}: empty file")
    _sniff_binary(head, name)
    if encoding != "auto":
        try:
            return _decode_stream(path, encoding)
        except UnicodeDecodeError as exc:
            raise LayoutError(
                f"{name}: cannot decode as {encoding} ({exc.reason} at byte {exc.start}); "
                f"set the profile's encoding to 'auto' or the right one"
            ) from None
    for enc in auto_encodings(head):
        try:
            return _decode_stream(path, enc)
        except UnicodeDecodeError:
            continue
    try:  # last resort: statistical detection
        from charset_normalizer import from_path

        best = from_path(path).best()
    except Exception:  # noqa: BLE001 - any failure here means "undecodable"
        best = None
    if best is None or best.encoding is None:
        raise LayoutError(f"{name}: undecodable: not utf-8, not gb18030/GBK and no other encoding detected")
    return str(best)


def _export_text(path: Path, spec: ProfileSpec) -> str:
    """The decoded export without its BOM (an Excel workbook: the profile's sheet as CSV text); LayoutError
    when it is empty or binary after all."""
    if is_workbook(path):
        try:
            text = sheet_csv(path, spec.sheet, spec.delimiter)
        except WorkbookError as exc:
            raise LayoutError(f"{path.name}: {exc}") from None
        if not text.strip():
            raise LayoutError(f"{path.name}: empty sheet {spec.sheet!r}")
        return text
    text = decode_file(path, spec.encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise LayoutError(f"{path.name}: empty file")
    ctrl = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\t\r\n\f\v")
    if ctrl > 8:
        raise LayoutError(f"{path.name}: binary content (control characters), not a text export")
    return text


# Lines and cells ------------------------------------------------------------------------------------
def split_cells(line: str, delimiter: str) -> list[str]:
    """The cells of one physical line (a line the csv module cannot split: split on the delimiter)."""
    try:
        return next(csv.reader([line], delimiter=delimiter, skipinitialspace=True), [])
    except csv.Error:
        return line.split(delimiter)


def find_header(lines: list[str], profile: Profile, limit: int) -> int | None:
    """The index of the first of `lines[:limit]` holding every column of the profile's header signature."""
    want = profile.signature_norm
    for i, line in enumerate(lines[:limit]):
        cells = {norm_header(c) for c in split_cells(line, profile.spec.delimiter)}
        if want <= cells:
            return i
    return None


@dataclass
class SplitExport:
    """A bank export split into its header, the preamble above it and the data records (cells as text)."""

    header: list[str]  # normalised header names, trailing empty names dropped
    header_line: int  # 1-based physical line of the header (0: the file has none, `column_names` name the cells)
    preamble: str
    cells: list[list[str]]  # one list per data record (trailing empty cells beyond the header dropped)
    n_cells: list[int]
    raws: list[str]
    lines: list[int]  # 1-based physical line where each record starts
    workbook: bool = False  # read from an Excel sheet (dates as YYYY-MM-DD HH:MM:SS)


def split_export(path: Path, profile: Profile) -> SplitExport:
    """Decode `path` and split it with `profile`; LayoutError when it has no header or no data rows."""
    spec = profile.spec
    stream = io.StringIO(_export_text(path, spec), newline="")
    if spec.column_names is not None:  # no header line: the cells by position, data from line 1
        header, header_line, preamble = [norm_header(c) for c in spec.column_names], 0, ""
    else:
        head_lines = _lines_through_header(stream, profile, path.name)
        header = [norm_header(c) for c in split_cells(head_lines[-1], spec.delimiter)]
        header_line, preamble = len(head_lines), "".join(head_lines[:-1])
    while header and not header[-1]:
        header.pop()
    records = _Records(len(header))
    _read_records(stream, spec, records, header_line=header_line, name=path.name)
    if not records.cells:
        if not header_line:
            raise LayoutError(f"{path.name}: no data rows (profile '{profile.name}', a file without a header line)")
        raise LayoutError(
            f"{path.name}: header found on line {header_line} (profile '{profile.name}') but no data rows follow"
        )
    return SplitExport(
        header,
        header_line,
        preamble,
        records.cells,
        records.n_cells,
        records.raws,
        records.lines,
        is_workbook(path),
    )


def _lines_through_header(stream: io.StringIO, profile: Profile, name: str) -> list[str]:
    """The physical lines up to and including the header line (the stream is left just after it)."""
    limit = profile.spec.header_search_lines
    head_lines: list[str] = []
    for line in stream:
        head_lines.append(line)
        if find_header([line], profile, 1) == 0:
            return head_lines
        if len(head_lines) >= limit:
            break
    raise LayoutError(
        f"{name}: no header line found matching profile '{profile.name}' within the first {limit} lines "
        f"(looked for a line with the columns {', '.join(profile.header_signature)})"
    )


class _Records:
    """The data records split so far: cells cut or padded to the header's width, their cell counts as
    written and their raw text."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.cells: list[list[str]] = []
        self.n_cells: list[int] = []
        self.raws: list[str] = []
        self.lines: list[int] = []

    def add(self, record: list[str], raw: str, line: int) -> None:
        if not "".join(record).strip():
            return  # blank line (or only delimiters): skipped, not numbered
        self.lines.append(line)
        while len(record) > self.width and not record[-1].strip():
            record.pop()
        self.n_cells.append(len(record))
        if len(record) < self.width:
            record = record + [""] * (self.width - len(record))
        self.cells.append(record[: self.width])
        self.raws.append(raw)


class _DataLines:
    """The physical lines of the data section, for the csv reader: they end at a footer line (matched
    where a record starts). Keeps the lines of the record being read until `take_record_lines`."""

    def __init__(self, stream: io.StringIO, footer_patterns: list[str]) -> None:
        self._stream = stream
        self._footers = [re.compile(p) for p in footer_patterns]
        self._record_start = True
        self._consumed: list[str] = []

    def __iter__(self) -> Iterator[str]:
        for line in self._stream:
            if self._record_start and self._footers:
                probe = line.strip()
                if any(f.search(probe) for f in self._footers):
                    return  # footer: this line and everything after it is not data
            self._record_start = False
            self._consumed.append(line)
            yield line

    def take_record_lines(self) -> list[str]:
        """The physical lines of the record the reader just returned; the next line starts a record."""
        lines = self._consumed.copy()
        self._consumed.clear()
        self._record_start = True
        return lines


def _read_records(stream: io.StringIO, spec: ProfileSpec, records: _Records, *, header_line: int, name: str) -> None:
    """Split the rest of `stream` into `records` (one per csv record, a stray quote's lines one each)."""
    lines = _DataLines(stream, spec.footer_patterns)
    old_limit = csv.field_size_limit(_FIELD_SIZE_LIMIT)
    reader = csv.reader(lines, delimiter=spec.delimiter, skipinitialspace=True)
    line_no = header_line  # physical lines read so far
    try:
        for record in reader:
            physical = lines.take_record_lines()
            start, line_no = line_no + 1, line_no + len(physical)
            if len(physical) > 1 and len(record) < records.width:
                # A quoted field spanned several lines but the record is still short: most likely a
                # stray quote swallowed the following lines. Split each physical line on its own so
                # every line stays one row (the ragged ones are rejected, not lost).
                for i, line in enumerate(physical):
                    records.add(split_cells(line, spec.delimiter), line.rstrip("\r\n"), start + i)
                continue
            records.add(record, "".join(physical).rstrip("\r\n"), start)
    except csv.Error as exc:
        raise LayoutError(f"{name}: cannot split rows after line {reader.line_num + header_line}: {exc}") from None
    finally:
        csv.field_size_limit(old_limit)
