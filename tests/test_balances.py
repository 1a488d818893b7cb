"""Daily balances, the balance figures of account months and OVERDRAWN (透支): literal statement lines through
the whole per-account chain (tests/rows.signals), exact expected outputs."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from liushui.config import load_rules
from liushui.contracts import ACCOUNTS_REF, RELATED_PARTIES_REF
from tests.rows import canonical, txn
from transforms.balances import balance_month_features, daily_balances, is_credit_card, overdrawn_flags
from transforms.classify import classified_transactions
from transforms.credit import borrow_to_repay_links, credit_flags, credit_month_features
from transforms.lenders import classify_lenders, load_lender_registry
from transforms.months import account_months

AS_OF = date(2026, 7, 15)
RULES = load_rules()


def signals(rows: list[dict], *, as_of: date, accounts_ref: pl.DataFrame | None = None) -> dict[str, pl.DataFrame]:
    """The balance and credit part of the per-account chain: classification, account months, their balance and
    credit figures, OVERDRAWN and the credit flags."""
    ref = (accounts_ref if accounts_ref is not None else ACCOUNTS_REF.empty()).lazy()
    transactions = classified_transactions(
        classify_lenders(canonical(rows).lazy(), load_lender_registry()), ref, RELATED_PARTIES_REF.empty().lazy()
    ).cache()
    months = (
        account_months(transactions, as_of=as_of, min_covered_days=RULES.coverage.min_covered_days_for_full_month)
        .pipe(lambda m: credit_month_features(transactions, m, rules=RULES))
        .pipe(lambda m: balance_month_features(transactions, m, rules=RULES.overdrawn))
        .cache()
    )
    links = borrow_to_repay_links(transactions, rules=RULES.borrow_to_repay)
    flags = pl.concat(
        [
            credit_flags(transactions, months, links, rules=RULES),
            overdrawn_flags(transactions, months, ref, rules=RULES.overdrawn),
        ]
    )
    months_df, flags_df = pl.collect_all([months, flags])
    return {"account_months": months_df, "risk_flags": flags_df}


def accounts(*rows: tuple[str, str, str, str]) -> pl.DataFrame:
    frame = pl.DataFrame(rows, schema=["account_id", "customer_id", "holder_name", "account_type"], orient="row")
    return ACCOUNTS_REF.conform(frame).collect()


def flags_of(result: dict[str, pl.DataFrame], code: str) -> pl.DataFrame:
    return result["risk_flags"].filter(pl.col("flag_code") == code).sort("account_id", "period_start_on")


def salary(account: str, at: str, amount: str, balance: str) -> dict:
    return txn(account, at, amount, "上海某某科技有限公司", None, "代发工资", balance)


def spend(account: str, at: str, amount: str, balance: str | None) -> dict:
    return txn(account, at, f"-{amount}", "某某超市", None, "消费", balance)


def dips(account: str, days: list[int], *, month: int = 6) -> list[dict]:
    """June: salary on the 1st, then for each listed day a spend taking the balance to -50.00 and, the next day,
    a top-up back to 950.00 (so exactly the listed days end overdrawn); a last spend on the 30th."""
    rows = [salary(account, f"2026-{month:02d}-01 09:00", "1000.00", "1000.00")]
    for d in days:
        rows.append(spend(account, f"2026-{month:02d}-{d:02d} 12:00", "1050.00", "-50.00"))
        rows.append(salary(account, f"2026-{month:02d}-{d + 1:02d} 09:00", "1000.00", "950.00"))
    rows.append(spend(account, f"2026-{month:02d}-30 20:00", "50.00", "900.00"))
    return rows


def june(result: dict[str, pl.DataFrame], account: str) -> dict:
    months = result["account_months"]
    return months.filter((pl.col("account_id") == account) & (pl.col("month_on") == date(2026, 6, 1))).row(
        0, named=True
    )


def test_a_day_without_a_stated_balance_carries_the_last_one_as_plaid_counts_days():
    rows = [
        salary("A", "2026-06-01 08:00", "1000.00", "1000.00"),
        spend("A", "2026-06-02 09:00", "1500.00", "-500.00"),  # negative during the day ...
        salary("A", "2026-06-02 18:00", "1000.00", "500.00"),  # ... but it ends positive
        spend("A", "2026-06-03 00:00", "600.00", "-100.00"),  # date-only rows: source_row decides
        salary("A", "2026-06-03 00:00", "300.00", "200.00"),
        spend("A", "2026-06-04 00:00", "300.00", "-100.00"),  # ends negative ...
        spend("A", "2026-06-04 00:00", "50.00", "-150.00"),
        spend("A", "2026-06-05 00:00", "10.00", None),  # no stated balance: the 4th's carries
        salary("A", "2026-06-08 10:00", "1150.00", "1000.00"),  # ... up to the 7th
    ]
    days = daily_balances(canonical(rows).lazy().with_columns(booked_on=pl.col("booked_at").dt.date())).collect()
    assert days.filter(pl.col("balance") < 0).select("day_on", "balance", "stated_txn_id").rows() == [
        (date(2026, 6, d), Decimal("-150.00"), "A-7") for d in (4, 5, 6, 7)
    ]
    result = signals(rows, as_of=AS_OF)
    month = june(result, "A")
    assert (month["negative_balance_days"], month["low_balance_days"]) == (4, 4)
    # (1000 + 500 + 200 + 4 x -150 + 1000) / 8 days known
    assert month["avg_daily_balance"] == Decimal("262.50")


def test_an_ordinary_account_dipping_below_zero_on_3_days_is_overdrawn_not_overdue():
    result = signals(dips("A", [5, 12, 20]), as_of=AS_OF)
    overdrawn = flags_of(result, "OVERDRAWN")
    assert overdrawn.select("account_id", "period_start_on", "metric_value", "threshold", "severity").rows() == [
        ("A", date(2026, 6, 1), 3.0, 1.0, "medium")
    ]
    assert overdrawn["evidence_txn_ids"][0].to_list() == ["A-2", "A-4", "A-6"]
    assert overdrawn["reason_zh"][0] == "本月3天日终余额为负（阈值1天），最低-50.00：借记账户透支，不等于逾期。"
    assert flags_of(result, "OVERDUE_PENALTY").is_empty()


def test_one_negative_day_is_flagged_and_a_dip_within_a_day_is_not():
    rows = [
        salary("A", "2026-06-01 09:00", "1000.00", "1000.00"),
        spend("A", "2026-06-10 09:00", "1500.00", "-500.00"),  # negative during the day ...
        salary("A", "2026-06-10 18:00", "1000.00", "500.00"),  # ... ends positive
        spend("A", "2026-06-30 20:00", "50.00", "450.00"),
    ]
    assert flags_of(signals(rows, as_of=AS_OF), "OVERDRAWN").is_empty()
    flags = flags_of(signals(dips("A", [5]), as_of=AS_OF), "OVERDRAWN")
    assert flags.select("metric_value", "threshold").rows() == [(1.0, 1.0)]  # exactly min_days: flagged (at least)


def test_a_long_overdraft_is_high_and_a_carried_month_names_the_row_that_stated_it():
    rows = [
        salary("A", "2026-05-01 09:00", "100.00", "100.00"),
        spend("A", "2026-05-31 12:00", "300.00", "-200.00"),  # overdrawn from May 31 ...
        salary("A", "2026-06-12 09:00", "1200.00", "1000.00"),  # ... to June 11
        spend("A", "2026-06-30 20:00", "50.00", "950.00"),
    ]
    flags = flags_of(signals(rows, as_of=AS_OF), "OVERDRAWN")
    assert flags.select("period_start_on", "metric_value", "severity").rows() == [
        (date(2026, 5, 1), 1.0, "medium"),
        (date(2026, 6, 1), 11.0, "high"),
    ]
    assert flags["evidence_txn_ids"][1].to_list() == ["A-2"]  # booked in May, stating June's balances


@pytest.mark.parametrize("account_type", ["credit_card", "Credit Card", "信用卡"])
def test_a_credit_card_with_negative_balances_gets_neither_overdrawn_nor_overdue(account_type):
    rows = dips("C", [3, 6, 9, 12, 15, 18, 21, 24])
    result = signals(rows, as_of=AS_OF, accounts_ref=accounts(("C", "K1", "张三", account_type)))
    assert june(result, "C")["negative_balance_days"] == 8  # the figure is published ...
    assert flags_of(result, "OVERDRAWN").is_empty()  # ... but never judged on a card
    assert flags_of(result, "OVERDUE_PENALTY").is_empty()


def test_credit_card_is_read_from_the_account_type_and_anything_else_is_debit():
    ref = accounts(
        ("A", "K", "甲", "credit_card"),
        ("B", "K", "乙", "credit-card"),
        ("C", "K", "丙", "personal"),
        ("D", "K", "丁", "business"),
        ("E", "K", "戊", "credit union"),
    )
    got = dict(is_credit_card(ref.lazy()).collect().iter_rows())
    assert got == {"A": True, "B": True, "C": False, "D": False, "E": False}


def test_the_average_daily_balance_is_exact_and_rounds_half_away_from_zero_whatever_the_row_order():
    from liushui.contracts import MONEY, money_mean

    days = pl.DataFrame(
        {
            "g": ["a", "a", "a", "b", "b", "c"],
            "balance": [Decimal("0.10"), Decimal("0.20"), Decimal("0.04"), Decimal("-0.01"), Decimal("-0.02"), None],
        },
        schema_overrides={"balance": MONEY},
    )
    means = {
        g: days[order].group_by("g").agg(m=money_mean(pl.col("balance"))).sort("g")["m"].to_list()
        for g, order in (("forward", [0, 1, 2, 3, 4, 5]), ("reversed", [5, 4, 3, 2, 1, 0]))
    }
    # a: 0.34 / 3 = 0.1133 -> 0.11; b: -0.015 -> -0.02; c: no known day -> null
    assert means["forward"] == means["reversed"] == [Decimal("0.11"), Decimal("-0.02"), None]
