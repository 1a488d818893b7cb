"""Running-balance continuity on literal rows: statement order is not file order."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl

from liushui.config import load_rules
from tests.rows import canonical, txn
from transforms.integrity import balance_breaks, integrity_flags, integrity_month_features

RULES = load_rules().statement_integrity


def _transactions(rows: list[dict]) -> pl.LazyFrame:
    return canonical(rows).lazy().with_columns(booked_on=pl.col("booked_at").dt.date())


def breaks_of(rows: list[dict]) -> list[tuple]:
    out = balance_breaks(_transactions(rows), rules=RULES).collect()
    return list(out.select("txn_id", "prev_txn_id", "expected_balance", "stated_balance", "difference").iter_rows())


def test_newest_first_export_is_continuous():
    rows = [  # the bank's file order: newest first
        txn("A", "2026-01-04 09:00:00", "-200", balance="1300"),
        txn("A", "2026-01-03 09:00:00", "500", balance="1500"),
        txn("A", "2026-01-02 09:00:00", "-100", balance="1000"),
        txn("A", "2026-01-01 09:00:00", "1100", balance="1100"),
    ]
    assert breaks_of(rows) == []


def test_rows_of_one_timestamp_in_scrambled_order_are_continuous():
    # date-only export: every row at 00:00; the true order is 1000 -> 900 -> 950 -> 700 -> 720
    rows = [
        txn("A", "2026-01-01 00:00:00", "1000", balance="1000"),
        txn("A", "2026-01-02 00:00:00", "-250", balance="700"),
        txn("A", "2026-01-02 00:00:00", "50", balance="950"),
        txn("A", "2026-01-02 00:00:00", "20", balance="720"),
        txn("A", "2026-01-02 00:00:00", "-100", balance="900"),
    ]
    assert breaks_of(rows) == []


def test_a_missing_row_is_exactly_one_break_naming_both_rows_and_the_difference():
    rows = [
        txn("A", "2026-01-01 09:00:00", "1000", balance="1000"),
        txn("A", "2026-01-02 09:00:00", "-100", balance="900"),
        # missing: 2026-01-03 -50 -> 850
        txn("A", "2026-01-04 09:00:00", "-30", balance="820"),
        txn("A", "2026-01-05 09:00:00", "80", balance="900"),
    ]
    assert breaks_of(rows) == [("A-3", "A-2", Decimal("870.00"), Decimal("820.00"), Decimal("-50.00"))]


def test_a_missing_row_inside_a_timestamp_group_names_the_nearest_predecessor():
    rows = [
        txn("A", "2026-01-01 00:00:00", "1000", balance="1000"),
        txn("A", "2026-01-02 00:00:00", "-100", balance="900"),
        txn("A", "2026-01-02 00:00:00", "-40", balance="760"),  # missing before it: -100 -> 800
    ]
    assert breaks_of(rows) == [("A-3", "A-2", Decimal("860.00"), Decimal("760.00"), Decimal("-100.00"))]


def test_reversal_pair_is_continuous_in_any_order():
    rows = [
        txn("A", "2026-01-01 09:00:00", "1000", balance="1000"),
        # the reversal listed before the row it undoes, both at the same minute
        txn("A", "2026-01-02 09:00:00", "500", "某某商户", None, "冲正", balance="1000"),
        txn("A", "2026-01-02 09:00:00", "-500", "某某商户", None, "消费", balance="500"),
        txn("A", "2026-01-03 09:00:00", "-200", "某某银行", None, "抹账", balance="800"),
        txn("A", "2026-01-03 10:00:00", "200", "某某银行", None, "抹账", balance="1000"),
    ]
    assert breaks_of(rows) == []


def test_the_first_row_has_no_predecessor_and_is_not_a_break():
    rows = [
        txn("A", "2026-01-01 09:00:00", "-100", balance="4321.00"),
        txn("A", "2026-01-02 09:00:00", "-21", balance="4300.00"),
    ]
    assert breaks_of(rows) == []


def test_rows_without_balances_are_ignored():
    rows = [
        txn("A", "2026-01-01 09:00:00", "1000"),
        txn("A", "2026-01-02 09:00:00", "-100"),
        txn("B", "2026-01-01 09:00:00", "1000", balance="1000"),
        txn("B", "2026-01-02 09:00:00", "-5"),  # unstated row inside a stated account: 995 is not known
        txn("B", "2026-01-03 09:00:00", "-95", balance="900"),
    ]
    assert breaks_of(rows) == []


def test_currencies_are_separate_statements():
    rows = [
        txn("A", "2026-01-01 09:00:00", "1000", balance="1000"),
        txn("A", "2026-01-01 10:00:00", "10", balance="10", currency="USD"),
        txn("A", "2026-01-02 09:00:00", "-100", balance="900"),
        txn("A", "2026-01-02 10:00:00", "5", balance="15", currency="USD"),
    ]
    assert breaks_of(rows) == []


def test_tolerance_absorbs_rounding():
    rows = [
        txn("A", "2026-01-01 09:00:00", "1000", balance="1000"),
        txn("A", "2026-01-02 09:00:00", "-100", balance="900.01"),
    ]
    assert len(breaks_of(rows)) == 1
    loose = RULES.model_copy(update={"tolerance": 0.01})
    assert balance_breaks(_transactions(rows), rules=loose).collect().height == 0


def test_month_features_and_one_high_flag_per_account_month():
    rows = [
        txn("A", "2026-01-01 09:00:00", "1000", balance="1000"),
        txn("A", "2026-01-02 09:00:00", "-100", balance="850"),  # break: -50
        txn("A", "2026-01-03 09:00:00", "-50", balance="700"),  # break: -100
        txn("A", "2026-02-03 09:00:00", "-50", balance="650"),
    ]
    breaks = balance_breaks(_transactions(rows), rules=RULES)
    features = integrity_month_features(breaks).collect()
    assert features.rows() == [("A", "CNY", date(2026, 1, 1), 2)]
    flags = integrity_flags(breaks, rules=RULES).collect()
    assert flags.height == 1
    flag = flags.row(0, named=True)
    assert flag["flag_code"] == "BALANCE_BREAK"
    assert (flag["period_start_on"], flag["period_end_on"]) == (date(2026, 1, 1), date(2026, 1, 31))
    assert (flag["metric_value"], flag["threshold"], flag["severity"]) == (100.0, 0.0, "high")
    assert flag["evidence_txn_ids"] == ["A-1", "A-2", "A-3"]
    assert "其他指标可信度降低" in flag["reason_zh"] and "less reliable" in flag["reason_en"]


def test_breaks_in_two_currencies_of_one_month_are_two_flags_with_distinct_ids():
    rows = [
        txn("A", "2026-01-01 09:00:00", "1000", balance="1000"),
        txn("A", "2026-01-02 09:00:00", "-100", balance="850"),  # CNY break: -50
        txn("A", "2026-01-01 10:00:00", "10", balance="10", currency="USD"),
        txn("A", "2026-01-02 10:00:00", "5", balance="95", currency="USD"),  # USD break: +80
        txn("A", "2026-01-03 10:00:00", "-5", balance="70", currency="USD"),  # USD break: -20
    ]
    flags = integrity_flags(balance_breaks(_transactions(rows), rules=RULES), rules=RULES).collect().sort("currency")
    assert flags.select("currency", "period_start_on", "period_end_on", "metric_value", "evidence_txn_ids").rows() == [
        ("CNY", date(2026, 1, 1), date(2026, 1, 31), 50.0, ["A-1", "A-2"]),
        # the largest difference in USD, never compared with the CNY one
        ("USD", date(2026, 1, 1), date(2026, 1, 31), 80.0, ["A-3", "A-4", "A-5"]),
    ]
    assert flags["flag_id"].n_unique() == 2
    assert "2 running-balance break(s)" in flags["reason_en"][1] and "80.00 USD" in flags["reason_en"][1]
