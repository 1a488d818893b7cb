"""Score published flags against ground-truth labels (the generator's `labels.csv`).

One output row per behaviour, judged per account (an account labelled with a behaviour in any month
should carry the behaviour's flag in some period). Per-account scoring is what a risk analyst acts on;
month-level timing is checked by the rule tests.

Two precisions, because planted behaviours overlap in reality: a cycle of 100,000 through three accounts
*is* a large outflow, and 刷流水 through a spouse *is* heavy related transfer. `precision` counts every
flagged account without this behaviour's label as a false positive; `precision_vs_clean` counts only
flagged accounts that carry no planted behaviour at all (ordinary customers wrongly flagged).
"""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl

from transforms.registry import RULES

BEHAVIOUR_FLAGS: dict[str, str] = {rule.behaviour: rule.code for rule in RULES if rule.behaviour is not None}
"""Planted behaviour -> the flag code that detects it, from the rule registry (`Rule.behaviour`)."""


def score(labels: pl.DataFrame, flags: pl.DataFrame, *, behaviours: list[str] | None = None) -> pl.DataFrame:
    """`labels`: account_id, behaviour; `flags`: account_id, flag_code. Returns one row per behaviour."""
    rows = []
    labelled_any = set(labels["account_id"])
    for behaviour in behaviours or sorted(set(labels["behaviour"].unique()) & set(BEHAVIOUR_FLAGS)):
        code = BEHAVIOUR_FLAGS[behaviour]
        truth = set(labels.filter(pl.col("behaviour") == behaviour)["account_id"])
        found = set(flags.filter(pl.col("flag_code") == code)["account_id"])
        hits = len(truth & found)
        clean_false = len(found - labelled_any)
        rows.append(
            {
                "behaviour": behaviour,
                "flag_code": code,
                "labelled": len(truth),
                "flagged": len(found),
                "true_positive": hits,
                "recall": hits / len(truth) if truth else None,
                "precision": hits / len(found) if found else None,
                "flagged_clean": clean_false,
                "precision_vs_clean": hits / (hits + clean_false) if hits + clean_false else None,
            }
        )
    ratios = {"recall": pl.Float64, "precision": pl.Float64, "precision_vs_clean": pl.Float64}
    return pl.DataFrame(rows, schema_overrides=ratios)


def score_database(labels_csv: Path, con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    labels = pl.read_csv(labels_csv, schema_overrides={"account_id": pl.String})
    flags = con.sql("SELECT DISTINCT account_id, flag_code FROM risk_flags").pl()
    return score(labels, flags)
