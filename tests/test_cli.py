"""The command line, as a user runs it: exit codes and messages, never a traceback."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from liushui.cli import app

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
