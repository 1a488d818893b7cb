"""liushui.queries on a small database written by liushui.store: exact rows out, for the questions the CLI, the
dashboard, the account report and the run artifacts share; user input reaches SQL only as a parameter."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from liushui import contracts, queries, store
from liushui.contracts import Table

HOSTILE = "A1' OR '1'='1"


def _zero(dtype: pl.DataType) -> Any:
    """A value of the type for a required column the test does not care about."""
    if isinstance(dtype, pl.Decimal):
        return Decimal("0.00")
    if isinstance(dtype, pl.List):
        return []
    if dtype == pl.Boolean:
        return False
    if dtype == pl.Date:
        return date(2026, 1, 1)
    if isinstance(dtype, pl.Datetime):
        return datetime(2026, 1, 1)
    if dtype == pl.String:
        return "-"
    if dtype.is_float():
        return 0.0
    return 0


def rows(table: Table, *given: dict[str, Any]) -> pl.DataFrame:
    """Literal rows of `table`: the given values; other required columns a zero of their type, others null."""
    schema = table.polars_schema
    required = set(table.required)
    return pl.DataFrame(
        [{c: r.get(c, _zero(schema[c]) if c in required else None) for c in table.names} for r in given],
        schema=schema,
    )


def txn(txn_id: str, account_id: str, at: str, amount: str, counterparty: str | None = None) -> dict[str, Any]:
    booked = datetime.fromisoformat(at)
    return {
        "txn_id": txn_id,
        "account_id": account_id,
        "booked_at": booked,
        "booked_on": booked.date(),
        "amount": Decimal(amount),
        "currency": "CNY",
        "counterparty_name": counterparty,
        "txn_class": "spend",
    }


def flag(flag_id: str, account_id: str, code: str, start: date, severity: str, evidence: list[str]) -> dict[str, Any]:
    return {
        "flag_id": flag_id,
        "account_id": account_id,
        "currency": "CNY",
        "flag_code": code,
        "period_start_on": start,
        "period_end_on": start.replace(day=28),
        "metric_value": 2.5,
        "threshold": 2.0,
        "limit_name": f"{code.lower()}_limit",
        "severity": severity,
        "rule_version": f"{code.lower()}-v1",
        "reason_zh": f"{code} 原因",
        "reason_en": f"{code} reason",
        "remediation_zh": "整改",
        "remediation_en": "fix it",
        "evidence_txn_ids": evidence,
    }


def month(account_id: str, on: date, currency: str, *, main: bool, clean_income: str) -> dict[str, Any]:
    return {
        "account_id": account_id,
        "month_on": on,
        "currency": currency,
        "is_main_currency": main,
        "is_full_month": on < date(2026, 3, 1),
        "inflow": Decimal(clean_income),
        "clean_income": Decimal(clean_income),
        "debt_burden_trailing": 0.125 if main else None,
    }


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    database = tmp_path_factory.mktemp("read_queries") / "w.duckdb"
    frames = {
        "transactions": rows(
            contracts.TRANSACTIONS,
            txn("t1", "A1", "2026-02-03 09:00:00", "-500.00", "甲"),
            txn("t2", "A1", "2026-02-01 10:00:00", "-20.50"),
            txn("t3", "A2", "2026-02-02 11:00:00", "480.00", "乙"),
        ),
        "risk_flags": rows(
            contracts.RISK_FLAGS,
            # t3 is the other account's leg; "gone" is in no published transaction; t1 is named twice.
            flag("f1", "A1", "ROUND_TRIP", date(2026, 2, 1), "high", ["t1", "t3", "gone", "t1"]),
            flag("f2", "A1", "LARGE_OUTFLOW", date(2026, 2, 1), "medium", ["t2"]),
            flag("f3", "A2", "LARGE_OUTFLOW", date(2026, 1, 1), "high", ["t3"]),
        ),
        "account_risk": rows(
            contracts.ACCOUNT_RISK,
            {
                "account_id": "A1",
                "customer_id": "C1",
                "holder_name": "张三",
                "currency": "CNY",
                "as_of_on": date(2026, 3, 15),
                "score": 72.0,
                "band": "high",
                "score_components_json": '{"ROUND_TRIP": 40.0, "LARGE_OUTFLOW": 32.0}',
                "active_flags": ["LARGE_OUTFLOW", "ROUND_TRIP"],
                "statement_trust": "ok",
                "recovery_status": "at_risk",
                "clean_income_last": Decimal("8000.00"),
                "remediation_zh": ["整改"],
                "remediation_en": ["fix it"],
                "rule_version": "risk-v1",
            },
            {
                "account_id": "A2",
                "customer_id": "C1",
                "holder_name": "张三",
                "currency": "CNY",
                "as_of_on": date(2026, 3, 15),
                "score": 30.0,
                "band": "medium",
            },
        ),
        "account_months": rows(
            contracts.ACCOUNT_MONTHS,
            month("A1", date(2026, 3, 1), "CNY", main=True, clean_income="100.00"),
            month("A1", date(2026, 2, 1), "USD", main=False, clean_income="7.00"),
            month("A1", date(2026, 2, 1), "CNY", main=True, clean_income="8000.00"),
            month("A2", date(2026, 2, 1), "CNY", main=True, clean_income="1.00"),
        ),
        "quarantine": rows(
            contracts.QUARANTINE,
            *(
                {"source_file": f, "source_row": n, "reason_code": code, "reason": f"{f}, row {n}: {code}"}
                | {"batch_id": batch, "file_sha256": f"{f}-{batch}"}
                for f, n, code, batch in [
                    ("b.csv", 4, "bad_amount", "r1"),
                    ("a.csv", 3, "bad_date", "r1"),
                    ("a.csv", 2, "bad_date", "r1"),
                    ("a.csv", 9, "bad_date", "r0"),
                ]
            ),
        ),
        "dq_results": rows(
            contracts.DQ_RESULTS,
            *(
                {"run_id": "r1", "suite": table, "table_name": table, "expectation": e, "column_name": column}
                | {"kwargs_json": "{}", "level": level, "success": ok, "unexpected_count": bad, "element_count": 3}
                for table, e, column, level, ok, bad in [
                    ("transactions", "expect_column_values_to_not_be_null", "amount", "warning", False, 1),
                    ("transactions", "expect_column_values_to_be_unique", "txn_id", "blocking", True, 0),
                    ("risk_flags", "expect_table_row_count_to_be_between", None, "warning", False, None),
                    ("transactions", "expect_column_values_to_be_between", "amount", "blocking", False, 2),
                ]
            ),
        ),
    }
    with store.writer(database) as con:
        store.publish(con, frames, affected_accounts=None)
    return database


@pytest.fixture
def con(db: Path):
    connection = store.reader(db)
    yield connection
    connection.close()


def test_flags_per_code(con):
    assert queries.flags_per_code(con).rows() == [
        ("LARGE_OUTFLOW", 2, 2, 1, "large_outflow-v1"),
        ("ROUND_TRIP", 1, 1, 1, "round_trip-v1"),
    ]


def test_flags_of_one_code_by_account_and_period(con):
    found = queries.flags_of_code(con, "LARGE_OUTFLOW", limit=5)
    assert found.columns == contracts.RISK_FLAGS.names
    assert found.select("flag_id", "account_id").rows() == [("f2", "A1"), ("f3", "A2")]
    assert queries.flags_of_code(con, "LARGE_OUTFLOW", limit=1)["flag_id"].to_list() == ["f2"]
    assert queries.flags_of_code(con, "' OR ''='", limit=5).is_empty()


def test_account_risk_is_the_row_with_its_points(con):
    risk = queries.account_risk(con, "A1")
    assert risk is not None
    assert set(risk) == {*contracts.ACCOUNT_RISK.names, "score_components"}
    assert (risk["score"], risk["band"], risk["clean_income_last"], risk["active_flags"]) == (
        72.0,
        "high",
        Decimal("8000.00"),
        ["LARGE_OUTFLOW", "ROUND_TRIP"],
    )
    assert risk["score_components"] == {"ROUND_TRIP": 40.0, "LARGE_OUTFLOW": 32.0}
    assert risk["months_since_severe"] is None and risk["as_of_on"] == date(2026, 3, 15)
    assert queries.account_risk(con, "nope") is None
    assert queries.account_risk(con, HOSTILE) is None


def test_account_months_main_currency_or_all(con):
    main = queries.account_months(con, "A1")
    assert main.columns == contracts.ACCOUNT_MONTHS.names
    assert main.select("month_on", "currency", "clean_income", "is_full_month").rows() == [
        (date(2026, 2, 1), "CNY", Decimal("8000.00"), True),
        (date(2026, 3, 1), "CNY", Decimal("100.00"), False),
    ]
    every = queries.account_months(con, "A1", main_currency_only=False)
    assert every.select("month_on", "currency").rows() == [
        (date(2026, 2, 1), "CNY"),
        (date(2026, 3, 1), "CNY"),
        (date(2026, 2, 1), "USD"),
    ]
    assert queries.account_months(con, HOSTILE, main_currency_only=False).is_empty()


def test_account_flags_in_period_order_with_evidence_count(con):
    flags = queries.account_flags(con, "A1")
    assert flags.columns == [*contracts.RISK_FLAGS.names, "evidence_count"]
    assert flags.select("flag_id", "flag_code", "evidence_count").rows() == [
        ("f2", "LARGE_OUTFLOW", 1),
        ("f1", "ROUND_TRIP", 4),
    ]
    assert queries.account_flags(con, HOSTILE).is_empty()


def test_account_evidence_names_every_id_and_the_transactions_found(con):
    evidence = queries.account_evidence(con, "A1")
    assert evidence.select("flag_id", "txn_id", "account_id", "amount", "counterparty_name").rows() == [
        ("f1", "t3", "A2", Decimal("480.00"), "乙"),
        ("f1", "t1", "A1", Decimal("-500.00"), "甲"),
        ("f1", "t1", "A1", Decimal("-500.00"), "甲"),
        ("f1", "gone", None, None, None),
        ("f2", "t2", "A1", Decimal("-20.50"), None),
    ]


def test_failed_expectations_of_a_run_blocking_first(con):
    assert queries.dq_failed(con, "r1").select("level", "table_name", "column_name", "unexpected_count").rows() == [
        ("blocking", "transactions", "amount", 2),
        ("warning", "risk_flags", None, None),
        ("warning", "transactions", "amount", 1),
    ]
    assert queries.dq_failed(con, "' OR 1=1 --").is_empty()


def test_quarantine_of_one_batch_per_file_and_reason(con):
    assert queries.quarantine_of_batch(con, "r1").rows() == [
        ("a.csv", "bad_date", 2, "a.csv, row 2: bad_date"),
        ("b.csv", "bad_amount", 1, "b.csv, row 4: bad_amount"),
    ]


def test_published_row_counts_follow_the_contracts(con):
    counts = queries.published_row_counts(con)
    assert list(counts) == [t.name for t in contracts.PUBLISHED_TABLES]
    assert {k: v for k, v in counts.items() if v} == {
        "transactions": 3,
        "quarantine": 4,
        "account_months": 4,
        "risk_flags": 3,
        "account_risk": 2,
        "dq_results": 4,
    }


def test_the_account_report_reads_the_same_rows(db):
    from apps.report import account_report

    report = account_report(db, "A1")
    assert [(m.month_on, m.clean_income, m.debt_burden_trailing) for m in report.months] == [
        (date(2026, 2, 1), Decimal("8000.00"), 0.125),
        (date(2026, 3, 1), Decimal("100.00"), 0.125),
    ]
    assert report.score_components == {"ROUND_TRIP": 40.0, "LARGE_OUTFLOW": 32.0}
    # Each flag's evidence: the transactions found, once each, in booking order.
    assert [(f.flag_code, [t.txn_id for t in f.evidence]) for f in report.flags] == [
        ("LARGE_OUTFLOW", ["t2"]),
        ("ROUND_TRIP", ["t3", "t1"]),
    ]
    assert report.flags[1].evidence_txn_ids == ["t1", "t3", "gone", "t1"]


def test_the_run_artifacts_read_the_same_rows(db):
    from flows.artifacts import KEY_DATA_QUALITY, KEY_FLAGS, KEY_QUARANTINE, run_tables

    tables = run_tables(db, "r1")
    assert tables[KEY_FLAGS] == {
        "flag_code": ["LARGE_OUTFLOW", "ROUND_TRIP"],
        "flags": [2, 1],
        "accounts": [2, 1],
        "high": [1, 1],
    }
    assert tables[KEY_QUARANTINE] == {
        "source_file": ["a.csv", "b.csv"],
        "reason_code": ["bad_date", "bad_amount"],
        "rows": [2, 1],
        "example": ["a.csv, row 2: bad_date", "b.csv, row 4: bad_amount"],
    }
    failed = tables[KEY_DATA_QUALITY]
    assert list(failed) == [
        "table_name",
        "expectation",
        "column_name",
        "level",
        "unexpected_count",
        "element_count",
        "detail",
    ]
    assert list(zip(failed["level"], failed["table_name"], failed["column_name"], strict=True)) == [
        ("blocking", "transactions", "amount"),
        ("warning", "risk_flags", None),
        ("warning", "transactions", "amount"),
    ]


@pytest.mark.parametrize("value", [0.125, -0.125, 0.375, 2.675, 0.045, 1.115, -19.95, -0.02, 2.5, 7.0, 1e-9])
def test_the_cli_rounds_the_shared_values_as_duckdb_did(value):
    """`liushui account` and `liushui flags --code` printed DuckDB's round() of their ratios; they round the
    shared queries' values the same way (half away from zero; Python's round() takes ties to even)."""
    import math

    import duckdb

    from apps.cli import _round

    for digits in (1, 2):
        (expected,) = duckdb.sql("SELECT round(?::DOUBLE, ?)", params=[value, digits]).fetchall()[0]
        rounded = _round(value, digits)
        assert (rounded, math.copysign(1, rounded)) == (expected, math.copysign(1, expected))


def test_the_customers_view_sums_a_customer_up_over_their_accounts(con):
    got = con.sql("SELECT * FROM v_customers").pl()
    assert got.rows() == [("C1", "张三", 2, 72.0, "high", 1, ["LARGE_OUTFLOW", "ROUND_TRIP"], ["A1", "A2"])]
