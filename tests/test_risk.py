"""Account risk and recovery from literal flags and months."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from liushui.config import load_rules
from liushui.contracts import ACCOUNT_MONTHS, ACCOUNTS_REF, RISK_FLAGS
from transforms.risk import account_risk

RULES = load_rules().account_risk
AS_OF = date(2026, 10, 15)  # last full month: September


def flag(
    account: str,
    code: str,
    end: date,
    severity: str = "high",
    metric: float = 3.0,
    threshold: float = 2.0,
    currency: str = "CNY",
) -> dict:
    return {
        "flag_id": f"{account}-{code}-{currency}-{end}",
        "account_id": account,
        "currency": currency,
        "flag_code": code,
        "period_start_on": end.replace(day=1),
        "period_end_on": end,
        "metric_value": metric,
        "threshold": threshold,
        "limit_name": "x",
        "severity": severity,
        "rule_version": "1.0",
        "reason_zh": "理由",
        "reason_en": "reason",
        "remediation_zh": "整改",
        "remediation_en": "fix it",
        "evidence_txn_ids": ["t1"],
    }


def months(account: str, incomes: list[str], burdens: list[float | None] | None = None) -> list[dict]:
    burdens = burdens or [None] * len(incomes)
    return [
        {
            "account_id": account,
            "currency": "CNY",
            "month_on": date(2026, 3 + i, 1),
            "is_main_currency": True,
            "is_full_month": True,
            "clean_income": Decimal(x),
            "debt_burden_trailing": b,
        }
        for i, (x, b) in enumerate(zip(incomes, burdens, strict=True))
    ]


def risk(flags: list[dict], month_rows: list[dict], accounts: list[dict] | None = None) -> dict[str, dict]:
    flag_frame = RISK_FLAGS.conform(
        pl.DataFrame(flags, schema_overrides={"evidence_txn_ids": pl.List(pl.String)}) if flags else RISK_FLAGS.empty()
    )
    month_frame = pl.DataFrame(
        month_rows,
        schema_overrides={
            "clean_income": ACCOUNT_MONTHS.polars_schema["clean_income"],
            "debt_burden_trailing": pl.Float64,
        },
    )
    reference = ACCOUNTS_REF.conform(pl.DataFrame(accounts) if accounts else ACCOUNTS_REF.empty())
    out = account_risk(flag_frame, month_frame.lazy(), accounts=reference, rules=RULES, as_of=AS_OF).collect()
    return {r["account_id"]: r for r in out.iter_rows(named=True)}


FLAT = ["10000"] * 7  # March..September


def test_recent_severe_flag_is_at_risk_with_score_band_and_remediation():
    r = risk([flag("A", "ROUND_TRIP", date(2026, 9, 30))], months("A", FLAT))["A"]
    assert (r["score"], r["band"], r["recovery_status"], r["months_since_severe"]) == (30.0, "medium", "at_risk", 0)
    assert json.loads(r["score_components_json"]) == {"ROUND_TRIP": 30.0}
    assert r["active_flags"] == ["ROUND_TRIP"]
    assert r["remediation_en"] == [
        "fix it (now 3.00 (2026-09), threshold 2.00; 0 clean full months so far, 6 more needed; "
        "stops counting on 2027-04-01; adds 30.0 points)"
    ]
    assert r["remediation_zh"] == [
        "整改（当前3.00（2026-09），阈值2.00；已有0个完整月未再触发，还需6个月，2027-04-01起不再计入，计30.0分）"
    ]
    assert (r["recovery_now_month_on"], r["recovery_points"]) == ([date(2026, 9, 1)], [30.0])
    assert (r["recovery_now"], r["recovery_target"], r["recovery_clean_months"], r["recovery_months_needed"]) == (
        [3.0],
        [2.0],
        [0],
        [6],
    )
    assert (r["recovery_clears_on"], r["clears_on"], r["history_months"]) == ([date(2027, 4, 1)], date(2027, 4, 1), 7)


@pytest.mark.parametrize(
    ("end", "status", "months_since"),
    [
        (date(2026, 7, 31), "at_risk", 2),
        (date(2026, 6, 30), "recovering", 3),
        (date(2026, 4, 30), "recovering", 5),
        (date(2026, 3, 31), "recovered", 6),
    ],
)
def test_recovery_path_by_clean_months_since_the_last_severe_flag(end, status, months_since):
    r = risk([flag("A", "MULTI_LENDER", end)], months("A", FLAT))["A"]
    assert (r["recovery_status"], r["months_since_severe"]) == (status, months_since)


def test_flags_older_than_the_lookback_are_not_active():
    r = risk([flag("A", "MULTI_LENDER", date(2026, 3, 31))], months("A", FLAT))["A"]
    assert (r["score"], r["band"], r["active_flags"]) == (0.0, "low", [])


def test_clean_and_watch_accounts():
    result = risk(
        [flag("W", "INCOME_VOLATILE", date(2026, 9, 30), severity="medium")], months("C", FLAT) + months("W", FLAT)
    )
    assert (result["C"]["recovery_status"], result["C"]["score"]) == ("clean", 0.0)
    assert (result["W"]["recovery_status"], result["W"]["score"]) == ("watch", 10.0)


def test_balance_break_lowers_statement_trust_and_score_is_capped():
    codes = ["BALANCE_BREAK", "CYCLE", "BORROW_TO_REPAY", "ROUND_TRIP", "MULTI_LENDER"]
    r = risk([flag("B", c, date(2026, 9, 30)) for c in codes], months("B", FLAT))["B"]
    assert r["statement_trust"] == "low"
    assert (r["score"], r["band"]) == (100.0, "severe")
    assert r["active_flags"][0] in ("CYCLE", "BORROW_TO_REPAY")  # ordered by points


def test_a_code_flagged_in_two_currencies_counts_once_and_shows_the_main_currency_flag():
    sep = date(2026, 9, 30)
    flags = [
        flag("A", "LARGE_OUTFLOW", sep, severity="medium", metric=25000.0, threshold=20000.0, currency="USD"),
        flag("A", "LARGE_OUTFLOW", sep, severity="medium", metric=30000.0, threshold=24000.0, currency="CNY"),
    ]
    for order in (flags, flags[::-1]):
        r = risk(order, months("A", FLAT))["A"]  # the months are CNY, the main currency
        assert (r["active_flags"], r["active_flag_count"]) == (["LARGE_OUTFLOW"], 2)
        assert json.loads(r["score_components_json"]) == {"LARGE_OUTFLOW": 8.0}  # weight once, not per currency
        assert r["remediation_en"][0].startswith("fix it (now 30000.00 (2026-09), threshold 24000.00;")


def test_trends_of_income_and_debt_burden():
    rows = months("T", ["1000", "2000", "3000", "4000", "5000", "6000", "7000"], [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7])
    r = risk([], rows)["T"]
    # last 6 full months: 2000..7000, slope 1000/month, mean 4500
    assert r["clean_income_trend_pct"] == pytest.approx(1000 / 4500 * 100)
    assert r["debt_burden_trend"] == pytest.approx(0.1)
    assert (r["clean_income_last"], r["debt_burden_last"]) == (Decimal("7000.00"), 0.7)


def _with_figures(rows: list[dict], **figures: int) -> list[dict]:
    return [{**r, **figures} for r in rows]


def test_today_value_is_the_last_full_month_figure_not_the_value_at_the_last_flag():
    month_rows = _with_figures(
        months("A", FLAT), penalty_count=0, failed_debit_count=0, collection_count=0, negative_balance_days=0
    )
    flags = [
        flag("A", "OVERDUE_PENALTY", date(2026, 7, 31), metric=4.0, threshold=1.0),
        flag("A", "OVERDRAWN", date(2026, 8, 31), severity="medium", metric=5.0, threshold=3.0),
    ]
    r = risk(flags, month_rows)["A"]
    got = dict(
        zip(
            r["active_flags"],
            zip(
                r["recovery_now"],
                r["recovery_clean_months"],
                r["recovery_months_needed"],
                r["recovery_clears_on"],
                strict=True,
            ),
            strict=True,
        )
    )
    assert got == {
        "OVERDUE_PENALTY": (0.0, 2, 4, date(2027, 2, 1)),  # July's 4 events are not today's 0
        "OVERDRAWN": (0.0, 1, 5, date(2027, 3, 1)),
    }
    assert "当前0.00（2026-09）" in r["remediation_zh"][0] and "now 0.00 (2026-09)" in r["remediation_en"][0]
    assert r["clears_on"] == date(2027, 3, 1)


def test_a_rule_without_a_month_figure_not_flagged_last_month_has_no_known_value_today():
    r = risk([flag("A", "ROUND_TRIP", date(2026, 6, 30))], months("A", FLAT))["A"]
    assert (r["recovery_now"], r["recovery_clean_months"], r["recovery_months_needed"]) == ([None], [3], [3])
    assert "not flagged since the last full month" in r["remediation_en"][0]
    assert "上一完整月以来未触发" in r["remediation_zh"][0]
    assert r["recovery_now_month_on"] == [None]


def test_a_statement_ending_before_the_last_full_month_has_insufficient_history_not_recovery():
    short = months("A", ["10000"] * 5)  # March..July; the as-of is October
    r = risk([flag("A", "MULTI_LENDER", date(2026, 4, 30))], short)["A"]
    # calendar months since April: 5, but only May..July are known clean
    assert (r["recovery_status"], r["months_since_severe"], r["history_months"]) == ("insufficient_history", 3, 5)


def test_clean_months_count_covered_full_months_only():
    rows = months("A", FLAT)
    rows[5]["is_full_month"] = False  # August not fully covered: unknown, not clean
    r = risk([flag("A", "MULTI_LENDER", date(2026, 6, 30))], rows)["A"]
    assert (r["recovery_status"], r["months_since_severe"]) == ("at_risk", 2)  # July, September


def test_the_customer_is_the_reference_owner_and_an_unknown_account_its_own_customer():
    reference = [{"account_id": "A", "customer_id": "C1", "holder_name": "张三", "account_type": "personal"}]
    result = risk([], months("A", FLAT) + months("B", FLAT), reference)
    assert (result["A"]["customer_id"], result["A"]["holder_name"]) == ("C1", "张三")
    assert (result["B"]["customer_id"], result["B"]["holder_name"]) == ("B", None)


def _as_of_month(account: str, **figures: object) -> dict:
    """October, the as-of month: partial (booked up to the as-of date)."""
    return {
        "account_id": account,
        "currency": "CNY",
        "month_on": date(2026, 10, 1),
        "is_main_currency": True,
        "is_full_month": False,
        "clean_income": Decimal("2000"),
        "debt_burden_trailing": None,
        **figures,
    }


def test_today_value_of_a_rule_judging_the_as_of_month_is_that_month_so_far():
    zero = {"penalty_count": 0, "failed_debit_count": 0, "collection_count": 0}
    month_rows = _with_figures(months("A", FLAT, [0.6] * 7), **zero) + [
        _as_of_month("A", penalty_count=1, failed_debit_count=1, collection_count=0)
    ]
    flags = [
        flag("A", "OVERDUE_PENALTY", date(2026, 8, 31), metric=3.0, threshold=1.0),
        flag("A", "DEBT_BURDEN_HIGH", date(2026, 8, 31), severity="medium", metric=0.7, threshold=0.5),
    ]
    r = risk(flags, month_rows)["A"]
    assert r["active_flags"] == ["OVERDUE_PENALTY", "DEBT_BURDEN_HIGH"]  # 20 x 1.5 before 15
    # overdue events are judged in October too: 2 so far today; the debt burden over full months: September's
    assert r["recovery_now"] == [2.0, 0.6]
    assert r["recovery_now_month_on"] == [date(2026, 10, 1), date(2026, 9, 1)]
    assert r["recovery_points"] == [30.0, 15.0]
    assert (r["recovery_clean_months"], r["recovery_months_needed"]) == ([1, 1], [5, 5])
    assert r["recovery_clears_on"] == [date(2027, 3, 1), date(2027, 3, 1)]
    assert r["remediation_en"] == [
        "fix it (now 2.00 (2026-10 so far), threshold 1.00; 1 clean full months so far, 5 more needed; "
        "stops counting on 2027-03-01; adds 30.0 points)",
        "fix it (now 0.60 (2026-09), threshold 0.50; 1 clean full months so far, 5 more needed; "
        "stops counting on 2027-03-01; adds 15.0 points)",
    ]
    assert r["remediation_zh"][0] == (
        "整改（当前2.00（2026-10至今），阈值1.00；已有1个完整月未再触发，还需5个月，2027-03-01起不再计入，计30.0分）"
    )
    assert r["score"] == 45.0


def test_today_value_of_a_trailing_credit_episode_is_todays_figure_not_its_peak():
    """MULTI_LENDER and CASH_LOAN_RELIANCE publish episodes whose metric is the peak month's; today's value is the
    figure the rule judges now: lenders in the judged window as of October so far, the loan share of the last full
    window (September)."""
    month_rows = _with_figures(months("A", FLAT), lenders_active_judged=4)
    for row in month_rows:
        row["loan_share_trailing"] = 0.35
    month_rows.append({**_as_of_month("A"), "lenders_active_judged": 3, "loan_share_trailing": None})
    flags = [
        flag("A", "MULTI_LENDER", date(2026, 9, 30), metric=6.0, threshold=3.0),  # a peak of 6 lenders in July
        flag("A", "CASH_LOAN_RELIANCE", date(2026, 9, 30), severity="medium", metric=0.55, threshold=0.3),
    ]
    r = risk(flags, month_rows)["A"]
    now = dict(zip(r["active_flags"], zip(r["recovery_now"], r["recovery_now_month_on"], strict=True), strict=True))
    assert now == {
        "MULTI_LENDER": (3.0, date(2026, 10, 1)),
        "CASH_LOAN_RELIANCE": (0.35, date(2026, 9, 1)),
    }


def test_a_statement_ending_before_the_as_of_month_gives_the_last_full_month_value():
    month_rows = _with_figures(months("A", FLAT), related_out_share=0.2)
    r = risk([flag("A", "RELATED_TRANSFER_HEAVY", date(2026, 7, 31), metric=0.9, threshold=0.5)], month_rows)["A"]
    assert (r["recovery_now"], r["recovery_now_month_on"]) == ([0.2], [date(2026, 9, 1)])


def test_points_of_a_medium_flag_are_its_weight_and_a_high_flag_times_the_multiplier():
    sep = date(2026, 9, 30)
    flags = [flag("A", "CYCLE", sep, severity="high"), flag("A", "LARGE_OUTFLOW", sep, severity="medium")]
    r = risk(flags, months("A", FLAT))["A"]
    assert dict(zip(r["active_flags"], r["recovery_points"], strict=True)) == {"CYCLE": 37.5, "LARGE_OUTFLOW": 8.0}
    assert r["score"] == 45.5


def test_a_share_not_defined_in_the_as_of_month_so_far_is_the_last_full_month_value():
    month_rows = _with_figures(months("A", FLAT), related_out_share=0.3) + [_as_of_month("A", related_out_share=None)]
    r = risk([flag("A", "RELATED_TRANSFER_HEAVY", date(2026, 8, 31), metric=0.9, threshold=0.5)], month_rows)["A"]
    assert (r["recovery_now"], r["recovery_now_month_on"]) == ([0.3], [date(2026, 9, 1)])
