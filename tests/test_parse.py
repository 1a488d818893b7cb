"""Raw text rows -> typed transactions or quarantine: literal rows, exact outcomes."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from liushui.contracts import CANONICAL_INPUT_COLUMNS, CANONICAL_TRANSACTION, QUARANTINE
from liushui.ingest.parse import empty_raw_frame, parse_raw

LATEST = date(2026, 11, 28)


def raw(*rows: dict) -> pl.DataFrame:
    frame = pl.DataFrame(
        [
            {
                **{c: None for c in CANONICAL_INPUT_COLUMNS},
                **row,
                "source_row": i,
                "raw": str(row),
                "reject_code": None,
                "reject_reason": None,
            }
            for i, row in enumerate(rows, start=1)
        ],
        schema=empty_raw_frame().schema,
    )
    return frame


def parse(frame: pl.DataFrame):
    return parse_raw(frame, source_file="f.csv", file_sha256="0" * 64, batch_id="b1", latest_booking=LATEST)


GOOD = {"account_id": "A1", "booked_at": "2026-01-05 10:00:00", "amount": "-100.5", "balance_after": "99.50"}


def test_good_row_is_typed_exactly():
    result = parse(raw(GOOD))
    assert result.bad.is_empty()
    row = result.good.row(0, named=True)
    assert row["account_id"] == "A1"
    assert row["booked_at"] == datetime(2026, 1, 5, 10, 0, 0)
    assert row["amount"] == Decimal("-100.50")
    assert row["balance_after"] == Decimal("99.50")
    assert row["currency"] == "CNY"  # default
    assert row["source_file"] == "f.csv" and row["source_row"] == 1 and row["batch_id"] == "b1"
    assert result.good.schema == CANONICAL_TRANSACTION.polars_schema


def test_date_only_becomes_midnight_and_cells_are_trimmed():
    result = parse(raw({"account_id": "  A1\t", "booked_at": "2026-01-05", "amount": " 8000 ", "currency": "cny"}))
    row = result.good.row(0, named=True)
    assert (row["account_id"], row["booked_at"], row["amount"], row["currency"]) == (
        "A1",
        datetime(2026, 1, 5),
        Decimal("8000.00"),
        "CNY",
    )


def test_each_bad_cell_is_quarantined_with_column_and_value():
    result = parse(
        raw(
            {**GOOD, "account_id": None},
            {**GOOD, "booked_at": "2026-13-06"},
            {**GOOD, "amount": "abc"},
            {**GOOD, "amount": "1.234"},
            {**GOOD, "balance_after": "xx,yyyy.zz"},
            {**GOOD, "currency": "RMB¥"},
            {**GOOD, "booked_at": "1900-01-01"},
            {**GOOD, "booked_at": "2027-01-01"},
            {**GOOD, "amount": None},
        )
    )
    assert result.good.is_empty()
    bad = result.bad.sort("source_row")
    assert bad["reason_code"].to_list() == [
        "missing_account",
        "bad_date",
        "bad_amount",
        "bad_amount",
        "bad_balance",
        "bad_currency",
        "date_out_of_range",
        "date_out_of_range",
        "missing_amount",
    ]
    assert bad["reason"][1] == "f.csv, row 2: not a date/time in column 'booked_at': '2026-13-06'"
    assert (
        bad["reason"][4]
        == "f.csv, row 5: not an exact balance (max 2 decimals) in column 'balance_after': 'xx,yyyy.zz'"
    )
    assert bad.schema == QUARANTINE.polars_schema


def test_first_failing_check_names_the_reason():
    result = parse(raw({"account_id": None, "booked_at": "bad", "amount": "bad"}))
    assert result.bad["reason_code"].to_list() == ["missing_account"]


def test_reader_reject_is_kept():
    frame = raw(GOOD).with_columns(reject_code=pl.lit("ragged_row"), reject_reason=pl.lit("row has 3 cells"))
    result = parse(frame)
    assert result.bad["reason_code"].to_list() == ["ragged_row"]
    assert result.bad["reason"].to_list() == ["f.csv, row 1: row has 3 cells"]


def test_negative_zero_is_zero():
    result = parse(raw({**GOOD, "amount": "-0.00"}))
    assert result.good["amount"].to_list() == [Decimal("0.00")]


def test_txn_id_is_stable_and_identical_rows_stay_distinct():
    first = parse(raw(GOOD, GOOD, {**GOOD, "amount": "-1.00"}))
    again = parse(raw(GOOD, GOOD, {**GOOD, "amount": "-1.00"}))
    ids = first.good["txn_id"].to_list()
    assert ids == again.good["txn_id"].to_list()
    assert len(set(ids)) == 3  # two identical rows of one day are two transactions


def test_bank_id_used_when_unique_and_content_hash_when_repeated():
    result = parse(
        raw(
            {**GOOD, "txn_id": "T1"},
            {**GOOD, "txn_id": "xxxx", "amount": "-1"},
            {**GOOD, "txn_id": "xxxx", "amount": "-2"},
        )
    )
    ids = result.good["txn_id"].to_list()
    assert ids[0] == "A1:T1"
    assert ids[1] != ids[2] and not ids[1].startswith("A1:")


cells = st.one_of(st.none(), st.text(max_size=12), st.sampled_from(["2026-01-01", "12.30", "-5", "A9", "CNY"]))


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.fixed_dictionaries(
            {c: cells for c in ("account_id", "booked_at", "amount", "currency", "balance_after", "description")}
        ),
        max_size=25,
    )
)
def test_every_row_lands_exactly_once(rows):
    frame = raw(*rows) if rows else empty_raw_frame()
    result = parse(frame)
    assert result.good.height + result.bad.height == len(rows)
    assert set(result.good["source_row"]).isdisjoint(set(result.bad["source_row"]))
