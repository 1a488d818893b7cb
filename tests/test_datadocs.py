"""Data Docs of a run, built from the runner's own GX results (real GX 1.24, no second validation)."""

from __future__ import annotations

import sys
from datetime import date, datetime
from decimal import Decimal

import polars as pl
import pytest

from expectations.datadocs import build_data_docs, data_docs_dir, prune_data_docs

AS_OF = date(2024, 6, 30)
_NETWORK: dict = {"on": False, "events": []}


def _audit(event: str, args: tuple) -> None:
    if _NETWORK["on"] and event in {"socket.connect", "socket.getaddrinfo", "http.client.connect"}:
        _NETWORK["events"].append((event, repr(args)[:200]))


sys.addaudithook(_audit)


def canonical(account_ids: list[str | None]) -> pl.DataFrame:
    n = len(account_ids)
    return pl.DataFrame(
        {
            "txn_id": [f"t{i}" for i in range(n)],
            "account_id": account_ids,
            "booked_at": [datetime(2024, 3, i + 1, 10) for i in range(n)],
            "amount": pl.Series([Decimal("12.50")] * n, dtype=pl.Decimal(18, 2)),
            "currency": ["CNY"] * n,
            "balance_after": pl.Series([None] * n, dtype=pl.Decimal(18, 2)),
            "counterparty_name": ["某某公司"] * n,
            "counterparty_account": [None] * n,
            "description": ["工资"] * n,
            "channel": [None] * n,
            "flow_tag": [None] * n,
            "source_file": ["a.csv"] * n,
            "source_row": list(range(1, n + 1)),
            "batch_id": ["b1"] * n,
        },
        schema_overrides={"counterparty_account": pl.String, "channel": pl.String, "flow_tag": pl.String},
    )


@pytest.fixture(scope="module")
def validation():
    from expectations.runner import validate_tables

    good = validate_tables({"canonical_transactions": canonical(["a1", "a2"])}, run_id="r-good", as_of=AS_OF)
    bad = validate_tables({"quarantine": pl.DataFrame({"source_file": ["x.csv"]})}, run_id="r-good", as_of=AS_OF)
    return good | bad


def test_runner_keeps_gx_results_next_to_the_rows(validation):
    assert set(validation.gx_results) == {"canonical_transactions", "quarantine"}
    assert validation.rows.filter(pl.col("table_name") == "canonical_transactions")["success"].all()
    assert not validation.rows.filter(pl.col("table_name") == "quarantine")["success"].all()
    checks = sum(len(r.results) for results in validation.gx_results.values() for r in results)
    assert checks == validation.rows.height  # every dq_results row has its GX result


def test_index_lists_every_suite_and_shows_failures(validation, tmp_path):
    _NETWORK["on"] = True
    try:
        index = build_data_docs(validation.gx_results, data_docs_dir(tmp_path / "w.duckdb", "r-good"))
    finally:
        _NETWORK["on"] = False
    assert _NETWORK["events"] == []  # built offline
    assert index == tmp_path / "gx_docs" / "r-good" / "index.html"
    text = index.read_text(encoding="utf-8")
    for suite in ("canonical_transactions", "canonical_transactions__schema", "quarantine", "quarantine__schema"):
        assert suite in text
    assert "Failed" in text and "Success" in text
    pages = {
        p.parent.parent.parent.name: p.read_text(encoding="utf-8")
        for p in index.parent.glob("validations/*/r-good/*/*.html")
    }
    assert set(pages) == {
        "canonical_transactions",
        "canonical_transactions__schema",
        "quarantine",
        "quarantine__schema",
    }
    assert "Failed" in pages["quarantine__schema"] and "reason_code" in pages["quarantine__schema"]


def test_rebuilding_replaces_the_folder_and_old_runs_are_pruned(validation, tmp_path):
    db = tmp_path / "w.duckdb"
    for run_id in ("20260101T000000-a", "20260102T000000-b", "20260103T000000-c"):
        build_data_docs(validation.gx_results, data_docs_dir(db, run_id))
    stale = data_docs_dir(db, "20260103T000000-c") / "stale.html"
    stale.write_text("old", encoding="utf-8")
    build_data_docs(validation.gx_results, data_docs_dir(db, "20260103T000000-c"))
    assert not stale.exists()
    removed = prune_data_docs(db, keep=2)
    assert [p.name for p in removed] == ["20260101T000000-a"]
    assert sorted(p.name for p in (tmp_path / "gx_docs").iterdir()) == ["20260102T000000-b", "20260103T000000-c"]


def test_run_data_docs_task_never_fails_the_run(tmp_path, capsys):
    from flows.artifacts import build_run_data_docs

    assert build_run_data_docs.fn({"transactions": [object()]}, tmp_path / "w.duckdb", "r1") is None
    assert "Data Docs of run r1 not built" in capsys.readouterr().err
