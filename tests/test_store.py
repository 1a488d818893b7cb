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
from liushui.contracts import QUARANTINE


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
