"""Excel workbooks (.xlsx, .xls) as CSV text, so that the canonical reader and the layout profiles read
them exactly like a CSV export.

fastexcel (calamine) gives every cell as text: a number cell as Excel shows it at full precision (15
significant digits: ``-100.5``, ``0.125``, ``0.3`` for the float 0.1 + 0.2), a date cell as
``YYYY-MM-DD HH:MM:SS``, an empty cell as empty. Money is never rounded here: a number cell with more than
two decimals (``0.125``, ``0.0000001``) stays as written and the parser quarantines its row, like a CSV
cell would be.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import polars as pl

XLSX_MAGIC = b"PK\x03\x04"
XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"


class WorkbookError(Exception):
    """The workbook, or the sheet asked for, cannot be read (the message says why)."""


def workbook_kind(head: bytes, path: Path) -> str | None:
    """'xlsx' for a ZIP holding an Excel workbook, 'xls' for a legacy OLE2 workbook, else None (other ZIP
    and OLE2 files stay binary content)."""
    if head.startswith(XLSX_MAGIC):
        try:
            with zipfile.ZipFile(path) as archive:
                names = set(archive.namelist())
        except (zipfile.BadZipFile, OSError):
            return None
        return "xlsx" if "xl/workbook.xml" in names else None
    if head.startswith(XLS_MAGIC) and path.suffix.lower() in (".xls", ".xlsx"):
        return "xls"
    return None


def is_workbook(path: Path) -> bool:
    try:
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError:
        return False
    return workbook_kind(head, path) is not None


def sheet_csv(path: Path, sheet: str | int = 0, delimiter: str = ",") -> str:
    """One sheet (name, or 0-based index; default the first) as CSV text, one line per row, every cell as
    text (quoted where needed)."""
    import fastexcel

    try:
        reader = fastexcel.read_excel(str(path))
    except Exception as exc:  # noqa: BLE001 - fastexcel raises its own error types for corrupt files
        raise WorkbookError(f"not a readable Excel workbook ({_first_line(exc)})") from None
    names = list(reader.sheet_names)
    if isinstance(sheet, int) and not 0 <= sheet < len(names) or isinstance(sheet, str) and sheet not in names:
        raise WorkbookError(f"no sheet {sheet!r} in the workbook (sheets: {', '.join(map(repr, names))})")
    try:
        frame = reader.load_sheet(sheet, header_row=None, dtypes="string").to_polars()
    except Exception as exc:  # noqa: BLE001
        raise WorkbookError(f"cannot read sheet {sheet!r} ({_first_line(exc)})") from None
    if frame.width == 0 or frame.height == 0:
        return ""
    frame = frame.select(pl.all().cast(pl.String))
    return frame.write_csv(include_header=False, separator=delimiter, quote_style="necessary")


def _first_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:160]}"
