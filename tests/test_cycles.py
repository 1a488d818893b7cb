"""Cycles on literal rows: money going round accounts of different customers and back."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liushui.config import CycleRules, load_rules
from liushui.contracts import FX_RATES_REF, RELATED_PARTIES_REF
from tests.rows import accounts, canonical, txn
from transforms.classify import classified_transactions
from transforms.counterparty import resolved_counterparties
from transforms.cycles import cycle_flags, cycle_inbound_ids, cycle_links
from transforms.lenders import classify_lenders, load_lender_registry

RULES = load_rules().cycles  # <= 8 hops, 30 days first to last hop, last hop >= 85 % of the first, >= 1,000
REGISTRY = load_lender_registry()
HOLDERS = dict(
    zip("ABCDEFGHIJ", ["张三", "李四", "王五", "赵六", "钱七", "孙八", "周九", "吴十", "郑一", "冯二"], strict=True)
)
REF = accounts(*[(a, f"C{a}", name, "personal") for a, name in HOLDERS.items()])
NO_RATES = FX_RATES_REF.empty()
USD_RATE = pl.DataFrame(
    {"currency": ["USD"], "rate_to_cny": [7.1], "valid_from": [None]}, schema=FX_RATES_REF.polars_schema
)


def classified(rows: list[dict], ref: pl.DataFrame = REF, fx: pl.DataFrame = NO_RATES) -> pl.LazyFrame:
    """Classified rows with their resolved counterparties, materialised (as the run's checkpoints do)."""
    rows_classified = classified_transactions(
        classify_lenders(canonical(rows).lazy(), REGISTRY), ref.lazy(), RELATED_PARTIES_REF.empty().lazy()
    ).collect()
    return resolved_counterparties(rows_classified.lazy(), ref.lazy(), fx.lazy()).collect().lazy()


def hop(
    src: str,
    dst: str,
    day: int,
    amount: int,
    *,
    by_name: bool = False,
    in_leg: bool = True,
    currency: str = "CNY",
    hour: int = 10,
) -> list[dict]:
    """src pays dst on 2026-03-<day> at `hour`; with `in_leg`, dst's statement shows the inflow 5 minutes later."""
    at = datetime(2026, 3, 1, hour) + timedelta(days=day - 1)
    cp_account = None if by_name else dst
    rows = [txn(src, at.isoformat(sep=" "), str(-amount), HOLDERS[dst], cp_account, "转账", currency=currency)]
    if in_leg:
        later = (at + timedelta(minutes=5)).isoformat(sep=" ")
        rows.append(txn(dst, later, str(amount), HOLDERS[src], src, "转账", currency=currency))
    return rows


def links_of(
    rows: list[dict], ref: pl.DataFrame = REF, *, rules: CycleRules = RULES, fx: pl.DataFrame = NO_RATES
) -> pl.DataFrame:
    return cycle_links(classified(rows, ref, fx), ref.lazy(), fx.lazy(), rules=rules).collect()


def chain(accounts_in_order: str, first_day: int, amount: int, *, days_per_hop: int = 1, fee: float = 0.01, **kw):
    """Hops round `accounts_in_order` and back to its first account, each `fee` smaller than the one before."""
    rows: list[dict] = []
    ring = accounts_in_order + accounts_in_order[0]
    for i, (src, dst) in enumerate(zip(ring, ring[1:], strict=False)):
        rows += hop(src, dst, first_day + i * days_per_hop, round(amount * (1 - fee) ** i), **kw)
    return rows


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
    rows = hop("A", "B", 1, 100_000) + hop("B", "C", 16, 98_000) + hop("C", "A", 32, 97_000)  # 31 days
    assert links_of(rows).height == 0


def test_chain_over_twenty_days_is_found_within_the_window():
    links = links_of(chain("ABCD", 1, 50_000, days_per_hop=7))  # hops on days 1, 8, 15, 22
    assert links["chain_length"].to_list() == [4] * 4
    assert links["days_apart"].to_list() == [0, 0, 0, 0]


def test_three_six_and_eight_hop_chains_losing_one_percent_a_hop_are_found():
    for ring in ("ABC", "ABCDEF", "ABCDEFGH"):
        links = links_of(chain(ring, 1, 100_000, fee=0.01))
        assert links["account_id"].to_list() == list(ring), ring
        assert links["chain_length"].unique().to_list() == [len(ring)]
        assert links["evidence_txn_ids"][0].len() == 2 * len(ring)


def test_eight_hop_chain_is_not_found_when_max_length_is_shorter():
    short = RULES.model_copy(update={"max_length": 6})
    assert links_of(chain("ABCDEFGH", 1, 100_000), rules=short).height == 0


def test_chain_losing_forty_percent_is_not_a_cycle():
    rows = chain("ABCDE", 1, 100_000, fee=0.12)  # last hop carries 60 % of the first
    assert links_of(rows).height == 0


def test_a_hop_carrying_more_than_the_one_before_breaks_the_chain():
    rows = hop("A", "B", 1, 100_000) + hop("B", "C", 3, 105_000) + hop("C", "A", 5, 100_000)  # +5 % on hop 2
    assert links_of(rows).height == 0


def test_hop_that_changes_currency_is_chained_through_a_rate():
    # 100,000 CNY -> B; B sends 13,900 USD (98,690 CNY at 7.1) -> C; C sends 97,500 CNY back to A
    rows = hop("A", "B", 1, 100_000) + hop("B", "C", 2, 13_900, currency="USD") + hop("C", "A", 3, 97_500)
    links = links_of(rows, fx=USD_RATE)
    assert links["account_id"].to_list() == ["A", "B", "C"]
    assert links_of(rows).height == 0  # without a rate the USD hop cannot be compared: no chain


def test_the_minimum_hop_amount_is_in_cny_so_a_small_usd_hop_of_a_small_chain_counts():
    # 7,000 CNY -> B; B sends 970 USD (6,887 CNY at 7.1, under 1,000 only as a USD figure) -> C; C sends 6,800 back
    rows = hop("A", "B", 1, 7_000) + hop("B", "C", 2, 970, currency="USD") + hop("C", "A", 3, 6_800)
    assert links_of(rows, fx=USD_RATE)["account_id"].to_list() == ["A", "B", "C"]
    small = hop("A", "B", 1, 900) + hop("B", "C", 2, 120, currency="USD") + hop("C", "A", 3, 880)
    assert links_of(small, fx=USD_RATE).height == 0  # 852 CNY: under the minimum however it is written


def test_flag_of_a_chain_across_currencies_is_in_each_account_hop_currency():
    rows = hop("A", "B", 1, 100_000) + hop("B", "C", 2, 13_900, currency="USD") + hop("C", "A", 3, 97_500)
    t = classified(rows, fx=USD_RATE)
    flags = cycle_flags(cycle_links(t, REF.lazy(), USD_RATE.lazy(), rules=RULES), t, rules=RULES).collect()
    assert flags.select("account_id", "currency").rows() == [("A", "CNY"), ("B", "USD"), ("C", "CNY")]


def test_overlapping_chains_a_rejected_chain_does_not_block_a_third():
    c1 = hop("A", "B", 1, 10_000, in_leg=False) + hop("B", "C", 2, 9_900, in_leg=False)  # A-1, B-2
    c1 += hop("C", "A", 3, 9_800, in_leg=False)  # C-3
    d_to_b = [txn("D", "2026-03-01 11:00:00", "-10000", HOLDERS["B"], "B", "转账")]  # D-4: D -> B -> C -> D
    c3 = hop("C", "D", 4, 9_800, in_leg=False) + hop("D", "E", 5, 9_700, in_leg=False)  # C-5, D-6
    c3 += hop("E", "C", 6, 9_600, in_leg=False)  # E-7: C -> D -> E -> C
    links = links_of(c1 + d_to_b + c3)
    chains = links.group_by("chain_id").agg(pl.col("out_txn_id").sort()).sort("out_txn_id")["out_txn_id"]
    # D -> B -> C -> D shares B-2 with the first chain and C-5 with the third: it is dropped, the third is kept
    assert chains.to_list() == [["A-1", "B-2", "C-3"], ["C-5", "D-6", "E-7"]]


def test_hops_must_not_go_back_in_time():
    rows = hop("A", "B", 5, 100_000) + hop("B", "C", 3, 100_000) + hop("C", "A", 7, 100_000)
    assert links_of(rows).height == 0


def test_a_hop_paid_from_the_balance_hours_before_the_money_it_forwards_arrived_is_chained():
    # B pays C at 08:00, two hours before A's money reaches B; C pays A two days later
    rows = hop("A", "B", 3, 100_000) + hop("B", "C", 3, 99_000, hour=8) + hop("C", "A", 5, 98_000)
    links = links_of(rows)
    assert links.select("account_id", "out_txn_id", "counterparty").rows() == [
        ("A", "A-1", "B"),
        ("B", "B-3", "C"),
        ("C", "C-5", "A"),
    ]
    assert links["chain_id"].n_unique() == 1


def test_a_hop_more_than_max_hop_lead_hours_before_the_previous_one_is_not_chained():
    rows = hop("A", "B", 3, 100_000, hour=12) + hop("B", "C", 2, 99_000, hour=11) + hop("C", "A", 5, 98_000)
    assert links_of(rows).height == 0  # 25 hours early
    assert links_of(rows, rules=RULES.model_copy(update={"max_hop_lead_hours": 26})).height == 3


def test_amounts_below_the_minimum_are_ignored():
    rows = hop("A", "B", 1, 900) + hop("B", "C", 3, 900) + hop("C", "A", 5, 900)
    assert links_of(rows).height == 0


def test_counterparty_shown_as_a_declared_card_number_is_a_hop():
    card = {a: f"62220000111{ord(a)}" for a in HOLDERS}  # the bank's numbers, not the pipeline's ids
    ref = REF.with_columns(account_number=pl.col("account_id").replace_strict(card))
    rows = [
        txn("A", "2026-03-01 10:00:00", "-20000", "李四", card["B"], "转账"),
        txn("B", "2026-03-02 10:00:00", "-19800", "王五", card["C"], "转账"),
        txn("C", "2026-03-03 10:00:00", "-19600", "张三", f"{card['A'][:4]}****{card['A'][-4:]}", "转账"),
    ]
    assert links_of(rows, ref)["account_id"].to_list() == ["A", "B", "C"]


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
    flags = cycle_flags(cycle_links(t, REF.lazy(), NO_RATES.lazy(), rules=RULES), t, rules=RULES).collect()
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
        cycle_flags(cycle_links(t, REF.lazy(), NO_RATES.lazy(), rules=RULES), t, rules=RULES)
        .collect()
        .sort("account_id", "currency")
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


def test_of_the_chains_one_hop_closes_in_several_ways_the_tightest_is_kept():
    # A -> B -> C, and C pays A three times (days 3, 10, 17): the hop of day 3 closes the money's circle
    rows = hop("A", "B", 1, 40_000) + hop("B", "C", 2, 39_800)
    rows += hop("C", "A", 3, 39_600) + hop("C", "A", 10, 39_600) + hop("C", "A", 17, 39_600)
    assert links_of(rows)["out_txn_id"].to_list() == ["A-1", "B-3", "C-5"]
