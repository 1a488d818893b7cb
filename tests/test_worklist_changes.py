"""`liushui accounts --changed`: what the last publish changed, against the version published before it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from apps.cli import app
from liushui import contracts, queries, store
from tests.test_read_queries import rows

runner = CliRunner()


def state(*given: tuple[str, float, str, str, list[str]]) -> pl.DataFrame:
    return pl.DataFrame(
        [dict(zip(("account_id", "score", "band", "recovery_status", "active_flags"), g, strict=True)) for g in given],
        schema=queries.risk_state_schema().schema,
    )


def test_each_kind_of_change_is_named_and_an_unchanged_account_is_not():
    previous = state(
        ("A", 30.0, "low", "watch", ["INCOME_VOLATILE", "ROUND_TRIP"]),
        ("B", 20.0, "low", "watch", ["MULTI_LENDER"]),
        ("D", 10.0, "low", "watch", ["OVERDRAWN"]),
    )
    current = state(
        ("A", 55.5, "medium", "at_risk", ["ROUND_TRIP", "CYCLE"]),
        ("B", 20.0, "low", "watch", ["MULTI_LENDER"]),
        ("C", 0.0, "low", "clean", []),
        ("D", 10.004, "low", "watch", ["OVERDRAWN"]),  # edge: a score equal at 2 decimals is unchanged
    )
    changed = queries.with_changes(current, previous)
    assert changed.select("account_id", "change").rows() == [
        ("A", "score 30.0→55.5; band low→medium; recovery watch→at_risk; +CYCLE; -INCOME_VOLATILE"),
        ("B", None),
        ("C", "new"),
        ("D", None),
    ]


def test_without_a_previous_version_every_account_is_new():
    changed = queries.with_changes(state(("A", 1.0, "low", "watch", ["X"])), None)
    assert changed["change"].to_list() == ["new"]


def _risk(account_id: str, score: float, band: str, active: list[str]) -> dict:
    return {
        "account_id": account_id,
        "customer_id": "C1",
        "holder_name": "张三",
        "currency": "CNY",
        "as_of_on": date(2026, 10, 31),
        "score": score,
        "band": band,
        "recovery_status": "watch" if active else "clean",
        "active_flags": active,
        "active_flag_count": len(active),
        "score_components_json": "{}",
        "statement_trust": "ok",
        "recovery_clears_on": [],
        "remediation_zh": [],
        "remediation_en": [],
    }


def _publish(database: Path, *risks: dict) -> None:
    with store.writer(database) as con:
        store.publish(con, {"account_risk": rows(contracts.ACCOUNT_RISK, *risks)}, affected_accounts=None)


def test_changed_lists_what_the_last_publish_changed(tmp_path: Path):
    db = tmp_path / "w.duckdb"
    _publish(db, _risk("6222000000000000001", 10.0, "low", ["OVERDRAWN"]), _risk("6222000000000000002", 0.0, "low", []))
    first = runner.invoke(app, ["accounts", "--changed", "--format", "csv", "--db", str(db)])
    assert first.exit_code == 0, first.output
    assert [line.split(",")[0] for line in first.stdout.splitlines()[1:]] == [
        "6222000000000000001",
        "6222000000000000002",
    ]  # the first publish: everything is new
    _publish(
        db,
        _risk("6222000000000000001", 40.0, "medium", ["OVERDRAWN", "MULTI_LENDER"]),
        _risk("6222000000000000002", 0.0, "low", []),
    )
    result = runner.invoke(app, ["accounts", "--changed", "--format", "csv", "--db", str(db)])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].endswith(",change") and len(lines) == 2
    assert lines[1].startswith("6222000000000000001,C1,张三,40.0,medium,watch,")
    assert lines[1].endswith(",score 10.0→40.0; band low→medium; +MULTI_LENDER")
    unfiltered = runner.invoke(app, ["accounts", "--format", "csv", "--db", str(db)])
    assert "change" not in unfiltered.stdout.splitlines()[0]
