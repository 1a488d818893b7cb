"""Analysts' decisions on flags: record one, read them back, apply them in the nightly run.

    recorded = decisions.record(db, flag_id, "dismiss", by="王敏", note="salary from a second employer")
    recorded.score_before, recorded.score_after      # the account's score, rescored at once

What a decision does to the score is `transforms.decisions` (a dismissed flag does not count while its evidence
is the one decided on; a confirmation is recorded and changes nothing). This module is where decisions are kept
and how they reach `account_risk`; docs/decisions.md is the user's side.

Where they live, and why: a table of the published database, `flag_decisions` (`contracts.FLAG_DECISIONS`),
append-only. Each decision is published like a night: under the writer lock, into a copy of the current version,
in one transaction with the account's `account_risk` row rescored, then switched in (`store.writer`). So

- a reader sees the decision and the score it makes together, or neither (one file, one transaction): a sidecar
  file would be a second state to keep in step with the first, and the locked-down readers
  (`store.reader`: no external access) could not attach one;
- nothing else carries it forward: every publish starts from a copy of the current version, and a run writes
  only the tables it recomputes, so the audit table survives every night, full rebuilds and re-reads included;
- a decision waits for a running night (the lock) and a night for a decision, never a mix of both; the cost is one
  copy of the database per decision, as for every publish (docs/read_model.md).

Rescoring uses the rules and reference data of the last published run (`pipeline_runs.parameters_json`), checked
against its `config_sha256`: a score rescored with other rules than the rest of `account_risk` would be a state
no run produces, so a decision while the configuration differs is refused (the next run is a full rebuild; decide
after it). The nightly run applies every decision in force to the accounts it recomputes (`rescored_account_risk`)
with the same function, so an account ends alike after `decide`, after an incremental night and after a full one.

Values (flag id, names, notes) reach DuckDB only as parameters or Arrow tables, never as SQL text.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import duckdb
import polars as pl

from liushui import store
from liushui.config import AccountRiskRules, config_fingerprint, load_rules
from liushui.contracts import (
    ACCOUNT_MONTHS,
    ACCOUNT_RISK,
    FLAG_DECISION_KINDS,
    FLAG_DECISIONS,
    RISK_FLAGS,
)
from liushui.reference import read_reference
from transforms.decisions import (
    decided_account_risk,
    dismissed_accounts,
    evidence_sha256,
    flags_with_decisions,
    latest_decisions,
)

DEFAULT_LOCK_TIMEOUT_S = 60.0
"""How long a decision waits for a night holding the database before it gives up (`store.DatabaseBusy`)."""


class DecisionError(Exception):
    """A decision that cannot be recorded, with a message fit for the user; nothing was changed."""


class UnknownFlag(DecisionError):
    """No flag of that id in `risk_flags`."""


class ConfigurationChanged(DecisionError):
    """The rules or reference data differ from the last published run's: the account cannot be rescored alike."""


@dataclass(frozen=True)
class Recorded:
    """A decision as published, and the account's score and band before and after it."""

    decision_id: str
    decided_at: datetime
    decision: str
    flag_id: str
    flag_code: str
    account_id: str
    score_before: float
    band_before: str
    score_after: float
    band_after: str
    is_code_still_counted: bool
    """The flag's code still counts in the account's score (another flag of it that is active and not dismissed, or
    the flag itself when confirmed)."""


def record(
    database: Path,
    flag_id: str,
    decision: str,
    by: str,
    note: str,
    *,
    rules_path: Path | None = None,
    reference_dir: Path | None = None,
    lock_timeout_s: float = DEFAULT_LOCK_TIMEOUT_S,
) -> Recorded:
    """Record `decision` (confirm or dismiss) on the flag `flag_id`, by `by` because of `note`, and publish it with
    the flag's account rescored. `rules_path` / `reference_dir` stand in for the last run's when those moved (they
    must hold the same content). Raises DecisionError (UnknownFlag, ConfigurationChanged) or store.StoreError
    (no database; DatabaseBusy after `lock_timeout_s`); nothing is changed then."""
    if decision not in FLAG_DECISION_KINDS:
        raise DecisionError(f"decision {decision!r} is not one of {', '.join(FLAG_DECISION_KINDS)}")
    by, note = by.strip(), note.strip()
    if not by:
        raise DecisionError("say who decides (--by NAME)")
    if not note:
        raise DecisionError("say why (--note TEXT)")
    # An unknown id is refused before the database is copied; under the lock it is looked up again.
    con = store.reader(database)
    try:
        _flag(con, database, flag_id)
    finally:
        con.close()
    with store.writer(database, timeout_s=lock_timeout_s) as con:
        flag = _flag(con, database, flag_id)
        rules, accounts = _last_run_config(con, database, rules_path, reference_dir)
        account_id = flag["account_id"][0]
        key = (account_id,)
        decided_at = datetime.now(UTC).replace(tzinfo=None)
        row = FLAG_DECISIONS.conform(
            flag.with_columns(
                evidence_sha256(),
                decision_id=pl.lit(uuid.uuid4().hex),
                decided_at=pl.lit(decided_at, dtype=FLAG_DECISIONS.polars_schema["decided_at"]),
                decided_by=pl.lit(by),
                note=pl.lit(note),
                decision=pl.lit(decision),
            )
        ).collect()
        before = store.published_rows(con, ACCOUNT_RISK, "account_id", key)
        rescored = decided_account_risk(
            store.published_rows(con, RISK_FLAGS, "account_id", key).lazy(),
            store.published_rows(con, ACCOUNT_MONTHS, "account_id", key).lazy(),
            pl.concat([_decisions(con, account_id), row]).lazy(),
            accounts=accounts.lazy(),
            rules=rules,
            as_of=_as_of(con),
        ).collect()
        store.publish(
            con,
            {"flag_decisions": row, "account_risk": rescored},
            affected_accounts=pl.Series("account_id", [account_id], dtype=pl.String),
        )
    return Recorded(
        decision_id=row["decision_id"][0],
        decided_at=decided_at,
        decision=decision,
        flag_id=flag_id,
        flag_code=flag["flag_code"][0],
        account_id=account_id,
        score_before=float(before["score"][0]) if before.height else 0.0,
        band_before=before["band"][0] if before.height else "",
        score_after=float(rescored["score"][0]),
        band_after=rescored["band"][0],
        is_code_still_counted=flag["flag_code"][0] in rescored["active_flags"][0],
    )


def _flag(con: duckdb.DuckDBPyConnection, database: Path, flag_id: str) -> pl.DataFrame:
    found = store.published_rows(con, RISK_FLAGS, "flag_id", (flag_id,))
    if found.is_empty():
        raise UnknownFlag(
            f"no flag {flag_id!r} in risk_flags of {database}; `liushui account ACCOUNT_ID` lists an account's flag ids"
        )
    return found


def _as_of(con: duckdb.DuckDBPyConnection) -> date:
    """The published as-of date (every account_risk row carries the same)."""
    (row,) = con.execute("SELECT max(as_of_on) FROM account_risk").fetchall()
    if row[0] is None:
        raise DecisionError("account_risk is empty: run `liushui run` first")
    as_of: date = row[0]
    return as_of


def _last_run_config(
    con: duckdb.DuckDBPyConnection, database: Path, rules_path: Path | None, reference_dir: Path | None
) -> tuple[AccountRiskRules, pl.DataFrame]:
    """The account_risk rules and reference accounts of the last published run, checked by its config
    fingerprint (`rules_path` / `reference_dir` given: those files instead of the recorded paths)."""
    rows = con.execute(
        "SELECT parameters_json, config_sha256 FROM pipeline_runs WHERE status = 'published' "
        "ORDER BY started_at DESC LIMIT 1"
    ).fetchall()
    if not rows:
        raise DecisionError(f"no published run in {database}: run `liushui run` first")
    (row,) = rows
    parameters = json.loads(row[0])
    rules = rules_path or Path(parameters["rules_path"])
    recorded_reference = parameters.get("reference_dir")
    reference = reference_dir or (Path(recorded_reference) if recorded_reference else None)
    try:
        fingerprint = config_fingerprint(rules, reference)
    except OSError as exc:
        fingerprint = f"unreadable: {exc.strerror}"
    if fingerprint != row[1]:
        raise ConfigurationChanged(
            f"the rules {rules} or the reference data {reference or '(none)'} are not those of the last run on "
            f"{database} (config_sha256 differs): the account would be scored by other rules than every other. "
            "Run `liushui run` (it rebuilds every account with them), then decide; or pass --rules / --reference "
            "naming the files that run used"
        )
    accounts, _ = read_reference(reference)
    return load_rules(rules).account_risk, accounts


def _has_decisions(con: duckdb.DuckDBPyConnection) -> bool:
    """A database written before decisions has no `flag_decisions` table (its first publish creates it)."""
    rows = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() AND schema_name = 'main' "
        "AND table_name = ?",
        [FLAG_DECISIONS.name],
    ).fetchall()
    return bool(rows[0][0])


def _decisions(con: duckdb.DuckDBPyConnection, account_id: str | None = None) -> pl.DataFrame:
    """Every decision (of one account), in the contract's shape."""
    if not _has_decisions(con):
        return FLAG_DECISIONS.empty()
    if account_id is None:
        return FLAG_DECISIONS.conform(con.sql(f'SELECT * FROM "{FLAG_DECISIONS.name}"').pl()).collect()
    return store.published_rows(con, FLAG_DECISIONS, "account_id", (account_id,))


def account_flags(con: duckdb.DuckDBPyConnection, account_id: str) -> pl.DataFrame:
    """One row per flag of the account, in period order: every risk_flags column and its latest decision
    (`transforms.decisions.DECISION_COLUMNS`)."""
    flags = store.published_rows(con, RISK_FLAGS, "account_id", (account_id,)).sort(
        "period_start_on", "flag_code", "flag_id"
    )
    return flags_with_decisions(flags.lazy(), _decisions(con, account_id).lazy()).collect()


STATUS_SUPERSEDED = "superseded"
STATUS_GONE = "flag no longer raised"
STATUS_CHANGED = "evidence changed since dismissal"
STATUS_CHANGED_CONFIRMED = "evidence changed since confirmation"
STATUS_DISMISSED = "dismissed: not scored"
STATUS_CONFIRMED = "confirmed"


def decision_text() -> pl.Expr:
    """How a flag row of `account_flags` shows its latest decision: dismissed, confirmed, or either with "evidence
    changed since ..." (the dismissal no longer applies); null without a decision."""
    changed = pl.col("is_evidence_changed")
    dismissed = pl.col("decision") == "dismiss"
    return (
        pl.when(pl.col("decision").is_null())
        .then(pl.lit(None, dtype=pl.String))
        .when(dismissed & changed)
        .then(pl.lit("dismissed; " + STATUS_CHANGED))
        .when(changed)
        .then(pl.lit("confirmed; " + STATUS_CHANGED_CONFIRMED))
        .when(dismissed)
        .then(pl.lit("dismissed"))
        .otherwise(pl.lit("confirmed"))
    )


def decision_history(con: duckdb.DuckDBPyConnection, *, account_id: str | None = None) -> pl.DataFrame:
    """One row per decision (of one account), newest first: when, who, the decision, the flag, why, and `status`:
    superseded (a later decision on the flag), flag no longer raised, evidence changed since dismissal (or
    confirmation), dismissed: not scored, confirmed."""
    decided = _decisions(con, account_id)
    flags = store.published_rows(con, RISK_FLAGS, "flag_id", tuple(decided["flag_id"].unique().to_list()))
    current = flags_with_decisions(flags.lazy(), decided.lazy()).select("flag_id", "is_evidence_changed")
    latest = latest_decisions(decided.lazy()).select("flag_id", _latest_id=pl.col("decision_id"))
    status = (
        pl.when(pl.col("decision_id") != pl.col("_latest_id"))
        .then(pl.lit(STATUS_SUPERSEDED))
        .when(pl.col("is_evidence_changed").is_null())
        .then(pl.lit(STATUS_GONE))
        .when(pl.col("is_evidence_changed") & (pl.col("decision") == "dismiss"))
        .then(pl.lit(STATUS_CHANGED))
        .when(pl.col("is_evidence_changed"))
        .then(pl.lit(STATUS_CHANGED_CONFIRMED))
        .when(pl.col("decision") == "dismiss")
        .then(pl.lit(STATUS_DISMISSED))
        .otherwise(pl.lit(STATUS_CONFIRMED))
    )
    return (
        decided.lazy()
        .join(latest, on="flag_id", how="left")
        .join(current, on="flag_id", how="left")
        .with_columns(status=status)
        .sort("decided_at", "decision_id", descending=True)
        .select(
            "decided_at",
            "decided_by",
            "decision",
            "status",
            "flag_id",
            "account_id",
            "flag_code",
            "note",
            "metric_value",
            "evidence_sha256",
            "decision_id",
        )
        .collect()
    )


def rescored_account_risk(
    database: Path,
    account_risk: pl.LazyFrame,
    risk_flags: pl.LazyFrame,
    account_months: pl.LazyFrame,
    *,
    accounts: pl.LazyFrame,
    rules: AccountRiskRules,
    as_of: date,
) -> pl.LazyFrame | None:
    """A run's `account_risk` with the decisions published in `database` applied: the accounts of the run with a
    dismissal in force recomputed from their flags that count; None when the run has no such account (its
    `account_risk` stands as computed)."""
    if not database.exists():
        return None
    con = store.reader(database, memory_limit=store.RUN_READER_MEMORY_LIMIT)
    try:
        decided = _decisions(con)
    finally:
        con.close()
    if decided.is_empty():
        return None
    affected = dismissed_accounts(risk_flags, decided.lazy()).collect()
    if affected.is_empty():
        return None
    rescored = decided_account_risk(
        risk_flags.join(affected.lazy(), on="account_id", how="semi"),
        account_months.join(affected.lazy(), on="account_id", how="semi"),
        decided.lazy(),
        accounts=accounts,
        rules=rules,
        as_of=as_of,
    )
    kept = account_risk.join(affected.lazy(), on="account_id", how="anti")
    return ACCOUNT_RISK.conform(pl.concat([kept, rescored])).sort("account_id")
