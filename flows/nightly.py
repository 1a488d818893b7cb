"""The nightly run: inbox -> ingest -> validate(raw) -> signals -> validate(out) -> publish.

Thin Prefect tasks that read, call transforms, validate and write; every setting arrives in `Settings`.
Retries only on I/O (reading the inbox, reading and writing DuckDB); computation is deterministic and
is not retried. Big frames pass between tasks in memory, so results are neither cached nor persisted.
"""

from __future__ import annotations

import json
import platform
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from liushui.runtime import configure_environment

configure_environment()

import polars as pl  # noqa: E402
import polars_hash  # noqa: E402, F401  (registers the stable `nchash` namespace for shard keys)
from prefect import flow, task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from expectations.runner import Validation, validate_parts, validate_table, warm_up  # noqa: E402
from flows.artifacts import build_run_data_docs, publish_run_artifacts  # noqa: E402
from flows.run_report import RunReport  # noqa: E402
from liushui import store  # noqa: E402
from liushui.config import Rules, Settings, config_fingerprint, load_rules  # noqa: E402
from liushui.contracts import (  # noqa: E402
    CANONICAL_TRANSACTION,
    DQ_RESULTS,
    PIPELINE_RUNS,
    RISK_FLAGS,
    TRANSFER_LINKS,
)
from liushui.ingest.inbox import files_loading_nothing, inbox_files  # noqa: E402
from liushui.ingest.staging import ShardedNight, StagedNight, night_tables, shard_night, stage_files  # noqa: E402
from liushui.reference import read_reference  # noqa: E402
from transforms import scope  # noqa: E402

IO_RETRIES: dict[str, Any] = {"retries": 2, "retry_delay_seconds": 2}
Table = pl.DataFrame | Path | list[Path]
"""A table in flight: in memory, or Parquet file(s) in the run's staging folder."""


class PublishBlocked(Exception):
    """A blocking expectation failed; nothing was published. The message lists the failures."""


@dataclass(frozen=True)
class PriorState:
    file_hashes: set[str]
    last_run: tuple[str, str] | None
    max_booked_on: date | None


@task(name="read-prior-state", cache_policy=NO_CACHE, **IO_RETRIES)
def read_prior_state(database: Path) -> PriorState:
    if not database.exists():
        return PriorState(set(), None, None)
    con = store.reader(database, memory_limit=store.RUN_READER_MEMORY_LIMIT)
    try:
        return PriorState(
            store.known_file_hashes(con),
            store.last_published_run(con),
            store.latest_booking_on(con),
        )
    finally:
        con.close()


@task(name="ingest", cache_policy=NO_CACHE, **IO_RETRIES)
def ingest(settings: Settings, prior: PriorState, batch_id: str, directory: Path, latest_booking: date) -> StagedNight:
    """Parse every new inbox file into Parquet in `directory`, one file in memory at a time."""
    shutil.rmtree(directory, ignore_errors=True)  # a retry starts over
    return stage_files(
        inbox_files(settings.inbox),
        directory=directory,
        known_file_hashes=prior.file_hashes,
        batch_id=batch_id,
        latest_booking=latest_booking,
        forced_profile=settings.profile,
    )


@task(name="validate", cache_policy=NO_CACHE)
def validate(frames: dict[str, Table], run_id: str, latest_booking: date) -> Validation:
    """Every table's suite (a table given as Parquet file(s) is read one table at a time); keeps GX's
    own results for the run's Data Docs."""
    rows, gx_results = [], {}
    for name, frame in frames.items():
        if isinstance(frame, pl.DataFrame):
            part = validate_table(name, frame, run_id=run_id, as_of=latest_booking)
        else:
            part = validate_parts(
                name, frame if isinstance(frame, list) else [frame], run_id=run_id, as_of=latest_booking
            )
        rows.append(part.rows)
        gx_results[name] = part.gx_results
    return Validation(pl.concat(rows) if rows else DQ_RESULTS.empty(), gx_results)


@task(name="load-history", cache_policy=NO_CACHE, **IO_RETRIES)
def load_history(database: Path, accounts: pl.Series | None, directory: Path) -> tuple[Path | None, int]:
    """Published canonical rows of the accounts to recompute (all accounts when None), streamed by DuckDB
    into a Parquet file in `directory`; (file, rows), or (None, 0) when there is nothing."""
    if not database.exists() or (accounts is not None and accounts.is_empty()):
        return None, 0
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "history.parquet"
    con = store.reader(database, memory_limit=store.RUN_READER_MEMORY_LIMIT)
    try:
        rows = store.export_history(con, accounts, path)
    finally:
        con.close()
    return (path, rows) if rows else (None, 0)


@task(name="shard-night", cache_policy=NO_CACHE)
def shard(staged: StagedNight, history: Path | None, shards: int, directory: Path) -> ShardedNight:
    return shard_night(staged.files, history, shards=shards, directory=directory)


@dataclass(frozen=True)
class Resolved:
    """What every signal computation reads besides the transactions, read once per run (not per shard):
    the reference accounts and related parties, the lender registry and the rules."""

    accounts: pl.DataFrame
    related_parties: pl.DataFrame
    lender_registry: pl.DataFrame
    rules: Rules

    @classmethod
    def read(cls, settings: Settings) -> Resolved:
        from transforms.lenders import load_lender_registry

        accounts, related = read_reference(settings.reference_dir)
        return cls(accounts, related, load_lender_registry(), load_rules(settings.rules_path))


@task(name="cross-account-signals", cache_policy=NO_CACHE)
def derive_cross_account(canonical: list[Path], inputs: Resolved, as_of: date, staging: Path) -> dict[str, Path]:
    """Cycles and transfer legs on the whole batch's transfer graph (before the shards run)."""
    return _cross_account_to_parquet(pl.scan_parquet(canonical), inputs, as_of, staging)


def _cross_account_to_parquet(canonical: pl.LazyFrame, inputs: Resolved, as_of: date, staging: Path) -> dict[str, Path]:
    from transforms.signals import cross_account_signals, spill_to

    cross = cross_account_signals(
        canonical,
        accounts=inputs.accounts.lazy(),
        rules=inputs.rules,
        as_of=as_of,
        checkpoint=spill_to(staging / "checkpoints"),
    )
    out = {}
    for name in ("links", "flags", "cycle_returns"):
        out[name] = staging / f"{name}.parquet"
        getattr(cross, name).sink_parquet(out[name])
    return out


@task(name="cross-account-signals-increment", cache_policy=NO_CACHE, **IO_RETRIES)
def cross_account_for_increment(
    database: Path, staged: StagedNight, inputs: Resolved, as_of: date, staging: Path
) -> tuple[dict[str, Path], pl.Series]:
    """An incremental run's cross-account patterns, on the whole transfer graph (published rows of every
    account that name a counterparty account or are big enough to be a cycle hop, plus tonight's rows),
    and the accounts whose cross-account rows change: a new row can close a cycle through accounts that
    received nothing tonight, so those are recomputed with the accounts that did."""
    from transforms.signals import CROSS_FLAG_CODES, CROSS_LINK_TYPES, CrossAccount, cross_account_changes

    staging.mkdir(parents=True, exist_ok=True)
    graph = staging / "graph_history.parquet"
    con = store.reader(database, memory_limit=store.RUN_READER_MEMORY_LIMIT)
    try:
        store.export_history(con, None, graph, graph_min_amount=float(inputs.rules.cycles.min_amount))
        links = store.published_rows(con, TRANSFER_LINKS, "link_type", CROSS_LINK_TYPES)
        flags = store.published_rows(con, RISK_FLAGS, "flag_code", CROSS_FLAG_CODES)
    finally:
        con.close()
    published = CANONICAL_TRANSACTION.conform(pl.scan_parquet(graph))
    rows = pl.concat([published, scope.tonight_rows(published, staged.scan())])
    paths = _cross_account_to_parquet(rows, inputs, as_of, staging)
    changed = cross_account_changes(CrossAccount(**{k: pl.scan_parquet(v) for k, v in paths.items()}), links, flags)
    return paths, changed


@task(name="derive-shard", cache_policy=NO_CACHE)
def derive_shard(
    canonical: Path, cross: dict[str, Path], inputs: Resolved, as_of: date, staging: Path
) -> dict[str, Path]:
    """The per-account signals of one account-hash shard; reads and writes Parquet only (and the resolved
    inputs, which pickle), so it can run on any Dask worker that sees the staging folder."""
    from transforms.signals import CrossAccount, account_signals, spill_to

    return account_signals(
        pl.scan_parquet(canonical),
        CrossAccount(**{name: pl.scan_parquet(path) for name, path in cross.items()}),
        accounts=inputs.accounts.lazy(),
        related_parties=inputs.related_parties.lazy(),
        lender_registry=inputs.lender_registry,
        rules=inputs.rules,
        as_of=as_of,
        checkpoint=spill_to(staging / "checkpoints"),
    ).sink(staging / "tables")


def derive_sharded(
    canonical: list[Path],
    inputs: Resolved,
    as_of: date,
    staging: Path,
    *,
    parallel: bool,
    cross: dict[str, Path] | None = None,
) -> dict[str, list[Path]]:
    """The cross-account patterns once on every shard's rows (unless an incremental run computed them on
    the whole transfer graph and passes them as `cross`), then the per-account signals shard by shard: all
    at once on a Dask cluster (`parallel`), else one after the other so that memory holds one shard
    (Polars already uses every core within a shard)."""
    if cross is None:
        cross = derive_cross_account(canonical, inputs, as_of, staging / "cross")
    if parallel:
        futures = [derive_shard.submit(path, cross, inputs, as_of, staging / path.stem) for path in canonical]
        results = [future.result() for future in futures]
    else:
        results = [derive_shard(path, cross, inputs, as_of, staging / path.stem) for path in canonical]
    return {name: [r[name] for r in results] for name in results[0]}


@task(name="publish", cache_policy=NO_CACHE, **IO_RETRIES)
def publish(database: Path, frames: dict[str, Table], affected: pl.Series | None, as_of: date) -> None:
    with store.writer(database) as con:
        store.publish(con, frames, affected_accounts=affected, as_of=as_of)


@task(name="record-stage-times", cache_policy=NO_CACHE, **IO_RETRIES)
def record_stage_times(database: Path, report: RunReport) -> None:
    """The run row is written inside the publish transaction; the publish's own time is known only after."""
    with store.writer(database) as con:
        store.record_run_timings(
            con,
            report.run_id,
            stage_seconds_json=json.dumps(report.stage_seconds),
            stage_peak_rss_mb_json=json.dumps(report.stage_peak_rss_mb),
            finished_at=datetime.now(UTC).replace(tzinfo=None),
        )


def _versions(rules_versions: dict[str, str]) -> str:
    import duckdb
    import great_expectations
    import prefect
    import pyarrow

    return json.dumps(
        {
            "python": platform.python_version(),
            "polars": pl.__version__,
            "duckdb": duckdb.__version__,
            "pyarrow": pyarrow.__version__,
            "prefect": prefect.__version__,
            "great_expectations": great_expectations.__version__,
            "rules": rules_versions,
        },
        sort_keys=True,
    )


def _run_row(
    report: RunReport, settings: Settings, started_at: datetime, fingerprint: str, versions: str
) -> dict[str, Any]:
    return {
        "run_id": report.run_id,
        "started_at": started_at,
        "finished_at": datetime.now(UTC).replace(tzinfo=None),
        "status": report.status,
        "mode": report.mode,
        "as_of_on": report.as_of or started_at.date(),
        "parameters_json": settings.model_dump_json(),
        "counts_json": json.dumps(report.counts, sort_keys=True),
        "stage_seconds_json": json.dumps(report.stage_seconds),
        "stage_peak_rss_mb_json": json.dumps(report.stage_peak_rss_mb),
        "versions_json": versions,
        "config_sha256": fingerprint,
        "message": report.message,
    }


@flow(name="liushui-nightly", log_prints=False, validate_parameters=True)
def nightly(settings: Settings) -> RunReport:
    """One nightly run. Returns the report; the published state changes only on status `published`."""
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
    started_at = datetime.now(UTC).replace(tzinfo=None)
    report = RunReport(run_id=run_id)
    inputs = Resolved.read(settings)
    fingerprint = config_fingerprint(settings.rules_path, settings.reference_dir)
    staging = settings.staging_dir / run_id
    with store.run_lock(settings.database, timeout_s=settings.lock_timeout_s), _removed_after(staging):
        # Holding the lock, no other run of this database is alive: folders left by a killed run go.
        shutil.rmtree(settings.staging_dir, ignore_errors=True)
        warm_up()  # GX's import overlaps ingest and load_history
        latest_booking = scope.latest_plausible_booking(as_of=settings.as_of, now_utc=datetime.now(UTC))
        with report.stage("ingest"):
            prior = read_prior_state(settings.database)
            staged = ingest(settings, prior, run_id, staging / "inbox", latest_booking)
            newest = staged.scan().select(pl.col("booked_at").max()).collect().item()
        report.as_of = scope.as_of_date(
            explicit=settings.as_of,
            published_max=prior.max_booked_on,
            tonight_max=newest.date() if newest else None,
            today=started_at.date(),
        )
        report.mode = scope.run_mode(
            full_rebuild=settings.full_rebuild, last_run=prior.last_run, fingerprint=fingerprint, as_of=report.as_of
        )
        full = report.mode == "full"

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
                load_history(settings.database, affected, staging / "history") if recompute else (None, 0)
            )
            shards = scope.shard_count(
                min_shards=settings.shards, shard_rows=settings.shard_rows, rows=staged.rows + history_rows
            )
            night = shard(staged, history, shards, staging / "shards")
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
            with report.stage("validate_out"):
                dq.append(
                    validate(
                        {
                            k: frames[k]
                            for k in (
                                "transactions",
                                "account_months",
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
            [_run_row(report, settings, started_at, fingerprint, _versions(inputs.rules.versions()))],
            schema=PIPELINE_RUNS.polars_schema,
        )
        no_accounts = pl.Series("account_id", [], dtype=pl.String)
        with report.stage("publish"):
            published = report.status == "published"
            publish(settings.database, to_write, affected if published else no_accounts, report.as_of)
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
