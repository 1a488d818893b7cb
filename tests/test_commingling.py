"""Commingling on literal rows: business money through a personal account."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl
import pytest

from liushui.config import load_rules
from liushui.contracts import RELATED_PARTIES_REF
from tests.rows import accounts, canonical, txn
from transforms.classify import classified_transactions
from transforms.commingling import COMPANY_PATTERN, commingling_flags, commingling_month_features
from transforms.lenders import classify_lenders, load_lender_registry

RULES = load_rules().commingling  # >= 5 business inflows, >= 30 % of inflow, >= 3 supplier payments
REGISTRY = load_lender_registry()
BUYERS = ["杭州宏远商贸有限公司", "宁波九州贸易有限公司", "温州和光实业有限公司"]
SUPPLIERS = ["义乌润泽五金机电商行", "金华包装材料厂"]


def classified(rows: list[dict], accounts_ref: pl.DataFrame) -> pl.LazyFrame:
    return classified_transactions(
        classify_lenders(canonical(rows).lazy(), REGISTRY), accounts_ref.lazy(), RELATED_PARTIES_REF.empty().lazy()
    )


def trading_month(account: str, *, n_in: int = 6, n_out: int = 3, month: int = 3, currency: str = "CNY") -> list[dict]:
    """`n_in` 货款 receipts of 8,000 from companies and `n_out` supplier payments of 5,000."""
    ins = [
        txn(account, f"2026-{month:02d}-{d + 1:02d} 10:00:00", "8000", BUYERS[d % 3], None, "货款", currency=currency)
        for d in range(n_in)
    ]
    outs = [
        txn(
            account,
            f"2026-{month:02d}-{d + 10:02d} 15:00:00",
            "-5000",
            SUPPLIERS[d % 2],
            None,
            "采购款",
            currency=currency,
        )
        for d in range(n_out)
    ]
    return ins + outs


def run(rows: list[dict], account_type: str | None = "personal") -> tuple[pl.DataFrame, pl.DataFrame]:
    ref = accounts(("A", "C1", "张三", account_type))
    t = classified(rows, ref)
    features = commingling_month_features(t, ref.lazy())
    flags = commingling_flags(t, features, ref.lazy(), rules=RULES)
    return features.sort("month_on").collect(), flags.collect()


def test_personal_account_with_trade_receipts_and_supplier_payments_is_flagged():
    rows = trading_month("A") + [txn("A", "2026-03-25 09:00:00", "6000", "上海某某科技有限公司", None, "代发工资")]
    features, flags = run(rows)
    assert features.rows() == [
        ("A", "CNY", date(2026, 3, 1), 6, Decimal("48000.00"), 3, Decimal("15000.00"), 48000 / 54000)
    ]
    assert flags.height == 1
    flag = flags.row(0, named=True)
    assert flag["flag_code"] == "COMMINGLING"
    assert (flag["period_start_on"], flag["period_end_on"]) == (date(2026, 3, 1), date(2026, 3, 31))
    assert flag["metric_value"] == pytest.approx(48000 / 54000)
    assert flag["threshold"] == 0.30
    assert flag["evidence_txn_ids"] == sorted(f"A-{i}" for i in range(1, 10))  # not the salary
    # top counterparties by money; ties (16,000 each) by name
    assert "主要往来方：宁波九州贸易有限公司、杭州宏远商贸有限公司、温州和光实业有限公司。" in flag["reason_zh"]
    assert "杭州宏远商贸有限公司" in flag["reason_en"]
    assert "business account" in flag["remediation_en"]


def test_only_the_main_currency_is_judged_and_the_flag_names_it():
    # trade in CNY and in USD in one month; CNY has one row more (the salary): the main currency
    rows = (
        trading_month("A")
        + [txn("A", "2026-03-25 09:00:00", "6000", "上海某某科技有限公司", None, "代发工资")]
        + trading_month("A", currency="USD")
    )
    features, flags = run(rows)
    assert sorted(features["currency"]) == ["CNY", "USD"]  # both currencies have their figures
    assert flags.select("currency", "period_start_on", "evidence_txn_ids").rows() == [
        ("CNY", date(2026, 3, 1), sorted(f"A-{i}" for i in range(1, 10))),
    ]


def test_business_account_is_not_judged():
    features, flags = run(trading_month("A"), account_type="business")
    assert features.height == 0
    assert flags.height == 0


def test_unknown_account_type_counts_as_personal():
    _, flags = run(trading_month("A"), account_type=None)
    assert flags.height == 1


def test_salary_loans_and_consumption_from_companies_are_not_business():
    rows = [
        *[txn("A", f"2026-03-{d:02d} 09:00:00", "9000", "上海某某科技有限公司", None, "代发工资") for d in (1, 2, 3)],
        txn("A", "2026-03-04 09:00:00", "20000", "重庆蚂蚁消费金融有限公司", None, "借呗放款"),
        txn("A", "2026-03-05 09:00:00", "1500", "支付宝（中国）网络技术有限公司", None, "余额宝转出"),
        txn("A", "2026-03-06 09:00:00", "2000", "中国平安保险股份有限公司", None, "理赔款"),
        txn("A", "2026-03-07 09:00:00", "-300", "全家便利店", None, "财付通快捷支付"),
        txn("A", "2026-03-08 09:00:00", "-3000", "京东商城", None, "付款"),
    ]
    features, flags = run(rows)
    assert features.select("business_in_count", "business_out_count").row(0) == (0, 0)
    assert flags.height == 0


def test_a_freelance_payment_from_a_company_counts_as_business_inflow():
    rows = [
        txn("A", "2026-03-01 09:00:00", "3000", "宁波九州贸易有限公司", None, "劳务费"),
        txn("A", "2026-03-02 09:00:00", "800", "Acme Trading Co., Ltd", None, "invoice 42"),
    ]
    features, _ = run(rows)
    assert features.select("business_in_count", "business_in").row(0) == (2, Decimal("3800.00"))


@pytest.mark.parametrize(("n_in", "n_out", "flagged"), [(5, 3, True), (4, 3, False), (5, 2, False)])
def test_edges_at_the_count_thresholds(n_in: int, n_out: int, flagged: bool):
    _, flags = run(trading_month("A", n_in=n_in, n_out=n_out))
    assert (flags.height == 1) is flagged


def test_edge_at_the_share_threshold():
    # 5 x 8,000 = 40,000 business in; other income makes the share exactly 30 % -> flagged; just below -> not
    other = Decimal(40000) / Decimal("0.30") - 40000
    rows = trading_month("A", n_in=5) + [txn("A", "2026-03-28 09:00:00", str(round(other, 2)), "李四", None, "转账")]
    features, flags = run(rows)
    assert features["business_in_share"][0] == pytest.approx(0.30, abs=1e-6)
    assert flags.height == 1
    rows[-1]["amount"] += 1
    assert run(rows)[1].height == 0


@pytest.mark.parametrize(
    ("name", "company"),
    [
        ("Acme Trading Co., Ltd", True),
        ("腾讯Ltd", True),  # a Chinese character next to the Latin suffix is a word boundary
        ("Incheon Travel", False),  # "inc" inside a word is not a suffix
        ("Costco Wholesale", False),  # nor is "co" inside one
        ("张三", False),
    ],
)
def test_company_names(name: str, company: bool):
    matched = pl.Series([name]).str.contains(COMPANY_PATTERN)
    assert matched.to_list() == [company]


def test_in_trading_months_the_receipts_are_not_income_and_supplier_payments_not_large_outflows():
    from tests.rows import flags_of, monthly, signals

    # a steady 10,000 salary; from June on the account also trades: 8 receipts of 20,000 and 3 supplier
    # payments of 45,000 a month (each more than 3x the salary)
    rows = monthly("A", list(range(1, 10)), "10000", day=10)
    for month in (6, 7, 8):
        for d in range(8):
            rows.append(txn("A", f"2026-{month:02d}-{d + 1:02d} 10:00:00", "20000", BUYERS[d % 3], None, "货款"))
        for d in range(3):
            rows.append(txn("A", f"2026-{month:02d}-{d + 12:02d} 15:00:00", "-45000", SUPPLIERS[d % 2], None, "采购款"))
    result = signals(rows, as_of=date(2026, 9, 20), accounts_ref=accounts(("A", "C1", "张三", "personal")))
    assert flags_of(result, "COMMINGLING")["period_start_on"].to_list() == [date(2026, m, 1) for m in (6, 7, 8)]
    assert flags_of(result, "INCOME_VOLATILE").is_empty()
    assert flags_of(result, "LARGE_OUTFLOW").is_empty()
    months = result["account_months"].filter(pl.col("month_on").is_between(date(2026, 5, 1), date(2026, 8, 1)))
    assert months.sort("month_on")["clean_income"].to_list() == [Decimal("10000.00")] * 4
    # a month with receipts but no supplier payments is not trading: the receipts are income as before
    lone = monthly("A", list(range(1, 10)), "10000", day=10) + [
        txn("A", f"2026-06-{d + 1:02d} 10:00:00", "20000", BUYERS[d % 3], None, "货款") for d in range(8)
    ]
    june = signals(lone, as_of=date(2026, 9, 20), accounts_ref=accounts(("A", "C1", "张三", "personal")))
    june_income = june["account_months"].filter(pl.col("month_on") == date(2026, 6, 1))["clean_income"]
    assert june_income.to_list() == [Decimal("170000.00")]
