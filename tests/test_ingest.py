"""Ingest of inbox files: formats, whole-file failures, dedupe, and nothing lost."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from liushui.ingest.inbox import inbox_files, ingest_files

HEADER = "account_id,booked_at,amount,currency,balance_after,counterparty_name,counterparty_account,description\n"
ROWS = (
    "A1,2026-01-05 10:00:00,8000.00,CNY,8000.00,公司,,代发工资\nA1,2026-01-06 12:00:00,-100.50,CNY,7899.50,美团,,外卖\n"
)


def ingest(paths: list[Path], known: set[str] | None = None, known_txn: set[str] | None = None):
    known_txn = known_txn or set()
    return ingest_files(
        paths,
        known_file_hashes=known or set(),
        is_known_txn=lambda ids: ids.is_in(pl.Series(list(known_txn), dtype=pl.String).implode()),
        batch_id="b1",
        latest_booking=date(2026, 11, 28),
    )


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def test_canonical_csv_loads(tmp_path):
    result = ingest([write(tmp_path / "a.csv", HEADER + ROWS)])
    assert result.transactions["amount"].to_list() == [Decimal("8000.00"), Decimal("-100.50")]
    files = result.source_files.row(0, named=True)
    assert (files["status"], files["profile"], files["rows_read"], files["rows_ok"], files["rows_rejected"]) == (
        "loaded",
        "canonical_csv",
        2,
        2,
        0,
    )


def test_parquet_with_decimal_and_timestamp_equals_csv(tmp_path):
    csv = ingest([write(tmp_path / "a.csv", HEADER + ROWS)]).transactions
    frame = pl.read_csv(tmp_path / "a.csv", infer_schema=False).with_columns(
        pl.col("booked_at").str.to_datetime(),
        pl.col("amount").cast(pl.Decimal(18, 2)),
        pl.col("balance_after").cast(pl.Decimal(18, 2)),
    )
    frame.write_parquet(tmp_path / "b.parquet")
    parquet = ingest([tmp_path / "b.parquet"]).transactions
    assert parquet["txn_id"].to_list() == csv["txn_id"].to_list()  # same transaction, same id


def test_parquet_with_float_money_exact_at_cents_loads(tmp_path):
    pl.DataFrame({"account_id": ["A"], "booked_at": ["2026-01-01"], "amount": [1.5]}).write_parquet(
        tmp_path / "f.parquet"
    )
    result = ingest([tmp_path / "f.parquet"])
    assert result.source_files.row(0, named=True)["status"] == "loaded"
    assert result.transactions["amount"].to_list() == [Decimal("1.50")]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file (0 bytes)"),
        (b"\x00\x01\x02binary\x00junk", "binary content"),
        (b"datum,wert\n1,2\n", "unknown layout"),
        (b"account_id,amount\nA,1\n", "missing required column(s) booked_at"),
    ],
)
def test_whole_file_failures_are_recorded_with_a_clear_error(tmp_path, content, message):
    result = ingest([write(tmp_path / "bad.csv", content)])
    row = result.source_files.row(0, named=True)
    assert row["status"] == "rejected"
    assert row["error"].startswith("bad.csv: ") and message in row["error"]


def test_ragged_rows_go_to_quarantine_and_the_rest_loads(tmp_path):
    text = HEADER + ROWS + "A1,2026-01-07 09:00:00,-5.00\n" + "A1,2026-01-08 09:00:00,-6.00,CNY,7888.50,x,,y\n"
    result = ingest([write(tmp_path / "r.csv", text)])
    assert result.transactions.height == 3
    assert result.quarantine["reason_code"].to_list() == ["ragged_row"]
    assert result.quarantine["source_row"].to_list() == [3]
    assert result.quarantine["reason"][0] == "r.csv, row 3: row has 3 cells, header has 8 (line 4)"
    assert result.source_files["status"].to_list() == ["partial"]


def test_overlapping_exports_deduplicate_and_count_duplicates(tmp_path):
    a = write(tmp_path / "a.csv", HEADER + ROWS)
    b = write(
        tmp_path / "b.csv",
        HEADER + ROWS.splitlines(keepends=True)[1] + "A1,2026-01-09 09:00:00,-1.00,CNY,7898.50,x,,y\n",
    )
    result = ingest([a, b])
    assert result.transactions.height == 3
    files = {r["file_name"]: r for r in result.source_files.iter_rows(named=True)}
    assert files["b.csv"]["rows_duplicate"] == 1 and files["a.csv"]["rows_duplicate"] == 0


def test_known_files_are_skipped_and_known_transactions_not_repeated(tmp_path):
    a = write(tmp_path / "a.csv", HEADER + ROWS)
    first = ingest([a])
    again = ingest([a], known=set(first.source_files["file_sha256"]))
    assert again.skipped_files == 1 and again.source_files.is_empty()
    renamed = write(tmp_path / "c.csv", HEADER + ROWS + "A1,2026-02-01 09:00:00,-1.00,CNY,,x,,y\n")
    later = ingest([renamed], known_txn=set(first.transactions["txn_id"]))
    assert later.transactions.height == 1
    assert later.source_files["rows_duplicate"].to_list() == [2]


def test_inbox_lists_every_file_but_hidden_ones_sorted(tmp_path):
    """A workbook or a note in the inbox is listed (and later rejected with its reason), never passed over."""
    for name in ("b.csv", "a.parquet", "notes.md", "c.txt", "d.xlsx", ".DS_Store", ".~lock.b.csv#"):
        (tmp_path / name).write_text("x")
    (tmp_path / "subfolder").mkdir()
    assert [p.name for p in inbox_files(tmp_path)] == ["a.parquet", "b.csv", "c.txt", "d.xlsx", "notes.md"]
    assert inbox_files(tmp_path / "missing") == []


def test_rows_in_equal_transactions_plus_quarantine(tmp_path):
    text = HEADER + ROWS + "A1,not-a-date,1,CNY,,,,\n" + ",2026-01-01,1,CNY,,,,\n" + "A1,2026-01-01,1e5,CNY,,,,\n"
    result = ingest([write(tmp_path / "m.csv", text)])
    rows_in = int(result.source_files["rows_read"].sum())
    assert rows_in == 5 == result.transactions.height + result.quarantine.height


def test_float_parquet_money_exact_at_cents_loads_and_the_rest_is_quarantined(tmp_path):
    """pandas / Spark write money as float64: a value that is a whole number of cents (within 1e-6 of a cent)
    is taken as that exact Decimal; any other value sends its row to quarantine with the value, never the file."""
    amounts = [12.3, 0.1 + 0.2, -100.5, 8000.0, 0.125, 1.0000001, float("nan"), float("inf"), 5.0]
    balances = [1.0, 2.0, None, 3.0, 4.0, 5.0, 6.0, 7.0, 0.005]
    n = len(amounts)
    pl.DataFrame(
        {
            "account_id": ["A1"] * n,
            "booked_at": [f"2026-01-{d:02d} 10:00:00" for d in range(1, n + 1)],
            "amount": pl.Series(amounts, dtype=pl.Float64),
            "currency": ["CNY"] * n,
            "balance_after": pl.Series(balances, dtype=pl.Float64),
        }
    ).write_parquet(tmp_path / "floats.parquet")
    result = ingest([tmp_path / "floats.parquet"])
    good = result.transactions.sort("source_row")
    assert good["amount"].dtype == pl.Decimal(18, 2)
    assert good.select("source_row", "amount", "balance_after").rows() == [
        (1, Decimal("12.30"), Decimal("1.00")),
        (2, Decimal("0.30"), Decimal("2.00")),
        (3, Decimal("-100.50"), None),
        (4, Decimal("8000.00"), Decimal("3.00")),
    ]
    assert result.quarantine.sort("source_row").select("source_row", "reason_code", "reason").rows() == [
        (
            r,
            code,
            f"floats.parquet, row {r}: not an exact {noun} (a float that is not a whole number of cents: "
            f"money is never rounded) in column '{column}': '{value}'",
        )
        for r, code, noun, column, value in [
            (5, "bad_amount", "amount", "amount", "0.125"),
            (6, "bad_amount", "amount", "amount", "1.0000001"),
            (7, "bad_amount", "amount", "amount", "NaN"),
            (8, "bad_amount", "amount", "amount", "inf"),
            (9, "bad_balance", "balance", "balance_after", "0.005"),
        ]
    ]
    assert result.quarantine.filter(pl.col("source_row") == 5)["raw"].item() == ("A1,2026-01-05 10:00:00,0.125,CNY,4.0")
    row = result.source_files.row(0, named=True)
    assert (row["status"], row["rows_read"], row["rows_ok"], row["rows_rejected"]) == ("partial", 9, 4, 5)


def test_float_parquet_float32_and_all_exact_loads_every_row(tmp_path):
    pl.DataFrame(
        {
            "account_id": ["A1", "A1"],
            "booked_at": ["2026-01-01 10:00:00", "2026-01-02 10:00:00"],
            "amount": pl.Series([1.5, -2.25], dtype=pl.Float32),
        }
    ).write_parquet(tmp_path / "f32.parquet")
    result = ingest([tmp_path / "f32.parquet"])
    assert result.transactions["amount"].to_list() == [Decimal("1.50"), Decimal("-2.25")]
    assert result.quarantine.height == 0


def _xlsx(path: Path, sheets: dict[str, list[list[object]]]) -> Path:
    """A tiny workbook written with xlsxwriter: str cells as text, numbers as number cells, datetimes as
    date cells (formatted as Excel shows them)."""
    import datetime as dt

    xlsxwriter = pytest.importorskip("xlsxwriter")
    book = xlsxwriter.Workbook(str(path))
    date_format = book.add_format({"num_format": "yyyy/mm/dd"})
    for name, rows in sheets.items():
        sheet = book.add_worksheet(name)
        for r, row in enumerate(rows):
            for c, value in enumerate(row):
                if isinstance(value, dt.datetime):
                    sheet.write_datetime(r, c, value, date_format)
                elif isinstance(value, str):
                    sheet.write_string(r, c, value)
                elif value is not None:
                    sheet.write_number(r, c, value)
    book.close()
    return path


def test_canonical_xlsx_loads_with_number_and_date_cells(tmp_path):
    from datetime import datetime

    f = _xlsx(
        tmp_path / "canonical.xlsx",
        {
            "Sheet1": [
                ["account_id", "booked_at", "amount", "currency", "description"],
                ["6222000011112222", datetime(2026, 1, 5, 10, 30), -100.5, "CNY", "外卖"],
                ["6222000011112222", "2026-01-06 12:00:00", "8000.00", "CNY", "代发工资, 一月"],
                ["6222000011112222", datetime(2026, 1, 7), 0.125, "CNY", "not at cents"],
                ["6222000011112222", datetime(2026, 1, 8), 0.1 + 0.2, "CNY", "float noise"],
            ]
        },
    )
    result = ingest([f])
    row = result.source_files.row(0, named=True)
    assert (row["status"], row["profile"], row["rows_read"], row["rows_ok"]) == ("partial", "canonical_xlsx", 4, 3)
    assert result.transactions.sort("source_row").select("booked_at", "amount", "description").rows() == [
        (datetime(2026, 1, 5, 10, 30), Decimal("-100.50"), "外卖"),
        (datetime(2026, 1, 6, 12, 0), Decimal("8000.00"), "代发工资, 一月"),
        (datetime(2026, 1, 8), Decimal("0.30"), "float noise"),
    ]
    assert result.quarantine.select("source_row", "reason_code", "reason").rows() == [
        (
            3,
            "bad_amount",
            "canonical.xlsx, row 3: not an exact amount (more than 2 decimals: money is never rounded) in column "
            "'amount': '0.125'",
        )
    ]


def test_profiled_xlsx_on_a_named_sheet(tmp_path):
    from datetime import datetime

    from liushui.ingest.inbox import read_files

    pdir = tmp_path / "profiles"
    pdir.mkdir()
    (pdir / "demo_xlsx.yaml").write_text(
        "name: demo_xlsx\ndescription: Demo bank workbook, statement on sheet 'Statement'.\nsheet: Statement\n"
        "header_signature: [Posting Date, Details, Debit, Credit]\nfooter_patterns: ['^Closing balance']\n"
        "booked_at: {column: Posting Date, formats: ['%d/%m/%Y']}\n"
        "amount: {convention: split, income_column: Credit, expense_column: Debit}\n"
        "currency: {default: GBP}\n"
        "account_id: {preamble_regex: 'Account number:\\s*(?P<account_id>[0-9-]+)'}\n"
        "description_columns: [Details]\n",
        encoding="utf-8",
    )
    f = _xlsx(
        tmp_path / "march.xlsx",
        {
            "Cover": [["nothing here"]],
            "Statement": [
                ["Account number: 12-34-56-7890"],
                ["Posting Date", "Details", "Debit", "Credit"],
                [datetime(2025, 3, 1), "Opening deposit", None, 1500],
                ["05/03/2025", "Card payment TESCO", 42.1, None],
                ["Closing balance", None, None, 1457.9],
            ],
        },
    )
    (outcome,) = read_files(
        [f], known_file_hashes=set(), batch_id="b", latest_booking=date(2026, 1, 1), profiles_dir=pdir
    )
    assert outcome.file_row is not None and outcome.parsed is not None
    assert (outcome.file_row["status"], outcome.file_row["profile"]) == ("loaded", "demo_xlsx")
    assert outcome.parsed.good.select("account_id", "booked_at", "amount", "currency", "description").rows() == [
        ("12-34-56-7890", datetime(2025, 3, 1), Decimal("1500.00"), "GBP", "Opening deposit"),
        ("12-34-56-7890", datetime(2025, 3, 5), Decimal("-42.10"), "GBP", "Card payment TESCO"),
    ]


def test_a_zip_that_is_not_a_workbook_stays_rejected(tmp_path):
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("statement.csv", HEADER + ROWS)
    result = ingest([write(tmp_path / "statement.xlsx", buffer.getvalue())])
    row = result.source_files.row(0, named=True)
    assert row["status"] == "rejected"
    assert row["error"].startswith("statement.xlsx: binary content (a ZIP archive")
