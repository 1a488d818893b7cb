"""The dashboard as a user sees it: Streamlit's AppTest against a database published by the real flow.

What it shows must equal what DuckDB says (flags per code, bands, quarantine, runs, an account's flags and
evidence, the worklist's accounts for a filter, a customer's accounts and transfers); the worklist's CSV is
what `liushui accounts --format csv` writes; the 中文 switch changes the labels; a missing database is a clear
message; the app holds no connection after it has rendered.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest
from typer.testing import CliRunner

from apps.cli import app as cli
from apps.dashboard import APP, database_path, start, streamlit_command, streamlit_environment
from liushui import store
from liushui.config import Settings
from transforms.registry import RULES

# One file with rows the pipeline must quarantine (bad amount, impossible date) and one it must reject whole,
# so the data-quality panels have something to show.
LATE_EXPORT = (
    "account_id,txn_id,booked_at,amount,currency,balance_after,counterparty_name,counterparty_account,"
    "description,channel\n"
    "6200000000000000001,,2026-01-05 10:15:00,-88.00,CNY,,盒马鲜生,,支付宝快捷支付,支付宝\n"
    "6200000000000000001,,2026-01-06 18:20:00,-12.5x,CNY,,滴滴出行,,支付宝快捷支付,支付宝\n"
    "6200000000000000001,,2026-13-45 08:00:00,-30.00,CNY,,美团,,支付宝快捷支付,支付宝\n"
)


@pytest.fixture(scope="module")
def db(prefect_harness, sample_dir, tmp_path_factory) -> Path:
    from flows.nightly import nightly

    work = tmp_path_factory.mktemp("dashboard")
    inbox = work / "inbox"
    shutil.copytree(sample_dir / "inbox", inbox)
    (inbox / "late_export.csv").write_text(LATE_EXPORT, encoding="utf-8")
    (inbox / "scan_upload.csv").write_bytes(b"\x00\x01\x02PK junk")
    database = work / "liushui.duckdb"
    report = nightly(Settings(inbox=inbox, database=database, reference_dir=sample_dir / "reference"))
    assert report.status == "published" and report.rejected_files
    return database


def sql(database: Path, query: str, params: list | None = None) -> list[tuple]:
    con = store.reader(database)
    try:
        return con.sql(query, params=params or []).fetchall()
    finally:
        con.close()


def app(database: Path, monkeypatch, **query_params: str) -> AppTest:
    monkeypatch.setenv("LIUSHUI_DB", str(database))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(query_params)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown(at: AppTest, *columns: str) -> list[pd.DataFrame]:
    """The dataframes on the page whose first columns are `columns`."""
    return [d.value for d in at.dataframe if list(d.value.columns[: len(columns)]) == list(columns)]


def as_dict(frame: pd.DataFrame) -> dict:
    return dict(zip(frame.iloc[:, 0], frame.iloc[:, 1].astype(int), strict=True))


def test_overview_numbers_equal_the_database(db, monkeypatch):
    at = app(db, monkeypatch)
    assert at.radio(key="page").value == "Overview"
    (per_code,) = shown(at, "flag_code", "flags")
    expected = sql(db, "SELECT flag_code, count(*) FROM risk_flags GROUP BY flag_code")
    assert as_dict(per_code) == dict(expected) and len(expected) >= 4
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Flags"] == f"{sum(n for _, n in expected):,}"
    assert metrics["Accounts"] == f"{sql(db, 'SELECT count(*) FROM account_risk')[0][0]:,}"

    (bands,) = shown(at, "band", "accounts")
    assert {b: n for b, n in as_dict(bands).items() if n} == dict(
        sql(db, "SELECT band, count(*) FROM account_risk GROUP BY band")
    )
    assert list(bands["band"]) == ["low", "medium", "high", "severe"]
    (recovery,) = shown(at, "recovery_status", "accounts")
    assert {s: n for s, n in as_dict(recovery).items() if n} == dict(
        sql(db, "SELECT recovery_status, count(*) FROM account_risk GROUP BY recovery_status")
    )
    charts = at.get("vega_lite_chart")
    assert len(charts) == 3  # flags by month, bands, recovery


def test_overview_shows_quarantine_dq_and_file_statuses(db, monkeypatch):
    at = app(db, monkeypatch)
    (quarantine,) = shown(at, "batch_id", "rows_quarantined")
    assert as_dict(quarantine) == dict(sql(db, "SELECT batch_id, count(*) FROM quarantine GROUP BY 1"))
    assert "bad_amount 1" in quarantine["reasons"][0]
    (files,) = shown(at, "status", "files")
    assert as_dict(files) == dict(sql(db, "SELECT status, count(*) FROM source_files GROUP BY 1"))
    assert {"partial", "rejected"} <= set(files["status"])
    (problems,) = shown(at, "seen_at", "file_name")
    assert set(problems["file_name"]) == {"late_export.csv", "scan_upload.csv"}
    (per_run,) = shown(at, "run_id", "started_at", "status")
    expected = sql(
        db,
        "SELECT run_id, count(*), count(*) FILTER (WHERE level = 'blocking' AND NOT success) FROM dq_results "
        "GROUP BY 1",
    )
    assert [(r.run_id, r.expectations, r.blocking_failed) for r in per_run.itertuples()] == expected
    # The last run rejected a file: the banner says so as a warning, not as a plain success.
    assert any("1 rejected" in w.value for w in at.warning)


def flagged_account(db: Path) -> str:
    """A round-trip account: its flags name evidence transactions on both sides of the trip."""
    return sql(db, "SELECT min(account_id) FROM risk_flags WHERE flag_code = 'ROUND_TRIP'")[0][0]


def test_account_drill_down_shows_flags_evidence_and_remediation(db, monkeypatch):
    at = app(db, monkeypatch)
    at.radio(key="page").set_value("Account").run()
    choices = at.selectbox(key="account").options
    top = sql(db, "SELECT account_id FROM account_risk ORDER BY score DESC, account_id LIMIT 1")[0][0]
    assert choices[0].startswith(top)  # riskiest first
    account = flagged_account(db)
    at.selectbox(key="account").set_value(account).run()
    assert not at.exception
    assert at.query_params["account"] == account  # the URL opens this drill-down again

    (flags,) = shown(at, "flag_code", "period_start_on")
    expected = sql(
        db,
        "SELECT flag_code, strftime(period_start_on, '%Y-%m-%d') FROM risk_flags WHERE account_id = ? "
        "ORDER BY period_start_on, flag_code",
        [account],
    )
    assert list(zip(flags["flag_code"], flags["period_start_on"], strict=True)) == expected
    assert len(at.expander) == len(expected) + 1  # one per flag, plus the monthly table

    evidence = pd.concat(shown(at, "booked_at", "amount"))
    expected_ids = sql(db, "SELECT DISTINCT unnest(evidence_txn_ids) FROM risk_flags WHERE account_id = ?", [account])
    assert set(evidence["txn_id"]) == {i for (i,) in expected_ids}
    one = evidence.iloc[0]
    booked_at, amount, txn_class = sql(
        db, "SELECT booked_at, amount, txn_class FROM transactions WHERE txn_id = ?", [one["txn_id"]]
    )[0]
    assert (one["booked_at"], one["amount"], one["txn_class"]) == (pd.Timestamp(booked_at), amount, txn_class)

    (risk,) = sql(
        db, "SELECT score, band, recovery_status, remediation_en FROM account_risk WHERE account_id = ?", [account]
    )
    metrics = {m.label: m.value for m in at.metric}
    assert (metrics["Score"], metrics["Band"], metrics["Recovery"]) == (f"{risk[0]:.0f}", risk[1], risk[2])
    text = " ".join(m.value for m in at.markdown)
    assert all(item in text for item in risk[3]) and risk[3]
    assert len(at.get("vega_lite_chart")) == 2  # monthly flows, debt burden


def round_trip_to_decide(db: Path, tmp_path: Path) -> tuple[Path, str, str]:
    """A copy of the database to write decisions into, a round-trip account and its latest ROUND_TRIP flag."""
    copy = tmp_path / "liushui.duckdb"
    shutil.copyfile(db, copy)
    account = flagged_account(copy)
    (flag_id,) = sql(
        copy,
        "SELECT flag_id FROM risk_flags WHERE account_id = ? AND flag_code = 'ROUND_TRIP' ORDER BY period_end_on DESC",
        [account],
    )[0]
    return copy, account, flag_id


def test_a_flag_dismissed_on_the_account_page_is_recorded_and_rescored(db, tmp_path, monkeypatch):
    """The decision form publishes through `flows.decisions.record` (as `liushui decide`): the audit row, the
    rescored account, and the flag still listed, now marked dismissed."""
    copy, account, flag_id = round_trip_to_decide(db, tmp_path)
    at = app(copy, monkeypatch, page="Account", account=account)
    at.text_input(key=f"by-{flag_id}").input("王芳")
    at.text_input(key=f"note-{flag_id}").input("both legs are salary advances, checked with the employer")
    at.radio(key=f"kind-{flag_id}").set_value("dismiss")
    at.button(key=f"submit-{flag_id}").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == []
    ((score,),) = sql(copy, "SELECT score FROM account_risk WHERE account_id = ?", [account])
    (message,) = [s.value for s in at.success if "recorded" in s.value]
    assert message.startswith("dismiss recorded; score ") and message.split("→ ")[1].startswith(f"{score:g} (")
    assert sql(copy, "SELECT decision, decided_by, note FROM flag_decisions WHERE flag_id = ?", [flag_id]) == [
        ("dismiss", "王芳", "both legs are salary advances, checked with the employer")
    ]
    at.run()
    assert any("ROUND_TRIP" in e.label and e.label.endswith("· dismissed") for e in at.expander)


def test_worklist_changed_shows_what_the_last_publish_changed(db, tmp_path, monkeypatch):
    """A decision is a publish: afterwards, "changed in the last publish" lists exactly the accounts whose score,
    band, recovery or active flags differ from the version before, with the change."""
    from flows import decisions

    copy, account, flag_id = round_trip_to_decide(db, tmp_path)
    state = "SELECT account_id, score, band, recovery_status, array_to_string(active_flags, ' ') FROM account_risk"
    before = set(sql(copy, state))
    recorded = decisions.record(copy, flag_id, "dismiss", "王芳", "checked")
    after = set(sql(copy, state))
    expected = sorted({row[0] for row in after - before})
    assert expected == [account] and recorded.score_after < recorded.score_before  # the flag carried points

    at = app(copy, monkeypatch, page="Worklist")
    at.checkbox(key="wl_changed").check().run()
    (changed,) = shown(at, "account_id", "customer_id", "holder_name")
    assert list(changed["account_id"]) == expected
    assert changed["change"][0].startswith(f"score {float(recorded.score_before)}→{float(recorded.score_after)}")


def test_account_url_opens_the_drill_down(db, monkeypatch):
    account = flagged_account(db)
    at = app(db, monkeypatch, account=account)
    assert at.radio(key="page").value == "Account"
    assert at.selectbox(key="account").value == account
    unknown = app(db, monkeypatch, account="no-such-account")
    assert "No account 'no-such-account'" in unknown.warning[0].value


def test_run_health_shows_runs_stages_and_expectations(db, monkeypatch):
    at = app(db, monkeypatch, page="Run health")
    (runs,) = shown(at, "run_id", "started_at", "status", "mode")
    assert list(runs["run_id"]) == [r for (r,) in sql(db, "SELECT run_id FROM pipeline_runs ORDER BY started_at DESC")]
    stage_json, run_id = sql(db, "SELECT stage_seconds_json, run_id FROM pipeline_runs")[0]
    (stages,) = shown(at, "stage", "seconds")
    assert list(stages["stage"]) == list(json.loads(stage_json))
    (summary,) = shown(at, "suite", "level", "expectations")
    expected = sql(
        db, "SELECT count(*), count(*) FILTER (WHERE NOT success) FROM dq_results WHERE run_id = ?", [run_id]
    )[0]
    assert (summary["expectations"].sum(), summary["failed"].sum()) == expected
    assert len(at.get("vega_lite_chart")) == 1


def test_no_database_is_a_clear_message(tmp_path, monkeypatch):
    at = app(tmp_path / "missing.duckdb", monkeypatch)
    assert "No liushui database at" in at.error[0].value and "liushui run" in at.error[0].value
    assert not at.dataframe


def test_no_connection_is_held_after_rendering(db, monkeypatch):
    for page in ("Overview", "Worklist", "Customer", "Account", "Run health"):
        app(db, monkeypatch, page=page)
    # DuckDB refuses a connection with another configuration to a file this process still has open: a
    # dashboard that kept its connection would keep its old version of the database open (and its disk space).
    duckdb.connect(store._current_file(db), read_only=True, config={"threads": 1}).close()


def test_every_page_starts_with_its_header(db, monkeypatch):
    # Streamlit draws a bare string at the top level of the script ("magic"): none may appear above the header.
    for page in ("Overview", "Worklist", "Customer", "Account", "Run health"):
        at = app(db, monkeypatch, page=page)
        assert type(at.main[0]).__name__ == "Header", (page, at.main[0])


def test_a_database_held_by_the_writer_is_a_message_not_a_traceback(db, tmp_path, monkeypatch):
    busy = tmp_path / "busy.duckdb"
    shutil.copy(db, busy)
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('held', flush=True); time.sleep(30)",
            str(busy),
        ],
        stdout=subprocess.PIPE,
    )
    try:
        assert writer.stdout.readline().strip() == b"held"
        at = app(busy, monkeypatch)
        assert "Cannot read" in at.error[0].value and at.button[0].label == "Try again"
    finally:
        writer.kill()
        writer.wait()


def test_database_path_prefers_the_argument_then_the_environment(tmp_path):
    assert database_path(["--db", str(tmp_path / "a.duckdb")], {"LIUSHUI_DB": "b"}) == tmp_path / "a.duckdb"
    assert database_path(["-q", "tests"], {"LIUSHUI_DB": str(tmp_path / "b.duckdb")}) == tmp_path / "b.duckdb"
    assert database_path([], {}).name == "liushui.duckdb"


def test_launch_serves_offline_on_localhost(db):
    command = streamlit_command(db, 8501)
    assert command[-2:] == ["--db", str(db)] and command[command.index("--server.address") + 1] == "127.0.0.1"
    env = streamlit_environment(db)
    assert env["STREAMLIT_BROWSER_GATHER_USAGE_STATS"] == "false" and env["STREAMLIT_SERVER_HEADLESS"] == "true"

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = start(db, port, quiet=True)
    try:
        deadline, health = time.monotonic() + 60, b""
        while health != b"ok" and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                    health = answer.read().strip()
            except OSError:
                time.sleep(0.3)
        assert health == b"ok"
    finally:
        server.terminate()
        server.wait(timeout=20)


WORKLIST_ORDER = "ORDER BY score DESC, active_flag_count DESC, account_id"
"""The worklist's order (riskiest first), as `liushui accounts` lists it."""


def worklist_ids(db: Path, where: str = "true", params: list | None = None) -> list[str]:
    return [a for (a,) in sql(db, f"SELECT account_id FROM account_risk WHERE {where} {WORKLIST_ORDER}", params)]


def common_active_code(db: Path) -> str:
    """The flag code active on the most accounts."""
    return sql(
        db, "SELECT code FROM (SELECT unnest(active_flags) AS code FROM account_risk) GROUP BY 1 ORDER BY count(*) DESC"
    )[0][0]


def test_worklist_filters_change_the_rows(db, monkeypatch):
    at = app(db, monkeypatch, page="Worklist")
    (everything,) = shown(at, "account_id", "customer_id", "holder_name")
    assert list(everything["account_id"]) == worklist_ids(db)

    code = common_active_code(db)
    at.multiselect(key="wl_band").set_value(["high", "severe"])
    at.multiselect(key="wl_code").set_value([code]).run()
    (filtered,) = shown(at, "account_id", "customer_id", "holder_name")
    expected = worklist_ids(db, "band IN ('high', 'severe') AND list_contains(active_flags, ?)", [code])
    assert list(filtered["account_id"]) == expected and 0 < len(expected) < len(everything)

    # Several codes: an account with any of them active.
    other = sql(
        db,
        "SELECT code FROM (SELECT unnest(active_flags) AS code FROM account_risk) WHERE code <> ? "
        "GROUP BY 1 ORDER BY count(*) DESC",
        [code],
    )[0][0]
    at.multiselect(key="wl_band").set_value([])
    at.multiselect(key="wl_recovery").set_value(["at_risk", "watch"])
    at.multiselect(key="wl_code").set_value([code, other])
    at.number_input(key="wl_min_score").set_value(20).run()
    (filtered,) = shown(at, "account_id", "customer_id", "holder_name")
    expected = worklist_ids(
        db,
        "recovery_status IN ('at_risk', 'watch') AND list_has_any(active_flags, [?, ?]) AND score >= 20",
        [code, other],
    )
    assert list(filtered["account_id"]) == expected and expected

    at.multiselect(key="wl_recovery").set_value([])
    at.multiselect(key="wl_code").set_value([])
    at.number_input(key="wl_min_score").set_value(0)
    name = sql(db, "SELECT holder_name FROM account_risk WHERE holder_name IS NOT NULL ORDER BY account_id")[0][0]
    at.text_input(key="wl_customer").set_value(name[-1]).run()
    (filtered,) = shown(at, "account_id", "customer_id", "holder_name")
    assert list(filtered["account_id"]) == worklist_ids(db, "contains(holder_name, ?)", [name[-1]])
    assert all(name[-1] in holder for holder in filtered["holder_name"])

    at.text_input(key="wl_customer").set_value("no such customer").run()
    assert not shown(at, "account_id") and "No account passes" in at.info[0].value


def test_worklist_download_is_the_cli_csv(db, monkeypatch):
    served: dict[str, bytes] = {}
    load = MemoryMediaFileStorage.load_and_get_id

    def remember(self, data, mimetype, kind, filename=None):
        served[filename] = data
        return load(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", remember)
    code = common_active_code(db)
    at = app(db, monkeypatch, page="Worklist")
    at.multiselect(key="wl_band").set_value(["medium", "high"])
    at.multiselect(key="wl_code").set_value([code]).run()
    assert at.get("download_button")[0].proto.label == "Download CSV"

    downloaded = served["worklist.csv"].decode()
    expected = worklist_ids(db, "band IN ('medium', 'high') AND list_contains(active_flags, ?)", [code])
    assert pl.read_csv(downloaded.encode(), schema_overrides={"account_id": pl.String})["account_id"].to_list() == (
        expected
    )
    printed = CliRunner().invoke(
        cli, ["accounts", "--band", "medium", "--band", "high", "--code", code, "--format", "csv", "--db", str(db)]
    )
    assert printed.exit_code == 0 and downloaded == printed.stdout


def test_a_worklist_row_opens_its_account(db, monkeypatch):
    at = app(db, monkeypatch, page="Worklist")
    at.multiselect(key="wl_band").set_value(["medium"]).run()
    second = worklist_ids(db, "band = 'medium'")[1]
    # A click on a row is a selection in the table's state (AppTest cannot click inside a dataframe).
    at.session_state["wl_table"] = {"selection": {"rows": [1], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert at.radio(key="page").value == "Account" and at.selectbox(key="account").value == second
    assert at.query_params["account"] == second


def customer_with_transfers(db: Path) -> tuple[str, str]:
    """The customer with the most accounts that moved money between them, and its holder name."""
    return sql(
        db,
        "SELECT r.customer_id, any_value(r.holder_name) FROM account_risk r "
        "JOIN transactions t ON t.account_id = r.account_id AND t.amount < 0 "
        "JOIN account_risk o ON o.account_id = t.counterparty_account_id AND o.customer_id = r.customer_id "
        "AND o.account_id <> r.account_id "
        "GROUP BY 1 ORDER BY count(DISTINCT r.account_id) DESC, 1",
    )[0]


def test_customer_page_lists_exactly_its_accounts_and_transfers(db, monkeypatch):
    customer, holder = customer_with_transfers(db)
    at = app(db, monkeypatch, customer=customer)
    assert at.radio(key="page").value == "Customer" and at.text_input(key="customer_search").value == customer
    assert at.subheader[0].value == f"{customer} · {holder}"
    (accounts,) = shown(at, "account_id", "holder_name", "currency", "score", "band")
    expected = sql(
        db,
        "SELECT account_id, band FROM account_risk WHERE customer_id = ? ORDER BY score DESC, account_id",
        [customer],
    )
    assert list(zip(accounts["account_id"], accounts["band"], strict=True)) == expected and len(expected) >= 2
    assert {m.label: m.value for m in at.metric}["Accounts"] == str(len(expected))

    (transfers,) = shown(at, "from_account_id", "to_account_id", "currency", "transfers")
    moved = sql(
        db,
        "SELECT t.account_id, t.counterparty_account_id, count(*) FROM transactions t "
        "JOIN account_risk r ON r.account_id = t.account_id "
        "JOIN account_risk o ON o.account_id = t.counterparty_account_id "
        "WHERE r.customer_id = ? AND o.customer_id = ? AND t.amount < 0 AND o.account_id <> r.account_id GROUP BY 1, 2",
        [customer, customer],
    )
    assert set(zip(transfers["from_account_id"], transfers["to_account_id"], transfers["transfers"], strict=True)) == (
        set(moved)
    )

    at.session_state["customer_accounts"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert at.radio(key="page").value == "Account" and at.selectbox(key="account").value == expected[0][0]


def test_customer_search_by_name_and_by_account(db, monkeypatch):
    customer, holder = sql(
        db,
        "SELECT any_value(customer_id), holder_name FROM account_risk WHERE holder_name IS NOT NULL GROUP BY 2 "
        "HAVING count(DISTINCT customer_id) = 1 ORDER BY max(score) DESC, 2",
    )[0]
    at = app(db, monkeypatch, page="Customer")
    (riskiest,) = shown(at, "customer_id", "holder_names", "accounts")
    by_risk = [c for (c,) in sql(db, "SELECT customer_id FROM account_risk GROUP BY 1 ORDER BY max(score) DESC, 1")]
    assert list(riskiest["customer_id"]) == by_risk
    at.session_state["customer_table"] = {"selection": {"rows": [2], "columns": [], "cells": []}}
    at.run()
    assert at.text_input(key="customer_search").value == by_risk[2] and at.subheader[0].value.startswith(by_risk[2])
    at.text_input(key="customer_search").set_value(holder).run()
    assert at.subheader[0].value == f"{customer} · {holder}"
    assert at.query_params["customer"] == holder
    (accounts,) = shown(at, "account_id", "holder_name")
    assert set(accounts["account_id"]) == {
        a for (a,) in sql(db, "SELECT account_id FROM account_risk WHERE customer_id = ?", [customer])
    }

    account = sql(db, "SELECT max(account_id) FROM account_risk WHERE customer_id = ?", [customer])[0][0]
    at.text_input(key="customer_search").set_value(account).run()
    assert at.subheader[0].value == f"{customer} · {holder}"

    at.text_input(key="customer_search").set_value("C").run()  # every customer id contains it
    assert "customers match" in at.caption[0].value
    at.text_input(key="customer_search").set_value("no such customer").run()
    assert "No customer id, holder name or account id matches" in at.warning[0].value


def test_account_header_names_the_customer_and_opens_it(db, monkeypatch):
    account = flagged_account(db)
    customer, holder = sql(db, "SELECT customer_id, holder_name FROM account_risk WHERE account_id = ?", [account])[0]
    at = app(db, monkeypatch, account=account)
    assert f"**customer {customer}** · {holder or '-'}" in [m.value for m in at.markdown]
    at.button(key="to_customer").click().run()
    assert at.radio(key="page").value == "Customer" and at.text_input(key="customer_search").value == customer
    assert at.subheader[0].value.startswith(customer)


def test_the_language_switch_changes_the_labels(db, monkeypatch):
    names_zh = {rule.code: rule.name_zh for rule in RULES}
    code = common_active_code(db)
    at = app(db, monkeypatch, page="Worklist")
    options = at.multiselect(key="wl_code").options
    assert f"{code} · {next(r.name_en for r in RULES if r.code == code)}" in options
    assert shown(at, "account_id", "customer_id")

    at.radio(key="language").set_value("zh").run()
    assert at.query_params["lang"] == "zh"
    assert f"{code} {names_zh[code]}" in at.multiselect(key="wl_code").options
    assert at.multiselect(key="wl_band").label == "风险等级"
    assert at.radio(key="page").options[1] == "工作清单" and at.radio(key="page").value == "Worklist"
    (table,) = shown(at, "账号", "客户号", "户名")
    first = sql(db, f"SELECT active_flags FROM account_risk {WORKLIST_ORDER}")[0][0]
    assert table["有效风险标记"][0] == ", ".join(f"{c} {names_zh[c]}" for c in first)

    again = app(db, monkeypatch, page="Customer", lang="zh")
    assert again.text_input(key="customer_search").label == "客户号、户名或账号"
    assert shown(again, "客户号", "户名", "账户数")
