"""Readers and the writer never get in each other's way; readers meant for users reach nothing but the data.

The file at the public path is the current version of the database, a second name of a file in `.versions/`
(`store.writer` publishes into a copy and renames a new name of it over the public path). Real DuckDB files
and real reader processes throughout: a poller through several publishes, a reader held open through
publishes (as a dashboard or an analyst's DuckDB keeps one), a plain file written by an older liushui, a
writer killed before its switch, and the statements a locked-down reader refuses.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from liushui import store
from liushui.contracts import ACCOUNT_MONTHS, TRANSACTIONS
from tests.test_publish_delta import OCT, frame, month, txn

PROJECT_ROOT = Path(__file__).resolve().parents[1]
WAIT_S = 120  # liveness guard for a child process on a loaded machine, never a measured duration


def state_frames(rows: int) -> dict[str, pl.DataFrame]:
    """Published state number `rows`: `rows` transactions of 1.01 each and as many account months, written
    by one full publish, so a whole state has equal counts and a sum of exactly rows x 1.01."""
    accounts = [f"A{i}" for i in range(rows)]
    return {
        "transactions": frame(TRANSACTIONS, [txn(f"{a}-1", a, "1.01") for a in accounts]),
        "account_months": frame(ACCOUNT_MONTHS, [month(a, OCT, "1.01") for a in accounts]),
    }


def publish_state(db: Path, rows: int) -> None:
    with store.writer(db) as con:
        store.publish(con, state_frames(rows), affected_accounts=None)


STATE_SQL = "SELECT (SELECT count(*) FROM transactions), (SELECT count(*) FROM account_months), "
STATE_SQL += "(SELECT sum(amount) FROM transactions)"


def read_state(con: duckdb.DuckDBPyConnection) -> tuple[int, int, Decimal | None]:
    row = con.execute(STATE_SQL).fetchone()
    assert row is not None
    return row[0], row[1], row[2]


def version_numbers(db: Path) -> list[int]:
    return sorted(store._versions(db))


class Child:
    """A Python child process whose stdout lines are collected as they come."""

    def __init__(self, code: str, *args: object) -> None:
        self.popen = subprocess.Popen(
            [sys.executable, "-c", code, *map(str, args)],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self._cond = threading.Condition()
        self._pump = threading.Thread(target=self._read, daemon=True)
        self._pump.start()

    def _read(self) -> None:
        assert self.popen.stdout is not None
        for line in self.popen.stdout:
            with self._cond:
                self.lines.append(line.rstrip("\n"))
                self._cond.notify_all()

    def wait_lines(self, count: int) -> list[str]:
        """The first `count` lines, waiting for them (the child failing to print them fails the test)."""
        deadline = time.monotonic() + WAIT_S
        with self._cond:
            while len(self.lines) < count:
                assert self.popen.poll() is None or self._pump.is_alive(), self.report()
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"the child printed {len(self.lines)} of {count} lines:\n{self.report()}"
                self._cond.wait(min(remaining, 0.5))
            return list(self.lines[:count])

    def send(self, line: str) -> None:
        assert self.popen.stdin is not None
        self.popen.stdin.write(line + "\n")
        self.popen.stdin.flush()

    def finish(self) -> int:
        code = self.popen.wait(WAIT_S)
        self._pump.join(WAIT_S)
        return code

    def report(self) -> str:
        stderr = self.popen.stderr.read() if self.popen.poll() is not None and self.popen.stderr else ""
        return "\n".join(self.lines) + "\n--- stderr\n" + stderr

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(WAIT_S)


# Opens, reads the state and closes, again and again, until the stop file appears; prints each state or error.
POLLER = f"""
import sys
from pathlib import Path
from liushui import store
db, stop = Path(sys.argv[1]), Path(sys.argv[2])
while not stop.exists():
    try:
        con = store.reader(db)
        try:
            row = con.execute({STATE_SQL!r}).fetchone()
        finally:
            con.close()
        print("state", row[0], row[1], row[2], flush=True)
    except Exception as exc:
        print("error", type(exc).__name__, str(exc).replace(chr(10), " "), flush=True)
"""


def test_readers_polling_through_publishes_see_only_whole_states_and_never_an_error(tmp_path):
    db, stop = tmp_path / "w.duckdb", tmp_path / "stop"
    publish_state(db, 0)
    poller = Child(POLLER, db, stop)
    try:
        poller.wait_lines(1)
        for rows in range(1, 6):
            with store.writer(db) as con:
                # The writer has its connection open: the poller goes on opening and reading meanwhile.
                poller.wait_lines(len(poller.lines) + 3)
                store.publish(con, state_frames(rows), affected_accounts=None)
                poller.wait_lines(len(poller.lines) + 3)
        # the poller reaches the last state
        while not (poller.lines and poller.lines[-1] == "state 5 5 5.05"):
            poller.wait_lines(len(poller.lines) + 1)
    finally:
        stop.touch()
        poller.finish()
        poller.kill()
    errors = [line for line in poller.lines if not line.startswith("state ")]
    assert errors == []
    whole = {f"state {n} {n} {Decimal('1.01') * n if n else None}" for n in range(6)}
    assert set(poller.lines) <= whole
    seen = [int(line.split()[1]) for line in poller.lines]
    assert seen == sorted(seen) and set(seen) == {0, 1, 2, 3, 4, 5}  # every state, never back to an older one


# Holds one connection (liushui's reader, or DuckDB's own read-only open of the public path, as an analyst's
# tool does) and reads the state through it whenever a line arrives on stdin.
HOLDER = f"""
import sys
from pathlib import Path
import duckdb
from liushui import store
db, how = Path(sys.argv[1]), sys.argv[2]
con = store.reader(db) if how == "store.reader" else duckdb.connect(str(db), read_only=True)
for _ in iter(lambda: sys.stdin.readline() or None, None):
    row = con.execute({STATE_SQL!r}).fetchone()
    print("state", row[0], row[1], row[2], flush=True)
con.close()
"""


@pytest.mark.parametrize("how", ["store.reader", "duckdb.connect"])
def test_a_reader_held_open_through_publishes_keeps_its_state_and_holds_up_no_publish(tmp_path, how):
    db = tmp_path / "w.duckdb"
    publish_state(db, 2)
    held_version = store._versions(db)[1]
    holder = Child(HOLDER, db, how)
    try:
        holder.send("read")
        assert holder.wait_lines(1) == ["state 2 2 2.02"]
        for rows in (3, 4, 5):
            publish_state(db, rows)
            assert holder.popen.poll() is None  # each publish completed with the reader still open
        assert not held_version.exists()  # two publishes later its version is removed from the folder ...
        holder.send("read")
        assert holder.wait_lines(2)[1] == "state 2 2 2.02"  # ... and the held connection still reads it whole
        con = store.reader(db)
        try:
            assert read_state(con) == (5, 5, Decimal("5.05"))  # a new reader sees the last publish
        finally:
            con.close()
    finally:
        assert holder.popen.stdin is not None
        holder.popen.stdin.close()
        code = holder.finish()
        holder.kill()
    assert code == 0, holder.report()


def test_the_public_path_is_the_current_version_and_only_its_owner_can_read_it(tmp_path):
    db = tmp_path / "w.duckdb"
    publish_state(db, 1)
    publish_state(db, 2)
    current = tmp_path / ".versions" / "w.000002.duckdb"
    assert not db.is_symlink() and db.resolve() == db  # a regular file: resolving it never pins a version
    assert os.path.samefile(db, current) and db.stat().st_nlink == 2
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / ".versions").stat().st_mode) == 0o700
    assert sorted(p.name for p in tmp_path.iterdir()) == [".versions", "w.duckdb", "w.duckdb.lock"]


def test_old_versions_are_removed_keeping_the_current_one_and_the_one_before(tmp_path):
    db = tmp_path / "w.duckdb"
    for rows in range(4):
        publish_state(db, rows)
    assert version_numbers(db) == [3, 4] and store.current_version(db) == 4
    assert sorted(p.name for p in (tmp_path / ".versions").iterdir()) == ["w.000003.duckdb", "w.000004.duckdb"]


def test_a_writer_that_fails_publishes_nothing_and_leaves_no_file(tmp_path):
    db = tmp_path / "w.duckdb"
    publish_state(db, 2)
    with pytest.raises(RuntimeError, match="stop"), store.writer(db) as con:
        store.publish(con, state_frames(3), affected_accounts=None)
        raise RuntimeError("stop")
    assert version_numbers(db) == [1] and store.current_version(db) == 1
    con = store.reader(db)
    try:
        assert read_state(con) == (2, 2, Decimal("2.02"))
    finally:
        con.close()


# A writer that has written its copy and dies before the switch.
KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from liushui import store
with store.writer(Path(sys.argv[1])) as con:
    con.execute("DELETE FROM transactions")
    print("written", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_writer_killed_before_its_switch_leaves_the_old_state_and_the_next_writer_removes_its_copy(tmp_path):
    db = tmp_path / "w.duckdb"
    publish_state(db, 1)
    publish_state(db, 2)
    killed = Child(KILLED_WRITER, db)
    assert killed.wait_lines(1) == ["written"]
    assert killed.finish() == -signal.SIGKILL
    assert version_numbers(db) == [1, 2, 3] and store.current_version(db) == 2  # its copy is left
    con = store.reader(db)
    try:
        assert read_state(con) == (2, 2, Decimal("2.02"))
    finally:
        con.close()

    with store.writer(db) as con:
        assert read_state(con) == (2, 2, Decimal("2.02"))  # a copy of the current version, not of the dead one
        store.publish(con, {"account_months": state_frames(1)["account_months"]}, affected_accounts=None)
    assert version_numbers(db) == [2, 3] and store.current_version(db) == 3
    con = store.reader(db)
    try:
        assert read_state(con) == (2, 1, Decimal("2.02"))
    finally:
        con.close()


def _plain_file_of_an_older_liushui(directory: Path, rows: int) -> Path:
    """A database as a liushui before versions left it: a file at the public path and nothing else."""
    db = directory / "w.duckdb"
    publish_state(db, rows)
    for version in (directory / ".versions").iterdir():
        version.unlink()
    (directory / ".versions").rmdir()
    assert db.stat().st_nlink == 1
    return db


def test_a_plain_file_is_adopted_on_the_first_publish_and_its_readers_keep_reading(tmp_path):
    db = _plain_file_of_an_older_liushui(tmp_path, 2)
    plain_inode = db.stat().st_ino
    held = store.reader(db)  # a reader of the plain file, open through the migration
    try:
        publish_state(db, 3)
        assert read_state(held) == (2, 2, Decimal("2.02"))
    finally:
        held.close()
    assert store.current_version(db) == 2
    assert version_numbers(db) == [1, 2]
    assert store._versions(db)[1].stat().st_ino == plain_inode  # the plain file itself became version 1
    con = store.reader(db)
    try:
        assert read_state(con) == (3, 3, Decimal("3.03"))
    finally:
        con.close()


# An older liushui's writer that commits a row and is killed before its checkpoint: the row is in the log only.
KILLED_OLD_WRITER = """
import os, signal, sys
import duckdb
con = duckdb.connect(sys.argv[1])
con.execute("DELETE FROM account_months")
print("committed", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_a_plain_file_with_the_log_of_a_killed_writer_is_adopted_with_that_log(tmp_path):
    db = _plain_file_of_an_older_liushui(tmp_path, 2)
    killed = Child(KILLED_OLD_WRITER, db)
    assert killed.wait_lines(1) == ["committed"]
    assert killed.finish() == -signal.SIGKILL
    assert Path(f"{db}.wal").exists()
    with store.writer(db) as con:
        assert read_state(con) == (2, 0, Decimal("2.02"))  # the committed delete, replayed from the log
    assert not list(tmp_path.glob("**/*.wal"))
    con = store.reader(db)
    try:
        assert read_state(con) == (2, 0, Decimal("2.02"))
    finally:
        con.close()


def test_schema_migration_still_runs_in_the_copy(tmp_path):
    db = tmp_path / "w.duckdb"
    publish_state(db, 1)
    with store.writer(db) as con:
        con.execute("ALTER TABLE pipeline_runs DROP COLUMN message")  # as an older liushui wrote it
    con = store.reader(db)
    try:
        assert store.schema_drift(con) == {"pipeline_runs": (["message"], [])}
    finally:
        con.close()
    with store.writer(db) as con:
        store.publish(con, state_frames(2), affected_accounts=None)
    con = store.reader(db)
    try:
        assert store.schema_drift(con) == {}
        assert read_state(con) == (2, 2, Decimal("2.02"))
    finally:
        con.close()


# --- readers meant for users: the data, nothing else --------------------------------------------------------

REFUSED = [
    pytest.param("COPY transactions TO '{out}'", "file system operations are disabled", id="copy-to"),
    pytest.param("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled", id="read-csv"),
    pytest.param("SELECT * FROM read_parquet('{out}')", "file system operations are disabled", id="read-parquet"),
    pytest.param("ATTACH '{out}' AS other", "file system operations are disabled", id="attach"),
    pytest.param("INSTALL httpfs", "file system operations are disabled", id="install"),
    pytest.param("LOAD httpfs", "Loading external extensions is disabled", id="load"),
    pytest.param("SET memory_limit = '64GB'", "the configuration has been locked", id="set"),
    pytest.param("SET enable_external_access = true", "the configuration has been locked", id="set-access"),
    pytest.param("RESET lock_configuration", "the configuration has been locked", id="reset-lock"),
    pytest.param("PRAGMA threads = 64", "the configuration has been locked", id="pragma"),
]


@pytest.mark.parametrize(("sql", "message"), REFUSED)
def test_a_user_s_reader_refuses(tmp_path, sql, message):
    db = tmp_path / "w.duckdb"
    publish_state(db, 1)
    out = tmp_path / "out.parquet"
    con = store.reader(db)
    try:
        with pytest.raises(duckdb.Error, match=message):
            con.execute(sql.format(out=out))
        assert read_state(con) == (1, 1, Decimal("1.01"))  # the connection still reads
        assert con.execute("SELECT count(*) FROM v_risk_bands").fetchone() == (0,)  # views included
    finally:
        con.close()
    assert not out.exists()


def test_a_user_s_reader_cannot_scan_python_objects_and_the_run_s_reader_may(tmp_path):
    db = tmp_path / "w.duckdb"
    publish_state(db, 2)
    probe = pl.Series(["A0-1", "B-9"])
    user = store.reader(db)
    try:
        with pytest.raises(duckdb.Error, match="file system operations are disabled"):
            store.export_history(user, None, tmp_path / "user.parquet")
        with pytest.raises(duckdb.CatalogException, match="probe"):
            store.known_txn_ids(user, probe)
    finally:
        user.close()
    run = store.reader(db, memory_limit=store.RUN_READER_MEMORY_LIMIT, file_access=True)
    try:
        assert store.export_history(run, None, tmp_path / "run.parquet") == 2
        assert store.known_txn_ids(run, probe).to_list() == [True, False]
    finally:
        run.close()
    assert not (tmp_path / "user.parquet").exists()
