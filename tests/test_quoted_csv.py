"""Quoted canonical CSV on the native path (pyarrow.csv, `liushui.ingest.native_csv`): quotes, doubled
quotes and line breaks inside quoted cells are handled natively, ragged rows are quarantined with their
physical line (nothing padded), money stays text until the parser makes it exact; what the native reader
cannot split exactly falls to the row-by-row reader, which gives the same rows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from liushui.ingest.canonical import _read_canonical_csv_rowwise, read_canonical_csv, read_canonical_text
from liushui.ingest.inbox import ingest_files
from liushui.ingest.native_csv import split_native

HEADER = '"account_id","booked_at","amount","currency","balance_after","counterparty_name","description"\r\n'


def ingest(path: Path):
    return ingest_files(
        [path],
        known_file_hashes=set(),
        is_known_txn=lambda ids: pl.Series([False] * len(ids)),
        batch_id="b1",
        latest_booking=date(2026, 11, 28),
    )


def write(tmp_path: Path, data: bytes, name: str = "q.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# Line 1 header; a row with "" cells (line 2); a quoted comma (line 3); a memo over lines 4-5 (LF inside
# the quotes) and one over lines 6-8 (CRLF, then a blank line, inside the quotes); a short row (line 9);
# a blank line (10); a long row (11); a doubled quote (12).
QUOTED = (
    HEADER
    + '"A1","2026-01-05 10:00:00","-100.50","CNY","","",""\r\n'
    + '"A1","2026-01-06 12:00:00","8000.00","CNY","7899.50","某公司, 有限","代发工资"\r\n'
    + '"A1","2026-01-07 09:30:00","-35.00","","","星巴克","第一行\n第二行"\r\n'
    + '"A1","2026-01-08 09:30:00","0.10","CNY","","","a\r\n\r\nb"\r\n'
    + '"A1","2026-01-09 09:00:00","-5.00"\r\n'
    + "\r\n"
    + '"A1","2026-01-10 09:00:00","-6.00","CNY","","x","y","extra"\r\n'
    + '"A1","2026-01-11 09:00:00","1,000.00","CNY","","他说""你好""",""\r\n'
).encode("utf-8")


def test_quoted_file_takes_the_native_path_with_rows_and_lines():
    records = split_native(QUOTED)
    assert records is not None
    assert records.cells.select("_row", "_line", "c2").rows() == [
        (1, 2, "-100.50"),
        (2, 3, "8000.00"),
        (3, 4, "-35.00"),
        (4, 6, "0.10"),
        (7, 12, "1,000.00"),
    ]
    assert records.ragged.rows() == [
        (5, 9, '"A1","2026-01-09 09:00:00","-5.00"', 3),
        (6, 11, '"A1","2026-01-10 09:00:00","-6.00","CNY","","x","y","extra"', 8),
    ]


def test_quoted_cells_load_exactly_and_ragged_rows_are_quarantined_with_their_line(tmp_path):
    result = ingest(write(tmp_path, QUOTED))
    t = result.transactions.sort("source_row")
    assert t.select("source_row", "amount", "currency", "balance_after", "counterparty_name", "description").rows() == [
        (1, Decimal("-100.50"), "CNY", None, None, None),
        (2, Decimal("8000.00"), "CNY", Decimal("7899.50"), "某公司, 有限", "代发工资"),
        (3, Decimal("-35.00"), "CNY", None, "星巴克", "第一行\n第二行"),
        (4, Decimal("0.10"), "CNY", None, None, "a\r\n\r\nb"),
        (7, Decimal("1000.00"), "CNY", None, '他说"你好"', None),
    ]
    assert result.quarantine.select("source_row", "reason_code", "reason", "raw").rows() == [
        (5, "ragged_row", "q.csv, row 5: row has 3 cells, header has 7 (line 9)", '"A1","2026-01-09 09:00:00","-5.00"'),
        (
            6,
            "ragged_row",
            "q.csv, row 6: row has 8 cells, header has 7 (line 11)",
            '"A1","2026-01-10 09:00:00","-6.00","CNY","","x","y","extra"',
        ),
    ]
    files = result.source_files.row(0, named=True)
    assert (files["status"], files["rows_read"], files["rows_ok"], files["rows_rejected"]) == ("partial", 7, 5, 2)


def test_a_quarantined_quoted_row_keeps_its_cells_apart_in_raw(tmp_path):
    data = (HEADER + '"A1","2026-01-05 10:00:00","1.005","CNY","","a, b","say ""hi"""\n').encode()
    result = ingest(write(tmp_path, data))
    assert result.quarantine.select("reason_code", "raw").rows() == [
        ("bad_amount", 'A1,2026-01-05 10:00:00,1.005,CNY,,"a, b","say ""hi"""'),
    ]


def test_unquoted_ragged_file_is_native_too(tmp_path):
    data = b"account_id,booked_at,amount\nA1,2026-01-05,1.00\nA1,2026-01-06\nA1,2026-01-07,3.00,x\nA1,2026-01-08,4.00\n"
    raw = read_canonical_csv(write(tmp_path, data))
    assert raw.select("source_row", "source_line", "amount", "reject_code").rows() == [
        (1, 2, "1.00", None),
        (2, 3, None, "ragged_row"),
        (3, 4, None, "ragged_row"),
        (4, 5, "4.00", None),
    ]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("quote left open at the end", HEADER + '"A1","2026-01-05 10:00:00","-1.00","CNY","","x","cut'),
        (
            "stray quote swallowing lines",
            HEADER + 'A1,2026-01-05 10:00:00,-1.00,CNY,,x,"oops\nA1,2026-01-06 10:00:00,-2.00,CNY,,y,z\n'
            'A1,2026-01-07 10:00:00,-3.00,CNY,,"p",q\n',
        ),
    ],
)
def test_what_the_native_reader_cannot_split_exactly_goes_row_by_row(tmp_path, name, data):
    assert split_native(data.encode()) is None, name
    raw = read_canonical_csv(write(tmp_path, data.encode()))
    assert raw.drop("raw").equals(_read_canonical_csv_rowwise(data).drop("raw"))
    assert raw["reject_code"].drop_nulls().len() >= 1


@pytest.mark.parametrize(
    "data",
    [
        QUOTED.decode(),
        HEADER + '"A1","2026-01-05","1.00","CNY","","",""\n\n\n"A1","2026-01-06","2.00","CNY","","",""\n',
        HEADER + '"A1","2026-01-05","1.00","CNY","","","x"\r"A1","2026-01-06","2.00"\r',
        HEADER + ',,,,,,\n"A1","2026-01-05","1.00","CNY","","",""\n  \n',
        HEADER + '"A1","2026-01-05","1.00","CNY","","","multi\nline\nmemo"\n"A1","2026-01-06"\n',
    ],
)
def test_native_and_row_by_row_readers_give_the_same_rows(data):
    """raw differs in form only (the native reader writes the cells back as CSV); every other column agrees."""
    native = split_native(data.encode())
    assert native is not None
    assert read_canonical_text(data).drop("raw").equals(_read_canonical_csv_rowwise(data).drop("raw"))
