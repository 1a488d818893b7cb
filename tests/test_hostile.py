"""Hostile and broken input: a corpus of cases, each with the outcome it must have (docs/hostile_input.md).

Every case is built in the test (no binary files in git), ingested with `ingest_files`, and checked for
- its exact outcome: file status, error substring, quarantine reason codes per row, loaded / duplicate rows;
- the accounting invariant: rows in = rows in `transactions` (new + counted duplicates) + rows in `quarantine`;
- no exception escaping `ingest_files` (a whole-file failure is a `rejected` source_files row).
A few representative cases also run through the real nightly flow into DuckDB.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path
from random import Random

import polars as pl
import pytest

from liushui.ingest.inbox import IngestResult, ingest_files

LATEST = date(2026, 11, 28)
HEADER = "account_id,booked_at,amount,currency,balance_after,counterparty_name,counterparty_account,description"
CMB_HEADER = "记账日期,货币,交易金额,联机余额,交易摘要,对手信息,客户摘要"
SQL_NAME = "x'); DROP TABLE transactions;--.csv"


def row(
    account: str = "6222000011112222",
    at: str = "2026-01-05 10:00:00",
    amount: str = "-100.50",
    currency: str = "CNY",
    balance: str = "",
    name: str = "美团",
    cp_account: str = "",
    memo: str = "外卖",
) -> str:
    return ",".join((account, at, amount, currency, balance, name, cp_account, memo))


def canonical(*rows: str, header: str = HEADER, newline: str = "\n") -> str:
    return newline.join((header, *rows)) + newline


GOOD = row()
GOOD2 = row(at="2026-01-06 12:00:00", amount="8000.00", name="某公司", memo="代发工资")
GOOD3 = row(at="2026-01-07 09:30:00", amount="-35.00", name="星巴克", memo="咖啡")


def utf8(text: str) -> bytes:
    return text.encode("utf-8")


def parquet(frame: pl.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.write_parquet(buffer)
    return buffer.getvalue()


PARQUET_OK = pl.DataFrame(
    {
        "account_id": ["6222000011112222"] * 2,
        "booked_at": ["2026-01-05 10:00:00", "2026-01-06 12:00:00"],
        "amount": [Decimal("-100.50"), Decimal("8000.00")],
        "description": ["外卖", "代发工资"],
    },
    schema_overrides={"amount": pl.Decimal(18, 2)},
)


def zip_bytes() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("statement.csv", canonical(GOOD))
    return buffer.getvalue()


PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89"


@dataclass(frozen=True)
class Case:
    """One hostile input and the outcome it must have.

    `files`: (name, content) pairs, ingested in order. Expectations are about the whole ingest:
    `status` per file (source_files order), `quarantined` the reason codes of the quarantine rows in
    (file, row) order, `new` / `duplicates` / `skipped` the transaction and file counts, `error` a
    substring of the (single) rejected file's error, `reason` a substring of the first quarantine reason,
    `check` any further assertion on the result."""

    id: str
    files: Callable[[], list[tuple[str, bytes]]]
    status: tuple[str, ...]
    new: int = 0
    quarantined: tuple[str, ...] = ()
    duplicates: int = 0
    skipped: int = 0
    error: str | None = None
    reason: str | None = None
    check: Callable[[IngestResult], None] | None = field(default=None, repr=False)


def one(name: str, content: bytes | str) -> Callable[[], list[tuple[str, bytes]]]:
    return lambda: [(name, content if isinstance(content, bytes) else utf8(content))]


def descriptions(*expected: str) -> Callable[[IngestResult], None]:
    def check(result: IngestResult) -> None:
        assert result.transactions.sort("source_row")["description"].to_list() == list(expected)

    return check


def column(name: str, *expected) -> Callable[[IngestResult], None]:
    def check(result: IngestResult) -> None:
        assert result.transactions.sort("source_row")[name].to_list() == list(expected)

    return check


def raw_contains(text: str) -> Callable[[IngestResult], None]:
    def check(result: IngestResult) -> None:
        assert any(text in r for r in result.quarantine["raw"].to_list()), result.quarantine["raw"].to_list()

    return check


def all_checks(*checks: Callable[[IngestResult], None]) -> Callable[[IngestResult], None]:
    def check(result: IngestResult) -> None:
        for c in checks:
            c(result)

    return check


FORMULAS = ("=cmd|' /C calc'!A0", "+1+1", "@SUM(A1)", "-2+3", '=HYPERLINK("http://x","y")')
HUGE_MEMO = "流水" * (5 * 1024 * 1024 // 6 + 1)  # > 5 MB of UTF-8 in one cell

CASES: list[Case] = [
    # --- encodings ---------------------------------------------------------------------------------------
    Case(
        "gbk_canonical_without_profile",
        one("gbk.csv", canonical(GOOD, GOOD2).encode("gbk")),
        ("loaded",),
        new=2,
        check=descriptions("外卖", "代发工资"),
    ),
    Case(
        "utf8_with_one_gbk_line",
        one(
            "mixed.csv",
            utf8(canonical(GOOD))
            + row(at="2026-01-06 12:00:00", memo="工资").encode("gbk")
            + b"\n"
            + utf8(GOOD3 + "\n"),
        ),
        ("partial",),
        new=2,
        quarantined=("bad_encoding",),
        reason="row 2: bytes that are not valid",
        check=all_checks(descriptions("外卖", "咖啡"), raw_contains("\\xb9\\xa4\\xd7\\xca")),
    ),
    Case(
        "utf16_with_bom",
        one("u16.csv", canonical(GOOD, GOOD2).encode("utf-16")),
        ("loaded",),
        new=2,
        check=descriptions("外卖", "代发工资"),
    ),
    Case(
        "utf8_bom_canonical",
        one("bom.csv", b"\xef\xbb\xbf" + utf8(canonical(GOOD))),
        ("loaded",),
        new=1,
        check=column("account_id", "6222000011112222"),
    ),
    Case(
        "utf8_bom_bank_layout",
        one(
            "cmb_6222000011112222.csv",
            b"\xef\xbb\xbf"
            + utf8(f'{CMB_HEADER}\n2026-01-05,CNY,"-1,000.00",271.66,转账汇款,张三 66666666666666,转账\n'),
        ),
        ("loaded",),
        new=1,
        check=column("amount", Decimal("-1000.00")),
    ),
    Case(
        "gbk_bank_layout_profile_says_auto",
        one(
            "cmb_6222000011112222.csv",
            f"{CMB_HEADER}\n2026-01-05,CNY,-3.00,81.22,一网通支付,国网电力有限公司99999999999999,供电\n".encode("gbk"),
        ),
        ("loaded",),
        new=1,
        check=column("counterparty_name", "国网电力有限公司"),
    ),
    # --- truncation ---------------------------------------------------------------------------------------
    Case(
        "truncated_mid_row",
        one("cut.csv", canonical(GOOD, GOOD2)[:-40]),
        ("partial",),
        new=1,
        quarantined=("ragged_row",),
        reason="row 2: row has 2 cells, header has 8",
    ),
    Case(
        "truncated_mid_multibyte_char",
        one("cut_char.csv", utf8(canonical(GOOD, GOOD2))[:-2]),
        ("partial",),
        new=1,
        quarantined=("bad_encoding",),
        check=raw_contains("代发工\\xe8"),
    ),
    Case(
        "truncated_inside_quoted_cell",
        one("cut_quote.csv", canonical(GOOD, row(memo='"工资 一月'))[:-1]),
        ("partial",),
        new=1,
        quarantined=("unclosed_quote",),
        reason="never closed",
    ),
    # --- shape --------------------------------------------------------------------------------------------
    Case(
        "ragged_rows_too_few_and_too_many",
        one("ragged.csv", canonical(GOOD, "6222000011112222,2026-01-06 10:00:00,-5.00", GOOD2 + ",extra,cells", GOOD3)),
        ("partial",),
        new=2,
        quarantined=("ragged_row", "ragged_row"),
        reason="row 2: row has 3 cells",
    ),
    Case(
        "embedded_newlines_and_quotes",
        one(
            "quoted.csv",
            canonical(
                row(memo='"第一行\n第二行"'),
                row(at="2026-01-06 10:00:00", memo='"他说""你好"""'),
                row(at="2026-01-07 10:00:00", name='"公司, 有限"'),
            ),
        ),
        ("loaded",),
        new=3,
        check=all_checks(
            descriptions("第一行\n第二行", '他说"你好"', "外卖"),
            column("counterparty_name", "美团", "美团", "公司, 有限"),
        ),
    ),
    Case(
        "stray_quote_does_not_swallow_rows",
        one("stray.csv", canonical(row(memo='"oops'), GOOD2, GOOD3)),
        ("partial",),
        new=2,
        quarantined=("unclosed_quote",),
    ),
    Case("header_only", one("header.csv", canonical()), ("loaded",)),
    Case("empty_file", one("empty.csv", b""), ("rejected",), error="empty file (0 bytes)"),
    Case(
        "whitespace_only_file", one("blank.csv", b"  \r\n\t\n   \n"), ("rejected",), error="empty file (only whitespace"
    ),
    Case(
        "single_5mb_cell_fast_path",
        one("huge.csv", canonical(row(memo=HUGE_MEMO))),
        ("loaded",),
        new=1,
        check=lambda r: r.transactions["description"].str.len_chars().to_list() == [len(HUGE_MEMO)],
    ),
    Case(
        "single_5mb_quoted_cell_rowwise",
        one("huge_q.csv", canonical(row(memo=f'"{HUGE_MEMO},x"'))),
        ("loaded",),
        new=1,
        check=lambda r: r.transactions["description"].str.len_chars().to_list() == [len(HUGE_MEMO) + 2],
    ),
    Case(
        "extremely_many_columns",
        one(
            "wide.csv",
            canonical(
                GOOD + "," + ",".join(str(i) for i in range(5000)),
                header=HEADER + "," + ",".join(f"extra_{i}" for i in range(5000)),
            ),
        ),
        ("loaded",),
        new=1,
    ),
    Case("blank_lines_are_not_rows", one("blank_lines.csv", canonical(GOOD, "", GOOD2, "", "")), ("loaded",), new=2),
    # --- not text ------------------------------------------------------------------------------------------
    Case("binary_junk", one("junk.csv", Random(7).randbytes(4096)), ("rejected",), error="binary content"),
    Case("png_renamed_csv", one("statement.csv", PNG), ("rejected",), error="binary content (a PNG image)"),
    Case(
        "zip_renamed_csv",
        one("statement.csv", zip_bytes()),
        ("rejected",),
        error="binary content (a ZIP archive, e.g. an .xlsx workbook",
    ),
    Case(
        "nul_byte_inside_a_cell",
        one("nul.csv", canonical(GOOD, row(at="2026-01-06 10:00:00", memo="外\x00卖"))),
        ("partial",),
        new=1,
        quarantined=("control_character",),
        reason="control character (shown as '?'; only tab and line breaks are text) in column 'description': '外?卖'",
    ),
    Case(
        "nul_byte_inside_a_bank_layout_cell",
        one(
            "cmb_6222000011112222.csv",
            utf8(f"{CMB_HEADER}\n2026-01-05,CNY,-3.00,81.22,一网通\x00支付,,供电\n2026-01-06,CNY,5.00,86.22,退款,,x\n"),
        ),
        ("partial",),
        new=1,
        quarantined=("control_character",),
        reason="column 'description'",
    ),
    Case(
        "unit_separator_cannot_forge_a_txn_id",
        one("us.csv", canonical(row(name="a\x1fb", memo="c"), row(name="a", memo="b\x1fc"))),
        ("quarantined",),
        quarantined=("control_character", "control_character"),
    ),
    # --- line endings -----------------------------------------------------------------------------------
    Case(
        "crlf_line_endings",
        one("crlf.csv", canonical(GOOD, GOOD2, newline="\r\n")),
        ("loaded",),
        new=2,
        check=descriptions("外卖", "代发工资"),
    ),
    Case(
        "cr_only_line_endings",
        one("cr.csv", canonical(GOOD, GOOD2, newline="\r")),
        ("loaded",),
        new=2,
        check=descriptions("外卖", "代发工资"),
    ),
    Case(
        "mixed_line_endings",
        one("mixed_eol.csv", HEADER + "\r\n" + GOOD + "\n" + GOOD2 + "\r" + GOOD3 + "\r\n"),
        ("loaded",),
        new=3,
    ),
    # --- header ------------------------------------------------------------------------------------------
    Case(
        "header_case_and_spaces",
        one(
            "case.csv",
            canonical(
                GOOD,
                header=" Account_ID ,BOOKED_AT, Amount,currency ,balance_after,counterparty_name,"
                "counterparty_account,Description",
            ),
        ),
        ("loaded",),
        new=1,
        check=descriptions("外卖"),
    ),
    Case(
        "header_duplicated_by_case",
        one("dup_col.csv", canonical(GOOD + ",1", header=HEADER + ",AMOUNT")),
        ("rejected",),
        error="duplicated column(s) amount",
    ),
    Case(
        "sql_like_header_is_just_an_ignored_column",
        one("sqlhead.csv", canonical(GOOD + ",x", header=HEADER + ',"x""); DROP TABLE quarantine;--"')),
        ("loaded",),
        new=1,
    ),
    # --- cell text is never interpreted -------------------------------------------------------------------
    Case(
        "formula_like_cells_stored_verbatim",
        one(
            "formulas.csv",
            canonical(
                *[row(at=f"2026-01-0{i + 1} 10:00:00", name=f, memo=f) for i, f in enumerate(FORMULAS[:4])],
                row(at="2026-01-09 10:00:00", memo='"=HYPERLINK(""http://x"",""y"")"'),
            ),
        ),
        ("loaded",),
        new=5,
        check=descriptions(*FORMULAS),
    ),
    Case(
        "formula_like_amounts_quarantined",
        one(
            "formula_amounts.csv",
            canonical(
                *[
                    row(at=f"2026-01-0{i + 1} 10:00:00", amount=a)
                    for i, a in enumerate(("+1+1", "-2+3", "=1+1", "@SUM(A1)"))
                ]
            ),
        ),
        ("quarantined",),
        quarantined=("bad_amount",) * 4,
        reason="not an exact amount (max 2 decimals) in column 'amount': '+1+1'",
    ),
    Case(
        "sql_like_file_name",
        one(SQL_NAME, canonical(GOOD)),
        ("loaded",),
        new=1,
        check=lambda r: (
            r.source_files["file_name"].to_list() == [SQL_NAME]
            and r.transactions["source_file"].to_list() == [SQL_NAME]
        ),
    ),
    Case(
        "sql_like_cells_stored_verbatim",
        one(
            "sqlcells.csv",
            canonical(row(account="A1'; DROP TABLE transactions;--", memo="'); DELETE FROM source_files; --")),
        ),
        ("loaded",),
        new=1,
        check=all_checks(
            descriptions("'); DELETE FROM source_files; --"), column("account_id", "A1'; DROP TABLE transactions;--")
        ),
    ),
    # --- look-alikes and symbols ---------------------------------------------------------------------------
    Case(
        "fullwidth_digits_and_unicode_minus",
        one(
            "fullwidth.csv",
            canonical(
                row(
                    amount="１２３.４５", balance="−５.００", currency="ｃｎｙ", at="２０２６-０１-０５ １０:００:００"
                ),
                row(at="2026-01-06 10:00:00", amount="−100.00"),
            ),
        ),
        ("loaded",),
        new=2,
        check=all_checks(
            column("amount", Decimal("123.45"), Decimal("-100.00")),
            column("balance_after", Decimal("-5.00"), None),
            column("currency", "CNY", "CNY"),
        ),
    ),
    Case(
        "cyrillic_lookalike_account_is_a_different_account",
        one("cyr.csv", canonical(row(account="A1"), row(account="\u04101"))),
        ("loaded",),
        new=2,
        check=lambda r: r.transactions["account_id"].n_unique() == 2,
    ),
    Case(
        "other_script_digits_quarantined",
        one("arabic.csv", canonical(row(amount="١٢٣"))),
        ("quarantined",),
        quarantined=("bad_amount",),
    ),
    Case(
        "currency_symbols_that_agree",
        one(
            "symbols.csv",
            canonical(
                row(amount='"¥1,234.00"'),
                row(at="2026-01-06 10:00:00", amount="￥-5"),
                row(at="2026-01-07 10:00:00", amount="$5", currency="USD"),
                row(at="2026-01-08 10:00:00", amount="-HK$12.50", currency="HKD"),
            ),
        ),
        ("loaded",),
        new=4,
        check=column("amount", Decimal("1234.00"), Decimal("-5.00"), Decimal("5.00"), Decimal("-12.50")),
    ),
    Case(
        "currency_symbols_that_disagree",
        one(
            "symbols_bad.csv",
            canonical(
                row(amount="$5"),
                row(at="2026-01-06 10:00:00", amount="€5", currency="USD"),
                row(at="2026-01-07 10:00:00", amount="¥5", currency="HKD"),
            ),
        ),
        ("quarantined",),
        quarantined=("currency_mismatch",) * 3,
        reason="currency symbol '$' does not agree with the row's currency CNY in column 'amount': '$5'",
    ),
    Case(
        "bank_layout_symbol_disagrees",
        one(
            "cmb_6222000011112222.csv",
            utf8(f"{CMB_HEADER}\n2026-01-05,CNY,$5.00,81.22,一网通支付,,供电\n2026-01-06,CNY,¥5.00,86.22,退款,,x\n"),
        ),
        ("partial",),
        new=1,
        quarantined=("currency_mismatch",),
    ),
    Case(
        "thousands_separators_must_be_grouped",
        one(
            "groups.csv",
            canonical(
                row(amount='"1,234.50"'),
                row(at="2026-01-06 10:00:00", amount='"1,23.4"'),
                row(at="2026-01-07 10:00:00", amount='"1.234,56"'),
            ),
        ),
        ("partial",),
        new=1,
        quarantined=("bad_amount", "bad_amount"),
    ),
    Case(
        "unknown_currency_code",
        one("cur.csv", canonical(row(currency="XYZ"), row(currency="RMB"))),
        ("quarantined",),
        quarantined=("bad_currency", "bad_currency"),
    ),
    # --- dates --------------------------------------------------------------------------------------------
    Case(
        "dates_1900_future_and_zero",
        one(
            "dates.csv",
            canonical(
                row(at="1900-01-01"),
                row(at="2999-12-31 23:59:59"),
                row(at="0000-00-00"),
                row(at="0000-00-00 00:00:00"),
                row(at="2026-02-30"),
                GOOD,
            ),
        ),
        ("partial",),
        new=1,
        quarantined=("date_out_of_range", "date_out_of_range", "bad_date", "bad_date", "bad_date"),
    ),
    # --- amounts ------------------------------------------------------------------------------------------
    Case(
        "negative_zero_is_zero",
        one("zero.csv", canonical(row(amount="-0.00"))),
        ("loaded",),
        new=1,
        check=column("amount", Decimal("0.00")),
    ),
    Case(
        "amounts_that_are_not_exact_money",
        one(
            "amounts.csv",
            canonical(
                *[
                    row(at=f"2026-01-{i + 1:02d} 10:00:00", amount=a)
                    for i, a in enumerate(
                        (
                            "1.234",
                            "1e5",
                            "NaN",
                            "inf",
                            "-Infinity",
                            "12345678901234567890",
                            "12345678901234567.00",
                            "0x10",
                            "1_000",
                            "",
                        )
                    )
                ]
            ),
        ),
        ("quarantined",),
        quarantined=("bad_amount",) * 9 + ("missing_amount",),
        check=lambda r: (
            [x.split(": ", 1)[1] for x in r.quarantine["reason"][:6]]
            == [
                "not an exact amount (more than 2 decimals: money is never rounded) in column 'amount': '1.234'",
                "not an exact amount (max 2 decimals) in column 'amount': '1e5'",
                "not an exact amount (max 2 decimals) in column 'amount': 'NaN'",
                "not an exact amount (max 2 decimals) in column 'amount': 'inf'",
                "not an exact amount (max 2 decimals) in column 'amount': '-Infinity'",
                "not an exact amount (more than 16 integer digits: does not fit DECIMAL(18,2)) in column "
                "'amount': '12345678901234567890'",
            ]
        ),
    ),
    Case(
        "largest_plausible_amount_loads",
        one("max.csv", canonical(row(amount="999999999.99"))),
        ("loaded",),
        new=1,
        check=column("amount", Decimal("999999999.99")),
    ),
    Case(
        "largest_exact_amount_is_quarantined_as_implausible",
        one("max.csv", canonical(row(amount="9999999999999999.99"))),
        ("quarantined",),
        quarantined=("implausible_amount",),
        reason="amount 9999999999999999.99 CNY is outside the plausible range",
    ),
    # --- duplicates ---------------------------------------------------------------------------------------
    Case(
        "identical_rows_in_one_file_are_two_transactions",
        one("twice.csv", canonical(GOOD, GOOD)),
        ("loaded",),
        new=2,
        check=lambda r: r.transactions["txn_id"].n_unique() == 2,
    ),
    Case(
        "identical_rows_across_files_deduplicate",
        lambda: [("a.csv", utf8(canonical(GOOD, GOOD2))), ("b.csv", utf8(canonical(GOOD2, GOOD3)))],
        ("loaded", "loaded"),
        new=3,
        duplicates=1,
    ),
    Case(
        "identical_file_under_another_name_is_skipped",
        lambda: [("a.csv", utf8(canonical(GOOD, GOOD2))), ("copy of a.csv", utf8(canonical(GOOD, GOOD2)))],
        ("loaded",),
        new=2,
        skipped=1,
    ),
    # --- parquet ------------------------------------------------------------------------------------------
    Case(  # float money (pandas / Spark) exact at cents: taken as the exact Decimal
        "parquet_float_amount",
        one("f.parquet", parquet(PARQUET_OK.with_columns(pl.col("amount").cast(pl.Float64)))),
        ("loaded",),
        new=2,
    ),
    Case(  # a float that is not a whole number of cents: that row is quarantined, never the file
        "parquet_float_amount_not_at_cents",
        one("g.parquet", parquet(PARQUET_OK.with_columns(amount=pl.Series([-100.5, 0.125])))),
        ("partial",),
        new=1,
        quarantined=("bad_amount",),
        reason="row 2: not an exact amount (a float that is not a whole number of cents",
    ),
    Case(
        "parquet_int_account_id",
        one("i.parquet", parquet(PARQUET_OK.with_columns(account_id=pl.lit(6222000011112222)))),
        ("rejected",),
        error="column 'account_id' has type Int",
    ),
    Case(
        "parquet_missing_column",
        one("m.parquet", parquet(PARQUET_OK.drop("booked_at"))),
        ("rejected",),
        error="missing required column(s) booked_at",
    ),
    Case(
        "parquet_truncated",
        one("t.parquet", parquet(PARQUET_OK)[:300]),
        ("rejected",),
        error="not a readable Parquet file",
    ),
    Case(
        "parquet_named_txt",
        one("statement.txt", parquet(PARQUET_OK)),
        ("loaded",),
        new=2,
        check=lambda r: r.source_files["profile"].to_list() == ["canonical_parquet"],
    ),
    Case(
        "csv_named_parquet",
        one("statement.parquet", canonical(GOOD)),
        ("loaded",),
        new=1,
        check=lambda r: r.source_files["profile"].to_list() == ["canonical_csv"],
    ),
]


def _ingest(tmp_path: Path, files: list[tuple[str, bytes]]) -> IngestResult:
    paths = []
    for name, content in files:
        path = tmp_path / name
        path.write_bytes(content)
        paths.append(path)
    return ingest_files(
        paths, known_file_hashes=set(), is_known_txn=lambda ids: ids.is_null(), batch_id="b1", latest_booking=LATEST
    )


def test_the_corpus_has_at_least_thirty_cases():
    assert len(CASES) >= 30
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_has_its_stated_outcome(tmp_path, case: Case):
    result = _ingest(tmp_path, case.files())  # must not raise, whatever the bytes
    files = result.source_files
    quarantine = result.quarantine.sort("source_file", "source_row")

    assert tuple(files["status"]) == case.status, files.select("file_name", "status", "error").rows()
    assert tuple(quarantine["reason_code"]) == case.quarantined, quarantine.select("source_row", "reason").rows()
    assert result.transactions.height == case.new
    assert int(files["rows_duplicate"].sum()) == case.duplicates
    assert result.skipped_files == case.skipped
    # nothing silently dropped: rows in = new transactions + counted duplicates + quarantined rows
    rows_in = int(files["rows_read"].sum())
    assert rows_in == result.transactions.height + case.duplicates + quarantine.height
    assert (files["rows_read"] == files["rows_ok"] + files["rows_rejected"]).all()
    for f in files.filter(pl.col("status") == "rejected").iter_rows(named=True):
        assert f["error"].startswith(f"{f['file_name']}: ") and f["rows_read"] == 0
    if case.error is not None:
        [error] = files.filter(pl.col("status") == "rejected")["error"].to_list()
        assert case.error in error, error
    else:
        assert files["error"].null_count() == files.height
    if case.reason is not None:
        assert case.reason in quarantine["reason"][0], quarantine["reason"][0]
    for reason, source_file, source_row in quarantine.select("reason", "source_file", "source_row").iter_rows():
        assert reason.startswith(f"{source_file}, row {source_row}: ")  # names the file and row
    if case.check is not None:
        outcome = case.check(result)
        assert outcome is None or outcome is True


# ---------------------------------------------------------------------------------------------------------
# The real nightly flow (Prefect test harness) into DuckDB, for representative cases.

FLOW_CASES = [
    "sql_like_file_name",
    "utf8_with_one_gbk_line",
    "formula_like_cells_stored_verbatim",
    "png_renamed_csv",
    "nul_byte_inside_a_cell",
]


def _fetch(db: Path, sql: str) -> list[tuple]:
    from liushui import store

    con = store.reader(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.parametrize("case", [c for c in CASES if c.id in FLOW_CASES], ids=FLOW_CASES)
def test_hostile_input_through_the_real_flow(prefect_harness, tmp_path, case: Case):
    from flows.nightly import nightly
    from liushui.config import Settings
    from liushui.contracts import PUBLISHED_TABLES

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name, content in case.files():
        (inbox / name).write_bytes(content)
    db = tmp_path / "w.duckdb"
    report = nightly(Settings(inbox=inbox, database=db, as_of=LATEST))

    assert report.status == "published"
    assert report.counts["files_rejected"] == case.status.count("rejected")
    tables = {name for (name,) in _fetch(db, "SELECT table_name FROM information_schema.tables")}
    assert {t.name for t in PUBLISHED_TABLES} <= tables  # nothing dropped
    [(rows_in, in_transactions, duplicates, quarantined)] = _fetch(
        db,
        """
        SELECT (SELECT coalesce(sum(rows_read), 0) FROM source_files),
               (SELECT count(*) FROM transactions),
               (SELECT coalesce(sum(rows_duplicate), 0) FROM source_files),
               (SELECT count(*) FROM quarantine)""",
    )
    assert rows_in == in_transactions + duplicates + quarantined
    assert in_transactions == case.new
    codes = _fetch(db, "SELECT reason_code FROM quarantine ORDER BY source_file, source_row")
    assert tuple(code for (code,) in codes) == case.quarantined
    files = _fetch(db, "SELECT file_name, status, error FROM source_files")
    assert [(name, status) for name, status, _ in files] == [
        (n, s) for (n, _), s in zip(case.files(), case.status, strict=True)
    ]
    if case.error is not None:
        assert case.error in files[0][2]
    if case.id == "sql_like_file_name":
        assert _fetch(db, "SELECT DISTINCT source_file FROM transactions") == [(SQL_NAME,)]
    if case.id == "formula_like_cells_stored_verbatim":
        stored = _fetch(db, "SELECT description FROM transactions ORDER BY source_row")
        assert [d for (d,) in stored] == list(FORMULAS)
    if case.id == "utf8_with_one_gbk_line":
        [(raw,)] = _fetch(db, "SELECT raw FROM quarantine")
        assert "\\xb9\\xa4\\xd7\\xca" in raw
    if case.id == "nul_byte_inside_a_cell":
        [(raw,)] = _fetch(db, "SELECT raw FROM quarantine")
        assert "外\x00卖" in raw  # stored as read, through Arrow
