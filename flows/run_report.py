"""The report of one nightly run: status, mode, as-of, counts, per-stage time and peak memory, and the files
that loaded nothing. The flow fills it; the CLI, the run artifacts and `pipeline_runs` read it."""

from __future__ import annotations

import contextlib
import json
import platform
import resource
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from liushui.config import Settings


def new_run_id() -> str:
    """A run id: the UTC start second and 8 random hex digits; also the Prefect flow run's name."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]


@dataclass
class RunReport:
    run_id: str
    status: str = "running"
    mode: str = "full"
    as_of: date | None = None
    counts: dict[str, int] = field(default_factory=dict)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    stage_peak_rss_mb: dict[str, float] = field(default_factory=dict)
    message: str = ""
    rejected_files: list[str] = field(default_factory=list)
    files_loading_nothing: list[str] = field(default_factory=list)
    """Files of the night that put no row into `transactions` ("name: why"): rejected whole, every row
    quarantined, or no data rows."""
    warnings: list[str] = field(default_factory=list)
    """What the run could not judge (`liushui.reference.reference_warnings`): published anyway, said in the
    closing line, on stderr and in `pipeline_runs.warnings_json`."""

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Time a stage, record its wall time and its own peak memory, and show progress on stderr."""
        print(f"liushui: {name} ...", file=sys.stderr, flush=True)
        _reset_peak_rss()
        started = time.perf_counter()
        yield
        self.stage_seconds[name] = round(time.perf_counter() - started, 3)
        self.stage_peak_rss_mb[name] = round(_peak_rss_mib(), 1)
        print(
            f"liushui: {name} done in {self.stage_seconds[name]:.1f} s "
            f"(peak memory {self.stage_peak_rss_mb[name]:.0f} MiB)",
            file=sys.stderr,
            flush=True,
        )

    def summary(self) -> str:
        """One line: mode, as-of, files and rows of the night (the run's closing message)."""
        c = self.counts
        return (
            f"{self.mode} run as of {self.as_of}: {c.get('files_new', 0)} new file(s) "
            f"({c.get('files_rejected', 0)} rejected, {c.get('files_skipped_known', 0)} already known), "
            f"{c.get('rows_new', 0)} new transaction(s), {c.get('rows_duplicate', 0)} duplicate(s), "
            f"{c.get('rows_quarantined', 0)} quarantined"
            + (f"; nothing loaded from {len(self.files_loading_nothing)} file(s)" if self.files_loading_nothing else "")
            + (f"; {len(self.warnings)} warning(s)" if self.warnings else "")
        )


def _reset_peak_rss() -> None:
    """Start a new high-water mark of this process's memory (Linux: writing 5 to clear_refs resets
    VmHWM), so that each stage reports its own peak rather than the run's peak so far."""
    # Not Linux (or not allowed): the stage reports the running maximum.
    with contextlib.suppress(OSError):
        Path("/proc/self/clear_refs").write_text("5")


def _peak_rss_mib() -> float:
    """VmHWM (peak resident memory since the last reset) in MiB; ru_maxrss where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


DISTRIBUTIONS = {
    "polars": "polars",
    "duckdb": "duckdb",
    "pyarrow": "pyarrow",
    "prefect": "prefect",
    "great_expectations": "great-expectations",
}
"""`pipeline_runs.versions_json` keys and the installed distributions they are read from."""


def library_versions(rules_versions: dict[str, str]) -> str:
    """`pipeline_runs.versions_json`: Python, the libraries (from the installed distributions' metadata, so that a
    quiet night need not import Prefect and Great Expectations to ask them) and the rules."""
    versions: dict[str, object] = {"python": platform.python_version()}
    for name, distribution in DISTRIBUTIONS.items():
        try:
            versions[name] = version(distribution)
        except PackageNotFoundError:
            versions[name] = None
    versions["rules"] = rules_versions
    return json.dumps(versions, sort_keys=True)


def run_row(
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
        "warnings_json": json.dumps(report.warnings, ensure_ascii=False),
        "message": report.message,
    }
