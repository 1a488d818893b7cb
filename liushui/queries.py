"""The read-only questions asked of the published tables (docs/tables.md), each written once: the CLI's
views, the dashboard, the account report and the run artifacts all read through this module.

Each function takes an open read-only connection (`liushui.store.reader`) and returns one small Polars
frame named after what one row is (one row: a dict, None when there is none). Values chosen by a user (an
account, a flag code, a run) arrive as SQL parameters, never as SQL text; the only names put into SQL text
are the contracts' tables and columns. Values keep their table types (money stays DECIMAL): a caller that
draws a chart or rounds for display does so itself.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import polars as pl

from liushui import store
from liushui.contracts import (
    ACCOUNT_MONTHS,
    ACCOUNT_RISK,
    PUBLISHED_TABLES,
    RECOVERY_STATUSES,
    RISK_BANDS,
    RISK_FLAGS,
    Table,
)

BAND_ORDER = RISK_BANDS
"""The order of `accounts_per_band`'s rows (low .. severe)."""
RECOVERY_ORDER = RECOVERY_STATUSES
"""The order of `accounts_per_recovery_status`'s rows (the recovery path)."""


def _frame(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[object] = ()) -> pl.DataFrame:
    frame: pl.DataFrame = con.sql(sql, params=list(params)).pl()
    return frame


def _columns(table: Table) -> str:
    """Every column of the table's contract, quoted, in contract order."""
    return ", ".join(f'"{c}"' for c in table.names)


# Counts over everything --------------------------------------------------------------------------------
def published_row_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Rows per published table, in the contracts' order."""
    return {t.name: int(_frame(con, f'SELECT count(*) AS n FROM "{t.name}"').item()) for t in PUBLISHED_TABLES}


def headline(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Totals (accounts, transactions, flags, flagged accounts, as-of) and the latest run with its rejects."""
    out = _frame(
        con,
        "SELECT (SELECT count(*) FROM account_risk) AS accounts, "
        "(SELECT count(*) FROM transactions) AS transactions, "
        "(SELECT count(*) FROM risk_flags) AS flags, "
        "(SELECT count(DISTINCT account_id) FROM risk_flags) AS flagged_accounts, "
        "(SELECT max(as_of_on) FROM account_risk) AS as_of_on",
    ).row(0, named=True)
    latest = _frame(
        con,
        "SELECT run_id, status, mode, finished_at, message, "
        "coalesce(TRY_CAST(json_extract(counts_json, '$.files_rejected') AS BIGINT), 0) AS files_rejected, "
        "coalesce(TRY_CAST(json_extract(counts_json, '$.rows_quarantined') AS BIGINT), 0) AS rows_quarantined "
        "FROM pipeline_runs ORDER BY started_at DESC LIMIT 1",
    )
    out["latest_run"] = latest.row(0, named=True) if latest.height else None
    return out


# Flags ---------------------------------------------------------------------------------------------------
def flags_per_code(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per flag code, most flags first: flags, accounts, high-severity flags, the latest rule version."""
    return _frame(
        con,
        "SELECT flag_code, count(*) AS flags, count(DISTINCT account_id) AS accounts, "
        "count(*) FILTER (WHERE severity = 'high') AS high, max(rule_version) AS rule_version "
        "FROM risk_flags GROUP BY flag_code ORDER BY flags DESC, flag_code",
    )


def flags_per_code_by_month(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per flag code and month (the month of v_flag_counts_by_month): flags, all severities."""
    return _frame(
        con,
        "SELECT month_on, flag_code, sum(flag_count)::BIGINT AS flags FROM v_flag_counts_by_month "
        "GROUP BY ALL ORDER BY month_on, flag_code",
    )


def flags_of_code(con: duckdb.DuckDBPyConnection, flag_code: str, *, limit: int) -> pl.DataFrame:
    """The first `limit` flags of one code (every risk_flags column), by account and period."""
    return _frame(
        con,
        f"SELECT {_columns(RISK_FLAGS)} FROM risk_flags WHERE flag_code = ? "
        "ORDER BY account_id, period_start_on LIMIT ?",
        [flag_code, limit],
    )


def flags_of_code_with_status(con: duckdb.DuckDBPyConnection, flag_code: str, *, limit: int) -> pl.DataFrame:
    """The `limit` newest flags of one code (by period end, then account): every risk_flags column and
    `is_active`, whether the flag counts in its account's score as of the account's as-of date.

    account_risk names the active codes, not the active rows: a flag counts while its period ends within the
    lookback window (`lookback_months` before the as-of month), and `recovery_clears_on` says when the code's
    last flag stops counting (its month + lookback + 1). So a flag of an active code is active when it is fewer
    months older than the code's last flag than there are months from the as-of month to that date.
    """
    return _frame(
        con,
        "WITH active AS (SELECT account_id, as_of_on, unnest(active_flags) AS flag_code, "
        "unnest(recovery_clears_on) AS clears_on FROM account_risk), "
        "last AS (SELECT account_id, max(period_end_on) AS last_end_on FROM risk_flags WHERE flag_code = $1 "
        "GROUP BY account_id) "
        f"SELECT {', '.join(f'f.{c}' for c in _columns(RISK_FLAGS).split(', '))}, "
        "coalesce(date_diff('month', date_trunc('month', f.period_end_on), date_trunc('month', l.last_end_on)) "
        "< date_diff('month', date_trunc('month', a.as_of_on), a.clears_on), false) AS is_active "
        "FROM risk_flags f LEFT JOIN active a ON a.account_id = f.account_id AND a.flag_code = f.flag_code "
        "LEFT JOIN last l ON l.account_id = f.account_id "
        "WHERE f.flag_code = $1 ORDER BY f.period_end_on DESC, f.period_start_on DESC, f.account_id, f.flag_id "
        "LIMIT $2",
        [flag_code, limit],
    )


# Accounts ------------------------------------------------------------------------------------------------
def _accounts_per(column: str) -> str:
    """Accounts per value of an account_risk vocabulary column, every value listed (zeros too), in order.
    `column` is a column of the account_risk contract, never user input."""
    if column not in ACCOUNT_RISK.names:
        raise ValueError(f"account_risk has no column {column!r}")
    return (
        f"SELECT v.{column}, count(r.account_id) AS accounts "
        f"FROM unnest(?::VARCHAR[]) WITH ORDINALITY AS v({column}, ord) "
        f"LEFT JOIN account_risk r USING ({column}) GROUP BY v.{column}, v.ord ORDER BY v.ord"
    )


def accounts_per_band(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per risk band (low .. severe, empty bands included): accounts."""
    return _frame(con, _accounts_per("band"), [list(BAND_ORDER)])


def accounts_per_recovery_status(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per recovery status (clean .. recovered, in the order of the path): accounts."""
    return _frame(con, _accounts_per("recovery_status"), [list(RECOVERY_ORDER)])


def account_choices(con: duckdb.DuckDBPyConnection, *, limit: int, include: str | None = None) -> pl.DataFrame:
    """One row per account, riskiest first (score, then flags): score, band, recovery status, flags.

    The `limit` riskiest accounts, plus the account `include` (first) when it exists but is not among them.
    """
    return _frame(
        con,
        "WITH ranked AS (SELECT r.account_id, r.score, r.band, r.recovery_status, coalesce(f.flags, 0) AS flags, "
        "row_number() OVER (ORDER BY r.score DESC, coalesce(f.flags, 0) DESC, r.account_id) AS rank "
        "FROM account_risk r LEFT JOIN (SELECT account_id, count(*) AS flags FROM risk_flags GROUP BY 1) f "
        "USING (account_id)) "
        "SELECT account_id, score, band, recovery_status, flags FROM ranked "
        "WHERE rank <= ? OR account_id IS NOT DISTINCT FROM ? "
        "ORDER BY rank > ? DESC, rank",
        [limit, include, limit],
    )


_CUSTOMER_MATCHES = (
    "(contains(lower(r.customer_id), lower($1::VARCHAR)) OR contains(lower(coalesce(r.holder_name, '')), "
    "lower($1::VARCHAR)))"
)
"""account_risk `r`'s customer id or holder name contains parameter $1, case-insensitive (a plain substring:
`%` and `_` in the text are themselves, not patterns)."""


def worklist(
    con: duckdb.DuckDBPyConnection,
    *,
    bands: Sequence[str] = (),
    recovery_statuses: Sequence[str] = (),
    flag_code: str | None = None,
    min_score: float | None = None,
    customer: str | None = None,
) -> pl.DataFrame:
    """One row per account that passes every filter given (a band among `bands`, a recovery status among
    `recovery_statuses`, `flag_code` among its active flags, a score of at least `min_score`, a customer id or
    holder name containing `customer`, case-insensitive), riskiest first (score, then active flag rows, then
    account): its customer and holder, score, band, recovery status, active flag codes and rows, clean months
    since the last severe flag, the date no flag active today counts any more, main currency and as-of date."""
    return _frame(
        con,
        "SELECT r.account_id, r.customer_id, r.holder_name, r.score, r.band, r.recovery_status, r.active_flags, "
        "r.active_flag_count, r.months_since_severe, r.clears_on, r.currency, r.as_of_on FROM account_risk r "
        "WHERE (len($2::VARCHAR[]) = 0 OR list_contains($2::VARCHAR[], r.band)) "
        "AND (len($3::VARCHAR[]) = 0 OR list_contains($3::VARCHAR[], r.recovery_status)) "
        "AND ($4::VARCHAR IS NULL OR list_contains(r.active_flags, $4::VARCHAR)) "
        "AND ($5::DOUBLE IS NULL OR r.score >= $5::DOUBLE) "
        f"AND ($1::VARCHAR IS NULL OR {_CUSTOMER_MATCHES}) "
        "ORDER BY r.score DESC, r.active_flag_count DESC, r.account_id",
        [customer, list(bands), list(recovery_statuses), flag_code, min_score],
    )


def risk_state(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """`account_id, score, band, recovery_status, active_flags` of every account: what `with_changes` compares."""
    return _frame(con, "SELECT account_id, score, band, recovery_status, active_flags FROM account_risk")


def previous_risk_state(database: Path) -> pl.DataFrame | None:
    """`risk_state` of the version published before the current one (`store.previous_reader`); None without one."""
    previous = store.previous_reader(database)
    if previous is None:
        return None
    try:
        return risk_state(previous)
    finally:
        previous.close()


def with_changes(accounts: pl.DataFrame, previous: pl.DataFrame | None) -> pl.DataFrame:
    """`accounts` (rows of `worklist`) with `change`: how each differs from `previous` (`risk_state` of the version
    published before), "; "-joined — `new`, `score 30.00→55.50`, `band low→medium`, `recovery watch→at_risk`,
    `+ROUND_TRIP` / `-INCOME_VOLATILE` (flag codes that became active / stopped counting); null when the account is
    as it was. Without a previous state every account is `new`."""
    before = (previous if previous is not None else risk_state_schema()).select(
        "account_id",
        _was=pl.lit(True),
        _score=pl.col("score"),
        _band=pl.col("band"),
        _recovery=pl.col("recovery_status"),
        _flags=pl.col("active_flags"),
    )
    joined = accounts.join(before, on="account_id", how="left")
    flags, was = pl.col("active_flags").fill_null([]), pl.col("_flags").fill_null([])
    gained, lost = flags.list.set_difference(was).list.sort(), was.list.set_difference(flags).list.sort()
    score_moved = pl.col("score").round(2) != pl.col("_score").round(2)
    parts = pl.concat_list(
        pl.when(score_moved).then(pl.format("score {}→{}", pl.col("_score").round(2), pl.col("score").round(2))),
        pl.when(pl.col("band") != pl.col("_band")).then(pl.format("band {}→{}", "_band", "band")),
        pl.when(pl.col("recovery_status") != pl.col("_recovery")).then(
            pl.format("recovery {}→{}", "_recovery", "recovery_status")
        ),
        pl.when(gained.list.len() > 0).then(pl.lit("+") + gained.list.join(" +")),
        pl.when(lost.list.len() > 0).then(pl.lit("-") + lost.list.join(" -")),
    ).list.drop_nulls()
    change = (
        pl.when(pl.col("_was").is_null())
        .then(pl.lit("new"))
        .when(parts.list.len() > 0)
        .then(parts.list.join("; "))
        .otherwise(pl.lit(None, dtype=pl.String))
    )
    return joined.with_columns(change=change).drop("_was", "_score", "_band", "_recovery", "_flags")


def risk_state_schema() -> pl.DataFrame:
    """An empty `risk_state`."""
    return pl.DataFrame(
        schema={
            "account_id": pl.String,
            "score": pl.Float64,
            "band": pl.String,
            "recovery_status": pl.String,
            "active_flags": pl.List(pl.String),
        }
    )


# Customers -----------------------------------------------------------------------------------------------
def customers(con: duckdb.DuckDBPyConnection, *, search: str | None = None) -> pl.DataFrame:
    """One row per customer (account_risk.customer_id) whose id or a holder name contains `search`
    (case-insensitive), or who owns the account `search`; every customer when None; riskiest first: holder
    names, accounts, the worst band, the highest score, accounts with an active flag, the active flag codes of
    any of its accounts (sorted)."""
    return _frame(
        con,
        "WITH matched AS (SELECT DISTINCT r.customer_id FROM account_risk r "
        f"WHERE $1::VARCHAR IS NULL OR {_CUSTOMER_MATCHES} OR r.account_id = $1::VARCHAR) "
        "SELECT r.customer_id, string_agg(DISTINCT r.holder_name, ', ' ORDER BY r.holder_name) AS holder_names, "
        "count(*) AS accounts, "
        "arg_max(r.band, list_position($2::VARCHAR[], r.band)) AS worst_band, max(r.score) AS max_score, "
        "count(*) FILTER (WHERE len(r.active_flags) > 0) AS flagged_accounts, "
        "list_sort(list_distinct(flatten(list(r.active_flags)))) AS active_flags "
        "FROM account_risk r JOIN matched USING (customer_id) GROUP BY r.customer_id "
        "ORDER BY max_score DESC, r.customer_id",
        [search, list(BAND_ORDER)],
    )


def customer_accounts(con: duckdb.DuckDBPyConnection, customer_id: str) -> pl.DataFrame:
    """One row per account of one customer, riskiest first: holder, main currency, score, band, recovery status,
    active flags, clean months since the last severe flag, the date no active flag counts any more, clean income
    of the last full month and summed over the last 6 full months (main currency), and the remediation (en)."""
    return _frame(
        con,
        "WITH recent AS (SELECT account_id, currency, month_on, clean_income, row_number() OVER "
        "(PARTITION BY account_id, currency ORDER BY month_on DESC) AS back FROM account_months "
        "WHERE is_full_month AND is_main_currency) "
        "SELECT r.account_id, r.holder_name, r.currency, r.score, r.band, r.recovery_status, r.active_flags, "
        "r.months_since_severe, r.clears_on, r.clean_income_last, "
        "(SELECT sum(m.clean_income) FROM recent m WHERE m.account_id = r.account_id AND m.currency = r.currency "
        "AND m.back <= 6) AS clean_income_6m, r.remediation_en "
        "FROM account_risk r WHERE r.customer_id = $1 ORDER BY r.score DESC, r.account_id",
        [customer_id],
    )


def customer_transfers(con: duckdb.DuckDBPyConnection, customer_id: str) -> pl.DataFrame:
    """One row per pair of one customer's accounts and currency that money moved between (outbound legs, the
    other account resolved by `transactions.counterparty_account_id`): transfers, total moved (positive), first
    and last booking date; most money first."""
    return _frame(
        con,
        "WITH own AS (SELECT account_id FROM account_risk WHERE customer_id = $1) "
        "SELECT t.account_id AS from_account_id, t.counterparty_account_id AS to_account_id, t.currency, "
        "count(*) AS transfers, sum(-t.amount) AS amount, min(t.booked_on) AS first_on, max(t.booked_on) AS last_on "
        "FROM transactions t "
        "WHERE t.amount < 0 AND t.account_id IN (SELECT account_id FROM own) "
        "AND t.counterparty_account_id IN (SELECT account_id FROM own) AND t.counterparty_account_id <> t.account_id "
        "GROUP BY ALL ORDER BY amount DESC, from_account_id, to_account_id, t.currency",
        [customer_id],
    )


# One account ---------------------------------------------------------------------------------------------
def account_risk(con: duckdb.DuckDBPyConnection, account_id: str) -> dict[str, Any] | None:
    """The account's account_risk row (every column), plus `score_components`: its JSON parsed, flag code ->
    points. None when the account is unknown."""
    rows = _frame(con, f"SELECT {_columns(ACCOUNT_RISK)} FROM account_risk WHERE account_id = ?", [account_id])
    if rows.is_empty():
        return None
    out = rows.row(0, named=True)
    out["score_components"] = json.loads(out["score_components_json"] or "{}")
    return out


def account_months(con: duckdb.DuckDBPyConnection, account_id: str, *, main_currency_only: bool = True) -> pl.DataFrame:
    """One row per month of the account (every account_months column), by currency then month: of its main
    currency (the one its risk is judged in), or of every currency."""
    return _frame(
        con,
        f"SELECT {_columns(ACCOUNT_MONTHS)} FROM account_months WHERE account_id = ? "
        "AND (is_main_currency OR NOT ?) ORDER BY currency, month_on",
        [account_id, main_currency_only],
    )


def account_flags(con: duckdb.DuckDBPyConnection, account_id: str) -> pl.DataFrame:
    """One row per flag of the account, in period order: every risk_flags column, and `evidence_count`."""
    return _frame(
        con,
        f"SELECT {_columns(RISK_FLAGS)}, len(evidence_txn_ids) AS evidence_count "
        "FROM risk_flags WHERE account_id = ? ORDER BY period_start_on, flag_code, flag_id",
        [account_id],
    )


def account_evidence(con: duckdb.DuckDBPyConnection, account_id: str) -> pl.DataFrame:
    """One row per flag of the account and evidence transaction (which may be another account's leg), in
    booking order; the transaction's columns are null when it is not in `transactions`."""
    return _frame(
        con,
        "WITH e AS (SELECT flag_id, unnest(evidence_txn_ids) AS txn_id FROM risk_flags WHERE account_id = ?) "
        "SELECT e.flag_id, t.booked_at, t.amount, t.currency, t.counterparty_name, t.description, t.txn_class, "
        "t.account_id, e.txn_id FROM e LEFT JOIN transactions t USING (txn_id) "
        "ORDER BY e.flag_id, t.booked_at, e.txn_id",
        [account_id],
    )


# Runs, data quality, files -----------------------------------------------------------------------------
def runs(con: duckdb.DuckDBPyConnection, *, limit: int = 100) -> pl.DataFrame:
    """One row per pipeline run (newest first): status, mode, as-of, duration, message and the JSON columns."""
    return _frame(
        con,
        "SELECT run_id, started_at, finished_at, status, mode, as_of_on, "
        "round(epoch(finished_at - started_at), 1) AS seconds, message, counts_json, stage_seconds_json, "
        "stage_peak_rss_mb_json, versions_json FROM pipeline_runs ORDER BY started_at DESC LIMIT ?",
        [limit],
    )


def dq_failures_per_run(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per run (newest first): its status and how many expectations failed, by level."""
    return _frame(
        con,
        "SELECT p.run_id, p.started_at, p.status, p.mode, "
        "count(d.expectation) AS expectations, "
        "count(*) FILTER (WHERE d.level = 'blocking' AND NOT d.success) AS blocking_failed, "
        "count(*) FILTER (WHERE d.level = 'warning' AND NOT d.success) AS warning_failed "
        "FROM pipeline_runs p LEFT JOIN dq_results d USING (run_id) "
        "GROUP BY p.run_id, p.started_at, p.status, p.mode ORDER BY p.started_at DESC",
    )


def dq_summary(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """One row per suite and level of one run: expectations checked and failed."""
    return _frame(
        con,
        "SELECT suite, level, count(*) AS expectations, count(*) FILTER (WHERE NOT success) AS failed "
        "FROM dq_results WHERE run_id = ? GROUP BY ALL ORDER BY suite, level",
        [run_id],
    )


def dq_failed(con: duckdb.DuckDBPyConnection, run_id: str) -> pl.DataFrame:
    """One row per failed expectation of one run (blocking first)."""
    return _frame(
        con,
        "SELECT level, suite, table_name, expectation, column_name, unexpected_count, element_count, detail, "
        "kwargs_json FROM dq_results WHERE run_id = ? AND NOT success "
        "ORDER BY level = 'warning', suite, expectation, column_name",
        [run_id],
    )


def quarantine_per_batch(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per ingest batch with quarantined rows: rows, files and the reason codes with their counts."""
    return _frame(
        con,
        "WITH per_reason AS (SELECT batch_id, reason_code, count(*) AS n, count(DISTINCT file_sha256) AS files "
        "FROM quarantine GROUP BY ALL) "
        "SELECT batch_id, sum(n)::BIGINT AS rows_quarantined, "
        "string_agg(reason_code || ' ' || n, ', ' ORDER BY n DESC, reason_code) AS reasons "
        "FROM per_reason GROUP BY batch_id ORDER BY batch_id DESC",
    )


def quarantine_of_batch(con: duckdb.DuckDBPyConnection, batch_id: str) -> pl.DataFrame:
    """One row per file and reason code of one ingest batch (a run's own batch): rows, an example reason."""
    return _frame(
        con,
        "SELECT source_file, reason_code, count(*) AS rows, min(reason) AS example "
        "FROM quarantine WHERE batch_id = ? GROUP BY source_file, reason_code ORDER BY source_file, reason_code",
        [batch_id],
    )


def files_per_status(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """One row per source-file status (loaded, partial, rejected): files and rows."""
    return _frame(
        con,
        "SELECT status, count(*) AS files, sum(rows_read)::BIGINT AS rows_read, "
        "sum(rows_rejected)::BIGINT AS rows_rejected FROM source_files GROUP BY status ORDER BY status",
    )


def files_with_problems(con: duckdb.DuckDBPyConnection, *, limit: int = 200) -> pl.DataFrame:
    """One row per file attempt that was not loaded whole (newest first), with its error."""
    return _frame(
        con,
        "SELECT seen_at, file_name, profile, status, rows_read, rows_rejected, error, batch_id "
        "FROM source_files WHERE status <> 'loaded' ORDER BY seen_at DESC, file_name LIMIT ?",
        [limit],
    )


# A run's JSON columns ----------------------------------------------------------------------------------
def stage_figures(stage_seconds_json: str | None, stage_peak_rss_mb_json: str | None) -> pl.DataFrame:
    """One row per pipeline stage, in run order: wall seconds and peak memory after it (MiB)."""
    seconds = json.loads(stage_seconds_json or "{}")
    peak = json.loads(stage_peak_rss_mb_json or "{}")
    return pl.DataFrame(
        {
            "order": list(range(len(seconds))),
            "stage": list(seconds),
            "seconds": [float(v) for v in seconds.values()],
            "peak_rss_mb": [float(peak[k]) if k in peak else None for k in seconds],
        },
        schema={"order": pl.Int64, "stage": pl.String, "seconds": pl.Float64, "peak_rss_mb": pl.Float64},
    )


def run_counts(counts_json: str | None) -> pl.DataFrame:
    """One row per count the run recorded (rows read, new, duplicate, quarantined, published per table ...)."""
    counts = json.loads(counts_json or "{}")
    return pl.DataFrame(
        {"count": list(counts), "value": [int(v) for v in counts.values()]},
        schema={"count": pl.String, "value": pl.Int64},
    )


# Added for the dashboard -----------------------------------------------------------------------------------
def customer_matches(con: duckdb.DuckDBPyConnection, search: str) -> pl.DataFrame:
    """The `customers` rows for `search` as `liushui customer` resolves it: the one customer whose id is
    `search` when there is one, else every customer whose id or holder name contains it or who owns the
    account `search`."""
    found = customers(con, search=search)
    exact = found.filter(pl.col("customer_id") == search)
    return exact if exact.height else found
