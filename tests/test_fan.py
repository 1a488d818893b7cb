"""Fan-in and fan-out on literal rows: many parties into one personal account, or one account to many."""

from __future__ import annotations

import polars as pl

from liushui.config import load_rules
from liushui.contracts import FX_RATES_REF, RELATED_PARTIES_REF
from tests.rows import accounts, canonical, txn
from transforms.classify import classified_transactions
from transforms.counterparty import resolved_counterparties
from transforms.fan import MERCHANT_PATTERN, fan_in_flags, fan_out_flags
from transforms.lenders import classify_lenders, load_lender_registry

RULES = load_rules()  # >= 5 parties in 3 days, >= 500 each; high at 10 parties or >= 50 % onward / funded in 3 days
REGISTRY = load_lender_registry()
PEOPLE = ["李四", "王五", "赵六", "钱七", "孙八", "周九", "吴十", "郑一", "冯二", "陈三"]
REF = accounts(("X", "CX", "张三", "personal"), ("SHOP", "CS", "某某商贸", "business"))


def classified(rows: list[dict], ref: pl.DataFrame = REF) -> pl.LazyFrame:
    t = classified_transactions(
        classify_lenders(canonical(rows).lazy(), REGISTRY), ref.lazy(), RELATED_PARTIES_REF.empty().lazy()
    ).collect()
    return resolved_counterparties(t.lazy(), ref.lazy(), FX_RATES_REF.empty().lazy()).collect().lazy()


def gathered(account: str, senders: list[str], *, amount: int = 3_000, day: int = 2) -> list[dict]:
    """One inflow from each sender, an hour apart, on 2026-03-<day>."""
    return [
        txn(account, f"2026-03-{day:02d} {9 + i:02d}:00:00", str(amount), name, f"6217000000{i:06d}", "转账")
        for i, name in enumerate(senders)
    ]


def scattered(account: str, receivers: list[str], *, amount: int = 3_000, day: int = 2, memo: str = "转账"):
    return [
        txn(account, f"2026-03-{day:02d} {9 + i:02d}:00:00", str(-amount), name, f"6228000000{i:06d}", memo)
        for i, name in enumerate(receivers)
    ]


def fan_in(rows: list[dict], ref: pl.DataFrame = REF) -> pl.DataFrame:
    return fan_in_flags(classified(rows, ref), ref.lazy(), rules=RULES.fan_in).collect()


def fan_out(rows: list[dict], ref: pl.DataFrame = REF) -> pl.DataFrame:
    return fan_out_flags(classified(rows, ref), ref.lazy(), rules=RULES.fan_out).collect()


def test_five_senders_in_a_day_passed_on_is_fan_in_with_every_row_as_evidence():
    rows = gathered("X", PEOPLE[:5]) + [txn("X", "2026-03-03 10:00:00", "-14000", "某人", "6200111", "转账")]
    flags = fan_in(rows)
    assert flags.select("account_id", "flag_code", "metric_value", "threshold", "severity").rows() == [
        ("X", "FAN_IN", 5.0, 5.0, "high")  # 93.3 % of it moved on
    ]
    assert flags["evidence_txn_ids"][0].to_list() == sorted(f"X-{i}" for i in range(1, 7))
    assert flags["reason_en"][0] == (
        "Within 3 days (2026-03-02 to 2026-03-02) 5 distinct senders paid in 15000.00; 93.3% of it left within "
        "3 days: money gathered from many parties and passed on."
    )


def test_four_senders_is_the_edge_below_the_threshold():
    rows = gathered("X", PEOPLE[:4]) + [txn("X", "2026-03-03 10:00:00", "-12000", "某人", "6200111", "转账")]
    assert fan_in(rows).height == 0


def test_gathered_money_that_stays_is_fan_in_of_medium_severity_unless_onward_money_is_required():
    flags = fan_in(gathered("X", PEOPLE[:6]))
    assert flags.select("metric_value", "severity").rows() == [(6.0, "medium")]
    assert (
        flags["reason_zh"][0]
        == "2026-03-02至2026-03-02的3天内有6名不同转款人转入共18000.00（0.0%在3天内转出）：资金从多方集中到本账户。"
    )
    required = RULES.fan_in.model_copy(update={"min_onward_share": 0.5})
    assert fan_in_flags(classified(gathered("X", PEOPLE[:6])), REF.lazy(), rules=required).collect().height == 0


def test_inflows_below_min_amount_do_not_count_as_senders():
    rows = gathered("X", PEOPLE[:4], amount=500) + gathered("X", PEOPLE[4:5], amount=499, day=3)
    assert fan_in(rows).height == 0
    assert fan_in(gathered("X", PEOPLE[:5], amount=500))["metric_value"].to_list() == [5.0]


def test_senders_spread_over_more_than_the_window_are_not_fan_in():
    rows = gathered("X", PEOPLE[:3], day=2) + gathered("X", PEOPLE[3:6], day=9)
    rows += [txn("X", "2026-03-10 10:00:00", "-18000", "某人", "6200111", "转账")]
    assert fan_in(rows).height == 0


def test_a_business_account_paid_by_many_customers_is_not_fan_in():
    rows = gathered("SHOP", PEOPLE[:8]) + [txn("SHOP", "2026-03-03 10:00:00", "-20000", "供应商", "6200111", "货款")]
    assert fan_in(rows).height == 0


def test_refunds_from_many_merchants_are_not_fan_in():
    shops = ["美团外卖", "京东商城", "某某超市", "上海某某有限公司", "星巴克门店"]
    rows = gathered("X", shops) + [txn("X", "2026-03-03 10:00:00", "-14000", "某人", "6200111", "转账")]
    assert fan_in(rows).height == 0


def test_ten_senders_is_high():
    rows = gathered("X", PEOPLE) + [txn("X", "2026-03-03 10:00:00", "-29000", "某人", "6200111", "转账")]
    assert fan_in(rows)["severity"].to_list() == ["high"]


def test_funded_payments_to_five_receivers_is_fan_out():
    rows = [txn("X", "2026-03-01 09:00:00", "15000", "某人", "6200111", "转账")] + scattered("X", PEOPLE[:5])
    flags = fan_out(rows)
    assert flags.select("account_id", "flag_code", "metric_value", "severity").rows() == [("X", "FAN_OUT", 5.0, "high")]
    assert flags["evidence_txn_ids"][0].len() == 6


def test_payments_from_savings_are_fan_out_of_medium_severity_unless_funding_is_required():
    assert fan_out(scattered("X", PEOPLE[:6])).select("metric_value", "severity").rows() == [(6.0, "medium")]
    required = RULES.fan_out.model_copy(update={"min_funded_share": 0.5})
    assert fan_out_flags(classified(scattered("X", PEOPLE[:6])), REF.lazy(), rules=required).collect().height == 0


def test_payroll_day_is_not_fan_out():
    rows = [txn("X", "2026-03-01 09:00:00", "30000", "某人", "6200111", "转账")]
    rows += scattered("X", PEOPLE, memo="代发工资")
    assert fan_out(rows).height == 0


def test_a_business_account_paying_many_suppliers_is_not_fan_out():
    rows = [txn("SHOP", "2026-03-01 09:00:00", "30000", "客户", "6200111", "货款")] + scattered("SHOP", PEOPLE)
    assert fan_out(rows).height == 0


def test_four_receivers_is_the_edge_below_the_threshold():
    rows = [txn("X", "2026-03-01 09:00:00", "15000", "某人", "6200111", "转账")] + scattered("X", PEOPLE[:4])
    assert fan_out(rows).height == 0


def test_gathered_money_is_fan_in_not_earned_income():
    from datetime import date
    from decimal import Decimal

    from tests.rows import flags_of, monthly, signals

    rows = monthly("X", list(range(1, 10)), "8000", day=10) + gathered("X", PEOPLE[:8], amount=4_000, day=20)
    result = signals(rows, as_of=date(2026, 9, 25), accounts_ref=REF)
    assert flags_of(result, "FAN_IN")["metric_value"].to_list() == [8.0]
    march = result["account_months"].filter(pl.col("month_on") == date(2026, 3, 1))
    assert march.select("inflow", "clean_income").rows() == [(Decimal("40000.00"), Decimal("8000.00"))]
    assert flags_of(result, "INCOME_VOLATILE").is_empty()


def funded(rows: list[dict]) -> list[dict]:
    return [txn("X", "2026-03-01 09:00:00", "30000", "某人", "6200111", "转账"), *rows]


def paid(forms: list[tuple[str | None, str | None]]) -> list[dict]:
    """One 3,000 payment per (name, number) form, an hour apart, on 2026-03-02."""
    return [
        txn("X", f"2026-03-02 {9 + i:02d}:00:00", "-3000", name, number, "转账")
        for i, (name, number) in enumerate(forms)
    ]


def test_three_receivers_each_named_in_two_forms_are_three_receivers_not_fan_out():
    forms = [
        ("李四", "6222020000001234"),
        ("李 四", "6222****1234"),  # masked, the name spaced: the full number's party
        ("王五", "6217****5678"),
        ("王五", "尾号5678"),  # two masked forms of one name: one party
        ("ＺＨＡＯ Liu", "6228480000009012"),
        ("zhaoliu", None),  # the name alone (full-width and case aside): the numbered party
    ]
    assert fan_out(funded(paid(forms))).height == 0
    with_two_more = forms + [("孙八", "6222020000003456"), ("周九", None)]
    assert fan_out(funded(paid(with_two_more)))["metric_value"].to_list() == [5.0]


def test_five_truly_distinct_receivers_in_mixed_forms_are_fan_out():
    forms = [
        ("李四", "6222****1234"),
        ("王五", "尾号5678"),
        ("赵六", None),
        ("钱七", "6228480000009012"),
        ("孙八", "6222****3456"),
    ]
    assert fan_out(funded(paid(forms))).select("metric_value", "severity").rows() == [(5.0, "high")]


def test_two_people_sharing_the_last_digits_under_different_names_are_two_receivers():
    forms = [("李四", "6222****1234"), ("王五", "6222****1234"), ("赵六", "尾号1234"), ("钱七", "6222020000001234")]
    forms += [("孙八", "6217****1234")]
    assert fan_out(funded(paid(forms)))["metric_value"].to_list() == [5.0]


def test_senders_named_in_two_forms_are_counted_once_for_fan_in():
    forms = [("李四", "6222020000001234"), ("李四", "尾号1234"), ("王五", None), ("王五", "6217000000005678")]
    forms += [("赵六", "6222****9012"), ("赵六", "6222****9012")]
    rows = [txn("X", f"2026-03-02 {9 + i:02d}:00:00", "3000", n, a, "转账") for i, (n, a) in enumerate(forms)]
    assert fan_in(rows).height == 0


def test_a_merchant_name_needs_the_whole_latin_word():
    """The Latin words of MERCHANT_PATTERN stand alone: after a Chinese character too, never inside a name."""
    names = pl.Series(["ACME Trading Ltd", "华强Co", "Costco Wholesale", "Marco Li", "张伟", "便利店"])
    assert names.str.contains(MERCHANT_PATTERN).to_list() == [True, True, False, False, False, True]
