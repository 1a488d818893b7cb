"""Great Expectations suites and runner: real GX 1.24 (no mocks), one ephemeral context per session."""

from __future__ import annotations

import sys
from datetime import date, datetime
from decimal import Decimal

import polars as pl
import pytest

from liushui import contracts

AS_OF = date(2024, 6, 30)

# Network watch: every socket connect / DNS lookup made while `_WATCH["on"]` is set is recorded.
_WATCH: dict = {"on": False, "events": []}


def _audit(event: str, args: tuple) -> None:
    if _WATCH["on"] and event in {"socket.connect", "socket.getaddrinfo", "urllib.Request", "http.client.connect"}:
        _WATCH["events"].append((event, repr(args)[:200]))


sys.addaudithook(_audit)


@pytest.fixture(scope="session")
def gx_runner():
    """Import GX and create the process-wide ephemeral context once, watching the network meanwhile."""
    _WATCH["on"] = True
    try:
        from expectations import runner

        runner.gx_session()
        runner.validate_frame("transactions", transactions_frame(), run_id="warmup", as_of=AS_OF)
    finally:
        _WATCH["on"] = False
    return runner


# Frames -------------------------------------------------------------------------------------------
def canonical_rows(n: int = 3) -> list[dict]:
    return [
        {
            "txn_id": f"t{i}",
            "account_id": "acct1",
            "booked_at": datetime(2024, 3, i + 1, 10, 30),
            "amount": Decimal("1200.50") if i % 2 == 0 else Decimal("-35.00"),
            "currency": "CNY",
            "balance_after": Decimal("5000.00"),
            "counterparty_name": "某某科技有限公司",
            "counterparty_account": "6222000011112222",
            "description": "工资" if i % 2 == 0 else "消费",
            "channel": "网银",
            "source_file": "icbc_2024.csv",
            "source_row": i + 1,
            "batch_id": "b1",
        }
        for i in range(n)
    ]


def transactions_rows(n: int = 3) -> list[dict]:
    rows = canonical_rows(n)
    for r in rows:
        r.update(
            booked_on=r["booked_at"].date(),
            customer_id="cust1",
            txn_class="salary" if r["amount"] > 0 else "spend",
            related_relation=None,
            lender_id=None,
            is_clean_income=r["amount"] > 0,
        )
    return rows


def frame_of(table: contracts.Table, rows: list[dict]) -> pl.DataFrame:
    """Literal rows -> a frame with exactly the contract's dtypes."""
    schema = {c.name: c.dtype for c in table.columns}
    return table.conform(pl.DataFrame(rows, schema=schema)).collect()


def transactions_frame(**changes) -> pl.DataFrame:
    rows = transactions_rows()
    for key, value in changes.items():
        rows[1][key] = value
    return frame_of(contracts.TRANSACTIONS, rows)


def account_months_rows() -> list[dict]:
    m = dict(
        account_id="acct1",
        month_on=date(2024, 1, 1),
        currency="CNY",
        is_main_currency=True,
        is_full_month=True,
        covered_days=31,
        txn_count=12,
        inflow=Decimal("10000.00"),
        outflow=Decimal("8000.00"),
        clean_income=Decimal("9000.00"),
        related_in=Decimal("1000.00"),
        related_out=Decimal("500.00"),
        related_out_count=1,
        loan_disbursed=Decimal("0.00"),
        loan_repaid=Decimal("300.00"),
        large_outflow_count=0,
        large_outflow_sum=Decimal("0.00"),
        closing_balance=Decimal("2000.00"),
        income_cv=None,
        income_swing_share=0.0,
        window_months=1,
        income_history_months=0,
        typical_income=None,
        related_out_share=0.0625,
        debt_burden=0.0333,
        lenders_active_30d=0,
        lenders_active_90d=1,
        lenders_active_180d=1,
        lenders_active_judged=1,
        new_lenders=0,
        disbursement_count=0,
        loan_share_of_inflow=0.0,
        loan_share_trailing=0.0,
        penalty_count=0,
        penalty_amount=Decimal("0.00"),
        failed_debit_count=0,
        collection_count=0,
        negative_balance_days=0,
        low_balance_days=0,
        avg_daily_balance=Decimal("2000.00"),
        min_daily_balance=Decimal("1500.00"),
        max_daily_balance=Decimal("2500.00"),
        debt_burden_trailing=0.0333,
        business_in_count=0,
        business_in=Decimal("0.00"),
        business_out_count=0,
        business_out=Decimal("0.00"),
        business_in_share=0.0,
        balance_breaks=0,
    )
    return [m, {**m, "month_on": date(2024, 2, 1), "covered_days": 29, "income_cv": 0.1}]


def risk_flag_rows() -> list[dict]:
    f = dict(
        flag_id="f1",
        account_id="acct1",
        currency="CNY",
        flag_code="LARGE_OUTFLOW",
        period_start_on=date(2024, 1, 1),
        period_end_on=date(2024, 1, 31),
        metric_value=50000.0,
        threshold=20000.0,
        limit_name="absolute_floor",
        severity="high",
        rule_version="1.0",
        reason_zh="大额转出",
        reason_en="Large outflow",
        remediation_zh="无大额转出",
        remediation_en="No large outflow",
        evidence_txn_ids=["t1", "t2"],
    )
    return [f, {**f, "flag_id": "f2", "flag_code": "ROUND_TRIP", "severity": "medium"}]


def by_check(results: pl.DataFrame, expectation: str, column: str | None) -> dict:
    rows = results.filter(
        (pl.col("expectation") == expectation)
        & (pl.col("column_name").is_null() if column is None else pl.col("column_name") == column)
    ).to_dicts()
    assert len(rows) == 1, (expectation, column, rows)
    return rows[0]


def failed(results: pl.DataFrame) -> list[tuple]:
    return results.filter(~pl.col("success")).select("level", "expectation", "column_name").rows()


# Suites -----------------------------------------------------------------------------------------------
def test_import_is_cheap_and_does_not_import_gx():
    import subprocess

    code = "import sys, expectations.suites, expectations.runner;print('great_expectations' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_warm_up_creates_the_session_in_the_background():
    import subprocess

    code = (
        "import sys, expectations.runner as r, expectations.session as s;"
        "t = r.warm_up(); before = s._SESSION is None; t.join();"
        "print(before, s._SESSION is not None, r.gx_session() is s._SESSION, 'great_expectations' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    # the call returns before GX is imported; once joined, the one session exists and is the one used
    assert out.stdout.strip() == "True True True True"


def test_every_guarded_table_has_a_suite(gx_runner):
    from expectations.suites import ALL_SUITES, suite_for

    expected = {"canonical_transactions"} | {t.name for t in contracts.PUBLISHED_TABLES}
    assert set(ALL_SUITES) == expected
    for name, suite in ALL_SUITES.items():
        assert suite is suite_for(name)
        assert suite.checks and suite.blocking
        types = [c.expectation_type for c in suite.checks]
        assert "expect_table_columns_to_match_set" in types
        # contract part: every required column is not-null checked
        not_null = {
            suite.column_name(c) for c in suite.checks if c.expectation_type == "expect_column_values_to_not_be_null"
        }
        assert not_null == set(suite.table.required), name


def test_business_checks_have_the_documented_levels(gx_runner):
    from expectations.suites import suite_for

    def level(table: str, expectation: str, column: str) -> str:
        suite = suite_for(table)
        (check,) = [c for c in suite.checks if c.expectation_type == expectation and suite.column_name(c) == column]
        return check.level

    assert level("transactions", "expect_column_values_to_not_be_in_set", "amount") == "warning"
    assert level("transactions", "expect_column_values_to_be_between", "booked_at") == "blocking"
    assert level("risk_flags", "expect_column_values_to_be_between", "evidence_txn_ids") == "blocking"
    assert level("risk_flags", "expect_column_values_to_be_in_set", "severity") == "blocking"
    assert level("risk_flags", "expect_column_values_to_be_in_set", "flag_code") == "warning"
    assert (
        level("account_months", "expect_column_pair_values_a_to_be_greater_than_b", "inflow,clean_income") == "blocking"
    )


def test_duplicate_checks_are_rejected(gx_runner):
    import great_expectations as gx

    from expectations.suites import Check, build_suite

    dup = [Check(gx.expectations.ExpectColumnValuesToNotBeNull(column="reason"), "warning")]
    with pytest.raises(ValueError, match="duplicate"):
        build_suite(contracts.QUARANTINE, dup)  # the contract already has this not-null check
    with pytest.raises(ValueError, match="level"):
        Check(gx.expectations.ExpectColumnValuesToNotBeNull(column="x"), "fatal")


# Results ------------------------------------------------------------------------------------------------
def test_good_transactions_pass_and_results_conform(gx_runner):
    frame = transactions_frame()
    results = gx_runner.validate_frame("transactions", frame, run_id="r1", as_of=AS_OF)
    assert failed(results) == []
    assert results.schema == contracts.DQ_RESULTS.polars_schema
    assert contracts.DQ_RESULTS.conform(results).collect().equals(results)
    for col in contracts.DQ_RESULTS.required:
        assert results[col].null_count() == 0, col
    assert set(results["run_id"]) == {"r1"} and set(results["suite"]) == {"transactions"}
    assert set(results["level"]) <= {"blocking", "warning"}
    assert results["element_count"].to_list() == [3] * results.height
    assert results.schema["validated_at"] == pl.Datetime("us")  # naive (UTC by convention)
    # the primary key of dq_results holds
    assert not results.select(contracts.DQ_RESULTS.primary_key).is_duplicated().any()
    # the source frame is untouched
    assert frame.equals(transactions_frame())


def test_one_row_per_check_never_silently_empty(gx_runner):
    from expectations.suites import ALL_SUITES

    results = gx_runner.validate_frame("transactions", transactions_frame(), run_id="r", as_of=AS_OF)
    suite = ALL_SUITES["transactions"]
    assert results.height == len(suite.checks) > 10
    assert results["expectation"].to_list() == [c.expectation_type for c in suite.checks]
    assert results["kwargs_json"].to_list() == [c.kwargs_json for c in suite.checks]


def test_null_account_id_is_a_blocking_failure_with_count_1(gx_runner):
    results = gx_runner.validate_frame("transactions", transactions_frame(account_id=None), run_id="r", as_of=AS_OF)
    row = by_check(results, "expect_column_values_to_not_be_null", "account_id")
    assert row["success"] is False and row["level"] == "blocking"
    assert row["unexpected_count"] == 1 and row["element_count"] == 3
    assert failed(results) == [("blocking", "expect_column_values_to_not_be_null", "account_id")]


def test_null_amount_is_caught_through_the_cents_column(gx_runner):
    results = gx_runner.validate_frame(
        "canonical_transactions",
        frame_of(
            contracts.CANONICAL_TRANSACTION,
            [{**r, "amount": None} if i == 0 else r for i, r in enumerate(canonical_rows())],
        ),
        run_id="r",
        as_of=AS_OF,
    )
    row = by_check(results, "expect_column_values_to_not_be_null", "amount")
    assert row["success"] is False and row["unexpected_count"] == 1
    assert '"amount_cents"' in row["kwargs_json"]


def test_duplicate_txn_id_fails_unique(gx_runner):
    results = gx_runner.validate_frame("transactions", transactions_frame(txn_id="t0"), run_id="r", as_of=AS_OF)
    row = by_check(results, "expect_column_values_to_be_unique", "txn_id")
    assert row["success"] is False and row["level"] == "blocking"
    assert row["unexpected_count"] == 2  # GX counts every row of a duplicated group
    assert '"t0"' in row["detail"]


def test_booked_in_1900_or_after_as_of_fails(gx_runner):
    old = datetime(1900, 1, 1, 9)
    results = gx_runner.validate_frame(
        "canonical_transactions",
        frame_of(
            contracts.CANONICAL_TRANSACTION,
            [{**r, "booked_at": old} if i == 1 else r for i, r in enumerate(canonical_rows())],
        ),
        run_id="r",
        as_of=AS_OF,
    )
    row = by_check(results, "expect_column_values_to_be_between", "booked_at")
    assert (row["success"], row["unexpected_count"], row["level"]) == (False, 1, "blocking")
    assert "1900-01-01" in row["detail"] and "booked_at_max=2024-07-01" in row["detail"]
    # the same frame validated as of a date before the bookings: every booking is in the future
    results = gx_runner.validate_frame(
        "canonical_transactions",
        frame_of(contracts.CANONICAL_TRANSACTION, canonical_rows()),
        run_id="r",
        as_of=date(2024, 3, 1),
    )
    row = by_check(results, "expect_column_values_to_be_between", "booked_at")
    assert (row["success"], row["unexpected_count"]) == (False, 2)  # 03-02 and 03-03 > 03-01 + 1 day


def test_booked_at_outside_the_pandas_ns_range_still_fails(gx_runner):
    rows = canonical_rows()
    rows[0]["booked_at"] = datetime(1, 1, 1)
    results = gx_runner.validate_frame(
        "canonical_transactions", frame_of(contracts.CANONICAL_TRANSACTION, rows), run_id="r", as_of=AS_OF
    )
    row = by_check(results, "expect_column_values_to_be_between", "booked_at")
    assert (row["success"], row["unexpected_count"]) == (False, 1)


def test_transactions_business_failures(gx_runner):
    frame = transactions_frame(
        currency="RMB",
        amount=Decimal("0"),
        is_clean_income=True,
        txn_class="magic",
        booked_on=date(2024, 3, 5),
        source_row=0,
    )
    results = gx_runner.validate_frame("transactions", frame, run_id="r", as_of=AS_OF)
    assert sorted(failed(results)) == sorted(
        [
            ("blocking", "expect_column_values_to_be_in_set", "currency"),
            ("blocking", "expect_column_values_to_be_between", "source_row"),
            ("warning", "expect_column_values_to_not_be_in_set", "amount"),
            ("blocking", "expect_column_values_to_be_in_set", "booked_on,booked_at"),
            ("blocking", "expect_column_values_to_be_between", "amount,is_clean_income"),
            ("warning", "expect_column_values_to_be_in_set", "txn_class"),
        ]
    )
    assert '"RMB"' in by_check(results, "expect_column_values_to_be_in_set", "currency")["detail"]


def test_risk_flag_without_evidence_is_blocking(gx_runner):
    rows = risk_flag_rows()
    rows[1]["evidence_txn_ids"] = []
    rows[0]["severity"] = "critical"
    results = gx_runner.validate_frame("risk_flags", frame_of(contracts.RISK_FLAGS, rows), run_id="r")
    row = by_check(results, "expect_column_values_to_be_between", "evidence_txn_ids")
    assert (row["success"], row["unexpected_count"], row["level"]) == (False, 1, "blocking")
    assert sorted(failed(results)) == sorted(
        [
            ("blocking", "expect_column_values_to_be_between", "evidence_txn_ids"),
            ("blocking", "expect_column_values_to_be_in_set", "severity"),
        ]
    )
    with pytest.raises(gx_runner.BlockingExpectationFailed, match="risk_flags.*evidence_txn_ids"):
        gx_runner.raise_on_blocking(results)


def test_risk_flag_with_null_evidence_is_blocking(gx_runner):
    rows = risk_flag_rows()
    frame = frame_of(contracts.RISK_FLAGS, rows).with_columns(
        pl.when(pl.col("flag_id") == "f1").then(pl.col("evidence_txn_ids")).alias("evidence_txn_ids")
    )
    results = gx_runner.validate_frame("risk_flags", frame, run_id="r")
    row = by_check(results, "expect_column_values_to_not_be_null", "evidence_txn_ids")
    assert (row["success"], row["unexpected_count"]) == (False, 1)


def test_account_months_clean_income_above_inflow_fails(gx_runner):
    rows = account_months_rows()
    good = gx_runner.validate_frame("account_months", frame_of(contracts.ACCOUNT_MONTHS, rows), run_id="r")
    assert failed(good) == []
    rows[1]["clean_income"] = Decimal("10000.01")
    results = gx_runner.validate_frame("account_months", frame_of(contracts.ACCOUNT_MONTHS, rows), run_id="r")
    row = by_check(results, "expect_column_pair_values_a_to_be_greater_than_b", "inflow,clean_income")
    assert (row["success"], row["unexpected_count"], row["level"]) == (False, 1, "blocking")
    assert "1000001" in row["detail"]  # exact minor units, no float rounding hid the 0.01


def test_other_tables_good_frames_pass(gx_runner):
    quarantine = frame_of(
        contracts.QUARANTINE,
        [
            dict(
                source_file="x.csv",
                source_row=4,
                raw="a,b,c",
                reason_code="bad_date",
                reason="booked_at: '2024-13-01' is not a date",
                batch_id="b1",
                file_sha256="a" * 64,
            )
        ],
    )
    files = frame_of(
        contracts.SOURCE_FILES,
        [
            dict(
                file_sha256="b" * 64,
                file_name="x.csv",
                profile="canonical_csv",
                size_bytes=100,
                rows_read=5,
                rows_ok=4,
                rows_duplicate=1,
                rows_rejected=1,
                status="partial",
                error=None,
                batch_id="b1",
                seen_at=datetime(2024, 7, 1),
            )
        ],
    )
    links = frame_of(
        contracts.TRANSFER_LINKS,
        [
            dict(
                link_id="l1",
                link_type="round_trip",
                account_id="acct1",
                out_txn_id="t1",
                in_txn_id="t2",
                amount_out=Decimal("5000.00"),
                amount_in=Decimal("5000.00"),
                days_apart=2,
                counterparty="张三",
                evidence_txn_ids=["t1", "t2"],
            )
        ],
    )
    for name, frame in [("quarantine", quarantine), ("source_files", files), ("transfer_links", links)]:
        assert failed(gx_runner.validate_frame(name, frame, run_id="r")) == [], name
    # and each can fail
    bad_files = files.with_columns(rows_ok=pl.lit(2, pl.Int64), status=pl.lit("weird"))
    assert sorted(failed(gx_runner.validate_frame("source_files", bad_files, run_id="r"))) == sorted(
        [
            ("blocking", "expect_column_values_to_be_in_set", "status"),
            ("blocking", "expect_column_values_to_be_between", "rows_read,rows_ok,rows_rejected"),
        ]
    )
    bad_links = links.with_columns(days_apart=pl.lit(-1, pl.Int64), in_txn_id=pl.lit("t1"))
    assert sorted(failed(gx_runner.validate_frame("transfer_links", bad_links, run_id="r"))) == sorted(
        [
            ("blocking", "expect_column_values_to_be_between", "days_apart"),
            ("blocking", "expect_column_values_to_be_in_set", "out_txn_id,in_txn_id"),
        ]
    )


def test_empty_frames_validate_with_element_count_0(gx_runner):
    from expectations.suites import ALL_SUITES

    for name, suite in ALL_SUITES.items():
        results = gx_runner.validate_frame(name, suite.table.empty(), run_id="r", as_of=AS_OF)
        assert results.height == len(suite.checks), name
        assert results["success"].all(), (name, failed(results))
        assert set(results["element_count"]) == {0}, name


def test_missing_column_fails_never_passes(gx_runner):
    frame = transactions_frame().drop("account_id", "amount")
    results = gx_runner.validate_frame("transactions", frame, run_id="r", as_of=AS_OF)
    assert results.height == len(results.filter(pl.col("expectation") != "")) > 0
    schema = by_check(results, "expect_table_columns_to_match_set", None)
    assert schema["success"] is False
    for column in ("account_id", "amount"):
        for row in results.filter(pl.col("column_name") == column).to_dicts():
            assert row["success"] is False and "error" in row["detail"], row


def test_extra_column_fails_the_schema_check(gx_runner):
    frame = transactions_frame().with_columns(surprise=pl.lit(1))
    results = gx_runner.validate_frame("transactions", frame, run_id="r", as_of=AS_OF)
    assert failed(results) == [("blocking", "expect_table_columns_to_match_set", None)]


def test_raise_on_blocking(gx_runner):
    results = gx_runner.validate_frame("transactions", transactions_frame(account_id=None), run_id="r", as_of=AS_OF)
    with pytest.raises(gx_runner.BlockingExpectationFailed) as info:
        gx_runner.raise_on_blocking(results)
    message = str(info.value)
    assert "transactions" in message and "account_id" in message
    assert "expect_column_values_to_not_be_null" in message and "1 unexpected" in message
    assert info.value.failures.height == 1


def test_warning_only_failures_do_not_raise(gx_runner):
    results = gx_runner.validate_frame(
        "transactions",
        transactions_frame(amount=Decimal("0"), is_clean_income=False, txn_class="spend"),
        run_id="r",
        as_of=AS_OF,
    )
    assert failed(results) == [("warning", "expect_column_values_to_not_be_in_set", "amount")]
    gx_runner.raise_on_blocking(results)  # does not raise
    gx_runner.raise_on_blocking(contracts.DQ_RESULTS.empty())


def test_detail_is_truncated(gx_runner):
    rows = transactions_rows(8)
    for i, r in enumerate(rows):
        r["txn_class"] = f"unknown_class_with_a_rather_long_name_{i}"
    results = gx_runner.validate_frame("transactions", frame_of(contracts.TRANSACTIONS, rows), run_id="r", as_of=AS_OF)
    row = by_check(results, "expect_column_values_to_be_in_set", "txn_class")
    assert row["unexpected_count"] == 8 and len(row["detail"]) <= 200


def test_gx_never_touched_the_network(gx_runner):
    _WATCH["on"] = True
    try:
        gx_runner.validate_frame("risk_flags", frame_of(contracts.RISK_FLAGS, risk_flag_rows()), run_id="r")
    finally:
        _WATCH["on"] = False
    assert _WATCH["events"] == []


def test_gx_pin_and_patched_constant(gx_runner):
    import great_expectations as gx
    from great_expectations.execution_engine import pandas_execution_engine

    assert gx.__version__ == "1.24.1"  # the runner relies on GX internals of this exact version
    assert pandas_execution_engine.HASH_THRESHOLD == 0
    assert gx_runner.gx_session().context.variables.progress_bars.globally is False


# Row problems vs table problems ---------------------------------------------------------------------------
def source_files_frame(*counts: tuple[int, int]) -> pl.DataFrame:
    """One source_files row per (rows_read, rows_rejected); a file with no row read was rejected whole."""
    return frame_of(
        contracts.SOURCE_FILES,
        [
            dict(
                file_sha256=f"{i:064x}",
                file_name=f"f{i}.csv",
                profile=None if read == 0 else "canonical_csv",
                size_bytes=100 * read,
                rows_read=read,
                rows_ok=read - rejected,
                rows_duplicate=0,
                rows_rejected=rejected,
                status="rejected" if read == 0 else "partial" if rejected else "loaded",
                error=f"f{i}.csv: binary content" if read == 0 else None,
                batch_id="b1",
                seen_at=datetime(2024, 7, 1),
            )
            for i, (read, rejected) in enumerate(counts)
        ],
    )


def night_share(gx_runner, *counts: tuple[int, int]) -> dict:
    results = gx_runner.validate_frame("source_files", source_files_frame(*counts), run_id="r")
    return by_check(results, "expect_column_values_to_be_between", "rows_read,rows_rejected")


def test_a_night_with_mostly_bad_rows_is_blocking(gx_runner):
    results = gx_runner.validate_frame("source_files", source_files_frame((30, 20), (10, 2)), run_id="r")
    row = by_check(results, "expect_column_values_to_be_between", "rows_read,rows_rejected")
    assert (row["success"], row["level"], row["unexpected_count"], row["element_count"]) == (False, "blocking", 1, 2)
    assert row["detail"] == "unexpected sample: [0.55]"  # 22 of 40 rows read quarantined
    assert failed(results) == [("blocking", "expect_column_values_to_be_between", "rows_read,rows_rejected")]
    with pytest.raises(gx_runner.BlockingExpectationFailed, match=r"source_files: .* on rows_read,rows_rejected"):
        gx_runner.raise_on_blocking(results)


def test_a_night_with_a_few_bad_rows_publishes(gx_runner):
    assert night_share(gx_runner, (6418, 1))["success"] is True  # one implausible row of a 6,418-row export
    assert night_share(gx_runner, (30, 0), (10, 10))["success"] is True  # one bad file of a good night: 25 %
    assert night_share(gx_runner)["success"] is True  # no file tonight


def test_mostly_bad_night_edges(gx_runner):
    # exactly half is not "mostly"
    assert night_share(gx_runner, (30, 15), (10, 5))["success"] is True
    # a 3-row file with 2 bad rows, or 19 of 19 rows bad: too few rows read to judge the night
    assert night_share(gx_runner, (3, 2))["success"] is True
    assert night_share(gx_runner, (19, 19))["success"] is True
    # from 20 rows read the night is judged, also when no single file has 20 rows
    assert night_share(gx_runner, (20, 11))["success"] is False
    assert night_share(gx_runner, *[(3, 2)] * 7)["success"] is False  # 14 of 21
    # files rejected whole read no row: they count neither way (they have their own status and exit code)
    assert night_share(gx_runner, (0, 0), (0, 0), (30, 1))["success"] is True


def test_the_mostly_bad_night_bound_is_declared_once(gx_runner):
    from expectations.suites import MAX_QUARANTINED_SHARE, MIN_ROWS_FOR_QUARANTINED_SHARE, suite_for

    assert (MAX_QUARANTINED_SHARE, MIN_ROWS_FOR_QUARANTINED_SHARE) == (0.5, 20)
    suite = suite_for("source_files")
    (check,) = [c for c in suite.checks if suite.column_name(c) == "rows_read,rows_rejected"]
    assert check.level == "blocking" and check.kwargs["max_value"] == MAX_QUARANTINED_SHARE
    assert "50%" in check.why and "20 rows read" in check.why and "3-row file" in check.why


def test_a_whole_table_value_refuses_validation_in_parts(gx_runner, tmp_path):
    paths = []
    for i, part in enumerate(source_files_frame((30, 20), (10, 2)).iter_slices(1)):
        paths.append(tmp_path / f"part{i}.parquet")
        part.write_parquet(paths[-1])
    with pytest.raises(ValueError, match="night_quarantined_share"):
        gx_runner.validate_parts("source_files", paths, run_id="r")
    # one part is one frame: the night's share is that frame's
    [single] = [tmp_path / "all.parquet"]
    source_files_frame((30, 20), (10, 2)).write_parquet(single)
    rows = gx_runner.validate_parts("source_files", [single], run_id="r").rows
    assert by_check(rows, "expect_column_values_to_be_between", "rows_read,rows_rejected")["success"] is False


def test_an_implausible_amount_never_reaches_the_suite_from_parse(gx_runner):
    """Every row-level blocking check of canonical_transactions is also a parse check: the rows parse
    lets through at the edges pass the suite, the rows just beyond are quarantined instead."""
    from liushui.ingest.parse import parse_raw
    from tests.test_parse import raw

    latest = date(2024, 6, 30)
    edges = [
        {"amount": "999999999.99"},
        {"amount": "-999999999.99", "currency": "SAR"},
        {"amount": "1000000000.00"},
        {"amount": "-2597164367.66", "currency": "SAR"},
        {"booked_at": "1990-01-01 00:00:00"},
        {"booked_at": "1989-12-31 23:59:59"},
        {"booked_at": "2024-06-30 23:59:59"},
        {"booked_at": "2024-07-01 00:00:00"},
        {"currency": "rmb"},
    ]
    base = {"account_id": "A1", "booked_at": "2024-03-01 10:00:00", "amount": "-100.00"}
    parsed = parse_raw(
        raw(*({**base, **e} for e in edges)),
        source_file="f.csv",
        file_sha256="0" * 64,
        batch_id="b",
        latest_booking=latest,
    )
    assert parsed.good["source_row"].to_list() == [1, 2, 5, 7]
    assert parsed.bad.sort("source_row")["reason_code"].to_list() == [
        "implausible_amount",
        "implausible_amount",
        "date_out_of_range",
        "date_out_of_range",
        "bad_currency",
    ]
    results = gx_runner.validate_frame("canonical_transactions", parsed.good, run_id="r", as_of=latest)
    assert failed(results) == []
    # the suite still holds the bound for rows that did not come through parse
    rows = [{**r, "amount": Decimal("1000000000.00")} if i == 0 else r for i, r in enumerate(canonical_rows())]
    results = gx_runner.validate_frame(
        "canonical_transactions", frame_of(contracts.CANONICAL_TRANSACTION, rows), run_id="r", as_of=AS_OF
    )
    assert failed(results) == [("blocking", "expect_column_values_to_be_between", "amount")]
