"""Analysts' decisions on flags: a dismissal takes the flag out of the score until its evidence changes, a
confirmation changes nothing, the audit table only grows, and the nightly run applies the decisions as
`liushui decide` does.

Literal flags and months published into a real DuckDB by `store.writer` / `store.publish`, with a published run
row naming the shipped rules (as the nightly run writes it); one end-to-end test runs the real flow.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest
from typer.testing import CliRunner

from apps.cli import EXIT_BUSY, EXIT_USAGE, app
from flows import decisions
from liushui import store
from liushui.config import DEFAULT_RULES_PATH, Settings, config_fingerprint, load_rules
from liushui.contracts import ACCOUNT_MONTHS, ACCOUNTS_REF, FLAG_DECISIONS, PIPELINE_RUNS, RISK_FLAGS
from tests.test_publish_delta import frame, row
from transforms.decisions import DECISION_COLUMNS, evidence_sha256, flags_with_decisions
from transforms.risk import account_risk

RULES = load_rules().account_risk
AS_OF = date(2026, 10, 15)  # last full month: September
runner = CliRunner(env={"COLUMNS": "250"})


def flag(flag_id: str, code: str, end: date, *, severity: str = "high", evidence: tuple[str, ...] = ("t1",)) -> dict:
    return row(
        RISK_FLAGS,
        flag_id=flag_id,
        account_id="A",
        currency="CNY",
        flag_code=code,
        period_start_on=end.replace(day=1),
        period_end_on=end,
        metric_value=3.0,
        threshold=2.0,
        severity=severity,
        evidence_txn_ids=list(evidence),
    )


def months() -> pl.DataFrame:
    return frame(
        ACCOUNT_MONTHS,
        [
            row(
                ACCOUNT_MONTHS,
                account_id="A",
                currency="CNY",
                month_on=date(2026, m, 1),
                is_main_currency=True,
                is_full_month=True,
                clean_income=Decimal("10000.00"),
            )
            for m in range(3, 10)
        ],
    )


def run_row(rules: Path) -> pl.DataFrame:
    parameters = {"rules_path": str(rules), "reference_dir": None}
    return frame(
        PIPELINE_RUNS,
        [
            row(
                PIPELINE_RUNS,
                run_id="run-1",
                status="published",
                mode="full",
                as_of_on=AS_OF,
                parameters_json=json.dumps(parameters),
                config_sha256=config_fingerprint(rules, None),
            )
        ],
    )


def publish_night(db: Path, flags: list[dict], *, first: bool = True) -> None:
    """What a night publishes for account A: its flags, months and account_risk with the decisions applied."""
    risk_flags, account_months = frame(RISK_FLAGS, flags), months()
    computed = account_risk(
        risk_flags.lazy(), account_months.lazy(), accounts=ACCOUNTS_REF.empty().lazy(), rules=RULES, as_of=AS_OF
    )
    decided = decisions.rescored_account_risk(
        db,
        computed,
        risk_flags.lazy(),
        account_months.lazy(),
        accounts=ACCOUNTS_REF.empty().lazy(),
        rules=RULES,
        as_of=AS_OF,
    )
    frames = {
        "risk_flags": risk_flags,
        "account_months": account_months,
        "account_risk": (computed if decided is None else decided).collect(),
    }
    if first:
        # the run's own copy of the rules: the decision is checked against the file the run used
        rules = db.parent / "rules.yaml"
        shutil.copyfile(DEFAULT_RULES_PATH, rules)
        frames["pipeline_runs"] = run_row(rules)
    with store.writer(db) as con:
        store.publish(con, frames, affected_accounts=None)


def score(db: Path) -> tuple[float, str, dict[str, float]]:
    con = store.reader(db)
    try:
        r = con.execute("SELECT score, band, score_components_json FROM account_risk WHERE account_id = 'A'").fetchone()
    finally:
        con.close()
    assert r is not None
    return r[0], r[1], json.loads(r[2])


ROUND_TRIP = flag("F-RT-SEP", "ROUND_TRIP", date(2026, 9, 30))  # high: 20 x 1.5 = 30 points
MULTI_LENDER = flag("F-ML-SEP", "MULTI_LENDER", date(2026, 9, 30), severity="medium")  # 20 points


@pytest.fixture
def db(tmp_path) -> Path:
    path = tmp_path / "w.duckdb"
    publish_night(path, [ROUND_TRIP, MULTI_LENDER])
    return path


def test_a_dismissed_flag_stops_scoring_and_the_band_follows(db):
    assert score(db) == (50.0, "high", {"ROUND_TRIP": 30.0, "MULTI_LENDER": 20.0})
    recorded = decisions.record(db, "F-RT-SEP", "dismiss", "王敏", "the money came back from the holder's own card")
    assert score(db) == (20.0, "medium", {"MULTI_LENDER": 20.0})
    assert (recorded.score_before, recorded.band_before, recorded.score_after, recorded.band_after) == (
        50.0,
        "high",
        20.0,
        "medium",
    )
    con = store.reader(db)
    try:
        shown = decisions.account_flags(con, "A").select("flag_id", "decision", "decided_by", "is_dismissed").rows()
        active, severe = con.execute(
            "SELECT active_flags, recovery_status FROM account_risk WHERE account_id = 'A'"
        ).fetchone()
    finally:
        con.close()
    # still published and shown, with its decision; for account_risk it was not raised
    assert sorted(shown) == [("F-ML-SEP", None, None, False), ("F-RT-SEP", "dismiss", "王敏", True)]
    assert (active, severe) == (["MULTI_LENDER"], "watch")


def test_another_flag_of_the_code_that_is_not_dismissed_keeps_the_points(tmp_path):
    db = tmp_path / "w.duckdb"
    august = flag("F-RT-AUG", "ROUND_TRIP", date(2026, 8, 31))
    publish_night(db, [august, ROUND_TRIP, MULTI_LENDER])
    assert decisions.record(db, "F-RT-SEP", "dismiss", "王敏", "own card").is_code_still_counted
    assert score(db) == (50.0, "high", {"ROUND_TRIP": 30.0, "MULTI_LENDER": 20.0})
    result = runner.invoke(
        app, ["decide", "dismiss", "F-RT-AUG", "--by", "王敏", "--note", "own card", "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    assert "ROUND_TRIP still counts" not in result.output and "score 50 (high) -> 20 (medium)" in result.output
    assert score(db) == (20.0, "medium", {"MULTI_LENDER": 20.0})
    result = runner.invoke(
        app, ["decide", "confirm", "F-RT-AUG", "--by", "李强", "--note", "a friend's card", "--db", str(db)]
    )
    assert "score 20 (medium) -> 50 (high)" in result.output
    assert score(db) == (50.0, "high", {"ROUND_TRIP": 30.0, "MULTI_LENDER": 20.0})


def test_new_evidence_ends_the_dismissal(db):
    decisions.record(db, "F-RT-SEP", "dismiss", "王敏", "own card")
    assert score(db)[0] == 20.0
    widened = {**ROUND_TRIP, "evidence_txn_ids": ["t1", "t9"]}  # the rule now sees another transaction
    publish_night(db, [widened, MULTI_LENDER], first=False)
    assert score(db) == (50.0, "high", {"ROUND_TRIP": 30.0, "MULTI_LENDER": 20.0})
    con = store.reader(db)
    try:
        history = decisions.decision_history(con, account_id="A")
        shown = decisions.account_flags(con, "A").filter(pl.col("flag_id") == "F-RT-SEP")
    finally:
        con.close()
    assert history["status"].to_list() == [decisions.STATUS_CHANGED]
    assert shown.select("decision", "is_evidence_changed", "is_dismissed").row(0) == ("dismiss", True, False)


def test_the_same_evidence_in_another_order_is_no_change(db):
    decisions.record(db, "F-RT-SEP", "dismiss", "王敏", "own card")
    publish_night(db, [{**ROUND_TRIP, "evidence_txn_ids": ["t1"]}, MULTI_LENDER], first=False)
    assert score(db)[0] == 20.0


def test_confirm_changes_no_score_and_a_later_confirm_supersedes_a_dismissal(db):
    decisions.record(db, "F-ML-SEP", "confirm", "李强", "three lenders in one week, checked with the credit report")
    assert score(db) == (50.0, "high", {"ROUND_TRIP": 30.0, "MULTI_LENDER": 20.0})
    decisions.record(db, "F-RT-SEP", "dismiss", "王敏", "own card")
    decisions.record(db, "F-RT-SEP", "confirm", "李强", "not the holder's card after all")
    assert score(db)[0] == 50.0


def test_the_audit_table_only_grows_with_who_when_why(db):
    before = datetime.utcnow()
    decisions.record(db, "F-RT-SEP", "dismiss", "王敏", "own card")
    decisions.record(db, "F-RT-SEP", "confirm", "李强", "not the holder's card")
    con = store.reader(db)
    try:
        rows = con.execute(
            "SELECT decided_by, note, decision, flag_id, account_id, flag_code, decided_at, evidence_sha256, "
            "evidence_txn_ids, metric_value FROM flag_decisions ORDER BY decided_at"
        ).fetchall()
        history = decisions.decision_history(con)
    finally:
        con.close()
    assert [r[:6] for r in rows] == [
        ("王敏", "own card", "dismiss", "F-RT-SEP", "A", "ROUND_TRIP"),
        ("李强", "not the holder's card", "confirm", "F-RT-SEP", "A", "ROUND_TRIP"),
    ]
    assert all(before <= r[6] <= datetime.utcnow() for r in rows)
    # the fingerprint: SHA-256 over the metric in millionths and the length-prefixed sorted ids
    assert {r[7] for r in rows} == {hashlib.sha256(b"3000000|2:t1").hexdigest()}
    assert (rows[0][8], rows[0][9]) == (["t1"], 3.0)
    assert history["status"].to_list() == [decisions.STATUS_CONFIRMED, decisions.STATUS_SUPERSEDED]


def test_the_fingerprint_tells_ids_apart_and_ignores_float_noise():
    flags = frame(
        RISK_FLAGS,
        [
            row(RISK_FLAGS, flag_id="x", metric_value=0.1 + 0.2, evidence_txn_ids=["b", "a"]),
            row(RISK_FLAGS, flag_id="y", metric_value=0.3, evidence_txn_ids=["a", "b"]),
            row(RISK_FLAGS, flag_id="z", metric_value=0.3, evidence_txn_ids=["a1:b"]),  # "1:a" + "1:b" if unprefixed
            row(RISK_FLAGS, flag_id="w", metric_value=0.3, evidence_txn_ids=["中"]),
        ],
    )
    x, y, z, w = flags.select(evidence_sha256())["evidence_sha256"]
    assert x == y == hashlib.sha256(b"300000|1:a1:b").hexdigest()
    assert z == hashlib.sha256(b"300000|4:a1:b").hexdigest() != x
    assert w == hashlib.sha256("300000|3:中".encode()).hexdigest()


def test_flags_without_decisions_are_not_dismissed():
    flags = frame(RISK_FLAGS, [ROUND_TRIP])
    shown = flags_with_decisions(flags.lazy(), FLAG_DECISIONS.empty().lazy()).collect()
    assert shown.columns == [*RISK_FLAGS.names, *DECISION_COLUMNS]
    assert shown.select("decision", "is_evidence_changed", "is_dismissed").row(0) == (None, None, False)


def test_a_refused_decision_changes_nothing(db):
    version = store.current_version(db)
    with pytest.raises(decisions.UnknownFlag, match="no flag 'nope' in risk_flags"):
        decisions.record(db, "nope", "dismiss", "王敏", "x")
    with pytest.raises(decisions.DecisionError, match="say why"):
        decisions.record(db, "F-RT-SEP", "dismiss", "王敏", "  ")
    other_rules = db.parent / "rules_edited.yaml"
    other_rules.write_text((db.parent / "rules.yaml").read_text(encoding="utf-8") + "\n# edited\n", encoding="utf-8")
    with pytest.raises(decisions.ConfigurationChanged, match="not those of the last run"):
        decisions.record(db, "F-RT-SEP", "dismiss", "王敏", "x", rules_path=other_rules)
    assert store.current_version(db) == version
    assert score(db)[0] == 50.0


def test_cli_decide_dismiss_list_and_account(db):
    result = runner.invoke(
        app, ["decide", "dismiss", "F-RT-SEP", "--by", "王敏", "--note", "own card", "--db", str(db)]
    )
    assert result.exit_code == 0, result.output
    assert "dismissed F-RT-SEP (ROUND_TRIP, account A) by 王敏" in result.output
    assert "score 50 (high) -> 20 (medium)" in result.output
    listed = runner.invoke(app, ["decide", "list", "--account", "A", "--format", "csv", "--db", str(db)])
    assert listed.exit_code == 0, listed.output
    header, line = listed.output.splitlines()[:2]
    assert header.startswith("decided_at,decided_by,decision,status,flag_id,account_id,flag_code,note")
    assert ",王敏,dismiss,dismissed: not scored,F-RT-SEP,A,ROUND_TRIP,own card," in line
    shown = runner.invoke(app, ["account", "A", "--db", str(db)])
    assert shown.exit_code == 0, shown.output
    assert "F-RT-SEP" in shown.output and "dismissed" in shown.output and "王敏" in shown.output


def test_cli_unknown_flag_is_one_line_and_a_usage_error(db):
    result = runner.invoke(app, ["decide", "confirm", "nope", "--by", "王敏", "--note", "x", "--db", str(db)])
    assert result.exit_code == EXIT_USAGE
    assert result.output.strip().splitlines() == [
        f"error: no flag 'nope' in risk_flags of {db}; `liushui account ACCOUNT_ID` lists an account's flag ids"
    ]
    assert "Traceback" not in result.output
    missing = runner.invoke(app, ["decide", "list", "--db", str(db.parent / "none.duckdb")])
    assert missing.exit_code == 1 and "no database at" in missing.output


# The real flow ----------------------------------------------------------------------------------------------
ACCOUNT_ALONE_CODES = (
    "INCOME_VOLATILE",
    "LARGE_OUTFLOW",
    "MULTI_LENDER",
    "BORROWING_FREQUENT",
    "OVERDUE_PENALTY",
    "DEBT_BURDEN_HIGH",
    "OVERDRAWN",
    "BALANCE_BREAK",
)


def _table(db: Path, table: str) -> pl.DataFrame:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.sql(f"SELECT * FROM {table} ORDER BY ALL").pl()  # noqa: S608 (a contract name)
    finally:
        con.close()


def test_decisions_survive_nightly_runs_and_incremental_equals_full(prefect_harness, sample_dir, tmp_path):
    from flows.nightly import nightly

    inbox = tmp_path / "inbox"
    shutil.copytree(sample_dir / "inbox", inbox)
    late = sorted(inbox.iterdir())[-1]
    held_back = tmp_path / late.name
    late.rename(held_back)
    db = tmp_path / "w.duckdb"
    settings = Settings(inbox=inbox, database=db, reference_dir=sample_dir / "reference")
    nightly(settings)

    con = store.reader(db)
    try:
        # a flag that alone gives its code's points (the code's only flag of its account), of a rule judged on the
        # account alone: the held-back file (other accounts) cannot change its evidence
        candidates = con.execute(
            "SELECT f.flag_id, f.account_id, f.flag_code FROM risk_flags f JOIN account_risk r USING (account_id), "
            "unnest(r.active_flags) AS a(code) WHERE a.code = f.flag_code AND f.flag_code IN (SELECT unnest(?)) "
            "AND (SELECT count(*) FROM risk_flags g WHERE g.account_id = f.account_id AND g.flag_code = f.flag_code) "
            "= 1 ORDER BY r.score DESC, f.flag_id LIMIT 1",
            [list(ACCOUNT_ALONE_CODES)],
        ).fetchall()
    finally:
        con.close()
    (flag_id, account_id, code), *_ = candidates
    recorded = decisions.record(db, flag_id, "dismiss", "王敏", "checked: not what the rule thinks")
    assert recorded.score_after < recorded.score_before and not recorded.is_code_still_counted
    decided_risk = _table(db, "account_risk").filter(pl.col("account_id") == account_id)
    assert code not in json.loads(decided_risk["score_components_json"][0])

    held_back.rename(inbox / late.name)  # an incremental night with a new file
    assert nightly(settings).mode == "incremental"
    incremental = {t: _table(db, t) for t in ("risk_flags", "account_risk", "flag_decisions")}
    assert nightly(settings.model_copy(update={"full_rebuild": True})).mode == "full"
    full = {t: _table(db, t) for t in ("risk_flags", "account_risk", "flag_decisions")}
    for name in incremental:
        assert incremental[name].equals(full[name]), name
    assert full["flag_decisions"].height == 1
    assert full["account_risk"].filter(pl.col("account_id") == account_id).equals(decided_risk)
    con = store.reader(db)
    try:
        assert decisions.decision_history(con)["status"].to_list() == [decisions.STATUS_DISMISSED]
    finally:
        con.close()


def test_the_report_shows_the_decision(db):
    from rich.console import Console

    from apps.report import account_report, render_html, render_terminal

    decisions.record(db, "F-RT-SEP", "dismiss", "王敏", "own card <b>")
    report = account_report(db, "A")
    dismissed = next(f for f in report.flags if f.flag_code == "ROUND_TRIP")
    assert (dismissed.decision, dismissed.decided_by) == ("dismissed", "王敏")
    console = Console(record=True, width=200)
    render_terminal(report, console)
    assert "dismissed by 王敏 at " in console.export_text()
    page = render_html(report)
    assert '<div class="decision">dismissed by 王敏 at ' in page and page.count('class="decision"') == 1


def test_cli_decide_while_a_run_holds_the_database_is_busy(db):
    import subprocess
    import sys

    hold = (
        "import sys; from filelock import FileLock; lock = FileLock(sys.argv[1] + '.lock'); lock.acquire(); "
        "print('held', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", hold, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        args = [
            "decide",
            "dismiss",
            "F-RT-SEP",
            "--by",
            "王敏",
            "--note",
            "x",
            "--db",
            str(db),
            "--lock-timeout",
            "0.5",
        ]
        result = runner.invoke(app, args)
    finally:
        holder.communicate("")
    assert result.exit_code == EXIT_BUSY, result.output
    assert "another liushui run is using" in result.output and "Traceback" not in result.output
    assert score(db)[0] == 50.0
