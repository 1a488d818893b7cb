"""`liushui profile check FILE`: what ingest would make of one file, in seconds and without Prefect or the
database. Which profile matches it (and every other that matches too: ambiguity), the first rows as parsed,
every row that would be quarantined with its reason and line, totals in / out per currency.

The file goes through the same reader choice and parser as a run (`inbox.read_raw`, `parse.parse_raw`), so
what the check says is what a run would load.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl

from liushui.ingest.canonical import FileRejected
from liushui.ingest.inbox import Profiles, read_raw
from liushui.ingest.parse import parse_raw
from liushui.ingest.profile_spec import SHIPPED_PROFILES_DIR

EXIT_OK = 0
EXIT_NOTHING_LOADED = 3
EXIT_QUARANTINED = 4


@dataclass(frozen=True)
class CurrencyTotals:
    currency: str
    money_in: Decimal
    rows_in: int
    money_out: Decimal
    rows_out: int
    rows_neutral: int = 0
    """Rows the export marks neutral (`flow_tag`): counted in neither in nor out."""

    @property
    def net(self) -> Decimal:
        return self.money_in + self.money_out


@dataclass(frozen=True)
class CheckReport:
    file: Path
    layout: str | None
    """The profile name (or canonical_csv / canonical_parquet / excel_canonical); None when rejected."""
    profile_path: Path | None = None
    also_matching: tuple[str, ...] = ()
    """Other profiles whose header signature is in the file too (the chosen one is the most specific)."""
    error: str | None = None
    """Why the whole file is rejected."""
    rows_read: int = 0
    good: pl.DataFrame = field(default_factory=pl.DataFrame)
    quarantined: list[tuple[int, int | None, str, str]] = field(default_factory=list)
    """(row, physical line or None, reason code, reason) per quarantined row."""
    totals: list[CurrencyTotals] = field(default_factory=list)
    skipped_profiles: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int:
        """0: every row parses; 4: some rows would be quarantined; 3: nothing would load."""
        if self.error is not None or self.good.height == 0:
            return EXIT_NOTHING_LOADED
        return EXIT_QUARANTINED if self.quarantined else EXIT_OK


def check_file(
    path: Path, *, profile: str | None = None, profiles_dir: Path | None = None, today: date | None = None
) -> CheckReport:
    """Read and parse `path` as a run would (booking dates after `today` are quarantined as in the future)."""
    from liushui.ingest.profiles import matching_profiles

    loaded = Profiles(profiles_dir)
    skipped: tuple[str, ...] = ()
    with contextlib.suppress(FileRejected):  # a folder that cannot be loaded is reported with the file
        skipped = tuple(s.describe() for s in loaded.get().skipped)
    try:
        raw, layout = read_raw(path, profile, loaded)
        parsed = parse_raw(
            raw, source_file=path.name, file_sha256="", batch_id="check", latest_booking=today or date.today()
        )
    except FileRejected as exc:
        return CheckReport(path, None, error=f"{path.name}: {exc}", skipped_profiles=skipped)
    profile_set = loaded.get() if not layout.startswith("canonical") else None
    chosen = profile_set.profiles.get(layout) if profile_set is not None else None
    also: tuple[str, ...] = ()
    if profile_set is not None:
        also = tuple(p.name for p in matching_profiles(path, profile_set.profiles) if p.name != layout)
    lines = (
        dict(zip(raw["source_row"].to_list(), raw["source_line"].to_list(), strict=True))
        if "source_line" in raw.columns
        else {}
    )
    quarantined = [
        (row, lines.get(row), code, _without_prefix(reason, path.name, row))
        for row, code, reason in parsed.bad.select("source_row", "reason_code", "reason").iter_rows()
    ]
    return CheckReport(
        path,
        layout,
        profile_path=chosen.path if chosen is not None else None,
        also_matching=also,
        rows_read=raw.height,
        good=parsed.good,
        quarantined=quarantined,
        totals=_totals(parsed.good),
        skipped_profiles=skipped,
    )


def _without_prefix(reason: str, file_name: str, row: int) -> str:
    prefix = f"{file_name}, row {row}: "
    return reason[len(prefix) :] if reason.startswith(prefix) else reason


def _totals(good: pl.DataFrame) -> list[CurrencyTotals]:
    if good.is_empty():
        return []
    counted = pl.col("flow_tag").is_null()
    amount = pl.col("amount")
    frame = (
        good.group_by("currency")
        .agg(
            money_in=amount.filter(counted & (amount > 0)).sum(),
            rows_in=(counted & (amount > 0)).sum(),
            money_out=amount.filter(counted & (amount < 0)).sum(),
            rows_out=(counted & (amount < 0)).sum(),
            rows_neutral=(~counted).sum(),
        )
        .sort("currency")
    )
    return [
        CurrencyTotals(
            r["currency"],
            Decimal(r["money_in"] or 0).quantize(Decimal("0.01")),
            int(r["rows_in"]),
            Decimal(r["money_out"] or 0).quantize(Decimal("0.01")),
            int(r["rows_out"]),
            int(r["rows_neutral"]),
        )
        for r in frame.iter_rows(named=True)
    ]


def render(report: CheckReport, *, first_rows: int = 5) -> list[str]:
    """The report as plain text lines (what `liushui profile check` prints)."""
    out = [f"file: {report.file.name}"]
    for skipped in report.skipped_profiles:
        out.append(f"skipped profile: {skipped}")
    if report.error is not None:
        out.append(f"rejected: {report.error}")
        out.append("result: nothing would load (exit 3)")
        return out
    where = ""
    if report.profile_path is not None:
        shipped = report.profile_path.parent == SHIPPED_PROFILES_DIR
        where = f" (shipped profile {report.profile_path.name})" if shipped else f" (profile {report.profile_path})"
    out.append(f"layout: {report.layout}{where}")
    if report.also_matching:
        out.append(
            f"ambiguous: also matches {', '.join(report.also_matching)} "
            f"({report.layout} chosen: its columns include theirs; force one with --profile)"
        )
    out.append(
        f"rows: {report.rows_read} read, {report.good.height} parse, {len(report.quarantined)} would be quarantined"
    )
    if report.good.height:
        shown = min(first_rows, report.good.height)
        out.append(f"first {shown} row(s) as parsed:")
        for r in report.good.head(first_rows).iter_rows(named=True):
            balance = f" balance {r['balance_after']}" if r["balance_after"] is not None else ""
            counterparty = " / ".join(c for c in (r["counterparty_name"], r["counterparty_account"]) if c)
            out.append(
                f"  row {r['source_row']}: {r['account_id']} {r['booked_at']} {r['amount']} {r['currency']}{balance}"
                + (f" | {counterparty}" if counterparty else "")
                + (f" | {r['description']}" if r["description"] else "")
                + (f" | neutral ({r['flow_tag']})" if r["flow_tag"] else "")
            )
    if report.quarantined:
        out.append("would be quarantined:")
        for row, line, reason_code, reason in report.quarantined:
            at = f"row {row}, line {line}" if line is not None else f"row {row}"
            out.append(f"  {at}: {reason_code}: {reason}")
    if report.totals:
        out.append("totals of the rows that parse:")
        for t in report.totals:
            out.append(
                f"  {t.currency}: in {t.money_in} ({t.rows_in} rows), out {t.money_out} ({t.rows_out} rows), "
                f"net {t.net}" + (f"; {t.rows_neutral} neutral row(s), in neither" if t.rows_neutral else "")
            )
    exit_code = report.exit_code
    result = {
        EXIT_OK: "every row parses (exit 0)",
        EXIT_QUARANTINED: f"{len(report.quarantined)} row(s) would be quarantined (exit 4)",
        EXIT_NOTHING_LOADED: "nothing would load (exit 3)",
    }[exit_code]
    out.append(f"result: {result}")
    return out
