"""A night with nothing to do, answered in seconds: without starting Prefect or importing Great Expectations.

Most of a run's fixed cost is start-up — a Prefect API for the flow run, importing Great Expectations, Data
Docs — which a night whose inbox holds only files already read does not need: it would derive nothing,
validate an empty night and publish no row but its own `pipeline_runs` row. `nothing_new_run` decides that
cheaply, holding the run lock, from what the flow itself would look at:

- no `--full-rebuild`, no `--as-of`, no `reingest` (each asks for work);
- a published run exists and its config fingerprint (rules, lender registry, reference data, table schema) is
  today's, and its as-of month is the published data's (the as-of date of a night without new rows is the
  latest published booking date): the flow's mode would be `incremental`;
- every inbox file is known by content (sha256, the flow's own test: a renamed file is known, a changed file
  is new; a file once rejected is read again every night, so it makes the night not empty); a file whose stat
  is the one the last run saw is not read again (`liushui.file_hashes`);
- no staging folder is left by an earlier run (the flow records a dead run as crashed and cleans it up).

Then it records the run as the flow would — a `pipeline_runs` row with status `nothing_new`, mode
`incremental`, its counts and stage times, through the same atomic publish — and the CLI prints the same
closing line. What it leaves out on purpose: the Prefect flow run (the Prefect UI lists the runs that did
work) and the validation of an empty night (no rows to judge; the last run's `dq_results` stand).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, date, datetime

import polars as pl

from flows.run_report import RunReport, library_versions, run_row
from liushui import store
from liushui.config import Settings, config_fingerprint, load_rules
from liushui.contracts import PIPELINE_RUNS
from liushui.file_hashes import FileHashes
from liushui.ingest.inbox import inbox_files
from transforms import scope


@dataclass(frozen=True)
class QuietNight:
    """Why the night has nothing to do: the inbox files (all known) and the as-of date it would judge at."""

    known_files: int
    as_of: date
    fingerprint: str


def quiet_night(settings: Settings) -> QuietNight | None:
    """The night's facts when it has nothing to do, else None (the flow runs). Call holding the run lock."""
    if settings.full_rebuild or settings.as_of is not None or settings.reingest or not settings.database.exists():
        return None
    if settings.staging_dir.is_dir() and any(settings.staging_dir.iterdir()):
        return None
    fingerprint = config_fingerprint(settings.rules_path, settings.reference_dir)
    con = store.reader(settings.database, memory_limit=store.RUN_READER_MEMORY_LIMIT)
    try:
        known = store.known_file_hashes(con)  # in `read_prior_state`'s order: a `sql` after an `execute` fails
        last_run = store.last_published_run(con)
        latest = store.latest_booking_on(con)
    finally:
        con.close()
    if latest is None:
        return None
    as_of = scope.as_of_date(explicit=None, published_max=latest, tonight_max=None, today=date.today())
    if scope.run_mode(full_rebuild=False, last_run=last_run, fingerprint=fingerprint, as_of=as_of) != "incremental":
        return None
    files = inbox_files(settings.inbox)
    # Every file is hashed (a file whose stat is unchanged is not read again) and remembered, also when one is
    # new: the flow's ingest that follows then reads no file twice.
    hashes = FileHashes(settings.file_hashes_path)
    unknown = [path for path in files if hashes.sha256(path) not in known]
    hashes.save()
    if unknown:
        return None
    return QuietNight(known_files=len(files), as_of=as_of, fingerprint=fingerprint)


def nothing_new_run(settings: Settings, run_id: str) -> RunReport | None:
    """Record and return the report of a night with nothing to do; None when there is work (run the flow)."""
    started_at = datetime.now(UTC).replace(tzinfo=None)
    started = time.perf_counter()
    night = quiet_night(settings)
    if night is None:
        return None
    report = RunReport(run_id=run_id, status="nothing_new", mode="incremental", as_of=night.as_of)
    report.counts.update(
        files_new=0,
        files_skipped_known=night.known_files,
        files_rejected=0,
        files_loading_nothing=0,
        rows_read=0,
        rows_new=0,
        rows_duplicate=0,
        rows_quarantined=0,
        runs_found_crashed=0,
    )
    report.message = report.summary()
    report.stage_seconds["check_inbox"] = round(time.perf_counter() - started, 3)
    versions = library_versions(load_rules(settings.rules_path).versions())
    row = run_row(report, settings, started_at, night.fingerprint, versions)
    with store.writer(settings.database) as con:
        store.publish(
            con,
            {"pipeline_runs": pl.DataFrame([row], schema=PIPELINE_RUNS.polars_schema)},
            affected_accounts=pl.Series("account_id", [], dtype=pl.String),
            as_of=night.as_of,
        )
    return report
