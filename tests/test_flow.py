"""The real nightly flow through Prefect's engine (test harness), on generated data, into real DuckDB."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest

from liushui import store
from liushui.config import Settings
from liushui.contracts import PUBLISHED_TABLES
from synthetic.evaluate import score_database

DATA_TABLES = [t for t in PUBLISHED_TABLES if t.name not in ("dq_results", "pipeline_runs")]
from synthetic.evaluate import BEHAVIOUR_FLAGS  # noqa: E402

IMPLEMENTED = sorted(BEHAVIOUR_FLAGS)
RECALL_GAPS: dict[str, float] = {}
"""Behaviours whose rule does not yet catch every planted account of the sample (seed 11), with the recall
each must keep. None today: every behaviour's recall on the sample is 1.0 (cycles, fan-in and fan-out were
gaps until their rules followed masked numbers, hops paid ahead, small sums and gatherings that stay)."""


def run(inbox: Path, db: Path, reference: Path | None, **kwargs):
    from flows.nightly import nightly

    return nightly(Settings(inbox=inbox, database=db, reference_dir=reference, **kwargs))


def snapshot(db: Path, *, drop: tuple[str, ...] = ()) -> dict[str, pl.DataFrame]:
    """Every data table, sorted by its primary key (run-specific columns dropped)."""
    con = store.reader(db)
    try:
        out = {}
        for t in DATA_TABLES:
            frame = con.sql(f'SELECT * FROM "{t.name}"').pl()
            frame = frame.drop([c for c in drop if c in frame.columns])
            out[t.name] = frame.sort([c for c in t.primary_key if c in frame.columns])
        return out
    finally:
        con.close()


def assert_same_tables(left: dict[str, pl.DataFrame], right: dict[str, pl.DataFrame]) -> None:
    for name in left:
        a, b = left[name], right[name]
        if not a.equals(b):
            with pl.Config(tbl_cols=-1, tbl_width_chars=400, fmt_str_lengths=60):
                only_left, only_right = (
                    a.join(b, on=a.columns, how="anti", nulls_equal=True),
                    b.join(a, on=a.columns, how="anti", nulls_equal=True),
                )
                detail = (
                    f"{a.height} vs {b.height} rows; only left:\n{only_left.head(5)}\nonly right:\n{only_right.head(5)}"
                )
            raise AssertionError(f"table {name} differs: {detail}")


def count(db: Path, sql: str):
    con = store.reader(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.fixture
def inbox(tmp_path, sample_dir) -> Path:
    target = tmp_path / "inbox"
    shutil.copytree(sample_dir / "inbox", target)
    return target


def test_end_to_end_recall_and_precision_per_behaviour(prefect_harness, sample_dir, inbox, tmp_path):
    db = tmp_path / "w.duckdb"
    report = run(inbox, db, sample_dir / "reference")
    assert report.status == "published" and report.mode == "full"
    assert report.counts["rows_duplicate"] > 0  # the generator's overlapping re-export
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:  # the flow run is named by liushui's run id
        assert report.run_id in {r.name for r in client.read_flow_runs()}
    con = store.reader(db)
    try:
        scores = score_database(sample_dir / "labels.csv", con)
    finally:
        con.close()
    print(scores)
    # a behaviour the sample happens not to plant has no recall to judge
    judged = scores.filter(pl.col("behaviour").is_in(IMPLEMENTED) & pl.col("recall").is_not_null())
    # Recall: every planted account must be caught (the planted signals are well above the thresholds),
    # except where a rule is known to fall short on the generator's real-world variety: each gap is stated
    # with the recall it must at least keep.
    recall = {b: r for b, r in zip(judged["behaviour"], judged["recall"], strict=True) if r is not None}
    for behaviour, floor in RECALL_GAPS.items():
        assert recall.get(behaviour, floor) >= floor, f"{behaviour}: recall {recall[behaviour]} fell below {floor}"
    assert {b: r for b, r in recall.items() if b not in RECALL_GAPS} == {b: 1.0 for b in recall if b not in RECALL_GAPS}
    # No ordinary customer may be flagged: the sample's normal accounts are built inside every threshold.
    assert judged["flagged_clean"].to_list() == [0] * judged.height
    # Strict precision is lower by design (a planted cycle of 100,000 *is* a large outflow); it must still
    # show that the rules are selective.
    precision = dict(zip(judged["behaviour"], judged["precision"], strict=True))
    assert all(p >= 0.2 for b, p in precision.items() if b not in RECALL_GAPS), precision


def test_rerun_of_the_same_inbox_changes_nothing(prefect_harness, sample_dir, inbox, tmp_path):
    db = tmp_path / "w.duckdb"
    run(inbox, db, sample_dir / "reference")
    before = snapshot(db)
    again = run(inbox, db, sample_dir / "reference")
    files = len([p for p in inbox.iterdir() if p.is_file()])
    assert again.status == "nothing_new" and again.counts["files_skipped_known"] == files
    assert_same_tables(before, snapshot(db))
    assert count(db, "SELECT status FROM pipeline_runs ORDER BY started_at") == [("published",), ("nothing_new",)]


BAD_FILE = (
    "account_id,booked_at,amount,currency,balance_after,counterparty_name,counterparty_account,description\n"
    "NEW1,2026-10-02 10:00:00,100.00,CNY,,x,,ok\n"
    "NEW1,2026-10-03 10:00:00,abc,CNY,,x,,bad amount\n"
    ",2026-10-03 10:00:00,1.00,CNY,,x,,no account\n"
    "NEW1,2026-02-30 10:00:00,1.00,CNY,,x,,bad date\n"
    "NEW1,2026-10-04 10:00:00,-5.00\n"
)


def test_bad_rows_go_to_quarantine_and_nothing_is_lost(prefect_harness, sample_dir, inbox, tmp_path):
    (inbox / "zz_bad.csv").write_text(BAD_FILE, encoding="utf-8")
    db = tmp_path / "w.duckdb"
    report = run(inbox, db, sample_dir / "reference")
    assert report.counts["rows_quarantined"] == 4
    [(status, read, ok, rejected)] = count(
        db, "SELECT status, rows_read, rows_ok, rows_rejected FROM source_files WHERE file_name = 'zz_bad.csv'"
    )
    assert (status, read, ok, rejected) == ("partial", 5, 1, 4)
    reasons = count(db, "SELECT source_row, reason_code FROM quarantine ORDER BY source_row")
    assert reasons == [(2, "bad_amount"), (3, "missing_account"), (4, "bad_date"), (5, "ragged_row")]
    # rows in = rows in transactions (new or already there as duplicates) + rows in quarantine, for every file
    [(rows_in, in_transactions, duplicates, quarantined)] = count(
        db,
        """
        SELECT (SELECT sum(rows_read) FROM source_files),
               (SELECT count(*) FROM transactions),
               (SELECT sum(rows_duplicate) FROM source_files),
               (SELECT count(*) FROM quarantine)""",
    )
    assert rows_in == in_transactions + duplicates + quarantined


def test_blocking_expectation_stops_the_publish_and_keeps_the_old_state(prefect_harness, sample_dir, inbox, tmp_path):
    from flows.nightly import PublishBlocked

    db = tmp_path / "w.duckdb"
    run(inbox, db, sample_dir / "reference")
    before = snapshot(db)
    # One absurd row is that row's problem (quarantined); a night of mostly absurd rows is the night's.
    (inbox / "broken.csv").write_text(
        "account_id,booked_at,amount\n"
        + "".join(f"X1,2026-10-05 10:{i:02d}:00,{'5000000000.00' if i % 5 else '-12.00'}\n" for i in range(25)),
        encoding="utf-8",
    )
    with pytest.raises(PublishBlocked, match="rows_read,rows_rejected") as blocked:
        run(inbox, db, sample_dir / "reference")
    assert "previous state kept" in str(blocked.value)
    assert_same_tables(before, snapshot(db))
    assert count(db, "SELECT status FROM pipeline_runs ORDER BY started_at") == [("published",), ("blocked_by_dq",)]
    failed = count(db, "SELECT table_name, column_name FROM dq_results WHERE NOT success AND level = 'blocking'")
    assert failed == [("source_files", "rows_read,rows_rejected")]


def _extra_day(sample_dir: Path, n_accounts: int = 6) -> str:
    accounts = pl.read_csv(sample_dir / "reference" / "accounts.csv", infer_schema=False)["account_id"][:n_accounts]
    lines = ["account_id,booked_at,amount,currency,counterparty_name,counterparty_account,description"]
    for i, account in enumerate(accounts):
        lines.append(f"{account},2026-10-31 20:{i:02d}:00,-{25000 + i}.00,CNY,某人,99{i},转账")
        lines.append(f"{account},2026-10-31 21:{i:02d}:00,{300 + i}.50,CNY,客户,,劳务费")
    return "\n".join(lines) + "\n"


def test_new_file_adds_only_its_rows_and_equals_a_full_rebuild(prefect_harness, sample_dir, inbox, tmp_path):
    db = tmp_path / "incremental.duckdb"
    run(inbox, db, sample_dir / "reference")
    rows_before = count(db, "SELECT count(*) FROM transactions")[0][0]
    (inbox / "next_day.csv").write_text(_extra_day(sample_dir), encoding="utf-8")
    report = run(inbox, db, sample_dir / "reference")
    assert report.mode == "incremental" and report.counts["rows_new"] == 12
    assert report.counts["accounts_recomputed"] < 20
    assert count(db, "SELECT count(*) FROM transactions")[0][0] == rows_before + 12

    rebuilt = tmp_path / "rebuilt.duckdb"
    run(inbox, rebuilt, sample_dir / "reference")
    ignore = ("batch_id", "seen_at")
    assert_same_tables(snapshot(db, drop=ignore), snapshot(rebuilt, drop=ignore))


def test_as_of_in_a_new_month_recomputes_everything(prefect_harness, sample_dir, inbox, tmp_path):
    db = tmp_path / "w.duckdb"
    run(inbox, db, sample_dir / "reference")
    report = run(inbox, db, sample_dir / "reference", as_of=date(2026, 11, 5))
    assert (report.status, report.mode) == ("published", "full")
    october = count(db, "SELECT DISTINCT is_full_month FROM account_months WHERE month_on = DATE '2026-10-01'")
    assert october == [(True,)]  # October is complete once the as-of date is in November


CYCLE_HEADER = "account_id,booked_at,amount,currency,balance_after,counterparty_name,counterparty_account,description\n"


def _three_customers(tmp_path: Path) -> Path:
    reference = tmp_path / "reference"
    reference.mkdir()
    (reference / "accounts.csv").write_text(
        "account_id,customer_id,holder_name,account_type\nX1,C1,甲,personal\nX2,C2,乙,personal\nX3,C3,丙,personal\n",
        encoding="utf-8",
    )
    (reference / "related_parties.csv").write_text("customer_id,party_name,party_account,relation\n", encoding="utf-8")
    return reference


def test_a_night_that_closes_a_cycle_recomputes_the_account_that_received_nothing(prefect_harness, tmp_path):
    """X1 -> X2 and X2 -> X3 are published; tonight only X3 -> X1 arrives. The cycle X1 -> X2 -> X3 -> X1
    runs through X2, which has no new row and is not named by one: the incremental run must still give X2
    its cycle link and flag, exactly as a full rebuild does."""
    reference = _three_customers(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "night1.csv").write_text(
        CYCLE_HEADER
        + "X1,2026-06-01 10:00:00,-50000.00,CNY,,乙,X2,转账\n"
        + "X2,2026-06-02 10:00:00,-49000.00,CNY,,丙,X3,转账\n",
        encoding="utf-8",
    )
    db = tmp_path / "incremental.duckdb"
    run(inbox, db, reference)
    assert count(db, "SELECT count(*) FROM transfer_links WHERE link_type = 'cycle'") == [(0,)]

    (inbox / "night2.csv").write_text(
        CYCLE_HEADER + "X3,2026-06-03 10:00:00,-48000.00,CNY,,甲,X1,转账\n", encoding="utf-8"
    )
    report = run(inbox, db, reference)
    assert report.mode == "incremental" and report.counts["rows_new"] == 1
    assert count(db, "SELECT account_id FROM transfer_links WHERE link_type = 'cycle' ORDER BY 1") == [
        ("X1",),
        ("X2",),
        ("X3",),
    ]
    assert count(db, "SELECT account_id FROM risk_flags WHERE flag_code = 'CYCLE' ORDER BY 1") == [
        ("X1",),
        ("X2",),
        ("X3",),
    ]

    rebuilt = tmp_path / "rebuilt.duckdb"
    run(inbox, rebuilt, reference)
    ignore = ("batch_id", "seen_at")
    assert_same_tables(snapshot(db, drop=ignore), snapshot(rebuilt, drop=ignore))


def test_an_unrelated_purchase_keeps_a_published_cycle_on_every_account(prefect_harness, tmp_path):
    """Night 1 publishes the cycle X1 -> X2 -> X3 -> X1 on all three accounts; night 2 brings one -12.50
    purchase on X1. The incremental run recomputes X1 alone, with the cross-account patterns of the whole
    transfer graph: X1 keeps its cycle link and flag, X2 and X3 keep theirs, as in a full rebuild."""
    reference = _three_customers(tmp_path)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "night1.csv").write_text(
        CYCLE_HEADER
        + "X1,2026-06-01 10:00:00,-50000.00,CNY,,乙,X2,转账\n"
        + "X2,2026-06-02 10:00:00,-49000.00,CNY,,丙,X3,转账\n"
        + "X3,2026-06-03 10:00:00,-48000.00,CNY,,甲,X1,转账\n",
        encoding="utf-8",
    )
    db = tmp_path / "incremental.duckdb"
    run(inbox, db, reference)
    every_account = [("X1",), ("X2",), ("X3",)]
    assert count(db, "SELECT DISTINCT account_id FROM risk_flags WHERE flag_code = 'CYCLE' ORDER BY 1") == every_account

    (inbox / "night2.csv").write_text(
        CYCLE_HEADER + "X1,2026-06-04 12:00:00,-12.50,CNY,,便利店,,消费\n", encoding="utf-8"
    )
    report = run(inbox, db, reference)
    assert report.mode == "incremental" and report.counts["rows_new"] == 1
    cycle_links = "SELECT DISTINCT account_id FROM transfer_links WHERE link_type = 'cycle' ORDER BY 1"
    assert count(db, cycle_links) == every_account
    assert count(db, "SELECT DISTINCT account_id FROM risk_flags WHERE flag_code = 'CYCLE' ORDER BY 1") == every_account

    rebuilt = tmp_path / "rebuilt.duckdb"
    run(inbox, rebuilt, reference)
    ignore = ("batch_id", "seen_at")
    assert_same_tables(snapshot(db, drop=ignore), snapshot(rebuilt, drop=ignore))
