"""A fresh clone or a pip install: no `data/` folder, no Prefect home, any working directory.

The run must create every state folder it needs beside the database it serves, and Prefect's home must
belong to that database, so that two databases never share one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from liushui.runtime import prefect_home, use_prefect_home

LIUSHUI = Path(sys.executable).parent / "liushui"
HEADER = "account_id,booked_at,amount,currency,balance_after,counterparty_name,counterparty_account,description\n"


def test_prefect_home_lives_beside_its_database(tmp_path):
    assert prefect_home(tmp_path / "a" / "risk.duckdb") == tmp_path / "a" / "prefect" / "risk"
    assert prefect_home(tmp_path / "a" / "risk.duckdb") != prefect_home(tmp_path / "a" / "other.duckdb")


def test_use_prefect_home_creates_it_and_an_explicit_home_wins(tmp_path, monkeypatch):
    monkeypatch.delenv("PREFECT_HOME", raising=False)
    db = tmp_path / "not" / "yet" / "there.duckdb"
    home = use_prefect_home(db)
    assert home == tmp_path / "not" / "yet" / "prefect" / "there" and home.is_dir()
    assert os.environ["PREFECT_HOME"] == str(home)

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "mine"))
    assert use_prefect_home(tmp_path / "other.duckdb") == tmp_path / "mine"
    assert not (tmp_path / "prefect").exists()


@pytest.mark.slow
def test_first_run_from_another_directory_with_no_state_folders(tmp_path):
    """The reported crash: a clone has no data/ folder, and Prefect's home was pinned under it."""
    inbox = tmp_path / "exports"
    inbox.mkdir()
    (inbox / "night.csv").write_text(HEADER + "A1,2026-03-01 10:00:00,8000.00,CNY,,某公司,,工资\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    db = tmp_path / "state" / "deep" / "w.duckdb"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "LIUSHUI_"))}
    result = subprocess.run(
        [str(LIUSHUI), "run", "--inbox", str(inbox), "--db", str(db)],
        cwd=elsewhere,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "published" in result.stdout
    assert (tmp_path / "state" / "deep" / "prefect" / "w").is_dir()
    assert list(elsewhere.iterdir()) == []  # nothing written into the working directory
