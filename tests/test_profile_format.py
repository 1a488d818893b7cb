"""The layout-format capabilities real exports need, each on literal rows (docs/profiles.md has the worked
examples): files without a header line, short rows, direction by prefix / regex / another column, sign flip,
neutral rows, numbers and currencies inside a cell, per-column placeholders and cleaning, dates without a year."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
import yaml

from liushui.contracts import ACCOUNTS_REF, RELATED_PARTIES_REF
from liushui.ingest.inbox import read_files
from liushui.ingest.profiles import LayoutError, Profile, ProfileError, detect_profile, read_profiled
from tests.rows import canonical, signals, txn
from transforms.classify import classified_transactions
from transforms.lenders import classify_lenders, load_lender_registry
from transforms.months import monthly_flows

BASE = """
name: p
description: a test layout
booked_at: {column: 日期, formats: ['%Y-%m-%d']}
account_id: {default: A1}
"""


def profile(extra: str, base: str = BASE) -> Profile:
    data = yaml.safe_load(base) | yaml.safe_load(extra)
    return Profile.from_dict(data)


def read(tmp_path: Path, text: str, p: Profile, name: str = "x.csv") -> pl.DataFrame:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return read_profiled(f, p)


def cols(df: pl.DataFrame, *names: str) -> list[tuple]:
    return df.select(names).rows()


# ---------------------------------------------------------------------------------------------------
# Files with no header line: columns by position

HEADERLESS = """
column_names: [日期, 摘要, 支出, 收入, 余额]
row_pattern: '^\\d{4}-\\d{2}-\\d{2},'
amount: {convention: split, income_column: 收入, expense_column: 支出}
columns: {balance_after: 余额}
description_columns: [摘要]
"""


def test_headerless_file_reads_columns_by_position_from_line_1(tmp_path):
    p = profile(HEADERLESS)
    df = read(tmp_path, "2024-01-02,咖啡,4.50,,95.50\n2024-01-03,工资,,1000.00,1095.50\n", p)
    assert cols(df, "booked_at", "amount", "balance_after", "description", "source_row", "source_line") == [
        ("2024-01-02", "-4.50", "95.50", "咖啡", 1, 1),
        ("2024-01-03", "1000.00", "1095.50", "工资", 2, 2),
    ]


def test_headerless_profile_claims_a_file_by_its_first_row_only(tmp_path):
    p = profile(HEADERLESS)
    ok, wrong_cells, wrong_shape = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    ok.write_text("\n2024-01-02,咖啡,4.50,,95.50\n", encoding="utf-8")  # leading blank line: skipped
    wrong_cells.write_text("2024-01-02,咖啡,4.50,95.50\n", encoding="utf-8")  # 4 cells, not 5
    wrong_shape.write_text("日期,摘要,支出,收入,余额\n2024-01-02,咖啡,4.50,,95.50\n", encoding="utf-8")
    assert detect_profile(ok, {"p": p}) is p
    assert detect_profile(wrong_cells, {"p": p}) is None
    assert detect_profile(wrong_shape, {"p": p}) is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("column_names: [日期, 金额]\namount: {convention: signed, column: 金额}", "column_names needs row_pattern"),
        (
            "column_names: [日期, 金额]\nrow_pattern: '^2'\nheader_signature: [日期]\n"
            "amount: {convention: signed, column: 金额}",
            "has no header_signature",
        ),
        (
            "column_names: [日期, 金额]\nrow_pattern: '^2'\namount: {convention: signed, column: Amount}",
            "columns read but not in column_names: Amount",
        ),
        ("amount: {convention: signed, column: 金额}", "give a header_signature"),
    ],
)
def test_headerless_profile_errors(extra, message):
    with pytest.raises(ProfileError, match=message):
        profile(extra)


# ---------------------------------------------------------------------------------------------------
# Rows shorter than the header (trailing empty cells left out)

SHORT = """
header_signature: [日期, 金额, 余额, 备注]
amount: {convention: signed, column: 金额}
columns: {balance_after: 余额}
description_columns: [备注]
"""
SHORT_ROWS = (
    "日期,金额,余额,备注\n2024-01-02,-4.50,95.50,咖啡\n2024-01-03,-1.00\n2024-01-04\n2024-01-05,2.00,97.50,a,b\n"
)


def test_short_rows_are_read_when_only_optional_cells_are_missing(tmp_path):
    df = read(tmp_path, SHORT_ROWS, profile(SHORT + "short_rows: accept_optional"))
    assert cols(df, "source_row", "amount", "balance_after", "description", "reject_code", "reject_reason") == [
        (1, "-4.50", "95.50", "咖啡", None, None),
        (2, "-1.00", None, None, None, None),  # 余额 and 备注 left out: optional
        (
            3,
            None,
            None,
            None,
            "ragged_row",
            "row has 1 cells, header has 4: the missing cells include '金额', which the profile needs",
        ),
        (4, "2.00", "97.50", "a", "ragged_row", "row has 5 cells, header has 4"),  # longer: never accepted
    ]


def test_short_rows_are_rejected_by_default(tmp_path):
    df = read(tmp_path, SHORT_ROWS, profile(SHORT))
    assert cols(df, "source_row", "reject_code") == [(1, None), (2, "ragged_row"), (3, "ragged_row"), (4, "ragged_row")]


def test_a_short_row_lacking_a_needed_cell_goes_to_quarantine_with_its_line(tmp_path):
    pdir = tmp_path / "p"
    pdir.mkdir()
    (pdir / "p.yaml").write_text(BASE + SHORT + "short_rows: accept_optional\n", encoding="utf-8")
    f = tmp_path / "short.csv"
    f.write_text(SHORT_ROWS, encoding="utf-8")
    (outcome,) = read_files(
        [f], known_file_hashes=set(), batch_id="b", latest_booking=date(2026, 1, 1), profiles_dir=pdir
    )
    assert outcome.file_row["rows_ok"] == 2
    assert outcome.parsed.bad.select("source_row", "reason_code").rows() == [(3, "ragged_row"), (4, "ragged_row")]


# ---------------------------------------------------------------------------------------------------
# The sign from another column, by exact value, prefix or pattern; a credit card's sign flip

DIRECTION = """
header_signature: [日期, 借贷, 金额]
amount: {{convention: direction, column: 金额, direction_column: 借贷, direction_match: {match}, direction_map: {map}}}
"""


def test_direction_by_prefix_reads_bilingual_values(tmp_path):
    p = profile(DIRECTION.format(match="prefix", map="{借: -1, 贷: 1}"))
    df = read(tmp_path, "日期,借贷,金额\n2024-01-02,借 Dr,3.21\n2024-01-03,贷 Cr,1.23\n2024-01-04,Dr,5.00\n", p)
    assert cols(df, "amount", "reject_code", "reject_reason") == [
        ("-3.21", None, None),
        ("1.23", None, None),
        ("5.00", "bad_direction", "借贷 'Dr' is not one of 借, 贷"),
    ]


def test_direction_from_a_memo_prefix(tmp_path):
    """A card statement with unsigned amounts whose kind is only in the memo: （消费）/（退款）/（还款）."""
    p = profile(DIRECTION.format(match="prefix", map="{（消费）: -1, （退款）: 1, （还款）: 1}"))
    text = "日期,借贷,金额\n2024-01-02,（消费）示例商户,15.90\n2024-01-03,（退款）示例商户,15.90\n"
    text += "2024-01-04,（还款）张三,100\n"
    assert cols(read(tmp_path, text, p), "amount") == [("-15.90",), ("15.90",), ("100",)]


def test_direction_by_regex_first_key_wins(tmp_path):
    p = profile(DIRECTION.format(match="regex", map="{'^(消费|取现)': -1, '退款|还款': 1, '.': reject}"))
    text = "日期,借贷,金额\n2024-01-02,取现手续费,5.00\n2024-01-03,分期退款,9.00\n2024-01-04,调整,1.00\n"
    assert cols(read(tmp_path, text, p), "amount", "reject_code") == [
        ("-5.00", None),
        ("9.00", None),
        ("1.00", "excluded_direction"),
    ]


def test_a_bad_direction_regex_is_a_profile_error():
    with pytest.raises(ProfileError, match="not supported by Polars"):
        profile(DIRECTION.format(match="regex", map="{'(?<=x)y': -1}"))


def test_flip_sign_turns_a_credit_card_convention(tmp_path):
    p = profile("header_signature: [日期, 金额]\namount: {convention: signed, column: 金额, flip_sign: true}")
    text = '日期,金额\n2024-01-02,15.90\n2024-01-03,-97.20\n2024-01-04,"8,000.00"\n2024-01-05,.5\n2024-01-06,xx.yy\n'
    assert cols(read(tmp_path, text, p), "amount") == [("-15.90",), ("97.20",), ("-8000.00",), ("-0.5",), ("xx.yy",)]


# ---------------------------------------------------------------------------------------------------
# Neutral rows: neither income nor spending

NEUTRAL = """
header_signature: [日期, 收/支, 金额]
amount:
  convention: direction
  column: 金额
  direction_column: 收/支
  direction_map: {收入: 1, 支出: -1, 不计收支: neutral, /: neutral}
  flip_sign: false
cells:
  收/支: {placeholders: []}
"""


def test_neutral_rows_keep_their_amount_and_publish_their_tag(tmp_path):
    """'/' is a placeholder everywhere else, but in 收/支 (its own empty placeholder list) it is a value."""
    text = (
        "日期,收/支,金额\n2024-01-02,支出,10.00\n2024-01-03,不计收支,50.00\n2024-01-04,/,20.00\n2024-01-05,收入,5.00\n"
    )
    df = read(tmp_path, text, profile(NEUTRAL))
    assert cols(df, "amount", "flow_tag", "reject_code") == [
        ("-10.00", None, None),
        ("50.00", "不计收支", None),
        ("20.00", "/", None),
        ("5.00", None, None),
    ]


def test_without_its_own_placeholders_the_slash_is_an_empty_direction(tmp_path):
    p = profile(NEUTRAL.replace("cells:\n  收/支: {placeholders: []}\n", ""))
    df = read(tmp_path, "日期,收/支,金额\n2024-01-04,/,20.00\n", p)
    assert cols(df, "flow_tag", "reject_code") == [(None, "bad_direction")]


def test_flip_sign_leaves_neutral_rows_as_written(tmp_path):
    df = read(
        tmp_path,
        "日期,收/支,金额\n2024-01-02,支出,10.00\n2024-01-03,/,20.00\n",
        profile(NEUTRAL.replace("flip_sign: false", "flip_sign: true")),
    )
    assert cols(df, "amount", "flow_tag") == [("10.00", None), ("20.00", "/")]


def test_neutral_rows_reach_the_canonical_rows(tmp_path):
    pdir = tmp_path / "p"
    pdir.mkdir()
    (pdir / "p.yaml").write_text(BASE + NEUTRAL, encoding="utf-8")
    f = tmp_path / "n.csv"
    f.write_text("日期,收/支,金额\n2024-01-02,支出,10.00\n2024-01-03,/,20.00\n", encoding="utf-8")
    (outcome,) = read_files(
        [f], known_file_hashes=set(), batch_id="b", latest_booking=date(2026, 1, 1), profiles_dir=pdir
    )
    assert outcome.parsed.good.select("amount", "flow_tag").rows() == [
        (Decimal("-10.00"), None),
        (Decimal("20.00"), "/"),
    ]


def _classified(rows: list[dict]) -> pl.DataFrame:
    return classified_transactions(
        classify_lenders(canonical(rows).lazy(), load_lender_registry()),
        ACCOUNTS_REF.empty().lazy(),
        RELATED_PARTIES_REF.empty().lazy(),
    ).collect()


def test_a_neutral_row_is_class_neutral_and_in_no_total():
    """A 余额宝 move tagged 不计收支 is not earned (it would be class income) and an outgoing neutral row is
    not spending; both stay out of inflow, outflow and clean income."""
    rows = [
        txn("A", "2024-03-01 09:00:00", "5000.00", "示例科技", memo="工资") | {"flow_tag": None},
        txn("A", "2024-03-02 09:00:00", "800.00", "余额宝", memo="余额宝-转出到余额") | {"flow_tag": "不计收支"},
        txn("A", "2024-03-03 09:00:00", "-300.00", "示例基金", memo="理财申购") | {"flow_tag": "/"},
        txn("A", "2024-03-04 09:00:00", "-45.00", "示例超市", memo="消费") | {"flow_tag": None},
    ]
    classified = _classified(rows)
    assert classified.sort("booked_at").select("txn_class", "is_clean_income", "flow_tag").rows() == [
        ("salary", True, None),
        ("neutral", False, "不计收支"),
        ("neutral", False, "/"),
        ("spend", False, None),
    ]
    month = monthly_flows(classified.lazy()).collect()
    assert month.select("txn_count", "inflow", "outflow", "clean_income").rows() == [
        (4, Decimal("5000.00"), Decimal("45.00"), Decimal("5000.00"))
    ]


def test_rows_without_a_flow_tag_column_classify_as_before():
    rows = [txn("A", "2024-03-01 09:00:00", "800.00", "余额宝")]
    frame = canonical(rows).drop("flow_tag").lazy()
    out = classified_transactions(
        classify_lenders(frame, load_lender_registry()), ACCOUNTS_REF.empty().lazy(), RELATED_PARTIES_REF.empty().lazy()
    ).collect()
    assert out.select("txn_class", "flow_tag").rows() == [("income", None)]


# ---------------------------------------------------------------------------------------------------
# Numbers and currencies inside a cell; per-column placeholders; cleaning a value


def test_amount_and_currency_from_one_cell(tmp_path):
    p = profile(
        "header_signature: [日期, 金额]\namount: {convention: signed, column: 金额}\n"
        "cells: {金额: {pattern: '(?P<value>-?[0-9.,]+)$'}}\n"
        "currency: {column: 金额, pattern: '^(?P<value>[A-Z]{3}|[^0-9\\s-]+)'}"
    )
    text = "日期,金额\n2024-01-02,CNY 123.18\n2024-01-03,USD -5.00\n2024-01-04,人民币 8.00\n"
    text += "2024-01-05,9.00\n2024-01-06,CNY abc\n"
    assert cols(read(tmp_path, text, p), "amount", "currency") == [
        ("123.18", "CNY"),
        ("-5.00", "USD"),
        ("8.00", "CNY"),  # the alias, after extraction
        ("9.00", "CNY"),  # no currency in the cell: the default
        ("CNY abc", "CNY"),  # no number: as written, for the parser to report
    ]


def test_a_refund_note_inside_the_amount_is_netted_exactly(tmp_path):
    p = profile(
        "header_signature: [日期, 金额]\namount: {convention: signed, column: 金额}\n"
        "cells: {金额: {pattern: '^(?P<value>[0-9.]+)(?:\\(已退款(?P<less>[0-9.]+)\\)|\\(已全额退款\\))?$'}}"
    )
    text = "日期,金额\n2024-01-02,131.77(已退款89.84)\n2024-01-03,468.32(已全额退款)\n2024-01-04,9.8\n"
    text += "2024-01-05,1.50(已退款2.00)\n2024-01-06,1.234(已退款1)\n2024-01-07,12(备注)\n"
    assert cols(read(tmp_path, text, p), "amount") == [
        ("41.93",),
        ("468.32",),
        ("9.8",),
        ("1.50(已退款2.00)",),  # more refunded than paid: not guessed
        ("1.234(已退款1)",),  # not exact cents: not guessed
        ("12(备注)",),  # the pattern does not match: as written
    ]


def test_a_cell_pattern_needs_the_group_value():
    with pytest.raises(ProfileError, match="needs the named group"):
        profile(
            "header_signature: [日期, 金额]\namount: {convention: signed, column: 金额}\n"
            "cells: {金额: {pattern: '[0-9]+'}}"
        )


def test_placeholders_per_column(tmp_path):
    """'-' means empty in 对方户名 only; '--' everywhere (the file-wide list), but not in 备注, which has its own."""
    p = profile(
        "header_signature: [日期, 金额, 对方户名, 备注]\namount: {convention: signed, column: 金额}\n"
        "placeholders: ['--']\ncolumns: {counterparty_name: 对方户名}\ndescription_columns: [备注]\n"
        "cells: {对方户名: {placeholders: ['-', '--']}, 备注: {placeholders: ['无']}}"
    )
    text = "日期,金额,对方户名,备注\n2024-01-02,1.00,-,--\n2024-01-03,2.00,--,无\n2024-01-04,--,张三,-\n"
    assert cols(read(tmp_path, text, p), "amount", "counterparty_name", "description") == [
        ("1.00", None, "--"),
        ("2.00", None, None),
        (None, "张三", "-"),
    ]


def test_strip_cleans_a_wrapped_account_id(tmp_path):
    p = profile(
        "header_signature: [日期, 金额, 账号]\namount: {convention: signed, column: 金额}\n"
        'account_id: {column: 账号}\ncells: {账号: {strip: "\'"}}',
        base=BASE.replace("account_id: {default: A1}\n", ""),
    )
    text = (
        "日期,金额,账号\n2024-01-02,1.00,'6222000000001234'\n2024-01-03,2.00,' 6222000000005678 '\n2024-01-04,3.00,''\n"
    )
    assert cols(read(tmp_path, text, p), "account_id") == [("6222000000001234",), ("6222000000005678",), (None,)]


# ---------------------------------------------------------------------------------------------------
# Dates without a year; an empty date cell that has a fallback

YEARLESS = """
header_signature: [交易日, 记账日, 金额]
booked_at:
  column: 交易日
  fallback_column: 记账日
  formats: ['%m/%d']
  year_regex: '(?P<year>\\d{4})年(?P<month>\\d{1,2})月'
amount: {convention: signed, column: 金额}
"""


def test_dates_without_a_year_take_the_statements(tmp_path):
    text = (
        "对账单（2024年01月）\n交易日,记账日,金额\n,12/29,-1.23\n12/30,12/31,5.00\n01/02,01/03,6.00\n13/01,13/02,1.00\n"
    )
    df = read(tmp_path, text, profile(YEARLESS))
    assert cols(df, "booked_at") == [("2023-12-29",), ("2023-12-30",), ("2024-01-02",), ("13/01",)]


def test_a_statement_year_that_is_not_in_the_preamble_is_a_layout_error(tmp_path):
    with pytest.raises(LayoutError, match="year_regex"):
        read(tmp_path, "对账单\n交易日,记账日,金额\n01/02,01/03,6.00\n", profile(YEARLESS))


def test_fallback_column_needs_column():
    with pytest.raises(ProfileError, match="'fallback_column' needs 'column'"):
        profile(
            "header_signature: [日期]\namount: {convention: signed, column: 日期}\n"
            "booked_at: {date_column: 日期, fallback_column: x, formats: ['%Y']}"
        )


def test_neutral_rows_through_the_signals_chain_stay_out_of_the_month():
    """The whole per-account chain (derive_signals): a neutral 余额宝 move is published as class neutral with its
    tag and leaves the month's inflow, outflow and clean income as the other rows make them."""
    rows = [
        txn("A", "2026-03-01 09:00:00", "5000.00", "示例科技", memo="代发工资") | {"flow_tag": None},
        txn("A", "2026-03-02 09:00:00", "20000.00", "余额宝", memo="余额宝-转出到余额") | {"flow_tag": "不计收支"},
        txn("A", "2026-03-04 09:00:00", "-45.00", "示例超市", memo="消费") | {"flow_tag": None},
    ]
    out = signals(rows, as_of=date(2026, 5, 15))
    assert out["transactions"].sort("booked_at").select("txn_class", "flow_tag", "is_clean_income").rows() == [
        ("salary", None, True),
        ("neutral", "不计收支", False),
        ("spend", None, False),
    ]
    month = out["account_months"].filter(pl.col("month_on") == date(2026, 3, 1))
    assert month.select("txn_count", "inflow", "outflow", "clean_income").rows() == [
        (3, Decimal("5000.00"), Decimal("45.00"), Decimal("5000.00"))
    ]
