"""`liushui reingest`: one known file read again with a fixed profile replaces its rows, and the published state
is then what a fresh full build over the same inbox would publish (the real flow, Prefect's engine, DuckDB)."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from apps.cli import app
from liushui import store
from liushui.config import Settings
from tests.test_flow import assert_same_tables, snapshot

PROFILE = """\
name: demo_bank_en
description: Demo bank statement (English, Debit/Credit columns).
header_signature: [Posting Date, Details, Debit, Credit, Running Balance]
footer_patterns: ['^Closing balance']
booked_at:
  column: Posting Date
  formats: {formats}
amount:
  convention: split
  income_column: Credit
  expense_column: Debit
account_id:
  preamble_regex: 'Account number:\\s*(?P<account_id>[0-9-]+)'
columns:
  balance_after: Running Balance
description_columns: [Details]
"""
BROKEN_FORMATS = "['%d/%m/%Y']"
FIXED_FORMATS = "['%d/%m/%Y', '%d.%m.%Y']"
"""The statement writes one date as 12.03.2025: the broken profile quarantines that row, the fixed one reads it."""

HEAD = "Demo Bank plc - Statement\nAccount number: 12-34-56-7890\n\nPosting Date,Details,Debit,Credit,Running Balance\n"
STATEMENT = (
    HEAD + '01/03/2025,Salary ACME,,"8,000.00","8,000.00"\n'
    '05/03/2025,Card payment,42.10,,"7,957.90"\n'
    '12.03.2025,Rent,"3,000.00",,"4,957.90"\n'
    '01/04/2025,Salary ACME,,"8,000.00","12,957.90"\n'
    'Closing balance,,,,"12,957.90"\n'
)
EARLIER_EXPORT = HEAD + '01/03/2025,Salary ACME,,"8,000.00","8,000.00"\n05/03/2025,Card payment,42.10,,"7,957.90"\n'
"""An overlapping export of the same account, first in the inbox: its copy of two rows wins, in both builds."""
CANONICAL = (
    "account_id,booked_at,amount,currency,balance_after,counterparty_name,counterparty_account,description\n"
    "A1,2025-02-03,5000.00,CNY,5000.00,ACME,,salary\n"
    "A1,2025-03-03,5000.00,CNY,10000.00,ACME,,salary\n"
    "A1,2025-04-02,-3000.00,CNY,7000.00,Landlord,,rent\n"
)


def _workspace(tmp_path: Path) -> tuple[Path, Path]:
    inbox, profiles = tmp_path / "inbox", tmp_path / "profiles"
    inbox.mkdir()
    profiles.mkdir()
    (inbox / "a_earlier.csv").write_text(EARLIER_EXPORT, encoding="utf-8")
    (inbox / "canonical.csv").write_text(CANONICAL, encoding="utf-8")
    (inbox / "statement.csv").write_text(STATEMENT, encoding="utf-8")
    _write_profile(profiles, BROKEN_FORMATS)
    return inbox, profiles


def _write_profile(profiles: Path, formats: str) -> None:
    (profiles / "demo_bank_en.yaml").write_text(PROFILE.format(formats=formats), encoding="utf-8")


def _run(inbox: Path, db: Path, profiles: Path, **kwargs):
    from flows.nightly import nightly

    return nightly(Settings(inbox=inbox, database=db, profiles_dir=profiles, **kwargs))


def _rows(db: Path, sql: str) -> list[tuple]:
    con = store.reader(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


RUN_COLUMNS = ("batch_id", "seen_at")


def test_reingest_after_a_profile_fix_equals_a_fresh_full_build(prefect_harness, tmp_path):
    inbox, profiles = _workspace(tmp_path)
    db = tmp_path / "w.duckdb"
    _run(inbox, db, profiles)
    assert _rows(db, "SELECT source_file, source_row, reason_code FROM quarantine") == [
        ("statement.csv", 3, "bad_date")
    ]
    assert _rows(db, "SELECT status FROM source_files WHERE file_name = 'statement.csv'") == [("partial",)]

    _write_profile(profiles, FIXED_FORMATS)
    assert _run(inbox, db, profiles).status == "nothing_new"  # a plain run still skips the known file
    report = _run(inbox, db, profiles, reingest="statement.csv")
    assert (report.status, report.mode) == ("published", "reingest")

    assert _rows(db, "SELECT count(*) FROM quarantine") == [(0,)]
    assert _rows(
        db, "SELECT source_file, amount FROM transactions WHERE description = 'Rent' AND account_id <> 'A1'"
    ) == [("statement.csv", Decimal("-3000.00"))]
    assert _rows(
        db,
        "SELECT file_name, status, rows_ok, rows_duplicate, rows_rejected, batch_id FROM source_files "
        "WHERE file_name = 'statement.csv'",
    ) == [("statement.csv", "loaded", 4, 2, 0, report.run_id)]
    assert _rows(db, "SELECT mode, status FROM pipeline_runs ORDER BY started_at DESC LIMIT 1") == [
        ("reingest", "published")
    ]

    fresh = tmp_path / "fresh.duckdb"
    _run(inbox, fresh, profiles)
    assert_same_tables(snapshot(db, drop=RUN_COLUMNS), snapshot(fresh, drop=RUN_COLUMNS))

    # The next night knows the file again as read: nothing new.
    assert _run(inbox, db, profiles).status == "nothing_new"


def test_reingest_of_an_unknown_or_missing_file_changes_nothing(prefect_harness, tmp_path):
    from flows.tasks import ReingestError

    inbox, profiles = _workspace(tmp_path)
    db = tmp_path / "w.duckdb"
    _run(inbox, db, profiles)
    before = snapshot(db)
    runs = _rows(db, "SELECT count(*) FROM pipeline_runs")

    with pytest.raises(ReingestError, match="no file of that name or sha256"):
        _run(inbox, db, profiles, reingest="never_seen.csv")
    moved = tmp_path / "statement.csv"
    shutil.move(inbox / "statement.csv", moved)
    with pytest.raises(ReingestError, match=r"statement\.csv.*no longer in the inbox"):
        _run(inbox, db, profiles, reingest="statement.csv")
    # Back in the inbox but changed: not the file that was read.
    (inbox / "statement.csv").write_text(STATEMENT.replace("Rent", "Rent March"), encoding="utf-8")
    with pytest.raises(ReingestError, match=r"statement\.csv in the inbox .* has changed since it was read"):
        _run(inbox, db, profiles, reingest=str(moved))

    assert_same_tables(snapshot(db), before)
    assert _rows(db, "SELECT count(*) FROM pipeline_runs") == runs


def test_cli_reingest_exit_codes(prefect_harness, tmp_path):
    inbox, profiles = _workspace(tmp_path)
    db = tmp_path / "w.duckdb"
    _run(inbox, db, profiles)
    sha = _rows(db, "SELECT file_sha256 FROM source_files WHERE file_name = 'statement.csv'")[0][0]
    runner = CliRunner()
    args = ["--inbox", str(inbox), "--db", str(db), "--profiles", str(profiles)]

    missing = runner.invoke(app, ["reingest", "nope.csv", *args])
    assert missing.exit_code == 2, missing.output
    assert "nope.csv: no file of that name or sha256" in missing.output

    # A profile that now reads no row of the file: refused, the rows published before are kept.
    (profiles / "demo_bank_en.yaml").write_text(PROFILE.format(formats="['%Y%m%d']"), encoding="utf-8")
    before = snapshot(db)
    refused = runner.invoke(app, ["reingest", sha, *args])
    assert refused.exit_code == 3, refused.output
    assert "all 4 row(s) would be quarantined" in refused.output and "nothing was changed" in refused.output
    assert_same_tables(snapshot(db), before)

    _write_profile(profiles, FIXED_FORMATS)
    fixed = runner.invoke(app, ["reingest", str(inbox / "statement.csv"), "--as-of", "2025-04-30", *args])
    assert fixed.exit_code == 0, fixed.output
    assert "reingest run" in fixed.output
    assert _rows(db, "SELECT count(*) FROM quarantine") == [(0,)]
    assert _rows(db, "SELECT DISTINCT as_of_on::VARCHAR FROM account_risk") == [("2025-04-30",)]
