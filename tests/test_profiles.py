"""Layout profiles: detection and reading of bank exports, failure paths, user-added layouts.

The exports read here are the project's own synthetic files in the real layouts (tests/fixtures/bank_exports,
see tests/fixtures/README.md), so the tests pass on a clone alone. Where the real anonymised samples are
present beside the workspace (../shared/fixtures/bank_exports, or the folder named by the environment variable
LIUSHUI_SHARED_FIXTURES), the checks against them run as well; elsewhere they are skipped.
"""

from __future__ import annotations

import os
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from liushui.contracts import CANONICAL_INPUT_COLUMNS
from liushui.ingest.inbox import read_files
from liushui.ingest.profiles import (
    OUTPUT_COLUMNS,
    LayoutError,
    Profile,
    ProfileError,
    detect_profile,
    load_profiles,
    read_profiled,
)

TESTS = Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures" / "bank_exports"
SHARED_FIXTURES = Path(
    os.environ.get("LIUSHUI_SHARED_FIXTURES") or TESTS.parents[1] / "shared" / "fixtures" / "bank_exports"
)
needs_shared = pytest.mark.skipif(
    not SHARED_FIXTURES.is_dir(),
    reason=f"real sample exports not found at {SHARED_FIXTURES} (set LIUSHUI_SHARED_FIXTURES to their folder)",
)

VALUE_COLS = list(CANONICAL_INPUT_COLUMNS)
# the synthetic file of each shipped profile (tests/fixtures/bank_exports) and the real sample it copies
SYNTHETIC = {
    "icbc_debit": "icbc_debit.csv",
    "cmb_debit": "6214000000001234_cmb_debit.csv",
    "boc_debit": "boc_debit.csv",
    "alipay": "alipay_gbk.csv",
    "hsbchk_debit": "400-123456-838_hsbchk_debit.csv",
    "bocom_debit": "6222600000005678_bocom_debit.csv",
    "cgb_credit": "6225680000001111_cgb_credit.csv",
    "cmb_credit": "4392260000002222_cmb_credit.csv",
    "jd": "jd.csv",
    "td": "td_1234567.csv",
}
REAL = {
    "icbc_debit": "icbc_debit.csv",
    "cmb_debit": "cmb_debit.csv",
    "boc_debit": "boc_debit.csv",
    "alipay": "alipay_gbk.csv",
    "hsbchk_debit": "hsbchk_debit.csv",
    "bocom_debit": "bocom_debit.csv",
    "cgb_credit": "cgb_credit.csv",
    "cmb_credit": "cmb_credit.csv",
    "jd": "jd.csv",
    "td": "td.csv",
}


@pytest.fixture(scope="module")
def profiles() -> dict[str, Profile]:
    return load_profiles()


def read(name: str, profiles: dict[str, Profile], folder: Path = FIXTURES) -> pl.DataFrame:
    path = folder / name
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
        expected = pl.Int64 if c in ("source_row", "source_line") else pl.String
        assert df.schema[c] == expected, c
    assert df["source_row"].to_list() == list(range(1, df.height + 1))
    assert df["raw"].null_count() == 0


# ---------------------------------------------------------------------------------------------------
# Shipped profiles


def test_shipped_profiles_load(profiles):
    assert set(profiles) == {
        *("icbc_debit", "cmb_debit", "boc_debit", "alipay", "hsbchk_debit"),
        *("bocom_debit", "cgb_credit", "cmb_credit", "jd", "td"),
    }
    assert set(SYNTHETIC) == set(profiles)  # every shipped profile has its synthetic fixture
    for p in profiles.values():
        assert isinstance(p.description, str) and len(p.description) > 20
        assert p.header_signature or p.spec.column_names  # td: no header line, columns by position
        assert p.path is not None and p.path.name == f"{p.name}.yaml"


# ---------------------------------------------------------------------------------------------------
# The project's synthetic exports (tests/fixtures/bank_exports): invented rows in the real layouts


@pytest.mark.parametrize(("expected", "file_name"), sorted(SYNTHETIC.items()))
def test_detect_picks_profile(profiles, file_name, expected):
    p = detect_profile(FIXTURES / file_name, profiles)
    assert p is not None and p.name == expected


def test_fixture_files_keep_the_real_bytes():
    """The layout details an editor or a formatter would silently 'fix'."""
    alipay = (FIXTURES / "alipay_gbk.csv").read_bytes()
    with pytest.raises(UnicodeDecodeError):
        alipay.decode("utf-8")
    assert "支付宝账户：lin.demo@example.com\n" in alipay.decode("gbk")
    for name in SYNTHETIC.values():
        data = (FIXTURES / name).read_bytes()
        # JD's export starts with a byte-order mark, as the real one does; no other does
        assert b"\r" not in data and data.startswith(b"\xef\xbb\xbf") == (name == "jd.csv"), name
        if name != "alipay_gbk.csv":
            data.decode("utf-8")
    # BOC and HSBC exports end without a newline (HSBC with a trailing space); the others with one
    assert (FIXTURES / SYNTHETIC["boc_debit"]).read_bytes().endswith(b",5821")
    assert (FIXTURES / SYNTHETIC["hsbchk_debit"]).read_bytes().endswith(b'"6,120.00"\t,HKD ')
    assert (FIXTURES / SYNTHETIC["icbc_debit"]).read_bytes().endswith(b'"5,176.70          \t",\n')
    assert (FIXTURES / SYNTHETIC["cmb_debit"]).read_bytes().endswith("账户结息,,\n".encode())


def test_icbc(profiles):
    df = read(SYNTHETIC["icbc_debit"], profiles)
    assert_contract(df)
    # 8 data lines between the header and the "人民币合计" footer (the " " line before it is skipped)
    assert df.height == 8
    assert row(df, 1) == {
        "account_id": "6212****0421",  # from the preamble "卡号: 6212****0421"
        "txn_id": None,
        "booked_at": "2024-06-28",
        "amount": "-23.50",  # 记账金额(支出)
        "currency": "CNY",  # 人民币
        "balance_after": "9172.63",
        "counterparty_name": "示例支付科技有限公司",
        "counterparty_account": None,
        "description": "消费 | 示例便利店有限公司",
        "channel": None,
    }
    assert df.select("booked_at", "amount", "balance_after", "counterparty_name", "description").rows() == [
        ("2024-06-28", "-23.50", "9172.63", "示例支付科技有限公司", "消费 | 示例便利店有限公司"),
        ("2024-06-25", "8650.00", "9196.13", "星河示例科技有限公司", "工资"),  # empty 交易场所 skipped in the join
        ("2024-06-20", "36.80", "546.13", "示例支付科技有限公司", "退款 | 示例支付-示例商城"),
        ("2024-06-15", "-2000.00", "509.33", "陈小明", "跨行汇款 | 手机银行"),
        ("2024-06-10", "-3105.20", "2509.33", "陈小明", "自动还款 | 示例XX分行银行卡中心"),
        ("2024-06-03", "500.00", "5614.53", "林晓红", "他行汇入"),
        ("2024-05-31", "1.27", "5114.53", None, "结息"),  # 对方户名 only padding -> null
        (
            "2024-05-20",
            "-48.00",
            "xx,yyyy.zz",
            "示例支付科技有限公司",
            "消费 | 示例支付-群收款",
        ),  # masked: kept as text
    ]
    assert set(df["account_id"]) == {"6212****0421"}
    assert set(df["currency"]) == {"CNY"}
    assert df["reject_code"].null_count() == 8
    assert "人民币合计" not in "".join(df["raw"])
    assert df["raw"][0].startswith('2024-06-28     \t,"消费                \t","示例便利店有限公司')


def test_cmb(profiles):
    df = read(SYNTHETIC["cmb_debit"], profiles)
    assert_contract(df)
    assert row(df, 1) == {
        "account_id": "6214000000001234",  # no account in the file: the digits of the file name
        "txn_id": None,
        "booked_at": "2024-03-01",
        "amount": "5200.00",  # "5,200.00"
        "currency": "CNY",
        "balance_after": "6013.45",
        "counterparty_name": "示例网络科技有限公司",  # 对手信息 "示例网络科技有限公司6222600000000011"
        "counterparty_account": "6222600000000011",
        "description": "代发工资 | 03月工资",
        "channel": None,
    }
    cols = ("booked_at", "amount", "balance_after", "counterparty_name", "counterparty_account", "description")
    assert df.select(cols).rows() == [
        ("2024-03-01", "5200.00", "6013.45", "示例网络科技有限公司", "6222600000000011", "代发工资 | 03月工资"),
        ("2024-03-02", "-1500.00", "4513.45", "周小文", "6217000000000022", "转账汇款 | 转账"),  # "周小文 6217…"
        ("2024-03-05", "-68.90", "4444.55", "示例外卖平台商家", "888800001", "快捷支付 | 示例外卖-晚餐"),
        ("2024-03-06", "68.90", "4513.45", "示例外卖平台商家", "888800001", "快捷退款 | 示例外卖-退款"),
        ("2024-03-10", "-1000.00", "3513.45", None, None, "银联ATM取款 | 银联 ATM 取款，示例银行"),  # empty 对手信息
        ("2024-03-21", "0.86", "3514.31", None, None, "账户结息"),  # empty 客户摘要
    ]
    assert set(df["account_id"]) == {"6214000000001234"}
    assert df["reject_code"].null_count() == 6


def test_boc(profiles):
    df = read(SYNTHETIC["boc_debit"], profiles)
    assert_contract(df)
    assert row(df, 1) == {
        "account_id": "5821",  # 借记卡号
        "txn_id": None,
        "booked_at": "2025-09-18 20:15:33",  # 记账日期 + 记账时间 joined
        "amount": "-45.60",
        "currency": "CNY",  # 人民币
        "balance_after": "5234.40",  # "5,234.40"
        "counterparty_name": "刘一鸣",
        "counterparty_account": "6228******1357",
        "description": "无卡支付",  # 附言 "----------" is a placeholder -> null, not joined
        "channel": "卡组织线上/无卡交易",
    }
    cols = (
        "booked_at",
        "amount",
        "balance_after",
        "counterparty_name",
        "counterparty_account",
        "description",
        "channel",
    )
    assert df.select(cols).rows() == [
        ("2025-09-18 20:15:33", "-45.60", "5234.40", "刘一鸣", "6228******1357", "无卡支付", "卡组织线上/无卡交易"),
        (
            "2025-09-15 12:02:10",
            "128.00",
            "5280.00",
            "支付宝-刘一鸣",
            "8000******2468",
            "网上快捷退款 | 支付宝-刘一鸣",
            "银企对接",
        ),
        (
            "2025-09-15 11:58:47",
            "-128.00",
            "5152.00",
            "支付宝-刘一鸣",
            "Z200******020N",
            "网上快捷支付 | 支付宝-刘一鸣",
            "银企对接",
        ),
        ("2025-09-10 09:30:00", "-3200.00", "5280.00", "赵思远", "6217******8642", "跨行转账 | 房租", "手机银行"),
        ("2025-09-05 16:00:12", "6480.00", "8480.00", "示例信息技术有限公司", "4520******7788", "工资", "柜台"),
        (
            "2025-09-01 08:57:00",
            "1000.00",
            "2000.00",
            "刘一鸣",
            "6222******0258",
            "银联入账 | 转账",
            "卡组织线上/无卡交易",
        ),
    ]
    assert set(df["account_id"]) == {"5821"}
    assert set(df["currency"]) == {"CNY"}
    assert df["reject_code"].null_count() == 6
    for c in VALUE_COLS:
        assert not df[c].drop_nulls().str.contains(r"^-{3,}$").any(), c


def test_alipay_gbk(profiles):
    df = read(SYNTHETIC["alipay"], profiles)
    assert_contract(df)
    assert row(df, 1) == {
        "account_id": "lin.demo@example.com",  # 支付宝账户：… in the preamble
        "txn_id": "2024041222001100000000000001",  # 交易订单号, the tab after it stripped
        "booked_at": "2024-04-12 19:45:08",
        "amount": "-86.00",  # 支出
        "currency": "CNY",
        "balance_after": None,
        "counterparty_name": "示例餐厅",
        "counterparty_account": None,  # "/" placeholder
        "description": "餐饮美食 | 晚餐 | 交易成功",
        "channel": "花呗",
    }
    cols = ("txn_id", "booked_at", "amount", "counterparty_account", "description", "channel")
    assert df.select(cols).rows() == [
        ("2024041222001100000000000001", "2024-04-12 19:45:08", "-86.00", None, "餐饮美食 | 晚餐 | 交易成功", "花呗"),
        (  # 收入
            "20240410200040011100000000000002",
            "2024-04-10 10:03:51",
            "1200.00",
            "zho***@example.com",
            "转账红包 | 转账 | 交易成功",
            "余额",
        ),
        (  # refund, 不计收支: positive sign, tagged
            "2024040522001100000000000004_2024040800000003",
            "2024-04-08 14:20:00",
            "129.00",
            "shop***@example.com",
            "退款 | 退款-电热水壶 | 退款成功 [不计收支]",
            "招商银行储蓄卡(1234)",
        ),
        (  # unpadded rows follow the padded ones, as in the real export
            "2024040522001100000000000004",
            "2024-04-05 09:12:33",
            "-129.00",
            "shop***@example.com",
            "日用百货 | 电热水壶 | 交易成功",
            "招商银行储蓄卡(1234)",
        ),
        (
            "20240402200010000000000000000005",
            "2024-04-02 08:00:00",
            "500.00",
            None,
            "投资理财 | 余额宝-自动转入 | 交易成功 [不计收支]",
            "余额",
        ),
        ("2024040122001100000000000006", "2024-04-01 12:30:00", "-23.40", None, "交通出行 | 打车 | 交易关闭", None),
    ]
    assert df["counterparty_name"].to_list() == [
        "示例餐厅",
        "周**",
        "示例电器旗舰店",
        "示例电器旗舰店",
        "余额宝",
        "示例出行",
    ]
    assert set(df["account_id"]) == {"lin.demo@example.com"}
    assert df["balance_after"].null_count() == 6
    assert df["reject_code"].null_count() == 6


def test_hsbc(profiles):
    df = read(SYNTHETIC["hsbchk_debit"], profiles)
    assert_contract(df)
    assert row(df, 1) == {
        "account_id": "400-123456-838",  # from the file name
        "txn_id": None,
        "booked_at": "2025-04-28",  # dd/mm/yyyy
        "amount": "-86.40",  # "-86.40"<TAB> after the closing quote
        "currency": "HKD",
        "balance_after": "20653.60",
        "counterparty_name": None,
        "counterparty_account": None,
        "description": "POS PURCHASE DEMO MART KOWLOON",  # the padding run becomes one space
        "channel": None,
    }
    assert df.select("booked_at", "amount", "currency", "balance_after", "description").rows() == [
        ("2025-04-28", "-86.40", "HKD", "20653.60", "POS PURCHASE DEMO MART KOWLOON"),
        ("2025-04-25", "18000.00", "HKD", "20740.00", "SALARY PAYMENT EXAMPLE TRADING LTD"),
        ("2025-04-22", "120.00", "HKD", "2740.00", "REFUND DEMO ONLINE STORE"),
        ("2025-04-18", "-3000.00", "HKD", "2620.00", "ONLINE TRANSFER TO 456-123456-001"),
        ("2025-04-15", "2500.00", "CNY", "2500.00", "FUND TRANSFER FROM 987-654321-002 CHAN TAI MAN"),  # own currency
        ("2025-04-10", "-500.00", "HKD", "5620.00", "ATM WITHDRAWAL DEMO BRANCH"),
        ("2025-04-01", "3.12", "HKD", "6120.00", "INTEREST CREDIT"),  # last line: no newline, a trailing space
    ]
    assert set(df["account_id"]) == {"400-123456-838"}
    assert df["reject_code"].null_count() == 7


LATEST = date(2025, 12, 31)


def _ingest(path: Path):
    (outcome,) = read_files([path], known_file_hashes=set(), batch_id="b1", latest_booking=LATEST)
    return outcome


@pytest.mark.parametrize(
    ("profile", "status", "rows_read", "rows_ok", "rows_rejected"),
    [
        ("icbc_debit", "partial", 8, 7, 1),
        ("cmb_debit", "loaded", 6, 6, 0),
        ("boc_debit", "loaded", 6, 6, 0),
        ("alipay", "loaded", 6, 6, 0),
        ("hsbchk_debit", "loaded", 7, 7, 0),
    ],
)
def test_ingest_counts(profile, status, rows_read, rows_ok, rows_rejected):
    """Through the real ingest (detection, reader, shared parser): rows loaded and quarantined per file."""
    outcome = _ingest(FIXTURES / SYNTHETIC[profile])
    r = outcome.file_row
    assert (r["profile"], r["status"], r["rows_read"], r["rows_ok"], r["rows_rejected"], r["error"]) == (
        profile,
        status,
        rows_read,
        rows_ok,
        rows_rejected,
        None,
    )
    assert outcome.parsed is not None
    assert (outcome.parsed.good.height, outcome.parsed.bad.height) == (rows_ok, rows_rejected)


def test_ingest_typed_values():
    """The typed canonical rows: signs, dates, currencies and exact Decimal amounts per layout."""
    icbc = _ingest(FIXTURES / SYNTHETIC["icbc_debit"])
    # the masked balance is quarantined with its reason, not guessed
    assert icbc.parsed.bad.select("source_row", "reason_code", "reason").rows() == [
        (
            8,
            "bad_balance",
            "icbc_debit.csv, row 8: not an exact balance (max 2 decimals) in column 'balance_after': 'xx,yyyy.zz'",
        )
    ]
    assert icbc.parsed.bad["raw"][0].startswith('2024-05-20     \t,"消费')
    assert icbc.parsed.good["amount"].sum() == Decimal("4059.37")  # 9188.07 in, 5128.70 out (48.00 quarantined)
    assert icbc.parsed.good["source_row"].to_list() == [1, 2, 3, 4, 5, 6, 7]

    boc = _ingest(FIXTURES / SYNTHETIC["boc_debit"]).parsed.good
    assert boc.select("account_id", "booked_at", "amount", "currency", "balance_after").rows()[:2] == [
        ("5821", datetime(2025, 9, 18, 20, 15, 33), Decimal("-45.60"), "CNY", Decimal("5234.40")),
        ("5821", datetime(2025, 9, 15, 12, 2, 10), Decimal("128.00"), "CNY", Decimal("5280.00")),
    ]
    assert boc["amount"].sum() == Decimal("4234.40")  # opening 1000.00 -> closing 5234.40

    cmb = _ingest(FIXTURES / SYNTHETIC["cmb_debit"]).parsed.good
    assert cmb.select("account_id", "booked_at", "amount").rows()[1] == (
        "6214000000001234",
        datetime(2024, 3, 2),
        Decimal("-1500.00"),
    )
    assert cmb["amount"].sum() == Decimal("2700.86")  # 813.45 -> 3514.31

    alipay = _ingest(FIXTURES / SYNTHETIC["alipay"]).parsed.good
    # the order ids are unique in the file, so they are the transaction ids (prefixed with the account)
    assert alipay.select("txn_id", "booked_at", "amount").rows()[2] == (
        "lin.demo@example.com:2024040522001100000000000004_2024040800000003",
        datetime(2024, 4, 8, 14, 20),
        Decimal("129.00"),
    )
    assert alipay["txn_id"].n_unique() == 6
    assert alipay.filter(pl.col("amount") < 0)["amount"].sum() == Decimal("-238.40")  # 支出：3笔 238.40元

    hsbc = _ingest(FIXTURES / SYNTHETIC["hsbchk_debit"]).parsed.good
    by_currency = hsbc.group_by("currency").agg(pl.len(), pl.col("amount").sum()).sort("currency").rows()
    assert by_currency == [("CNY", 1, Decimal("2500.00")), ("HKD", 6, Decimal("14536.72"))]
    assert hsbc["booked_at"].to_list()[-1] == datetime(2025, 4, 1)


@pytest.mark.parametrize(
    ("profile", "file_name", "account"),
    [
        ("cmb_debit", "cmb_debit_6214000000001234.csv", "6214000000001234"),
        ("hsbchk_debit", "hsbchk_400-123456-838.csv", "400-123456-838"),
        ("cmb_debit", "6214000000009999_june.csv", "6214000000009999"),
        ("cmb_debit", "statement_june.csv", "statement_june"),
        ("cmb_debit", "cmb_12345.csv", "cmb_12345"),  # 5 digits are not an account number
    ],
)
def test_account_from_digits_inside_the_file_name(tmp_path, profiles, profile, file_name, account):
    """docs/profiles.md: 'a run of 6+ digits in the file name, else the file name without extension'."""
    f = tmp_path / file_name
    f.write_bytes((FIXTURES / SYNTHETIC[profile]).read_bytes())
    assert set(read_profiled(f, profiles[profile])["account_id"]) == {account}


# ---------------------------------------------------------------------------------------------------
# The real anonymised samples, where they are present beside the workspace (../shared/fixtures)


def _header_line(text: str, profile: Profile) -> tuple[int, str]:
    for i, line in enumerate(text.split("\n")):
        cells = {"".join(c.split()).lstrip("\ufeff") for c in line.split(",")}
        if profile.signature_norm <= cells:
            return i, line
    raise AssertionError(f"no header for {profile.name}")


@needs_shared
@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_fixture_copies_the_real_layout(profiles, name):
    """Same encoding, same header line at the same line number, same preamble shape as the real sample."""
    real_bytes = (SHARED_FIXTURES / REAL[name]).read_bytes()
    ours_bytes = (FIXTURES / SYNTHETIC[name]).read_bytes()
    encoding = "gbk" if name == "alipay" else "utf-8"
    if name == "alipay":
        for data in (real_bytes, ours_bytes):
            with pytest.raises(UnicodeDecodeError):
                data.decode("utf-8")
    real, ours = real_bytes.decode(encoding), ours_bytes.decode(encoding)
    if profiles[name].spec.has_header:
        (ri, rh), (oi, oh) = _header_line(real, profiles[name]), _header_line(ours, profiles[name])
        assert (oi, oh) == (ri, rh)
    else:  # no header line: the first lines have the same number of cells
        ri = oi = 0
        assert real.split("\n")[0].count(",") == ours.split("\n")[0].count(",")
    assert [bool(line.strip()) for line in ours.split("\n")[:oi]] == [
        bool(line.strip()) for line in real.split("\n")[:ri]
    ]
    assert ours.endswith("\n") == real.endswith("\n")
    assert (
        detect_profile(FIXTURES / SYNTHETIC[name], profiles).name
        == detect_profile(SHARED_FIXTURES / REAL[name], profiles).name
    )


@needs_shared
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
def test_real_detect_picks_profile(profiles, file_name, expected):
    p = detect_profile(SHARED_FIXTURES / file_name, profiles)
    assert p is not None and p.name == expected


@needs_shared
def test_real_icbc(profiles):
    df = read("icbc_debit.csv", profiles, SHARED_FIXTURES)
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


@needs_shared
def test_real_cmb(profiles):
    df = read("cmb_debit.csv", profiles, SHARED_FIXTURES)
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


@needs_shared
def test_real_boc(profiles):
    df = read("boc_debit.csv", profiles, SHARED_FIXTURES)
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


@needs_shared
def test_real_alipay_gbk(profiles):
    df = read("alipay_gbk.csv", profiles, SHARED_FIXTURES)
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


@needs_shared
def test_real_hsbc(profiles):
    df = read("hsbchk_debit.csv", profiles, SHARED_FIXTURES)
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


# ---------------------------------------------------------------------------------------------------
# A user folder of profiles: merged with the shipped ones; a broken file is skipped, not fatal

DEMO_STATEMENT = (
    "Demo Bank plc - Statement\nAccount number: 12-34-56-7890\n\n"
    "Posting Date,Details,Debit,Credit,Running Balance\n"
    '01/03/2025,Opening deposit,,"1,500.00","1,500.00"\n'
    'Closing balance,,,,"1,500.00"\n'
)


def _read_with(paths: list[Path], profiles_dir: Path | None, forced: str | None = None) -> list[dict]:
    rows = []
    for outcome in read_files(
        paths,
        known_file_hashes=set(),
        batch_id="b",
        latest_booking=date(2026, 12, 31),
        forced_profile=forced,
        profiles_dir=profiles_dir,
    ):
        assert outcome.file_row is not None
        rows.append(outcome.file_row)
    return rows


def test_user_folder_merges_and_overrides_by_name(tmp_path):
    from liushui.ingest.profiles import load_profile_set

    pdir = tmp_path / "mine"
    pdir.mkdir()
    (pdir / "demo.yaml").write_text(NEW_PROFILE, encoding="utf-8")
    # a user copy of a shipped profile (same name) replaces it
    icbc = (Path(load_profiles()["icbc_debit"].path or "").read_text(encoding="utf-8")).replace(
        "default: CNY", "default: HKD"
    )
    (pdir / "icbc_debit.yaml").write_text(icbc, encoding="utf-8")
    loaded = load_profile_set(pdir)
    assert sorted(loaded.profiles) == sorted([*SYNTHETIC, "demo_bank_en"])
    assert loaded.overridden == ("icbc_debit",) and loaded.skipped == ()
    assert loaded.profiles["icbc_debit"].path == pdir / "icbc_debit.yaml"
    assert loaded.profiles["icbc_debit"].spec.currency.default == "HKD"
    assert loaded.profiles["cmb_debit"].path is not None and loaded.profiles["cmb_debit"].path.parent.name == "profiles"
    f = tmp_path / "statement.csv"
    f.write_text(DEMO_STATEMENT, encoding="utf-8")
    (row,) = _read_with([f], pdir)
    assert (row["status"], row["profile"], row["rows_ok"]) == ("loaded", "demo_bank_en", 1)
    with pytest.raises(ProfileError, match="does not exist"):
        load_profile_set(tmp_path / "nope")


def test_broken_profile_is_skipped_with_file_line_column(tmp_path):
    from liushui.ingest.profiles import load_profile_set

    pdir = tmp_path / "mine"
    pdir.mkdir()
    # valid YAML, invalid profile: `amount` lacks expense_column (line 9), an unknown key (line 19)
    (pdir / "demo.yaml").write_text(
        NEW_PROFILE.replace("  expense_column: Debit\n", "") + "colour: blue\n", encoding="utf-8"
    )
    (pdir / "broken.yaml").write_text("name: x\ndescription: [unclosed\n", encoding="utf-8")  # not YAML
    loaded = load_profile_set(pdir)
    assert sorted(loaded.profiles) == sorted(SYNTHETIC)
    by_file = {s.path.name: s for s in loaded.skipped}
    assert sorted(by_file) == ["broken.yaml", "demo.yaml"]
    demo = by_file["demo.yaml"]
    assert (demo.name, demo.error.line, demo.error.column) == ("demo_bank_en", 8, 1)
    assert demo.describe() == (
        "demo.yaml: invalid profile: amount: Value error, convention 'split' requires expense_column "
        "(line 8, column 1); colour: Extra inputs are not permitted (line 18, column 1)"
    )
    broken = by_file["broken.yaml"]
    assert (broken.error.line, broken.error.column) == (3, 1)
    assert broken.describe().startswith("broken.yaml: not valid YAML: line 3, column 1: while parsing a flow sequence")

    # every other file still loads; the file that needed the skipped profile says which one and why
    f = tmp_path / "statement.csv"
    f.write_text(DEMO_STATEMENT, encoding="utf-8")
    demo_row, icbc_row = _read_with([f, FIXTURES / SYNTHETIC["icbc_debit"]], pdir)
    assert (icbc_row["status"], icbc_row["profile"]) == ("partial", "icbc_debit")
    assert demo_row["status"] == "rejected"
    assert demo_row["error"] == (
        "statement.csv: unknown layout: the header matches neither the canonical columns (account_id, booked_at, "
        "amount, ...) nor any layout profile; profile 'demo_bank_en' would match but was skipped: " + demo.describe()
    )
    # forcing the skipped profile names it too
    (forced,) = _read_with([f], pdir, forced="demo_bank_en")
    assert forced["error"] == "statement.csv: profile 'demo_bank_en' was skipped: " + demo.describe()


def test_a_broken_shipped_profile_rejects_only_the_files_needing_it(tmp_path, monkeypatch):
    from liushui.ingest import profile_spec

    shipped = tmp_path / "shipped"
    shipped.mkdir()
    for f in profile_spec.SHIPPED_PROFILES_DIR.glob("*.yaml"):
        text = f.read_text(encoding="utf-8")
        if f.stem == "cmb_debit":
            text = text.replace("convention: signed", "convention: sined")
        (shipped / f.name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(profile_spec, "SHIPPED_PROFILES_DIR", shipped)
    monkeypatch.setattr(profile_spec.load_profile_set, "__kwdefaults__", {"shipped_dir": shipped})
    cmb, icbc = _read_with([FIXTURES / SYNTHETIC["cmb_debit"], FIXTURES / SYNTHETIC["icbc_debit"]], None)
    assert icbc["profile"] == "icbc_debit" and icbc["status"] == "partial"
    assert cmb["status"] == "rejected"
    assert (
        "profile 'cmb_debit' would match but was skipped: cmb_debit.yaml: invalid profile: amount.convention"
        in (cmb["error"])
    )
