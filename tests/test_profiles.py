"""Layout profiles: detection and reading of real bank exports, failure paths, user-added layouts."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from liushui.contracts import CANONICAL_INPUT_COLUMNS
from liushui.ingest.profiles import (
    OUTPUT_COLUMNS,
    LayoutError,
    Profile,
    ProfileError,
    detect_profile,
    load_profiles,
    read_profiled,
)

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "bank_exports"

VALUE_COLS = list(CANONICAL_INPUT_COLUMNS)


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    return load_profiles()


def read(name: str, profiles: dict[str, Profile]) -> pl.DataFrame:
    path = FIXTURES / name
    profile = detect_profile(path, profiles)
    assert profile is not None, f"no profile detected for {name}"
    return read_profiled(path, profile)


def row(df: pl.DataFrame, source_row: int) -> dict:
    rows = df.filter(pl.col("source_row") == source_row).select(VALUE_COLS).to_dicts()
    assert len(rows) == 1
    return rows[0]


def assert_contract(df: pl.DataFrame) -> None:
    assert tuple(df.columns) == OUTPUT_COLUMNS
    for c in df.columns:
        expected = pl.Int64 if c == "source_row" else pl.String
        assert df.schema[c] == expected, c
    assert df["source_row"].to_list() == list(range(1, df.height + 1))
    assert df["raw"].null_count() == 0


# ---------------------------------------------------------------------------------------------------
# Shipped profiles


def test_shipped_profiles_load(profiles):
    assert set(profiles) == {"icbc_debit", "cmb_debit", "boc_debit", "alipay", "hsbchk_debit"}
    for p in profiles.values():
        assert isinstance(p.description, str) and len(p.description) > 20
        assert p.header_signature
        assert p.path is not None and p.path.name == f"{p.name}.yaml"


@pytest.mark.parametrize(
    ("file_name", "expected"),
    [
        ("icbc_debit.csv", "icbc_debit"),
        ("cmb_debit.csv", "cmb_debit"),
        ("boc_debit.csv", "boc_debit"),
        ("alipay_gbk.csv", "alipay"),
        ("hsbchk_debit.csv", "hsbchk_debit"),
    ],
)
def test_detect_picks_profile(profiles, file_name, expected):
    p = detect_profile(FIXTURES / file_name, profiles)
    assert p is not None and p.name == expected


def test_icbc(profiles):
    df = read("icbc_debit.csv", profiles)
    assert_contract(df)
    # 11 data lines between the header and the "人民币合计" footer (the blank " " line is skipped)
    assert df.height == 11
    assert df["reject_code"].null_count() == 11
    assert row(df, 1) == {
        "account_id": "1234****9876",
        "txn_id": None,
        "booked_at": "2023-05-02",
        "amount": "-13.40",
        "currency": "CNY",
        "balance_after": "xx,yyyy.zz",  # anonymised: kept as text so it is quarantined, not guessed
        "counterparty_name": "深圳市财付通支付科技有限公司",
        "counterparty_account": None,
        "description": "消费 | 广东三元麦当劳食品有",
        "channel": None,
    }
    assert row(df, 3)["amount"] == "1234.56"  # 他行汇入: income column
    assert row(df, 3)["description"] == "他行汇入"  # empty 交易场所 skipped in the join
    assert row(df, 2)["amount"] == "-1234.56"  # 自动还款: expense column, thousands separator removed
    assert row(df, 11)["amount"] == "1.04"
    assert set(df["balance_after"]) == {"xx,yyyy.zz"}
    assert df["booked_at"][-1] == "2023-02-08"
    assert "人民币合计" not in "".join(df["raw"])
    assert df["raw"][0].startswith('2023-05-02     \t,"消费')


def test_cmb(profiles):
    df = read("cmb_debit.csv", profiles)
    assert_contract(df)
    assert df.height == 5
    assert row(df, 1) == {
        "account_id": "cmb_debit",  # no account in the file: file name stem
        "txn_id": None,
        "booked_at": "2024-01-01",
        "amount": "1234.00",
        "currency": "CNY",
        "balance_after": "1271.66",
        "counterparty_name": "北京住房公积金管理中心",
        "counterparty_account": "1111111111",
        "description": "代发住房公积金 | 01月01日约定提取",
        "channel": None,
    }
    r2 = row(df, 2)
    assert (r2["amount"], r2["counterparty_name"], r2["counterparty_account"]) == (
        "-1000.00",
        "张三",
        "66666666666666",
    )
    r4 = row(df, 4)  # empty 对手信息
    assert (r4["counterparty_name"], r4["counterparty_account"]) == (None, None)
    assert r4["description"] == "银联ATM取款 | 银联 ATM 取款，中国银行"
    assert row(df, 5)["balance_after"] == "1218.24"
    assert row(df, 5)["counterparty_name"] == "抖音电商商家"


def test_boc(profiles):
    df = read("boc_debit.csv", profiles)
    assert_contract(df)
    assert df.height == 17
    assert row(df, 1) == {
        "account_id": "3167",
        "txn_id": None,
        "booked_at": "2025-08-22 17:57:17",  # 记账日期 + 记账时间 joined
        "amount": "-71.89",
        "currency": "CNY",  # 人民币
        "balance_after": "3240.28",
        "counterparty_name": "张三",
        "counterparty_account": "6226******5669",
        "description": "无卡支付",  # 附言 "----------" is a placeholder -> null, not joined
        "channel": "卡组织线上/无卡交易",
    }
    r12 = row(df, 12)
    assert (r12["amount"], r12["booked_at"], r12["description"], r12["channel"]) == (
        "5771.00",
        "2025-08-05 16:00:44",
        "工资",
        "柜台",
    )
    assert row(df, 8)["amount"] == "-2600.00"
    assert set(df["currency"]) == {"CNY"}
    for c in VALUE_COLS:
        assert not df[c].drop_nulls().str.contains(r"^-{3,}$").any(), c


def test_alipay_gbk(profiles):
    df = read("alipay_gbk.csv", profiles)
    assert_contract(df)
    assert df.height == 10
    assert row(df, 1) == {
        "account_id": "xx@gmail.com",
        "txn_id": "202302xxxxxx0011000103xxxxxx",
        "booked_at": "2023-02-12 21:32:14",
        "amount": "-49.74",  # 支出
        "currency": "CNY",
        "balance_after": None,
        "counterparty_name": "xxxxxxxxxxxx",
        "counterparty_account": None,  # "/" placeholder
        "description": "亲友代付 | 亲情卡 | 交易成功",
        "channel": "交通银行信用卡(7449)",
    }
    r5 = row(df, 5)  # 收入
    assert (r5["amount"], r5["counterparty_account"], r5["description"]) == (
        "222228.50",
        "xxx***@163.com",
        "转账红包 | 转账 | 交易成功",
    )
    r3 = row(df, 3)  # 不计收支: positive sign, tagged
    assert (r3["amount"], r3["description"]) == ("16.03", "退款 | 退款-亲情卡 | 退款成功 [不计收支]")
    assert row(df, 8)["amount"] == "-50.00"
    assert row(df, 10)["booked_at"] == "2023-07-10 13:20:16"
    assert df["reject_code"].null_count() == 10


def test_hsbc(profiles):
    df = read("hsbchk_debit.csv", profiles)
    assert_contract(df)
    assert df.height == 10
    assert row(df, 1) == {
        "account_id": "hsbchk_debit",
        "txn_id": None,
        "booked_at": "2025-03-24",  # dd/mm/yyyy
        "amount": "-1.00",  # "-1.00"<TAB> after the closing quote
        "currency": "HKD",
        "balance_after": "3612.17",
        "counterparty_name": None,
        "counterparty_account": None,
        "description": "TRIPLE Z HC1234567890123456 22MAR",
        "channel": None,
    }
    r7 = row(df, 7)  # the CNY row keeps its own currency
    assert (r7["currency"], r7["amount"], r7["balance_after"]) == ("CNY", "12500.00", "12500.00")
    assert row(df, 6)["currency"] == "HKD"
    assert row(df, 10) | {} == row(df, 10)
    assert (row(df, 10)["booked_at"], row(df, 10)["amount"]) == ("2025-03-01", "5.45")
    assert df["reject_code"].null_count() == 10


# ---------------------------------------------------------------------------------------------------
# Failure paths and robustness

CMB_HEADER = "记账日期,货币,交易金额,联机余额,交易摘要,对手信息,客户摘要\n"


def test_empty_file(tmp_path, profiles):
    f = tmp_path / "empty.csv"
    f.write_bytes(b"")
    assert detect_profile(f, profiles) is None
    with pytest.raises(LayoutError, match=r"empty\.csv: empty file"):
        read_profiled(f, profiles["cmb_debit"])


def test_header_only(tmp_path, profiles):
    f = tmp_path / "cmb_header_only.csv"
    f.write_text(CMB_HEADER, encoding="utf-8")
    assert detect_profile(f, profiles).name == "cmb_debit"
    with pytest.raises(LayoutError, match=r"cmb_header_only\.csv: header found on line 1 .* no data rows"):
        read_profiled(f, profiles["cmb_debit"])


def test_binary_junk(tmp_path, profiles):
    f = tmp_path / "junk.csv"
    f.write_bytes(bytes(range(256)) * 40)
    assert detect_profile(f, profiles) is None
    with pytest.raises(LayoutError, match=r"junk\.csv: binary"):
        read_profiled(f, profiles["alipay"])


def test_unknown_layout(tmp_path, profiles):
    f = tmp_path / "alipay_x.csv"
    f.write_text("foo,bar,baz\n1,2,3\n", encoding="utf-8")
    assert detect_profile(f, profiles) is None
    with pytest.raises(LayoutError) as exc:
        read_profiled(f, profiles["alipay"])
    assert str(exc.value).startswith(
        "alipay_x.csv: no header line found matching profile 'alipay' within the first 60 lines"
    )


def test_canonical_layout_is_not_a_profile(tmp_path, profiles):
    f = tmp_path / "canon.csv"
    f.write_text("account_id,booked_at,amount\nA1,2024-01-01,1.00\n", encoding="utf-8")
    assert detect_profile(f, profiles) is None


def test_undecodable_with_fixed_encoding(tmp_path):
    d = tmp_path / "p"
    d.mkdir()
    (d / "x.yaml").write_text(
        "name: x\ndescription: t\nencoding: utf-8\nheader_signature: [日期, 金额]\n"
        "booked_at: {column: 日期, formats: ['%Y-%m-%d']}\namount: {convention: signed, column: 金额}\n",
        encoding="utf-8",
    )
    f = tmp_path / "gbk.csv"
    f.write_bytes("日期,金额\n2024-01-01,1.00\n".encode("gb18030"))
    with pytest.raises(LayoutError, match=r"gbk\.csv: cannot decode as utf-8"):
        read_profiled(f, load_profiles(d)["x"])


def test_ragged_row_rejected_not_dropped(tmp_path, profiles):
    f = tmp_path / "cmb_ragged.csv"
    f.write_text(
        CMB_HEADER
        + "2024-01-01,CNY,-3.00,81.22,一网通支付,国网电力有限公司99999999999999,供电\n"
        + "2024-01-02,CNY,-4.00,77.22\n"
        + "2024-01-03,CNY,-5.00,72.22,快捷支付,,x\n",
        encoding="utf-8",
    )
    df = read_profiled(f, profiles["cmb_debit"])
    assert df.height == 3
    assert df["reject_code"].to_list() == [None, "ragged_row", None]
    assert df["reject_reason"][1] == "row has 4 cells, header has 7"
    assert df["raw"][1] == "2024-01-02,CNY,-4.00,77.22"
    assert df["source_row"].to_list() == [1, 2, 3]


def test_truncated_last_row_is_a_reject_but_trailing_text_is_footer(tmp_path, profiles):
    f = tmp_path / "cmb_tail.csv"
    f.write_text(
        CMB_HEADER
        + "2024-01-01,CNY,-3.00,81.22,一网通支付,,供电\n"
        + "2024-01-02,CNY,-4.\n"  # truncated row: has a date -> kept and rejected
        + "\n"
        + "共2笔,合计\n"  # trailing text: not a row -> footer
        + "本明细仅供个人对账使用。\n",
        encoding="utf-8",
    )
    df = read_profiled(f, profiles["cmb_debit"])
    assert df["reject_code"].to_list() == [None, "ragged_row"]


def test_quoted_newline_and_utf8_bom(tmp_path, profiles):
    f = tmp_path / "cmb_bom.csv"
    f.write_bytes(
        (
            CMB_HEADER
            + '2024-01-01,CNY,"1,000.50",9.00,转账,"张三 6222000011112222","多行\n备注"\n'
            + "2024-01-02,CNY,(20.00),-11.00,扣费,,\n"
        ).encode("utf-8-sig")
    )
    assert detect_profile(f, profiles).name == "cmb_debit"
    df = read_profiled(f, profiles["cmb_debit"])
    assert df.height == 2
    assert df["description"][0] == "转账 | 多行\n备注"
    assert df["raw"][0].endswith('"多行\n备注"')
    assert df["amount"].to_list() == ["1000.50", "-20.00"]
    assert df["balance_after"].to_list() == ["9.00", "-11.00"]
    assert df["counterparty_account"][0] == "6222000011112222"
    assert df["source_row"].to_list() == [1, 2]


def test_bad_values_stay_original_text(tmp_path, profiles):
    f = tmp_path / "cmb_bad.csv"
    f.write_text(
        CMB_HEADER + '2024-13-45,CNY,1.2.3,"1,23.45",x,,\n2024-01-02,人民币,"12,345","1,234,567.8",y,,\n',
        encoding="utf-8",
    )
    df = read_profiled(f, profiles["cmb_debit"])
    assert df.select("booked_at", "amount", "balance_after", "currency").rows() == [
        ("2024-13-45", "1.2.3", "1,23.45", "CNY"),
        ("2024-01-02", "12345", "1234567.8", "CNY"),
    ]
    assert df["reject_code"].null_count() == 2  # value problems are for the shared parser, not the reader


def test_direction_edge_cases(tmp_path, profiles):
    f = tmp_path / "alipay_utf8.csv"
    f.write_text(
        "支付宝账户：me@example.com\n"
        "交易时间,交易分类,交易对方,对方账号,商品说明,收/支,金额,收/付款方式,交易状态,交易订单号,商家订单号,备注,\n"
        "2023-02-12 21:32:14,a,b,/,c,支出,49.74,余额,交易成功,T1,,,\n"
        "2023-02-12 21:33:14,a,b,/,c,其他,1.00,余额,交易成功,T2,,,\n"
        "2023-02-12 21:34:14,a,b,/,c,,2.00,余额,交易成功,T3,,,\n"
        "------------------------------------------------------------------------------------\n"
        "导出时间：[2023-02-13 09:12:52]\n",
        encoding="utf-8",
    )
    df = read_profiled(f, profiles["alipay"])
    assert df["account_id"].to_list() == ["me@example.com"] * 3
    assert df["reject_code"].to_list() == [None, "bad_direction", "bad_direction"]
    assert df["reject_reason"][1] == "收/支 '其他' is not one of 收入, 支出, 不计收支"
    assert df["reject_reason"][2] == "收/支 (empty) is not one of 收入, 支出, 不计收支"


def test_invalid_profile_clear_error(tmp_path):
    d = tmp_path / "bad"
    d.mkdir()
    (d / "bad.yaml").write_text(
        "name: bad\ndescription: t\nheader_signature: [A]\nbooked_at: {column: A, formats: ['%d/%m/%Y']}\n"
        "amount: {convention: split, income_column: In}\n",
        encoding="utf-8",
    )
    with pytest.raises(ProfileError, match=r"bad\.yaml: invalid profile: amount: .*requires expense_column"):
        load_profiles(d)
    (d / "bad.yaml").write_text("name: bad\ndescription: t\ndescription: u\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"bad\.yaml: not valid YAML: .*duplicate key 'description'"):
        load_profiles(d)
    (d / "bad.yaml").write_text("name: bad\ndescription: t\nheader_signatur: [A]\n", encoding="utf-8")
    with pytest.raises(ProfileError, match=r"header_signatur: Extra inputs are not permitted"):
        load_profiles(d)


# ---------------------------------------------------------------------------------------------------
# A user adds a layout without code

NEW_PROFILE = """\
name: demo_bank_en
description: Demo bank statement (English, Debit/Credit columns, dd/mm/yyyy).
header_signature: [Posting Date, Details, Debit, Credit, Running Balance]
footer_patterns: ['^Closing balance']
booked_at:
  column: Posting Date
  formats: ['%d/%m/%Y']
amount:
  convention: split
  income_column: Credit
  expense_column: Debit
currency:
  default: GBP
account_id:
  preamble_regex: 'Account number:\\s*(?P<account_id>[0-9-]+)'
columns:
  balance_after: Running Balance
description_columns: [Details]
"""


def test_user_added_profile(tmp_path):
    pdir = tmp_path / "profiles"
    pdir.mkdir()
    (pdir / "demo_bank_en.yaml").write_text(NEW_PROFILE, encoding="utf-8")
    profiles = load_profiles(pdir)
    f = tmp_path / "statement_march.csv"
    f.write_text(
        "Demo Bank plc - Statement\n"
        "Account number: 12-34-56-7890\n"
        "\n"
        "Posting Date,Details,Debit,Credit,Running Balance\n"
        '01/03/2025,Opening deposit,,"1,500.00","1,500.00"\n'
        '05/03/2025,Card payment TESCO,42.10,,"1,457.90"\n'
        '31/03/2025,Interest,,0.35,"1,458.25"\n'
        'Closing balance,,,,"1,458.25"\n',
        encoding="utf-8",
    )
    profile = detect_profile(f, profiles)
    assert profile is not None and profile.name == "demo_bank_en"
    df = read_profiled(f, profile)
    assert df.select("account_id", "booked_at", "amount", "currency", "balance_after", "description").rows() == [
        ("12-34-56-7890", "2025-03-01", "1500.00", "GBP", "1500.00", "Opening deposit"),
        ("12-34-56-7890", "2025-03-05", "-42.10", "GBP", "1457.90", "Card payment TESCO"),
        ("12-34-56-7890", "2025-03-31", "0.35", "GBP", "1458.25", "Interest"),
    ]
    # the shipped profiles do not know this layout
    assert detect_profile(f, load_profiles()) is None


def _write_profile(d: Path, text: str) -> dict[str, Profile]:
    d.mkdir(exist_ok=True)
    (d / "p.yaml").write_text(text, encoding="utf-8")
    return load_profiles(d)


def test_split_both_sides_set_is_rejected(tmp_path):
    profiles = _write_profile(
        tmp_path / "p",
        "name: p\ndescription: t\nheader_signature: [日期, 收入, 支出]\n"
        "booked_at: {column: 日期, formats: ['%Y%m%d']}\n"
        "amount: {convention: split, income_column: 收入, expense_column: 支出}\n",
    )
    f = tmp_path / "s.csv"
    f.write_text("日期,收入,支出\n20240101,5.00,3.00\n20240102,0.00,-3.00\n20240103,,\n", encoding="utf-8")
    df = read_profiled(f, profiles["p"])
    assert df.select("booked_at", "amount", "reject_code").rows() == [
        ("2024-01-01", None, "ambiguous_amount"),
        ("2024-01-02", "-3.00", None),  # 0.00 income ignored; expense sign is always minus
        ("2024-01-03", None, None),  # no amount at all: left null for the shared parser to report
    ]
    assert df["reject_reason"][0] == "both '收入' (5.00) and '支出' (3.00) are set"


def test_direction_reject_and_dr_cr(tmp_path):
    profiles = _write_profile(
        tmp_path / "p",
        "name: p\ndescription: t\nheader_signature: [Date, Amount, Dr/Cr]\n"
        "booked_at: {column: Date, formats: ['%d/%m/%Y %H:%M', '%d/%m/%Y']}\n"
        "amount:\n  convention: direction\n  column: Amount\n  direction_column: Dr/Cr\n"
        "  direction_map: {Dr: -1, Cr: 1, Memo: reject}\n",
    )
    f = tmp_path / "d.csv"
    f.write_text(
        'Date,Amount,Dr/Cr\n01/02/2024 09:30,"1,000.00",Dr\n02/02/2024,5,Cr\n03/02/2024,0,Memo\n',
        encoding="utf-8",
    )
    df = read_profiled(f, profiles["p"])
    assert df.select("booked_at", "amount", "currency", "reject_code").rows() == [
        ("2024-02-01 09:30:00", "-1000.00", "CNY", None),
        ("2024-02-02", "5", "CNY", None),
        ("2024-02-03", "0", "CNY", "excluded_direction"),
    ]
    assert df["reject_reason"][2] == "Dr/Cr 'Memo' is excluded by profile 'p'"


def test_profile_regex_must_work_in_polars(tmp_path):
    with pytest.raises(ProfileError, match=r"counterparty_split.pattern: .*not supported by Polars"):
        _write_profile(
            tmp_path / "p",
            "name: p\ndescription: t\nheader_signature: [A]\nbooked_at: {column: A, formats: ['%Y']}\n"
            "amount: {convention: signed, column: A}\n"
            "counterparty_split: {column: A, pattern: '(?P<name>.*?)(?=\\d)(?P<account>\\d+)'}\n",
        )


def test_stray_quote_does_not_swallow_rows(tmp_path, profiles):
    f = tmp_path / "cmb_quote.csv"
    f.write_text(
        CMB_HEADER
        + '2024-01-01,CNY,-1.00,9.00,"bad quote,x,y\n'
        + "2024-01-02,CNY,-2.00,7.00,ok,,\n"
        + "2024-01-03,CNY,-3.00,4.00,ok,,\n",
        encoding="utf-8",
    )
    df = read_profiled(f, profiles["cmb_debit"])
    assert df["amount"].to_list() == ["-1.00", "-2.00", "-3.00"]
    assert df["reject_code"].to_list() == ["ragged_row", None, None]
    assert df["raw"][1] == "2024-01-02,CNY,-2.00,7.00,ok,,"
