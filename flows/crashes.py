"""Runs that died: found by the next run of the same database, recorded, and their leftovers removed.

A run writes `run.json` (its id, start time and Prefect flow-run id) into its staging folder as soon as it holds
the database's lock, and the folder goes when the run ends. A folder still there when the next run takes the
lock belongs to a run that was killed or crashed (only one run of a database is alive at a time). The next run
then records it in `pipeline_runs` (status `crashed`, with its start time) inside its own publish transaction,
marks its Prefect flow run Crashed, and removes the folder and any Data Docs folder the dead run left empty.
A dead run that had already committed its publish (killed during the clean-up) has its own `pipeline_runs` row
and is not recorded again.
"""

from __future__ import annotations

import json
import logging
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

MARKER = "run.json"
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadRun:
    run_id: str
    started_at: datetime
    flow_run_id: str | None


def mark_started(staging: Path, run_id: str, started_at: datetime, flow_run_id: str | None) -> None:
    """Leave the mark a dead run is found by."""
    staging.mkdir(parents=True, exist_ok=True)
    payload = {"run_id": run_id, "started_at": started_at.isoformat(), "flow_run_id": flow_run_id}
    (staging / MARKER).write_text(json.dumps(payload), encoding="utf-8")


def dead_runs(staging_root: Path) -> list[DeadRun]:
    """The runs whose staging folders are left under `staging_root` (call holding the database's lock)."""
    found = []
    for marker in sorted(staging_root.glob(f"*/{MARKER}")):
        try:
            raw = json.loads(marker.read_text(encoding="utf-8"))
            found.append(DeadRun(raw["run_id"], datetime.fromisoformat(raw["started_at"]), raw.get("flow_run_id")))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a marker cut short by the kill: the folder still goes, nothing to record
    return found


def recorded_run_ids(database: Path, dead: list[DeadRun]) -> set[str]:
    """Which of the dead runs have a `pipeline_runs` row (they committed before they died)."""
    if not dead or not database.exists():
        return set()
    from liushui import store

    con = store.reader(database, memory_limit=store.RUN_READER_MEMORY_LIMIT)
    try:
        return store.recorded_run_ids(con, [run.run_id for run in dead])
    finally:
        con.close()


def crashed_run_rows(dead: list[DeadRun], recorded_run_ids: set[str], *, found_by: str) -> list[dict[str, Any]]:
    """`pipeline_runs` rows for the dead runs that left no row of their own."""
    return [
        {
            "run_id": run.run_id,
            "started_at": run.started_at,
            "finished_at": None,
            "status": "crashed",
            "mode": "unknown",
            "as_of_on": run.started_at.date(),
            "parameters_json": "{}",
            "counts_json": "{}",
            "stage_seconds_json": "{}",
            "stage_peak_rss_mb_json": "{}",
            "versions_json": "{}",
            "config_sha256": "",
            "message": f"killed or crashed before it published; found by run {found_by}",
        }
        for run in dead
        if run.run_id not in recorded_run_ids
    ]


def mark_crashed_in_prefect(dead: list[DeadRun]) -> None:
    """Set the dead runs' Prefect flow runs (left RUNNING by the kill) to Crashed. Best effort: an API that
    does not answer, or a flow run that is gone, leaves a warning, never a failed night."""
    flow_runs = [run for run in dead if run.flow_run_id]  # None: the run died before Prefect gave it an id
    if not flow_runs:
        return
    from prefect.client.orchestration import get_client
    from prefect.states import Crashed

    try:
        with get_client(sync_client=True) as client:
            for run in flow_runs:
                flow_run_id = UUID(run.flow_run_id)
                state = client.read_flow_run(flow_run_id).state
                if state is not None and not state.is_final():
                    client.set_flow_run_state(
                        flow_run_id,
                        Crashed(message=f"liushui run {run.run_id} was killed; found by the next run"),
                        force=True,
                    )
    except Exception as exc:  # noqa: BLE001 - bookkeeping must not fail the night
        log.warning("could not mark dead runs crashed in Prefect: %s", exc)


def remove_leftovers(staging_root: Path, docs_root: Path) -> None:
    """The dead runs' staging, and Data Docs folders left without their index page."""
    shutil.rmtree(staging_root, ignore_errors=True)
    if docs_root.is_dir():
        for folder in docs_root.iterdir():
            if folder.is_dir() and not (folder / "index.html").exists():
                shutil.rmtree(folder, ignore_errors=True)
