"""Cycles on literal rows: money going round accounts of different customers and back."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liushui.config import load_rules
from liushui.contracts import RELATED_PARTIES_REF
from tests.rows import accounts, canonical, txn
from transforms.classify import classified_transactions
from transforms.cycles import cycle_flags, cycle_inbound_ids, cycle_links
from transforms.lenders import classify_lenders, load_lender_registry

RULES = load_rules().cycles  # length <= 4, 10 days first to last hop, 5 % per hop, >= 10,000
REGISTRY = load_lender_registry()
HOLDERS = {"A": "张三", "B": "李四", "C": "王五", "D": "赵六"}
REF = accounts(*[(a, f"C{a}", name, "personal") for a, name in HOLDERS.items()])


def classified(rows: list[dict], ref: pl.DataFrame = REF) -> pl.LazyFrame:
    return classified_transactions(
        classify_lenders(canonical(rows).lazy(), REGISTRY), ref.lazy(), RELATED_PARTIES_REF.empty().lazy()
    )


def hop(
    src: str, dst: str, day: int, amount: int, *, by_name: bool = False, in_leg: bool = True, currency: str = "CNY"
) -> list[dict]:
    """src pays dst on 2026-03-<day>; with `in_leg`, dst's statement shows the inflow 5 minutes later."""
    at = datetime(2026, 3, 1, 10) + timedelta(days=day - 1)
    cp_account = None if by_name else dst
    rows = [txn(src, at.isoformat(sep=" "), str(-amount), HOLDERS[dst], cp_account, "转账", currency=currency)]
    if in_leg:
        later = (at + timedelta(minutes=5)).isoformat(sep=" ")
        rows.append(txn(dst, later, str(amount), HOLDERS[src], src, "转账", currency=currency))
    return rows


def links_of(rows: list[dict], ref: pl.DataFrame = REF) -> pl.DataFrame:
    return cycle_links(classified(rows, ref), ref.lazy(), rules=RULES).collect()


def test_three_account_cycle_is_one_chain_of_three_links():
    rows = hop("A", "B", 1, 100_000) + hop("B", "C", 3, 98_000) + hop("C", "A", 5, 97_000)
    links = links_of(rows)
    assert links.select(
        "account_id", "out_txn_id", "in_txn_id", "amount_out", "amount_in", "days_apart", "counterparty", "chain_length"
    ).rows() == [
        ("A", "A-1", "B-2", Decimal("100000.00"), Decimal("100000.00"), 0, "B", 3),
        ("B", "B-3", "C-4", Decimal("98000.00"), Decimal("98000.00"), 0, "C", 3),
        ("C", "C-5", "A-6", Decimal("97000.00"), Decimal("97000.00"), 0, "A", 3),
    ]
    assert links["link_type"].unique().to_list() == ["cycle"]
    assert links["chain_id"].n_unique() == 1  # found once, not once per starting account
    assert links["link_id"].n_unique() == 3
    assert links["evidence_txn_ids"].to_list() == [["A-1", "A-6", "B-2", "B-3", "C-4", "C-5"]] * 3
    assert cycle_inbound_ids(links.lazy()).collect()["in_txn_id"].to_list() == ["A-6", "B-2", "C-4"]


def test_four_account_cycle():
    rows = hop("A", "B", 1, 50_000) + hop("B", "C", 2, 49_500) + hop("C", "D", 4, 49_000) + hop("D", "A", 7, 48_800)
    links = links_of(rows)
    assert links["account_id"].to_list() == ["A", "B", "C", "D"]
    assert links["chain_length"].unique().to_list() == [4]
    assert links["evidence_txn_ids"][0].len() == 8


def test_chain_that_does_not_close_is_not_a_cycle():
    rows = hop("A", "B", 1, 100_000) + hop("B", "C", 3, 98_000) + hop("C", "D", 5, 97_000)
    assert links_of(rows).height == 0


def test_two_account_round_trip_is_not_a_cycle():
    assert links_of(hop("A", "B", 1, 100_000) + hop("B", "A", 2, 100_000)).height == 0


def test_cycle_longer_than_the_window_is_not_a_cycle():
    rows = hop("A", "B", 1, 100_000) + hop("B", "C", 6, 98_000) + hop("C", "A", 12, 97_000)  # 11 days
    assert links_of(rows).height == 0


def test_amount_drift_beyond_tolerance_is_not_a_cycle():
    rows = hop("A", "B", 1, 100_000) + hop("B", "C", 3, 94_000) + hop("C", "A", 5, 93_000)  # -6 % on hop 2
    assert links_of(rows).height == 0


def test_hops_must_not_go_back_in_time():
    rows = hop("A", "B", 5, 100_000) + hop("B", "C", 3, 100_000) + hop("C", "A", 7, 100_000)
    assert links_of(rows).height == 0


def test_small_amounts_are_ignored():
    rows = hop("A", "B", 1, 9_000) + hop("B", "C", 3, 9_000) + hop("C", "A", 5, 9_000)
    assert links_of(rows).height == 0


def test_accounts_of_one_customer_are_own_transfers_not_a_cycle():
    ref = accounts(("A", "C1", "张三", "personal"), ("B", "C1", "张三", "personal"), ("C", "C3", "王五", "personal"))
    rows = hop("A", "B", 1, 100_000) + hop("B", "C", 3, 98_000) + hop("C", "A", 5, 97_000)
    assert links_of(rows, ref).height == 0


def test_hop_matched_by_holder_name_when_the_counterparty_account_is_missing():
    rows = (
        hop("A", "B", 1, 100_000, by_name=True, in_leg=False)
        + hop("B", "C", 3, 98_000, in_leg=False)
        + hop("C", "A", 5, 97_000, by_name=True, in_leg=False)
    )
    links = links_of(rows)
    # without inbound legs, in_txn_id is the next hop's outflow (the last hop wraps to the first)
    assert links.select("account_id", "out_txn_id", "in_txn_id", "amount_in", "days_apart").rows() == [
        ("A", "A-1", "B-2", Decimal("98000.00"), 2),
        ("B", "B-2", "C-3", Decimal("97000.00"), 2),
        ("C", "C-3", "A-1", Decimal("100000.00"), 4),
    ]
    assert links["evidence_txn_ids"][0].to_list() == ["A-1", "B-2", "C-3"]
    assert cycle_inbound_ids(links.lazy()).collect().height == 0


def test_ambiguous_holder_name_is_not_matched():
    ref = accounts(
        ("A", "CA", "张三", "personal"),
        ("B", "CB", "李四", "personal"),
        ("C", "CC", "王五", "personal"),
        ("E", "CE", "张三", "personal"),
    )  # two holders named 张三
    rows = (
        hop("A", "B", 1, 100_000, in_leg=False)
        + hop("B", "C", 3, 98_000, in_leg=False)
        + hop("C", "A", 5, 97_000, by_name=True, in_leg=False)
    )
    assert links_of(rows, ref).height == 0


def test_one_flag_per_participating_account_month_with_the_whole_chain():
    rows = hop("A", "B", 1, 100_000) + hop("B", "C", 3, 98_000) + hop("C", "A", 5, 97_000)
    t = classified(rows)
    flags = cycle_flags(cycle_links(t, REF.lazy(), rules=RULES), t, rules=RULES).collect()
    assert flags["account_id"].to_list() == ["A", "B", "C"]
    assert flags["flag_code"].unique().to_list() == ["CYCLE"]
    assert flags["period_start_on"].unique().to_list() == [date(2026, 3, 1)]
    assert flags["metric_value"].unique().to_list() == [3.0]
    assert flags["threshold"].unique().to_list() == [3.0]
    assert flags["severity"].unique().to_list() == ["high"]
    assert flags["evidence_txn_ids"].to_list() == [["A-1", "A-6", "B-2", "B-3", "C-4", "C-5"]] * 3
    assert "A→B→C→A" in flags["reason_zh"][0] and "A→B→C→A" in flags["reason_en"][0]


def test_cycles_in_two_currencies_of_one_month_are_two_flags_per_account_with_distinct_ids():
    cny = hop("A", "B", 1, 100_000) + hop("B", "C", 3, 98_000) + hop("C", "A", 5, 97_000)  # A-1 .. C-6
    usd = (
        hop("A", "B", 10, 20_000, currency="USD")
        + hop("B", "C", 11, 19_800, currency="USD")
        + hop("C", "D", 12, 19_600, currency="USD")
        + hop("D", "A", 13, 19_500, currency="USD")
    )  # A-7 .. A-14 (ids count rows of the whole list)
    t = classified(cny + usd)
    flags = (
        cycle_flags(cycle_links(t, REF.lazy(), rules=RULES), t, rules=RULES).collect().sort("account_id", "currency")
    )
    cny_chain = ["A-1", "A-6", "B-2", "B-3", "C-4", "C-5"]
    usd_chain = ["A-14", "A-7", "B-8", "B-9", "C-10", "C-11", "D-12", "D-13"]
    assert flags.select("account_id", "currency", "period_start_on", "metric_value", "evidence_txn_ids").rows() == [
        ("A", "CNY", date(2026, 3, 1), 3.0, cny_chain),
        ("A", "USD", date(2026, 3, 1), 4.0, usd_chain),
        ("B", "CNY", date(2026, 3, 1), 3.0, cny_chain),
        ("B", "USD", date(2026, 3, 1), 4.0, usd_chain),
        ("C", "CNY", date(2026, 3, 1), 3.0, cny_chain),
        ("C", "USD", date(2026, 3, 1), 4.0, usd_chain),
        ("D", "USD", date(2026, 3, 1), 4.0, usd_chain),
    ]
    assert flags["flag_id"].is_unique().all()
    assert "A→B→C→D→A" in flags["reason_en"][1] and "A→B→C→D" not in flags["reason_en"][0]


# --- property: every chain closes and its evidence exists --------------------------------------------
_transfer = st.tuples(
    st.sampled_from("ABCD"),
    st.sampled_from("ABCD"),
    st.integers(0, 12),
    st.sampled_from([10_000, 10_300, 10_600, 20_000]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_transfer, min_size=3, max_size=12))
def test_every_chain_closes_and_its_evidence_exists(transfers):
    rows = [
        r
        for src, dst, day, amount in transfers
        if src != dst
        for r in hop(src, dst, day + 1, amount, in_leg=day % 2 == 0)
    ]
    if not rows:
        return
    links = links_of(rows)
    ids = set(canonical(rows)["txn_id"])
    for chain in links.partition_by("chain_id"):
        length = chain["chain_length"][0]
        assert chain.height == length >= 3
        assert chain["account_id"].n_unique() == length
        assert set(chain["counterparty"]) == set(chain["account_id"])  # it closes: every sender is also received
        evidence = chain["evidence_txn_ids"][0].to_list()
        assert set(evidence) <= ids
        assert set(chain["out_txn_id"]) <= set(evidence)
        assert all(e == evidence for e in chain["evidence_txn_ids"].to_list())
    assert links["out_txn_id"].is_unique().all()
