"""Crash safety and concurrency, with real `liushui run` processes.

- A run killed with SIGKILL when a stage starts leaves the previous published state intact and readable,
  the lock file it leaves behind blocks nobody, and the next run completes with the same tables as a clean
  full rebuild of the same inbox.
- A kill anywhere inside the publish transaction (before, during or after COMMIT) leaves exactly the old
  state or exactly the complete new one, never a mix.
- Two runs at once: the second waits for the first and then completes; with a short lock timeout it
  refuses with a clear message and a non-zero exit; readers during a run see the old or the new state at
  once, never an error, and never corrupt anything.

These tests start real processes and are slow. To keep them within a few minutes, the module starts one
Prefect server (`prefect server start`, its database migrated once) that the runs share through
PREFECT_API_URL; one kill test runs with Prefect's temporary per-run server instead and kills only the
main process (as the OOM killer would), leaving the server child orphaned, to show that the orphan holds
neither the run lock nor the database. See docs/crash_safety.md.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pytest

from liushui import store
from liushui.contracts import PUBLISHED_TABLES
from tests.test_flow import _extra_day, assert_same_tables, snapshot

PROJECT_ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LIUSHUI = BIN / "liushui"
PREFECT = BIN / "prefect"
RUN_SPECIFIC = ("batch_id", "seen_at")  # differ between two runs that publish the same data
TIMEOUT_S = 300  # generous: a run takes 10-30 s, more on a loaded machine
REPLACED_TABLES = [t.name for t in PUBLISHED_TABLES if t.account_scoped and not t.append_only]


# --- processes ------------------------------------------------------------------------------------------------


class Proc:
    """A subprocess in its own session (its children share its process group); stderr read line by line."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        self._stdout = log.open("w", encoding="utf-8")
        self.popen = subprocess.Popen(
            [str(a) for a in args],
            env=env,
            cwd=PROJECT_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._stdout,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._eof = False
        self._cond = threading.Condition()
        self._pump = threading.Thread(target=self._read_stderr, daemon=True)
        self._pump.start()

    def _read_stderr(self) -> None:
        with self.log.with_suffix(".stderr").open("w", encoding="utf-8") as copy:
            for line in self.popen.stderr:
                copy.write(line)
                copy.flush()
                with self._cond:
                    self.lines.append(line.rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self._eof = True
            self._cond.notify_all()

    def wait_for(self, text: str, timeout: float = TIMEOUT_S) -> bool:
        """True as soon as a stderr line contains `text`; False if the process ended without printing it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if any(text in line for line in self.lines):
                    return True
                if self._eof:
                    return False
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"no {text!r} on stderr after {timeout} s:\n{self.stderr}")
                self._cond.wait(remaining)

    def kill(self, *, group: bool = True) -> None:
        try:
            if group:
                os.killpg(self.popen.pid, signal.SIGKILL)
            else:
                os.kill(self.popen.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # already gone: the caller asserts the invariant anyway

    def finish(self, timeout: float = TIMEOUT_S) -> int:
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.popen.args} still running after {timeout} s:\n{self.stderr}") from None
        self._pump.join(2)  # EOF unless an orphaned child (a temporary Prefect server) still holds the pipe
        self._stdout.close()
        return code

    def reap_group(self) -> None:
        """End whatever is left of this process group (an orphaned temporary Prefect server)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)

    @property
    def stderr(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    @property
    def stdout(self) -> str:
        if not self._stdout.closed:
            self._stdout.flush()
        return self.log.read_text(encoding="utf-8")

    def report(self) -> str:
        return f"exit {self.popen.returncode}\n--- stdout\n{self.stdout}\n--- stderr\n{self.stderr}"


def _base_env(prefect_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(
        PREFECT_HOME=str(prefect_home),
        PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS="180",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        DO_NOT_TRACK="1",
        PYTHONUNBUFFERED="1",
    )
    return env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def prefect_envs(tmp_path_factory) -> dict[str, dict[str, str]]:
    """Environments for `liushui run`: "shared" (one Prefect server for the module) and "temporary"
    (Prefect's per-run temporary server). The Prefect database is migrated once and copied."""
    work = tmp_path_factory.mktemp("crash_prefect")
    shared_home, temporary_home = work / "shared", work / "temporary"
    shared_home.mkdir()
    temporary_home.mkdir()
    migrate = subprocess.run(
        [str(PREFECT), "server", "database", "upgrade", "-y"],
        env=_base_env(shared_home),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    shutil.copy2(shared_home / "prefect.db", temporary_home / "prefect.db")

    port = _free_port()
    server = Proc(
        [PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port), "--no-services", "--no-ui"],
        _base_env(shared_home),
        work / "server.log",
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.popen.poll() is None, f"the Prefect server stopped:\n{server.report()}"
            assert time.monotonic() < deadline, f"the Prefect server did not start:\n{server.report()}"
            time.sleep(0.5)
        yield {"shared": {**_base_env(shared_home), "PREFECT_API_URL": url}, "temporary": _base_env(temporary_home)}
    finally:
        try:
            os.killpg(server.popen.pid, signal.SIGTERM)
            server.popen.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            server.reap_group()


# --- data and reference states -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    reference: Path
    final_inbox: Path  # the first run's inbox plus one new file
    first_db: Path  # published by a first run on the inbox without the new file
    old_exact: dict[str, pl.DataFrame]  # the first run's data tables, every column
    old: dict[str, pl.DataFrame]  # the same without run-specific columns
    rebuilt_db: Path  # a clean full run on the final inbox into another database
    new: dict[str, pl.DataFrame]  # its data tables without run-specific columns
    old_runs: int  # pipeline_runs rows after the first run


def start_run(inbox: Path, db: Path, reference: Path, env: dict[str, str], log: Path, *extra: str) -> Proc:
    return Proc([LIUSHUI, "run", "--inbox", inbox, "--db", db, "--reference", reference, *extra], env, log)


@pytest.fixture(scope="module")
def baseline(prefect_envs, sample_dir, tmp_path_factory) -> Baseline:
    work = tmp_path_factory.mktemp("crash_baseline")
    reference = sample_dir / "reference"
    first_inbox, final_inbox = work / "first_inbox", work / "final_inbox"
    shutil.copytree(sample_dir / "inbox", first_inbox)
    shutil.copytree(sample_dir / "inbox", final_inbox)
    (final_inbox / "next_day.csv").write_text(_extra_day(sample_dir), encoding="utf-8")
    first_db, rebuilt_db = work / "first.duckdb", work / "rebuilt.duckdb"
    env = prefect_envs["shared"]
    runs = [
        start_run(first_inbox, first_db, reference, env, work / "first.log"),
        start_run(final_inbox, rebuilt_db, reference, env, work / "rebuilt.log"),
    ]
    for proc in runs:
        assert proc.finish() == 0, proc.report()
    return Baseline(
        reference=reference,
        final_inbox=final_inbox,
        first_db=first_db,
        old_exact=snapshot(first_db),
        old=snapshot(first_db, drop=RUN_SPECIFIC),
        rebuilt_db=rebuilt_db,
        new=snapshot(rebuilt_db, drop=RUN_SPECIFIC),
        old_runs=len(_run_statuses(first_db)),
    )


def copy_db(source: Path, target: Path) -> Path:
    shutil.copy2(source, target)
    assert not Path(f"{source}.wal").exists()  # closed cleanly: the file alone is the whole state
    return target


def count_rows(db: Path, sql: str) -> list[tuple]:
    con = store.reader(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _run_statuses(db: Path) -> list[str]:
    con = store.reader(db)
    try:
        return [r[0] for r in con.sql("SELECT status FROM pipeline_runs ORDER BY started_at").fetchall()]
    finally:
        con.close()


def read_everything(db: Path) -> None:
    """Open read-only and read every table and view in full (DuckDB verifies block checksums on read)."""
    con = store.reader(db)
    try:
        names = [
            r[0]
            for r in con.sql(
                "SELECT table_name FROM duckdb_tables() WHERE NOT internal UNION ALL "
                "SELECT view_name FROM duckdb_views() WHERE NOT internal"
            ).fetchall()
        ]
        assert {t.name for t in PUBLISHED_TABLES} <= set(names)
        for name in names:
            con.sql(f'SELECT * FROM "{name}"').to_arrow_table()
    finally:
        con.close()


def _same(left: dict[str, pl.DataFrame], right: dict[str, pl.DataFrame]) -> bool:
    try:
        assert_same_tables(left, right)
    except AssertionError:
        return False
    return True


def which_state(tables: dict[str, pl.DataFrame], old: dict[str, pl.DataFrame], new: dict[str, pl.DataFrame]) -> str:
    """ "old" or "new"; fails on anything else (a mix of the two, a partial publish, lost rows)."""
    if _same(tables, old):
        return "old"
    if _same(tables, new):
        return "new"
    as_old = [n for n in tables if tables[n].equals(old[n])]
    as_new = [n for n in tables if tables[n].equals(new[n])]
    raise AssertionError(f"neither the old nor the new state: tables as old {as_old}, as new {as_new}")


# --- kill a run at each stage --------------------------------------------------------------------------------

KILL_POINTS = [
    # (stderr line to kill at, process to kill, Prefect server, states allowed right after the kill)
    pytest.param("liushui: ingest ...", "main", "temporary", {"old"}, id="ingest-main-only-temporary-server"),
    pytest.param("liushui: derive_signals ...", "group", "shared", {"old"}, id="derive_signals"),
    pytest.param("liushui: validate_out ...", "group", "shared", {"old"}, id="validate_out"),
    pytest.param("liushui: publish ...", "group", "shared", {"old", "new"}, id="publish-start"),
]


@pytest.mark.parametrize(("marker", "target", "server", "allowed"), KILL_POINTS)
def test_sigkill_at_a_stage_keeps_the_previous_state_and_the_next_run_completes(
    baseline, prefect_envs, tmp_path, marker, target, server, allowed
):
    db = copy_db(baseline.first_db, tmp_path / "w.duckdb")
    killed = start_run(baseline.final_inbox, db, baseline.reference, prefect_envs[server], tmp_path / "killed.log")
    try:
        seen = killed.wait_for(marker)
        killed.kill(group=target == "group")
        code = killed.finish()
        assert seen or code == 0, f"the run ended before {marker!r}:\n{killed.report()}"
        landed = code == -signal.SIGKILL
        print(f"kill at {marker!r}: {'landed' if landed else 'the run had already finished'}")

        # readable, not corrupted, and exactly the old or the new state
        read_everything(db)
        state = which_state(snapshot(db, drop=RUN_SPECIFIC), baseline.old, baseline.new)
        assert state in allowed, f"state {state!r} after a kill at {marker!r}"
        runs = _run_statuses(db)
        if state == "old":
            assert_same_tables(snapshot(db), baseline.old_exact)  # not a single value changed
            assert len(runs) == baseline.old_runs  # the killed run left no trace
        else:
            assert runs[-1] == "published" and len(runs) == baseline.old_runs + 1

        # the lock file left behind blocks nobody: the OS released the lock with the process
        # (with the main process only killed, its orphaned Prefect server is still around here)
        if landed:
            assert Path(f"{db}.lock").exists()
        with store.run_lock(db, timeout_s=0):
            pass

        rerun = start_run(baseline.final_inbox, db, baseline.reference, prefect_envs["shared"], tmp_path / "rerun.log")
        assert rerun.finish() == 0, rerun.report()
    finally:
        killed.reap_group()
    assert "waiting" not in rerun.stderr, rerun.report()
    read_everything(db)
    assert_same_tables(snapshot(db, drop=RUN_SPECIFIC), baseline.new)
    # the rerun records the killed run (unless it had committed its own row) with the start time it had
    expected = ["published"] if state == "old" else ["published", "nothing_new"]
    if landed and state == "old":
        expected = ["crashed", "published"]
    assert _run_statuses(db)[baseline.old_runs :] == expected
    if landed and state == "old":
        crashed = count_rows(db, "SELECT message FROM pipeline_runs WHERE status = 'crashed'")
        assert len(crashed) == 1 and "killed or crashed before it published" in crashed[0][0]
    assert not list((db.parent / "staging").glob("*/*")), "the dead run's staging folder is left"


# --- kill inside the publish transaction ---------------------------------------------------------------------

# Replaces the account-scoped tables of `target` with those of `source` exactly as a full rebuild's publish
# does (run lock, writer, `store.publish` inserting from staged Parquet files), printing when the transaction
# starts and how long it took.
PUBLISH_CHILD = """
import sys, time
from pathlib import Path
from liushui import store
source, target, tables = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3].split(",")
staged = {name: target.with_name(f"{target.stem}_{name}.parquet") for name in tables}
con = store.reader(source, file_access=True)
for name, path in staged.items():
    con.sql(f'SELECT * FROM "{name}"').write_parquet(str(path))
con.close()
with store.run_lock(target, timeout_s=60), store.writer(target) as con:
    print("begin", flush=True)
    started = time.perf_counter()
    store.publish(con, staged, affected_accounts=None)
    print(f"committed {time.perf_counter() - started:.3f}", flush=True)
print("closed", flush=True)
"""


def _publish_child(source: Path, target: Path, log: Path) -> Proc:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return Proc([sys.executable, "-c", PUBLISH_CHILD, source, target, ",".join(REPLACED_TABLES)], env, log)


def _wait_stdout(proc: Proc, text: str, timeout: float = 120) -> bool:
    """Poll a child's stdout (its log file) for `text`; False if it ended without printing it."""
    deadline = time.monotonic() + timeout
    while text not in proc.stdout:
        if proc.popen.poll() is not None:
            return text in proc.stdout
        assert time.monotonic() < deadline, proc.report()
        time.sleep(0.005)
    return True


def test_sigkill_anywhere_in_the_publish_transaction_leaves_old_or_new_never_a_mix(baseline, tmp_path):
    source = copy_db(baseline.rebuilt_db, tmp_path / "source.duckdb")
    old = baseline.old
    new = {**old, **{name: baseline.new[name] for name in REPLACED_TABLES}}

    # an uninterrupted publish: how long it takes, and that it gives the new state
    db = copy_db(baseline.first_db, tmp_path / "measure.duckdb")
    child = _publish_child(source, db, tmp_path / "measure.log")
    assert child.finish() == 0, child.report()
    duration = float(child.stdout.split("committed ")[1].split()[0])
    assert which_state(snapshot(db, drop=RUN_SPECIFIC), old, new) == "new"

    outcomes = []
    for i, fraction in enumerate((0.0, 0.25, 0.5, 0.75, 1.0, 1.5)):
        db = copy_db(baseline.first_db, tmp_path / f"kill{i}.duckdb")
        child = _publish_child(source, db, tmp_path / f"kill{i}.log")
        try:
            assert _wait_stdout(child, "begin"), child.report()
            time.sleep(duration * fraction)
            child.kill()
            code = child.finish()
        finally:
            child.reap_group()
        read_everything(db)
        state = which_state(snapshot(db, drop=RUN_SPECIFIC), old, new)
        outcomes.append(
            (fraction, "killed" if code == -signal.SIGKILL else "finished", Path(f"{db}.wal").exists(), state)
        )
        if state == "old":
            assert_same_tables(snapshot(db), baseline.old_exact)
        # the next writer is not blocked and completes the publish
        again = _publish_child(source, db, tmp_path / f"again{i}.log")
        assert again.finish() == 0, again.report()
        read_everything(db)
        assert which_state(snapshot(db, drop=RUN_SPECIFIC), old, new) == "new"
    print(f"publish of {duration:.3f} s; (fraction, process, wal left, state): {outcomes}")


# --- runs at once, readers during a run ----------------------------------------------------------------------


def test_two_runs_at_once_one_waits_and_readers_see_old_or_new(baseline, prefect_envs, tmp_path):
    db = copy_db(baseline.first_db, tmp_path / "w.duckdb")
    env = prefect_envs["shared"]
    runs = [start_run(baseline.final_inbox, db, baseline.reference, env, tmp_path / f"run{i}.log") for i in range(2)]
    done = threading.Event()
    seen: list[str] = []
    cli_results: list[tuple[int, str]] = []
    errors: list[BaseException] = []

    def read_in_process() -> None:
        """Snapshots while the runs go on, each the old or the new state: a publish never makes a reader
        wait or fail (any error ends the test)."""
        while not done.is_set():
            seen.append(which_state(snapshot(db, drop=RUN_SPECIFIC), baseline.old, baseline.new))

    def read_with_cli() -> None:
        while not done.is_set():
            result = subprocess.run(
                [str(LIUSHUI), "flags", "--db", str(db)],
                env=env,
                cwd=PROJECT_ROOT,
                capture_output=True,
                text=True,
                timeout=TIMEOUT_S,
            )
            cli_results.append((result.returncode, result.stdout + result.stderr))

    def recording(target):
        def body() -> None:
            try:
                target()
            except BaseException as exc:  # noqa: BLE001 (re-raised by the test below)
                errors.append(exc)

        return body

    readers = [threading.Thread(target=recording(read_in_process)), threading.Thread(target=recording(read_with_cli))]
    for reader in readers:
        reader.start()
    try:
        codes = [run.finish() for run in runs]
    finally:
        done.set()
        for reader in readers:
            reader.join(TIMEOUT_S)
        for run in runs:
            run.reap_group()
    if errors:
        raise errors[0]
    assert codes == [0, 0], "\n\n".join(run.report() for run in runs)
    waited = [run for run in runs if "another run is using" in run.stderr and "waiting" in run.stderr]
    assert len(waited) == 1, "\n\n".join(run.report() for run in runs)
    assert _run_statuses(db)[baseline.old_runs :] == ["published", "nothing_new"]
    read_everything(db)
    assert_same_tables(snapshot(db, drop=RUN_SPECIFIC), baseline.new)

    print(
        f"in-process reads: {len(seen)} ({seen.count('old')} old, {seen.count('new')} new); "
        f"CLI reads: {[code for code, _ in cli_results]}"
    )
    assert seen and seen == sorted(seen, key=["old", "new"].index)  # never back to old once new was seen
    assert cli_results
    for code, output in cli_results:
        assert code == 0 and "Traceback" not in output, output


def test_short_lock_timeout_refuses_clearly_and_changes_nothing(baseline, prefect_envs, tmp_path):
    db = copy_db(baseline.first_db, tmp_path / "w.duckdb")
    with store.run_lock(db, timeout_s=5):  # the lock every run takes, held as by a run in progress
        refused = start_run(
            baseline.final_inbox,
            db,
            baseline.reference,
            prefect_envs["shared"],
            tmp_path / "refused.log",
            "--lock-timeout",
            "2",
        )
        code = refused.finish()
    assert code == 75, refused.report()  # busy, try later: not the code of a failure
    assert "another run is using" in refused.stderr and "waiting up to 2 s" in refused.stderr
    assert "another liushui run is using" in refused.stderr and "waited 2 s" in refused.stderr
    assert "Traceback" not in refused.stderr + refused.stdout
    read_everything(db)
    assert_same_tables(snapshot(db), baseline.old_exact)
    assert len(_run_statuses(db)) == baseline.old_runs


# Writes the next version inside an open transaction that has deleted every flag, then dies before its switch.
HOLD_CHILD = """
import os, signal, sys, time
from pathlib import Path
from liushui import store
with store.writer(Path(sys.argv[1])) as con:
    con.execute("BEGIN TRANSACTION")
    con.execute("DELETE FROM risk_flags")
    print("holding", flush=True)
    sys.stdin.readline()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def test_readers_during_a_write_that_dies_read_the_old_state_at_once(baseline, prefect_envs, tmp_path):
    db = copy_db(baseline.first_db, tmp_path / "w.duckdb")
    flags = baseline.old["risk_flags"].height
    assert flags > 0
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_CHILD, str(db)],
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=PROJECT_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        # while the writer is at work: a reader that may not wait at all, and the CLI, read the old state
        assert count_rows(db, "SELECT count(*) FROM risk_flags") == [(flags,)]
        con = store.reader(db, timeout_s=0)
        con.close()
        result = subprocess.run(
            [str(LIUSHUI), "query", "SELECT count(*) AS flag_rows FROM risk_flags", "--db", str(db)],
            env=prefect_envs["shared"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
        assert holder.poll() is None  # the writer was at work through both reads
        holder.communicate("die\n", timeout=TIMEOUT_S)
        assert holder.returncode == -signal.SIGKILL
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{flags}" in result.stdout.replace(",", ""), result.stdout
    read_everything(db)
    assert_same_tables(snapshot(db), baseline.old_exact)
    # the dead writer's unfinished version is left beside the published ones; the next writer removes it
    current = store.current_version(db)
    assert current is not None and max(store._versions(db)) == current + 1
    with store.writer(db):
        pass
    assert sorted(store._versions(db)) == [current, current + 1] and store.current_version(db) == current + 1
    assert_same_tables(snapshot(db), baseline.old_exact)
