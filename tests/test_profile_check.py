"""`liushui profile check FILE`: the profile, the first rows as parsed, the rows that would be quarantined,
totals per currency and the exit code, for one file, without Prefect or a database."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from apps.cli import app

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "bank_exports"
runner = CliRunner(env={"COLUMNS": "250", "LIUSHUI_PROFILES": ""})


def check(*args: str):
    return runner.invoke(app, ["profile", "check", *args])


def test_icbc_fixture_exact_output_exit_4():
    result = check(str(FIXTURES / "icbc_debit.csv"), "--rows", "2")
    assert result.exit_code == 4, result.output
    assert result.output.splitlines() == [
        "file: icbc_debit.csv",
        "layout: icbc_debit (shipped profile icbc_debit.yaml)",
        "rows: 8 read, 7 parse, 1 would be quarantined",
        "first 2 row(s) as parsed:",
        "  row 1: 6212****0421 2024-06-28 00:00:00 -23.50 CNY balance 9172.63 | 示例支付科技有限公司 | 消费 "
        "| 示例便利店有限公司",
        "  row 2: 6212****0421 2024-06-25 00:00:00 8650.00 CNY balance 9196.13 | 星河示例科技有限公司 | 工资",
        "would be quarantined:",
        "  row 8, line 15: bad_balance: not an exact balance (max 2 decimals) in column 'balance_after': 'xx,yyyy.zz'",
        "totals of the rows that parse:",
        "  CNY: in 9188.07 (4 rows), out -5128.70 (3 rows), net 4059.37",
        "result: 1 row(s) would be quarantined (exit 4)",
    ]


def test_every_row_parses_exit_0():
    result = check(str(FIXTURES / "boc_debit.csv"), "--rows", "0")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[1:3] == [
        "layout: boc_debit (shipped profile boc_debit.yaml)",
        "rows: 6 read, 6 parse, 0 would be quarantined",
    ]
    assert result.output.splitlines()[-1] == "result: every row parses (exit 0)"


def test_unknown_layout_exit_3(tmp_path):
    f = tmp_path / "x.csv"
    f.write_text("when,what,how much\n2024-01-01,coffee,3.00\n", encoding="utf-8")
    result = check(str(f))
    assert result.exit_code == 3, result.output
    assert result.output.splitlines() == [
        "file: x.csv",
        "rejected: x.csv: unknown layout: the header matches neither the canonical columns (account_id, booked_at, "
        "amount, ...) nor any layout profile",
        "result: nothing would load (exit 3)",
    ]


def test_all_rows_quarantined_exit_3(tmp_path):
    f = tmp_path / "c.csv"
    f.write_text("account_id,booked_at,amount\nA1,not a date,1.00\n", encoding="utf-8")
    result = check(str(f))
    assert result.exit_code == 3, result.output
    assert (
        "  row 1, line 2: bad_date: not a date/time in column 'booked_at': 'not a date'" in result.output.splitlines()
    )
    assert result.output.splitlines()[-1] == "result: nothing would load (exit 3)"


def test_ambiguity_and_user_profiles(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    # a looser ICBC profile of the user's: its signature is a subset of icbc_debit's, so both match
    loose = (Path(__file__).resolve().parents[1] / "liushui" / "profiles" / "icbc_debit.yaml").read_text("utf-8")
    loose = loose.replace("name: icbc_debit", "name: icbc_loose").replace(
        "header_signature: [交易日期, 摘要, 记账金额(收入), 记账金额(支出), 余额]", "header_signature: [交易日期, 摘要]"
    )
    (mine / "loose.yaml").write_text(loose, encoding="utf-8")
    (mine / "broken.yaml").write_text("name: b\ndescription: x\nheader_signature: [A, B]\n", encoding="utf-8")
    result = check(str(FIXTURES / "icbc_debit.csv"), "--profiles", str(mine), "--rows", "0")
    lines = result.output.splitlines()
    assert lines[1].startswith(
        "skipped profile: broken.yaml: invalid profile: booked_at: Field required (line 1, column 1)"
    )
    # it reads the same columns as icbc_debit: neither is more specific, so none is picked
    assert lines[2:] == [
        "rejected: icbc_debit.csv: ambiguous layout: profiles 'icbc_debit', 'icbc_loose' all match the header and "
        "none is more specific (its columns a superset of the others'); force one with --profile, or give one a "
        "distinguishing header_signature / header_exclude",
        "result: nothing would load (exit 3)",
    ]
    forced = check(str(FIXTURES / "icbc_debit.csv"), "--profiles", str(mine), "--profile", "icbc_loose", "--rows", "0")
    assert f"layout: icbc_loose (profile {mine / 'loose.yaml'})" in forced.output.splitlines()
    assert "ambiguous: also matches icbc_debit" in forced.output
    assert forced.exit_code == 4
    # a profile that reads one column more is more specific: it is chosen, and the other one named
    wider = loose.replace("name: icbc_loose", "name: icbc_wider").replace(
        "header_signature: [交易日期, 摘要]", "header_signature: [交易日期, 摘要, 交易国家或地区简称]"
    )
    (mine / "loose.yaml").write_text(wider, encoding="utf-8")
    chosen = check(str(FIXTURES / "icbc_debit.csv"), "--profiles", str(mine), "--rows", "0").output.splitlines()
    assert chosen[2:4] == [
        f"layout: icbc_wider (profile {mine / 'loose.yaml'})",
        "ambiguous: also matches icbc_debit (icbc_wider chosen: its columns include theirs; force one with --profile)",
    ]


def test_missing_file_or_folder_is_an_error(tmp_path):
    assert check(str(tmp_path / "nope.csv")).exit_code == 1
    assert check(str(FIXTURES / "icbc_debit.csv"), "--profiles", str(tmp_path / "nope")).exit_code == 1


def test_neutral_rows_are_shown_and_counted_apart_exit_0():
    """JD: 不计收支 rows are neutral — marked in the rows shown, in neither total."""
    result = check(str(FIXTURES / "jd.csv"), "--rows", "2")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        "file: jd.csv",
        "layout: jd (shipped profile jd.yaml)",
        "rows: 6 read, 6 parse, 0 would be quarantined",
        "first 2 row(s) as parsed:",
        "  row 1: jd_demo0001 2025-01-20 10:00:00 -12.00 CNY | 京东物流 | 京东外部商户 | 收发快递 | 交易成功",
        "  row 2: jd_demo0001 2025-01-18 09:30:00 59.00 CNY | 京东平台商户 | 退款-示例降噪耳机 | 网购 | 退款成功 "
        "| neutral (不计收支)",
        "totals of the rows that parse:",
        "  CNY: in 8.00 (1 rows), out -197.60 (3 rows), net -189.60; 2 neutral row(s), in neither",
        "result: every row parses (exit 0)",
    ]
