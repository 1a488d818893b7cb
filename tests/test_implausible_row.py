"""One implausible row is the row's problem, a night of mostly bad rows is the night's: the real nightly flow
through Prefect's test harness, into real DuckDB, on a small literal canonical inbox.

The row that started it: one transfer of 2,597,164,367.66 SAR among the 6,418 rows of a public AML data set
used to make a blocking expectation fail, and nothing of the night was published.
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest

from tests.test_flow import assert_same_tables, count, run, snapshot

HEADER = (
    "account_id,txn_id,booked_at,amount,currency,balance_after,counterparty_name,counterparty_account,"
    "description,channel\n"
)
AML_ROW = "SA01,,2026-03-02 09:15:00,2597164367.66,SAR,,Desert Trading LLC,SA99,wire transfer,online"
REASON = (
    "night2.csv, row 4: amount 2597164367.66 SAR is outside the plausible range (|amount| < 1,000,000,000): "
    "a shifted decimal or an account number in the amount column"
)
NIGHT1 = [
    "SA01,,2026-03-01 10:00:00,15000.00,SAR,,Employer Co,,salary,online",
    "SA01,,2026-03-01 12:30:00,-250.00,SAR,,Grocery,,card,pos",
    "SA02,,2026-03-01 09:00:00,-1200.00,SAR,,Landlord,SA01,rent,online",
]
NIGHT2 = [
    "SA01,,2026-03-02 08:00:00,-80.00,SAR,,Fuel,,card,pos",
    "SA02,,2026-03-02 10:00:00,3000.00,SAR,,Client,,invoice,online",
    "SA02,,2026-03-02 11:00:00,-999999999.99,SAR,,Big but plausible,,test,online",
    AML_ROW,
    "CN01,,2026-03-02 12:00:00,-35.50,CNY,,美团,,消费,支付宝",
]
IGNORE = ("batch_id", "seen_at")  # differ between the nightly database and the rebuilt one by design


def write(inbox: Path, name: str, rows: list[str]) -> None:
    inbox.mkdir(exist_ok=True)
    (inbox / name).write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")


def test_one_implausible_row_is_quarantined_and_the_rest_of_the_night_publishes(prefect_harness, tmp_path):
    inbox, db = tmp_path / "inbox", tmp_path / "nightly.duckdb"
    write(inbox, "night1.csv", NIGHT1)
    assert run(inbox, db, None).status == "published"

    write(inbox, "night2.csv", NIGHT2)
    report = run(inbox, db, None)
    assert (report.status, report.mode) == ("published", "incremental")
    assert (report.counts["rows_read"], report.counts["rows_new"], report.counts["rows_quarantined"]) == (5, 4, 1)
    # the run's summary says so (then the warnings of a run without reference data)
    assert report.message.split("; ")[0].endswith(", 1 quarantined"), report.message
    [(counts_json, status)] = count(
        db, "SELECT counts_json, status FROM pipeline_runs ORDER BY started_at DESC LIMIT 1"
    )
    assert status == "published" and json.loads(counts_json)["rows_quarantined"] == 1

    # the bad row: in quarantine, with its reason naming the amount in currency units and the currency
    assert count(db, "SELECT source_file, source_row, raw, reason_code, reason FROM quarantine") == [
        ("night2.csv", 4, AML_ROW, "implausible_amount", REASON)
    ]
    assert count(
        db, "SELECT status, rows_read, rows_ok, rows_rejected FROM source_files WHERE file_name = 'night2.csv'"
    ) == [("partial", 5, 4, 1)]
    # the good rows, including the largest plausible amount, are published; the absurd one is not
    assert count(db, "SELECT count(*), max(abs(amount)) FROM transactions") == [(7, Decimal("999999999.99"))]
    assert count(db, "SELECT count(*) FROM transactions WHERE abs(amount) >= 1000000000") == [(0,)]
    # no blocking expectation failed; the night's quarantined share (1 of 5: too few rows to judge) held
    run_id = report.run_id
    assert count(
        db, f"SELECT count(*) FROM dq_results WHERE run_id = '{run_id}' AND level = 'blocking' AND NOT success"
    )[0] == (0,)
    assert count(
        db,
        f"SELECT success FROM dq_results WHERE run_id = '{run_id}' AND table_name = 'source_files' "
        "AND column_name = 'rows_read,rows_rejected'",
    ) == [(True,)]

    # the published tables are exactly a full rebuild's from the same inbox
    rebuilt = tmp_path / "rebuilt.duckdb"
    assert run(inbox, rebuilt, None).mode == "full"
    assert_same_tables(snapshot(db, drop=IGNORE), snapshot(rebuilt, drop=IGNORE))


def _mostly_bad(good: int, bad: int) -> list[str]:
    rows = [f"SA01,,2026-03-02 08:{i:02d}:00,-{10 + i}.00,SAR,,Shop,,card,pos" for i in range(good)]
    rows += [
        f"SA01,,2026-03-02 09:{i:02d}:00,{2597164367 + i}.66,SAR,,Desert Trading LLC,SA99,wire,online"
        for i in range(bad)
    ]
    return rows


def test_a_night_with_mostly_bad_rows_blocks_and_publishes_nothing(prefect_harness, tmp_path):
    from flows.nightly import PublishBlocked

    inbox, db = tmp_path / "inbox", tmp_path / "w.duckdb"
    write(inbox, "shifted.csv", _mostly_bad(good=5, bad=20))  # 80 % of 25 rows: the export is broken
    with pytest.raises(PublishBlocked, match=r"source_files: .* on rows_read,rows_rejected") as blocked:
        run(inbox, db, None)
    assert "previous state kept" in str(blocked.value) and "[0.8]" in str(blocked.value)
    assert count(db, "SELECT status FROM pipeline_runs") == [("blocked_by_dq",)]
    failed = count(
        db, "SELECT table_name, column_name, detail FROM dq_results WHERE level = 'blocking' AND NOT success"
    )
    assert failed == [("source_files", "rows_read,rows_rejected", "unexpected sample: [0.8]")]
    # nothing of the night is published: the file is not known, so the next run reads it again
    for table in ("transactions", "quarantine", "source_files"):
        assert count(db, f"SELECT count(*) FROM {table}") == [(0,)], table


def test_an_incremental_night_with_only_bad_rows_blocks_too(prefect_harness, tmp_path):
    from flows.nightly import PublishBlocked

    inbox, db = tmp_path / "inbox", tmp_path / "w.duckdb"
    write(inbox, "night1.csv", NIGHT1)
    assert run(inbox, db, None).status == "published"
    write(inbox, "shifted.csv", _mostly_bad(good=0, bad=25))
    with pytest.raises(PublishBlocked):
        run(inbox, db, None)
