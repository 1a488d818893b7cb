"""Raw text rows -> typed transactions or quarantine: literal rows, exact outcomes."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from liushui.contracts import CANONICAL_INPUT_COLUMNS, CANONICAL_TRANSACTION, QUARANTINE
from liushui.ingest.parse import IMPLAUSIBLE_AMOUNT_REASON, empty_raw_frame, parse_raw

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


# Plausibility: one absurd amount is the row's problem --------------------------------------------------------
def implausible(amount: str, currency: str) -> str:
    return (
        f"amount {amount} {currency} is outside the plausible range (|amount| < 1,000,000,000): "
        "a shifted decimal or an account number in the amount column"
    )


def test_absurd_amount_is_quarantined_with_the_amount_in_currency_units():
    # the implausible transfer of a public AML data set (one of 6,418 rows), between two ordinary rows
    aml = {**GOOD, "amount": "2597164367.66", "currency": "SAR", "balance_after": None}
    result = parse(raw(GOOD, aml, {**GOOD, "amount": "-20.00"}))
    assert result.good["source_row"].to_list() == [1, 3]
    [bad] = result.bad.to_dicts()
    assert (bad["source_row"], bad["reason_code"]) == (2, "implausible_amount")
    assert bad["reason"] == "f.csv, row 2: " + implausible("2597164367.66", "SAR")
    assert bad["raw"] == str(aml)  # the row as read


def test_amount_just_below_the_bound_loads_in_any_sign_and_currency():
    result = parse(
        raw(
            {**GOOD, "amount": "999999999.99"},
            {**GOOD, "amount": "-999999999.99", "currency": "USD"},
            {**GOOD, "amount": "999,999,999.99", "currency": "JPY"},  # the full (non-plain) money path
            {**GOOD, "balance_after": "5000000000.00"},  # no plausibility bound on balances (none blocked them)
        )
    )
    assert result.bad.is_empty()
    assert result.good["amount"].to_list() == [Decimal("999999999.99"), Decimal("-999999999.99")] + [
        Decimal("999999999.99"),
        Decimal("-100.50"),
    ]


def test_the_bound_itself_and_beyond_are_quarantined_as_written_in_units():
    result = parse(
        raw(
            {**GOOD, "amount": "1000000000"},
            {**GOOD, "amount": "-1000000000.00"},
            {**GOOD, "amount": "−1,000,000,000.00", "currency": "EUR"},  # U+2212 and thousands separators
            {**GOOD, "amount": "US$1,500,000,000.5", "currency": "usd"},  # the symbol agrees: stripped
            {**GOOD, "amount": "9999999999999999.99", "currency": "HKD"},  # the largest exact amount
        )
    )
    assert result.good.is_empty()
    bad = result.bad.sort("source_row")
    assert set(bad["reason_code"]) == {"implausible_amount"}
    assert [r.split(": ", 1)[1] for r in bad["reason"]] == [
        implausible("1000000000.00", "CNY"),
        implausible("-1000000000.00", "CNY"),
        implausible("-1000000000.00", "EUR"),
        implausible("1500000000.50", "USD"),
        implausible("9999999999999999.99", "HKD"),
    ]


def test_a_broken_currency_or_symbol_is_named_before_the_amount_s_size():
    result = parse(
        raw(
            {**GOOD, "amount": "2597164367.66", "currency": "XYZ"},
            {**GOOD, "amount": "$2597164367.66", "currency": "CNY"},
            {**GOOD, "amount": "2597164367.666"},
        )
    )
    assert result.bad.sort("source_row")["reason_code"].to_list() == ["bad_currency", "currency_mismatch", "bad_amount"]


def test_the_bound_is_declared_once_and_is_the_one_the_suites_check():
    from expectations.suites import MAX_PLAUSIBLE_AMOUNT_CENTS
    from liushui.contracts import MAX_PLAUSIBLE_AMOUNT

    assert Decimal("1000000000") == MAX_PLAUSIBLE_AMOUNT
    assert MAX_PLAUSIBLE_AMOUNT_CENTS == int(MAX_PLAUSIBLE_AMOUNT * 100) - 1 == 99_999_999_999
    assert IMPLAUSIBLE_AMOUNT_REASON.format("x", "y") == implausible("x", "y")
