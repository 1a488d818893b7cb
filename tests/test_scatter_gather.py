"""SCATTER_GATHER on literal rows: one account to another through several intermediaries of the batch."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import polars as pl

from liushui.config import load_rules
from liushui.contracts import FX_RATES_REF, RELATED_PARTIES_REF
from tests.rows import accounts, canonical, txn
from transforms.classify import classified_transactions
from transforms.counterparty import resolved_counterparties
from transforms.lenders import classify_lenders, load_lender_registry
from transforms.scatter_gather import scatter_gather_flags

RULES = load_rules().scatter_gather  # >= 3 intermediaries, 10 days, >= 1,000 CNY, 85 %-102 % passed on
NAMES = dict(zip("SCMNOP", ["张三", "李四", "王五", "赵六", "钱七", "孙八"], strict=True))
REF = accounts(*[(a, f"C{a}", name, "personal") for a, name in NAMES.items()])
NO_RATES = FX_RATES_REF.empty()


def transfer(src: str, dst: str, at: datetime, amount: int, *, in_leg: bool = True) -> list[dict]:
    rows = [txn(src, at.isoformat(sep=" "), str(-amount), NAMES[dst], dst, "转账")]
    if in_leg:
        rows.append(txn(dst, (at + timedelta(minutes=2)).isoformat(sep=" "), str(amount), NAMES[src], src, "转账"))
    return rows


def split_and_gathered(mids: str, *, amount: int = 30_000, fee: float = 0.01, days_on: int = 1) -> list[dict]:
    """S pays each intermediary on 2026-03-0<i>; each pays on to C `days_on` days later, less `fee`."""
    rows: list[dict] = []
    for i, mid in enumerate(mids):
        at = datetime(2026, 3, 2 + i, 10)
        rows += transfer("S", mid, at, amount)
        rows += transfer(mid, "C", at + timedelta(days=days_on), round(amount * (1 - fee)))
    return rows


def flags(rows: list[dict], ref: pl.DataFrame = REF, rules=RULES) -> pl.DataFrame:
    t = classified_transactions(
        classify_lenders(canonical(rows).lazy(), load_lender_registry()), ref.lazy(), RELATED_PARTIES_REF.empty().lazy()
    ).collect()
    owned = resolved_counterparties(t.lazy(), ref.lazy(), NO_RATES.lazy()).collect().lazy()
    return scatter_gather_flags(owned, ref.lazy(), NO_RATES.lazy(), rules=rules).collect().sort("account_id")


def test_money_split_across_three_intermediaries_and_gathered_flags_source_and_destination():
    got = flags(split_and_gathered("MNO"))
    assert got.select("account_id", "flag_code", "period_start_on", "metric_value", "threshold", "severity").rows() == [
        ("C", "SCATTER_GATHER", date(2026, 3, 1), 3.0, 3.0, "medium"),
        ("S", "SCATTER_GATHER", date(2026, 3, 1), 3.0, 3.0, "medium"),
    ]
    # every transfer of the pattern is evidence (the sender's outflow): 3 in, 3 on
    assert [len(e) for e in got["evidence_txn_ids"].to_list()] == [6, 6]
    assert got["reason_en"][1] == (
        "From 2026-03-02 to 2026-03-05, 90000.00 CNY moved from S to C through 3 intermediary accounts (this "
        "account is the source; 1 such pattern(s) this month): money split across others' accounts and gathered "
        "again."
    )


def test_two_intermediaries_are_not_enough():
    assert flags(split_and_gathered("MN")).is_empty()


def test_an_intermediary_keeping_more_than_the_fee_breaks_its_path():
    rows = split_and_gathered("MN") + transfer("S", "O", datetime(2026, 3, 4, 10), 30_000)
    rows += transfer("O", "C", datetime(2026, 3, 5, 10), 20_000)  # O keeps a third: not passed on
    assert flags(rows).is_empty()


def test_paying_on_after_the_window_is_not_the_pattern():
    assert flags(split_and_gathered("MNO", days_on=11)).is_empty()
    assert flags(split_and_gathered("MNO", days_on=10)).height == 2  # the edge: 10 days is inside


def test_an_intermediary_may_pay_on_hours_before_the_money_arrives():
    rows = split_and_gathered("MN")
    rows += transfer("S", "O", datetime(2026, 3, 4, 10), 30_000) + transfer("O", "C", datetime(2026, 3, 4, 7), 29_700)
    assert flags(rows)["metric_value"].to_list() == [3.0, 3.0]


def test_intermediaries_of_the_source_customer_are_own_accounts_not_strangers():
    ref = accounts(
        ("S", "CS", "张三", "personal"),
        ("C", "CC", "李四", "personal"),
        ("M", "CS", "张三", "personal"),  # the source's own second account
        ("N", "CN", "赵六", "personal"),
        ("O", "CO", "钱七", "personal"),
    )
    assert flags(split_and_gathered("MNO"), ref).is_empty()
    assert flags(split_and_gathered("MNOP"), accounts(*REF.rows())).height == 2


def test_an_intermediary_used_twice_counts_once():
    assert flags(split_and_gathered("MNOM"))["metric_value"].to_list() == [3.0, 3.0]
