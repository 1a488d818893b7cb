"""The command line, as a user runs it: exit codes and messages, never a traceback."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apps.cli import app

runner = CliRunner(env={"COLUMNS": "250"})


@pytest.fixture(scope="module")
def published(prefect_harness, sample_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("cli")
    shutil.copytree(sample_dir / "inbox", work / "inbox")
    db = work / "w.duckdb"
    result = runner.invoke(
        app, ["run", "--inbox", str(work / "inbox"), "--db", str(db), "--reference", str(sample_dir / "reference")]
    )
    assert result.exit_code == 0, result.output
    assert "published full run" in result.output and "risk_flags" in result.output
    return db


def test_flags_summary_lists_codes(published):
    result = runner.invoke(app, ["flags", "--db", str(published)])
    assert result.exit_code == 0
    for code in ("INCOME_VOLATILE", "LARGE_OUTFLOW", "ROUND_TRIP"):
        assert code in result.output


def test_flags_of_one_code(published):
    result = runner.invoke(app, ["flags", "--db", str(published), "--code", "ROUND_TRIP", "--limit", "3"])
    assert result.exit_code == 0 and "round_trips_per_month" in result.output


def test_account_view_shows_months_and_flags(published, sample_dir):
    import polars as pl

    labels = pl.read_csv(sample_dir / "labels.csv", infer_schema=False)
    account = labels.filter(pl.col("behaviour") == "round_trip")["account_id"][0]
    result = runner.invoke(app, ["account", account, "--db", str(published)], terminal_width=200)
    assert result.exit_code == 0
    assert "months" in result.output and "ROUND_TRIP" in result.output
    assert "recovery" in result.output and "Stop moving money out and back" in result.output


def test_worklist_and_flags_name_the_same_whole_account_ids(published):
    """On the sample: the accounts with ROUND_TRIP active are exactly those whose ROUND_TRIP flags are marked
    active, and a pipe shows every id whole (one line per flag, the id its first word)."""
    import io

    import polars as pl

    worklist = runner.invoke(app, ["accounts", "--code", "ROUND_TRIP", "--format", "csv", "--db", str(published)])
    assert worklist.exit_code == 0, worklist.output
    active_code = set(pl.read_csv(io.StringIO(worklist.stdout), infer_schema=False)["account_id"])
    flagged = runner.invoke(app, ["flags", "--code", "ROUND_TRIP", "--limit", "10000", "--db", str(published)])
    lines = [line.split() for line in flagged.stdout.splitlines()[1:]]
    assert active_code and {words[0] for words in lines if words[1] == "active"} == active_code
    assert all(words[2] == "ROUND_TRIP" and words[3] == "刷流水" for words in lines)


def test_a_query_over_every_transaction_shows_its_first_rows_at_once(published):
    result = runner.invoke(app, ["query", "SELECT * FROM transactions", "--db", str(published)])
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 101 and "the first 100 rows" in result.stderr


def test_unknown_account_is_a_clear_error(published):
    result = runner.invoke(app, ["account", "nope", "--db", str(published)])
    assert result.exit_code == 1 and "no account 'nope'" in result.output


def test_query_is_read_only(published):
    ok = runner.invoke(app, ["query", "SELECT count(*) AS n FROM risk_flags", "--db", str(published)])
    assert ok.exit_code == 0
    denied = runner.invoke(app, ["query", "DELETE FROM risk_flags", "--db", str(published)])
    assert denied.exit_code == 1 and "read-only" in denied.output


def test_missing_inbox_and_database_are_clear_errors(tmp_path):
    result = runner.invoke(app, ["run", "--inbox", str(tmp_path / "nope"), "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 1 and "does not exist" in result.output
    result = runner.invoke(app, ["flags", "--db", str(tmp_path / "none.duckdb")])
    assert result.exit_code == 1 and "run `liushui run` first" in result.output


def test_rejected_file_sets_the_exit_code(prefect_harness, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "junk.csv").write_bytes(bytes(range(256)) * 8)
    result = runner.invoke(app, ["run", "--inbox", str(inbox), "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 3
    assert "junk.csv: binary content" in result.output
    assert "nothing loaded from 1 file(s)" in " ".join(result.output.split())  # however the console wraps


CANONICAL_HEADER = (
    "account_id,booked_at,amount,currency,balance_after,counterparty_name,counterparty_account,description\n"
)


def test_a_file_whose_every_row_is_quarantined_exits_3_and_is_named(prefect_harness, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "good.csv").write_text(CANONICAL_HEADER + "A1,2026-03-01 10:00:00,100.00,CNY,,x,,工资\n", encoding="utf-8")
    (inbox / "bad.csv").write_text(
        CANONICAL_HEADER + "A1,not-a-date,1.00,CNY,,,,\nA1,2026-03-02,abc,CNY,,,,\n", encoding="utf-8"
    )
    db = tmp_path / "w.duckdb"
    result = runner.invoke(app, ["run", "--inbox", str(inbox), "--db", str(db)])
    assert result.exit_code == 3, result.output
    assert "bad.csv: all 2 row(s) quarantined" in result.output
    assert "good.csv" not in result.output.split("loaded nothing:")[-1].split("\n")[0]
    statuses = runner.invoke(
        app, ["query", "SELECT file_name, status, rows_ok FROM source_files ORDER BY 1", "--db", str(db)]
    )
    assert "bad.csv" in statuses.output and "quarantined" in statuses.output


def test_some_rows_quarantined_exits_4(prefect_harness, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "mixed.csv").write_text(
        CANONICAL_HEADER + "A1,2026-03-01 10:00:00,100.00,CNY,,x,,工资\nA1,not-a-date,1.00,CNY,,,,\n", encoding="utf-8"
    )
    result = runner.invoke(app, ["run", "--inbox", str(inbox), "--db", str(tmp_path / "w.duckdb")])
    assert result.exit_code == 4, result.output
    assert "1 quarantined" in result.output and "loaded nothing" not in result.output


def test_an_inbox_holding_only_a_workbook_is_not_a_success(prefect_harness, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "bill.xlsx").write_bytes(b"PK\x03\x04" + bytes(200))
    db = tmp_path / "w.duckdb"
    result = runner.invoke(app, ["run", "--inbox", str(inbox), "--db", str(db)])
    assert result.exit_code == 3, result.output
    assert "bill.xlsx: binary content (a ZIP archive, e.g. an .xlsx workbook" in result.output
    rows = runner.invoke(app, ["query", "SELECT file_name || ':' || status FROM source_files", "--db", str(db)])
    assert "bill.xlsx:rejected" in rows.output


@pytest.mark.parametrize(
    ("files_loading_nothing", "rows_quarantined", "code"),
    [([], 0, 0), ([], 2, 4), (["a.csv: all 2 row(s) quarantined"], 2, 3), (["b.xlsx: binary"], 0, 3)],
)
def test_run_exit_code(files_loading_nothing, rows_quarantined, code):
    from apps.cli import run_exit_code

    assert run_exit_code(files_loading_nothing, rows_quarantined) == code


def test_backfill_of_a_missing_inbox_fails_like_run(tmp_path):
    db = tmp_path / "w.duckdb"
    result = runner.invoke(
        app,
        [
            "backfill",
            "--start",
            "2026-01-01",
            "--end",
            "2026-02-01",
            "--inbox",
            str(tmp_path / "nope"),
            "--db",
            str(db),
        ],
    )
    assert result.exit_code == 1 and "inbox folder" in result.output and "does not exist" in result.output
    assert not db.exists()


def test_usage_errors_have_their_own_exit_code(tmp_path):
    result = runner.invoke(app, ["run", "--no-such-option"])
    assert result.exit_code == 2
    result = runner.invoke(app, ["run", "--inbox", str(tmp_path), "--as-of", "yesterday"])
    assert result.exit_code == 1 and "--as-of" in result.output


def test_a_misspelt_weight_code_is_refused_before_anything_runs(prefect_harness, tmp_path):
    from liushui.config import DEFAULT_RULES_PATH

    rules = tmp_path / "rules.yaml"
    rules.write_text(
        DEFAULT_RULES_PATH.read_text(encoding="utf-8").replace(
            "    LARGE_OUTFLOW: 8\n", "    LARGE_OUTFLOW: 8\n    LARGE_OUTFLOWS: 5\n", 1
        ),
        encoding="utf-8",
    )
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    db = tmp_path / "w.duckdb"
    result = runner.invoke(app, ["run", "--inbox", str(inbox), "--db", str(db), "--rules", str(rules)])
    assert result.exit_code == 1, result.output
    assert "account_risk.weights names unknown flag code(s) ['LARGE_OUTFLOWS']" in result.output
    assert not db.exists()


def test_an_unforeseen_failure_is_one_clear_line_and_its_traceback_goes_to_a_file(tmp_path):
    """A failure nobody foresaw (here the database's folder is a file, as a full disk or an I/O error would fail
    a write): exit 1 with what failed and that nothing was published, no traceback on the terminal; the
    traceback is in a file (beside the database when it can be written there, else the temporary folder)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_text(
        "account_id,booked_at,amount,currency\nA1,2026-03-01 10:00:00,8000.00,CNY\n", encoding="utf-8"
    )
    not_a_folder = tmp_path / "warehouse"
    not_a_folder.write_text("a file where the database's folder should be", encoding="utf-8")
    result = runner.invoke(app, ["run", "--inbox", str(inbox), "--db", str(not_a_folder / "w.duckdb")])
    text = " ".join(result.output.split())
    assert result.exit_code == 1, result.output
    # the folder's creation fails: FileExistsError (or NotADirectoryError, by where it fails first)
    assert re.search(r"error: the run failed: (FileExistsError|NotADirectoryError): \[Errno \d+\]", text), text
    assert "Nothing was published; the previous state is kept." in text
    assert "Traceback" not in result.output
    log = Path(tempfile.gettempdir()) / "liushui-w.last-error.log"
    assert f"The traceback is in {log}." in text
    assert log.read_text(encoding="utf-8").startswith("Traceback (most recent call last):")
