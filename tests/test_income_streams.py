"""Income streams (`income_streams`) and INCOME_STOPPED on literal rows: a monthly salary, one that stops, one that
falls, a late payment within its grace, pay days moved over weekends, two employers, a change of employer, and
the sources that are no stream (irregular small transfers, two payments)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.rows import flags_of, monthly, signals, txn

AS_OF = date(2026, 9, 15)  # September is the partial as-of month
EMPLOYER = "上海某某科技有限公司"
SHOWN = [
    "account_id",
    "source_key",
    "source_name",
    "kind",
    "cadence",
    "median_gap_days",
    "typical_day_of_month",
    "expected_periods",
    "paid_periods",
    "regularity_share",
    "first_seen_on",
    "last_seen_on",
    "payments_count",
    "typical_amount",
    "last_amount",
    "recent_amount",
    "expected_next_on",
    "judged_on",
    "missed_payments",
    "trailing_share",
    "is_replaced",
    "status",
]


def spending_until(account: str, on: date) -> list[dict]:
    """A purchase on `on`: the statement reaches that day."""
    return [txn(account, f"{on.isoformat()} 19:00:00", "-35", "美团外卖", None, "外卖")]


def streams_of(result: dict[str, pl.DataFrame], account: str) -> list[dict]:
    return result["income_streams"].filter(pl.col("account_id") == account).select(SHOWN).to_dicts()


def stream(**fields: object) -> dict:
    """An expected row: a monthly CNY salary from EMPLOYER unless `fields` say otherwise."""
    row: dict[str, object] = {
        "account_id": "A",
        "source_key": "上海某某科技",
        "source_name": EMPLOYER,
        "kind": "salary",
        "cadence": "monthly",
        "median_gap_days": 31.0,
        "typical_day_of_month": 10,
        "is_replaced": False,
        "judged_on": AS_OF,
        "missed_payments": 0,
        "trailing_share": 1.0,
        "status": "active",
    }
    row.update(fields)
    return {name: row[name] for name in SHOWN}


def money(text: str) -> Decimal:
    return Decimal(text).quantize(Decimal("0.01"))


# --- streams ------------------------------------------------------------------------------------------
def test_monthly_salary_around_day_10_with_a_bonus_and_varying_payer_names_is_one_active_monthly_stream():
    names = [
        EMPLOYER,
        "上海某某科技(上海)有限公司",
        "上海某某科技",
        EMPLOYER,
        EMPLOYER,
        "上海某某科技有限公司 ",
        EMPLOYER,
    ]
    days = [10, 9, 11, 10, 10, 12, 10, 10]
    rows = [
        txn("A", f"2026-{m:02d}-{d:02d} 09:00:00", "10000", names[(m - 1) % len(names)], None, "代发工资")
        for m, d in zip(range(1, 9), days, strict=True)
    ]
    rows += [txn("A", "2026-02-20 09:00:00", "3000", EMPLOYER, None, "奖金")]
    result = signals(rows + spending_until("A", AS_OF), as_of=AS_OF)
    got = streams_of(result, "A")
    assert got == [
        stream(
            median_gap_days=30.0,  # 30, 11 and 19 around the bonus, 30, 30, 33, 28, 31
            expected_periods=8,
            paid_periods=8,
            regularity_share=1.0,
            first_seen_on=date(2026, 1, 10),
            last_seen_on=date(2026, 8, 10),
            payments_count=9,
            typical_amount=money("10000"),
            last_amount=money("10000"),
            recent_amount=money("10000"),
            expected_next_on=date(2026, 9, 10),
            source_name=EMPLOYER,
        )
    ]
    cv = result["income_streams"]["amount_cv"].item()
    assert cv == pytest.approx(992.1567 / 10375, rel=1e-4)  # the bonus month: 13,000 among 7 x 10,000
    assert flags_of(result, "INCOME_STOPPED").is_empty()


def test_salary_that_stopped_three_months_before_as_of_is_stopped_and_flagged():
    rows = monthly("A", list(range(1, 7)), "10000") + spending_until("A", AS_OF)
    result = signals(rows, as_of=AS_OF)
    assert streams_of(result, "A") == [
        stream(
            expected_periods=8,
            paid_periods=6,
            regularity_share=0.75,
            first_seen_on=date(2026, 1, 10),
            last_seen_on=date(2026, 6, 10),
            payments_count=6,
            typical_amount=money("10000"),
            last_amount=money("10000"),
            recent_amount=money("10000"),
            expected_next_on=date(2026, 7, 10),
            missed_payments=2,
            status="stopped",
        )
    ]
    flags = flags_of(result, "INCOME_STOPPED")
    assert flags.select(
        "account_id",
        "currency",
        "period_start_on",
        "period_end_on",
        "metric_value",
        "threshold",
        "limit_name",
        "severity",
        "evidence_txn_ids",
        "reason_zh",
    ).to_dicts() == [
        {
            "account_id": "A",
            "currency": "CNY",
            "period_start_on": date(2026, 4, 10),
            "period_end_on": date(2026, 7, 10),
            "metric_value": 2.0,
            "threshold": 2.0,
            "limit_name": "missed_payments",
            "severity": "high",
            "evidence_txn_ids": ["A-4", "A-5", "A-6"],
            "reason_zh": "收入来源上海某某科技有限公司（按月）已中断：最后一次入账2026-06-10，应于2026-07-10入账，"
            "已缺2次（宽限5天）；该来源占近6个完整月净收入的100.0%。",
        }
    ]
    assert "INCOME_STOPPED" in result["account_risk"]["active_flags"].item()


def test_a_stop_is_not_also_volatile_income():
    """One fact, one flag: August's window (March..August: 4 x 10,000, then 0, 0) has a CV of 0.71, above 0.5 —
    the stop, which INCOME_STOPPED already flags; judged without the stop flag, INCOME_VOLATILE would fire."""
    from liushui.config import load_rules
    from transforms.income import income_volatility_flags

    rows = monthly("A", list(range(1, 7)), "10000") + spending_until("A", AS_OF)
    result = signals(rows, as_of=AS_OF)
    assert flags_of(result, "INCOME_VOLATILE").is_empty()
    months, txns = result["account_months"].lazy(), result["transactions"].lazy()
    rules = load_rules().income_volatility
    unexplained = income_volatility_flags(months, txns, rules=rules).collect()
    expected = [(date(2026, 8, 31), pytest.approx(0.7071, abs=1e-4))]
    assert unexplained.select("period_end_on", "metric_value").rows() == expected
    explained = income_volatility_flags(months, txns, rules=rules, stopped=flags_of(result, "INCOME_STOPPED").lazy())
    assert explained.collect().is_empty()


def test_salary_that_falls_to_half_is_fallen_and_flagged():
    rows = monthly("A", list(range(1, 6)), "10000") + monthly("A", [6, 7, 8], "5000") + spending_until("A", AS_OF)
    result = signals(rows, as_of=AS_OF)
    assert streams_of(result, "A") == [
        stream(
            expected_periods=8,
            paid_periods=8,
            regularity_share=1.0,
            first_seen_on=date(2026, 1, 10),
            last_seen_on=date(2026, 8, 10),
            payments_count=8,
            typical_amount=money("10000"),
            last_amount=money("5000"),
            recent_amount=money("5000"),
            expected_next_on=date(2026, 9, 10),
            trailing_share=1.0,
            status="fallen",
        )
    ]
    flags = flags_of(result, "INCOME_STOPPED")
    assert flags.select(
        "period_start_on", "period_end_on", "metric_value", "threshold", "limit_name", "evidence_txn_ids"
    ).to_dicts() == [
        {
            "period_start_on": date(2026, 6, 10),
            "period_end_on": date(2026, 8, 10),
            "metric_value": 0.5,
            "threshold": 0.7,
            "limit_name": "fall_share",
            "evidence_txn_ids": ["A-6", "A-7", "A-8"],
        }
    ]
    assert (
        flags["reason_en"]
        .item()
        .startswith(
            "Income from 上海某某科技有限公司 (monthly) fell: last period 5000.00, mean of the last 3 periods 5000.00, "
            "below 70% of the typical 10000.00; last paid on 2026-08-10, next expected on 2026-09-10."
        )
    )


def test_irregular_small_transfers_from_many_people_are_no_stream():
    senders = ["王五", "赵六", "钱七", "孙八", "周九", "吴十"]
    rows = [
        txn("A", f"2026-{m:02d}-{d:02d} 12:00:00", amount, senders[i % len(senders)], None, "转账")
        for i, (m, d, amount) in enumerate(
            [(1, 3, "200"), (1, 25, "80"), (2, 17, "350"), (3, 9, "120"), (5, 22, "60"), (7, 1, "500"), (8, 30, "90")]
        )
    ]
    result = signals(rows + spending_until("A", AS_OF), as_of=AS_OF)
    assert streams_of(result, "A") == []
    assert flags_of(result, "INCOME_STOPPED").is_empty()


def test_two_payments_are_no_stream():
    rows = monthly("A", [7, 8], "9000") + spending_until("A", AS_OF)
    result = signals(rows, as_of=AS_OF)
    assert streams_of(result, "A") == []


def test_three_payments_in_two_months_are_no_stream():
    rows = monthly("A", [7, 8], "9000") + [txn("A", "2026-08-25 09:00:00", "9000", EMPLOYER, None, "代发工资")]
    result = signals(rows + spending_until("A", AS_OF), as_of=AS_OF)
    assert streams_of(result, "A") == []


@pytest.mark.parametrize(
    ("as_of", "missed", "status"),
    [
        (date(2026, 9, 15), 0, "active"),  # due on the 10th: on time until the 15th (grace 5 days)
        (date(2026, 9, 16), 1, "late"),  # one missed payment is shown, not flagged
    ],
)
def test_a_late_payment_within_its_grace_is_active_and_past_it_late_neither_flagged(as_of, missed, status):
    rows = monthly("A", list(range(1, 9)), "10000") + spending_until("A", as_of)
    result = signals(rows, as_of=as_of)
    [row] = streams_of(result, "A")
    assert (row["expected_next_on"], row["judged_on"], row["missed_payments"], row["status"]) == (
        date(2026, 9, 10),
        as_of,
        missed,
        status,
    )
    assert flags_of(result, "INCOME_STOPPED").is_empty()


def test_pay_days_moved_over_weekends_and_holidays_stay_in_their_pay_month():
    # due on the 1st; 1 Feb (Sunday) paid on 30 Jan, 1 Mar (Sunday) on 2 Mar, 1 May (Labour Day) on 30 Apr,
    # 1 Aug (Saturday) on 31 Jul
    paid_on = ["01-30", "03-02", "04-01", "04-30", "06-01", "07-01", "07-31", "09-01"]
    rows = [txn("A", f"2026-{d} 09:00:00", "8000", EMPLOYER, None, "代发工资") for d in paid_on]
    result = signals(rows + spending_until("A", AS_OF), as_of=AS_OF)
    assert streams_of(result, "A") == [
        stream(
            median_gap_days=30.0,
            typical_day_of_month=1,
            expected_periods=8,  # pay months February to September: every one paid, none twice
            paid_periods=8,
            regularity_share=1.0,
            first_seen_on=date(2026, 1, 30),
            last_seen_on=date(2026, 9, 1),
            payments_count=8,
            typical_amount=money("8000"),
            last_amount=money("8000"),
            recent_amount=money("8000"),
            expected_next_on=date(2026, 10, 1),
            status="active",
        )
    ]


def test_a_statement_ending_early_is_judged_at_its_end_not_at_the_as_of_date():
    rows = monthly("A", list(range(1, 6)), "10000") + spending_until("A", date(2026, 5, 31))
    result = signals(rows + spending_until("B", AS_OF), as_of=AS_OF)  # another account reaches the as-of date
    [row] = streams_of(result, "A")
    assert (row["judged_on"], row["missed_payments"], row["status"]) == (date(2026, 5, 31), 0, "active")
    assert flags_of(result, "INCOME_STOPPED").is_empty()


def test_weekly_platform_pay_that_stops_is_a_stopped_weekly_stream_and_flagged():
    fridays = [date(2026, 5, 1) + timedelta(days=7 * k) for k in range(17)]  # to 21 August
    rows = [
        txn("A", f"{d.isoformat()} 10:00:00", "1200", "北京某某配送服务有限公司", None, "骑手结算") for d in fridays
    ]
    result = signals(rows + spending_until("A", AS_OF), as_of=AS_OF)
    [row] = streams_of(result, "A")
    assert {k: row[k] for k in ("source_key", "kind", "cadence", "median_gap_days", "typical_day_of_month")} == {
        "source_key": "北京某某配送服务",
        "kind": None,
        "cadence": "weekly",
        "median_gap_days": 7.0,
        "typical_day_of_month": None,
    }
    # weeks counted from 1 May: 19 whole weeks to 15 September, 17 paid; due 28 August and 4 September, both
    # past their grace on 15 September (11 September is still within it)
    assert (row["expected_periods"], row["paid_periods"], row["expected_next_on"], row["missed_payments"]) == (
        19,
        17,
        date(2026, 8, 28),
        2,
    )
    assert (row["status"], row["trailing_share"]) == ("stopped", 1.0)  # May to August: the months covered
    flags = flags_of(result, "INCOME_STOPPED")
    assert flags.select("period_start_on", "period_end_on", "evidence_txn_ids").to_dicts() == [
        {
            "period_start_on": date(2026, 8, 7),
            "period_end_on": date(2026, 8, 28),
            "evidence_txn_ids": ["A-15", "A-16", "A-17"],
        }
    ]
    assert "（每周）" in flags["reason_zh"].item()


# --- two sources ----------------------------------------------------------------------------------------
def test_two_employers_are_two_streams_and_the_main_one_stopping_is_flagged():
    rows = (
        monthly("A", list(range(1, 7)), "10000")
        + monthly("A", list(range(1, 9)), "3000", day=20, counterparty="杭州某某餐饮管理有限公司", memo="工资")
        + spending_until("A", AS_OF)
    )
    result = signals(rows, as_of=AS_OF)
    got = {
        r["source_key"]: (r["status"], round(r["trailing_share"], 4), r["is_replaced"]) for r in streams_of(result, "A")
    }
    # March to August: 4 x 10,000 of 4 x 10,000 + 6 x 3,000
    assert got == {"上海某某科技": ("stopped", 0.6897, False), "杭州某某餐饮管理": ("active", 0.3103, False)}
    flags = flags_of(result, "INCOME_STOPPED")
    assert flags.select("period_end_on", "severity").to_dicts() == [
        {"period_end_on": date(2026, 7, 10), "severity": "medium"}
    ]


def test_a_new_employer_taking_the_old_ones_place_is_not_income_stopped():
    rows = (
        monthly("A", list(range(1, 7)), "10000")
        + monthly("A", [7, 8], "9500", day=15, counterparty="北京某某网络技术有限公司")
        + spending_until("A", AS_OF)
    )
    result = signals(rows, as_of=AS_OF)
    [row] = streams_of(result, "A")  # the new employer has paid twice: no stream yet
    assert (row["status"], row["is_replaced"]) == ("stopped", True)
    assert flags_of(result, "INCOME_STOPPED").is_empty()


def test_a_stopped_side_income_is_not_flagged():
    rows = (
        monthly("A", list(range(1, 9)), "10000")
        + monthly("A", list(range(1, 6)), "1500", day=25, counterparty="李四", memo="房租")
        + spending_until("A", AS_OF)
    )
    result = signals(rows, as_of=AS_OF)
    statuses = {r["source_key"]: r["status"] for r in streams_of(result, "A")}
    assert statuses == {"上海某某科技": "active", "李四": "stopped"}
    assert flags_of(result, "INCOME_STOPPED").is_empty()


# --- invariants ------------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    payments=st.lists(
        st.tuples(
            st.integers(1, 8),  # month
            st.integers(1, 28),  # day
            st.sampled_from(["10000", "3000", "120.50", "8000"]),
            st.sampled_from([EMPLOYER, "上海某某科技(上海)有限公司", "王五", "代发工资", None]),
            st.sampled_from(["代发工资", "转账", "劳务费", "退款"]),
        ),
        max_size=40,
    )
)
def test_streams_never_count_more_payments_than_clean_income_inflows(payments):
    rows = [txn("A", f"2026-{m:02d}-{d:02d} 09:00:00", a, who, None, memo) for m, d, a, who, memo in payments]
    result = signals(rows + spending_until("A", AS_OF), as_of=AS_OF)
    streams = result["income_streams"]
    clean_inflows = result["transactions"].filter(pl.col("is_clean_income") & (pl.col("amount") > 0))
    assert streams["payments_count"].sum() <= clean_inflows.height
    ids = streams["payment_txn_ids"].explode().drop_nulls()
    assert ids.is_unique().all()
    assert set(ids) <= set(clean_inflows["txn_id"])
    assert (streams["payments_count"] == streams["payment_txn_ids"].list.len()).all()
    assert (streams["payments_count"] >= 3).all()


def test_a_stream_of_unsteady_amounts_is_not_fallen_on_its_last_payment_alone():
    """A client paying 1,000, 20,000, 500, 9,000, 100, 30,000, 2,000, then 50: the last payment is far below the
    median, but the mean of the last 3 periods (10,683.33) is not — volatile income, not a fall."""
    amounts = ["1000", "20000", "500", "9000", "100", "30000", "2000", "50"]
    rows = [txn("A", f"2026-{m:02d}-10 09:00:00", a, "客户甲", None, "劳务费") for m, a in enumerate(amounts, 1)]
    result = signals(rows + spending_until("A", AS_OF), as_of=AS_OF)
    assert result["income_streams"].select("status", "last_amount", "recent_amount").rows() == [
        ("active", money("50"), money("10683.33"))
    ]
    assert flags_of(result, "INCOME_STOPPED").is_empty()
