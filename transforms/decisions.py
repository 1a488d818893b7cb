"""Analysts' decisions on flags, applied to the flags: which flags a dismissal takes out of `account_risk`.

An analyst **confirms** or **dismisses** a flag (`contracts.FLAG_DECISIONS`, one row per decision, append-only:
a later decision on a flag supersedes the earlier ones, which stay). A flag's *latest* decision is the one in
force. A dismissal holds only for the evidence it was made on: each decision keeps `evidence_sha256`, the
fingerprint of the flag when it was decided (`evidence_sha256` below). When the flag's evidence changes (another
set of transactions, another metric value: the rule now sees something the analyst did not), the dismissal no
longer applies and the flag counts again, until someone decides on it anew.

A flag whose dismissal applies is, for `account_risk`, a flag that was not raised: it adds no points and names
no active code, remediation or severe period (`scoring_flags`). Another flag of the same code that is not
dismissed still counts as always (with its own severity: a dismissed high flag no longer doubles the code's
points). A confirmation changes nothing in the score; it is recorded and shown. Flags stay published either way
(`risk_flags` is the rules' output; the decisions sit beside it, `flags_with_decisions`).

The fingerprint is SHA-256 over the metric in millionths (rounded: a difference in the last bits of a float,
which the order of a sum can make between an incremental and a full run, is no change of evidence) and the
sorted evidence transaction ids, each prefixed by its length in bytes (no id can pass for two):
`f"{round(metric_value * 1e6)}|" + "".join(f"{len(id.encode())}:{id}" for id in sorted(ids))`.
"""

from __future__ import annotations

from datetime import date

import polars as pl
import polars_hash  # noqa: F401  (registers the stable `chash` namespace)

from liushui.config import AccountRiskRules
from liushui.contracts import FLAG_DECISIONS, RISK_FLAGS
from transforms.risk import account_risk

METRIC_SCALE = 1_000_000
"""The metric enters the fingerprint in millionths."""

DECISION_COLUMNS = ("decision", "decided_by", "decided_at", "decision_note", "is_evidence_changed", "is_dismissed")
"""What `flags_with_decisions` adds to a flag."""


def evidence_sha256() -> pl.Expr:
    """The fingerprint of a `risk_flags` row's evidence (this module's docstring), as 64 hex digits."""
    metric = pl.col("metric_value")
    metric_text = (
        pl.when(metric.is_finite())
        .then((metric * METRIC_SCALE).round(0).cast(pl.Int64, strict=False).cast(pl.String))
        .otherwise(metric.cast(pl.String))
    )
    ids = (
        pl.col("evidence_txn_ids")
        .list.sort()
        .list.eval(pl.element().str.len_bytes().cast(pl.String) + pl.lit(":") + pl.element())
        .list.join("")
        .fill_null("")
    )
    hashed: pl.Expr = pl.concat_str([metric_text, pl.lit("|"), ids]).chash.sha2_256()  # type: ignore[attr-defined]
    return hashed.alias("evidence_sha256")


def latest_decisions(flag_decisions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per decided flag: its latest decision (`contracts.FLAG_DECISIONS` columns); of two decisions at the
    same moment, the greater decision_id."""
    return (
        FLAG_DECISIONS.conform(flag_decisions)
        .sort("flag_id", "decided_at", "decision_id")
        .group_by("flag_id", maintain_order=True)
        .last()
    )


def flags_with_decisions(risk_flags: pl.LazyFrame, flag_decisions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per flag of `risk_flags` (its columns, in its order) and its latest decision: `decision`,
    `decided_by`, `decided_at`, `decision_note` (null without one), `is_evidence_changed` (the flag's evidence
    differs from the one decided on; null without a decision) and `is_dismissed` (dismissed, on the evidence it
    has now: it does not count in `account_risk`)."""
    latest = latest_decisions(flag_decisions).select(
        "flag_id",
        "decision",
        "decided_by",
        "decided_at",
        decision_note=pl.col("note"),
        _decided_sha256=pl.col("evidence_sha256"),
    )
    changed = pl.col("_decided_sha256") != pl.col("evidence_sha256")
    return (
        risk_flags.with_columns(evidence_sha256())
        .join(latest, on="flag_id", how="left", maintain_order="left")
        .with_columns(
            is_evidence_changed=pl.when(pl.col("decision").is_not_null()).then(changed),
            is_dismissed=((pl.col("decision") == "dismiss") & ~changed).fill_null(False),
        )
        .select(*risk_flags.collect_schema().names(), *DECISION_COLUMNS)
    )


def _dismissed(risk_flags: pl.LazyFrame, flag_decisions: pl.LazyFrame) -> pl.LazyFrame:
    """`flag_id` and `account_id` of the flags of `risk_flags` whose dismissal applies (only the flags decided on
    are fingerprinted: a night's flags are many, its decided ones few)."""
    decided = risk_flags.join(
        FLAG_DECISIONS.conform(flag_decisions).select("flag_id").unique(), on="flag_id", how="semi"
    )
    return flags_with_decisions(decided, flag_decisions).filter("is_dismissed").select("flag_id", "account_id")


def scoring_flags(risk_flags: pl.LazyFrame, flag_decisions: pl.LazyFrame) -> pl.LazyFrame:
    """The flags of `risk_flags` that count in `account_risk`: every one but those whose dismissal applies."""
    dismissed = _dismissed(risk_flags, flag_decisions).select("flag_id")
    return RISK_FLAGS.conform(risk_flags.join(dismissed, on="flag_id", how="anti", maintain_order="left"))


def dismissed_accounts(risk_flags: pl.LazyFrame, flag_decisions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per account (`account_id`) with a flag of `risk_flags` whose dismissal applies: the accounts whose
    `account_risk` differs from the one of all their flags."""
    return _dismissed(risk_flags, flag_decisions).select("account_id").unique(maintain_order=True)


def decided_account_risk(
    risk_flags: pl.LazyFrame,
    account_months: pl.LazyFrame,
    flag_decisions: pl.LazyFrame,
    *,
    accounts: pl.LazyFrame,
    rules: AccountRiskRules,
    as_of: date,
) -> pl.LazyFrame:
    """`transforms.risk.account_risk` of the accounts of `account_months`, from their flags that count (one row
    per account, `contracts.ACCOUNT_RISK`)."""
    return account_risk(
        scoring_flags(risk_flags, flag_decisions), account_months, accounts=accounts, rules=rules, as_of=as_of
    )
