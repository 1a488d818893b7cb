"""A night with nothing to do is answered without Prefect (flows/noop.py), and only such a night."""

from __future__ import annotations

import json
import os
import shutil
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from apps.cli import app
from flows.noop import quiet_night
from liushui.config import Settings
from liushui.file_hashes import SETTLE_NS, file_sha256

runner = CliRunner()

CANONICAL = (
    "account_id,booked_at,amount,currency,balance_after,counterparty_name,counterparty_account,description\n"
    "A1,2026-03-01 10:00:00,8000.00,CNY,,某某科技有限公司,,工资\n"
    "A1,2026-03-05 10:00:00,-120.00,CNY,,超市,,消费\n"
)


def _runs(db: Path) -> list[tuple[str, str, list[str]]]:
    """(status, mode, stage names) of every run, oldest first."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("SELECT status, mode, stage_seconds_json FROM pipeline_runs ORDER BY started_at").fetchall()
    return [(status, mode, list(json.loads(stages))) for status, mode, stages in rows]


@pytest.fixture()
def published(prefect_harness, tmp_path: Path) -> Settings:
    """A database published once from a one-file inbox (through the flow)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_text(CANONICAL, encoding="utf-8")
    db = tmp_path / "warehouse" / "w.duckdb"
    result = runner.invoke(app, ["run", "--inbox", str(inbox), "--db", str(db)])
    assert result.exit_code == 0, result.output
    return Settings(inbox=inbox, database=db)


def test_a_night_of_known_files_is_recorded_without_the_flow(published: Settings) -> None:
    result = runner.invoke(app, ["run", "--inbox", str(published.inbox), "--db", str(published.database)])
    assert result.exit_code == 0, result.output
    closing = " ".join(result.output.split())  # the terminal console may wrap the line
    assert "nothing_new incremental run as of 2026-03-05: 0 new file(s) (0 rejected, 1 already known)" in closing
    runs = _runs(published.database)
    assert [r[:2] for r in runs] == [("published", "full"), ("nothing_new", "incremental")]
    assert runs[1][2] == ["check_inbox"]  # the quiet path: no ingest, no validation, no Prefect flow run
    assert "validate_raw" in runs[0][2]


def test_a_renamed_known_file_is_still_known(published: Settings) -> None:
    """Edge: a file is known by its content, as the flow knows it."""
    (published.inbox / "a.csv").rename(published.inbox / "renamed.csv")
    assert quiet_night(published) is not None


@pytest.mark.parametrize(
    "change",
    ["new file", "changed file", "rules", "full rebuild", "as-of", "leftover staging"],
)
def test_any_reason_for_work_takes_the_flow(published: Settings, tmp_path: Path, change: str) -> None:
    settings = published
    assert quiet_night(settings) is not None
    if change == "new file":
        (settings.inbox / "b.csv").write_text(CANONICAL.replace("A1,", "B1,"), encoding="utf-8")
    elif change == "changed file":
        (settings.inbox / "a.csv").write_text(CANONICAL + "A1,2026-03-06 10:00:00,-1.00,CNY,,x,,y\n")
    elif change == "rules":
        rules = tmp_path / "rules.yaml"
        shutil.copy(settings.rules_path, rules)
        rules.write_text(rules.read_text(encoding="utf-8") + "\n# a comment changes the fingerprint\n")
        settings = settings.model_copy(update={"rules_path": rules})
    elif change == "full rebuild":
        settings = settings.model_copy(update={"full_rebuild": True})
    elif change == "as-of":
        settings = settings.model_copy(update={"as_of": date(2026, 3, 5)})  # even the date it would judge at
    else:
        (settings.staging_dir / "20260101T000000-deadbeef").mkdir(parents=True)
    assert quiet_night(settings) is None


def test_a_new_file_runs_the_flow_end_to_end(published: Settings) -> None:
    (published.inbox / "b.csv").write_text(CANONICAL.replace("A1,", "B1,"), encoding="utf-8")
    result = runner.invoke(app, ["run", "--inbox", str(published.inbox), "--db", str(published.database)])
    assert result.exit_code == 0, result.output
    runs = _runs(published.database)
    assert [r[:2] for r in runs] == [("published", "full"), ("published", "incremental")]
    assert "ingest" in runs[1][2]


def test_an_empty_database_is_not_quiet(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    assert quiet_night(Settings(inbox=inbox, database=tmp_path / "none.duckdb")) is None


def test_a_file_remembered_by_its_stat_and_then_changed_is_new(published: Settings) -> None:
    """The quiet path does not read a file whose stat is the one it saw, and a rewrite changes the stat even
    with the same size and a forged mtime (liushui/file_hashes.py)."""
    time.sleep(SETTLE_NS / 1e9 + 0.1)  # the file's last change settles: now it is remembered
    assert quiet_night(published) is not None
    a = published.inbox / "a.csv"
    remembered = json.loads(published.file_hashes_path.read_text(encoding="utf-8"))["files"]
    assert list(remembered) == [str(a.resolve())]
    assert remembered[str(a.resolve())]["sha256"] == file_sha256(a)
    st = a.stat()
    a.write_text(CANONICAL.replace("-120.00", "-121.00"), encoding="utf-8")
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert a.stat().st_size == st.st_size
    assert quiet_night(published) is None
