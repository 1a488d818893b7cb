"""PASS_THROUGH (快进快出, 过桥) on literal rows: a conduit account, and the ordinary accounts it must not catch
(a salary spent over the month, rent paid from pay, money left standing), the edges of its thresholds, and
one fact, one flag: the legs are neither clean income nor large outflows."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl

from tests.rows import flags_of, monthly, signals, txn

AS_OF = date(2026, 9, 15)


def _conduit(n: int = 4, each: str = "40000", forwarded: str = "39900", month: int = 6) -> list[dict]:
    """Account P: steady salary; in `month`, `n` transfers in from different parties, each forwarded to another
    party the next day (a small fee kept)."""
    rows = monthly("P", list(range(1, 9)), "8000", day=28)  # P-1..P-8, paid at month end: spent next month
    rows += [
        txn("P", f"2026-{m:02d}-0{d} 09:00:00", "-2000", "超市", None, "消费") for m in range(2, 9) for d in (1, 2)
    ]
    for i in range(n):
        day = 3 + 5 * i
        rows += [
            txn("P", f"2026-{month:02d}-{day:02d} 10:00:00", each, f"上家{i}", f"62{i}01", "往来款"),
            txn("P", f"2026-{month:02d}-{day + 1:02d} 11:00:00", f"-{forwarded}", f"下家{i}", f"62{i}02", "转账"),
        ]
    return rows


def test_money_that_arrives_and_leaves_within_days_is_flagged_with_its_legs():
    result = signals(_conduit(), as_of=AS_OF)
    flags = flags_of(result, "PASS_THROUGH")
    row = flags.row(0, named=True)
    # inflow of June: 4 x 40,000 + the salary of the 28th (not passed: salary never passes through)
    assert (flags.height, row["period_start_on"], row["threshold"], row["limit_name"]) == (
        1,
        date(2026, 6, 1),
        0.8,
        "share_passed_within_days",
    )
    assert row["metric_value"] == (4 * 39900) / (4 * 40000 + 8000)
    legs_in = [f"P-{23 + 2 * i}" for i in range(4)]
    legs_out = [f"P-{24 + 2 * i}" for i in range(4)]
    assert row["evidence_txn_ids"] == sorted(legs_in + legs_out)
    assert "left again within 3 days" in row["reason_en"] and "快进快出" in row["reason_zh"]
    # one fact, one flag: the legs are not income, the forwarded 39,900 (> 2 x 8,000) is not a large outflow
    passed = result["transactions"].filter(pl.col("txn_id").is_in(legs_in))
    assert set(passed["txn_class"]) == {"pass_through_in"}
    june = result["account_months"].filter(pl.col("month_on") == date(2026, 6, 1))
    assert june["clean_income"].to_list() == [Decimal("8000.00")]
    assert flags_of(result, "LARGE_OUTFLOW").is_empty()
    assert flags_of(result, "INCOME_VOLATILE").is_empty()


def test_a_salary_spent_over_the_month_is_not_pass_through():
    rows = monthly("S", list(range(1, 9)), "60000", day=1)
    rows += [
        txn("S", f"2026-{m:02d}-{d:02d} 09:00:00", "-5800", "商户", None, "消费")
        for m in range(1, 9)
        for d in range(2, 29, 3)
    ]
    assert flags_of(signals(rows, as_of=AS_OF), "PASS_THROUGH").is_empty()


def test_earnings_spent_over_the_month_are_not_pass_through():
    # a freelancer's fees (class income, which can pass through) spent in ten parts over the month
    rows = [txn("F", f"2026-{m:02d}-01 09:00:00", "60000", "客户甲", "555", "劳务费") for m in range(1, 9)]
    rows += [
        txn("F", f"2026-{m:02d}-{d:02d} 09:00:00", "-5800", "商户", None, "消费")
        for m in range(1, 9)
        for d in range(3, 29, 3)
    ]
    assert flags_of(signals(rows, as_of=AS_OF), "PASS_THROUGH").is_empty()


def test_rent_and_card_paid_on_pay_day_are_not_pass_through():
    rows = monthly("R", list(range(1, 9)), "40000", day=10)
    for m in range(1, 9):
        rows += [
            txn("R", f"2026-{m:02d}-10 12:00:00", "-15000", "房东", "6001", "房租"),
            txn("R", f"2026-{m:02d}-11 09:00:00", "-20000", "招商银行信用卡", "6002", "信用卡还款"),
        ]
    assert flags_of(signals(rows, as_of=AS_OF), "PASS_THROUGH").is_empty()


def _with_balances(rows: list[dict], opening: str) -> list[dict]:
    """The rows with the running balance stated, from `opening` (rows in time order)."""
    balance, stated = Decimal(opening), []
    for row in sorted(rows, key=lambda r: r["booked_at"]):
        balance += row["amount"]
        stated.append({**row, "balance_after": balance})
    return stated


def test_a_conduit_keeping_a_small_buffer_is_still_flagged():
    assert flags_of(signals(_with_balances(_conduit(), "20000"), as_of=AS_OF), "PASS_THROUGH").height == 1


def test_money_that_stays_on_the_account_is_not_pass_through():
    # the same flows with 200,000 standing: June's median balance is above its inflow (168,000)
    assert flags_of(signals(_with_balances(_conduit(), "200000"), as_of=AS_OF), "PASS_THROUGH").is_empty()


def test_passed_share_exactly_at_the_threshold_is_flagged():
    # 3 x 20,000 forwarded in full, 15,000 salary at month end: 60,000 / 75,000 = 0.8
    def month(salary: str) -> list[dict]:
        rows = []
        for i in range(3):
            rows += [
                txn("E", f"2026-06-{3 + 5 * i:02d} 10:00:00", "20000", f"上家{i}", f"62{i}01", "往来款"),
                txn("E", f"2026-06-{4 + 5 * i:02d} 10:00:00", "-20000", f"下家{i}", f"62{i}02", "转账"),
            ]
        return [*rows, txn("E", "2026-06-28 09:00:00", salary, "某公司", None, "代发工资")]

    flags = flags_of(signals(month("15000"), as_of=AS_OF), "PASS_THROUGH")
    assert flags["metric_value"].to_list() == [0.8] and flags["severity"].to_list() == ["medium"]
    assert flags_of(signals(month("15001"), as_of=AS_OF), "PASS_THROUGH").is_empty()


def _with_small_inflow_between(amount: str) -> list[dict]:
    """The conduit of `_conduit`, with a small transfer in (`amount`) between each inflow and its forward, as real
    statements have them: interest, a red packet, a friend paying back a meal."""
    rows = _conduit()
    for i in range(4):
        rows.append(txn("P", f"2026-06-{3 + 5 * i:02d} 15:00:00", amount, f"朋友{i}", None, "转账"))
    return rows


def test_a_small_inflow_between_the_money_and_its_forward_does_not_hide_the_passing():
    # 4 x 490 arrive after each 40,000 and before its forward; below min_leg (1,000 CNY) they cannot take it
    flags = flags_of(signals(_with_small_inflow_between("490"), as_of=AS_OF), "PASS_THROUGH")
    assert flags.height == 1
    assert flags["metric_value"].to_list() == [(4 * 39900) / (4 * 40000 + 8000 + 4 * 490)]


def test_an_inflow_at_min_leg_can_pass_through_and_takes_the_forward():
    # at 1,000 each the small inflow is the latest money before the forward: it carries 1,000 of it, and the
    # 40,000 before it passes nothing (newest money leaves first) — no month passed
    assert flags_of(signals(_with_small_inflow_between("1000"), as_of=AS_OF), "PASS_THROUGH").is_empty()


def test_too_few_inflows_or_too_little_money_is_not_pass_through():
    assert flags_of(signals(_conduit(n=2), as_of=AS_OF), "PASS_THROUGH").is_empty()  # min_inflows 3
    small = _conduit(n=4, each="6000", forwarded="6000")  # 24,000 passed < min_passed 30,000 CNY
    assert flags_of(signals(small, as_of=AS_OF), "PASS_THROUGH").is_empty()


def test_money_that_leaves_after_more_than_the_window_has_not_passed_through():
    rows = monthly("W", list(range(1, 9)), "100", day=28)
    for i in range(4):
        rows += [
            txn("W", f"2026-06-{1 + 6 * i:02d} 10:00:00", "40000", f"上家{i}", f"62{i}01", "往来款"),
            txn("W", f"2026-06-{5 + 6 * i:02d} 10:00:01", "-40000", f"下家{i}", f"62{i}02", "转账"),  # 4 days on
        ]
    assert flags_of(signals(rows, as_of=AS_OF), "PASS_THROUGH").is_empty()


def test_the_hops_of_a_cycle_are_the_cycle_not_pass_through():
    from tests.rows import accounts

    names = {"A": "张三", "B": "李四", "C": "王五"}
    refs = accounts(*[(a, f"C{a}", name, "personal") for a, name in names.items()])
    rows = [r for a in names for r in monthly(a, list(range(1, 9)), "100", day=28)]
    for i, day in enumerate((3, 10, 17)):  # three rounds A -> B -> C -> A in June, each hop the next day
        for hop, (src, dst) in enumerate((("A", "B"), ("B", "C"), ("C", "A"))):
            at = f"2026-06-{day + hop:02d} 10:0{i}:00"
            amount = 40000 - 200 * hop
            rows += [
                txn(src, at, f"-{amount}", names[dst], dst, "转账"),
                txn(
                    dst,
                    at.replace(":00:00", ":05:00").replace(f"10:0{i}:00", f"10:0{i}:30"),
                    str(amount),
                    names[src],
                    src,
                    "转账",
                ),
            ]
    result = signals(rows, as_of=AS_OF, accounts_ref=refs)
    assert sorted(flags_of(result, "CYCLE")["account_id"].to_list()) == ["A", "B", "C"]
    assert flags_of(result, "PASS_THROUGH").is_empty()
    b_june = result["transactions"].filter((pl.col("account_id") == "B") & (pl.col("booked_on") >= date(2026, 6, 1)))
    assert set(b_june.filter(pl.col("amount").abs() > 1000)["txn_class"]) == {"cycle_in", "cycle_out"}
