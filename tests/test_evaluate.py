"""Scoring published flags against the generator's labels: literal labels and flags, exact counts."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl

from synthetic.evaluate import as_json, co_occurrence, evaluate_database, markdown, score

FLAG_OF = {"round_trip": "ROUND_TRIP", "large_outflow": "LARGE_OUTFLOW", "cycle": "CYCLE"}
LABELS = pl.DataFrame(
    {
        "account_id": ["A", "A", "B", "C", "C", "D", "E", "F"],
        "behaviour": ["round_trip", "round_trip", "round_trip", "cycle", "large_outflow", "cycle", "dusting", "cycle"],
    }
)
"""A: round trip (two months), B: round trip, C: cycle + large outflow, D, F: cycle, E: dusting (no rule);
G is ordinary."""
FLAGS = pl.DataFrame(
    {
        "account_id": ["A", "C", "C", "D", "G", "E", "B"],
        "flag_code": ["ROUND_TRIP", "CYCLE", "LARGE_OUTFLOW", "LARGE_OUTFLOW", "ROUND_TRIP", "LARGE_OUTFLOW", "CYCLE"],
    }
)


def test_recall_and_precision_count_every_account_without_the_behaviour_as_false_positive() -> None:
    scores = score(LABELS, FLAGS, flag_of=FLAG_OF)
    assert scores["behaviour"].to_list() == ["cycle", "dusting", "large_outflow", "round_trip"]
    rows = {r["behaviour"]: r for r in scores.iter_rows(named=True)}
    cycle = rows["cycle"]  # labelled C, D, F; flagged C, B
    assert (cycle["true_positive"], cycle["false_positive"], cycle["false_negative"]) == (1, 1, 2)
    assert cycle["recall"] == 1 / 3 and cycle["precision"] == 1 / 2
    assert cycle["flagged_clean"] == 0 and cycle["precision_vs_clean"] == 1.0  # B carries a round trip
    outflow = rows["large_outflow"]  # labelled C; flagged C, D, E
    assert (outflow["true_positive"], outflow["false_positive"], outflow["false_negative"]) == (1, 2, 0)
    assert outflow["recall"] == 1.0 and outflow["precision"] == 1 / 3
    trip = rows["round_trip"]  # labelled A, B; flagged A, G (ordinary)
    assert (trip["true_positive"], trip["false_positive"], trip["false_negative"]) == (1, 1, 1)
    assert trip["recall"] == 0.5 and trip["precision"] == 0.5
    assert trip["flagged_clean"] == 1 and trip["precision_vs_clean"] == 0.5
    assert all(rows[b]["status"] == "scored" for b in FLAG_OF)


def test_a_behaviour_without_a_rule_is_reported_as_no_rule() -> None:
    dusting = score(LABELS, FLAGS, flag_of=FLAG_OF).row(by_predicate=pl.col("behaviour") == "dusting", named=True)
    assert dusting["status"] == "no rule" and dusting["labelled"] == 1
    assert dusting["flag_code"] is None and dusting["recall"] is None and dusting["precision"] is None


def test_co_occurrence_counts_the_flags_firing_on_each_behaviours_accounts() -> None:
    pairs = co_occurrence(LABELS, FLAGS, flag_of=FLAG_OF)
    assert pairs.rows() == [
        ("cycle", 3, "LARGE_OUTFLOW", False, 2, 2 / 3),
        ("cycle", 3, "CYCLE", True, 1, 1 / 3),
        ("dusting", 1, "LARGE_OUTFLOW", False, 1, 1.0),
        ("large_outflow", 1, "CYCLE", False, 1, 1.0),
        ("large_outflow", 1, "LARGE_OUTFLOW", True, 1, 1.0),
        ("round_trip", 2, "CYCLE", False, 1, 0.5),
        ("round_trip", 2, "ROUND_TRIP", True, 1, 0.5),
    ]


def test_reports_from_a_database(tmp_path: Path) -> None:
    labels_csv = tmp_path / "labels.csv"
    LABELS.with_columns(month_on=pl.lit("2026-01-01")).write_csv(labels_csv)
    con = duckdb.connect()
    con.execute("CREATE TABLE risk_flags (account_id VARCHAR, flag_code VARCHAR, period_start_on DATE)")
    con.executemany("INSERT INTO risk_flags VALUES (?, ?, DATE '2026-01-01')", [*FLAGS.rows(), ("A", "ROUND_TRIP")])
    scores, pairs = evaluate_database(labels_csv, con)
    con.close()
    assert set(scores["behaviour"]) == {"cycle", "dusting", "large_outflow", "round_trip"}
    assert pairs.height >= 1
    text = markdown(scores, pairs)
    assert "| behaviour | flag | status |" in text and "no rule" in text
    decoded = json.loads(as_json(scores, pairs))
    assert {"scores", "co_occurrence"} == set(decoded)
