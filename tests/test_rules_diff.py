"""`liushui rules diff` on a published database: the rules that made it reproduce it exactly, a raised threshold
removes exactly the flags whose published metric no longer crosses it, a bad file is one line, and nothing is
written to the database."""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
import yaml
from typer.testing import CliRunner

from apps.cli import EXIT_ERROR, app
from apps.rules_diff import account_changes, changes_per_code, diff_rules, flag_changes, write_diff
from liushui import store
from liushui.config import DEFAULT_RULES_PATH

runner = CliRunner(env={"COLUMNS": "200"})


def fetch(db: Path, sql: str, params: list[object] | None = None) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def database_state(db: Path) -> tuple[int | None, dict[str, str]]:
    """The database's current version and the sha256 of every file of it (the public path and its versions)."""
    files = [db, *sorted((db.parent / store.VERSIONS_FOLDER).glob(f"{db.stem}.*"))]
    return store.current_version(db), {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in files if p.exists()}


def rules_with(tmp_path: Path, section: str, setting: str, value: object) -> Path:
    """A copy of the shipped rules file with one setting changed."""
    rules = yaml.safe_load(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    rules[section][setting] = value
    path = tmp_path / "new_rules.yaml"
    path.write_text(yaml.safe_dump(rules, allow_unicode=True), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def same_rules(published_db):
    return diff_rules(published_db, DEFAULT_RULES_PATH)


def test_the_published_rules_against_the_published_state_change_nothing(same_rules, published_db):
    published = dict(fetch(published_db, "SELECT flag_code, count(*) FROM risk_flags GROUP BY 1"))
    per_code = same_rules.per_code
    assert dict(zip(per_code["flag_code"], per_code["flags_now"], strict=True)) == {
        code: published.get(code, 0) for code in per_code["flag_code"]
    }
    assert per_code["flags_new"].to_list() == per_code["flags_now"].to_list()
    for column in ("added", "removed", "severity_changed", "accounts_added", "accounts_removed"):
        assert per_code[column].sum() == 0, column
    assert set(same_rules.flags["change"]) == {"kept"}
    assert same_rules.band_changes.is_empty()
    assert same_rules.accounts["score_change"].abs().max() == 0
    assert same_rules.accounts.height == fetch(published_db, "SELECT count(*) FROM account_risk")[0][0]
    [(as_of,)] = fetch(published_db, "SELECT DISTINCT as_of_on FROM account_risk")
    assert same_rules.as_of == as_of
    assert same_rules.notes == ()


def test_the_table_format_shows_every_code_and_ends_with_the_summary(same_rules, tmp_path):
    out = tmp_path / "diff.txt"
    write_diff(same_rules, "table", out)
    lines = out.read_text(encoding="utf-8").splitlines()
    assert lines[0].split()[:4] == ["flag_code", "name_zh", "compared_on", "flags_now"]
    assert any(line.startswith("MULTI_LENDER ") and "多头借贷" in line for line in lines)
    assert "no account changes band" in lines
    assert lines[-1] == same_rules.summary()
    assert "0 flag(s) added, 0 removed, 0 of another severity; 0 of" in lines[-1]
    assert lines[-1].endswith("Nothing published.")


def active_since(db: Path, lookback_months: int) -> date:
    """The first period end that counts in the score: the as-of month's first day, `lookback_months` earlier."""
    [(as_of,)] = fetch(db, "SELECT DISTINCT as_of_on FROM account_risk")
    month = as_of.month - 1 - lookback_months
    return date(as_of.year + month // 12, month % 12 + 1, 1)


def expected_band_changes(db: Path, removed: set[str], lookback_months: int) -> dict[str, tuple]:
    """From the published rows alone: an account whose active MULTI_LENDER flags are all removed loses that code's
    points (its score components say how many); its band is the highest whose lower bound the score reaches."""
    bands = yaml.safe_load(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))["account_risk"]["bands"]
    active = fetch(
        db,
        "SELECT account_id, list(flag_id) FROM risk_flags WHERE flag_code = 'MULTI_LENDER' AND period_end_on >= ? "
        "GROUP BY 1",
        [active_since(db, lookback_months)],
    )
    losing = {account for account, ids in active if set(ids) <= removed}
    changes = {}
    for account, band, score, components in fetch(
        db, "SELECT account_id, band, score, score_components_json FROM account_risk"
    ):
        if account not in losing:
            continue
        points = json.loads(components)
        new_score = min(100.0, sum(points.values()) - points["MULTI_LENDER"])
        new_band = max((bound, name) for name, bound in bands.items() if new_score >= bound)[1]
        if new_band != band:
            changes[account] = (band, new_band, score, new_score)
    return changes


def test_a_raised_threshold_removes_exactly_the_flags_below_it_and_publishes_nothing(published_db, tmp_path):
    shipped = yaml.safe_load(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    max_lenders = shipped["multi_lender"]["max_lenders"] + 1
    assert max_lenders <= shipped["multi_lender"]["high_lenders"], "a kept flag keeps its severity"
    new_rules = rules_with(tmp_path, "multi_lender", "max_lenders", max_lenders)
    removed = {
        flag_id
        for (flag_id,) in fetch(
            published_db,
            "SELECT flag_id FROM risk_flags WHERE flag_code = 'MULTI_LENDER' AND metric_value <= ?",
            [max_lenders],
        )
    }
    assert removed, "the sample has MULTI_LENDER flags at the old threshold + 1"
    expected_bands = expected_band_changes(published_db, removed, shipped["account_risk"]["lookback_months"])
    assert expected_bands, "some account drops a band when it loses MULTI_LENDER"
    before = database_state(published_db)

    result = runner.invoke(app, ["rules", "diff", str(new_rules), "--db", str(published_db), "--format", "json"])

    assert result.exit_code == 0, result.output
    assert database_state(published_db) == before
    rows = pl.read_ndjson(result.stdout.encode())
    flags = rows.filter(pl.col("section") == "flag")
    assert set(flags["change"]) == {"removed"}
    assert set(flags["flag_id_now"]) == removed and flags.height == len(removed)
    assert set(flags["flag_code"]) == {"MULTI_LENDER"}
    code = rows.filter((pl.col("section") == "code") & (pl.col("flag_code") == "MULTI_LENDER")).row(0, named=True)
    assert (code["removed"], code["added"], code["compared_on"]) == (len(removed), 0, "flag_id")
    assert code["flags_new"] == code["flags_now"] - len(removed)
    others = rows.filter((pl.col("section") == "code") & (pl.col("flag_code") != "MULTI_LENDER"))
    assert (others["added"] + others["removed"] + others["severity_changed"]).sum() == 0
    bands = rows.filter(pl.col("section") == "band")
    found = {
        r["account_id"]: (r["band_now"], r["band_new"], r["score_now"], r["score_new"])
        for r in bands.iter_rows(named=True)
    }
    assert found.keys() == expected_bands.keys()
    for account, (band, new_band, score, new_score) in expected_bands.items():
        assert found[account][:2] == (band, new_band)
        assert found[account][2:] == pytest.approx((score, new_score))
    assert bands["score_change"].abs().to_list() == sorted(bands["score_change"].abs().to_list(), reverse=True)
    assert f"{len(removed)} removed" in result.stderr and "Nothing published." in result.stderr


def test_a_dismissed_flag_stays_out_of_the_recomputed_score_as_in_a_run(published_db, tmp_path):
    from flows import decisions

    db = tmp_path / "liushui.duckdb"
    shutil.copyfile(published_db, db)
    lookback = yaml.safe_load(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))["account_risk"]["lookback_months"]
    [(flag_id,)] = fetch(
        db,
        "SELECT min(flag_id) FROM risk_flags WHERE period_end_on >= ? GROUP BY account_id, flag_code "
        "HAVING count(*) = 1 ORDER BY 1 LIMIT 1",
        [active_since(db, lookback)],
    )
    recorded = decisions.record(db, flag_id, "dismiss", "王敏", "the money came back from the holder's own card")
    assert recorded.score_after < recorded.score_before

    diff = diff_rules(db, DEFAULT_RULES_PATH)

    assert diff.band_changes.is_empty() and diff.accounts["score_change"].abs().max() == 0
    assert diff.per_code["added"].sum() == diff.per_code["removed"].sum() == 0


def test_a_baseline_rules_file_recomputes_both_sides(published_db, tmp_path):
    new_rules = rules_with(tmp_path, "multi_lender", "max_lenders", 99)
    diff = diff_rules(published_db, new_rules, baseline_rules=DEFAULT_RULES_PATH)
    published = fetch(published_db, "SELECT count(*) FROM risk_flags WHERE flag_code = 'MULTI_LENDER'")[0][0]
    code = diff.per_code.filter(pl.col("flag_code") == "MULTI_LENDER").row(0, named=True)
    assert (code["flags_now"], code["removed"], code["flags_new"]) == (published, published, 0)
    assert diff.per_code.filter(pl.col("flag_code") != "MULTI_LENDER")["removed"].sum() == 0
    assert diff.baseline == str(DEFAULT_RULES_PATH) and diff.notes == ()


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("income_volatility:\n  version: '1.0'\n  window_months: [6\n", "not valid YAML"),
        (None, "multi_lender.max_lenders: Input should be greater than or equal to 0"),
    ],
)
def test_an_invalid_rules_file_is_one_line_naming_it_and_the_problem(published_db, tmp_path, content, problem):
    if content is None:
        bad = rules_with(tmp_path, "multi_lender", "max_lenders", -1)
    else:
        bad = tmp_path / "bad.yaml"
        bad.write_text(content, encoding="utf-8")
    before = database_state(published_db)

    result = runner.invoke(app, ["rules", "diff", str(bad), "--db", str(published_db)])

    assert result.exit_code == EXIT_ERROR
    assert "Traceback" not in result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {bad}: ") and problem in line
    assert result.stdout == ""
    assert database_state(published_db) == before


def test_a_database_without_a_published_run_is_an_error(tmp_path):
    result = runner.invoke(app, ["rules", "diff", str(DEFAULT_RULES_PATH), "--db", str(tmp_path / "none.duckdb")])
    assert result.exit_code == EXIT_ERROR
    assert "no database at" in result.stderr


def flags(*rows: tuple[str, str, str, date, str, float]) -> pl.DataFrame:
    """Flag rows (the columns the diff reads): flag_id, flag_code, account_id, period start, severity, metric; in CNY,
    each period ending 2026-06-30, threshold 3."""
    return pl.DataFrame(
        [
            {
                "flag_id": flag_id,
                "flag_code": code,
                "account_id": account,
                "currency": "CNY",
                "period_start_on": start,
                "period_end_on": date(2026, 6, 30),
                "severity": severity,
                "metric_value": metric,
                "threshold": 3.0,
            }
            for flag_id, code, account, start, severity, metric in rows
        ]
    )


def test_a_flag_whose_period_start_moved_is_matched_on_its_period_end_and_others_on_flag_id():
    now = flags(
        ("d1", "DEBT_BURDEN_HIGH", "A1", date(2026, 4, 1), "medium", 0.6),
        ("m1", "MULTI_LENDER", "A1", date(2026, 4, 1), "medium", 4.0),
    )
    new = flags(
        ("d2", "DEBT_BURDEN_HIGH", "A1", date(2026, 5, 1), "medium", 0.7),  # a shorter window: same month, new id
        ("m1", "MULTI_LENDER", "A1", date(2026, 4, 1), "high", 6.0),
        ("m2", "MULTI_LENDER", "A2", date(2026, 4, 1), "medium", 4.0),
    )

    changes = flag_changes(now, new)

    assert changes.select("flag_code", "account_id", "flag_id_now", "flag_id_new", "compared_on", "change").rows() == [
        ("DEBT_BURDEN_HIGH", "A1", "d1", "d2", "period_end", "kept"),
        ("MULTI_LENDER", "A1", "m1", "m1", "flag_id", "severity"),
        ("MULTI_LENDER", "A2", None, "m2", "flag_id", "added"),
    ]
    per_code = changes_per_code(changes).filter(pl.col("flag_code").is_in(["DEBT_BURDEN_HIGH", "MULTI_LENDER"]))
    assert per_code.select(
        "flag_code", "compared_on", "flags_now", "flags_new", "added", "removed", "severity_changed", "accounts_added"
    ).sort("flag_code").rows() == [
        ("DEBT_BURDEN_HIGH", "period_end", 1, 1, 0, 0, 0, 0),
        ("MULTI_LENDER", "flag_id", 1, 2, 1, 0, 1, 1),
    ]


def test_a_flag_gone_is_removed_and_its_account_no_longer_flagged_by_the_code():
    now = flags(("m1", "MULTI_LENDER", "A1", date(2026, 4, 1), "medium", 4.0))
    changes = flag_changes(now, flags(("x", "MULTI_LENDER", "A9", date(2026, 4, 1), "medium", 5.0)).head(0))
    assert changes.select("flag_id_now", "flag_id_new", "change").rows() == [("m1", None, "removed")]
    row = changes_per_code(changes).filter(pl.col("flag_code") == "MULTI_LENDER").row(0, named=True)
    assert (row["removed"], row["accounts_now"], row["accounts_new"], row["accounts_removed"]) == (1, 1, 0, 1)


def test_accounts_changing_band_come_largest_score_change_first():
    def risk(*rows: tuple[str, str, float]) -> pl.DataFrame:
        return pl.DataFrame(
            [{"account_id": a, "customer_id": "C" + a, "holder_name": None, "band": b, "score": s} for a, b, s in rows],
            schema={
                "account_id": pl.String,
                "customer_id": pl.String,
                "holder_name": pl.String,
                "band": pl.String,
                "score": pl.Float64,
            },
        )

    accounts = account_changes(
        risk(("A1", "medium", 32.0), ("A2", "low", 10.0), ("A3", "high", 50.0), ("A4", "low", 0.0)),
        risk(("A1", "low", 12.0), ("A2", "low", 15.0), ("A3", "severe", 80.0), ("A4", "low", 0.0)),
    )

    assert accounts.select("account_id", "band_now", "band_new", "score_change", "band_steps").rows() == [
        ("A3", "high", "severe", 30.0, 1),
        ("A1", "medium", "low", -20.0, -1),
        ("A2", "low", "low", 5.0, 0),
        ("A4", "low", "low", 0.0, 0),
    ]
