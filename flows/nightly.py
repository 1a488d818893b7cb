"""The nightly run: inbox -> ingest -> validate(raw) -> signals -> validate(out) -> publish.

The flow only reads, calls, validates and writes: the run's decisions are pure functions
(transforms/scope.py), the tasks live in flows/tasks.py, and every setting arrives in `Settings`.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from liushui.runtime import configure_environment

configure_environment()

import polars as pl  # noqa: E402
from prefect import flow  # noqa: E402
from prefect.runtime import flow_run as prefect_flow_run  # noqa: E402

from expectations.datadocs import data_docs_dir  # noqa: E402
from expectations.runner import warm_up  # noqa: E402
from flows import crashes  # noqa: E402
from flows.artifacts import build_run_data_docs, publish_run_artifacts  # noqa: E402
from flows.run_report import RunReport, library_versions, new_run_id, run_row  # noqa: E402
from flows.tasks import (  # noqa: E402
    Resolved,
    Table,
    apply_flag_decisions,
    cross_account_for_increment,
    derive_sharded,
    find_reingest_target,
    ingest,
    load_history,
    publish,
    read_prior_state,
    record_stage_times,
    refuse_empty_reingest,
    shard,
    validate,
)
from liushui import store  # noqa: E402
from liushui.config import Settings, config_fingerprint  # noqa: E402
from liushui.contracts import PIPELINE_RUNS  # noqa: E402
from liushui.ingest.inbox import files_loading_nothing  # noqa: E402
from liushui.ingest.staging import night_tables  # noqa: E402
from liushui.reference import reference_warnings  # noqa: E402
from transforms import scope  # noqa: E402


class PublishBlocked(Exception):
    """A blocking expectation failed; nothing was published. The message lists the failures."""


@flow(name="liushui-nightly", flow_run_name=new_run_id, log_prints=False, validate_parameters=True)
def nightly(settings: Settings) -> RunReport:
    """One nightly run. Returns the report; the published state changes only on status `published`.
    The Prefect flow run is named by the run id, so the UI lists runs as `pipeline_runs` does."""
    run_id = prefect_flow_run.name or new_run_id()
    started_at = datetime.now(UTC).replace(tzinfo=None)
    report = RunReport(run_id=run_id)
    inputs = Resolved.read(settings)
    fingerprint = config_fingerprint(settings.rules_path, settings.reference_dir)
    staging = settings.staging_dir / run_id
    with store.run_lock(settings.database, timeout_s=settings.lock_timeout_s), _removed_after(staging):
        # A reingest that names no file it can read changes nothing, not even a dead run's leftovers.
        target = (
            find_reingest_target(settings.database, settings.inbox, settings.reingest) if settings.reingest else None
        )
        # Holding the lock, no other run of this database is alive: a staging folder left is a dead run's.
        dead = crashes.dead_runs(settings.staging_dir)
        crashed_rows = crashes.crashed_run_rows(
            dead, crashes.recorded_run_ids(settings.database, dead), found_by=run_id
        )
        crashes.mark_crashed_in_prefect(dead)
        crashes.remove_leftovers(settings.staging_dir, data_docs_dir(settings.database, run_id).parent)
        crashes.mark_started(staging, run_id, started_at, str(prefect_flow_run.id) if prefect_flow_run.id else None)
        warm_up()  # GX's import overlaps ingest and load_history
        latest_booking = scope.latest_plausible_booking(as_of=settings.as_of, now_utc=datetime.now(UTC))
        with report.stage("ingest"):
            prior = read_prior_state(settings.database)
            staged = ingest(settings, prior, run_id, staging / "inbox", latest_booking, target)
            if target is not None:
                refuse_empty_reingest(staged, target)
            newest = staged.scan().select(pl.col("booked_at").max()).collect().item()
        report.as_of = scope.as_of_date(
            explicit=settings.as_of,
            published_max=prior.max_booked_on,
            tonight_max=newest.date() if newest else None,
            today=started_at.date(),
        )
        # A file read again is a full rebuild of the signals without its old rows: whichever accounts its old and
        # new rows touch, and the transfers through them, end as a fresh build over the inbox would have them.
        report.mode = (
            "reingest"
            if target is not None
            else scope.run_mode(
                full_rebuild=settings.full_rebuild, last_run=prior.last_run, fingerprint=fingerprint, as_of=report.as_of
            )
        )
        full = report.mode in ("full", "reingest")

        frames: dict[str, Table] = {}
        affected: pl.Series | None = None
        cross: dict[str, Path] | None = None
        recompute = full or staged.rows > 0
        with report.stage("load_history"):
            if not full and recompute:
                touched = staged.scan().select("account_id", "counterparty_account").unique().collect()
                cross, changed = cross_account_for_increment(
                    settings.database, staged, inputs, report.as_of, staging / "cross"
                )
                affected = scope.accounts_to_recompute(touched, inputs.accounts, changed)
            elif not full:
                affected = pl.Series("account_id", [], dtype=pl.String)
            history, history_rows = (
                load_history(settings.database, affected, staging / "history", target) if recompute else (None, 0)
            )
            shards = scope.shard_count(
                min_shards=settings.shards, shard_rows=settings.shard_rows, rows=staged.rows + history_rows
            )
            night = shard(staged, history, shards, staging / "shards")
        if recompute and night.canonical:
            judged = pl.scan_parquet(night.canonical).select(pl.col("currency").unique()).collect()
            report.warnings = reference_warnings(
                settings.reference_dir,
                inputs.accounts,
                inputs.related_parties,
                inputs.fx_rates,
                judged["currency"].to_list(),
            )
        source_files, quarantine = night_tables(staged, night)
        frames["source_files"], frames["quarantine"] = source_files, quarantine
        report.rejected_files = source_files.filter(pl.col("status") == "rejected")["error"].to_list()
        report.files_loading_nothing = files_loading_nothing(source_files)
        report.counts.update(
            files_new=source_files.height,
            files_skipped_known=staged.skipped_files,
            files_rejected=len(report.rejected_files),
            files_loading_nothing=len(report.files_loading_nothing),
            rows_read=int(source_files["rows_read"].sum()),
            rows_new=night.rows_new,
            rows_duplicate=int(source_files["rows_duplicate"].sum()),
            rows_quarantined=quarantine.height,
            shards=shards,
        )

        with report.stage("validate_raw"):
            # The night's files and quarantine are judged even when no row loaded (a night of bad rows).
            night_files = {k: frames[k] for k in ("quarantine", "source_files")}
            dq = [validate({"canonical_transactions": night.new, **night_files}, run_id, latest_booking)]

        if recompute:
            with report.stage("derive_signals"):
                parallel = settings.dask_address is not None or settings.dask_local
                frames |= derive_sharded(night.canonical, inputs, report.as_of, staging, parallel=parallel, cross=cross)
                frames["account_risk"] = apply_flag_decisions(
                    settings.database, frames, inputs, report.as_of, staging / "decisions"
                )
            with report.stage("validate_out"):
                dq.append(
                    validate(
                        {
                            k: frames[k]
                            for k in (
                                "transactions",
                                "account_months",
                                "income_streams",
                                "transfer_links",
                                "risk_flags",
                                "account_risk",
                            )
                        },
                        run_id,
                        latest_booking,
                    )
                )
            report.counts.update(accounts_recomputed=_rows(frames["account_risk"]))
        report.counts.update({f"published_{k}": _rows(v) for k, v in frames.items()})

        validation = dq[0] if len(dq) == 1 else dq[0] | dq[1]
        dq_results = validation.rows
        from expectations.runner import BlockingExpectationFailed, raise_on_blocking

        try:
            raise_on_blocking(dq_results)
        except BlockingExpectationFailed as exc:
            report.status = "blocked_by_dq"
            report.message = f"publish stopped, previous state kept: {exc}"
        else:
            nothing_new = not full and not night.rows_new and source_files.is_empty()
            report.status = "nothing_new" if nothing_new else "published"
            report.message = report.summary()
        to_write: dict[str, Table] = {"dq_results": dq_results}
        if report.status == "published":
            to_write |= frames
        to_write["pipeline_runs"] = pl.DataFrame(
            [
                *crashed_rows,
                run_row(report, settings, started_at, fingerprint, library_versions(inputs.rules.versions())),
            ],
            schema=PIPELINE_RUNS.polars_schema,
        )
        report.counts["runs_found_crashed"] = len(crashed_rows)
        no_accounts = pl.Series("account_id", [], dtype=pl.String)
        with report.stage("publish"):
            published = report.status == "published"
            replaced = target.file_sha256 if target is not None and published else None
            publish(settings.database, to_write, affected if published else no_accounts, report.as_of, replaced)
        record_stage_times(settings.database, report)
        docs_index = build_run_data_docs(validation.gx_results, settings.database, run_id)
        publish_run_artifacts(report, settings.database, docs_index)
    if report.status == "blocked_by_dq":
        raise PublishBlocked(report.message)
    return report


def _rows(frame: Table) -> int:
    if isinstance(frame, pl.DataFrame):
        return frame.height
    return pl.scan_parquet(frame).select(pl.len()).collect().item() if frame else 0


@contextmanager
def _removed_after(directory: Path) -> Iterator[None]:
    """Run staging (spilled intermediate tables) lives only as long as the run."""
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def run_nightly(settings: Settings) -> RunReport:
    """Run the flow with the task runner the settings ask for: Dask (a scheduler address, or a
    LocalCluster) for sharded runs, else Prefect's default thread pool."""
    if settings.dask_address is None and not settings.dask_local:
        return nightly(settings)
    from prefect.task_runners import TaskRunner
    from prefect_dask.task_runners import DaskTaskRunner

    runner: TaskRunner[Any] = (
        DaskTaskRunner(address=settings.dask_address)
        if settings.dask_address
        else DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "dashboard_address": None})
    )
    return nightly.with_options(task_runner=runner)(settings)
