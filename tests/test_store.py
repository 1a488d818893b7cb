"""DuckDB storage guarantees: owner-only file, one writer at a time, read-only readers, atomic publish."""

from __future__ import annotations

import multiprocessing
import stat
import time
from pathlib import Path

import duckdb
import polars as pl
import pytest

from liushui import store
from liushui.contracts import QUARANTINE, RISK_FLAGS


def empty_database(directory: Path) -> Path:
    """A database with the schema and no rows, created the way a run creates it."""
    db = directory / "w.duckdb"
    with store.writer(db):
        pass
    return db


def _hold_lock(db: str, seconds: float, ready) -> None:
    with store.run_lock(Path(db), timeout_s=5):
        ready.set()
        time.sleep(seconds)


def test_database_file_is_readable_by_its_owner_only(tmp_path):
    db = empty_database(tmp_path)
    assert stat.S_IMODE(db.stat().st_mode) == 0o600


def test_second_run_waits_then_refuses_with_a_clear_message(tmp_path):
    db = tmp_path / "w.duckdb"
    ready = multiprocessing.Event()
    holder = multiprocessing.Process(target=_hold_lock, args=(str(db), 3.0, ready))
    holder.start()
    try:
        assert ready.wait(10)
        with (
            pytest.raises(store.StoreError, match="another liushui run is using") as refused,
            store.run_lock(db, timeout_s=0.5),
        ):
            pass
        assert "Try again when it has finished" in str(refused.value)
        # waiting long enough works: the lock is released when the first run ends
        with store.run_lock(db, timeout_s=20):
            pass
    finally:
        holder.join()


def test_readers_are_read_only(tmp_path):
    db = empty_database(tmp_path)
    con = store.reader(db)
    try:
        with pytest.raises(duckdb.Error, match="read-only"):
            con.execute("DELETE FROM transactions")
    finally:
        con.close()


def test_the_run_s_readers_cap_duckdb_memory_and_others_do_not(tmp_path):
    db = empty_database(tmp_path)

    def memory_limit(**cap: str) -> str:
        con = store.reader(db, **cap)
        try:
            return con.sql("SELECT current_setting('memory_limit')").fetchall()[0][0]
        finally:
            con.close()

    assert memory_limit(memory_limit="2GB") == "1.8 GiB"  # 2 GB
    assert memory_limit() != "1.8 GiB"
    with pytest.raises(ValueError, match="memory_limit must look like 500MB or 2GB, not \"2GB'; DROP"):
        store.reader(db, memory_limit="2GB'; DROP TABLE transactions; --")


def test_missing_database_gives_a_clear_message(tmp_path):
    with pytest.raises(store.StoreError, match="no database at .* run `liushui run` first"):
        store.reader(tmp_path / "none.duckdb")


def test_failed_publish_rolls_back_everything(tmp_path):
    db = tmp_path / "w.duckdb"
    good = QUARANTINE.conform(
        pl.DataFrame(
            {
                "source_file": ["a.csv"],
                "source_row": [1],
                "raw": ["x"],
                "reason_code": ["bad_date"],
                "reason": ["a.csv, row 1: bad"],
                "batch_id": ["b"],
                "file_sha256": ["0" * 64],
            }
        )
    ).collect()
    with store.writer(db) as con:
        store.publish(con, {"quarantine": good}, affected_accounts=None)
        # the same primary key again, in one transaction with a new row: nothing of it may land
        twice = pl.concat([good.with_columns(source_row=pl.lit(2, dtype=pl.Int64)), good])
        with pytest.raises(duckdb.ConstraintException):
            store.publish(con, {"quarantine": twice}, affected_accounts=None)
        assert con.execute("SELECT source_row FROM quarantine").fetchall() == [(1,)]


def test_hostile_text_never_becomes_sql(tmp_path):
    db = tmp_path / "w.duckdb"
    hostile = "x'); DROP TABLE transactions; --"
    row = QUARANTINE.conform(
        pl.DataFrame(
            {
                "source_file": [hostile],
                "source_row": [1],
                "raw": [hostile],
                "reason_code": ["bad_date"],
                "reason": [hostile],
                "batch_id": ["b"],
                "file_sha256": ["1" * 64],
            }
        )
    ).collect()
    with store.writer(db) as con:
        store.publish(con, {"quarantine": row}, affected_accounts=None)
        assert con.execute("SELECT source_file FROM quarantine").fetchall() == [(hostile,)]
        assert con.execute("SELECT count(*) FROM transactions").fetchall() == [(0,)]
        assert store.known_txn_ids(con, pl.Series([hostile])).to_list() == [False]


def _older_database(directory: Path) -> Path:
    """A database as an older liushui wrote it: risk_flags without `currency`, pipeline_runs without `message`."""
    db = empty_database(directory)
    con = duckdb.connect(str(db))
    try:
        con.execute("DROP VIEW IF EXISTS v_flag_counts_by_month")
        for view in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall():
            con.execute(f'DROP VIEW "{view[0]}"')
        con.execute("ALTER TABLE risk_flags DROP COLUMN currency")
        con.execute("ALTER TABLE pipeline_runs DROP COLUMN message")
        con.execute("ALTER TABLE risk_flags ADD COLUMN retired_column VARCHAR")
    finally:
        con.close()
    return db


def test_schema_drift_names_the_columns(tmp_path):
    db = _older_database(tmp_path)
    con = duckdb.connect(str(db), read_only=True)
    try:
        assert store.schema_drift(con) == {
            "risk_flags": (["currency"], ["retired_column"]),
            "pipeline_runs": (["message"], []),
        }
    finally:
        con.close()


def test_a_full_publish_migrates_an_older_database_inside_its_transaction(tmp_path):
    db = _older_database(tmp_path)
    with store.writer(db) as con:
        store.publish(con, {"risk_flags": RISK_FLAGS.empty()}, affected_accounts=None)
        assert store.schema_drift(con) == {}
        assert "v_flag_counts_by_month" in {
            v[0] for v in con.execute("SELECT view_name FROM duckdb_views()").fetchall()
        }


def test_an_incremental_publish_into_an_older_table_is_refused_clearly(tmp_path):
    db = _older_database(tmp_path)
    with store.writer(db) as con:
        with pytest.raises(store.StoreError, match=r"table risk_flags was written by another liushui version"):
            store.publish(con, {"risk_flags": RISK_FLAGS.empty()}, affected_accounts=pl.Series(["A1"]))
        assert "risk_flags" in store.schema_drift(con)  # rolled back: nothing half-migrated


def test_history_tables_gain_new_columns_and_keep_their_rows(tmp_path):
    db = _older_database(tmp_path)
    con = duckdb.connect(str(db))
    con.execute(
        "INSERT INTO pipeline_runs (run_id, started_at, status, mode, as_of_on, parameters_json, counts_json, "
        "stage_seconds_json, stage_peak_rss_mb_json, versions_json, config_sha256) "
        "VALUES ('r1', TIMESTAMP '2026-01-01', 'published', 'full', DATE '2026-01-01', "
        "'{}', '{}', '{}', '{}', '{}', 'x')"
    )
    con.close()
    with store.writer(db) as con:
        store.publish(con, {"risk_flags": RISK_FLAGS.empty()}, affected_accounts=None)
        assert con.execute("SELECT run_id, message FROM pipeline_runs").fetchall() == [("r1", None)]


def test_a_changed_schema_changes_the_config_fingerprint(monkeypatch):
    """So that the first run of a version with other columns is a full rebuild (which may migrate)."""
    from liushui import contracts
    from liushui.config import DEFAULT_RULES_PATH, config_fingerprint

    before = config_fingerprint(DEFAULT_RULES_PATH, None)
    monkeypatch.setattr(contracts, "PUBLISHED_TABLES", contracts.PUBLISHED_TABLES[:-1])
    assert config_fingerprint(DEFAULT_RULES_PATH, None) != before
