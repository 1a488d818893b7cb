"""WINDOW_DRESSING (冲时点) and the daily-balance figures of account months: literal statement lines through the
balance part of the per-account chain, exact expected outputs."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import polars as pl

from liushui.config import load_rules
from liushui.contracts import RELATED_PARTIES_REF
from tests.rows import accounts, canonical, txn
from transforms.balances import balance_month_features, dressed_month_ends, window_dressing_flags
from transforms.classify import classified_transactions
from transforms.lenders import classify_lenders, load_lender_registry
from transforms.months import account_months, main_currency

AS_OF = date(2026, 9, 20)
RULES = load_rules()
FRIEND = ("张三", "6222020000001234")


def statement(account: str, opening: str, moves: list[tuple[str, str, str, str]]) -> list[dict]:
    """Rows of `account` from an opening credit on 2026-03-01 (balance `opening`), then `moves` (time, signed amount,
    counterparty, memo) in order, each with the exact running balance; a last small spend on 2026-09-10 keeps the
    statement covering the summer."""
    balance = Decimal(opening)
    rows = [txn(account, "2026-03-01 09:00", opening, "本人", None, "开户存入", opening)]
    for at, amount, party, memo in [*moves, ("2026-09-10 12:00", "-10.00", "某某超市", "消费")]:
        balance += Decimal(amount)
        rows.append(txn(account, at, amount, party, None, memo, f"{balance:.2f}"))
    return rows


def dressed(
    month_end: date, amount: str, *, days_before: int = 2, days_after: int = 1
) -> list[tuple[str, str, str, str]]:
    """`amount` from a friend `days_before` days before `month_end`, back out to them `days_after` days after it."""
    arrive = datetime.combine(month_end - timedelta(days=days_before), datetime.min.time()) + timedelta(hours=10)
    leave = datetime.combine(month_end + timedelta(days=days_after), datetime.min.time()) + timedelta(hours=15)
    return [
        (arrive.isoformat(sep=" "), amount, FRIEND[0], "转账"),
        (leave.isoformat(sep=" "), f"-{amount}", FRIEND[0], "还款"),
    ]


def run(rows: list[dict], *, accounts_ref: pl.DataFrame | None = None) -> dict[str, pl.DataFrame]:
    ref = (accounts_ref if accounts_ref is not None else accounts()).lazy()
    transactions = classified_transactions(
        classify_lenders(canonical(rows).lazy(), load_lender_registry()), ref, RELATED_PARTIES_REF.empty().lazy()
    ).cache()
    months = account_months(
        transactions, as_of=AS_OF, min_covered_days=RULES.coverage.min_covered_days_for_full_month
    ).pipe(lambda m: balance_month_features(transactions, m, rules=RULES.overdrawn))
    dressed = dressed_month_ends(transactions, main_currency(transactions), ref, rules=RULES.window_dressing)
    flags = window_dressing_flags(dressed, rules=RULES.window_dressing)
    months_df, flags_df = pl.collect_all([months, flags])
    return {"account_months": months_df, "risk_flags": flags_df.sort("account_id", "period_start_on")}


def flagged_months(result: dict[str, pl.DataFrame]) -> list[tuple[date, str]]:
    return result["risk_flags"].select("period_start_on", "severity").rows()


def test_two_month_ends_pushed_and_drained_are_flagged_once_each_with_the_legs_as_evidence():
    rows = statement("A", "5000.00", dressed(date(2026, 4, 30), "80000.00") + dressed(date(2026, 5, 31), "60000.00"))
    flags = run(rows)["risk_flags"]
    assert flags.select("period_start_on", "period_end_on", "metric_value", "threshold", "severity").rows() == [
        (date(2026, 4, 1), date(2026, 4, 30), 2.0, 2.0, "medium"),
        (date(2026, 5, 1), date(2026, 5, 31), 2.0, 2.0, "medium"),
    ]
    assert flags["evidence_txn_ids"].to_list() == [["A-2", "A-3"], ["A-4", "A-5"]]
    assert flags["limit_name"].unique().to_list() == ["dressed_month_ends"]
    assert flags["reason_zh"][0] == (
        "2026-04-30月末余额被临时推高：日终余额85000.00（平时的17.0倍），平时约5000.00；此前5天内转入80000.00，"
        "其后5天内回落80000.00（推高部分的100.0%）；本流水共2个月末如此（阈值2个）。"
    )
    assert flags["reason_en"][1] == (
        "Balance pushed up for the month end 2026-05-31: it ended the day at 65000.00 (13.0 x usual), usually about "
        "5000.00; 60000.00 came in within 5 days before and the balance fell 60000.00 (100.0% of the rise) within 5 "
        "days after; 2 month ends of the statement look like this (threshold 2)."
    )


def test_one_dressed_month_end_is_not_a_habit():
    rows = statement("A", "5000.00", dressed(date(2026, 4, 30), "80000.00"))
    assert run(rows)["risk_flags"].is_empty()


def test_a_quarter_end_is_high_and_a_drain_on_the_fifth_day_still_counts_but_not_the_sixth():
    moves = dressed(date(2026, 5, 31), "50000.00") + dressed(date(2026, 6, 30), "90000.00", days_after=5)
    assert flagged_months(run(statement("A", "8000.00", moves))) == [
        (date(2026, 5, 1), "medium"),
        (date(2026, 6, 1), "high"),  # 季末: when banks count deposits
    ]
    late = dressed(date(2026, 5, 31), "50000.00") + dressed(date(2026, 6, 30), "90000.00", days_after=6)
    assert run(statement("A", "8000.00", late))["risk_flags"].is_empty()


MONTH_ENDS = (date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 31), date(2026, 6, 30), date(2026, 7, 31))


def test_salary_on_the_last_day_of_the_month_spent_over_the_next_weeks_is_not_window_dressing():
    moves = []
    for month_end in MONTH_ENDS:
        moves.append((f"{month_end} 10:00", "30000.00", "上海某某科技有限公司", "代发工资"))
        moves.append((f"{month_end + timedelta(days=1)} 09:00", "-9000.00", "李四", "房租"))  # rent on the 1st
        for d in range(2, 30):
            moves.append((f"{month_end + timedelta(days=d)} 19:00", "-700.00", "某某超市", "消费"))
    assert run(statement("A", "2000.00", moves))["risk_flags"].is_empty()


def test_salary_swept_into_savings_the_day_after_payday_is_not_window_dressing():
    moves = []
    for month_end in MONTH_ENDS:
        moves.append((f"{month_end} 10:00", "30000.00", "上海某某科技有限公司", "代发工资"))
        moves.append((f"{month_end + timedelta(days=1)} 09:00", "-26000.00", "余额宝", "转入余额宝"))
        moves.append((f"{month_end + timedelta(days=10)} 09:00", "-4000.00", "某某超市", "消费"))
    assert run(statement("A", "3000.00", moves))["risk_flags"].is_empty()
    # the same money from a friend instead of the employer is pushed and drained
    from_friend = {"代发工资": (FRIEND[0], "转账")}
    dressing = [(at, amount, *from_friend.get(memo, (party, memo))) for at, amount, party, memo in moves]
    assert len(run(statement("A", "3000.00", dressing))["risk_flags"]) == len(MONTH_ENDS)


def test_money_in_and_out_again_before_the_month_end_does_not_dress_it():
    moves = []
    for month_end in MONTH_ENDS[:3]:
        moves.append((f"{month_end - timedelta(days=3)} 10:00", "80000.00", FRIEND[0], "转账"))
        moves.append((f"{month_end - timedelta(days=1)} 10:00", "-80000.00", FRIEND[0], "还款"))
    assert run(statement("A", "5000.00", moves))["risk_flags"].is_empty()


def test_a_one_off_deposit_that_stays_and_pushes_that_are_not_drained_are_not_flagged():
    stays = statement("A", "5000.00", [("2026-04-29 10:00", "100000.00", "王五", "转账")])
    assert run(stays)["risk_flags"].is_empty()
    half_back = []
    for month_end in (date(2026, 4, 30), date(2026, 5, 31), date(2026, 7, 31)):
        half_back += [
            (f"{month_end - timedelta(days=1)} 10:00", "80000.00", FRIEND[0], "转账"),
            (f"{month_end + timedelta(days=2)} 10:00", "-40000.00", FRIEND[0], "还款"),  # half stays: 50 % < 80 %
        ]
    assert run(statement("A", "5000.00", half_back))["risk_flags"].is_empty()


def test_small_month_end_bumps_below_the_noise_floor_are_not_flagged():
    moves = dressed(date(2026, 4, 30), "15000.00") + dressed(date(2026, 5, 31), "15000.00")  # rise < 20,000 CNY
    assert run(statement("A", "1000.00", moves))["risk_flags"].is_empty()


def test_a_credit_card_is_never_judged():
    rows = statement("C", "5000.00", dressed(date(2026, 4, 30), "80000.00") + dressed(date(2026, 5, 31), "60000.00"))
    result = run(rows, accounts_ref=accounts(("C", "K1", "张三", "credit_card")))
    assert result["risk_flags"].is_empty()


def ending_on(rows: list[dict], last_day: date) -> list[dict]:
    """The statement cut after `last_day`, with a small spend on that day (the coverage ends there)."""
    kept = [r for r in rows if r["booked_at"].date() <= last_day]
    balance = kept[-1]["balance_after"] - Decimal("10.00")
    return [
        *kept,
        txn(kept[0]["account_id"], f"{last_day} 21:00", "-10.00", "某某超市", None, "消费", f"{balance:.2f}"),
    ]


def test_a_month_end_whose_drain_or_usual_days_are_outside_the_coverage_is_not_judged():
    drained = dressed(date(2026, 4, 30), "80000.00") + dressed(date(2026, 5, 31), "80000.00")
    rows = statement("A", "5000.00", drained)
    assert run(ending_on(rows, date(2026, 6, 4)))["risk_flags"].is_empty()  # May's drain days run to June 5
    assert run(ending_on(rows, date(2026, 6, 14)))["risk_flags"].is_empty()  # its usual days to June 15
    assert flagged_months(run(ending_on(rows, date(2026, 6, 15)))) == [
        (date(2026, 4, 1), "medium"),
        (date(2026, 5, 1), "medium"),
    ]


def test_the_daily_balance_figures_carry_the_last_stated_balance_over_days_without_one():
    rows = [
        txn("A", "2026-06-01 09:00", "1000.00", "上海某某科技有限公司", None, "代发工资", "1000.00"),
        txn("A", "2026-06-03 12:00", "-300.00", "某某超市", None, "消费", "700.00"),
        txn("A", "2026-06-03 18:00", "-900.00", "某某超市", None, "消费", "-200.00"),  # the 3rd ends at -200
        txn("A", "2026-06-10 12:00", "50.00", "王五", None, "转账", None),  # no stated balance: -200 carries
        txn("A", "2026-06-21 09:00", "5200.00", "王五", None, "转账", "5050.00"),
        txn("A", "2026-06-30 20:00", "-50.00", "某某超市", None, "消费", "5000.00"),
        txn("A", "2026-07-02 09:00", "-1000.00", "某某超市", None, "消费", "4000.00"),
    ]
    months = run(rows)["account_months"].sort("month_on")
    june, july = months.row(0, named=True), months.row(1, named=True)
    # June: 1-2 at 1000, 3-20 at -200 (18 days), 21-29 at 5050 (9 days), 30 at 5000 — every one of the 30 days
    assert june["avg_daily_balance"] == Decimal("1628.33")  # (2 x 1000 - 18 x 200 + 9 x 5050 + 5000) / 30
    assert (june["min_daily_balance"], june["max_daily_balance"]) == (Decimal("-200.00"), Decimal("5050.00"))
    assert (june["negative_balance_days"], june["low_balance_days"]) == (18, 18)
    # July: the 1st carries June's 5000, the 2nd ends at 4000 (the coverage ends there)
    assert (july["avg_daily_balance"], july["min_daily_balance"], july["max_daily_balance"]) == (
        Decimal("4500.00"),
        Decimal("4000.00"),
        Decimal("5000.00"),
    )


def test_through_the_whole_chain_parked_money_is_neither_income_nor_a_large_outflow_one_fact_one_flag():
    from tests.rows import flags_of, signals

    salary_moves = [(f"2026-{m:02d}-10 09:00", "8000.00", "上海某某科技有限公司", "代发工资") for m in range(3, 10)] + [
        (f"2026-{m:02d}-12 19:00", "-8000.00", "某某超市", "消费") for m in range(3, 10)
    ]
    parked = dressed(date(2026, 4, 30), "80000.00") + dressed(date(2026, 5, 31), "60000.00")
    parked[3] = (parked[3][0], parked[3][1], "王五", "转账")  # May's money leaves to someone else
    moves = sorted(salary_moves + parked)
    result = signals(statement("A", "5000.00", moves), as_of=AS_OF)
    assert flags_of(result, "WINDOW_DRESSING")["period_start_on"].to_list() == [date(2026, 4, 1), date(2026, 5, 1)]
    assert flags_of(result, "LARGE_OUTFLOW").is_empty() and flags_of(result, "INCOME_VOLATILE").is_empty()
    legs = result["transactions"].filter(pl.col("amount").abs() >= 60000).sort("booked_at")
    assert legs.select("txn_class", "is_clean_income").rows() == [
        ("round_trip_in", False),  # April's money went back to the friend within days: a round trip first
        ("round_trip_out", False),
        ("window_dressing_in", False),  # May's went to someone else
        ("window_dressing_out", False),
    ]
