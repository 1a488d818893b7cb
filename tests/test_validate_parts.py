"""Validating a table part by part (account-hash shards as Parquet files) gives exactly the `dq_results`
rows and GX results of validating the whole table: real GX, literal rows, parts split by account."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from expectations.runner import TableValidation, merge_rule, validate_parts, validate_table
from liushui import contracts
from tests.test_expectations import account_months_rows, frame_of

AS_OF = date(2024, 6, 30)


# Frames ---------------------------------------------------------------------------------------------------
def txn(account: str, n: int, amount: str = "100.00", **changes) -> dict:
    """One canonical transaction of `account` (txn_id ``<account>-<n>``), booked on March `n`."""
    return {
        "txn_id": f"{account}-{n}",
        "account_id": account,
        "booked_at": datetime(2024, 3, n, 10, 30),
        "amount": Decimal(amount),
        "currency": "CNY",
        "balance_after": None,
        "counterparty_name": "某某公司",
        "counterparty_account": None,
        "description": "工资",
        "channel": "网银",
        "source_file": f"{account}.csv",
        "source_row": n,
        "batch_id": "b1",
        **changes,
    }


def classified(row: dict, **changes) -> dict:
    """`row` as a transactions row: clean income when money comes in, unless changed."""
    return {
        **row,
        "booked_on": row["booked_at"].date(),
        "customer_id": "c-" + row["account_id"],
        "txn_class": "salary" if row["amount"] > 0 else "spend",
        "related_relation": None,
        "lender_id": None,
        "lender_category": None,
        "loan_role": None,
        "is_clean_income": row["amount"] > 0,
        **changes,
    }


def transactions_with_failures() -> pl.DataFrame:
    """Three accounts. acct1: 4 unknown currencies (blocking) and a repeated txn_id (blocking);
    acct2: only clean income, one of it 0.00 (blocking; GX sees the cents column as Int64 in this part,
    as Float64 in the whole table) and an unknown class (warning); acct3: 3 unknown currencies and a
    zero amount (warning)."""
    rows = [classified(txn("acct1", n, currency="RMB" if n <= 4 else "CNY")) for n in range(1, 7)]
    rows[5]["txn_id"] = "acct1-5"
    rows += [
        classified(
            txn("acct2", n, "0.00" if n == 2 else "50.00"),
            is_clean_income=True,
            txn_class="magic" if n == 3 else "salary",
        )
        for n in range(1, 5)
    ]
    rows += [
        classified(
            txn("acct3", n, "0.00" if n == 5 else "-20.00" if n % 2 else "30.00", currency="XYZ" if n <= 3 else "CNY")
        )
        for n in range(1, 7)
    ]
    return frame_of(contracts.TRANSACTIONS, rows)


def account_months_with_failures() -> pl.DataFrame:
    """Two accounts x two months; acct1 covers 40 days of a month (blocking), acct2 has a negative debt
    burden (warning) and more clean income than inflow (blocking)."""
    first, second = account_months_rows()
    return frame_of(
        contracts.ACCOUNT_MONTHS,
        [
            {**first, "covered_days": 40},
            second,
            {**first, "account_id": "acct2", "debt_burden": -0.5},
            {**second, "account_id": "acct2", "clean_income": Decimal("10000.01")},
        ],
    )


def shards(frame: pl.DataFrame, directory: Path) -> list[Path]:
    """One Parquet file per account, in order of first appearance."""
    paths = []
    for i, part in enumerate(frame.partition_by("account_id", maintain_order=True)):
        paths.append(directory / f"shard_{i:04d}.parquet")
        part.write_parquet(paths[-1])
    return paths


def whole(paths: list[Path]) -> pl.DataFrame:
    return pl.concat([pl.read_parquet(p) for p in paths])


# Comparison -------------------------------------------------------------------------------------------------
def assert_same_validation(got: TableValidation, expected: TableValidation) -> None:
    """Same dq_results rows (all but validated_at, detail included) and the same GX results, check by check."""
    assert_frame_equal(got.rows.drop("validated_at"), expected.rows.drop("validated_at"))
    assert gx_view(got) == gx_view(expected)


def validated_in_parts(name: str, paths: list[Path]) -> TableValidation:
    """`validate_parts` over `paths`, asserted equal to validating the concatenated table at once."""
    got = validate_parts(name, paths, run_id="r", as_of=AS_OF)
    assert_same_validation(got, validate_table(name, whole(paths), run_id="r", as_of=AS_OF))
    return got


def gx_view(validation: TableValidation) -> dict:
    view = {}
    for outcome in validation.gx_results:
        view[outcome.suite_name] = (outcome.success, outcome.statistics)
        for r in outcome.results:
            config = r.expectation_config
            view[(outcome.suite_name, config.type, repr(sorted(config.kwargs.items())))] = (r.success, r.result)
    return view


def failed(validation: TableValidation) -> list[tuple]:
    return sorted(validation.rows.filter(~pl.col("success")).select("level", "expectation", "column_name").rows())


def row(validation: TableValidation, expectation: str, column: str | None) -> dict:
    (found,) = validation.rows.filter(
        (pl.col("expectation") == expectation) & pl.col("column_name").eq_missing(column)
    ).to_dicts()
    return found


# Tests ------------------------------------------------------------------------------------------------------
def test_transaction_shards_validate_like_the_whole_table(tmp_path):
    paths = shards(transactions_with_failures(), tmp_path)
    assert len(paths) == 3
    got = validated_in_parts("transactions", paths)
    assert failed(got) == sorted(
        [
            ("blocking", "expect_column_values_to_be_in_set", "currency"),
            ("blocking", "expect_column_values_to_be_unique", "txn_id"),
            ("blocking", "expect_column_values_to_be_between", "amount,is_clean_income"),
            ("warning", "expect_column_values_to_not_be_in_set", "amount"),
            ("warning", "expect_column_values_to_be_in_set", "txn_class"),
        ]
    )
    currency = row(got, "expect_column_values_to_be_in_set", "currency")
    assert (currency["unexpected_count"], currency["element_count"]) == (7, 16)
    assert currency["detail"] == 'unexpected sample: ["RMB", "RMB", "RMB", "RMB", "XYZ"]'  # capped at 5
    assert (
        row(got, "expect_column_values_to_be_between", "amount,is_clean_income")["detail"] == "unexpected sample: [0]"
    )


def test_canonical_transaction_shards_validate_like_the_whole_table(tmp_path):
    rows = [
        txn("acct1", 1),
        txn("acct1", 2, booked_at=datetime(1900, 1, 1)),
        txn("acct2", 1, "0.00"),
        txn("acct2", 2, source_file=None),
        txn("acct3", 1, source_row=0),
        txn("acct3", 2),
    ]
    paths = shards(frame_of(contracts.CANONICAL_TRANSACTION, rows), tmp_path)
    got = validated_in_parts("canonical_transactions", paths)
    assert failed(got) == sorted(
        [
            ("blocking", "expect_column_values_to_be_between", "booked_at"),
            ("blocking", "expect_column_values_to_not_be_null", "source_file"),
            ("blocking", "expect_column_values_to_be_between", "source_row"),
            ("warning", "expect_column_values_to_not_be_in_set", "amount"),
        ]
    )


def test_account_month_shards_validate_like_the_whole_table(tmp_path):
    paths = shards(account_months_with_failures(), tmp_path)
    got = validated_in_parts("account_months", paths)
    assert failed(got) == sorted(
        [
            ("blocking", "expect_column_values_to_be_between", "covered_days"),
            ("blocking", "expect_column_pair_values_a_to_be_greater_than_b", "inflow,clean_income"),
            ("warning", "expect_column_values_to_be_between", "debt_burden"),
        ]
    )


def test_a_failure_in_one_part_fails_the_table_with_that_part_s_count(tmp_path):
    rows = [classified(txn(a, n)) for a in ("acct1", "acct2", "acct3") for n in (1, 2)]
    rows[3]["currency"] = "RMB"
    paths = shards(frame_of(contracts.TRANSACTIONS, rows), tmp_path)
    got = validated_in_parts("transactions", paths)
    assert failed(got) == [("blocking", "expect_column_values_to_be_in_set", "currency")]
    currency = row(got, "expect_column_values_to_be_in_set", "currency")
    assert (currency["unexpected_count"], currency["element_count"]) == (1, 6)
    assert set(got.rows["element_count"]) == {6}


def test_a_txn_id_in_two_parts_is_a_duplicate(tmp_path):
    """The shards are meant to keep every key in one part; validation checks it rather than trusts it."""
    rows = [classified(txn(a, n)) for a in ("acct1", "acct2", "acct3") for n in (1, 2, 3)]
    rows[4]["txn_id"] = rows[1]["txn_id"]  # acct1-2 again, in acct2's part
    rows[8]["txn_id"] = rows[7]["txn_id"]  # and a repeat inside acct3's part
    paths = shards(frame_of(contracts.TRANSACTIONS, rows), tmp_path)
    got = validated_in_parts("transactions", paths)
    unique = row(got, "expect_column_values_to_be_unique", "txn_id")
    assert (unique["success"], unique["unexpected_count"]) == (False, 4)
    assert unique["detail"] == 'unexpected sample: ["acct1-2", "acct1-2", "acct3-2", "acct3-2"]'


def test_an_account_month_in_two_parts_is_a_duplicate(tmp_path):
    frame = account_months_with_failures()
    parts = [frame.slice(0, 2), frame.slice(2, 2).with_columns(account_id=pl.lit("acct1"))]
    paths = []
    for i, part in enumerate(parts):
        paths.append(tmp_path / f"part_{i}.parquet")
        part.write_parquet(paths[-1])
    got = validated_in_parts("account_months", paths)
    key = row(got, "expect_compound_columns_to_be_unique", "account_id,month_on,currency")
    assert (key["success"], key["unexpected_count"]) == (False, 4)


def test_one_part_is_validate_table_of_that_frame(tmp_path):
    frame = transactions_with_failures()
    path = tmp_path / "only.parquet"
    frame.write_parquet(path)
    expected = validate_table("transactions", frame, run_id="r", as_of=AS_OF)
    for part in (path, frame, frame.lazy()):
        assert_same_validation(validate_parts("transactions", [part], run_id="r", as_of=AS_OF), expected)


def test_no_part_validates_an_empty_table():
    for name in ("transactions", "account_months"):
        got = validate_parts(name, [], run_id="r", as_of=AS_OF)
        empty = contracts.TRANSACTIONS if name == "transactions" else contracts.ACCOUNT_MONTHS
        assert_same_validation(got, validate_table(name, empty.empty(), run_id="r", as_of=AS_OF))
        assert got.rows["success"].all() and set(got.rows["element_count"]) == {0}


def test_frames_and_lazy_frames_are_parts_too(tmp_path):
    paths = shards(account_months_with_failures(), tmp_path)
    frames = [pl.read_parquet(paths[0]), pl.scan_parquet(paths[1])]
    assert_same_validation(
        validate_parts("account_months", frames, run_id="r", as_of=AS_OF),
        validate_parts("account_months", paths, run_id="r", as_of=AS_OF),
    )


def test_a_part_without_a_column_fails_the_schema_check(tmp_path):
    paths = shards(transactions_with_failures(), tmp_path)
    pl.read_parquet(paths[1]).drop("channel").write_parquet(paths[1])
    got = validate_parts("transactions", paths, run_id="r", as_of=AS_OF)
    schema = row(got, "expect_table_columns_to_match_set", None)
    assert schema["success"] is False and schema["element_count"] == 16
    assert "channel" not in schema["detail"]


def test_merged_gx_results_build_data_docs(tmp_path):
    from expectations.datadocs import build_data_docs

    validation = validate_parts("transactions", shards(transactions_with_failures(), tmp_path), run_id="r", as_of=AS_OF)
    index = build_data_docs({"transactions": validation.gx_results}, tmp_path / "docs", run_id="r")
    pages = "".join(p.read_text() for p in (tmp_path / "docs").rglob("*.html") if p != index)
    assert "RMB" in pages and "XYZ" in pages and "magic" in pages  # samples of three shards, one page


def test_every_check_of_every_suite_can_be_merged():
    """A new aggregate expectation (mean, min / max, row count) needs a merge rule before shards can run."""
    from expectations.suites import all_suites

    unmergeable = [
        (name, c.expectation_type)
        for name, suite in all_suites().items()
        for c in suite.checks
        if merge_rule(c) is None
    ]
    assert unmergeable == []
    with pytest.raises(KeyError):
        validate_parts("no_such_table", [], run_id="r")
