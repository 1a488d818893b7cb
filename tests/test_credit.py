"""Credit features, 以贷养贷 links and credit flags: literal statement lines through the real chain
(lender registry -> classification -> account months -> credit), exact expected outputs."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liushui.config import load_rules
from liushui.contracts import (
    ACCOUNT_MONTHS,
    ACCOUNTS_REF,
    CANONICAL_TRANSACTION,
    RELATED_PARTIES_REF,
    RISK_FLAGS,
    TRANSACTIONS,
    TRANSFER_LINKS,
)
from transforms.classify import classified_transactions
from transforms.credit import borrow_to_repay_links, credit_flags, credit_month_features, multi_lender_flags
from transforms.income import income_volatility
from transforms.lenders import classify_lenders, load_lender_registry
from transforms.months import account_months

RULES = load_rules()
REGISTRY = load_lender_registry()

# lender_id: (counterparty, disbursement memo, repayment memo) — lines as the banks print them
LENDERS = {
    "ant_jiebei": ("重庆蚂蚁消费金融有限公司", "借呗放款", "借呗还款"),
    "webank_weilidai": ("深圳前海微众银行股份有限公司", "微粒贷放款", "微粒贷还款"),
    "jd_jintiao": ("京东科技信息技术有限公司", "京东金条借款", "京东金条还款"),
    "duxiaoman_youqianhua": ("度小满科技（北京）有限公司", "有钱花放款", "有钱花还款"),
    "zhaolian_consumer": ("招联消费金融股份有限公司", "招联好期贷放款", "招联还款"),
    "mashang_consumer": ("马上消费金融股份有限公司", "安逸花放款", "安逸花还款"),
}


def _row(txn_id, at, amount, counterparty, memo, *, acct="A1", balance=None, currency="CNY") -> dict:
    booked_at = datetime.fromisoformat(at)
    return {
        "txn_id": txn_id,
        "account_id": acct,
        "booked_at": booked_at,
        "amount": Decimal(amount),
        "currency": currency,
        "balance_after": None if balance is None else Decimal(balance),
        "counterparty_name": counterparty,
        "description": memo,
    }


def borrow(txn_id, at, amount, lender, **kw) -> dict:
    return _row(txn_id, at, amount, LENDERS[lender][0], LENDERS[lender][1], **kw)


def repay(txn_id, at, amount, lender, **kw) -> dict:
    return _row(txn_id, at, f"-{amount}", LENDERS[lender][0], LENDERS[lender][2], **kw)


def salary(txn_id, at, amount="10000.00", **kw) -> dict:
    return _row(txn_id, at, amount, "上海华信科技有限公司", "代发工资", **kw)


def spend(txn_id, at, amount="100.00", **kw) -> dict:
    return _row(txn_id, at, f"-{amount}", "某某超市", "消费", **kw)


def penalty(txn_id, at, amount, **kw) -> dict:
    return _row(txn_id, at, f"-{amount}", "招联消费金融股份有限公司", "逾期罚息", **kw)


def failed_debit(txn_id, at, amount, **kw) -> dict:
    return _row(txn_id, at, amount, "重庆蚂蚁消费金融有限公司", "冲正 扣款失败 余额不足", **kw)


@dataclass
class Run:
    transactions: pl.DataFrame
    months: pl.DataFrame
    links: pl.DataFrame
    flags: pl.DataFrame

    def month(self, acct: str, month_on: str) -> dict:
        return self.months.filter(
            (pl.col("account_id") == acct) & (pl.col("month_on") == date.fromisoformat(month_on))
        ).row(0, named=True)

    def flagged(self, code: str) -> pl.DataFrame:
        return self.flags.filter(pl.col("flag_code") == code)


def run(rows: list[dict], *, as_of: date = date(2024, 7, 15), rules=RULES) -> Run:
    """Statement lines (source_row = position in the list) through the whole credit chain."""
    canonical = CANONICAL_TRANSACTION.conform(
        pl.DataFrame(rows).with_columns(
            source_file=pl.lit("stmt.csv"), source_row=pl.int_range(1, pl.len() + 1), batch_id=pl.lit("b1")
        )
    )
    transactions = classified_transactions(
        classify_lenders(canonical, REGISTRY), ACCOUNTS_REF.empty().lazy(), RELATED_PARTIES_REF.empty().lazy()
    ).cache()
    links = borrow_to_repay_links(transactions, rules=rules.borrow_to_repay).cache()
    months = (
        account_months(transactions, as_of=as_of, min_covered_days=rules.coverage.min_covered_days_for_full_month)
        .pipe(income_volatility, rules=rules.income_volatility)
        .pipe(lambda m: credit_month_features(transactions, m, rules=rules, borrow_to_repay=links))
        .cache()
    )
    flags = credit_flags(transactions, months, links, rules=rules)
    collected = pl.collect_all(
        [transactions, months.sort("account_id", "currency", "month_on"), links.sort("out_txn_id"), flags]
    )
    return Run(*collected)


def full_months(acct: str, first: str, last: str, **kw) -> list[dict]:
    """A salary on the first day and a small spend on the last day of the coverage: months between are
    fully covered."""
    return [
        salary(f"{acct}-s", f"{first} 08:00", acct=acct, **kw),
        spend(f"{acct}-e", f"{last} 20:00", acct=acct, **kw),
    ]


# ---- month features --------------------------------------------------------------------------------------
def test_lenders_active_counts_distinct_lenders_in_day_windows_ending_at_month_end():
    # June ends 2024-06-30: its 30-day window starts 06-01, 90-day 04-02, 180-day 01-03.
    rows = full_months("A1", "2024-01-01", "2024-06-30") + [
        repay("m", "2024-01-02 10:00", "100.00", "mashang_consumer"),  # day 181: outside every window
        repay("z", "2024-01-03 10:00", "100.00", "zhaolian_consumer"),  # day 180
        repay("w", "2024-04-01 10:00", "100.00", "webank_weilidai"),  # day 91
        repay("j", "2024-04-02 10:00", "100.00", "ant_jiebei"),  # day 90
        repay("y", "2024-05-31 10:00", "100.00", "duxiaoman_youqianhua"),  # day 31
        repay("t", "2024-06-01 10:00", "100.00", "jd_jintiao"),  # day 30
        repay("j2", "2024-06-10 10:00", "100.00", "ant_jiebei"),  # a lender seen again is still one
        _row("pf", "2024-06-12 10:00", "-15.00", "某某物业服务有限公司", "物业费滞纳金"),  # penalty, no lender
    ]
    got = run(rows).months.select(
        "month_on", "lenders_active_30d", "lenders_active_90d", "lenders_active_180d", "new_lenders"
    )
    assert got.rows() == [
        (date(2024, 1, 1), 2, 2, 2, 2),
        (date(2024, 2, 1), 0, 2, 2, 0),
        (date(2024, 3, 1), 0, 2, 2, 0),
        (date(2024, 4, 1), 2, 2, 4, 2),
        (date(2024, 5, 1), 1, 3, 5, 1),
        (date(2024, 6, 1), 2, 3, 5, 1),
    ]


def test_loan_event_counts_amounts_and_share_of_inflow():
    rows = full_months("A1", "2024-01-01", "2024-02-29") + [
        borrow("d1", "2024-01-05 10:00", "5000.00", "ant_jiebei"),
        borrow("d2", "2024-01-06 10:00", "3000.00", "webank_weilidai"),
        penalty("p1", "2024-01-09 10:00", "12.40"),
        _row("p2", "2024-01-10 10:00", "-15.00", "某某物业服务有限公司", "物业费滞纳金"),
        failed_debit("f1", "2024-01-11 10:00", "450.00"),
    ]
    got = run(rows)
    jan, feb = got.month("A1", "2024-01-01"), got.month("A1", "2024-02-01")
    assert {k: jan[k] for k in ("disbursement_count", "penalty_count", "penalty_amount", "failed_debit_count")} == {
        "disbursement_count": 2,
        "penalty_count": 2,
        "penalty_amount": Decimal("27.40"),
        "failed_debit_count": 1,
    }
    assert jan["loan_share_of_inflow"] == pytest.approx(8000 / 18450)
    # no inflow: no share; no events: zeros, not nulls
    assert (feb["loan_share_of_inflow"], feb["disbursement_count"], feb["penalty_amount"]) == (None, 0, Decimal("0"))
    assert got.months.schema["penalty_amount"] == pl.Decimal(18, 2)
    assert all(got.months.schema[c] == pl.Int64 for c in ("lenders_active_90d", "new_lenders", "penalty_count"))


def test_month_features_recompute_on_a_frame_already_in_the_contract_shape():
    rows = full_months("A1", "2024-01-01", "2024-01-31") + [penalty("p1", "2024-01-09 10:00", "12.40")]
    got = run(rows)
    # as published: every contract column present, the credit ones included
    conformed = ACCOUNT_MONTHS.conform(
        got.months.with_columns(
            large_outflow_count=pl.lit(0),
            large_outflow_sum=pl.lit(0).cast(pl.Decimal(18, 2)),
            business_in_count=pl.lit(0),
            business_in=pl.lit(0).cast(pl.Decimal(18, 2)),
            business_out_count=pl.lit(0),
            business_out=pl.lit(0).cast(pl.Decimal(18, 2)),
            balance_breaks=pl.lit(0),
            negative_balance_days=pl.lit(0),
            low_balance_days=pl.lit(0),
        )
    )
    again = credit_month_features(got.transactions.lazy(), conformed, rules=RULES).collect()
    assert ACCOUNT_MONTHS.conform(again).collect().equals(conformed.collect())
    assert again["penalty_count"].to_list() == [1]


def _debt_burden_rows() -> list[dict]:
    # Coverage from 01-15 (January partial) to June (the as-of month, partial); Feb-May are full.
    rows = [salary("s1", "2024-01-15 08:00"), repay("r1", "2024-01-20 10:00", "9000.00", "ant_jiebei")]
    for month, repaid in (("02", "4000.00"), ("03", "5000.00"), ("04", "6000.00"), ("05", "5500.00")):
        rows += [
            salary(f"s{month}", f"2024-{month}-01 08:00"),
            repay(f"r{month}", f"2024-{month}-10 10:00", repaid, "ant_jiebei"),
        ]
    rows += [repay("r06", "2024-06-10 10:00", "9000.00", "ant_jiebei")]
    # A2 earns less than min_clean_income a month: its ratio is not meaningful
    rows += [
        salary("x1", "2024-02-01 08:00", "900.00", acct="A2"),
        salary("x2", "2024-03-01 08:00", "900.00", acct="A2"),
        repay("x3", "2024-03-31 10:00", "899.00", "ant_jiebei", acct="A2"),
    ]
    return rows


def test_debt_burden_trailing_sums_full_months_only():
    got = run(_debt_burden_rows(), as_of=date(2024, 6, 20))
    a1 = got.months.filter(pl.col("account_id") == "A1")
    assert a1.select("month_on", "is_full_month", "debt_burden_trailing").rows() == [
        (date(2024, 1, 1), False, None),  # partial first month: not judged, not in any window
        (date(2024, 2, 1), True, 0.4),  # Feb only
        (date(2024, 3, 1), True, 0.45),  # 9000 / 20000
        (date(2024, 4, 1), True, 0.5),  # 15000 / 30000
        (date(2024, 5, 1), True, 0.55),  # Mar-May: 16500 / 30000
        (date(2024, 6, 1), False, None),  # as-of month: partial
    ]
    assert got.month("A2", "2024-02-01")["debt_burden_trailing"] is None  # 900 < 1000 a month


# ---- 以贷养贷 links ---------------------------------------------------------------------------------------
def links_of(rows: list[dict]) -> list[tuple]:
    return run(rows).links.select("out_txn_id", "in_txn_id", "days_apart").rows()


def test_borrow_to_repay_link_has_the_contract_columns_and_a_stable_id():
    rows = [
        borrow("d1", "2024-01-05 10:00", "5000.00", "ant_jiebei"),
        repay("r1", "2024-01-08 09:00", "4800.00", "webank_weilidai"),
    ]
    got = run(rows).links
    assert got.schema == TRANSFER_LINKS.polars_schema
    assert got.rows(named=True) == [
        {
            "link_id": hashlib.sha256(b"borrow_to_repay|d1|r1").hexdigest()[:32],
            "link_type": "borrow_to_repay",
            "account_id": "A1",
            "out_txn_id": "d1",
            "in_txn_id": "r1",
            "amount_out": Decimal("5000.00"),
            "amount_in": Decimal("4800.00"),
            "days_apart": 3,
            "counterparty": "ant_jiebei→webank_weilidai",
            "chain_id": None,
            "chain_length": None,
            "evidence_txn_ids": ["d1", "r1"],
        }
    ]


def test_borrow_to_repay_window_is_max_days_inclusive():
    rows = [
        borrow("d7", "2024-01-01 10:00", "5000.00", "ant_jiebei"),
        repay("r7", "2024-01-08 23:00", "5000.00", "webank_weilidai"),  # 7 days: linked
        borrow("d8", "2024-02-01 10:00", "5000.00", "ant_jiebei"),
        repay("r8", "2024-02-09 08:00", "5000.00", "webank_weilidai"),
    ]  # 8 days: not
    assert links_of(rows) == [("d7", "r7", 7)]


def test_repaying_the_same_lender_is_not_borrow_to_repay():
    rows = [
        borrow("d1", "2024-01-05 10:00", "5000.00", "ant_jiebei"),
        repay("r1", "2024-01-06 10:00", "5000.00", "ant_jiebei"),
    ]
    assert links_of(rows) == []


def test_borrow_to_repay_needs_a_comparable_amount_and_a_minimum_disbursement():
    rows = [
        borrow("d1", "2024-01-01 10:00", "5000.00", "ant_jiebei"),
        repay("r1", "2024-01-02 10:00", "6000.00", "webank_weilidai"),  # exactly +20 %: linked
        borrow("d2", "2024-03-01 10:00", "5000.00", "ant_jiebei"),
        repay("r2", "2024-03-02 10:00", "3999.99", "webank_weilidai"),  # just beyond -20 %
        borrow("d3", "2024-05-01 10:00", "999.99", "ant_jiebei"),  # below min_amount
        repay("r3", "2024-05-02 10:00", "999.99", "webank_weilidai"),
        borrow("d4", "2024-06-01 10:00", "1000.00", "ant_jiebei"),  # exactly min_amount
        repay("r4", "2024-06-02 10:00", "1000.00", "webank_weilidai"),
    ]
    assert links_of(rows) == [("d1", "r1", 1), ("d4", "r4", 1)]


def test_borrow_to_repay_needs_the_repayment_after_the_disbursement():
    rows = [
        repay("r0", "2024-01-04 10:00", "5000.00", "webank_weilidai"),  # before: not funded by it
        borrow("d1", "2024-01-05 00:00", "5000.00", "ant_jiebei"),
        repay("r1", "2024-01-05 00:00", "5000.00", "jd_jintiao"),  # same stamp: order unknown
        borrow("d2", "2024-02-05 09:00", "5000.00", "ant_jiebei"),
        repay("r2", "2024-02-05 15:00", "5000.00", "jd_jintiao"),
    ]  # same day, later: linked
    assert links_of(rows) == [("d2", "r2", 0)]


def test_borrow_to_repay_uses_each_repayment_once_for_the_earliest_disbursement():
    rows = [
        borrow("d1", "2024-01-01 10:00", "5000.00", "ant_jiebei"),
        borrow("d2", "2024-01-02 10:00", "5000.00", "zhaolian_consumer"),
        repay("r1", "2024-01-03 10:00", "5000.00", "webank_weilidai"),
    ]
    assert links_of(rows) == [("d1", "r1", 2)]


def _classified(rows: list[tuple]) -> pl.DataFrame:
    """Classified transactions built directly (fast, for property tests): (txn_id, day, class, lender, amount)."""
    frame = pl.DataFrame(
        {
            "txn_id": [r[0] for r in rows],
            "account_id": [r[1] for r in rows],
            "booked_at": [datetime(2024, 1, 1 + r[2], 10 + i % 10) for i, r in enumerate(rows)],
            "amount": [Decimal(r[5]) * (1 if r[3] == "loan_disbursement" else -1) for r in rows],
            "currency": "CNY",
            "source_file": "f.csv",
            "source_row": list(range(1, len(rows) + 1)),
            "batch_id": "b",
            "customer_id": [r[1] for r in rows],
            "txn_class": [r[3] for r in rows],
            "lender_id": [r[4] for r in rows],
            "is_clean_income": False,
        },
        schema_overrides={
            name: TRANSACTIONS.polars_schema[name]
            for name in (
                "txn_id",
                "account_id",
                "booked_at",
                "amount",
                "source_row",
                "customer_id",
                "txn_class",
                "lender_id",
            )
        },
    ).with_columns(booked_on=pl.col("booked_at").dt.date())
    return TRANSACTIONS.conform(frame).collect()


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["A1", "A2"]),
            st.integers(0, 20),
            st.sampled_from(["loan_disbursement", "loan_repayment"]),
            st.sampled_from(["ant_jiebei", "webank_weilidai", "jd_jintiao"]),
            st.sampled_from(["1000.00", "1100.00", "5000.00", "900.00"]),
        ),
        max_size=30,
    )
)
def test_borrow_to_repay_links_never_reuse_a_transaction_and_name_real_ones(lines):
    transactions = _classified([(f"t{i}", *line) for i, line in enumerate(lines)])
    links = borrow_to_repay_links(transactions.lazy(), rules=RULES.borrow_to_repay).collect()
    assert links["out_txn_id"].is_unique().all() and links["in_txn_id"].is_unique().all()
    assert not set(links["out_txn_id"]) & set(links["in_txn_id"])
    by_id = {r["txn_id"]: r for r in transactions.iter_rows(named=True)}
    for link in links.iter_rows(named=True):
        out, back = by_id[link["out_txn_id"]], by_id[link["in_txn_id"]]
        assert (out["txn_class"], back["txn_class"]) == ("loan_disbursement", "loan_repayment")
        assert out["account_id"] == back["account_id"] == link["account_id"]
        assert out["lender_id"] != back["lender_id"]
        assert 0 <= link["days_apart"] <= RULES.borrow_to_repay.max_days
        assert sorted(link["evidence_txn_ids"]) == sorted([out["txn_id"], back["txn_id"]])


# ---- flags ------------------------------------------------------------------------------------------------
def _repayments(acct: str, lenders: list[str]) -> list[dict]:
    return [
        repay(f"{acct}-{lender}", f"2024-06-{5 + i:02d} 10:00", "100.00", lender, acct=acct)
        for i, lender in enumerate(lenders)
    ]


def test_multi_lender_flags_more_than_max_lenders_in_90_days_and_names_them():
    four = ["ant_jiebei", "webank_weilidai", "jd_jintiao", "zhaolian_consumer"]
    rows = (
        full_months("A3", "2024-06-01", "2024-06-30")
        + _repayments("A3", four[:3])  # exactly 3
        + full_months("A4", "2024-06-01", "2024-06-30")
        + _repayments("A4", four)
        + full_months("A6", "2024-06-01", "2024-06-30")
        + _repayments("A6", list(LENDERS))
    )
    flags = run(rows).flagged("MULTI_LENDER")
    assert flags.select("account_id", "metric_value", "threshold", "severity").rows() == [
        ("A4", 4.0, 3.0, "medium"),
        ("A6", 6.0, 3.0, "high"),
    ]
    a4 = flags.row(0, named=True)
    assert (a4["period_start_on"], a4["period_end_on"]) == (date(2024, 6, 1), date(2024, 6, 30))  # clipped to coverage
    assert a4["limit_name"] == "distinct_lenders_90d"
    assert a4["evidence_txn_ids"] == sorted(f"A4-{lender}" for lender in four)
    # lenders by their registry names, never by their ids
    assert a4["reason_zh"] == (
        "截至2024-06-30的近90天内有4家贷款机构发生借贷往来（京东金条、借呗、微粒贷、招联消费金融），超过阈值3家。"
    )
    assert a4["reason_en"] == (
        "4 distinct lenders had loan activity in the 90 days to 2024-06-30 (Ant Jiebei, "
        "JD Jintiao, WeBank Weilidai, Zhaolian Consumer Finance); the limit is 3."
    )
    assert a4["remediation_zh"].startswith("把借款集中到一到两家机构")
    assert flags.schema == RISK_FLAGS.polars_schema


def test_a_lender_without_a_name_in_the_registry_is_named_by_its_id():
    """Edge: the names come from the run's registry; a lender it does not name keeps its id in the reason."""
    four = ["ant_jiebei", "webank_weilidai", "jd_jintiao", "zhaolian_consumer"]
    rows = full_months("A4", "2024-06-01", "2024-06-30") + _repayments("A4", four)
    result = run(rows)
    only_jiebei = pl.LazyFrame({"lender_id": ["ant_jiebei"], "name_zh": ["借呗"], "name_en": ["Ant Jiebei"]})
    flags = multi_lender_flags(
        result.transactions.lazy(), result.months.lazy(), rules=RULES.multi_lender, lender_names=only_jiebei
    ).collect()
    assert flags["reason_en"].to_list() == [
        "4 distinct lenders had loan activity in the 90 days to 2024-06-30 (Ant Jiebei, jd_jintiao, "
        "webank_weilidai, zhaolian_consumer); the limit is 3."
    ]


def test_borrowing_frequent_flags_more_than_max_disbursements_in_a_month():
    rows = (
        full_months("A1", "2024-06-01", "2024-06-30")
        + [borrow(f"A1-d{i}", f"2024-06-1{i} 10:00", "500.00", "ant_jiebei", acct="A1") for i in range(4)]
        + full_months("A2", "2024-06-01", "2024-06-30")
        + [borrow(f"A2-d{i}", f"2024-06-1{i} 10:00", "500.00", "ant_jiebei", acct="A2") for i in range(3)]
    )
    got = run(rows)
    flags = got.flagged("BORROWING_FREQUENT")
    assert flags.select("account_id", "metric_value", "threshold", "severity", "evidence_txn_ids").rows() == [
        ("A1", 4.0, 3.0, "medium", ["A1-d0", "A1-d1", "A1-d2", "A1-d3"]),
    ]
    assert flags["reason_zh"][0] == "本月收到4笔贷款放款，共2000.00，超过每月3笔的阈值。"
    assert got.flagged("CASH_LOAN_RELIANCE").is_empty()  # 2000 of 12000 inflow


def test_credit_rules_judge_the_main_currency_only_and_name_it():
    # four disbursements in CNY and in USD in June; CNY has more rows (the salary and spend): it is the
    # main currency, and the only one judged, so one flag, in CNY
    rows = (
        full_months("A1", "2024-06-01", "2024-06-30")
        + [borrow(f"A1-d{i}", f"2024-06-1{i} 10:00", "500.00", "ant_jiebei", acct="A1") for i in range(4)]
        + [
            borrow(f"A1-u{i}", f"2024-06-2{i} 10:00", "500.00", "ant_jiebei", acct="A1", currency="USD")
            for i in range(4)
        ]
    )
    flags = run(rows).flagged("BORROWING_FREQUENT")
    assert flags.select("account_id", "currency", "period_start_on", "evidence_txn_ids").rows() == [
        ("A1", "CNY", date(2024, 6, 1), ["A1-d0", "A1-d1", "A1-d2", "A1-d3"]),
    ]


def _three_salaries(acct: str, amount: str, **kw) -> list[dict]:
    return [salary(f"{acct}-s{m}", f"2024-0{m}-01 08:00", amount, acct=acct, **kw) for m in (4, 5, 6)] + [
        spend(f"{acct}-e", "2024-06-30 20:00", acct=acct, **kw)
    ]


def test_cash_loan_reliance_judges_a_whole_trailing_window_of_full_months():
    rows = (
        # 13000 of 43000 over April..June: 30.2 %
        _three_salaries("A1", "10000.00")
        + [borrow("A1-d", "2024-06-05 10:00", "13000.00", "ant_jiebei", acct="A1")]
        # exactly 30 %: 9000 of 30000
        + _three_salaries("A2", "7000.00")
        + [borrow("A2-d", "2024-06-05 10:00", "9000.00", "ant_jiebei", acct="A2")]
        # only two full months (May, June) in the window: not judged, although 10000 of 30000 is 33 %
        + [
            salary("A3-s5", "2024-05-01 08:00", "10000.00", acct="A3"),
            salary("A3-s6", "2024-06-01 08:00", "10000.00", acct="A3"),
            spend("A3-e", "2024-06-30 20:00", acct="A3"),
            borrow("A3-d", "2024-06-05 10:00", "10000.00", "ant_jiebei", acct="A3"),
        ]
        # 40 % of inflow but less than min_disbursed
        + _three_salaries("A4", "500.00")
        + [borrow("A4-d", "2024-06-05 10:00", "999.00", "ant_jiebei", acct="A4")]
        # the as-of month is partial: not judged
        + _three_salaries("A5", "5000.00")
        + [borrow("A5-d", "2024-07-02 10:00", "9000.00", "ant_jiebei", acct="A5")]
        # a USD loan of a CNY account: not its main currency
        + _three_salaries("A6", "5000.00")
        + [borrow("A6-d", "2024-06-05 10:00", "9000.00", "ant_jiebei", acct="A6", currency="USD")]
    )
    flags = run(rows).flagged("CASH_LOAN_RELIANCE")
    assert flags.select(
        "account_id", "period_start_on", "metric_value", "threshold", "limit_name", "evidence_txn_ids"
    ).rows() == [
        ("A1", date(2024, 4, 1), pytest.approx(13000 / 43000), 0.3, "loan_share_of_inflow_3m", ["A1-d"]),
    ]
    assert flags["reason_en"][0] == (
        "Over the last 3 months loan disbursements of 13000.00 were 30.2% of all inflow (43000.00); the limit is 30%."
    )


def test_borrow_to_repay_flags_the_month_of_the_repayment():
    rows = (
        [
            borrow("A1-d", "2024-05-29 10:00", "5000.00", "ant_jiebei", acct="A1"),
            repay("A1-r", "2024-06-02 10:00", "5000.00", "webank_weilidai", acct="A1"),
        ]
        + [
            borrow("A2-d1", "2024-06-01 10:00", "3000.00", "ant_jiebei", acct="A2"),
            repay("A2-r1", "2024-06-03 10:00", "3000.00", "jd_jintiao", acct="A2"),
            borrow("A2-d2", "2024-06-10 10:00", "2000.00", "zhaolian_consumer", acct="A2"),
            repay("A2-r2", "2024-06-11 10:00", "2100.00", "webank_weilidai", acct="A2"),
        ]
        + [
            borrow("A3-d", "2024-06-01 10:00", "3000.00", "ant_jiebei", acct="A3"),
            repay("A3-r", "2024-06-03 10:00", "3000.00", "ant_jiebei", acct="A3"),
        ]
    )
    flags = run(rows).flagged("BORROW_TO_REPAY")
    assert flags.select("account_id", "period_start_on", "metric_value", "severity", "evidence_txn_ids").rows() == [
        ("A1", date(2024, 6, 1), 1.0, "medium", ["A1-d", "A1-r"]),
        ("A2", date(2024, 6, 1), 2.0, "high", ["A2-d1", "A2-d2", "A2-r1", "A2-r2"]),
    ]
    assert flags["reason_zh"][0] == "本月1笔还款（共5000.00）来自7天内另一家机构的新借款（借呗→微粒贷），疑似以贷养贷。"
    assert flags["reason_en"][0] == (
        "1 repayment(s) this month (5000.00 in total) were funded by another lender's loan disbursed within 7 days "
        "(Ant Jiebei→WeBank Weilidai): borrowing to repay."
    )


def test_overdue_penalty_counts_penalties_failed_debits_and_collection_not_a_negative_balance():
    rows = (
        full_months("A1", "2024-06-01", "2024-06-30")
        + [penalty("A1-p", "2024-06-09 10:00", "12.40", acct="A1")]
        + full_months("A2", "2024-06-01", "2024-06-30")
        + [spend("A2-n", "2024-06-11 10:00", "300.00", acct="A2", balance="-20.00")]  # overdrawn, not overdue
        + full_months("A3", "2024-06-01", "2024-06-30")
        + [
            penalty("A3-p", "2024-06-09 10:00", "50.00", acct="A3"),
            failed_debit("A3-f", "2024-06-10 10:00", "450.00", acct="A3"),
            _row("A3-c", "2024-06-11 10:00", "-800.00", "某某资产管理有限公司", "委外催收还款", acct="A3"),
            spend("A3-n", "2024-06-12 10:00", "300.00", acct="A3", balance="-20.00"),
        ]
    )
    flags = run(rows).flagged("OVERDUE_PENALTY")
    assert flags.select("account_id", "metric_value", "threshold", "severity", "evidence_txn_ids").rows() == [
        ("A1", 1.0, 1.0, "medium", ["A1-p"]),  # exactly min_events: flagged (at least)
        ("A3", 3.0, 1.0, "high", ["A3-c", "A3-f", "A3-p"]),
    ]
    assert flags["reason_zh"][1] == "本月3次逾期迹象（阈值1次）：罚息/滞纳金1笔共50.00，扣款失败1笔，催收1笔。"
    assert flags["rule_version"][0] == "2.0"


@pytest.mark.parametrize(
    ("amount", "counterparty", "memo"),
    [
        ("-35.00", "招商银行信用卡中心", "信用卡违约金"),
        ("-12.00", "中国工商银行", "贷款罚息"),
        ("-8.00", "逾期罚息", None),  # the counterparty cell holds the posting's name
        ("-20.00", "某某物业服务有限公司", "物业费滞纳金"),
        ("-25.00", "HSBC", "LATE PAYMENT FEE"),
        ("-25.00", "HSBC", "Penalty interest"),
        ("0.00", "重庆蚂蚁消费金融有限公司", "借呗自动还款失败"),
        ("-1000.00", "某某银行", "批量代扣 扣款失败 余额不足"),
        ("3000.00", "某某公司", "支票退票"),
        ("-30.00", "ACME BANK", "NSF FEE"),
        ("-45.00", "ACME BANK", "RETURNED ITEM CHARGE"),
        ("-500.00", "某某信息咨询有限公司", "催收款"),
        ("-500.00", "ABC DEBT COLLECTION LTD", "payment"),
    ],
)
def test_overdue_evidence_in_memo_or_counterparty_chinese_or_english(amount, counterparty, memo):
    rows = full_months("A1", "2024-06-01", "2024-06-30") + [_row("x", "2024-06-10 10:00", amount, counterparty, memo)]
    got = run(rows)
    assert got.flagged("OVERDUE_PENALTY")["evidence_txn_ids"].to_list() == [["x"]]


@pytest.mark.parametrize(
    ("amount", "counterparty", "memo"),
    [
        ("-5000.00", "招联消费金融股份有限公司", "招联提前还款"),  # prepaying without a penalty
        ("-120.00", "中国建设银行", "提前还款违约金"),  # a prepayment fee: paying early, not late
        ("-80.00", "中国银行", "提前结清违约金"),
        ("-3000.00", "京东科技信息技术有限公司", "京东金条还款 免罚息"),
        ("12.40", "招联消费金融股份有限公司", "罚息减免"),  # a waiver, money in
        ("-100.00", "某某银行", "penalty-free instalment"),
        ("-25.00", "HSBC", "LATE FEE WAIVED"),
        ("200.00", "财付通", "微信红包逾期未领取退回"),
        ("450.00", "中国铁路12306", "火车票退票"),
        ("-20.00", "中国铁路12306", "退票费"),
        ("-300.00", "某某公司", "RETURNED GOODS"),  # a bare RETURNED is no failed debit
        ("5000.00", "某某商户", "POS COLLECTION"),
        ("-12.40", "招联消费金融股份有限公司", "罚息冲正"),  # a reversal undoes a penalty
    ],
)
def test_rows_naming_a_penalty_without_a_missed_payment_are_not_overdue(amount, counterparty, memo):
    rows = full_months("A1", "2024-06-01", "2024-06-30") + [_row("x", "2024-06-10 10:00", amount, counterparty, memo)]
    got = run(rows)
    assert got.flagged("OVERDUE_PENALTY").is_empty()
    assert got.month("A1", "2024-06-01")["penalty_count"] == 0


def test_debt_burden_flags_above_the_ratio_over_full_months_only():
    flags = run(_debt_burden_rows(), as_of=date(2024, 6, 20)).flagged("DEBT_BURDEN_HIGH")
    # April is exactly 50 % (not above), June is partial: only May
    assert flags.select(
        "account_id", "period_start_on", "period_end_on", "metric_value", "severity", "limit_name", "evidence_txn_ids"
    ).rows() == [
        (
            "A1",
            date(2024, 3, 1),
            date(2024, 5, 31),
            pytest.approx(0.55),
            "medium",
            "debt_service_ratio_3m",
            ["r03", "r04", "r05"],
        ),
    ]
    assert flags["reason_zh"][0] == (
        "近3个完整月以收入偿还的贷款（借新还旧除外）16500.00，占净收入30000.00的55.0%，超过阈值50%。"
    )
    assert flags["remediation_en"][0].startswith("Bring loan repayments below 50% of clean income")


def test_debt_burden_high_severity():
    rows = [
        salary("s", "2024-02-01 08:00"),
        repay("r", "2024-02-20 10:00", "8500.00", "ant_jiebei"),
        spend("e", "2024-02-29 20:00"),
    ]
    flags = run(rows, as_of=date(2024, 3, 10)).flagged("DEBT_BURDEN_HIGH")
    assert flags.select("period_start_on", "metric_value", "severity").rows() == [
        (date(2024, 2, 1), pytest.approx(0.85), "high"),
    ]


def test_a_repayment_a_new_loan_paid_for_is_borrow_to_repay_not_debt_service_out_of_income():
    # salary 8,000 a month; a 14,200 loan in February is repaid in April with a new 14,200 loan from another
    # lender (以贷养贷); a 3,000 installment is paid from income every month
    rows = [salary(f"s{m}", f"2024-{m:02d}-05 09:00", "8000.00") for m in range(1, 8)]
    rows += [repay(f"i{m}", f"2024-{m:02d}-20 09:00", "3000.00", "jd_jintiao") for m in range(1, 8)]
    rows += [
        borrow("d1", "2024-02-10 10:00", "14200.00", "ant_jiebei"),
        borrow("d2", "2024-04-08 10:00", "14200.00", "webank_weilidai"),
        repay("r1", "2024-04-09 10:00", "14608.82", "ant_jiebei"),
    ]
    got = run(rows, as_of=date(2024, 7, 15))
    assert got.links.select("out_txn_id", "in_txn_id").rows() == [("d2", "r1")]
    assert got.flagged("BORROW_TO_REPAY")["period_start_on"].to_list() == [date(2024, 4, 1)]
    # April's trailing window (Feb-Apr): 3 x 3,000 serviced out of 3 x 8,000 = 0.375; the refinanced 14,608.82
    # is published in loan_repaid but is not debt service
    april = got.month("A1", "2024-04-01")
    assert (april["loan_repaid"], april["debt_burden_trailing"]) == (Decimal("17608.82"), 0.375)
    assert got.flagged("DEBT_BURDEN_HIGH").is_empty()
    # installments of 4,500 (56 % of income) are a high debt burden whatever else happens
    heavy = [r for r in rows if not r["txn_id"].startswith("i")]
    heavy += [repay(f"i{m}", f"2024-{m:02d}-20 09:00", "4500.00", "jd_jintiao") for m in range(1, 8)]
    assert run(heavy, as_of=date(2024, 7, 15)).flagged("DEBT_BURDEN_HIGH").height > 0
