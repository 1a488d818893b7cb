"""The five layouts that came with the real samples later (BOCOM debit, CGB and CMB credit cards, JD, TD): each
read by its shipped profile with exact expected rows — signs, dates, currencies, neutral rows — on the project's
own synthetic fixtures (tests/fixtures/bank_exports, invented data in the same layout) and, where present, on the
real samples (../shared/fixtures/bank_exports or LIUSHUI_SHARED_FIXTURES; skipped elsewhere)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from liushui.ingest.inbox import read_files
from liushui.ingest.profiles import detect_profile, load_profiles, read_profiled
from tests.conftest import FIXTURES, SHARED_FIXTURES

needs_real = pytest.mark.skipif(not SHARED_FIXTURES.is_dir(), reason=f"real samples not found at {SHARED_FIXTURES}")
TYPED = ["account_id", "booked_at", "amount", "currency", "balance_after", "description", "flow_tag"]
TEXT = ["booked_at", "amount", "currency", "balance_after", "flow_tag"]


def D(s: str) -> Decimal:
    return Decimal(s)


def ingested(path: Path):
    """(source_files row, typed good rows, quarantined rows) through the real ingest."""
    (outcome,) = read_files([path], known_file_hashes=set(), batch_id="b1", latest_booking=date(2026, 11, 28))
    assert outcome.parsed is not None
    return outcome.file_row, outcome.parsed.good, outcome.parsed.bad


def text_rows(path: Path) -> tuple[str, pl.DataFrame]:
    """(the detected profile's name, the rows as the reader gives them)."""
    profile = detect_profile(path, load_profiles())
    assert profile is not None
    return profile.name, read_profiled(path, profile)


# ---------------------------------------------------------------------------------------------------
# The project's synthetic fixtures: typed rows after the shared parser

SYNTHETIC = {
    "bocom_debit": (
        "6222600000005678_bocom_debit.csv",
        [  # 借 Dr / 贷 Cr by prefix; date + time columns; a quoted amount with a thousands separator
            ("6222600000005678", datetime(2025, 3, 25, 18, 0), D("-1000.00"), "CNY", D("6665.70"), "转账 | 还钱", None),
            ("6222600000005678", datetime(2025, 3, 21), D("1.20"), "CNY", D("7665.70"), "存款利息", None),
            (
                "6222600000005678",
                datetime(2025, 3, 5, 20, 10),
                D("-2000.00"),
                "CNY",
                D("7664.50"),
                "网上支付 | 网上支付 基金理财产品申购 订单编号20250305000000000000000000001",
                None,
            ),
            (
                "6222600000005678",
                datetime(2025, 3, 2, 12, 30, 15),
                D("-35.50"),
                "CNY",
                D("9664.50"),
                "异地跨行消费",
                None,
            ),
            (
                "6222600000005678",
                datetime(2025, 3, 1, 9, 0),
                D("8500.00"),
                "CNY",
                D("9700.00"),
                "代发工资 | 工资",
                None,
            ),
        ],
    ),
    "cgb_credit": (
        "6225680000001111_cgb_credit.csv",
        [  # purchases and instalments written positive are money out; refunds and repayments money in
            ("6225680000001111", datetime(2025, 2, 10), D("-88.80"), "CNY", None, "（消费）示例超市", None),
            ("6225680000001111", datetime(2025, 2, 8), D("20.00"), "CNY", None, "（退款）示例网店", None),
            (
                "6225680000001111",
                datetime(2025, 2, 5),
                D("-300.00"),
                "CNY",
                None,
                "（分期）银联分期00000000001/03/12期",
                None,
            ),
            (
                "6225680000001111",
                datetime(2025, 1, 25),
                D("500.00"),
                "CNY",
                None,
                "（还款）云闪付 银联入账-王示例",
                None,
            ),
            ("6225680000001111", datetime(2025, 1, 20), D("-1250.00"), "CNY", None, "（消费）示例航空", None),
            # bought in yen, posted in yuan: the card account moved 入账金额 in 入账货币
            ("6225680000001111", datetime(2025, 1, 15), D("-72.30"), "CNY", None, "（消费）EXAMPLE STORE TOKYO", None),
        ],
    ),
    "cmb_credit": (
        "4392260000002222_cmb_credit.csv",
        [  # a January 2025 statement: 12/28 and 12/30 are of 2024; an empty 交易日 takes the 记账日
            (
                "4392260000002222",
                datetime(2024, 12, 28),
                D("500.00"),
                "CNY",
                None,
                "掌上生活还款 | 卡号末四位 2222",
                None,
            ),
            ("4392260000002222", datetime(2024, 12, 30), D("-45.00"), "CNY", None, "示例书店 | 卡号末四位 2222", None),
            ("4392260000002222", datetime(2025, 1, 2), D("-128.50"), "CNY", None, "示例餐厅 | 卡号末四位 2222", None),
            ("4392260000002222", datetime(2025, 1, 4), D("30.00"), "CNY", None, "手机银行饭票 | 卡号末四位 2222", None),
            ("4392260000002222", datetime(2025, 1, 8), D("-2399.00"), "CNY", None, "示例电器 | 卡号末四位 2222", None),
        ],
    ),
    "jd": (
        "jd.csv",
        [  # 199.00(已退款59.00) stayed spent at 140.00; the refund and a fully refunded order are neutral
            (
                "jd_demo0001",
                datetime(2025, 1, 20, 10, 0),
                D("-12.00"),
                "CNY",
                None,
                "京东外部商户 | 收发快递 | 交易成功",
                None,
            ),
            (
                "jd_demo0001",
                datetime(2025, 1, 18, 9, 30),
                D("59.00"),
                "CNY",
                None,
                "退款-示例降噪耳机 | 网购 | 退款成功",
                "不计收支",
            ),
            (
                "jd_demo0001",
                datetime(2025, 1, 16, 21, 15, 42),
                D("-140.00"),
                "CNY",
                None,
                "示例降噪耳机 等多件 | 数码 | 交易成功",
                None,
            ),
            ("jd_demo0001", datetime(2025, 1, 12, 8, 0), D("8.00"), "CNY", None, "示例返现 | 其他 | 交易成功", None),
            (
                "jd_demo0001",
                datetime(2025, 1, 10, 14, 0),
                D("89.90"),
                "CNY",
                None,
                "示例保温杯 | 日用百货 | 交易成功",
                "不计收支",
            ),
            (
                "jd_demo0001",
                datetime(2025, 1, 5, 19, 45),
                D("-45.60"),
                "CNY",
                None,
                "示例大米 5kg | 食品酒饮 | 交易成功",
                None,
            ),
        ],
    ),
    "td": (
        "td_1234567.csv",
        [  # no header line; MM/DD/YYYY; Debit / Credit by position; CAD
            ("1234567", datetime(2024, 3, 1), D("-45.20"), "CAD", D("954.80"), "GROCERY STORE #12 _F", None),
            ("1234567", datetime(2024, 3, 1), D("-4.75"), "CAD", D("950.05"), "COFFEE SHOP _V", None),
            ("1234567", datetime(2024, 3, 4), D("2100.00"), "CAD", D("3050.05"), "PAYROLL DEP ACME", None),
            ("1234567", datetime(2024, 3, 5), D("-300.00"), "CAD", D("2750.05"), "SEND E-TFR ***K9p", None),
            ("1234567", datetime(2024, 3, 15), D("-3.95"), "CAD", D("2746.10"), "MONTHLY FEE", None),
        ],
    ),
}


@pytest.mark.parametrize("profile", sorted(SYNTHETIC))
def test_synthetic_layout_loads_every_row_with_its_sign_date_and_currency(profile):
    file_name, expected = SYNTHETIC[profile]
    file_row, good, bad = ingested(FIXTURES / file_name)
    assert (file_row["profile"], file_row["status"], file_row["rows_read"], file_row["rows_rejected"]) == (
        profile,
        "loaded",
        len(expected),
        0,
    )
    assert bad.is_empty()
    assert good.sort("source_row").select(TYPED).rows() == expected
    assert good["source_row"].sort().to_list() == list(range(1, len(expected) + 1))


def test_synthetic_jd_totals_are_the_exports_own():
    """支出：3笔 197.60元, 收入：1笔 8.00元 (the preamble): neutral rows count in neither."""
    _, good, _ = ingested(FIXTURES / "jd.csv")
    counted = good.filter(pl.col("flow_tag").is_null())
    assert counted.filter(pl.col("amount") < 0)["amount"].sum() == D("-197.60")
    assert counted.filter(pl.col("amount") > 0)["amount"].sum() == D("8.00")


def test_td_lines_are_physical_lines_from_the_first():
    """Without a header line the first data row is line 1; the blank lines at the end are no rows."""
    name, df = text_rows(FIXTURES / "td_1234567.csv")
    assert name == "td"
    assert (df["source_row"].to_list(), df["source_line"].to_list()) == ([1, 2, 3, 4, 5], [1, 2, 3, 4, 5])
    assert df["raw"][0] == "03/01/2024,GROCERY STORE #12  _F,45.20,,954.80"


# ---------------------------------------------------------------------------------------------------
# The real samples: the rows as read (text), every row accounted for

REAL = {
    "bocom_debit": (
        "bocom_debit",
        [
            ("2025-01-01 00:00:00", "1.23", "CNY", "1334.63", None),  # 贷 Cr
            ("2024-02-02 13:15:12", "-3.21", "CNY", "2334.62", None),  # 借 Dr
            ("2024-03-03 09:20:43", "0.02", "CNY", "45.67", None),
            ("2024-04-04 11:46:44", "10.00", "CNY", "184.69", None),
            ("2024-05-05 12:48:15", "-10.00", "CNY", "99.66", None),
            ("2024-06-06 11:30:54", "-100.79", "CNY", "3154.93", None),
        ],
    ),
    "cgb_credit": (
        "cgb_credit",
        [
            ("2025-01-05", "-15.90", "CNY", None, None),  # （消费）
            ("2025-01-04", "97.20", "CNY", None, None),  # （退款）
            ("2025-01-03", "-387.42", "CNY", None, None),  # （分期）
            ("2024-12-25", "1130.68", "CNY", None, None),  # （还款）
        ],
    ),
    "cmb_credit": (
        "cmb_credit",
        [
            ("2023-12-29", "1.23", "CNY", None, None),  # empty 交易日: 记账日 12/29 of the year before 2024年01月
            ("2023-12-30", "345.67", "CNY", None, None),
            ("2024-01-01", "30.00", "CNY", None, None),
            ("2024-01-02", "-56.78", "CNY", None, None),
            ("2024-01-03", "3.90", "CNY", None, None),
            ("2024-01-05", "-8000.00", "CNY", None, None),  # "8,000.00"
        ],
    ),
    "jd": (
        "jd_55370d18d5bb4",
        [
            ("2024-12-30 17:16:02", "-10.20", "CNY", None, None),
            ("2024-12-30 10:40:22", "-60.90", "CNY", None, None),
            ("2024-12-28 13:28:32", "89.84", "CNY", None, "不计收支"),
            ("2024-12-28 13:27:56", "-41.93", "CNY", None, None),  # 131.77(已退款89.84)
            ("2024-12-26 22:36:40", "-9.80", "CNY", None, None),
            ("2024-12-26 22:36:09", "0.00", "CNY", None, "不计收支"),
            ("2024-12-26 22:35:50", "0.00", "CNY", None, "不计收支"),
            ("2024-12-26 18:03:01", "-19.72", "CNY", None, None),
            ("2024-12-24 23:19:44", "-119.66", "CNY", None, None),
            ("2024-12-24 22:43:31", "70.48", "CNY", None, "不计收支"),
            ("2024-12-24 22:43:08", "-377.84", "CNY", None, None),  # 448.32(已退款70.48)
            ("2024-12-24 22:34:05", "70.48", "CNY", None, "不计收支"),
            ("2024-12-24 22:33:54", "397.84", "CNY", None, "不计收支"),
            ("2024-12-24 22:33:07", "468.32", "CNY", None, "不计收支"),  # 468.32(已全额退款)
            ("2024-12-21 21:02:03", "-68.19", "CNY", None, None),
            ("2024-12-21 13:40:59", "35.61", "CNY", None, "不计收支"),
            ("2024-12-19 18:10:42", "-13.00", "CNY", None, None),
            ("2024-12-18 21:32:13", "-14.99", "CNY", None, None),
            ("2024-12-16 21:42:33", "-40.00", "CNY", None, None),
            ("2024-12-14 20:59:42", "-10.85", "CNY", None, None),
            ("2024-12-11 10:38:58", "235.50", "CNY", None, "不计收支"),
            ("2024-12-10 23:41:30", "233.45", "CNY", None, "不计收支"),
            ("2024-12-10 23:40:50", "-183.42", "CNY", None, None),  # 416.87(已退款233.45)
            ("2024-12-10 18:37:24", "-20.61", "CNY", None, None),
            ("2024-12-09 23:22:23", "-657.21", "CNY", None, None),
            ("2024-12-05 22:49:55", "-0.11", "CNY", None, None),  # 235.61(已退款235.50)
        ],
    ),
    "td": (
        "td",
        [
            ("2023-05-01", "-1.96", "CAD", "13.04", None),
            ("2023-05-01", "-12.10", "CAD", "15.00", None),
            ("2023-05-01", "-10.00", "CAD", "27.10", None),
            ("2023-05-01", "0.01", "CAD", "37.10", None),  # the Credit column
            ("2023-05-01", "-35.00", "CAD", "37.11", None),
            ("2023-05-01", "-15.68", "CAD", "72.11", None),
            ("2023-05-01", "-5.30", "CAD", "87.79", None),
            ("2023-05-02", "-239.13", "CAD", "93.09", None),
            ("2023-05-03", "332.22", "CAD", "332.22", None),
        ],
    ),
}


@needs_real
@pytest.mark.parametrize("profile", sorted(REAL))
def test_real_layout_rows_as_read(profile):
    account, expected = REAL[profile]
    name, df = text_rows(SHARED_FIXTURES / f"{profile}.csv")
    assert name == profile
    assert df.select(TEXT).rows() == expected
    assert set(df["account_id"]) == {account}
    assert df["reject_code"].null_count() == df.height


@needs_real
@pytest.mark.parametrize("profile", sorted(REAL))
def test_real_layout_loads_every_row(profile):
    file_row, good, bad = ingested(SHARED_FIXTURES / f"{profile}.csv")
    assert (file_row["profile"], file_row["status"], file_row["rows_ok"], bad.height) == (
        profile,
        "loaded",
        len(REAL[profile][1]),
        0,
    )
    assert good.sort("source_row")["amount"].cast(pl.String).to_list() == [r[1] for r in REAL[profile][1]]


@needs_real
def test_real_jd_totals_are_the_exports_own():
    """The preamble says 支出：16笔(含4笔部分退款)，1648.43元 and 收入：0笔: partial refunds are netted, the refund
    rows and fully refunded orders (不计收支) count in neither."""
    _, good, _ = ingested(SHARED_FIXTURES / "jd.csv")
    counted = good.filter(pl.col("flow_tag").is_null())
    assert (counted.height, counted["amount"].sum()) == (16, D("-1648.43"))
    assert good.filter(pl.col("flow_tag") == "不计收支").height == 10
