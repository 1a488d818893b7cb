"""Score published flags against ground-truth labels (the generator's `labels.csv`).

One output row per behaviour, judged per account (an account labelled with a behaviour in any month
should carry the behaviour's flag in some period). Per-account scoring is what a risk analyst acts on;
month-level timing is checked by the rule tests.

Counts: `true_positive` (labelled and flagged), `false_positive` (flagged, not labelled with this behaviour —
every such account counts, whatever else is planted on it), `false_negative` (labelled, not flagged).
`recall` = TP / (TP + FN), `precision` = TP / (TP + FP). `precision_vs_clean` counts only flagged accounts that
carry no planted behaviour at all (ordinary customers wrongly flagged), because planted behaviours overlap in
reality: a cycle of 100,000 through three accounts *is* a large outflow. A behaviour that no rule claims yet
is listed with `status` "no rule" and no scores.

`co_occurrence`: for the accounts of each behaviour, which flag codes fire on them and on how many — where
the other flags of a planted account come from ("one fact, one flag").
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl

from transforms.registry import RULES

BEHAVIOUR_FLAGS: dict[str, str] = {rule.behaviour: rule.code for rule in RULES if rule.behaviour is not None}
"""Planted behaviour -> the flag code that detects it, from the rule registry (`Rule.behaviour`)."""

SCORE_SCHEMA: dict[str, pl.DataType] = {
    "behaviour": pl.String(),
    "flag_code": pl.String(),
    "status": pl.String(),
    "labelled": pl.Int64(),
    "flagged": pl.Int64(),
    "true_positive": pl.Int64(),
    "false_positive": pl.Int64(),
    "false_negative": pl.Int64(),
    "recall": pl.Float64(),
    "precision": pl.Float64(),
    "flagged_clean": pl.Int64(),
    "precision_vs_clean": pl.Float64(),
}
CO_OCCURRENCE_SCHEMA: dict[str, pl.DataType] = {
    "behaviour": pl.String(),
    "accounts": pl.Int64(),
    "flag_code": pl.String(),
    "own_flag": pl.Boolean(),
    "flagged": pl.Int64(),
    "share": pl.Float64(),
}


def score(
    labels: pl.DataFrame,
    flags: pl.DataFrame,
    *,
    behaviours: list[str] | None = None,
    flag_of: dict[str, str] | None = None,
) -> pl.DataFrame:
    """`labels`: account_id, behaviour; `flags`: account_id, flag_code. One row per behaviour (`behaviours`, by
    default every labelled one, sorted); `flag_of` maps behaviours to codes (default `BEHAVIOUR_FLAGS`)."""
    mapping = BEHAVIOUR_FLAGS if flag_of is None else flag_of
    rows = []
    labelled_any = set(labels["account_id"])
    for behaviour in behaviours or sorted(set(labels["behaviour"].unique())):
        truth = set(labels.filter(pl.col("behaviour") == behaviour)["account_id"])
        code = mapping.get(behaviour)
        if code is None:
            rows.append({"behaviour": behaviour, "status": "no rule", "labelled": len(truth)})
            continue
        found = set(flags.filter(pl.col("flag_code") == code)["account_id"])
        hits = len(truth & found)
        clean_false = len(found - labelled_any)
        rows.append(
            {
                "behaviour": behaviour,
                "flag_code": code,
                "status": "scored",
                "labelled": len(truth),
                "flagged": len(found),
                "true_positive": hits,
                "false_positive": len(found - truth),
                "false_negative": len(truth - found),
                "recall": hits / len(truth) if truth else None,
                "precision": hits / len(found) if found else None,
                "flagged_clean": clean_false,
                "precision_vs_clean": hits / (hits + clean_false) if hits + clean_false else None,
            }
        )
    return pl.DataFrame(rows, schema=SCORE_SCHEMA)


def co_occurrence(labels: pl.DataFrame, flags: pl.DataFrame, *, flag_of: dict[str, str] | None = None) -> pl.DataFrame:
    """For the accounts of each labelled behaviour: every flag code that fires on at least one of them, with
    how many (`flagged`) and which share of the behaviour's accounts; `own_flag` marks the behaviour's own
    code. Sorted by behaviour, then most frequent first, then code."""
    mapping = BEHAVIOUR_FLAGS if flag_of is None else flag_of
    per_behaviour = labels.select("account_id", "behaviour").unique()
    accounts = per_behaviour.group_by("behaviour").agg(accounts=pl.len().cast(pl.Int64))
    fired = (
        per_behaviour.join(flags.select("account_id", "flag_code").unique(), on="account_id")
        .group_by("behaviour", "flag_code")
        .agg(flagged=pl.len().cast(pl.Int64))
        .join(accounts, on="behaviour")
        .with_columns(
            share=pl.col("flagged") / pl.col("accounts"),
            own_flag=pl.col("flag_code") == pl.col("behaviour").replace_strict(mapping, default=None),
        )
        .with_columns(pl.col("own_flag").fill_null(False))
    )
    return (
        fired.select(list(CO_OCCURRENCE_SCHEMA))
        .cast(CO_OCCURRENCE_SCHEMA)  # type: ignore[arg-type]  # polars accepts a name -> dtype mapping
        .sort(["behaviour", "flagged", "flag_code"], descending=[False, True, False])
    )


def read_labels(labels_csv: Path) -> pl.DataFrame:
    return pl.read_csv(labels_csv, schema_overrides={"account_id": pl.String})


def read_flags(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    flags: pl.DataFrame = con.sql("SELECT DISTINCT account_id, flag_code FROM risk_flags").pl()
    return flags


def score_database(labels_csv: Path, con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    return score(read_labels(labels_csv), read_flags(con))


def evaluate_database(labels_csv: Path, con: duckdb.DuckDBPyConnection) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(scores, co-occurrence) of a published database against `labels_csv`."""
    labels, flags = read_labels(labels_csv), read_flags(con)
    return score(labels, flags), co_occurrence(labels, flags)


def _cell(value: object) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def markdown(scores: pl.DataFrame, pairs: pl.DataFrame) -> str:
    """The two tables as Markdown: per behaviour recall / precision (TP / FP / FN), and the co-occurring flags
    (per behaviour, the codes that fire on its accounts, its own code in bold)."""
    head = ["behaviour", "flag", "status", "labelled", "flagged", "TP", "FP", "FN", "recall", "precision"]
    head += ["flagged clean", "precision vs clean"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in scores.iter_rows(named=True):
        cells = [row[c] for c in ("behaviour", "flag_code", "status", "labelled", "flagged", "true_positive")]
        cells += [row[c] for c in ("false_positive", "false_negative", "recall", "precision")]
        cells += [row["flagged_clean"], row["precision_vs_clean"]]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    lines += ["", "| behaviour | accounts | flags firing on them (accounts, share) |", "|---|---|---|"]
    for (behaviour,), group in pairs.group_by("behaviour", maintain_order=True):
        fired = ", ".join(
            (f"**{r['flag_code']}**" if r["own_flag"] else r["flag_code"]) + f" {r['flagged']} ({r['share']:.0%})"
            for r in group.iter_rows(named=True)
        )
        lines.append(f"| {behaviour} | {group['accounts'][0]} | {fired} |")
    return "\n".join(lines) + "\n"


def as_json(scores: pl.DataFrame, pairs: pl.DataFrame) -> str:
    return json.dumps({"scores": scores.to_dicts(), "co_occurrence": pairs.to_dicts()}, ensure_ascii=False, indent=2)
