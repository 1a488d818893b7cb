"""A run without reference data says which rules it could not judge: on stderr, in the closing line and in
`pipeline_runs.warnings_json`."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import polars as pl
from typer.testing import CliRunner

from apps.cli import app
from liushui.contracts import ACCOUNTS_REF, FX_RATES_REF, RELATED_PARTIES_REF
from liushui.reference import reference_warnings

runner = CliRunner()

ACCOUNTS = ACCOUNTS_REF.conform(
    pl.DataFrame({"account_id": ["A1"], "customer_id": ["C1"], "holder_name": ["张三"], "account_type": ["personal"]})
).collect()
RELATED = RELATED_PARTIES_REF.conform(
    pl.DataFrame({"customer_id": ["C1"], "party_name": ["李四"], "party_account": [None], "relation": ["spouse"]})
).collect()
USD_RATE = FX_RATES_REF.conform(
    pl.DataFrame({"currency": ["USD"], "rate_to_cny": [7.1], "valid_from": [None]})
).collect()


def test_complete_reference_warns_of_nothing() -> None:
    assert reference_warnings(Path("ref"), ACCOUNTS, RELATED, USD_RATE, ["CNY", "USD"]) == []


def test_each_missing_input_is_one_line_naming_its_rules() -> None:
    found = reference_warnings(
        None, ACCOUNTS_REF.empty(), RELATED_PARTIES_REF.empty(), FX_RATES_REF.empty(), ["CNY", "USD", "HKD"]
    )
    assert len(found) == 3
    accounts, related, fx = found
    assert accounts.startswith("accounts.csv missing or empty (no --reference folder)")
    assert "OVERDRAWN" in accounts and "COMMINGLING" in accounts
    assert related.startswith("related_parties.csv missing or empty") and "RELATED_TRANSFER_HEAVY" in related
    assert fx.startswith("fx_rates.csv has no rate for HKD, USD") and "CYCLE" in fx


def test_a_cny_only_batch_needs_no_rates() -> None:
    """Edge: without fx_rates.csv, a batch in CNY alone loses nothing."""
    assert reference_warnings(Path("ref"), ACCOUNTS, RELATED, FX_RATES_REF.empty(), ["CNY"]) == []


def test_a_rate_for_one_currency_leaves_the_other_named() -> None:
    found = reference_warnings(Path("ref"), ACCOUNTS, RELATED, USD_RATE, ["CNY", "USD", "EUR"])
    assert found == [
        "fx_rates.csv has no rate for EUR (ref): transfers that change currency into or out of it are not compared "
        "(CYCLE, SCATTER_GATHER, mirrored transfer legs)"
    ]


CANONICAL = (
    "account_id,booked_at,amount,currency,balance_after,counterparty_name,counterparty_account,description\n"
    "A1,2026-03-01 10:00:00,8000.00,CNY,,某某科技有限公司,,工资\n"
    "A1,2026-03-05 10:00:00,-120.00,CNY,,超市,,消费\n"
)


def _warnings_json(db: Path) -> list[str]:
    with duckdb.connect(str(db), read_only=True) as con:
        row = con.execute("SELECT warnings_json FROM pipeline_runs ORDER BY started_at DESC LIMIT 1").fetchone()
    assert row is not None
    return json.loads(row[0])


def test_a_run_without_reference_says_so_and_records_it(prefect_harness, tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "a.csv").write_text(CANONICAL, encoding="utf-8")
    db = tmp_path / "w.duckdb"
    result = runner.invoke(app, ["run", "--inbox", str(inbox), "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "; 2 warning(s)" in result.output
    assert "warning: accounts.csv missing or empty (no --reference folder)" in result.output
    assert "warning: related_parties.csv missing or empty (no --reference folder)" in result.output
    recorded = _warnings_json(db)
    assert [line.split(" (")[0] for line in recorded] == [
        "accounts.csv missing or empty",
        "related_parties.csv missing or empty",
    ]


def test_a_run_with_full_reference_has_no_warning(prefect_harness, tmp_path: Path) -> None:
    inbox, reference = tmp_path / "inbox", tmp_path / "reference"
    inbox.mkdir()
    reference.mkdir()
    (inbox / "a.csv").write_text(CANONICAL, encoding="utf-8")
    (reference / "accounts.csv").write_text("account_id,customer_id,holder_name,account_type\nA1,C1,张三,personal\n")
    (reference / "related_parties.csv").write_text(
        "customer_id,party_name,party_account,relation\nC1,李四,,spouse\n", encoding="utf-8"
    )
    db = tmp_path / "w.duckdb"
    result = runner.invoke(app, ["run", "--inbox", str(inbox), "--db", str(db), "--reference", str(reference)])
    assert result.exit_code == 0, result.output
    assert "warning" not in result.output
    assert _warnings_json(db) == []
