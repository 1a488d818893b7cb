"""The analyst's commands as scripts and pipes see them (apps/tables.py, apps/cli.py): exact output on a small
database written by liushui.store — ids and money never wrapped or cut, csv / json / parquet round-trip exactly,
SQL starting with a comment, from a file or stdin, row limits that say so, usage errors exit 2, the worklist's
filters."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from rich.console import Console
from typer.testing import CliRunner

from apps import tables
from apps.cli import app
from apps.report import account_report, render_html, render_terminal
from liushui import contracts, store
from tests.test_read_queries import rows

runner = CliRunner(env={"COLUMNS": "80"})
LIUSHUI = Path(sys.executable).with_name("liushui")

A = "6214830000000000001"  # customer C1, ROUND_TRIP active (September) and past (February)
B = "6222020000000000002"  # customer C1, ROUND_TRIP past only
C = "3100000000000000003"  # customer C2, MULTI_LENDER active
D = "6217000000000000004"  # no customer in the reference data: its own id
AS_OF = date(2026, 10, 15)  # lookback 6 months: flags ending on or after 2026-04-01 count
REASON_A = "本月4笔资金在7天内与同一对手方以相近金额一进一出（转出后转回或转入后转出，共317000.00），疑似刷流水。"


def _txn(txn_id: str, account_id: str, customer_id: str, at: str, amount: str) -> dict:
    booked = datetime.fromisoformat(at)
    return {
        "txn_id": txn_id,
        "account_id": account_id,
        "customer_id": customer_id,
        "booked_at": booked,
        "booked_on": booked.date(),
        "amount": Decimal(amount),
        "currency": "CNY",
        "txn_class": "transfer",
    }


def _flag(flag_id: str, account_id: str, code: str, start: date, end: date, metric: float, reason_zh: str) -> dict:
    return {
        "flag_id": flag_id,
        "account_id": account_id,
        "currency": "CNY",
        "flag_code": code,
        "period_start_on": start,
        "period_end_on": end,
        "metric_value": metric,
        "threshold": 2.0,
        "limit_name": "per_month",
        "severity": "high",
        "rule_version": "1.0",
        "reason_zh": reason_zh,
        "reason_en": f"{code} in the month",
        "remediation_zh": "整改",
        "remediation_en": "fix it",
        "evidence_txn_ids": [f"{account_id}-out", f"{account_id}-in"],
    }


HOLDERS = {A: ("C1", "张三"), B: ("C1", "张三"), C: ("C2", "李四_100%"), D: (D, None)}


def _risk(account_id: str, score: float, band: str, recovery: str, active: list[str], clears: list[date]) -> dict:
    return {
        "account_id": account_id,
        "customer_id": HOLDERS[account_id][0],
        "holder_name": HOLDERS[account_id][1],
        "currency": "CNY",
        "as_of_on": AS_OF,
        "score": score,
        "band": band,
        "recovery_status": recovery,
        "active_flags": active,
        "active_flag_count": len(active),
        "score_components_json": "{}",
        "statement_trust": "ok",
        "recovery_clears_on": clears,
        "clears_on": max(clears) if clears else None,
        "remediation_zh": ["整改"] * len(active),
        "remediation_en": ["fix it"] * len(active),
    }


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    database = tmp_path_factory.mktemp("cli_output") / "w.duckdb"
    frames = {
        "transactions": rows(
            contracts.TRANSACTIONS,
            {**_txn(f"{A}-out", A, "C1", "2026-09-03 10:00:00", "-1234567.50"), "counterparty_account_id": B},
            _txn(f"{A}-in", A, "C1", "2026-09-05 11:00:00", "1234000.05"),
            _txn(f"{B}-out", B, "C1", "2026-03-02 09:30:00", "-20.00"),
            _txn(f"{C}-in", C, "C2", "2026-09-10 12:00:00", "8800.00"),
            _txn(f"{D}-in", D, D, "2026-09-11 08:00:00", "0.01"),
        ),
        "risk_flags": rows(
            contracts.RISK_FLAGS,
            _flag("f1", A, "ROUND_TRIP", date(2026, 2, 1), date(2026, 2, 28), 3.0, "二月一进一出"),
            _flag("f2", A, "ROUND_TRIP", date(2026, 9, 1), date(2026, 9, 30), 4.0, REASON_A),
            _flag("f3", B, "ROUND_TRIP", date(2026, 3, 1), date(2026, 3, 31), 2.5, "三月一进一出"),
            _flag("f4", C, "MULTI_LENDER", date(2026, 7, 1), date(2026, 9, 30), 5.0, "多家平台借款"),
        ),
        "account_risk": rows(
            contracts.ACCOUNT_RISK,
            {
                **_risk(A, 72.5, "high", "at_risk", ["ROUND_TRIP"], [date(2027, 4, 1)]),
                "clean_income_last": Decimal("2000.20"),
                "recovery_now": [4.0],
                "recovery_now_month_on": [date(2026, 9, 1)],
                "recovery_target": [2.0],
                "recovery_clean_months": [0],
                "recovery_months_needed": [6],
                "recovery_points": [30.0],
            },
            _risk(B, 0.0, "low", "recovered", [], []),
            _risk(C, 55.0, "high", "recovering", ["MULTI_LENDER"], [date(2027, 4, 1)]),
            _risk(D, 30.0, "medium", "watch", [], []),
        ),
    }
    frames["account_months"] = rows(
        contracts.ACCOUNT_MONTHS,
        *(
            {
                "account_id": A,
                "currency": "CNY",
                "month_on": month,
                "is_full_month": True,
                "is_main_currency": True,
                "clean_income": Decimal(income),
            }
            for month, income in ((date(2026, 8, 1), "1000.10"), (date(2026, 9, 1), "2000.20"))
        ),
    )
    with store.writer(database) as con:
        store.publish(con, frames, affected_accounts=None)
    return database


def cli(db: Path, *args: str, stdin: str | None = None):
    return runner.invoke(app, [*args, "--db", str(db)], input=stdin)


# Piping keeps ids whole ----------------------------------------------------------------------------------
def test_flags_of_a_code_in_a_pipe_are_plain_columns_newest_first_with_status(db):
    result = cli(db, "flags", "--code", "ROUND_TRIP")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "account_id           status  flag_code   name_zh  period_start_on  period_end_on  currency  metric  threshold"
        "  limit_name  severity  reason_zh",
        f"{A}  active  ROUND_TRIP  刷流水   2026-09-01       2026-09-30     CNY         4.00       2.00  per_month"
        f"   high      {REASON_A}",
        f"{B}  past    ROUND_TRIP  刷流水   2026-03-01       2026-03-31     CNY         2.50       2.00  per_month"
        "   high      三月一进一出",
        f"{A}  past    ROUND_TRIP  刷流水   2026-02-01       2026-02-28     CNY         3.00       2.00  per_month"
        "   high      二月一进一出",
    ]


def test_flags_piped_to_grep_find_the_whole_account_id(db):
    """A real pipe between two processes, as a shell makes it."""
    flags = subprocess.Popen(
        [str(LIUSHUI), "flags", "--code", "ROUND_TRIP", "--db", str(db)],
        stdout=subprocess.PIPE,
        env={**os.environ, "COLUMNS": "80"},
    )
    grep = subprocess.run(["grep", "-c", A], stdin=flags.stdout, capture_output=True, text=True)
    assert flags.stdout is not None
    flags.stdout.close()
    assert flags.wait() == 0 and grep.stdout.strip() == "2"


def test_flags_summary_names_each_code_in_chinese(db):
    result = cli(db, "flags")
    assert result.stdout.splitlines() == [
        "flag_code     name_zh   flags  accounts  high  rule_version",
        "MULTI_LENDER  多头借贷      1         1     1  1.0",
        "ROUND_TRIP    刷流水        3         2     3  1.0",
    ]


@pytest.mark.parametrize("width", [80, 120, 250])
def test_a_terminal_table_never_folds_ids_or_money(monkeypatch, width):
    """rich at 80 / 120 / 250 columns: at 250 a table, narrower one `name  value` block per row; every id and
    amount appears whole on one line, the Chinese text in full."""
    monkeypatch.setenv("COLUMNS", str(width))
    out = io.StringIO()
    names = ["account_id", "txn_id", "amount", "reason_zh"]
    txn_id = "1e96ef8ee0e807765d0aeafd8de5eca3"
    tables.write_table(names, [[A, txn_id, Decimal("-1234567.50"), REASON_A]], out, terminal=True, title="rows")
    lines = out.getvalue().splitlines()
    for whole in (A, txn_id, "-1,234,567.50"):
        assert any(whole in line for line in lines), (whole, lines)
    assert "".join("".join(line.split()) for line in lines).count(REASON_A) == 1
    assert all(len(line.rstrip()) <= width for line in lines)
    assert ("-- 1 --" in lines) == (width < 120)  # one block per row when the columns do not fit


# Numbers one way ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (Decimal("-1234567.50"), "-1,234,567.50"),
        (Decimal("0.01"), "0.01"),
        (0.125, "0.13"),
        (-0.001, "0.00"),
        (87.0, "87.00"),
        (1234567, "1,234,567"),
        (None, ""),
        (date(2026, 9, 1), "2026-09-01"),
        ([f"{A}-out", f"{A}-in"], f"{A}-out {A}-in"),
    ],
)
def test_values_are_shown_one_way(value, shown):
    assert tables.display(value) == shown


# Scriptable queries ------------------------------------------------------------------------------------
TXNS = "SELECT txn_id, account_id, amount, booked_at FROM transactions ORDER BY txn_id"


def _published(db: Path, sql: str) -> pl.DataFrame:
    con = store.reader(db)
    try:
        frame: pl.DataFrame = con.sql(sql).pl()
        return frame
    finally:
        con.close()


def test_query_csv_round_trips_exact_money(db, tmp_path):
    out = tmp_path / "t.csv"
    result = cli(db, "query", TXNS, "--format", "csv", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert out.read_text(encoding="utf-8").splitlines()[:2] == [
        "txn_id,account_id,amount,booked_at",
        f"{C}-in,{C},8800.00,2026-09-10T12:00:00.000000",
    ]
    back = pl.read_csv(out, schema=_published(db, TXNS).schema)
    assert back.equals(_published(db, TXNS))


def test_query_json_lines_keep_money_exact(db):
    result = cli(db, "query", TXNS, "--format", "json")
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(r["txn_id"], r["amount"], r["booked_at"]) for r in records] == [
        (f"{C}-in", "8800.00", "2026-09-10 12:00:00"),
        (f"{A}-in", "1234000.05", "2026-09-05 11:00:00"),
        (f"{A}-out", "-1234567.50", "2026-09-03 10:00:00"),
        (f"{D}-in", "0.01", "2026-09-11 08:00:00"),
        (f"{B}-out", "-20.00", "2026-03-02 09:30:00"),
    ]


def test_query_parquet_round_trips_and_needs_an_output_file(db, tmp_path):
    out = tmp_path / "t.parquet"
    sql = "SELECT account_id, active_flags, recovery_clears_on, score FROM account_risk ORDER BY account_id"
    assert cli(db, "query", sql, "--format", "parquet", "-o", str(out)).exit_code == 0
    assert pl.read_parquet(out).equals(_published(db, sql))
    assert cli(db, "query", sql, "--format", "parquet").exit_code == 2


def test_query_csv_writes_lists_as_json_text(db):
    result = cli(db, "query", f"SELECT active_flags FROM account_risk WHERE account_id = '{A}'", "--format", "csv")
    assert result.stdout.splitlines() == ["active_flags", '"[""ROUND_TRIP""]"']


def test_sql_starting_with_a_comment_from_the_argument_a_file_or_stdin(db, tmp_path):
    recipe = "-- accounts of one customer\nSELECT count(*) AS n FROM transactions WHERE customer_id = 'C1'"
    expected = ["n", "3"]
    assert cli(db, "query", recipe, "--format", "csv").stdout.splitlines() == expected
    assert cli(db, "query", "--format", "csv", recipe).stdout.splitlines() == expected
    one_line = "-- n: 1\nSELECT 1 AS n"
    assert cli(db, "query", one_line, "--format", "csv").stdout.splitlines() == ["n", "1"]
    path = tmp_path / "recipe.sql"
    path.write_text(recipe, encoding="utf-8")
    assert cli(db, "query", "--file", str(path), "--format", "csv").stdout.splitlines() == expected
    assert cli(db, "query", "-", "--format", "csv", stdin=recipe).stdout.splitlines() == expected
    assert cli(db, "query", "--file", "-", "--format", "csv", stdin=recipe).stdout.splitlines() == expected


def test_table_output_stops_at_its_row_limit_and_says_so(db):
    result = cli(db, "query", "SELECT range AS i FROM range(250)")
    assert result.exit_code == 0
    assert result.stdout.splitlines() == [" i", *(f"{i:>2}" for i in range(100))]
    assert result.stderr.strip() == (
        "(the first 100 rows; --limit N for more, --format csv / json / parquet for every row)"
    )
    shown = cli(db, "query", "SELECT range AS i FROM range(250)", "--limit", "3")
    assert shown.stdout.splitlines() == ["i", "0", "1", "2"] and "first 3 rows" in shown.stderr
    everything = cli(db, "query", "SELECT range AS i FROM range(250)", "--format", "csv")
    assert len(everything.stdout.splitlines()) == 251 and everything.stderr == ""
    assert cli(db, "query", "SELECT 1 AS i").stderr == ""


def test_a_failing_statement_is_one_line_and_leaves_no_output_file(db, tmp_path):
    out = tmp_path / "never.csv"
    result = cli(db, "query", "SELECT nope FROM risk_flags", "--format", "csv", "-o", str(out))
    assert result.exit_code == 1
    assert result.stderr.startswith('error: query failed: Binder Error: Referenced column "nope" not found')
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []
    assert (
        cli(db, "query", "SELEC 1").stderr.strip()
        == 'error: query failed: Parser Error: syntax error at or near "SELEC"'
    )


@pytest.mark.parametrize(
    "args",
    [
        ["flags", "--limit", "-5"],
        ["flags", "--code", "ROUND_TRIPS"],
        ["query", "SELECT 1", "--limit", "0"],
        ["query"],
        ["query", "SELECT 1", "--format", "xml"],
        ["accounts", "--band", "extreme"],
        ["accounts", "--recovery", "fine"],
        ["accounts", "--min-score", "101"],
    ],
)
def test_usage_errors_exit_2_without_a_traceback(db, args):
    result = cli(db, *args)
    assert result.exit_code == 2, result.output
    assert isinstance(result.exception, SystemExit) and "Traceback" not in result.output  # no other exception


# The worklist ------------------------------------------------------------------------------------------
def _accounts(db: Path, *filters: str) -> list[str]:
    result = cli(db, "accounts", *filters, "--format", "csv")
    assert result.exit_code == 0, result.output
    return pl.read_csv(io.StringIO(result.stdout), infer_schema=False)["account_id"].to_list()


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ([], [A, C, D, B]),
        (["--band", "high"], [A, C]),
        (["--band", "high", "--band", "medium"], [A, C, D]),
        (["--recovery", "recovering"], [C]),
        (["--code", "ROUND_TRIP"], [A]),
        (["--code", "CYCLE"], []),
        (["--min-score", "55"], [A, C]),
        (["--customer", "C1"], [A, B]),
        (["--customer", "c1"], [A, B]),
        (["--customer", "张"], [A, B]),
        (["--customer", "李四_1"], [C]),
        (["--customer", "_"], [C]),
        (["--customer", "%"], [C]),
        (["--customer", "李%四"], []),
        (["--customer", D], [D]),
        (["--customer", "C1' OR '1'='1"], []),
        (["--customer", "C1", "--band", "high", "--code", "ROUND_TRIP", "--min-score", "70"], [A]),
    ],
)
def test_worklist_filters_give_exactly_these_accounts_by_score(db, filters, expected):
    assert _accounts(db, *filters) == expected


def test_worklist_table_and_json(db, tmp_path):
    result = cli(db, "accounts", "--band", "high")
    assert result.stdout.splitlines() == [
        "account_id           customer_id  holder_name  score  band  recovery_status  active_flags  "
        "active_flag_count  months_since_severe  clears_on   currency  as_of_on",
        f"{A}  C1           张三         72.50  high  at_risk          ROUND_TRIP                    1"
        "                       2027-04-01  CNY       2026-10-15",
        f"{C}  C2           李四_100%    55.00  high  recovering       MULTI_LENDER                  1"
        "                       2027-04-01  CNY       2026-10-15",
    ]
    out = tmp_path / "w.json"
    assert cli(db, "accounts", "--customer", "C1", "--format", "json", "-o", str(out)).exit_code == 0
    first = json.loads(out.read_text(encoding="utf-8").splitlines()[0])
    assert (first["account_id"], first["customer_id"], first["active_flags"], first["score"]) == (
        A,
        "C1",
        ["ROUND_TRIP"],
        72.5,
    )


def test_worklist_table_says_when_it_cuts(db):
    result = cli(db, "accounts", "--limit", "2")
    assert [line.split()[0] for line in result.stdout.splitlines()[1:]] == [A, C]
    assert "the first 2 accounts" in result.stderr


# The terminal report -----------------------------------------------------------------------------------
def test_terminal_report_shows_chinese_reasons_in_full_at_80_columns(db):
    console = Console(record=True, width=80, color_system=None)
    render_terminal(account_report(db, A), console)
    text = console.export_text()
    assert "".join(text.split()).count(REASON_A) == 1
    assert "ROUND_TRIP 刷流水  2026-09-01 .. 2026-09-30" in text
    assert text.index("2026-09-01 .. 2026-09-30") < text.index("2026-02-01 .. 2026-02-28")  # newest first
    assert "-1,234,567.50 CNY" in text and f"{A}-out" in text


@pytest.mark.parametrize(
    ("lang", "shown", "hidden"),
    [
        ("en", ["ROUND_TRIP in the month", "ROUND_TRIP Round trips (inflated turnover)  2026-09-01"], [REASON_A]),
        ("zh", [REASON_A, "ROUND_TRIP 刷流水  2026-09-01"], ["ROUND_TRIP in the month"]),
        ("both", [REASON_A, "ROUND_TRIP in the month"], []),
    ],
)
def test_terminal_report_in_one_language_or_both(db, lang, shown, hidden):
    console = Console(record=True, width=80, color_system=None)
    render_terminal(account_report(db, A), console, lang=lang)
    text = console.export_text()
    joined = "".join(text.split())
    for part in shown:
        assert "".join(part.split()) in joined, part
    for part in hidden:
        assert "".join(part.split()) not in joined, part


@pytest.mark.parametrize("terminal", [True, False])
def test_terminal_report_months_keep_money_whole_at_80_columns(db, terminal):
    """The months table is the project's table format: whole amounts in a terminal and in a pipe."""
    console = Console(record=True, width=80, color_system=None, force_terminal=terminal)
    render_terminal(account_report(db, A), console)
    text = console.export_text()
    assert "2026-09" in text and "2,000.20" in text and "1,000.10" in text
    assert "…" not in text


def test_html_report_opens_in_the_asked_language_with_a_switch(db):
    page = render_html(account_report(db, A), lang="zh")
    assert '<input type="radio" name="lang" id="lang-zh" checked>' in page
    assert '<input type="radio" name="lang" id="lang-en">' in page
    assert f'<div class="en">ROUND_TRIP in the month</div><div class="zh">{REASON_A}</div>' in page
    assert "body:has(#lang-zh:checked) .en" in page
    assert '<input type="radio" name="lang" id="lang-both" checked>' in render_html(account_report(db, A))


def test_report_language_is_checked(db):
    result = cli(db, "report", A, "--lang", "fr")
    assert result.exit_code == 2
    assert "fr" in result.output


# Customers ---------------------------------------------------------------------------------------------
def test_customer_shows_every_account_and_the_money_between_them(db):
    result = cli(db, "customer", "C1")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "customer C1 (张三): 2 account(s), worst band high, highest score 72.50, 1 with active flags: "
        "ROUND_TRIP 刷流水",
        "account_id           holder_name  currency  score  band  recovery_status  active_flags  months_since_severe"
        "  clears_on   clean_income_last  clean_income_6m",
        f"{A}  张三         CNY       72.50  high  at_risk          ROUND_TRIP                         "
        "2027-04-01           2,000.20         3,000.30",
        f"{B}  张三         CNY        0.00  low   recovered",
        f"  • {A}: fix it",
        "from_account_id      to_account_id        currency  transfers        amount  first_on    last_on",
        f"{A}  {B}  CNY               1  1,234,567.50  2026-09-03  2026-09-03",
    ]


@pytest.mark.parametrize(("given", "shown"), [("李四", "C2"), ("李四_100%", "C2"), (D, D), ("张三", "C1"), (B, "C1")])
def test_customer_by_part_of_a_holder_name_or_its_id(db, given, shown):
    result = cli(db, "customer", given)
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"customer {shown}")


def test_customer_that_matches_nothing_or_several_is_an_error_naming_them(db):
    none = cli(db, "customer", "王五' OR '1'='1")
    assert none.exit_code == 1 and "no customer id or holder name contains" in none.stderr
    several = cli(db, "customer", "c")
    assert several.exit_code == 1 and "2 customers match 'c'" in several.stderr
    assert [line.split()[0] for line in several.stdout.splitlines()[1:]] == ["C1", "C2"]


def test_account_view_names_the_customer_and_what_must_change_by_when(db):
    result = cli(db, "account", A)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert "customer C1 (张三): liushui customer C1" in lines
    at = lines.index(
        "flag_code   name_zh   now  now_month  target  clean_months  months_needed  stops_counting_on  points"
    )
    assert lines[at + 1] == (
        "ROUND_TRIP  刷流水   4.00  2026-09      2.00             0              6  2027-04-01          30.00"
    )


def test_the_report_names_the_customer_in_the_terminal_and_in_html(db):
    from apps.report import render_html

    report = account_report(db, A)
    console = Console(record=True, width=80, color_system=None)
    render_terminal(report, console)
    assert "customer C1 (张三)" in console.export_text().splitlines()
    assert "<p>Customer 客户 C1 · holder 户名 张三\n· as of 截至 2026-10-15" in render_html(report)
    assert "<p>Customer 客户 C2 · holder 户名 李四_100%\n" in render_html(account_report(db, C))
    assert "<p>Customer 客户 " + D + "\n· as of" in render_html(account_report(db, D))
