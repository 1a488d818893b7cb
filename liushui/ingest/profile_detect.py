"""Which layout profile a file is in: the one whose header signature appears in the first lines of the
file, decoded from its first bytes only. Files in the canonical layout, and files that cannot be text,
match no profile (`profile_read` says why such a file cannot be read)."""

from __future__ import annotations

import codecs
import re
from pathlib import Path

from liushui.ingest.canonical import binary_kind
from liushui.ingest.profile_spec import Profile, norm_header
from liushui.ingest.profile_text import LayoutError, auto_encodings, find_header, split_cells
from liushui.ingest.workbook import WorkbookError, is_workbook, sheet_csv

CANONICAL_HEADER = frozenset({"account_id", "booked_at", "amount"})
DETECT_BYTES = 256 * 1024  # how much of a file detect_profile decodes


class AmbiguousLayout(LayoutError):
    """Several profiles claim a file and none is more specific than the others: none is picked."""


def detect_profile(path: Path, profiles: dict[str, Profile]) -> Profile | None:
    """The profile that claims ``path``, or None.

    A profile claims a file when a line among its first `header_search_lines` holds every name of its
    ``header_signature`` and every column it reads (``required_norm``), and none of its ``header_exclude``
    names (columns that mark another layout, e.g. the same bank's credit-card export). When several claim
    it, the one whose required columns include every other's (strictly) wins; otherwise the file is
    ambiguous and `AmbiguousLayout` names them. Files in the canonical layout (a header with
    ``account_id``, ``booked_at`` and ``amount`` before any profile header) give None, as do empty,
    binary and undecodable files (``read_profiled`` raises ``LayoutError`` with the reason).
    """
    found = matching_profiles(path, profiles)
    if not found:
        return None
    best, rivals = found[0], found[1:]
    equal = [p for p in rivals if not p.required_norm < best.required_norm]
    if equal:
        names = ", ".join(f"'{p.name}'" for p in [best, *equal])
        raise AmbiguousLayout(
            f"{Path(path).name}: ambiguous layout: profiles {names} all match the header and none is more "
            "specific (its columns a superset of the others'); force one with --profile, or give one a "
            "distinguishing header_signature / header_exclude"
        )
    return best


def matching_profiles(path: Path, profiles: dict[str, Profile]) -> list[Profile]:
    """Every profile that claims ``path`` (see `detect_profile`), most required columns first: more than
    one means another profile also fits the layout."""
    return [p for p, _ in _survey(Path(path), profiles)[0]]


def near_misses(path: Path, profiles: dict[str, Profile]) -> list[str]:
    """Why each profile whose header signature is in ``path`` does not claim it (a column it reads is
    missing, or a column that marks another layout is present): for the "unknown layout" message."""
    return _survey(Path(path), profiles)[1]


def _survey(path: Path, profiles: dict[str, Profile]) -> tuple[list[tuple[Profile, int]], list[str]]:
    """(claiming profiles with their header line index, best first; reasons of the near misses)."""
    heads: dict[str, list[str] | None] = {}
    found: list[tuple[tuple[int, int, str], Profile, int]] = []
    misses: list[str] = []
    workbook = is_workbook(path)
    for profile in profiles.values():
        # a workbook: the profile's sheet as CSV text; else the first bytes in the profile's encoding
        enc = f"sheet {profile.spec.sheet!r}" if workbook else profile.encoding
        if enc not in heads:
            text = _sheet_head(path, profile) if workbook else _decode_head(path, enc)
            heads[enc] = None if text is None else text.lstrip("\ufeff").splitlines()
        lines = heads[enc]
        if not lines:
            continue
        if not profile.spec.has_header:
            if _first_row_fits(lines, profile):
                found.append(((-len(profile.required_norm), 0, profile.name), profile, 0))
            continue
        idx = find_header(lines, profile, profile.spec.header_search_lines)
        if idx is None or _canonical_header_by(lines, idx):
            continue
        cells = {norm_header(c) for c in split_cells(lines[idx], profile.spec.delimiter)}
        missing = sorted(profile.required_norm - cells)
        marked = sorted(profile.exclude_norm & cells)
        if marked:
            misses.append(
                f"profile '{profile.name}' does not apply: the header (line {idx + 1}) has {', '.join(marked)}, "
                "which marks another layout (header_exclude)"
            )
        elif missing:
            misses.append(
                f"profile '{profile.name}' does not apply: the header (line {idx + 1}) lacks the column(s) "
                f"{', '.join(missing)} it reads"
            )
        else:
            found.append(((-len(profile.required_norm), idx, profile.name), profile, idx))
    found.sort(key=lambda kpi: kpi[0])
    return [(p, i) for _, p, i in found], misses


def _first_row_fits(lines: list[str], profile: Profile) -> bool:
    """A file without a header line is claimed by a profile whose `row_pattern` its first non-blank line
    matches, when that line has as many cells as the profile's `column_names`."""
    first = next((line for line in lines if line.strip()), None)
    if first is None or not re.search(profile.spec.row_pattern or "", first):
        return False
    return len(split_cells(first, profile.spec.delimiter)) == len(profile.spec.column_names or ())


def has_header(path: Path, signature: tuple[str, ...], limit: int = 60) -> bool:
    """Whether a line among the first `limit` of ``path`` (decoded as ``auto``) has every name of
    `signature` as a cell: would a profile with this signature have matched?"""
    want = {norm_header(s) for s in signature}
    text = sheet_head(Path(path), 0) if is_workbook(Path(path)) else _decode_head(Path(path), "auto")
    if not want or text is None:
        return False
    return any(want <= {norm_header(c) for c in split_cells(line, ",")} for line in text.splitlines()[:limit])


def _canonical_header_by(lines: list[str], idx: int) -> bool:
    """Whether one of `lines[: idx + 1]` is a canonical header (the file is canonical, not a bank export)."""
    return any({norm_header(c) for c in split_cells(line, ",")} >= CANONICAL_HEADER for line in lines[: idx + 1])


def _sheet_head(path: Path, profile: Profile) -> str | None:
    return sheet_head(path, profile.spec.sheet, profile.spec.delimiter)


def sheet_head(path: Path, sheet: str | int, delimiter: str = ",") -> str | None:
    """An Excel sheet as CSV text for detection; None when it cannot be read."""
    try:
        return sheet_csv(path, sheet, delimiter)
    except WorkbookError:
        return None


def _decode_head(path: Path, encoding: str) -> str | None:
    """Decode the first DETECT_BYTES of a file for detection; None when it cannot be text."""
    try:
        with path.open("rb") as fh:
            head = fh.read(DETECT_BYTES)
    except OSError:
        return None
    if not head.strip() or binary_kind(head) is not None:
        return None
    for enc in [encoding] if encoding != "auto" else auto_encodings(head):
        try:
            return codecs.getincrementaldecoder(enc)().decode(head, final=False)
        except UnicodeDecodeError:
            continue
    return None
