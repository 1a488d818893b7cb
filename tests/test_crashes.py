"""Dead runs (flows/crashes.py): found from the staging folders they leave, recorded once, leftovers removed."""

from __future__ import annotations

import threading
from datetime import datetime

from flows import crashes
from liushui import store


def test_a_dead_run_is_found_from_its_staging_folder(tmp_path):
    root = tmp_path / "staging"
    crashes.mark_started(root / "r1", "r1", datetime(2026, 12, 1, 2, 0, 5), "0b6f1c9e-7f57-4d2f-9a8b-0d6e0c6a1f00")
    crashes.mark_started(root / "r2", "r2", datetime(2026, 12, 1, 3, 0, 0), None)
    (root / "r3").mkdir()
    (root / "r3" / crashes.MARKER).write_text('{"run_id": "r3", "start', encoding="utf-8")  # cut by the kill
    assert crashes.dead_runs(root) == [
        crashes.DeadRun("r1", datetime(2026, 12, 1, 2, 0, 5), "0b6f1c9e-7f57-4d2f-9a8b-0d6e0c6a1f00"),
        crashes.DeadRun("r2", datetime(2026, 12, 1, 3, 0, 0), None),
    ]
    assert crashes.dead_runs(tmp_path / "none") == []


def test_only_dead_runs_without_their_own_row_are_recorded():
    dead = [
        crashes.DeadRun("r1", datetime(2026, 12, 1, 2, 0, 5), None),
        crashes.DeadRun("r2", datetime(2026, 12, 1, 3), None),
    ]
    rows = crashes.crashed_run_rows(dead, {"r2"}, found_by="r9")
    assert [(r["run_id"], r["status"], r["started_at"], r["as_of_on"].isoformat()) for r in rows] == [
        ("r1", "crashed", datetime(2026, 12, 1, 2, 0, 5), "2026-12-01")
    ]
    assert rows[0]["message"] == "killed or crashed before it published; found by run r9"


def test_leftovers_go_and_finished_data_docs_stay(tmp_path):
    staging, docs = tmp_path / "staging", tmp_path / "gx_docs"
    crashes.mark_started(staging / "r1", "r1", datetime(2026, 12, 1), None)
    (docs / "r0").mkdir(parents=True)
    (docs / "r0" / "index.html").write_text("<html></html>")
    (docs / "r1").mkdir()
    crashes.remove_leftovers(staging, docs)
    assert not staging.exists()
    assert sorted(p.name for p in docs.iterdir()) == ["r0"]


def test_the_run_lock_is_reentrant_within_a_process_and_per_database(tmp_path):
    db = tmp_path / "w.duckdb"
    with store.run_lock(db, timeout_s=1), store.run_lock(db, timeout_s=1):
        pass  # the CLI's lock and the flow's, in one process: no wait for itself
    with store.run_lock(db, timeout_s=1):
        pass  # released after the outer lock ended
    outcome: list[str] = []

    def another_database() -> None:
        # another database is locked on its own, also while this one is held
        with store.run_lock(tmp_path / "other.duckdb", timeout_s=1):
            outcome.append("other")

    with store.run_lock(db, timeout_s=1):
        thread = threading.Thread(target=another_database)
        thread.start()
        thread.join()
    assert outcome == ["other"]
