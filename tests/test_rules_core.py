"""The spine's rules on literal rows: classification, coverage, income volatility, large outflows,
related transfers, round trips, transfer legs. Each rule: a positive, a negative and an edge case."""

from __future__ import annotations

import hashlib
import statistics
from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from liushui.config import load_rules
from tests.rows import accounts, flags_of, monthly, related, signals, txn
from transforms.flag_rows import FLAG_KEY, duplicate_flag_ids, finish_flags
from transforms.outflows import LARGE_OUTFLOW

AS_OF = date(2026, 9, 15)  # September is the partial as-of month


# --- classification ----------------------------------------------------------------------------------
def test_classes_of_own_related_refund_salary_and_loan_rows():
    rows = [
        txn("A", "2026-01-10 09:00:00", "8000", "上海某某科技有限公司", None, "代发工资"),
        txn("A", "2026-01-11 09:00:00", "-500", "李四", "B", "转账"),  # own other account
        txn("A", "2026-01-12 09:00:00", "-300", "张三", None, "转账"),  # holder's own name
        txn("A", "2026-01-13 09:00:00", "-200", "王芳", None, "生活费"),  # spouse by name
        txn("A", "2026-01-14 09:00:00", "-100", None, "6200001", "转账"),  # family by account
        txn("A", "2026-01-15 09:00:00", "50", "京东商城", None, "退款"),
        txn("A", "2026-01-16 09:00:00", "5000", "重庆蚂蚁消费金融有限公司", None, "借呗放款"),
        txn("A", "2026-01-17 09:00:00", "900", "客户甲", None, "劳务费"),
        txn("A", "2026-01-18 09:00:00", "-60", "美团外卖", None, "外卖"),
    ]
    result = signals(
        rows,
        as_of=AS_OF,
        accounts_ref=accounts(("A", "C1", "张三", "personal"), ("B", "C1", "张三", "personal")),
        related_ref=related(("C1", "王芳", None, "spouse"), ("C1", None, "6200001", "family")),
    )
    t = result["transactions"].sort("source_row")
    assert t["txn_class"].to_list() == [
        "salary",
        "own_transfer_out",
        "own_transfer_out",
        "related_transfer_out",
        "related_transfer_out",
        "refund",
        "loan_disbursement",
        "income",
        "spend",
    ]
    assert t["related_relation"].to_list() == [None, "own_account", "self", "spouse", "family", None, None, None, None]
    assert t["is_clean_income"].to_list() == [True, False, False, False, False, False, False, True, False]
    assert t["customer_id"].unique().to_list() == ["C1"]


def test_unknown_account_is_its_own_customer():
    result = signals([txn("Z", "2026-01-10 09:00:00", "1", "x")], as_of=AS_OF)
    assert result["transactions"]["customer_id"].to_list() == ["Z"]


# --- coverage ----------------------------------------------------------------------------------------
def test_coverage_months_include_empty_months_and_mark_partial_ones():
    rows = [
        txn("A", "2026-01-20 09:00:00", "100", "x"),
        txn("A", "2026-04-03 09:00:00", "100", "x"),
        txn("A", "2026-09-02 09:00:00", "100", "x"),
    ]
    months = signals(rows, as_of=AS_OF)["account_months"]
    assert months["month_on"].to_list() == [date(2026, m, 1) for m in range(1, 10)]
    assert months["covered_days"].to_list() == [12, 28, 31, 30, 31, 30, 31, 31, 2]
    # January covers 12 days (< 25): partial; September is the as-of month: partial
    assert months["is_full_month"].to_list() == [False] + [True] * 7 + [False]
    assert months["inflow"].to_list()[1] == Decimal("0.00")  # an empty covered month is a real zero


# --- income volatility -------------------------------------------------------------------------------
def _volatile(incomes: list[str]) -> list[dict]:
    rows = [txn("V", "2026-01-01 08:00:00", "1", "x", None, "利息")]
    for m, amount in enumerate(incomes, start=1):
        rows.append(txn("V", f"2026-{m:02d}-10 09:00:00", amount, "客户甲", None, "劳务费"))
    rows.append(txn("V", "2026-09-02 09:00:00", "1", "x", None, "利息"))
    return rows


def test_volatile_income_is_flagged_with_exact_cv():
    incomes = ["1000", "20000", "500", "9000", "100", "30000", "2000", "50"]
    result = signals(_volatile(incomes), as_of=AS_OF)
    months = result["account_months"].filter(pl.col("income_cv").is_not_null())
    # judged from the 4th full month (min_months 4) to August; September is partial
    assert [d.month for d in months["month_on"].to_list()] == [4, 5, 6, 7, 8]
    window = [float(x) + (1.0 if i == 0 else 0.0) for i, x in enumerate(incomes[:4])]  # Jan has the 1.00 interest
    expected = statistics.pstdev(window) / statistics.mean(window)
    assert months["income_cv"][0] == pytest.approx(expected, rel=1e-9)
    assert (months["income_cv"] > 0.5).all()
    # April to August fire: one episode, from April's window (clipped to January) to August, at the peak month
    flags = flags_of(result, "INCOME_VOLATILE")
    assert flags.select("period_start_on", "period_end_on").rows() == [(date(2026, 1, 1), date(2026, 8, 31))]
    peak = months.sort("income_cv", "month_on", descending=[True, False]).row(0, named=True)
    assert flags["metric_value"].to_list() == [peak["income_cv"]]
    assert flags["threshold"].to_list() == [0.5]
    assert flags["severity"].to_list() == ["high"]
    assert "coefficient of variation of" in flags["reason_en"][0] and "变异系数" in flags["reason_zh"][0]
    peak_month = peak["month_on"].strftime("%Y-%m")
    assert flags["reason_zh"][0].endswith(f"；连续 5 个月（2026-04 至 2026-08），峰值月 {peak_month}。")
    assert len(flags["evidence_txn_ids"][0]) == 9  # the income rows of Jan..Aug (incl. the interest)


def test_stable_income_is_not_flagged():
    rows = monthly("S", list(range(1, 10)), "10000")
    assert flags_of(signals(rows, as_of=AS_OF), "INCOME_VOLATILE").is_empty()


def test_too_few_full_months_are_not_judged():
    rows = [
        txn("V", f"2026-0{m}-10 09:00:00", a, "客户", None, "劳务费")
        for m, a in [(5, "100"), (6, "50000"), (7, "10"), (8, "9000")]
    ]
    result = signals(rows, as_of=AS_OF)
    # May covers 22 days (first booking on the 10th): June..August = 3 full months < min_months 4
    assert result["account_months"]["income_cv"].is_null().all()
    assert flags_of(result, "INCOME_VOLATILE").is_empty()


# --- large outflows ----------------------------------------------------------------------------------
def _salaried(amount: str, outflow: str, month: int = 6) -> list[dict]:
    return monthly("L", [1, 2, 3, 4, 5, 6, 7, 8], amount, day=1) + [
        txn("L", f"2026-{month:02d}-15 09:00:00", f"-{outflow}", "某人", "999", "转账")
    ]


def test_outflow_above_income_multiple_is_flagged_relative_to_income():
    flags = flags_of(signals(_salaried("12000", "30000"), as_of=AS_OF), "LARGE_OUTFLOW")
    row = flags.row(0, named=True)
    assert (flags.height, row["metric_value"], row["threshold"], row["limit_name"]) == (
        1,
        30000.0,
        24000.0,
        "relative_to_income",
    )
    assert row["severity"] == "medium" and row["evidence_txn_ids"] == ["L-9"]


def test_outflow_below_the_limit_is_not_flagged():
    assert flags_of(signals(_salaried("12000", "23999.99"), as_of=AS_OF), "LARGE_OUTFLOW").is_empty()


def test_outflow_exactly_at_the_limit_is_flagged():
    assert flags_of(signals(_salaried("12000", "24000.00"), as_of=AS_OF), "LARGE_OUTFLOW").height == 1


def test_four_times_a_low_income_is_large_far_below_the_old_20000_floor():
    flags = flags_of(signals(_salaried("3000", "12000"), as_of=AS_OF), "LARGE_OUTFLOW")
    assert flags.select("metric_value", "threshold", "limit_name").rows() == [(12000.0, 6000.0, "relative_to_income")]
    assert flags["severity"].to_list() == ["medium"]  # 4 x income < high_multiple 5


def test_the_noise_floor_keeps_small_outflows_of_a_tiny_income_unflagged():
    # 2 x 800 = 1,600 is below the CNY noise floor of 2,000: the floor is the limit
    assert flags_of(signals(_salaried("800", "1999.99"), as_of=AS_OF), "LARGE_OUTFLOW").is_empty()
    flags = flags_of(signals(_salaried("800", "2000"), as_of=AS_OF), "LARGE_OUTFLOW")
    assert flags.select("threshold", "limit_name").rows() == [(2000.0, "absolute_floor")]


def _lump_earner(outflow: str) -> list[dict]:
    """A freelancer paid in lumps: 30,000 in Jan and Apr, 12,000 in Mar and May, nothing in Feb; a card bill in June."""
    pay = {1: "30000", 3: "12000", 4: "30000", 5: "12000"}
    rows = [txn("F", f"2026-{m:02d}-12 09:00:00", a, "某设计公司", None, "设计费") for m, a in pay.items()]
    rows += [txn("F", f"2026-{m:02d}-01 08:00:00", "-50", "超市", None, "消费") for m in range(1, 9)]
    return [*rows, txn("F", "2026-06-20 09:00:00", f"-{outflow}", "某人", "999", "转账")]


def test_a_lump_earners_base_is_the_mean_of_the_months_without_the_best():
    # previous months Jan..May: 30,000, 0, 12,000, 30,000, 12,000 -> the best (30,000) left out: 54,000 / 4 =
    # 13,500, a limit of 27,000 (the median, 12,000, would say 24,000; with a zero more, nearly nothing)
    assert flags_of(signals(_lump_earner("26999.99"), as_of=AS_OF), "LARGE_OUTFLOW").is_empty()
    flags = flags_of(signals(_lump_earner("27000"), as_of=AS_OF), "LARGE_OUTFLOW")
    assert flags.select("threshold", "limit_name").rows() == [(27000.0, "relative_to_income")]


def test_a_windfall_does_not_raise_the_base():
    # a steady 8,000 with one 200,000 inheritance in March: the best month is left out, the base stays 8,000
    rows = monthly("W", [1, 2, 3, 4, 5, 6, 7, 8], "8000", day=1)
    rows += [txn("W", "2026-03-05 09:00:00", "200000", "某公司", None, "劳务费")]
    rows += [txn("W", "2026-06-20 09:00:00", "-16000", "某人", "999", "转账")]
    flags = flags_of(signals(rows, as_of=AS_OF), "LARGE_OUTFLOW")
    assert flags.select("metric_value", "threshold", "limit_name").rows() == [(16000.0, 16000.0, "relative_to_income")]


def test_an_account_without_clean_income_is_judged_on_the_absolute_limit():
    rows = [txn("N", f"2026-{m:02d}-01 09:00:00", "6000", "张三", "N2", "转账") for m in range(1, 9)] + [
        txn("N", "2026-06-15 09:00:00", "-6000", "商场", "999", "消费"),
        txn("N", "2026-06-16 09:00:00", "-50000", "某人", "998", "转账"),
    ]
    refs = accounts(("N", "C", "张三", "personal"), ("N2", "C", "张三", "personal"))
    flags = flags_of(signals(rows, as_of=AS_OF, accounts_ref=refs), "LARGE_OUTFLOW")
    assert flags.select("threshold", "limit_name", "evidence_txn_ids").rows() == [
        (50000.0, "no_income_absolute", ["N-10"])
    ]
    assert flags["severity"].to_list() == ["medium"]  # no base: never high


def test_absolute_limits_are_per_currency():
    def short(currency: str, amount: str) -> list[dict]:
        # two months only: no income base, the currency's no_history_limit applies
        return monthly("J", [7, 8], "12000", day=1) + [
            txn("J", "2026-08-16 09:00:00", f"-{amount}", "某人", "9", "转账", currency=currency)
            for _ in range(9)  # the main currency is the outflow's
        ]

    assert flags_of(signals(short("JPY", "50000"), as_of=AS_OF), "LARGE_OUTFLOW").is_empty()
    jpy = flags_of(signals(short("JPY", "1000000"), as_of=AS_OF), "LARGE_OUTFLOW")
    assert jpy.select("currency", "threshold", "limit_name").rows() == [("JPY", 1000000.0, "no_history_absolute")]
    assert "no limit set" not in jpy["reason_en"][0]
    cny = flags_of(signals(short("CNY", "50000"), as_of=AS_OF), "LARGE_OUTFLOW")
    assert cny["threshold"].to_list() == [50000.0]


def test_an_unlisted_currency_takes_the_cny_limit_and_says_so():
    rows = monthly("J", [7, 8], "12000", day=1) + [
        txn("J", "2026-08-16 09:00:00", "-50000", "某人", "9", "transfer", currency="THB")
    ]
    flags = flags_of(signals(rows, as_of=AS_OF), "LARGE_OUTFLOW").filter(pl.col("currency") == "THB")
    assert flags["threshold"].to_list() == [50000.0]
    assert "no limit set for THB: the CNY amount is used as it is" in flags["reason_en"][0]
    assert "THB未设限额，按CNY数额" in flags["reason_zh"][0]


def test_a_round_trip_leg_of_50000_is_neither_a_large_outflow_nor_income():
    rows = _salaried("12000", "100", month=3) + [  # limit 24,000 in June
        txn("L", "2026-06-03 09:00:00", "-50000", "朋友甲", "888", "转账"),  # out and back
        txn("L", "2026-06-05 09:00:00", "50000", "朋友甲", "888", "转账"),
        txn("L", "2026-06-10 09:00:00", "50000", "朋友乙", "777", "往来款"),  # in and back out
        txn("L", "2026-06-12 09:00:00", "-50000", "朋友乙", "777", "转账"),
    ]
    result = signals(rows, as_of=AS_OF)
    assert flags_of(result, "LARGE_OUTFLOW").is_empty()
    assert flags_of(result, "ROUND_TRIP")["metric_value"].to_list() == [2.0]
    june = result["account_months"].filter(pl.col("month_on") == date(2026, 6, 1))
    assert june["clean_income"].to_list() == [Decimal("12000.00")]
    legs = result["transactions"].filter(pl.col("txn_id").is_in(["L-10", "L-11", "L-12", "L-13"])).sort("txn_id")
    assert legs.select("txn_id", "txn_class").rows() == [
        ("L-10", "round_trip_out"),
        ("L-11", "round_trip_in"),
        ("L-12", "round_trip_in"),
        ("L-13", "round_trip_out"),
    ]
    assert not flags_of(result, "INCOME_VOLATILE").height


def test_round_trips_with_a_related_party_are_round_trips_not_heavy_related_transfers():
    # four trips to and back from the spouse in May: 4 x 5,000 of the month's 22,000 outflow would be 91 %
    rows = _related_month(0, "0", "2000")
    for i in range(4):
        rows += [
            txn("R", f"2026-05-{10 + 3 * i:02d} 09:00:00", "-5000", "王芳", None, "转账"),
            txn("R", f"2026-05-{11 + 3 * i:02d} 09:00:00", "5000", "王芳", None, "转账"),
        ]
    result = signals(rows, as_of=AS_OF, **REFS)
    assert flags_of(result, "ROUND_TRIP")["metric_value"].to_list() == [4.0]
    assert flags_of(result, "RELATED_TRANSFER_HEAVY").is_empty()
    may = result["account_months"].filter(pl.col("month_on") == date(2026, 5, 1))
    assert may.select("related_out", "related_in", "related_out_count").rows() == [
        (Decimal("0.00"), Decimal("0.00"), 0)
    ]
    # a fifth transfer to the spouse that does not come back is a related transfer again
    one_way = flags_of(
        signals(rows + [txn("R", "2026-05-28 09:00:00", "-9000", "王芳", None, "转账")], as_of=AS_OF, **REFS),
        "RELATED_TRANSFER_HEAVY",
    )
    assert one_way.height == 0  # one related transfer is under min_count: the trips do not count towards it


def test_early_months_use_the_statement_income_and_short_statements_the_absolute_limit():
    early = flags_of(signals(_salaried("12000", "30000", month=2), as_of=AS_OF), "LARGE_OUTFLOW")
    assert early["limit_name"].to_list() == ["relative_to_statement_income"]
    short = monthly("L", [7, 8], "12000", day=1) + [
        txn("L", "2026-08-15 09:00:00", "-49999", "某人", "9", "转账"),
        txn("L", "2026-08-16 09:00:00", "-50000", "某人", "9", "转账"),
    ]
    flags = flags_of(signals(short, as_of=AS_OF), "LARGE_OUTFLOW")
    assert flags["limit_name"].to_list() == ["no_history_absolute"]
    assert flags["evidence_txn_ids"].to_list() == [["L-4"]]


def test_moving_money_to_own_account_is_not_a_large_outflow():
    rows = monthly("L", list(range(1, 9)), "12000", day=1) + [
        txn("L", "2026-06-15 09:00:00", "-90000", "张三", "L2", "转账")
    ]
    refs = accounts(("L", "C", "张三", "personal"), ("L2", "C", "张三", "personal"))
    assert flags_of(signals(rows, as_of=AS_OF, accounts_ref=refs), "LARGE_OUTFLOW").is_empty()


def test_large_outflows_in_two_currencies_of_one_month_are_two_flags_with_distinct_ids():
    # CNY is the main currency (the salaries); USD has no income, so its limit is USD's absolute limit
    rows = _salaried("12000", "30000") + [
        txn("L", "2026-06-16 09:00:00", "-25000", "Someone", "998", "transfer", currency="USD")
    ]
    flags = flags_of(signals(rows, as_of=AS_OF), "LARGE_OUTFLOW").sort("currency")
    assert flags.select(
        "currency", "period_start_on", "period_end_on", "metric_value", "threshold", "limit_name", "evidence_txn_ids"
    ).rows() == [
        ("CNY", date(2026, 6, 1), date(2026, 6, 30), 30000.0, 24000.0, "relative_to_income", ["L-9"]),
        ("USD", date(2026, 6, 1), date(2026, 6, 30), 25000.0, 7000.0, "no_income_absolute", ["L-10"]),
    ]
    assert flags["flag_id"].to_list() == [
        hashlib.sha256(f"LARGE_OUTFLOW|L|{c}|2026-06-01|2026-06-30".encode()).hexdigest()[:32] for c in ("CNY", "USD")
    ]
    assert flags["flag_id"].n_unique() == 2


# --- related transfers -------------------------------------------------------------------------------
def _related_month(n: int, each: str, other_spend: str) -> list[dict]:
    rows = monthly("R", list(range(1, 9)), "10000", day=1)
    rows += [txn("R", f"2026-05-{10 + i:02d} 09:00:00", f"-{each}", "王芳", None, "转账") for i in range(n)]
    rows.append(txn("R", "2026-05-25 09:00:00", f"-{other_spend}", "超市", None, "消费"))
    return rows


REFS = {"accounts_ref": accounts(("R", "C", "张三", "personal")), "related_ref": related(("C", "王芳", None, "spouse"))}


def test_heavy_related_transfers_are_flagged():
    flags = flags_of(signals(_related_month(4, "1500", "2000"), as_of=AS_OF, **REFS), "RELATED_TRANSFER_HEAVY")
    row = flags.row(0, named=True)
    assert (flags.height, row["period_start_on"], row["metric_value"]) == (1, date(2026, 5, 1), 0.75)
    assert len(row["evidence_txn_ids"]) == 4 and row["severity"] == "medium"


def test_too_few_related_transfers_are_not_flagged():
    assert flags_of(signals(_related_month(3, "3000", "100"), as_of=AS_OF, **REFS), "RELATED_TRANSFER_HEAVY").is_empty()


def test_related_share_exactly_at_threshold_is_flagged():
    flags = flags_of(signals(_related_month(4, "1000", "4000"), as_of=AS_OF, **REFS), "RELATED_TRANSFER_HEAVY")
    assert flags["metric_value"].to_list() == [0.5]


# --- round trips -------------------------------------------------------------------------------------
def _trips(back_days: int = 2, back_amount: str = "30000") -> list[dict]:
    rows = monthly("T", list(range(1, 9)), "10000", day=1)
    rows += [
        txn("T", "2026-06-03 09:00:00", "-30000", "朋友甲", "888", "转账"),
        txn("T", f"2026-06-{3 + back_days:02d} 09:00:00", back_amount, "朋友甲", "888", "转账"),
        txn("T", "2026-06-20 09:00:00", "-20000", "朋友乙", "777", "转账"),
        txn("T", "2026-06-21 10:00:00", "20000", "朋友乙", "777", "转账"),
    ]
    return rows


def test_round_trips_are_linked_and_flagged():
    result = signals(_trips(), as_of=AS_OF)
    links = result["transfer_links"].filter(pl.col("link_type") == "round_trip").sort("out_txn_id")
    assert links.select("out_txn_id", "in_txn_id", "days_apart").rows() == [("T-11", "T-12", 1), ("T-9", "T-10", 2)]
    flags = flags_of(result, "ROUND_TRIP")
    assert flags["metric_value"].to_list() == [2.0]
    assert flags["evidence_txn_ids"].to_list() == [["T-10", "T-11", "T-12", "T-9"]]
    # the money that came back is not income
    returned = result["transactions"].filter(pl.col("txn_id").is_in(["T-10", "T-12"]))
    assert returned["txn_class"].to_list() == ["round_trip_in", "round_trip_in"]
    june = result["account_months"].filter(pl.col("month_on") == date(2026, 6, 1))
    assert june["clean_income"].to_list() == [Decimal("10000.00")]


def test_return_of_a_different_amount_is_not_a_round_trip():
    result = signals(_trips(back_amount="27000"), as_of=AS_OF)
    links = result["transfer_links"].filter(pl.col("link_type") == "round_trip")
    assert links["out_txn_id"].to_list() == ["T-11"]
    assert flags_of(result, "ROUND_TRIP").is_empty()  # one trip < min_count_per_month 2


def test_return_after_max_days_is_not_a_round_trip():
    within = signals(_trips(back_days=7), as_of=AS_OF)["transfer_links"]
    beyond = signals(_trips(back_days=8), as_of=AS_OF)["transfer_links"]
    assert "T-9" in within["out_txn_id"].to_list()
    assert "T-9" not in beyond["out_txn_id"].to_list()


def test_round_trip_through_related_parties_counts():
    rows = monthly("T", list(range(1, 9)), "10000", day=1) + [
        txn("T", "2026-06-03 09:00:00", "-50000", "王芳", None, "转账"),
        txn("T", "2026-06-05 09:00:00", "50000", "张三", "T2", "转账"),  # back from own other account
    ]
    refs = dict(
        accounts_ref=accounts(("T", "C", "张三", "personal"), ("T2", "C", "张三", "personal")),
        related_ref=related(("C", "王芳", None, "spouse")),
    )
    links = signals(rows, as_of=AS_OF, **refs)["transfer_links"].filter(pl.col("link_type") == "round_trip")
    assert links.select("out_txn_id", "in_txn_id").rows() == [("T-9", "T-10")]


def test_money_in_from_a_party_and_straight_back_out_is_a_round_trip():
    rows = monthly("T", list(range(1, 9)), "10000", day=1) + [
        txn("T", "2026-06-03 09:00:00", "50000", "朋友甲", "888", "往来款"),  # a friend sends 50,000 ...
        txn("T", "2026-06-05 09:00:00", "-50000", "朋友甲", "888", "转账"),  # ... it goes back two days later
        txn("T", "2026-06-20 09:00:00", "30000", "朋友乙", "777", "往来款"),
        txn("T", "2026-06-21 10:00:00", "-29500", "朋友乙", "777", "转账"),  # within 5 % of the first leg
    ]
    result = signals(rows, as_of=AS_OF)
    links = result["transfer_links"].filter(pl.col("link_type") == "round_trip").sort("in_txn_id")
    # out_txn_id is the outflow, whichever came first
    assert links.select("out_txn_id", "in_txn_id", "days_apart").rows() == [("T-12", "T-11", 1), ("T-10", "T-9", 2)]
    flags = flags_of(result, "ROUND_TRIP")
    assert flags.select("period_start_on", "metric_value", "evidence_txn_ids").rows() == [
        (date(2026, 6, 1), 2.0, ["T-10", "T-11", "T-12", "T-9"])
    ]
    assert "came in and went back" in flags["reason_en"][0]
    returned = result["transactions"].filter(pl.col("txn_id").is_in(["T-9", "T-11"]))
    assert returned["txn_class"].to_list() == ["round_trip_in", "round_trip_in"]
    assert result["account_months"].filter(pl.col("month_on") == date(2026, 6, 1))["clean_income"].to_list() == [
        Decimal("10000.00")
    ]


def test_money_in_that_leaves_to_someone_else_is_not_a_round_trip():
    rows = monthly("T", list(range(1, 9)), "10000", day=1) + [
        txn("T", "2026-06-03 09:00:00", "50000", "朋友甲", "888", "往来款"),
        txn("T", "2026-06-05 09:00:00", "-50000", "朋友乙", "777", "转账"),
    ]
    assert signals(rows, as_of=AS_OF)["transfer_links"].filter(pl.col("link_type") == "round_trip").is_empty()


def test_the_legs_of_a_round_trip_in_the_same_second_are_not_ordered_and_not_a_trip():
    rows = [
        txn("T", "2026-06-03 09:00:00", "50000", "朋友甲", "888", "往来款"),
        txn("T", "2026-06-03 09:00:00", "-50000", "朋友甲", "888", "转账"),
    ]
    assert signals(rows, as_of=AS_OF)["transfer_links"].filter(pl.col("link_type") == "round_trip").is_empty()


@pytest.mark.parametrize(
    ("back_name", "back_account", "is_trip"),
    [
        ("朋友甲", "6222****1234", True),  # masked number: visible digits and the name agree
        (None, "尾号1234", True),  # only the last four digits, no name to contradict them
        ("朋 友 甲", None, True),  # the name only, spaced differently
        (None, "6222021234561234", True),  # the full number without a name
        ("朋友乙", "6222****1234", False),  # the same last digits, another person
        ("朋友甲", "6222****9999", False),  # the same name, digits that cannot be the account
        ("朋友甲", "6222029999991234", False),  # the same name and last digits, another full number
        (None, "6223****1234", False),  # the visible head does not fit
    ],
)
def test_the_counterparty_of_both_legs_is_matched_on_visible_digits_and_name(back_name, back_account, is_trip):
    rows = [
        txn("T", "2026-06-03 09:00:00", "-30000", "朋友甲", "6222021234561234", "转账"),
        txn("T", "2026-06-05 09:00:00", "30000", back_name, back_account, "转账"),
    ]
    links = signals(rows, as_of=AS_OF)["transfer_links"].filter(pl.col("link_type") == "round_trip")
    assert links.height == int(is_trip)


def _trip_pair(account: str, currency: str, first: str, second: str) -> list[dict]:
    """Two round trips in June 2026 in `currency`: `first` out and back within 2 days, `second` within a day."""
    return [
        txn(account, "2026-06-03 09:00:00", f"-{first}", "朋友甲", "888", "转账", currency=currency),
        txn(account, "2026-06-05 09:00:00", first, "朋友甲", "888", "转账", currency=currency),
        txn(account, "2026-06-20 09:00:00", f"-{second}", "朋友乙", "777", "转账", currency=currency),
        txn(account, "2026-06-21 10:00:00", second, "朋友乙", "777", "转账", currency=currency),
    ]


def test_round_trips_in_two_currencies_of_one_month_are_two_flags_with_distinct_ids():
    rows = (
        monthly("T", list(range(1, 9)), "10000", day=1)
        + _trip_pair("T", "CNY", "8000", "6000")
        + _trip_pair("T", "USD", "7000", "5000")
    )
    flags = flags_of(signals(rows, as_of=AS_OF), "ROUND_TRIP").sort("currency")
    assert flags.select("currency", "period_start_on", "metric_value", "evidence_txn_ids").rows() == [
        ("CNY", date(2026, 6, 1), 2.0, ["T-10", "T-11", "T-12", "T-9"]),
        ("USD", date(2026, 6, 1), 2.0, ["T-13", "T-14", "T-15", "T-16"]),
    ]
    assert flags["flag_id"].n_unique() == 2


# --- both legs in the batch --------------------------------------------------------------------------
def test_both_legs_of_a_transfer_are_linked():
    rows = [
        txn("A", "2026-03-01 09:00:00", "-700", "李四", "B", "转账"),
        txn("B", "2026-03-01 09:05:00", "700", "张三", "A", "转账"),
        txn("B", "2026-03-09 09:05:00", "700", "张三", "A", "转账"),
    ]
    links = signals(rows, as_of=AS_OF)["transfer_links"].filter(pl.col("link_type") == "transfer_legs")
    assert links.select("account_id", "out_txn_id", "in_txn_id").rows() == [("A", "A-1", "B-2")]


# --- flag ids: one per rule, account, currency and period --------------------------------------------
def _two_currency_account() -> list[dict]:
    """Account M: CNY salaries (its main currency); in June large outflows and two round trips in CNY and
    in USD; in July a balance break and four loan disbursements in each currency."""

    def month_of_july(currency: str) -> list[dict]:
        return [
            txn("M", "2026-07-20 09:00:00", "1000", "某人", None, "存入", balance="1000", currency=currency),
            txn("M", "2026-07-21 09:00:00", "-100", "超市", None, "消费", balance="850", currency=currency),  # -50
        ] + [
            txn("M", f"2026-07-1{i} 10:00:00", "500", "重庆蚂蚁消费金融有限公司", None, "借呗放款", currency=currency)
            for i in range(4)
        ]

    return (
        monthly("M", list(range(1, 9)), "12000", day=1)  # M-1..M-8
        + [
            txn("M", "2026-06-25 09:00:00", "-60000", "某人", "999", "转账"),  # M-9
            txn("M", "2026-06-26 09:00:00", "-25000", "Someone", "998", "transfer", currency="USD"),  # M-10
        ]
        + _trip_pair("M", "CNY", "30000", "20000")  # M-11..M-14: M-11 came back: not a large outflow
        + _trip_pair("M", "USD", "6000", "5000")  # M-15..M-18
        + month_of_july("CNY")  # M-19..M-24
        + month_of_july("USD")  # M-25..M-30
    )


def test_every_flag_of_a_two_currency_account_has_its_own_id():
    flags = signals(_two_currency_account(), as_of=AS_OF)["risk_flags"]
    june, july = (date(2026, 6, 1), date(2026, 6, 30)), (date(2026, 7, 1), date(2026, 7, 31))
    got = flags.sort("flag_code", "currency").select("flag_code", "currency", *FLAG_KEY[2:], "evidence_txn_ids")
    assert got.rows() == [
        ("BALANCE_BREAK", "CNY", *july, ["M-19", "M-20"]),
        ("BALANCE_BREAK", "USD", *july, ["M-25", "M-26"]),
        # judged in the main currency only: the four USD disbursements are not judged
        ("BORROWING_FREQUENT", "CNY", *july, ["M-21", "M-22", "M-23", "M-24"]),
        ("LARGE_OUTFLOW", "CNY", *june, ["M-9"]),
        ("LARGE_OUTFLOW", "USD", *june, ["M-10"]),
        ("ROUND_TRIP", "CNY", *june, ["M-11", "M-12", "M-13", "M-14"]),
        ("ROUND_TRIP", "USD", *june, ["M-15", "M-16", "M-17", "M-18"]),
    ]
    assert flags["flag_id"].is_unique().all()
    assert duplicate_flag_ids(flags.lazy()).collect().is_empty()
    usd_break = flags.filter((pl.col("flag_code") == "BALANCE_BREAK") & (pl.col("currency") == "USD"))
    assert "50.00 USD" in usd_break["reason_en"][0]


def test_duplicate_flag_ids_names_every_row_sharing_an_id():
    flags = signals(_two_currency_account(), as_of=AS_OF)["risk_flags"]
    twice = pl.concat([flags, flags.filter(pl.col("flag_code") == "ROUND_TRIP")])
    dupes = duplicate_flag_ids(twice.lazy()).collect()
    assert dupes.height == 4 and set(dupes["flag_code"]) == {"ROUND_TRIP"}


def test_a_rule_cannot_forget_a_key_column():
    candidates = pl.LazyFrame(
        {"account_id": ["A"], "period_start_on": [date(2026, 6, 1)], "period_end_on": [date(2026, 6, 30)]}
    )
    settings = load_rules().large_outflow
    with pytest.raises(ValueError, match=r"LARGE_OUTFLOW: flag candidates lack the key column\(s\) \['currency'\]"):
        finish_flags(candidates, LARGE_OUTFLOW, settings)
    with pytest.raises(ValueError, match=r"\['lender_pair'\]"):
        finish_flags(
            candidates.with_columns(currency=pl.lit("CNY")), LARGE_OUTFLOW, settings, extra_key=("lender_pair",)
        )


def test_a_rule_is_finished_with_its_own_section_only():
    candidates = pl.LazyFrame({"account_id": ["A"]})
    with pytest.raises(TypeError, match=r"LARGE_OUTFLOW: given RoundTripRules settings; the rule reads section"):
        finish_flags(candidates, LARGE_OUTFLOW, load_rules().round_trip)


def test_an_extra_key_tells_two_flags_of_one_period_apart():
    june = {
        "account_id": "A",
        "currency": "CNY",
        "period_start_on": date(2026, 6, 1),
        "period_end_on": date(2026, 6, 30),
    }
    explained = {"metric_value": 1.0, "threshold": 1.0, "limit_name": "x", "severity": "high", "reason_zh": "理由"}
    candidates = pl.LazyFrame(
        [{**june, **explained, "reason_en": "r", "evidence_txn_ids": ["t"], "pair": p} for p in ("a→b", "c→d")]
    )
    flags = finish_flags(candidates, LARGE_OUTFLOW, load_rules().large_outflow, extra_key=("pair",)).collect()
    assert flags["flag_id"].to_list() == [
        hashlib.sha256(f"LARGE_OUTFLOW|A|CNY|2026-06-01|2026-06-30|{p}".encode()).hexdigest()[:32]
        for p in ("a→b", "c→d")
    ]


def test_one_to_one_gives_a_leg_its_second_choice_when_its_first_went_to_a_better_pair():
    from transforms.transfers import one_to_one

    # out o1 fits i1 and i2; out o2 fits only i1. A single greedy pass by gap pairs o1-i1 and leaves o2 alone.
    pairs = pl.DataFrame({"out_txn_id": ["o1", "o1", "o2"], "in_txn_id": ["i1", "i2", "i1"], "_gap": [1, 2, 3]}).lazy()
    kept = one_to_one(pairs, order=["_gap", "out_txn_id", "in_txn_id"]).collect()
    assert kept.rows() == [("o1", "i1", 1)]  # o1-i1 is first for both legs; o2 then has nothing left
    pairs = pl.DataFrame({"out_txn_id": ["o1", "o1", "o2"], "in_txn_id": ["i1", "i2", "i2"], "_gap": [2, 1, 3]}).lazy()
    kept = one_to_one(pairs, order=["_gap", "out_txn_id", "in_txn_id"]).collect()
    assert kept.rows() == [("o1", "i2", 1)]
    chain = pl.DataFrame(  # o2's first is i1 (taken by o1's better pair): o2 gets i2 in the next round
        {"out_txn_id": ["o1", "o2", "o2", "o3"], "in_txn_id": ["i1", "i1", "i2", "i2"], "_gap": [1, 2, 3, 4]}
    ).lazy()
    assert one_to_one(chain, order=["_gap", "out_txn_id", "in_txn_id"]).collect().rows() == [
        ("o1", "i1", 1),
        ("o2", "i2", 3),
    ]


def _rent(amounts: list[str], landlord: str = "房东王五") -> list[dict]:
    """A low income of 2,000 on the 1st; rent to one landlord on the 5th of months 3, 4, 5, ..."""
    rows = monthly("L", [1, 2, 3, 4, 5, 6, 7, 8], "2000", day=1)
    return rows + [
        txn("L", f"2026-{3 + i:02d}-05 09:00:00", f"-{a}", landlord, "6222020000001111", "房租")
        for i, a in enumerate(amounts)
    ]


def test_rent_paid_every_month_is_a_commitment_not_a_large_outflow():
    # 4,500 is more than twice the 2,000 income, but the same landlord is paid about that every month
    rows = _rent(["4500", "4500", "4600", "4500", "4450"])
    assert flags_of(signals(rows, as_of=AS_OF), "LARGE_OUTFLOW").is_empty()


def test_a_one_off_payment_beside_the_rent_is_still_large():
    rows = _rent(["4500", "4500", "4500", "4500"]) + [txn("L", "2026-07-20 09:00:00", "-9000", "某人", "999", "转账")]
    flags = flags_of(signals(rows, as_of=AS_OF), "LARGE_OUTFLOW")
    assert flags.select("period_start_on", "metric_value").rows() == [(date(2026, 7, 1), 9000.0)]


def test_payments_naming_no_party_are_never_a_commitment():
    # the same 4,500 every month, but with no name and no number nobody says it goes to one landlord
    rows = monthly("L", [1, 2, 3, 4, 5, 6, 7, 8], "2000", day=1) + [
        txn("L", f"2026-{m:02d}-05 09:00:00", "-4500", None, None, "转账") for m in (3, 4, 5)
    ]
    flags = flags_of(signals(rows, as_of=AS_OF), "LARGE_OUTFLOW")
    assert flags["period_start_on"].to_list() == [date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)]


def test_payments_to_one_party_in_two_months_or_far_apart_in_amount_are_not_a_commitment():
    # two months only: both are judged
    twice = flags_of(signals(_rent(["4500", "4500"]), as_of=AS_OF), "LARGE_OUTFLOW")
    assert twice["period_start_on"].to_list() == [date(2026, 3, 1), date(2026, 4, 1)]
    # three months, but 4,500 / 5,100 / 5,800 are more than 10 % apart: none is another's match twice
    apart = flags_of(signals(_rent(["4500", "5100", "5800"]), as_of=AS_OF), "LARGE_OUTFLOW")
    assert apart["period_start_on"].to_list() == [date(2026, 3, 1), date(2026, 4, 1), date(2026, 5, 1)]


def test_a_currency_exchange_is_neutral_not_a_large_outflow_nor_income():
    """购汇 moves the holder's money from CNY to USD within one account: neither spending nor earnings."""
    rows = monthly("X", [1, 2, 3, 4, 5, 6, 7, 8], "12000", day=10)
    rows += [
        txn("X", "2026-07-07 18:14:31", "-87839.21", None, None, "购汇"),
        txn("X", "2026-07-07 18:14:32", "12371.72", None, None, "购汇", currency="USD"),
        txn("X", "2026-07-20 09:00:00", "-30000", "某人", "62220001", "转账"),  # beside it, a real large outflow
    ]
    result = signals(rows, as_of=date(2026, 9, 15))
    exchanged = result["transactions"].filter(pl.col("description") == "购汇").sort("currency")
    assert exchanged.select("currency", "txn_class", "is_clean_income").rows() == [
        ("CNY", "neutral", False),
        ("USD", "neutral", False),
    ]
    assert flags_of(result, "LARGE_OUTFLOW").select("currency", "metric_value").rows() == [("CNY", 30000.0)]
