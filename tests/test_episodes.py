"""Episodes, not repeats: an episodic rule's consecutive firing months are one flag (transforms.flag_rows.episodes)."""

from __future__ import annotations

import dataclasses
import hashlib
from datetime import date
from decimal import Decimal

import polars as pl

from liushui.config import load_rules
from liushui.contracts import ACCOUNT_MONTHS, ACCOUNTS_REF, RISK_FLAGS
from tests.rows import flags_of, signals, txn
from transforms.flag_rows import finish_flags
from transforms.income import INCOME_VOLATILE
from transforms.registry import RULES
from transforms.risk import account_risk

SETTINGS = load_rules().income_volatility


def _month(account: str, month: int, cv: float, severity: str, evidence: list[str], window_start: int = 1) -> dict:
    """One monthly INCOME_VOLATILE candidate: the trailing window from `window_start` to the end of `month`."""
    end = pl.select(pl.lit(date(2026, month, 1)).dt.month_end()).item()
    return {
        "account_id": account,
        "currency": "CNY",
        "period_start_on": date(2026, window_start, 1),
        "period_end_on": end,
        "metric_value": cv,
        "threshold": 0.5,
        "limit_name": "cv_threshold",
        "severity": severity,
        "reason_zh": f"变异系数{cv}，超过阈值0.5。",
        "reason_en": f"Coefficient of variation {cv} (threshold 0.5).",
        "evidence_txn_ids": evidence,
    }


def _finish(rows: list[dict], rule=INCOME_VOLATILE) -> pl.DataFrame:
    return (
        finish_flags(pl.LazyFrame(rows), rule, SETTINGS)
        .sort("account_id", "period_start_on", "period_end_on")
        .collect()
    )


def _episode_id(code: str, account: str, currency: str, first_month_on: date) -> str:
    text = f"{code}|{account}|{currency}|{first_month_on.isoformat()}"
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def test_three_consecutive_firing_months_are_one_episode_with_the_peak_and_the_union():
    flags = _finish(
        [
            _month("A", 3, 0.6, "medium", ["A-1", "A-2"]),
            _month("A", 4, 0.9, "high", ["A-2", "A-3"]),
            _month("A", 5, 0.7, "medium", ["A-4"], window_start=2),
        ]
    )
    assert flags.drop("flag_id", "rule_version", "remediation_zh", "remediation_en").rows(named=True) == [
        {
            "account_id": "A",
            "currency": "CNY",
            "flag_code": "INCOME_VOLATILE",
            "period_start_on": date(2026, 1, 1),
            "period_end_on": date(2026, 5, 31),
            "metric_value": 0.9,
            "threshold": 0.5,
            "limit_name": "cv_threshold",
            "severity": "high",
            "reason_zh": "变异系数0.9，超过阈值0.5；连续 3 个月（2026-03 至 2026-05），峰值月 2026-04。",
            "reason_en": "Coefficient of variation 0.9 (threshold 0.5); 3 consecutive months (2026-03 to 2026-05), "
            "peak 2026-04.",
            "evidence_txn_ids": ["A-1", "A-2", "A-3", "A-4"],
        }
    ]
    assert flags["flag_id"].to_list() == [_episode_id("INCOME_VOLATILE", "A", "CNY", date(2026, 3, 1))]


def test_a_month_that_did_not_fire_ends_the_episode():
    flags = _finish(
        [
            _month("A", 3, 0.6, "medium", ["A-1"]),
            _month("A", 4, 0.8, "medium", ["A-2"]),
            _month("A", 6, 0.7, "high", ["A-3"]),
            _month("B", 4, 0.6, "medium", ["B-1"]),  # another account's month never joins A's episode
        ]
    )
    got = flags.select("account_id", "period_start_on", "period_end_on", "metric_value", "severity", "evidence_txn_ids")
    assert got.rows() == [
        ("A", date(2026, 1, 1), date(2026, 4, 30), 0.8, "medium", ["A-1", "A-2"]),
        ("A", date(2026, 1, 1), date(2026, 6, 30), 0.7, "high", ["A-3"]),
        ("B", date(2026, 1, 1), date(2026, 4, 30), 0.6, "medium", ["B-1"]),
    ]
    # both of A's windows are clipped to the statement's first month: the id tells them apart by their first month
    assert flags["flag_id"].to_list() == [
        _episode_id("INCOME_VOLATILE", "A", "CNY", date(2026, 3, 1)),
        _episode_id("INCOME_VOLATILE", "A", "CNY", date(2026, 6, 1)),
        _episode_id("INCOME_VOLATILE", "B", "CNY", date(2026, 4, 1)),
    ]


def test_a_month_without_evidence_publishes_nothing_and_ends_the_episode():
    flags = _finish(
        [
            _month("A", 3, 0.6, "medium", ["A-1"]),
            _month("A", 4, 0.9, "high", []),
            _month("A", 5, 0.7, "medium", ["A-3"]),
        ]
    )
    assert flags.select("period_end_on", "metric_value", "severity").rows() == [
        (date(2026, 3, 31), 0.6, "medium"),
        (date(2026, 5, 31), 0.7, "medium"),
    ]


def test_a_single_firing_month_is_the_monthly_flag_with_an_id_of_its_first_month():
    month = [_month("A", 4, 0.9, "high", ["A-2", "A-1"])]
    episodic = _finish(month)
    monthly = _finish(month, rule=dataclasses.replace(INCOME_VOLATILE, episodic=False))
    assert episodic.drop("flag_id").equals(monthly.drop("flag_id"))
    assert episodic["reason_en"].to_list() == ["Coefficient of variation 0.9 (threshold 0.5)."]
    assert episodic["flag_id"].to_list() == [_episode_id("INCOME_VOLATILE", "A", "CNY", date(2026, 4, 1))]


def test_of_equal_peaks_the_earliest_month_is_the_peak():
    flags = _finish([_month("A", 3, 0.8, "medium", ["A-1"]), _month("A", 4, 0.8, "high", ["A-2"])])
    assert flags["reason_en"].to_list() == [
        "Coefficient of variation 0.8 (threshold 0.5); 2 consecutive months (2026-03 to 2026-04), peak 2026-03."
    ]
    assert flags["severity"].to_list() == ["high"]


def test_episodes_across_a_year_end_are_consecutive():
    december = _month("A", 12, 0.6, "medium", ["A-1"]) | {"period_start_on": date(2025, 12, 1)}
    december["period_end_on"] = date(2025, 12, 31)
    flags = _finish([december, _month("A", 1, 0.7, "medium", ["A-2"])])
    assert flags.select("period_start_on", "period_end_on").rows() == [(date(2025, 12, 1), date(2026, 1, 31))]


def test_the_trailing_window_rules_are_episodic_and_the_monthly_event_rules_are_not():
    assert sorted(r.code for r in RULES if r.episodic) == [
        "CASH_LOAN_RELIANCE",
        "DEBT_BURDEN_HIGH",
        "INCOME_VOLATILE",
        "MULTI_LENDER",
    ]


# --- through the whole pipeline, on two nights -------------------------------------------------------
def _volatile_income() -> list[dict]:
    """Clean income swinging month to month, January to September 2026 (as in test_rules_core), and an interest
    row in October that extends the statement over the whole of September."""
    incomes = ["1000", "20000", "500", "9000", "100", "30000", "2000", "50", "40000"]
    rows = [txn("V", "2026-01-01 08:00:00", "1", "x", None, "利息")]
    for m, amount in enumerate(incomes, start=1):
        rows.append(txn("V", f"2026-{m:02d}-10 09:00:00", amount, "客户甲", None, "劳务费"))
    return [*rows, txn("V", "2026-10-02 09:00:00", "1", "x", None, "利息")]


def test_an_episode_that_grows_on_a_later_night_keeps_its_flag_id():
    rows = _volatile_income()
    # in September's night, September is partial: April (the first month with 4 full months) to August fire
    september_night = signals([r for r in rows if r["booked_at"].month <= 9], as_of=date(2026, 9, 15))
    before = flags_of(september_night, "INCOME_VOLATILE")
    # a month later September is full and fires too: the same episode, one month longer
    after = flags_of(signals(rows, as_of=date(2026, 10, 15)), "INCOME_VOLATILE")
    assert before.select("period_start_on", "period_end_on").rows() == [(date(2026, 1, 1), date(2026, 8, 31))]
    assert after.select("period_start_on", "period_end_on").rows() == [(date(2026, 1, 1), date(2026, 9, 30))]
    assert before["flag_id"].to_list() == after["flag_id"].to_list()
    assert after["flag_id"].to_list() == [_episode_id("INCOME_VOLATILE", "V", "CNY", date(2026, 4, 1))]
    assert "连续 6 个月（2026-04 至 2026-09）" in after["reason_zh"][0]
    assert set(before["evidence_txn_ids"][0]) < set(after["evidence_txn_ids"][0])
    assert RISK_FLAGS.conform(after).collect().height == 1


# --- what an episode means for account_risk -----------------------------------------------------------
def test_an_episode_is_one_active_flag_and_its_clean_months_start_after_its_last_month():
    """A volatile stretch that was high in April and medium to August: one active flag scoring as high (the episode
    is one condition, its worst month its severity), and September the only clean month — the months the rule
    still fired after April are not clean months."""
    flags = finish_flags(
        pl.LazyFrame(
            [
                _month("A", 4, 0.9, "high", ["A-1"]),
                *(_month("A", m, 0.6, "medium", [f"A-{m}"]) for m in (5, 6, 7, 8)),
            ]
        ),
        INCOME_VOLATILE,
        SETTINGS,
    )
    months = pl.LazyFrame(
        {
            "account_id": ["A"] * 9,
            "currency": ["CNY"] * 9,
            "month_on": [date(2026, m, 1) for m in range(1, 10)],
            "is_main_currency": [True] * 9,
            "is_full_month": [True] * 9,
            "clean_income": [Decimal("8000.00")] * 9,
            "income_cv": [None, None, None, 0.9, 0.6, 0.6, 0.6, 0.6, 0.4],
            "debt_burden_trailing": [None] * 9,
        },
        schema_overrides={
            "clean_income": ACCOUNT_MONTHS.polars_schema["clean_income"],
            "debt_burden_trailing": pl.Float64,
        },
    )
    rules = load_rules().account_risk
    out = account_risk(flags, months, accounts=ACCOUNTS_REF.empty().lazy(), rules=rules, as_of=date(2026, 10, 15))
    row = out.collect().row(0, named=True)
    weight = rules.weights["INCOME_VOLATILE"] * rules.high_multiplier
    assert (row["active_flags"], row["active_flag_count"], row["score"]) == (["INCOME_VOLATILE"], 1, weight)
    assert (row["months_since_severe"], row["recovery_status"]) == (1, "at_risk")
    assert (row["recovery_now"], row["recovery_clean_months"]) == ([0.4], [1])
