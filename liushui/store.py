"""DuckDB storage: schema from the contracts, one writer at a time, atomic publish, read-only readers.

Guarantees this module gives the flow:
- the database file is created readable by its owner only (0600);
- one writer at a time: a lock file next to the database; a second run waits up to its timeout, then
  refuses with a clear message;
- publish is one transaction: readers (and a crash) see the old state or the new one, never a mix;
- readers and the writer never wait for each other: the file at the public path (`--db`) is the current
  version of the database, a second name (hard link) of a file in `.versions/` beside it that nobody writes
  once it is published. The writer copies the current version, writes into the copy, closes it and renames a
  new link to it over the public path (atomic); a reader opens whatever version is there and keeps reading
  that version until it closes;
- readers meant for users cannot reach files, the network, extensions or settings through their SQL;
- no SQL text is ever built from input: data arrives as registered Arrow tables, values as parameters.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import polars as pl
from filelock import FileLock, Timeout

from liushui.contracts import CANONICAL_TRANSACTION, PUBLISHED_TABLES, Table

VIEWS: dict[str, str] = {
    "v_flag_counts_by_month": """
        SELECT flag_code, date_trunc('month', period_end_on)::DATE AS month_on, severity,
               count(*) AS flag_count, count(DISTINCT account_id) AS account_count
        FROM risk_flags GROUP BY ALL""",
    "v_account_overview": """
        SELECT r.account_id, r.as_of_on, r.score, r.band, r.recovery_status, r.months_since_severe,
               r.statement_trust, r.active_flags, r.clean_income_trend_pct, r.debt_burden_last,
               m.month_on AS last_full_month_on, m.clean_income AS last_clean_income, m.outflow AS last_outflow,
               m.lenders_active_90d AS last_lenders_90d
        FROM account_risk r
        LEFT JOIN account_months m ON m.account_id = r.account_id AND m.currency = r.currency
         AND m.month_on = (SELECT max(month_on) FROM account_months x
                           WHERE x.account_id = r.account_id AND x.currency = r.currency AND x.is_full_month)""",
    "v_customers": """
        SELECT customer_id, any_value(holder_name) AS holder_name, count(*) AS account_count,
               max(score) AS max_score, arg_max(band, score) AS worst_band,
               count(*) FILTER (WHERE len(active_flags) > 0) AS accounts_with_active_flags,
               list_sort(list_distinct(flatten(list(active_flags)))) AS active_flag_codes,
               list_sort(list(account_id)) AS account_ids
        FROM account_risk GROUP BY customer_id""",
    "v_risk_bands": """
        SELECT band, recovery_status, count(*) AS account_count FROM account_risk GROUP BY ALL""",
    "v_quarantine_by_file": """
        SELECT batch_id, source_file, reason_code, count(*) AS row_count FROM quarantine GROUP BY ALL""",
    "v_dq_failures": """
        SELECT run_id, suite, expectation, column_name, level, unexpected_count, detail, validated_at
        FROM dq_results WHERE NOT success""",
    "v_run_health": """
        SELECT run_id, started_at, finished_at, status, mode, as_of_on, counts_json, stage_seconds_json,
               (SELECT count(*) FROM dq_results d WHERE d.run_id = p.run_id AND NOT d.success) AS dq_failures
        FROM pipeline_runs p""",
}


class StoreError(Exception):
    """A storage problem with a message fit for the user (locked, missing, unreadable)."""


class DatabaseBusy(StoreError):
    """Another run holds the database beyond the wait allowed: not a failure, try again later."""


def schema_drift(con: duckdb.DuckDBPyConnection) -> dict[str, tuple[list[str], list[str]]]:
    """Published tables whose columns differ from their contract (a database written by an older liushui):
    table -> (columns the contract has and the table lacks, columns the table has and the contract lacks)."""
    present: dict[str, list[str]] = {}
    for table_name, column_name in con.execute(
        "SELECT table_name, column_name FROM duckdb_columns() WHERE database_name = current_database() "
        "AND schema_name = 'main' ORDER BY table_name, column_index"
    ).fetchall():
        present.setdefault(table_name, []).append(column_name)
    drift = {}
    for table in PUBLISHED_TABLES:
        if table.name in present and set(present[table.name]) != set(table.names):  # inserts go by name
            have = present[table.name]
            drift[table.name] = ([c for c in table.names if c not in have], [c for c in have if c not in table.names])
    return drift


def _migrate(con: duckdb.DuckDBPyConnection, written: set[str], *, full: bool) -> None:
    """Bring an older database's tables to their contracts, inside the publish transaction. A table that a
    full rebuild rewrites whole is recreated from its contract (the rebuild fills it); a history table
    (files, quarantine, results, runs) gains its new columns, empty for its old rows. A changed schema is part
    of the config fingerprint, so the first run of a new version is a full rebuild; anything else that would
    lose data is refused with what to do."""
    tables = {t.name: t for t in PUBLISHED_TABLES}
    for name, (missing, unexpected) in schema_drift(con).items():
        table = tables[name]
        if table.append_only and not unexpected:
            for column in (c for c in table.columns if c.name in missing):
                con.execute(f'ALTER TABLE "{name}" ADD COLUMN "{column.name}" {column.sql}')
        elif full and name in written:
            con.execute(f'DROP TABLE "{name}"')
            con.execute(table.ddl())
        elif name in written:
            raise StoreError(
                f"table {name} was written by another liushui version (columns missing: {missing or 'none'}, "
                f"not in this version: {unexpected or 'none'}); run `liushui run --full-rebuild` to rewrite it, "
                "or publish into a new --db"
            )
    if not schema_drift(con):
        _create_views(con)


def _create_views(con: duckdb.DuckDBPyConnection) -> None:
    for name, sql in VIEWS.items():
        con.execute(f'CREATE OR REPLACE VIEW "{name}" AS {sql}')


def _ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """The contract's tables and the views; the views of an older database wait for `publish` to migrate it."""
    for table in PUBLISHED_TABLES:
        con.execute(table.ddl())
    if not schema_drift(con):
        _create_views(con)


_DUCKDB_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
}
WRITER_MEMORY_LIMIT = "3GB"
"""DuckDB's own cap for the nightly writer (its default is 80 % of RAM, and it keeps written blocks cached up
to it): publishing 50M rows streams from Parquet and spills to `<database>.tmp` beyond this."""


_HELD_HERE: dict[str, int] = {}
"""Run locks this process holds (path -> depth): the CLI takes the lock before Prefect starts, and the flow it
then runs takes it again; a second OS lock from the same process on the same file would wait for itself."""
_HELD_GUARD = threading.Lock()


@contextmanager
def run_lock(database: Path, *, timeout_s: float) -> Iterator[None]:
    """One run at a time per database: a second run waits up to `timeout_s`, then refuses (`DatabaseBusy`).
    Re-entrant within a process."""
    key = str(database.resolve())
    with _HELD_GUARD:
        held = key in _HELD_HERE
        if held:
            _HELD_HERE[key] += 1
    if held:
        try:
            yield
        finally:
            with _HELD_GUARD:
                _HELD_HERE[key] -= 1
        return
    database.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(database) + ".lock")
    try:
        try:
            lock.acquire(timeout=0)
        except Timeout:
            print(
                f"liushui: another run is using {database}; waiting up to {timeout_s:.0f} s",
                file=sys.stderr,
                flush=True,
            )
            lock.acquire(timeout=timeout_s)
    except Timeout:
        raise DatabaseBusy(
            f"another liushui run is using {database} (lock file {lock.lock_file}); waited {timeout_s:.0f} s. "
            "Try again when it has finished."
        ) from None
    with _HELD_GUARD:
        _HELD_HERE[key] = 1
    try:
        yield
    finally:
        with _HELD_GUARD:
            del _HELD_HERE[key]
        lock.release()


def _public(database: Path) -> Path:
    return database.parent.resolve() / database.name


VERSIONS_FOLDER = ".versions"
KEPT_VERSIONS = 2
"""Versions kept on disk: the current one and the one before it (a reader that found the current version just
before a switch still finds its file). Older ones are removed after each publish; a reader that still holds one open
keeps reading it (its file descriptor stays valid), and the space is freed when it closes."""


def _versions_dir(database: Path) -> Path:
    return _public(database).parent / VERSIONS_FOLDER


def _version_path(database: Path, number: int) -> Path:
    return _versions_dir(database) / f"{database.stem}.{number:06d}{database.suffix}"


def _versions(database: Path) -> dict[int, Path]:
    """The version files of `database` on disk (published or left unfinished by a killed writer), by number."""
    folder = _versions_dir(database)
    pattern = re.compile(re.escape(database.stem) + r"\.([0-9]{6,})" + re.escape(database.suffix))
    if not folder.is_dir():
        return {}
    found = (pattern.fullmatch(p.name) for p in folder.iterdir())
    return {int(m.group(1)): folder / m.group(0) for m in found if m}


def current_version(database: Path) -> int | None:
    """The number of the version at the public path (the version file that is the same file); None for a file
    of a liushui before versions, or no database."""
    try:
        public = database.stat()
    except FileNotFoundError:
        return None
    for number, path in _versions(database).items():
        try:
            if os.path.samestat(public, path.stat()):
                return number
        except FileNotFoundError:
            continue
    return None


def _current_file(database: Path) -> str:
    """The path to open for the current version: its name in the versions folder (DuckDB keeps one instance per
    path in a process, so every version must have a path of its own), else the public path itself."""
    number = current_version(database)
    return str(_versions(database)[number]) if number is not None else str(database)


def _remove_version(path: Path) -> None:
    """A version file with what DuckDB keeps beside it (its log, its spill folder)."""
    Path(f"{path}.wal").unlink(missing_ok=True)
    shutil.rmtree(f"{path}.tmp", ignore_errors=True)
    path.unlink(missing_ok=True)


def _prune_versions(database: Path) -> None:
    """Keep the current version and the one before it; remove older ones and unfinished ones (numbered after
    the current: a writer killed before its switch). Call holding the run lock."""
    current = current_version(database)
    versions = _versions(database)
    kept = sorted((n for n in versions if current is not None and n <= current), reverse=True)[:KEPT_VERSIONS]
    for number, path in versions.items():
        if number not in kept:
            _remove_version(path)


def _fsync_dir(folder: Path) -> None:
    """Make a rename or a new file in `folder` durable (a kill needs nothing of it; a power cut does)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _switch(database: Path, version: Path) -> None:
    """Make `version` the file at the public path: a second name for it made under a temporary name, renamed
    over the public path in one atomic step, so that every open of the public path finds the old version or
    the new one, whole. The public path stays a regular file (no symbolic link for a tool or a `resolve()` to
    follow to one version)."""
    link = database.with_name(f".{database.name}.switch")
    link.unlink(missing_ok=True)
    os.link(version, link)
    os.replace(link, database)
    _fsync_dir(_public(database).parent)


def _adopt_plain_file(database: Path) -> None:
    """A database of a liushui before versions (a file at the public path with no version of its own) becomes
    version 1: the same file, given a second name in the versions folder. Nothing moves: readers that have it
    open go on reading it, and the public path holds the same state throughout."""
    os.link(database, _version_path(database, 1))
    os.chmod(database, 0o600)


def _fold_in_log(database: Path, *, timeout_s: float) -> None:
    """A log beside the public path (an older liushui's writer died, or something opened the public path
    read-write) holds committed work the file lacks: DuckDB replays it on a read-write open and checkpoints on
    close, so the file alone is the whole state before anything copies it."""
    if Path(f"{database}.wal").exists():
        con = _retry_on_lock(
            lambda: duckdb.connect(str(database), config=_DUCKDB_CONFIG),
            database,
            timeout_s=timeout_s,
            what="read-write",
        )
        con.close()


def _retry_on_lock(
    open_once: Callable[[], duckdb.DuckDBPyConnection], database: Path, *, timeout_s: float, what: str
) -> duckdb.DuckDBPyConnection:
    """DuckDB refuses at once while another process holds a file read-write: only a plain file written in place
    by an older liushui (or by hand) is ever held so; wait briefly."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return open_once()
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() >= deadline:
                raise StoreError(f"cannot open {database} {what}: {exc}") from None
            time.sleep(0.25)


@contextmanager
def writer(database: Path, *, timeout_s: float = 60.0) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-write connection to the next version of the database; takes the run lock (re-entrant: a run
    already holds it). The current version is copied and the block writes into the copy while readers go on
    reading the current one, untouched. When the block ends without an exception the copy is checkpointed,
    closed and switched in (the public path is then that file); an exception discards it, so nothing of the
    block is published. A kill at any moment leaves the public path at the old version or the new one; the next
    writer removes a copy left unfinished. Creates the schema, and the file 0600."""
    with run_lock(database, timeout_s=timeout_s):
        folder = _versions_dir(database)
        old_umask = os.umask(0o077)
        try:
            folder.mkdir(parents=True, exist_ok=True)
            _fold_in_log(database, timeout_s=timeout_s)
            if database.exists() and current_version(database) is None:
                _remove_stale_versions(database)
                _adopt_plain_file(database)
            _prune_versions(database)
            current = current_version(database)
            version = _version_path(database, (current or 0) + 1)
            if current is not None:
                shutil.copyfile(_version_path(database, current), version)
            con = duckdb.connect(str(version), config={**_DUCKDB_CONFIG, "memory_limit": WRITER_MEMORY_LIMIT})
        finally:
            os.umask(old_umask)
        published = False
        try:
            os.chmod(version, 0o600)
            _ensure_schema(con)
            yield con
            con.execute("CHECKPOINT")
            con.close()
            if Path(f"{version}.wal").exists():  # the next writer copies the file alone
                raise StoreError(f"DuckDB left a log beside {version} after its checkpoint; not published")
            _fsync_dir(folder)
            _switch(database, version)
            published = True
        finally:
            con.close()
            if not published:
                _remove_version(version)
        _prune_versions(database)


def _remove_stale_versions(database: Path) -> None:
    """Before a plain file is adopted as version 1, nothing in the versions folder is published: a version
    left there was being adopted or written when a writer was killed."""
    for path in _versions(database).values():
        _remove_version(path)


RUN_READER_MEMORY_LIMIT = "2GB"
"""DuckDB's cap for the nightly run's own read-only connections: without it DuckDB may keep the blocks it
scans cached up to 80 % of RAM, on top of the run's Polars work. The run's reads (prior state, history and
transfer-graph exports) stream, so the cap costs them nothing."""

_LOCKED_DOWN: dict[str, str | bool | int | float | list[str]] = {
    **_DUCKDB_CONFIG,
    "enable_external_access": False,
    "lock_configuration": True,
}
"""What a user's SQL may not do through `reader`: read or write any file but the database (`COPY ... TO`,
`read_csv('/etc/passwd')`, `ATTACH`), reach the network or install / load extensions, scan Python objects by
name, or change a setting (`SET`, `PRAGMA`, `RESET`)."""


def reader(
    database: Path, *, timeout_s: float = 30.0, memory_limit: str | None = None, file_access: bool = False
) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the current version of the database. It sees that version for its whole life,
    however many publishes happen meanwhile, and never holds up the writer.

    Locked down by default, for every reader meant for users (CLI views and queries, reports, dashboards): no
    file, network, extension or setting is reachable from its SQL. `file_access` is for the run's own readers
    that need it (`export_history` writes Parquet, `known_txn_ids` scans an Arrow table by name).
    `memory_limit` (one of this module's constants) caps DuckDB's memory for the database instance while the
    connection is open."""
    if memory_limit is not None and not re.fullmatch(r"[0-9]{1,6}(?:MB|GB)", memory_limit):
        raise ValueError(f"memory_limit must look like 500MB or 2GB, not {memory_limit!r}")
    if not database.exists():
        raise StoreError(f"no database at {database}: run `liushui run` first")
    config = dict(_DUCKDB_CONFIG if file_access else _LOCKED_DOWN)
    if memory_limit is not None:
        config["memory_limit"] = memory_limit

    def open_current() -> duckdb.DuckDBPyConnection:
        while True:
            version = _current_file(database)
            try:
                return duckdb.connect(version, read_only=True, config=config)
            except duckdb.IOException:
                if _current_file(database) == version:
                    raise
                # The version vanished between finding it and opening it (two publishes in between): the
                # public path is a newer one now.

    return _retry_on_lock(open_current, database, timeout_s=timeout_s, what="read-only")


def previous_reader(database: Path) -> duckdb.DuckDBPyConnection | None:
    """A locked-down read-only connection to the version published before the current one (the state before the
    last publish: a night, a quiet night, a decision), for "what changed"; None when there is none (the first
    publish, a database of a liushui before versions) or it was pruned meanwhile."""
    current = current_version(database)
    versions = _versions(database)
    older = [n for n in versions if current is not None and n < current]
    if not older:
        return None
    try:
        return duckdb.connect(str(versions[max(older)]), read_only=True, config=dict(_LOCKED_DOWN))
    except duckdb.IOException:
        return None


def known_file_hashes(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.sql("SELECT file_sha256 FROM source_files WHERE status <> 'rejected'").fetchall()
    return {r[0] for r in rows}


def known_txn_ids(con: duckdb.DuckDBPyConnection, txn_ids: pl.Series) -> pl.Series:
    """Which of `txn_ids` are already published (boolean, aligned with the input)."""
    probe = pl.DataFrame({"txn_id": txn_ids}).with_row_index("_i").to_arrow()  # noqa: F841 (scanned by name)
    found = con.sql("SELECT p._i FROM probe p SEMI JOIN transactions t ON t.txn_id = p.txn_id").pl()["_i"]
    return pl.Series(range(len(txn_ids))).is_in(found.implode())


def export_history(
    con: duckdb.DuckDBPyConnection, account_ids: pl.Series | None, path: Path, *, graph_min_amount: float | None = None
) -> int:
    """Write the canonical columns of every published transaction (of the given accounts, when not None)
    to Parquet at `path`, streamed by DuckDB; returns the row count. With `graph_min_amount`, only the
    transfer graph: rows naming a counterparty account or moving at least that much."""
    columns = ", ".join(f't."{c}"' for c in CANONICAL_TRANSACTION.names)
    where, params = "", []
    if graph_min_amount is not None:
        where, params = " WHERE t.counterparty_account IS NOT NULL OR abs(t.amount) >= ?", [graph_min_amount]
    if account_ids is None:
        relation = con.sql(f"SELECT {columns} FROM transactions t{where}", params=params)
    else:
        wanted = pl.DataFrame({"account_id": account_ids.unique()}).to_arrow()  # noqa: F841
        relation = con.sql(
            f"SELECT {columns} FROM transactions t SEMI JOIN wanted w USING (account_id){where}", params=params
        )
    relation.write_parquet(str(path))
    return int(pl.scan_parquet(path).select(pl.len()).collect().item())


def published_rows(con: duckdb.DuckDBPyConnection, table: Table, column: str, values: tuple[str, ...]) -> pl.DataFrame:
    """The published rows of `table` whose `column` is one of `values` (in the contract's shape)."""
    frame = con.sql(f'SELECT * FROM "{table.name}" WHERE "{column}" IN (SELECT unnest(?))', params=[list(values)]).pl()
    return table.conform(frame).collect()


def recorded_run_ids(con: duckdb.DuckDBPyConnection, run_ids: list[str]) -> set[str]:
    """Those of `run_ids` that have a `pipeline_runs` row."""
    rows = con.execute("SELECT run_id FROM pipeline_runs WHERE run_id IN (SELECT unnest(?))", [run_ids]).fetchall()
    return {r[0] for r in rows}


def latest_booking_on(con: duckdb.DuckDBPyConnection) -> date | None:
    """The latest booking date among the published transactions (None: none yet)."""
    row = con.execute("SELECT max(booked_on) FROM transactions").fetchone()
    return row[0] if row else None


def record_run_timings(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    stage_seconds_json: str,
    stage_peak_rss_mb_json: str,
    finished_at: datetime,
) -> None:
    """The run row is written inside the publish transaction; the publish's own time is known only after."""
    con.execute(
        "UPDATE pipeline_runs SET stage_seconds_json = ?, stage_peak_rss_mb_json = ?, finished_at = ? WHERE run_id = ?",
        [stage_seconds_json, stage_peak_rss_mb_json, finished_at, run_id],
    )


def last_published_run(con: duckdb.DuckDBPyConnection) -> tuple[str, str] | None:
    """(config_sha256, as_of month) of the last published run, if any."""
    row = con.execute(
        "SELECT config_sha256, strftime(as_of_on, '%Y-%m') FROM pipeline_runs "
        "WHERE status = 'published' ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    return (row[0], row[1]) if row else None


def _insert(
    con: duckdb.DuckDBPyConnection, table: Table, frame: pl.DataFrame | Path | list[Path], *, into: str | None = None
) -> None:
    """Rows from an in-memory frame (as Arrow) or from Parquet file(s) written in the table's contract
    shape (DuckDB reads them directly: no copy through Python). `into` names another target with the
    table's columns (a staging table of `publish`); by default the table itself."""
    target = into or table.name
    if isinstance(frame, Path | list):
        paths = [str(p) for p in (frame if isinstance(frame, list) else [frame])]
        con.execute(f'INSERT INTO "{target}" BY NAME SELECT * FROM read_parquet(?)', [paths])
        return
    if frame.is_empty():
        return
    rows = table.conform(frame).collect().to_arrow()  # noqa: F841 (scanned by name)
    con.execute(f'INSERT INTO "{target}" BY NAME SELECT * FROM rows')


def _only_row(con: duckdb.DuckDBPyConnection, sql: str) -> tuple[Any, ...]:
    """The one row of a statement that always returns one (an aggregate; DuckDB's row count of a DELETE or
    INSERT)."""
    row = con.execute(sql).fetchone()
    if row is None:
        raise RuntimeError(f"DuckDB returned no row for: {sql}")
    return row


def _write_delta(
    con: duckdb.DuckDBPyConnection, table: Table, frame: pl.DataFrame | Path | list[Path]
) -> dict[str, int]:
    """Replace the published rows of the affected accounts (temp table `_affected`) by `frame`, writing
    only the difference: rows that vanished or changed are deleted (by primary key), rows that are new or
    changed are inserted. The end state is the same as deleting every row of the affected accounts and
    inserting the frame; a nightly increment recomputes ~5 % of the accounts and changes ~0.2 % of their
    rows, and DuckDB's commit cost grows with the rows written, not with the rows compared.

    Rows are compared whole with set semantics: NULL equals NULL, lists element by element in order,
    DECIMAL exactly, NaN equals NaN (and 0.0 equals -0.0, the only equal values a comparison does not
    tell apart). The published rows are unique (primary key), so EXCEPT finds the vanished ones; a frame
    that repeats a key takes EXCEPT ALL, so its duplicates still fail on the primary key as a plain
    insert would. Identifiers come from the contract only; the data stays in (temp) tables.
    """
    name = table.name
    columns = ", ".join(f'"{c}"' for c in table.names)
    keys = ", ".join(f'"{k}"' for k in table.primary_key)
    key_match = " AND ".join(f't."{k}" = g."{k}"' for k in table.primary_key)
    new, old, gone, fresh = (f'"_{stage}_{name}"' for stage in ("new", "old", "gone", "fresh"))
    # The recomputed rows, cast by the same INSERT ... BY NAME a plain publish uses.
    con.execute(f'CREATE OR REPLACE TEMP TABLE {new} AS SELECT {columns} FROM "{name}" LIMIT 0')
    _insert(con, table, frame, into=new.strip('"'))
    con.execute(
        f'CREATE OR REPLACE TEMP TABLE {old} AS SELECT {columns} FROM "{name}" SEMI JOIN _affected USING (account_id)'
    )
    repeats = bool(_only_row(con, f"SELECT count(*) > count(DISTINCT ({keys})) FROM {new}")[0])
    # Both differences are taken before anything is deleted.
    con.execute(f"CREATE OR REPLACE TEMP TABLE {gone} AS SELECT {keys} FROM (FROM {old} EXCEPT FROM {new})")
    set_op = "EXCEPT ALL" if repeats else "EXCEPT"
    con.execute(f"CREATE OR REPLACE TEMP TABLE {fresh} AS FROM {new} {set_op} FROM {old}")
    deleted = int(_only_row(con, f'DELETE FROM "{name}" t USING {gone} g WHERE {key_match}')[0])
    inserted = int(_only_row(con, f'INSERT INTO "{name}" SELECT {columns} FROM {fresh}')[0])
    for staged in (new, old, gone, fresh):
        con.execute(f"DROP TABLE {staged}")
    return {"deleted": deleted, "inserted": inserted}


def publish(
    con: duckdb.DuckDBPyConnection,
    frames: Mapping[str, pl.DataFrame | Path | list[Path]],
    *,
    affected_accounts: pl.Series | None,
    as_of: date | None = None,
    replaced_file: str | None = None,
) -> dict[str, dict[str, int]]:
    """Write every table in one transaction.

    Account-scoped tables: the rows of `affected_accounts` are replaced (all rows when it is None: a
    full rebuild). An incremental publish writes only the difference (`_write_delta`): deleting and
    re-inserting every row of the affected accounts (~500 k of the 10 M transactions in the benchmark's
    increment) made DuckDB's commit checkpoint take 20 of the publish's 25 s; the difference there is
    ~1,200 rows, and the whole publish takes ~3 s (docs/benchmarks.md). Append-only tables (files,
    quarantine, results, runs) only gain rows. Returns rows deleted / inserted per table written as a
    difference.

    An incremental night may move the as-of date within its month (a later as-of month is a full run): the
    accounts it did not recompute are judged by month and stay as they were, but they are now as of `as_of`,
    as a full rebuild would say, so every `account_risk` row takes it.

    `replaced_file` (a sha256) is a file read again (`liushui reingest`): its earlier `source_files` and
    `quarantine` rows are deleted before the frames' rows are appended. Only with a full rebuild, whose
    `transactions` frame holds the file's rows as read again and none of its old ones.
    """
    if replaced_file is not None and affected_accounts is not None:
        raise ValueError("replacing a file's rows needs a full rebuild (affected_accounts=None)")
    tables = {t.name: t for t in PUBLISHED_TABLES}
    written: dict[str, dict[str, int]] = {}
    con.execute("BEGIN TRANSACTION")
    try:
        _migrate(con, set(frames), full=affected_accounts is None)
        if replaced_file is not None:
            for file_table in ("quarantine", "source_files"):
                con.execute(f'DELETE FROM "{file_table}" WHERE file_sha256 = ?', [replaced_file])
        if affected_accounts is not None:
            affected = pl.DataFrame({"account_id": affected_accounts.unique()}).to_arrow()  # noqa: F841
            con.execute("CREATE OR REPLACE TEMP TABLE _affected AS SELECT account_id FROM affected")
        for name, frame in frames.items():
            table = tables[name]
            if table.account_scoped and not table.append_only:
                if affected_accounts is None:
                    con.execute(f'DELETE FROM "{name}"')
                elif table.primary_key:
                    written[name] = _write_delta(con, table, frame)
                    continue
                else:
                    con.execute(f'DELETE FROM "{name}" WHERE account_id IN (SELECT account_id FROM _affected)')
            _insert(con, table, frame)
        if affected_accounts is not None:
            con.execute("DROP TABLE _affected")
            if as_of is not None and "account_risk" in frames:
                con.execute("UPDATE account_risk SET as_of_on = ? WHERE as_of_on <> ?", [as_of, as_of])
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return written


def append(con: duckdb.DuckDBPyConnection, frames: dict[str, pl.DataFrame]) -> None:
    """Append history rows (results, runs) outside a publish, in one transaction."""
    publish(con, frames, affected_accounts=pl.Series("account_id", [], dtype=pl.String))
