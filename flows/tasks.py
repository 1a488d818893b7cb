"""The nightly run's Prefect tasks: each reads, calls transforms or validates, or writes; the flow
(flows/nightly.py) wires them. Retries only on I/O (reading the inbox, reading and writing DuckDB);
computation is deterministic and is not retried. Big frames pass between tasks in memory or as Parquet in the
run's staging folder, so results are neither cached nor persisted.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from liushui.runtime import configure_environment

configure_environment()

import polars as pl  # noqa: E402
import polars_hash  # noqa: E402, F401  (registers the stable `nchash` namespace for shard keys)
from prefect import task  # noqa: E402
from prefect.cache_policies import NO_CACHE  # noqa: E402

from expectations.runner import Validation, validate_parts, validate_table  # noqa: E402
from flows.run_report import RunReport  # noqa: E402
from liushui import store  # noqa: E402
from liushui.config import ConfigError, Rules, Settings, load_rules  # noqa: E402
from liushui.contracts import (  # noqa: E402
    CANONICAL_TRANSACTION,
    DQ_RESULTS,
    RISK_FLAGS,
    TRANSFER_LINKS,
)
from liushui.file_hashes import FileHashes, file_sha256  # noqa: E402
from liushui.ingest.inbox import inbox_files  # noqa: E402
from liushui.ingest.staging import ShardedNight, StagedNight, shard_night, stage_files  # noqa: E402
from liushui.reference import read_fx_rates, read_reference  # noqa: E402
from transforms import scope  # noqa: E402

IO_RETRIES: dict[str, Any] = {"retries": 2, "retry_delay_seconds": 2}
Table = pl.DataFrame | Path | list[Path]
"""A table in flight: in memory, or Parquet file(s) in the run's staging folder."""


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


class ReingestError(Exception):
    """`reingest` names no file it can re-read (unknown, or no longer in the inbox); nothing was changed."""


class ReingestRefused(ReingestError):
    """The re-read file would load no row now (rejected whole, or every row quarantined): its published rows
    are kept and nothing was changed."""


@dataclass(frozen=True)
class ReingestTarget:
    """A known file to read again: its content hash, its name as `source_files` and `transactions` record it,
    the batch that published its rows (None: it was rejected whole, it has none) and its path in the inbox."""

    file_sha256: str
    file_name: str
    batch_id: str | None
    path: Path


@task(name="find-reingest-target", cache_policy=NO_CACHE)
def find_reingest_target(database: Path, inbox: Path, wanted: str) -> ReingestTarget:
    """The known file that `wanted` names (a path, a file name or a sha256 of `source_files`), which must be in
    the inbox under its recorded name with the content that was read (a changed file is a new file)."""
    given = Path(wanted)
    by_content = file_sha256(given) if given.is_file() else None
    if not database.exists():
        raise ReingestError(f"no database at {database}: there is no file to re-read yet (run `liushui run`)")
    con = store.reader(database, memory_limit=store.RUN_READER_MEMORY_LIMIT)
    try:
        seen = con.execute(
            "SELECT file_sha256, file_name, batch_id, status FROM source_files "
            "WHERE file_sha256 IN (?, ?) OR file_name = ? ORDER BY seen_at",
            [wanted.strip().lower(), by_content or "", given.name],
        ).fetchall()
    finally:
        con.close()
    if not seen:
        raise ReingestError(
            f"{wanted}: no file of that name or sha256 in source_files of {database}; "
            "a file never read is read by `liushui run`"
        )
    targets: dict[str, ReingestTarget] = {}
    for sha, name, batch_id, status in seen:  # oldest first: a file rejected once may have been read later
        batch = batch_id if status != "rejected" else (targets[sha].batch_id if sha in targets else None)
        targets[sha] = ReingestTarget(sha, name, batch, inbox / name)
    present = [t for t in targets.values() if t.path.is_file() and file_sha256(t.path) == t.file_sha256]
    if not present:
        names = sorted({t.file_name for t in targets.values()})
        if any((inbox / name).is_file() for name in names):
            raise ReingestError(
                f"{wanted}: {', '.join(names)} in the inbox {inbox} has changed since it was read; a changed file "
                "is a new file (`liushui run` reads it)"
            )
        raise ReingestError(
            f"{wanted}: {', '.join(names)} is no longer in the inbox {inbox}; put the file that was read back "
            "to re-read it"
        )
    if len(present) > 1:
        raise ReingestError(f"{wanted}: names several known files ({', '.join(t.file_name for t in present)})")
    return present[0]


def refuse_empty_reingest(staged: StagedNight, target: ReingestTarget) -> None:
    """A re-read file that loads no row is refused (ReingestRefused) rather than replacing its rows by none."""
    (row,) = staged.file_rows
    if row["rows_ok"]:
        return
    if row["status"] == "rejected":
        why = row["error"]
    elif row["rows_rejected"]:
        why = f"{target.file_name}: all {row['rows_rejected']} row(s) would be quarantined, the first: " + str(
            staged.quarantine["reason"][0]
        )
    else:
        why = f"{target.file_name}: no data rows"
    raise ReingestRefused(
        f"re-read with today's profiles, {why}; nothing was changed (the rows of {target.file_name} published "
        f"before are kept). Check the profile: liushui profile check {target.path} --profiles DIR"
    )


@task(name="ingest", cache_policy=NO_CACHE, **IO_RETRIES)
def ingest(
    settings: Settings,
    prior: PriorState,
    batch_id: str,
    directory: Path,
    latest_booking: date,
    reingest: ReingestTarget | None = None,
) -> StagedNight:
    """Parse every new inbox file into Parquet in `directory`, one file in memory at a time; with `reingest`,
    only that file, read again although it is known."""
    shutil.rmtree(directory, ignore_errors=True)  # a retry starts over
    hashes = FileHashes(None if reingest else settings.file_hashes_path)
    staged = stage_files(
        [reingest.path] if reingest else inbox_files(settings.inbox),
        directory=directory,
        known_file_hashes=set() if reingest else prior.file_hashes,
        batch_id=batch_id,
        latest_booking=latest_booking,
        forced_profile=settings.profile,
        profiles_dir=settings.profiles_dir,
        hashes=hashes,
    )
    hashes.save()
    return staged


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
def load_history(
    database: Path, accounts: pl.Series | None, directory: Path, without: ReingestTarget | None = None
) -> tuple[Path | None, int]:
    """Published canonical rows of the accounts to recompute (all accounts when None), streamed by DuckDB
    into a Parquet file in `directory`, less the rows of the file read again (`without`); (file, rows), or
    (None, 0) when there is nothing."""
    if not database.exists() or (accounts is not None and accounts.is_empty()):
        return None, 0
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "history.parquet"
    con = store.reader(database, memory_limit=store.RUN_READER_MEMORY_LIMIT, file_access=True)
    try:
        rows = store.export_history(con, accounts, path)
    finally:
        con.close()
    if without is not None and without.batch_id is not None and rows:
        # A file's rows are those its batch published under its name (one inbox holds one file of a name).
        kept = directory / "history_kept.parquet"
        its_rows = (pl.col("source_file") == without.file_name) & (pl.col("batch_id") == without.batch_id)
        pl.scan_parquet(path).filter(~its_rows).sink_parquet(kept)
        path, rows = kept, int(pl.scan_parquet(kept).select(pl.len()).collect().item())
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
    fx_rates: pl.DataFrame

    @classmethod
    def read(cls, settings: Settings) -> Resolved:
        from transforms.lenders import load_lender_registry
        from transforms.registry import FLAG_CODES, unknown_weight_codes

        rules = load_rules(settings.rules_path)
        if unknown := unknown_weight_codes(rules.account_risk.weights):
            raise ConfigError(
                f"{settings.rules_path}: account_risk.weights names unknown flag code(s) {unknown}; "
                f"known: {', '.join(FLAG_CODES)}"
            )
        accounts, related = read_reference(settings.reference_dir)
        return cls(accounts, related, load_lender_registry(), rules, read_fx_rates(settings.reference_dir))


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
        fx_rates=inputs.fx_rates.lazy(),
    )
    out = {}
    for name in ("links", "flags", "cycle_returns", "resolutions"):
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
    # Tonight's copy of a published row is a duplicate wherever the published copy is, also outside the graph
    # (no counterparty account, a small amount) when tonight's copy is inside it (the bank's txn id again, now
    # with the counterparty account): the first copy wins, as in a full rebuild. So tonight's txn_ids are
    # looked up among every published one, not only the graph's.
    tonight_ids = staged.scan().select(pl.col("txn_id").unique()).collect()["txn_id"]
    con = store.reader(database, memory_limit=store.RUN_READER_MEMORY_LIMIT, file_access=True)
    try:
        store.export_history(con, None, graph, graph_min_amount=float(inputs.rules.cycles.min_amount))
        published_ids = tonight_ids.filter(store.known_txn_ids(con, tonight_ids)).to_frame()
        links = store.published_rows(con, TRANSFER_LINKS, "link_type", CROSS_LINK_TYPES)
        flags = store.published_rows(con, RISK_FLAGS, "flag_code", CROSS_FLAG_CODES)
    finally:
        con.close()
    published = CANONICAL_TRANSACTION.conform(pl.scan_parquet(graph))
    rows = pl.concat([published, scope.tonight_rows(published_ids.lazy(), staged.scan())])
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
        fx_rates=inputs.fx_rates.lazy(),
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


@task(name="apply-flag-decisions", cache_policy=NO_CACHE, **IO_RETRIES)
def apply_flag_decisions(
    database: Path, frames: dict[str, Table], inputs: Resolved, as_of: date, directory: Path
) -> Table:
    """The run's `account_risk` with the analysts' published decisions applied (flows.decisions): the accounts
    with a dismissed flag recomputed without it, into `directory`; the frame as it was when there is none."""
    from flows.decisions import rescored_account_risk

    def scan(frame: Table) -> pl.LazyFrame:
        return frame.lazy() if isinstance(frame, pl.DataFrame) else pl.scan_parquet(frame)

    rescored = rescored_account_risk(
        database,
        scan(frames["account_risk"]),
        scan(frames["risk_flags"]),
        scan(frames["account_months"]),
        accounts=inputs.accounts.lazy(),
        rules=inputs.rules.account_risk,
        as_of=as_of,
    )
    if rescored is None:
        return frames["account_risk"]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "account_risk.parquet"
    rescored.sink_parquet(path)
    return path


@task(name="publish", cache_policy=NO_CACHE, **IO_RETRIES)
def publish(
    database: Path, frames: dict[str, Table], affected: pl.Series | None, as_of: date, replaced_file: str | None = None
) -> None:
    with store.writer(database) as con:
        store.publish(con, frames, affected_accounts=affected, as_of=as_of, replaced_file=replaced_file)


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
