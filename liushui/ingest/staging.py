"""Ingest a night out of core: every file's rows go to Parquet as soon as it is parsed, then one
streaming pass splits the night (and the history it is judged with) into account-hash shards, and each
shard is deduplicated on its own.

    staged = stage_files(inbox_files(inbox), directory=staging / "inbox", ...)    # one file in memory
    night = shard_night(staged.files, history, shards=8, directory=staging / "shards")
    night.shards[k].canonical    # history + new rows of shard k's accounts, deduplicated
    night.shards[k].new          # the new rows of shard k (validated before they are published)

Why sharding by account is exact: a txn_id is a hash over the account and the row's identifying fields,
so every copy of a row lands in its account's shard, and "first file wins" deduplication (history first,
then tonight's files in inbox order, rows in file order) gives the same rows as on the whole night.
Memory holds one file while staging and one shard while deduplicating; the split itself streams.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl
import polars_hash as plh

from liushui.config import STAGING_COMPRESSION
from liushui.contracts import CANONICAL_TRANSACTION, QUARANTINE
from liushui.file_hashes import FileHashes
from liushui.ingest.inbox import read_files, source_files_table

SEQ, ROW, SHARD = "_seq", "_row", "_shard"
HISTORY_SEQ = -1
"""Published history sorts before every file of tonight: a re-exported row is a duplicate of the
published one."""


def shard_of(shards: int) -> pl.Expr:
    """The shard of a row: a stable 64-bit hash of its account (the same on every machine and run)."""
    return (plh.col("account_id").nchash.xxhash64() % shards).cast(pl.Int32).alias(SHARD)


@dataclass(frozen=True)
class StagedNight:
    files: list[Path]
    """Good rows of each new file (canonical columns + `_seq` file ordinal + `_row` row ordinal)."""
    quarantine: pl.DataFrame
    file_rows: list[dict[str, Any]]
    """`source_files` rows, duplicates not counted yet (see `ShardedNight.source_files`)."""
    skipped_files: int
    rows: int
    """Good rows staged, duplicates included."""

    def scan(self) -> pl.LazyFrame:
        return pl.scan_parquet(self.files) if self.files else CANONICAL_TRANSACTION.empty().lazy()


def stage_files(
    paths: Iterable[Path],
    *,
    directory: Path,
    known_file_hashes: set[str],
    batch_id: str,
    latest_booking: date,
    forced_profile: str | None = None,
    profiles_dir: Path | None = None,
    hashes: FileHashes | None = None,
) -> StagedNight:
    """Parse each file and write its good rows to `directory` before reading the next; bank exports are
    read with the shipped layout profiles and those of `profiles_dir`; `hashes`: see `read_files`."""
    directory.mkdir(parents=True, exist_ok=True)
    files, file_rows, bads = [], [], []
    skipped = rows = 0
    for seq, outcome in enumerate(
        read_files(
            paths,
            known_file_hashes=known_file_hashes,
            batch_id=batch_id,
            latest_booking=latest_booking,
            forced_profile=forced_profile,
            profiles_dir=profiles_dir,
            hashes=hashes,
        )
    ):
        skipped += outcome.skipped
        if outcome.file_row is not None:
            file_rows.append(outcome.file_row)
        if outcome.parsed is None:
            continue
        good = outcome.parsed.good
        bads.append(outcome.parsed.bad)
        if good.height:
            files.append(directory / f"file_{seq:06d}.parquet")
            good.with_columns(
                pl.lit(seq, pl.Int32).alias(SEQ), pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW)
            ).write_parquet(files[-1], compression=STAGING_COMPRESSION)
            rows += good.height
    return StagedNight(
        files=files,
        quarantine=pl.concat(bads) if bads else QUARANTINE.empty(),
        file_rows=file_rows,
        skipped_files=skipped,
        rows=rows,
    )


@dataclass(frozen=True)
class Shard:
    canonical: Path
    """Deduplicated history and new rows of the shard's accounts (canonical columns)."""
    new: Path
    """The shard's new rows (not published before, first copy of tonight)."""


@dataclass(frozen=True)
class ShardedNight:
    shards: list[Shard]
    duplicates: pl.DataFrame | None
    """(source_file, len): rows of tonight's files already published or repeated (None: no shard)."""
    rows_new: int

    @property
    def canonical(self) -> list[Path]:
        return [s.canonical for s in self.shards]

    @property
    def new(self) -> list[Path]:
        return [s.new for s in self.shards]


def shard_night(staged: list[Path], history: Path | None, *, shards: int, directory: Path) -> ShardedNight:
    """Split history and tonight's staged rows into `shards` account-hash shards (one streaming pass),
    then deduplicate each shard: history first, then files in inbox order, rows in file order."""
    directory.mkdir(parents=True, exist_ok=True)
    columns = [*CANONICAL_TRANSACTION.names, SEQ, ROW]
    parts = [pl.scan_parquet(staged)] if staged else []
    if history is not None:
        parts.insert(
            0,
            CANONICAL_TRANSACTION.conform(pl.scan_parquet(history)).with_columns(
                pl.lit(HISTORY_SEQ, pl.Int32).alias(SEQ), pl.int_range(pl.len(), dtype=pl.Int64).alias(ROW)
            ),
        )
    split = directory / "split"
    if parts:
        pl.concat([p.select(columns) for p in parts]).with_columns(shard_of(shards)).sink_parquet(
            pl.PartitionBy(split, key=SHARD, include_key=False), mkdir=True, compression=STAGING_COMPRESSION
        )
    result, duplicates, rows_new = [], [], 0
    for shard in range(shards):
        files = sorted((split / f"{SHARD}={shard}").glob("*.parquet"))
        frame = (
            pl.read_parquet(files)
            if files
            else pl.DataFrame(schema={**CANONICAL_TRANSACTION.polars_schema, SEQ: pl.Int32, ROW: pl.Int64})
        ).sort(SEQ, ROW)
        first = frame.select(pl.col("txn_id").is_first_distinct()).to_series()
        is_new = frame[SEQ] != HISTORY_SEQ
        duplicates.append(frame.filter(is_new & ~first).group_by("source_file").len())
        canonical = frame.filter(first).drop(SEQ, ROW)
        canonical_path = directory / f"canonical_{shard:04d}.parquet"
        canonical.write_parquet(canonical_path, compression=STAGING_COMPRESSION)
        if is_new.all():  # no history in this shard (a first night): the new rows are the canonical rows
            result.append(Shard(canonical_path, canonical_path))
            rows_new += canonical.height
        else:
            new = frame.filter(is_new & first).drop(SEQ, ROW)
            result.append(Shard(canonical_path, directory / f"new_{shard:04d}.parquet"))
            new.write_parquet(result[-1].new, compression=STAGING_COMPRESSION)
            rows_new += new.height
        del frame, canonical
    counted = pl.concat(duplicates).group_by("source_file").agg(pl.col("len").sum()) if duplicates else None
    return ShardedNight(result, counted, rows_new)


def night_tables(staged: StagedNight, night: ShardedNight) -> tuple[pl.DataFrame, pl.DataFrame]:
    """`source_files` (with duplicates counted) and `quarantine` of the night."""
    return source_files_table(staged.file_rows, night.duplicates), staged.quarantine
