"""The console entry point: a run's first line comes before the libraries are imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from apps.entry import first_line

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "--inbox", "x"], "liushui run: starting ..."),
        (["reingest", "a.csv"], "liushui reingest: starting ..."),
        (["backfill", "--start", "2026-01-01"], "liushui backfill: starting ..."),
        (["run", "--help"], None),
        (["run", "-h"], None),
        (["flags", "--code", "ROUND_TRIP"], None),
        (["query", "SELECT 1"], None),
        ([], None),
    ],
)
def test_first_line_only_for_run_commands(args: list[str], expected: str | None) -> None:
    assert first_line(args) == expected


def test_entry_module_imports_no_heavy_library() -> None:
    """What makes the first line come within the first second: the entry module loads nothing heavy."""
    heavy = "('polars', 'duckdb', 'pyarrow', 'typer')"
    probe = f"import sys, apps.entry; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_installed_script_prints_starting_first(tmp_path: Path) -> None:
    """The installed `liushui` script goes through the entry point: the starting line precedes the error of a
    missing inbox, which needs the command line loaded."""
    script = Path(sys.executable).with_name("liushui")
    out = subprocess.run(
        [str(script), "run", "--inbox", str(tmp_path / "missing"), "--db", str(tmp_path / "w.duckdb")],
        capture_output=True,
        text=True,
        check=False,
    )
    lines = out.stderr.splitlines()
    assert lines[0] == "liushui run: starting ..."
    assert any("does not exist" in line for line in lines[1:])
    assert out.returncode == 1
