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
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

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
from liushui.config import Settings, config_fingerprint, load_rules  # noqa: E402
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

IO_RETRIES = {"retries": 2, "retry_delay_seconds": 2}
Table = pl.DataFrame | Path | list[Path]
"""A table in flight: in memory, or Parquet file(s) in the run's staging folder."""
LOCAL_TZ_OFFSET = timedelta(hours=8)  # Asia/Shanghai: bank dates are local


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
            con.execute("SELECT max(booked_on) FROM transactions").fetchone()[0],
        )
    finally:
        con.close()


@task(name="ingest", cache_policy=NO_CACHE, **IO_RETRIES)
def ingest(settings: Settings, prior: PriorState, batch_id: str, directory: Path) -> StagedNight:
    """Parse every new inbox file into Parquet in `directory`, one file in memory at a time."""
    shutil.rmtree(directory, ignore_errors=True)  # a retry starts over
    return stage_files(
        inbox_files(settings.inbox),
        directory=directory,
        known_file_hashes=prior.file_hashes,
        batch_id=batch_id,
        latest_booking=latest_plausible_booking(settings),
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


def shard_count(settings: Settings, rows: int) -> int:
    """At least `settings.shards`, and enough that a shard holds about `settings.shard_rows` rows."""
    return max(settings.shards, -(-rows // settings.shard_rows))


def _signal_inputs(settings: Settings, as_of: date, staging: Path) -> dict:
    """What every signal computation reads besides the transactions: reference data, the lender registry,
    the rules, the as-of date, and a checkpoint spilling to the run's staging folder."""
    from transforms.lenders import load_lender_registry
    from transforms.signals import spill_to

    accounts, related = read_reference(settings.reference_dir)
    return {
        "accounts": accounts.lazy(),
        "related_parties": related.lazy(),
        "lender_registry": load_lender_registry(),
        "rules": load_rules(settings.rules_path),
        "as_of": as_of,
        "checkpoint": spill_to(staging / "checkpoints"),
    }


@task(name="cross-account-signals", cache_policy=NO_CACHE)
def derive_cross_account(canonical: list[Path], settings: Settings, as_of: date, staging: Path) -> dict[str, Path]:
    """Cycles and transfer legs on the whole batch's transfer graph (before the shards run)."""
    return _cross_account_to_parquet(pl.scan_parquet(canonical), settings, as_of, staging)


def _cross_account_to_parquet(
    canonical: pl.LazyFrame, settings: Settings, as_of: date, staging: Path
) -> dict[str, Path]:
    from transforms.signals import cross_account_signals, spill_to

    accounts, _ = read_reference(settings.reference_dir)
    cross = cross_account_signals(
        canonical,
        accounts=accounts.lazy(),
        rules=load_rules(settings.rules_path),
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
    settings: Settings, staged: StagedNight, as_of: date, staging: Path
) -> tuple[dict[str, Path], pl.Series]:
    """An incremental run's cross-account patterns, on the whole transfer graph (published rows of every
    account that name a counterparty account or are big enough to be a cycle hop, plus tonight's rows),
    and the accounts whose cross-account rows change: a new row can close a cycle through accounts that
    received nothing tonight, so those are recomputed with the accounts that did."""
    from transforms.signals import CROSS_FLAG_CODES, CROSS_LINK_TYPES, CrossAccount, cross_account_changes

    staging.mkdir(parents=True, exist_ok=True)
    graph = staging / "graph_history.parquet"
    con = store.reader(settings.database, memory_limit=store.RUN_READER_MEMORY_LIMIT)
    try:
        store.export_history(
            con, None, graph, graph_min_amount=float(load_rules(settings.rules_path).cycles.min_amount)
        )
        links = store.published_rows(con, TRANSFER_LINKS, "link_type", CROSS_LINK_TYPES)
        flags = store.published_rows(con, RISK_FLAGS, "flag_code", CROSS_FLAG_CODES)
    finally:
        con.close()
    # Published txn_ids are unique: only tonight's rows need deduplicating (against the graph and among
    # themselves, first wins), so the graph itself streams instead of passing through one big `unique`.
    published = CANONICAL_TRANSACTION.conform(pl.scan_parquet(graph))
    tonight = (
        CANONICAL_TRANSACTION.conform(staged.scan())
        .join(published.select("txn_id"), on="txn_id", how="anti", maintain_order="left")
        .unique("txn_id", keep="first", maintain_order=True)
    )
    rows = pl.concat([published, tonight])
    paths = _cross_account_to_parquet(rows, settings, as_of, staging)
    changed = cross_account_changes(CrossAccount(**{k: pl.scan_parquet(v) for k, v in paths.items()}), links, flags)
    return paths, changed


@task(name="derive-shard", cache_policy=NO_CACHE)
def derive_shard(
    canonical: Path, cross: dict[str, Path], settings: Settings, as_of: date, staging: Path
) -> dict[str, Path]:
    """The per-account signals of one account-hash shard; reads and writes Parquet only, so it can run
    on any Dask worker that sees the staging folder."""
    from transforms.signals import CrossAccount, account_signals

    return account_signals(
        pl.scan_parquet(canonical),
        CrossAccount(**{name: pl.scan_parquet(path) for name, path in cross.items()}),
        **_signal_inputs(settings, as_of, staging),
    ).sink(staging / "tables")


def derive_sharded(
    canonical: list[Path],
    settings: Settings,
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
        cross = derive_cross_account(canonical, settings, as_of, staging / "cross")
    if parallel:
        futures = [derive_shard.submit(path, cross, settings, as_of, staging / path.stem) for path in canonical]
        results = [future.result() for future in futures]
    else:
        results = [derive_shard(path, cross, settings, as_of, staging / path.stem) for path in canonical]
    return {name: [r[name] for r in results] for name in results[0]}


@task(name="publish", cache_policy=NO_CACHE, **IO_RETRIES)
def publish(database: Path, frames: dict[str, Table], affected: pl.Series | None, as_of: date) -> None:
    with store.writer(database) as con:
        store.publish(con, frames, affected_accounts=affected, as_of=as_of)


@task(name="record-stage-times", cache_policy=NO_CACHE, **IO_RETRIES)
def record_stage_times(database: Path, report: RunReport) -> None:
    """The run row is written inside the publish transaction; the publish's own time is known only after."""
    with store.writer(database) as con:
        con.execute(
            "UPDATE pipeline_runs SET stage_seconds_json = ?, stage_peak_rss_mb_json = ?, "
            "finished_at = ? WHERE run_id = ?",
            [
                json.dumps(report.stage_seconds),
                json.dumps(report.stage_peak_rss_mb),
                datetime.now(UTC).replace(tzinfo=None),
                report.run_id,
            ],
        )


def affected_accounts(new: pl.DataFrame, accounts_ref: pl.DataFrame) -> pl.Series:
    """Accounts whose published figures a batch of new rows can change: the accounts with new rows, the
    other accounts of the same customers (own transfers), and accounts of the dataset that the new rows
    name as counterparty (the other leg of a transfer)."""
    touched = new.select(pl.concat([pl.col("account_id"), pl.col("counterparty_account").drop_nulls()]).unique())
    customers = accounts_ref.join(touched, on="account_id", how="semi").select("customer_id").unique()
    siblings = accounts_ref.join(customers, on="customer_id", how="semi").select("account_id")
    return (
        pl.concat(
            [
                new.select("account_id"),
                siblings,
                accounts_ref.join(touched, on="account_id", how="semi").select("account_id"),
            ]
        )
        .unique()["account_id"]
        .sort()
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


def _run_row(report: RunReport, settings: Settings, started_at: datetime, fingerprint: str, versions: str) -> dict:
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
    rules = load_rules(settings.rules_path)
    fingerprint = config_fingerprint(settings.rules_path, settings.reference_dir)
    staging = settings.staging_dir / run_id
    with store.run_lock(settings.database, timeout_s=settings.lock_timeout_s), _removed_after(staging):
        # Holding the lock, no other run of this database is alive: folders left by a killed run go.
        shutil.rmtree(settings.staging_dir, ignore_errors=True)
        warm_up()  # GX's import overlaps ingest and load_history
        with report.stage("ingest"):
            prior = read_prior_state(settings.database)
            staged = ingest(settings, prior, run_id, staging / "inbox")
            newest = staged.scan().select(pl.col("booked_at").max()).collect().item()
        candidates = [
            d for d in (settings.as_of, prior.max_booked_on, newest.date() if newest else None) if d is not None
        ]
        report.as_of = settings.as_of or (max(candidates) if candidates else started_at.date())
        latest_booking = latest_plausible_booking(settings)
        as_of_month = report.as_of.strftime("%Y-%m")
        full = (
            settings.full_rebuild
            or prior.last_run is None
            or prior.last_run[0] != fingerprint
            or prior.last_run[1] != as_of_month
        )
        report.mode = "full" if full else "incremental"

        frames: dict[str, Table] = {}
        affected: pl.Series | None = None
        cross: dict[str, Path] | None = None
        recompute = full or staged.rows > 0
        with report.stage("load_history"):
            if not full and recompute:
                accounts_ref, _ = read_reference(settings.reference_dir)
                touched = staged.scan().select("account_id", "counterparty_account").unique().collect()
                cross, changed = cross_account_for_increment(settings, staged, report.as_of, staging / "cross")
                affected = pl.concat([affected_accounts(touched, accounts_ref), changed]).unique().sort()
            elif not full:
                affected = pl.Series("account_id", [], dtype=pl.String)
            history, history_rows = (
                load_history(settings.database, affected, staging / "history") if recompute else (None, 0)
            )
            shards = shard_count(settings, staged.rows + history_rows)
            night = shard(staged, history, shards, staging / "shards")
        frames["source_files"], frames["quarantine"] = night_tables(staged, night)
        report.rejected_files = frames["source_files"].filter(pl.col("status") == "rejected")["error"].to_list()
        report.files_loading_nothing = files_loading_nothing(frames["source_files"])
        report.counts.update(
            files_new=frames["source_files"].height,
            files_skipped_known=staged.skipped_files,
            files_rejected=len(report.rejected_files),
            files_loading_nothing=len(report.files_loading_nothing),
            rows_read=int(frames["source_files"]["rows_read"].sum()),
            rows_new=night.rows_new,
            rows_duplicate=int(frames["source_files"]["rows_duplicate"].sum()),
            rows_quarantined=frames["quarantine"].height,
            shards=shards,
        )

        with report.stage("validate_raw"):
            # The night's files and quarantine are judged even when no row loaded (a night of bad rows).
            night_files = {k: frames[k] for k in ("quarantine", "source_files")}
            dq = [validate({"canonical_transactions": night.new, **night_files}, run_id, latest_booking)]

        if recompute:
            with report.stage("derive_signals"):
                parallel = settings.dask_address is not None or settings.dask_local
                frames |= derive_sharded(
                    night.canonical, settings, report.as_of, staging, parallel=parallel, cross=cross
                )
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
            nothing_new = not full and not night.rows_new and frames["source_files"].is_empty()
            report.status = "nothing_new" if nothing_new else "published"
            report.message = report.summary()
        to_write = {"dq_results": dq_results}
        if report.status == "published":
            to_write |= frames
        to_write["pipeline_runs"] = pl.DataFrame(
            [_run_row(report, settings, started_at, fingerprint, _versions(rules.versions()))],
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


def latest_plausible_booking(settings: Settings) -> date:
    """The last booking date accepted from input: tomorrow in bank local time (or the as-of date when it
    is later). Rows booked after an explicit past as-of date are kept; the signals just don't judge them."""
    tomorrow = (datetime.now(UTC) + LOCAL_TZ_OFFSET).date() + timedelta(days=1)
    return max(tomorrow, settings.as_of) if settings.as_of else tomorrow


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
    from prefect_dask import DaskTaskRunner

    runner = (
        DaskTaskRunner(address=settings.dask_address)
        if settings.dask_address
        else DaskTaskRunner(cluster_kwargs={"n_workers": 2, "threads_per_worker": 1, "dashboard_address": None})
    )
    return nightly.with_options(task_runner=runner)(settings)
