"""GATHER_SCATTER on literal rows: many strangers pay one personal account and most of it goes on to many
others within days — one flag, not a FAN_IN and a FAN_OUT besides."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import polars as pl

from liushui.config import load_rules
from liushui.contracts import FX_RATES_REF, RELATED_PARTIES_REF
from tests.rows import accounts, canonical, related, signals, txn
from transforms.classify import classified_transactions
from transforms.counterparty import resolved_counterparties
from transforms.gather_scatter import gather_scatter_flags
from transforms.lenders import classify_lenders, load_lender_registry

RULES = load_rules()  # >= 4 senders in 3 days, >= 60 % on to >= 4 other receivers within 5 days; high at 90 %
REGISTRY = load_lender_registry()
SENDERS = ["李四", "王五", "赵六", "钱七", "孙八", "周九", "吴十", "郑一"]
RECEIVERS = ["冯二", "陈三", "褚一", "卫二", "蒋三", "沈四", "韩五", "杨六"]
REF = accounts(("X", "CX", "张三", "personal"), ("SHOP", "CS", "某某商贸", "business"))
RATES = FX_RATES_REF.conform(
    pl.DataFrame({"currency": ["USD"], "rate_to_cny": [Decimal("7.1000")], "valid_from": [None]})
).collect()


def gathered(senders: list[str], amounts: list[int], *, day: int = 2, account: str = "X") -> list[dict]:
    """One inflow per sender, two hours apart from 08:00 on 2026-03-<day>."""
    return [
        txn(account, f"2026-03-{day:02d} {8 + 2 * i:02d}:00:00", str(a), name, f"62170000{i:08d}", "转账")
        for i, (name, a) in enumerate(zip(senders, amounts, strict=True))
    ]


def scattered(
    receivers: list[str], amounts: list[str], *, day: int = 4, currency: str = "CNY", account: str = "X"
) -> list[dict]:
    return [
        txn(
            account,
            f"2026-03-{day:02d} {9 + i:02d}:00:00",
            f"-{a}",
            name,
            f"62220200{i:08d}",
            "转账",
            currency=currency,
        )
        for i, (name, a) in enumerate(zip(receivers, amounts, strict=True))
    ]


IN = [6_200, 3_850, 9_100, 4_700, 7_300]  # 31,150 from five strangers on 2026-03-02
OUT = ["8800", "6150", "9420", "4030"]  # 28,400 (91.2 %) to four others on 2026-03-04


def classified(rows: list[dict], ref: pl.DataFrame = REF, rel: pl.DataFrame | None = None) -> pl.LazyFrame:
    parties = rel if rel is not None else RELATED_PARTIES_REF.empty()
    t = classified_transactions(
        classify_lenders(canonical(rows).lazy(), REGISTRY), ref.lazy(), parties.lazy()
    ).collect()
    return resolved_counterparties(t.lazy(), ref.lazy(), RATES.lazy()).collect().lazy()


def hubs(rows: list[dict], ref: pl.DataFrame = REF, rel: pl.DataFrame | None = None) -> pl.DataFrame:
    return gather_scatter_flags(
        classified(rows, ref, rel), ref.lazy(), RATES.lazy(), rules=RULES.gather_scatter
    ).collect()


def test_five_strangers_in_four_others_out_within_two_days_is_one_hub_with_every_row_as_evidence():
    flags = hubs(gathered(SENDERS[:5], IN) + scattered(RECEIVERS[:4], OUT))
    assert flags.select("account_id", "flag_code", "currency", "threshold", "severity").rows() == [
        ("X", "GATHER_SCATTER", "CNY", 0.6, "high")
    ]
    assert round(flags["metric_value"][0], 4) == 0.9117
    assert flags["evidence_txn_ids"][0].to_list() == sorted(f"X-{i}" for i in range(1, 10))
    assert flags["reason_en"][0] == (
        "Within 3 days (2026-03-02 to 2026-03-02) 5 distinct senders paid in 31150.00 CNY; by 2026-03-04 91.2% of "
        "it had gone on to 4 other receivers (2 days after the first inflow): money gathered from many parties and "
        "scattered to many others, a collecting hub."
    )
    assert flags["reason_zh"][0] == (
        "2026-03-02至2026-03-02的3天内有5名不同转款人转入共31150.00 CNY，至2026-03-04已将其中91.2%转给4名其他收款人"
        "（首笔转入后2天内）：资金从多方集中转入后又分散转出，本账户是归集再分发的中转账户。"
    )


def test_a_hub_is_one_flag_not_fan_in_and_fan_out_besides_and_its_gathered_money_is_not_income():
    six_in = gathered(SENDERS[:6], [*IN, 5_000])  # 36,150: FAN_IN alone would fire (>= 5 senders)
    six_out = scattered(RECEIVERS[:6], [*OUT, "4000", "3100"])  # 35,500: FAN_OUT alone would fire
    result = signals(six_in + six_out, as_of=date(2026, 3, 31), accounts_ref=REF)
    codes = sorted(result["risk_flags"]["flag_code"].to_list())
    assert codes == ["GATHER_SCATTER"]
    assert result["account_months"].select("inflow", "clean_income").rows() == [(Decimal("36150.00"), Decimal("0.00"))]
    alone = signals(six_in, as_of=date(2026, 3, 31), accounts_ref=REF)["risk_flags"]["flag_code"].to_list()
    assert alone == ["FAN_IN"]


def test_a_payroll_like_account_paying_many_after_one_big_inflow_gathers_from_one_sender_and_is_no_hub():
    rows = [txn("X", "2026-03-02 09:00:00", "40000", "李四", "6217000000000001", "转账")]
    rows += scattered(RECEIVERS[:6], ["6000", "6000", "6000", "6000", "6000", "6000"])
    assert hubs(rows).height == 0


def test_a_personal_shop_paid_by_many_customers_paying_one_supplier_scatters_nothing():
    rows = gathered(SENDERS[:8], [3_000] * 8) + scattered(["王大锤"], ["22000"])
    assert hubs(rows).height == 0


def test_three_senders_is_the_edge_below_min_senders():
    assert hubs(gathered(SENDERS[:3], IN[:3]) + scattered(RECEIVERS[:4], ["4800", "4700", "4600", "2500"])).height == 0


def test_receivers_who_were_senders_are_money_sent_back_not_scattered():
    back = [  # to two senders (one by the card it came from, one masked) and two others
        txn("X", "2026-03-04 09:00:00", "-8800", SENDERS[0], "6217000000000000", "转账"),
        txn("X", "2026-03-04 10:00:00", "-6150", SENDERS[1], "6217****0001", "转账"),
    ]
    rows = gathered(SENDERS[:5], IN) + back + scattered(RECEIVERS[:2], OUT[2:])
    assert hubs(rows).height == 0


def test_related_senders_pooling_for_a_wedding_are_no_hub():
    rel = related(*[("CX", name, None, "family") for name in SENDERS[:5]])
    assert hubs(gathered(SENDERS[:5], IN) + scattered(RECEIVERS[:4], OUT), rel=rel).height == 0


def test_money_kept_below_min_share_out_is_no_hub():
    assert hubs(gathered(SENDERS[:5], IN) + scattered(RECEIVERS[:4], ["4000", "4000", "4000", "4000"])).height == 0


def test_scatter_window_ends_scatter_days_after_the_last_gathered_inflow():
    rows = gathered(SENDERS[:5], IN, day=2)  # last inflow 2026-03-02 16:00
    on_time = [txn("X", "2026-03-07 15:59:00", "-4030", RECEIVERS[3], "6222020000000003", "转账")]
    late = [txn("X", "2026-03-07 16:01:00", "-4030", RECEIVERS[3], "6222020000000003", "转账")]
    first_three = scattered(RECEIVERS[:3], OUT[:3])
    assert hubs(rows + first_three + on_time)["metric_value"].round(4).to_list() == [0.9117]
    assert hubs(rows + first_three + late).height == 0


def test_outflows_in_another_currency_count_through_the_rate():
    usd = scattered(RECEIVERS[:4], ["1240.00", "866.20", "1326.76", "567.61"], currency="USD")  # 28,400 CNY
    flags = hubs(gathered(SENDERS[:5], IN) + usd)
    assert flags.select("currency", "severity").rows() == [("CNY", "high")]
    assert round(flags["metric_value"][0], 3) == 0.912
    without_rate = gather_scatter_flags(
        classified(gathered(SENDERS[:5], IN) + usd),
        REF.lazy(),
        FX_RATES_REF.empty().lazy(),
        rules=RULES.gather_scatter,
    ).collect()
    assert without_rate.height == 0


def test_a_business_account_is_no_hub():
    rows = gathered(SENDERS[:5], IN, account="SHOP") + scattered(RECEIVERS[:4], OUT, account="SHOP")
    assert hubs(rows).height == 0


def test_receivers_named_in_two_forms_count_once():
    out = [
        txn("X", "2026-03-04 09:00:00", "-8800", "冯二", "6222020000001234", "转账"),
        txn("X", "2026-03-04 10:00:00", "-6150", "冯二", "6222****1234", "转账"),
        txn("X", "2026-03-04 11:00:00", "-9420", "陈三", "尾号5678", "转账"),
        txn("X", "2026-03-04 12:00:00", "-4030", "陈三", None, "转账"),
    ]
    assert hubs(gathered(SENDERS[:5], IN) + out).height == 0


def test_the_gather_window_is_gather_days_back_from_its_last_inflow():
    first = [txn("X", "2026-03-01 10:00:00", "9000", SENDERS[0], "6217000000000009", "转账")]
    later = [  # three more senders on 2026-03-04, the last at 10:00 sharp or a minute before
        txn("X", f"2026-03-04 09:{20 * i:02d}:00", str(a), name, f"621700000000001{i}", "转账")
        for i, (name, a) in enumerate(zip(SENDERS[1:4], [8_000, 7_000, 6_000], strict=True))
    ]
    out = scattered(RECEIVERS[:4], ["7000", "7000", "7000", "7000"], day=5)  # 28,000 of 30,000
    just_inside = [*later[:2], {**later[2], "booked_at": later[2]["booked_at"].replace(minute=59, hour=9)}]
    assert hubs(first + just_inside + out)["metric_value"].round(4).to_list() == [0.9333]
    at_the_edge = [*later[:2], {**later[2], "booked_at": later[2]["booked_at"].replace(minute=0, hour=10)}]
    assert hubs(first + at_the_edge + out).height == 0  # three senders in the window (2026-03-01 10:00, 03-04 10:00]


def test_a_hubs_scattered_money_is_not_a_large_outflow_of_its_holder():
    """One fact, one flag: 8,800 paid on from the gathered money is the hub's, not 2 x a 3,000 salary leaving."""
    from tests.rows import monthly

    salary = monthly("X", [10, 11, 12], "3000", year=2025) + monthly("X", [1, 2, 3], "3000", year=2026)
    hub = signals(
        salary + gathered(SENDERS[:5], IN) + scattered(RECEIVERS[:4], OUT), as_of=date(2026, 3, 31), accounts_ref=REF
    )
    assert sorted(hub["risk_flags"]["flag_code"].to_list()) == ["GATHER_SCATTER"]
    # the same payments out without the gathering before them: the holder's own money, 3 of them large
    paid = signals(salary + scattered(RECEIVERS[:4], OUT), as_of=date(2026, 3, 31), accounts_ref=REF)["risk_flags"]
    assert paid.select("flag_code", "metric_value").rows() == [("LARGE_OUTFLOW", 9420.0)]
