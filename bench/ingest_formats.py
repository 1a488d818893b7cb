"""Ingest of the same rows as unquoted CSV, quoted CSV and float Parquet (issue 13, item 7).

    python -m bench.ingest_formats --rows 1000000

Generates the rows once per size into `bench/out/ingest_formats_<rows>/` (Polars, deterministic), then times
what a run does per file — `inbox.read_raw` (reader choice and reading) and `parse.parse_raw` (typing,
checks, txn ids) — for each format, best of `--repeat`, and checks that every format gives the same
transactions. The section between the markers in BENCHMARKS.md is replaced (or appended) with the command
and the numbers; nothing else in the file is touched.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

from liushui.ingest.canonical import _read_canonical_csv_rowwise, decode_text
from liushui.ingest.inbox import read_raw
from liushui.ingest.parse import parse_raw

ROOT = Path(__file__).resolve().parents[1]


def section_markers(n: int) -> tuple[str, str]:
    """The start and end markers of the section of `n` rows: one section per row count."""
    return f"<!-- bench.ingest_formats {n}: start -->", f"<!-- bench.ingest_formats {n}: end -->"


FORMATS = ("unquoted CSV", "quoted CSV", "float Parquet")
ROW_BY_ROW = "quoted CSV, row-by-row reader (before)"
"""The same quoted file through the csv-module reader that quoted files took before the native path."""


def rows_frame(n: int) -> pl.DataFrame:
    """`n` canonical rows as text (money with 2 decimals, a third of balances and most counterparty
    accounts empty, no delimiter or quote inside a cell so that the unquoted file is valid too)."""
    i = pl.int_range(n, dtype=pl.Int64)
    cents = (i * 7919 % 2_000_001) - 1_000_000
    money = pl.format(
        "{}{}.{}",
        pl.when(cents < 0).then(pl.lit("-")).otherwise(pl.lit("")),
        cents.abs() // 100,
        (cents.abs() % 100).cast(pl.String).str.zfill(2),
    )
    seconds = i * 37 % (330 * 86_400)
    return pl.select(
        account_id=pl.format("6222{}", (i % 1000).cast(pl.String).str.zfill(12)),
        booked_at=(pl.lit(datetime(2026, 1, 1)) + pl.duration(seconds=seconds)).dt.strftime("%Y-%m-%d %H:%M:%S"),
        amount=money,
        currency=pl.lit("CNY"),
        balance_after=pl.when(i % 3 == 0).then(pl.lit("")).otherwise(money.str.replace("-", "", literal=True)),
        counterparty_name=pl.format("商户{}", (i % 5000).cast(pl.String)),
        counterparty_account=pl.when(i % 4 == 0)
        .then(pl.format("6217{}", (i % 777).cast(pl.String)))
        .otherwise(pl.lit("")),
        description=pl.when(i % 2 == 0).then(pl.lit("消费 外卖")).otherwise(pl.lit("转账")),
        channel=pl.lit(""),
    )


def write_inputs(directory: Path, n: int) -> dict[str, Path]:
    """The three files of `n` rows (written once per size)."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "unquoted CSV": directory / "unquoted.csv",
        "quoted CSV": directory / "quoted.csv",
        "float Parquet": directory / "float.parquet",
    }
    marker = directory / "DONE"
    if marker.exists():
        return paths
    frame = rows_frame(n)
    frame.write_csv(paths["unquoted CSV"], quote_style="never")
    frame.write_csv(paths["quoted CSV"], quote_style="always")  # every cell quoted, empty cells ""
    frame.with_columns(
        pl.col("amount").cast(pl.Float64),
        pl.when(pl.col("balance_after") == "").then(None).otherwise(pl.col("balance_after")).cast(pl.Float64),
    ).write_parquet(paths["float Parquet"])
    marker.write_text(str(n))
    return paths


@dataclass(frozen=True)
class Timing:
    fmt: str
    size_mib: float
    read_s: float
    parse_s: float
    cpu_s: float
    rows_ok: int
    rows_rejected: int
    amount_sum: str

    @property
    def total_s(self) -> float:
        return self.read_s + self.parse_s


def _read(fmt: str, path: Path) -> pl.DataFrame:
    if fmt == ROW_BY_ROW:
        return _read_canonical_csv_rowwise(decode_text(path.read_bytes()))
    return read_raw(path)[0]


def measure(fmt: str, path: Path, repeat: int) -> Timing:
    best: Timing | None = None
    for _ in range(repeat):
        cpu0, t0 = time.process_time(), time.perf_counter()
        raw = _read(fmt, path)
        t1 = time.perf_counter()
        parsed = parse_raw(
            raw, source_file=path.name, file_sha256="", batch_id="bench", latest_booking=date(2026, 12, 31)
        )
        t2 = time.perf_counter()
        timing = Timing(
            fmt,
            path.stat().st_size / 2**20,
            t1 - t0,
            t2 - t1,
            time.process_time() - cpu0,
            parsed.good.height,
            parsed.bad.height,
            str(parsed.good["amount"].sum()),
        )
        if best is None or timing.total_s < best.total_s:
            best = timing
        del raw, parsed
    assert best is not None
    return best


def section(n: int, timings: list[Timing], command: str, load: tuple[float, float]) -> str:
    unquoted = next(t for t in timings if t.fmt == "unquoted CSV").total_s
    start, end = section_markers(n)
    lines = [
        start,
        f"## Ingest by input format ({n:,} rows)",
        "",
        f"`{command}` — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, polars {pl.__version__}; load average (1 min) {load[0]:.1f} → {load[1]:.1f} "
        "(the machine is shared: CPU seconds are steadier than wall time).",
        "",
        "The same generated rows in each format; per file what a run does: `inbox.read_raw` (reader choice and "
        "reading) and `parse.parse_raw` (typing, checks, txn ids); best of the repeats, in one process. Every "
        "format gives the same transactions (rows and amount sum checked)."
        + (
            " The last row times the csv-module reader that quoted files took before "
            "(`canonical._read_canonical_csv_rowwise`, once), for comparison."
            if any(t.fmt == ROW_BY_ROW for t in timings)
            else " (The csv-module reader quoted files took before was not timed at this size: `--skip-row-by-row`.)"
        ),
        "",
        "| format | file MiB | read s | parse s | total s | CPU s | ÷ unquoted | rows ok | quarantined |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in timings:
        lines.append(
            f"| {t.fmt} | {t.size_mib:,.0f} | {t.read_s:.2f} | {t.parse_s:.2f} | {t.total_s:.2f} | {t.cpu_s:.2f} | "
            f"{t.total_s / unquoted:.2f}× | {t.rows_ok:,} | {t.rows_rejected:,} |"
        )
    lines += [
        "",
        "Quoted CSV is read by pyarrow.csv on one thread (`liushui/ingest/native_csv.py`: quotes and line breaks "
        "inside quotes handled natively, ragged rows quarantined with their line); unquoted CSV by Polars; float "
        "Parquet money is taken where exact at cents.",
        end,
    ]
    return "\n".join(lines) + "\n"


def update_markdown(markdown: Path, text: str, n: int, *, markers: tuple[str, str] | None = None) -> None:
    """Replace the section of `n` rows between its markers (this module's, unless given), or append it."""
    old = markdown.read_text(encoding="utf-8") if markdown.exists() else ""
    start, end = markers or section_markers(n)
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end) + r"\n?", flags=re.DOTALL)
    if pattern.search(old):
        new = pattern.sub(lambda _: text, old, count=1)
    else:
        new = old.rstrip("\n") + ("\n\n" if old else "") + text
    markdown.write_text(new, encoding="utf-8")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    parser.add_argument("--markdown", type=Path, default=ROOT / "BENCHMARKS.md")
    parser.add_argument("--skip-row-by-row", action="store_true", help="do not time the old reader (once)")
    args = parser.parse_args(argv)
    paths = write_inputs(args.out / f"ingest_formats_{args.rows}", args.rows)
    load_start = os.getloadavg()[0]
    timings = [measure(fmt, paths[fmt], args.repeat) for fmt in FORMATS]
    if not args.skip_row_by_row:
        timings.append(measure(ROW_BY_ROW, paths["quoted CSV"], 1))
    load_end = os.getloadavg()[0]
    sums = {(t.rows_ok, t.rows_rejected, t.amount_sum) for t in timings}
    if len(sums) != 1:
        raise SystemExit(f"formats disagree: {timings}")
    for t in timings:
        print(f"{t.fmt:40} read {t.read_s:6.2f} s, parse {t.parse_s:6.2f} s, ", end="")
        print(f"total {t.total_s:6.2f} s, cpu {t.cpu_s:6.2f} s")
    command = (
        f"python -m bench.ingest_formats --rows {args.rows}"
        + (f" --repeat {args.repeat}" if args.repeat != 3 else "")
        + (" --skip-row-by-row" if args.skip_row_by_row else "")
    )
    update_markdown(args.markdown, section(args.rows, timings, command, (load_start, load_end)), args.rows)


if __name__ == "__main__":
    main()
