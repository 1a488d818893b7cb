"""Ingest an inbox folder: every file gets a `source_files` row, every row lands in exactly one of
`transactions` or `quarantine`.

Files already ingested (same SHA-256) are skipped; rows whose `txn_id` is already known, or repeated
across overlapping exports of the same night, are counted as duplicates (they *are* in
`transactions`), not dropped silently.
"""

from __future__ import annotations

import codecs
import csv
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from liushui.contracts import CANONICAL_TRANSACTION, QUARANTINE, SOURCE_FILES
from liushui.file_hashes import FileHashes
from liushui.ingest.canonical import (
    PARQUET_MAGIC,
    FileRejected,
    binary_kind,
    header_is_canonical,
    read_canonical_csv,
    read_canonical_parquet,
    read_canonical_text,
)
from liushui.ingest.parse import ParsedFile, parse_raw
from liushui.ingest.workbook import WorkbookError, sheet_csv, workbook_kind

if TYPE_CHECKING:
    from liushui.ingest.profile_spec import ProfileSet

HEAD_BYTES = 64 * 1024
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    transactions: pl.DataFrame
    """New canonical transactions (deduplicated among themselves and against `known_txn_ids`)."""
    quarantine: pl.DataFrame
    source_files: pl.DataFrame
    skipped_files: int


@dataclass(frozen=True)
class FileOutcome:
    """One inbox file: its `source_files` row, and its good and quarantined rows when it was read."""

    path: Path
    file_row: dict[str, Any] | None
    parsed: ParsedFile | None
    """The file's good and quarantined rows; None when it was skipped or rejected whole."""
    skipped: bool = False


def inbox_files(inbox: Path) -> list[Path]:
    """Every file of the inbox, whatever its name says: the reader is chosen from the content, and a file
    nobody can read (a workbook, a PDF) is rejected with its reason rather than passed over. Hidden files
    (`.DS_Store`, `.~lock.x.csv#`, editors' `.swp`) are the file system's, not exports, and are left alone."""
    if not inbox.is_dir():
        return []
    return sorted(p for p in inbox.iterdir() if p.is_file() and not p.name.startswith("."))


def _first_line(head: bytes) -> list[str]:
    """The header cells of a text file, from its first bytes (a UTF-16 file has a byte-order mark)."""
    encoding = "utf-16" if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) else "utf-8-sig"
    text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(head)
    first = text.splitlines()[0] if text.strip() else ""
    return next(csv.reader([first]), [])


class Profiles:
    """The layout profiles of a run, loaded on first use (a night of canonical files never reads them):
    the shipped ones merged with `user_dir`'s, invalid files skipped with their reason."""

    def __init__(self, user_dir: Path | None = None) -> None:
        self.user_dir = user_dir
        self._set: ProfileSet | None = None
        self._error: str | None = None

    def get(self) -> ProfileSet:
        """The `ProfileSet`; FileRejected when the profiles cannot be loaded at all (a missing folder)."""
        from liushui.ingest import profiles  # the layout profiles are only needed for bank exports

        if self._set is None and self._error is None:
            try:
                self._set = profiles.load_profile_set(self.user_dir)
            except profiles.ProfileError as exc:
                self._error = str(exc)
            else:
                for skipped in self._set.skipped:
                    _log.warning("layout profile skipped: %s", skipped.describe())
        if self._set is None:
            raise FileRejected(self._error or "no layout profiles")
        return self._set


def _skipped_note(path: Path, profile_set: ProfileSet) -> str:
    """For a file no profile matched: the invalid profiles that would have matched it (their header
    signature is in the file), else every invalid profile whose signature is unknown."""
    from liushui.ingest import profiles

    matched = [s for s in profile_set.skipped if s.header_signature and profiles.has_header(path, s.header_signature)]
    if matched:
        return "; ".join(f"profile '{s.name}' would match but was skipped: {s.describe()}" for s in matched)
    unknown = [s for s in profile_set.skipped if not s.header_signature]
    if unknown:
        return "; ".join(f"skipped profile (might have matched): {s.describe()}" for s in unknown)
    return ""


def _read_profiled(path: Path, forced_profile: str | None, loaded: Profiles | None = None) -> tuple[pl.DataFrame, str]:
    from liushui.ingest import profiles  # the layout profiles are only needed for bank exports

    profile_set = (loaded or Profiles()).get()
    known = profile_set.profiles
    if forced_profile is not None:
        if forced_profile not in known:
            skipped = profile_set.skipped_named(forced_profile)
            if skipped is not None:
                raise FileRejected(f"profile '{forced_profile}' was skipped: {skipped.describe()}")
            raise FileRejected(f"unknown profile '{forced_profile}' (known: {', '.join(sorted(known))})")
        profile = known[forced_profile]
    else:
        try:
            detected = profiles.detect_profile(path, known)
        except profiles.AmbiguousLayout as exc:
            raise FileRejected(str(exc).removeprefix(f"{path.name}: ")) from None
        if detected is None:
            notes = [*profiles.near_misses(path, known), _skipped_note(path, profile_set)]
            note = "; ".join(n for n in notes if n)
            raise FileRejected(
                "unknown layout: the header matches neither the canonical columns "
                "(account_id, booked_at, amount, ...) nor any layout profile" + (f"; {note}" if note else "")
            )
        profile = detected
    try:
        return profiles.read_profiled(path, profile), profile.name
    except profiles.LayoutError as exc:
        raise FileRejected(str(exc)) from None


def read_raw(
    path: Path, forced_profile: str | None = None, profiles: Profiles | None = None
) -> tuple[pl.DataFrame, str]:
    """Pick the reader for a file from its content (not its extension) and return its raw frame and the
    layout name: Parquet by its magic number, then the canonical CSV header, then the layout profiles."""
    size = path.stat().st_size
    if size == 0:
        raise FileRejected("empty file (0 bytes)")
    with path.open("rb") as fh:
        head = fh.read(HEAD_BYTES)
    if head.startswith(PARQUET_MAGIC):
        return read_canonical_parquet(path), "canonical_parquet"
    if not head.strip() and (size <= len(head) or not path.read_bytes().strip()):
        raise FileRejected(f"empty file (only whitespace, {size} bytes)")
    workbook = workbook_kind(head, path)
    if workbook is not None:
        return _read_workbook(path, workbook, forced_profile, profiles)
    kind = binary_kind(head)
    if kind is not None:
        parquet_hint = " (a Parquet file starts with the bytes 'PAR1')" if path.suffix.lower() == ".parquet" else ""
        raise FileRejected(f"binary content ({kind}), not a CSV text export{parquet_hint}")
    if header_is_canonical(_first_line(head)):
        return read_canonical_csv(path), "canonical_csv"
    return _read_profiled(path, forced_profile, profiles)


def _read_workbook(
    path: Path, kind: str, forced_profile: str | None, profiles: Profiles | None
) -> tuple[pl.DataFrame, str]:
    """An Excel workbook: its first sheet in the canonical layout, else read with a layout profile (which
    names its sheet)."""
    try:
        text = sheet_csv(path)
    except WorkbookError as exc:
        raise FileRejected(str(exc)) from None
    first = text.splitlines()[0] if text.strip() else ""
    if forced_profile is None and header_is_canonical(next(csv.reader([first]), [])):
        return read_canonical_text(text), f"canonical_{kind}"
    if not text.strip() and forced_profile is None:
        raise FileRejected("empty workbook (the first sheet has no cells)")
    return _read_profiled(path, forced_profile, profiles)


def _file_row(path: Path, sha: str, *, batch_id: str, seen_at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "file_sha256": sha,
        "file_name": path.name,
        "size_bytes": path.stat().st_size,
        "batch_id": batch_id,
        "seen_at": seen_at,
        "profile": None,
        "error": None,
        "rows_read": 0,
        "rows_ok": 0,
        "rows_duplicate": 0,
        "rows_rejected": 0,
        **fields,
    }


def _rejected(path: Path, sha: str, *, batch_id: str, seen_at: datetime, error: str) -> FileOutcome:
    """A file rejected whole: its `source_files` row says why, and it has no rows."""
    return FileOutcome(
        path, _file_row(path, sha, batch_id=batch_id, seen_at=seen_at, status="rejected", error=error), None
    )


def read_files(
    paths: Iterable[Path],
    *,
    known_file_hashes: set[str],
    batch_id: str,
    latest_booking: date,
    forced_profile: str | None = None,
    profiles_dir: Path | None = None,
    hashes: FileHashes | None = None,
) -> Iterator[FileOutcome]:
    """Read and parse each file not ingested before, one at a time (memory holds one file's rows).
    Files whose SHA-256 is known (or repeated tonight) yield an outcome with `skipped` set; `hashes` answers a
    file's SHA-256 from the last run's when its stat has not changed (`liushui.file_hashes`). Bank exports
    are read with the shipped layout profiles and those of `profiles_dir` (same name: the user's wins)."""
    seen_at = datetime.now(UTC).replace(tzinfo=None)
    profiles = Profiles(profiles_dir)
    seen_hashes = set(known_file_hashes)
    hashes = hashes if hashes is not None else FileHashes(None)  # None: every file is hashed
    for path in paths:
        sha = hashes.sha256(path)
        if sha in seen_hashes:
            yield FileOutcome(path, None, None, skipped=True)
            continue
        seen_hashes.add(sha)
        try:
            raw, layout = read_raw(path, forced_profile, profiles)
            parsed = parse_raw(
                raw, source_file=path.name, file_sha256=sha, batch_id=batch_id, latest_booking=latest_booking
            )
        except FileRejected as exc:
            yield _rejected(path, sha, batch_id=batch_id, seen_at=seen_at, error=f"{path.name}: {exc}")
            continue
        except MemoryError:
            raise
        except Exception as exc:  # noqa: BLE001 - one unreadable file must not stop the night
            # A reader bug or a file shape nobody foresaw: the file is rejected (and retried next run)
            # with the exception named, instead of a traceback that loses every other file's rows.
            first_line = (str(exc).splitlines() or [""])[0][:200]
            why = f"{path.name}: cannot be read ({type(exc).__name__}: {first_line})"
            yield _rejected(path, sha, batch_id=batch_id, seen_at=seen_at, error=why)
            continue
        yield FileOutcome(
            path,
            _file_row(
                path,
                sha,
                batch_id=batch_id,
                seen_at=seen_at,
                profile=layout,
                status=file_status(rows_ok=parsed.good.height, rows_rejected=parsed.bad.height),
                rows_read=raw.height,
                rows_ok=parsed.good.height,
                rows_rejected=parsed.bad.height,
            ),
            parsed,
        )


def file_status(*, rows_ok: int, rows_rejected: int) -> str:
    """`loaded` (every row), `partial` (some rows quarantined) or `quarantined` (every row quarantined: the
    file loaded nothing, which the run reports like a rejected file)."""
    if not rows_rejected:
        return "loaded"
    return "partial" if rows_ok else "quarantined"


def files_loading_nothing(source_files: pl.DataFrame) -> list[str]:
    """One line per file of the night that put no row into `transactions` (rejected whole, every row
    quarantined, or no data rows), naming the file and why: the run reports them and exits 3."""
    why = (
        pl.when(pl.col("status") == "rejected")
        .then(pl.col("error"))
        .when(pl.col("status") == "quarantined")
        .then(pl.format("{}: all {} row(s) quarantined (see the quarantine table)", "file_name", "rows_rejected"))
        .otherwise(pl.format("{}: no data rows", "file_name"))
    )
    return source_files.filter(pl.col("rows_ok") == 0).select(why.alias("why"))["why"].to_list()


def source_files_table(rows: list[dict[str, Any]], duplicates: pl.DataFrame | None = None) -> pl.DataFrame:
    """The `source_files` rows of a night; `duplicates` (source_file, len) fills `rows_duplicate`."""
    source_files = pl.DataFrame(rows, schema_overrides={"seen_at": pl.Datetime("us")}) if rows else SOURCE_FILES.empty()
    if duplicates is not None and duplicates.height:
        source_files = (
            source_files.join(duplicates, left_on="file_name", right_on="source_file", how="left")
            .with_columns(rows_duplicate=pl.col("len").fill_null(0))
            .drop("len")
        )
    return SOURCE_FILES.conform(source_files).collect()


def ingest_files(
    paths: Iterable[Path],
    *,
    known_file_hashes: set[str],
    is_known_txn: Callable[[pl.Series], pl.Series],
    batch_id: str,
    latest_booking: date,
    forced_profile: str | None = None,
    profiles_dir: Path | None = None,
) -> IngestResult:
    """Read, parse and deduplicate the given files, in memory (the flow stages them instead:
    `liushui.ingest.staging`).

    `is_known_txn` maps a Series of txn ids to a boolean Series: already published?
    """
    goods: list[pl.DataFrame] = []
    bads: list[pl.DataFrame] = []
    files: list[dict[str, Any]] = []
    skipped = 0
    for outcome in read_files(
        paths,
        known_file_hashes=known_file_hashes,
        batch_id=batch_id,
        latest_booking=latest_booking,
        forced_profile=forced_profile,
        profiles_dir=profiles_dir,
    ):
        skipped += outcome.skipped
        if outcome.file_row is not None:
            files.append(outcome.file_row)
        if outcome.parsed is not None:
            goods.append(outcome.parsed.good)
            bads.append(outcome.parsed.bad)

    good = pl.concat(goods) if goods else CANONICAL_TRANSACTION.empty()
    bad = pl.concat(bads) if bads else QUARANTINE.empty()
    # Duplicates: first against what is already published, then among tonight's files (first file wins).
    known = is_known_txn(good["txn_id"]) if good.height else pl.Series(dtype=pl.Boolean)
    repeated = good["txn_id"].is_duplicated() & ~good.select(pl.col("txn_id").is_first_distinct()).to_series()
    duplicate = known | repeated if good.height else known
    return IngestResult(
        transactions=good.filter(~duplicate) if good.height else good,
        quarantine=bad,
        source_files=source_files_table(files, good.filter(duplicate).group_by("source_file").len()),
        skipped_files=skipped,
    )
