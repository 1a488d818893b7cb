"""Lender registry and classification: literal rows with exact expected lender, category and role."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from liushui.vocabularies import LENDER_CATEGORIES
from transforms.lenders import (
    LenderRegistryError,
    classify_lenders,
    load_lender_registry,
)

SCHEMA = {
    "txn_id": pl.String,
    "amount": pl.Decimal(18, 2),
    "counterparty_name": pl.String,
    "description": pl.String,
}


SHIPPED = load_lender_registry()


@pytest.fixture(scope="module")
def registry() -> pl.DataFrame:
    return SHIPPED


def classify(rows: list[tuple[str | None, str | None, str]], registry: pl.DataFrame) -> list[tuple]:
    """(counterparty, memo, amount) rows -> (lender_id, lender_category, loan_role) per row."""
    frame = pl.DataFrame(
        {
            "txn_id": [f"t{i}" for i in range(len(rows))],
            "amount": [Decimal(r[2]) for r in rows],
            "counterparty_name": [r[0] for r in rows],
            "description": [r[1] for r in rows],
        },
        schema=SCHEMA,
    )
    out = classify_lenders(frame.lazy(), registry).collect()
    return list(out.select("lender_id", "lender_category", "loan_role").iter_rows())


# ---- the sample-data generator's statement lines ------------------------------------------------------
GENERATOR_LINES = [
    # counterparty, memo, amount, lender_id, category, role
    ("重庆蚂蚁消费金融有限公司", "借呗放款", "5000.00", "ant_jiebei", "consumer_finance", "disbursement"),
    ("重庆蚂蚁消费金融有限公司", "借呗还款", "-450.00", "ant_jiebei", "consumer_finance", "repayment"),
    ("支付宝（中国）网络技术有限公司", "花呗还款", "-812.30", "ant_huabei", "bnpl", "repayment"),
    ("深圳前海微众银行股份有限公司", "微粒贷放款", "8000.00", "webank_weilidai", "internet_bank", "disbursement"),
    ("深圳前海微众银行股份有限公司", "微粒贷还款", "-700.00", "webank_weilidai", "internet_bank", "repayment"),
    ("京东科技信息技术有限公司", "京东金条借款", "3000.00", "jd_jintiao", "microloan", "disbursement"),
    ("京东科技信息技术有限公司", "京东金条还款", "-280.00", "jd_jintiao", "microloan", "repayment"),
    ("度小满科技（北京）有限公司", "有钱花放款", "6000.00", "duxiaoman_youqianhua", "microloan", "disbursement"),
    ("度小满科技（北京）有限公司", "有钱花还款", "-540.00", "duxiaoman_youqianhua", "microloan", "repayment"),
    ("福州三六零网络小额贷款有限公司", "360借条放款", "4000.00", "qifu_360jietiao", "microloan", "disbursement"),
    ("上海三六零融资担保有限公司", "360借条还款", "-366.00", "qifu_360jietiao", "microloan", "repayment"),
    ("招联消费金融股份有限公司", "招联好期贷放款", "10000.00", "zhaolian_consumer", "consumer_finance", "disbursement"),
    ("招联消费金融股份有限公司", "招联还款", "-910.00", "zhaolian_consumer", "consumer_finance", "repayment"),
    ("马上消费金融股份有限公司", "安逸花放款", "2000.00", "mashang_consumer", "consumer_finance", "disbursement"),
    ("马上消费金融股份有限公司", "安逸花还款", "-190.00", "mashang_consumer", "consumer_finance", "repayment"),
    ("浙江网商银行股份有限公司", "网商贷放款", "20000.00", "mybank_wangshangdai", "internet_bank", "disbursement"),
    ("浙江网商银行股份有限公司", "网商贷还款", "-1800.00", "mybank_wangshangdai", "internet_bank", "repayment"),
    ("重庆美团三快小额贷款有限公司", "美团借钱放款", "1500.00", "meituan_jieqian", "microloan", "disbursement"),
    ("重庆美团三快小额贷款有限公司", "美团借钱还款", "-140.00", "meituan_jieqian", "microloan", "repayment"),
    ("深圳市分期乐网络科技有限公司", "分期乐放款", "2500.00", "lexin_fenqile", "microloan", "disbursement"),
    ("深圳市分期乐网络科技有限公司", "分期乐还款", "-230.00", "lexin_fenqile", "microloan", "repayment"),
    # penalties: the counterparty is the lender, the memo names no product
    ("招联消费金融股份有限公司", "逾期罚息", "-12.40", "zhaolian_consumer", "consumer_finance", "penalty"),
    ("深圳前海微众银行股份有限公司", "滞纳金", "-50.00", "webank_weilidai", "internet_bank", "penalty"),
    ("上海三六零融资担保有限公司", "违约金", "-80.00", "qifu_360jietiao", "microloan", "penalty"),
    ("京东科技信息技术有限公司", "逾期罚息", "-9.00", "jd_jintiao", "microloan", "penalty"),
    # the generator's failed instalment: money comes back with 冲正 扣款失败 余额不足
    ("重庆蚂蚁消费金融有限公司", "冲正 扣款失败 余额不足", "450.00", "ant_jiebei", "consumer_finance", "failed_debit"),
]


@pytest.mark.parametrize(("cp", "memo", "amount", "lender_id", "category", "role"), GENERATOR_LINES)
def test_generator_statement_lines_get_their_lender_and_role(registry, cp, memo, amount, lender_id, category, role):
    assert classify([(cp, memo, amount)], registry) == [(lender_id, category, role)]


# ---- everyday lines that must not be loans ------------------------------------------------------------
NOT_LOANS = [
    ("北京三快在线科技有限公司", "美团外卖", "-35.50"),
    ("美团", "美团外卖", "-28.00"),
    ("北京京东世纪贸易有限公司", "京东商城购物", "-299.00"),
    ("京东商城", "京东商城 订单 880123", "-59.90"),
    ("支付宝（中国）网络技术有限公司", "支付宝转账", "-200.00"),
    ("支付宝(中国)网络技术有限公司", "支付宝充值", "-100.00"),
    ("财付通支付科技有限公司", "微信红包", "88.00"),
    ("深圳前海微众银行股份有限公司", "微众银行活期+转入", "1000.00"),
    ("张伟", "借你的钱", "-2000.00"),
    ("李娜", "还钱", "2000.00"),
    ("王芳", "还你上次借的", "-500.00"),
    ("工商银行信用卡中心", "信用卡还款", "-3200.00"),
    ("上海华信科技有限公司", "工资", "15000.00"),
    (None, None, "0.00"),
]


@pytest.mark.parametrize(("cp", "memo", "amount"), NOT_LOANS)
def test_everyday_spending_and_private_transfers_are_not_loans(registry, cp, memo, amount):
    assert classify([(cp, memo, amount)], registry) == [(None, None, None)]


# ---- edges ----------------------------------------------------------------------------------------------
def test_penalty_without_a_known_lender_has_a_role_but_no_lender(registry):
    assert classify([("某某物业服务有限公司", "物业费滞纳金", "-15.00"), (None, "逾期罚息", "-3.20")], registry) == [
        (None, None, "penalty"),
        (None, None, "penalty"),
    ]


def test_a_refunded_penalty_is_not_a_penalty_nor_a_disbursement(registry):
    assert classify([("招联消费金融股份有限公司", "罚息减免退回", "12.40")], registry) == [
        ("zhaolian_consumer", "consumer_finance", None)
    ]


def test_reversal_of_a_loan_row(registry):
    assert classify([("重庆蚂蚁消费金融有限公司", "借呗还款冲正", "450.00")], registry) == [
        ("ant_jiebei", "consumer_finance", "reversal")
    ]


def test_reversal_without_loan_context_is_not_a_loan_row(registry):
    assert classify([("某某超市", "消费冲正", "35.00")], registry) == [(None, None, None)]


def test_failed_debit_is_recognised_without_a_lender(registry):
    assert classify([("国网上海市电力公司", "代扣失败 余额不足", "0.00")], registry) == [(None, None, "failed_debit")]


def test_english_loan_lines(registry):
    assert classify(
        [
            (None, "LOAN REPAYMENT HOME CREDIT", "-1200.00"),
            ("HOME CREDIT CONSUMER FINANCE CO", "Loan disbursement", "20000.00"),
            ("ABC FINANCE LIMITED", "EMI 03/12", "-850.00"),
            (None, "LOAN REPAYMENT", "-500.00"),
            ("KLARNA BANK AB", "Klarna instalment", "-45.00"),
            ("KLARNA BANK AB", "Klarna refund", "45.00"),
            (None, "LATE PAYMENT FEE", "-25.00"),
            (None, "DD RETURNED INSUFFICIENT FUNDS", "0.00"),
            (None, "LOANSHARK MOVIE TICKETS", "-12.00"),
        ],
        registry,
    ) == [
        ("home_credit", "consumer_finance", "repayment"),
        ("home_credit", "consumer_finance", "disbursement"),
        ("finance_company_generic_en", "consumer_finance", "repayment"),
        ("loan_generic_en", "bank_loan", "repayment"),
        ("klarna", "bnpl", "repayment"),
        (None, None, None),
        (None, None, "penalty"),
        (None, None, "failed_debit"),
        (None, None, None),
    ]


def test_full_width_and_half_width_brackets_and_letters_are_the_same_name(registry):
    assert classify(
        [
            ("度小满科技（北京）有限公司", "还款", "-10.00"),
            ("度小满科技(北京)有限公司", "还款", "-10.00"),
            ("ＨＯＭＥ　ＣＲＥＤＩＴ", "还款", "-10.00"),
        ],
        registry,
    ) == [("duxiaoman_youqianhua", "microloan", "repayment")] * 2 + [("home_credit", "consumer_finance", "repayment")]


def test_payment_channel_is_a_lender_only_with_a_product_memo(registry):
    assert classify(
        [
            ("支付宝（中国）网络技术有限公司", "借呗还款", "-100.00"),
            ("支付宝（中国）网络技术有限公司", "还款", "-100.00"),
            ("财付通支付科技有限公司", "分付还款", "-100.00"),
            ("财付通支付科技有限公司", "零钱提现", "100.00"),
        ],
        registry,
    ) == [
        ("ant_jiebei", "consumer_finance", "repayment"),
        (None, None, None),
        ("wechat_fenfu", "bnpl", "repayment"),
        (None, None, None),
    ]


def test_product_memo_beats_shared_company_name_and_refunds_are_not_credit(registry):
    # 花呗 and 借呗 share 重庆蚂蚁消费金融; a 花呗 refund is a merchant refund and must not fall through
    # to 借呗 or to the generic 消费金融 bucket.
    assert classify(
        [
            ("重庆蚂蚁消费金融有限公司", "花呗还款", "-300.00"),
            ("重庆蚂蚁消费金融有限公司", "花呗退款", "59.00"),
            ("北京京东世纪贸易有限公司", "白条退款", "59.00"),
        ],
        registry,
    ) == [("ant_huabei", "bnpl", "repayment"), (None, None, None), (None, None, None)]


def test_bank_loan_memos_without_a_named_lender(registry):
    assert classify(
        [
            (None, "个贷还款", "-3500.00"),
            ("中国建设银行", "批量扣款 房贷还贷", "-4200.00"),
            (None, "贷款发放", "100000.00"),
            (None, "建行快贷放款", "30000.00"),
            (None, "招行闪电贷还款", "-2100.00"),
        ],
        registry,
    ) == [
        ("bank_loan_generic", "bank_loan", "repayment"),
        ("bank_loan_generic", "bank_loan", "repayment"),
        ("bank_loan_generic", "bank_loan", "disbursement"),
        ("ccb_kuaidai", "bank_loan", "disbursement"),
        ("cmb_shandiandai", "bank_loan", "repayment"),
    ]


def test_memo_that_contradicts_the_sign_gets_no_role(registry):
    # money in whose memo only speaks of repaying is a returned overpayment, not new credit
    assert classify([("招联消费金融股份有限公司", "还款溢缴款退回", "20.00")], registry) == [
        ("zhaolian_consumer", "consumer_finance", None)
    ]


def test_all_null_text_columns_are_accepted(registry):
    frame = pl.DataFrame(
        {"txn_id": ["a"], "amount": [Decimal("1.00")], "counterparty_name": [None], "description": [None]},
        schema={"txn_id": pl.String, "amount": pl.Decimal(18, 2), "counterparty_name": pl.Null, "description": pl.Null},
    )
    out = classify_lenders(frame.lazy(), registry).collect()
    assert out.select("lender_id", "lender_category", "loan_role").row(0) == (None, None, None)
    assert out.schema["lender_id"] == pl.String and out.schema["loan_role"] == pl.String


def test_missing_and_clashing_columns_are_rejected(registry):
    frame = pl.DataFrame({"txn_id": ["a"], "amount": [Decimal("1.00")], "description": ["x"]})
    with pytest.raises(ValueError, match=r"lack required columns \['counterparty_name'\]"):
        classify_lenders(frame.lazy(), registry)
    frame = frame.with_columns(counterparty_name=pl.lit("y"), lender_id=pl.lit(None, pl.String))
    with pytest.raises(ValueError, match=r"already have columns \['lender_id'\]"):
        classify_lenders(frame.lazy(), registry)


# ---- the shipped registry ---------------------------------------------------------------------------------
def test_shipped_registry_is_large_unique_and_categorised(registry):
    assert registry.height >= 50
    assert registry["lender_id"].is_unique().all()
    assert set(registry["category"]) <= set(LENDER_CATEGORIES)
    assert registry["priority"].to_list() == list(range(registry.height))
    # generic buckets come after every named lender, so a named lender always wins
    generic = registry.filter(pl.col("is_generic"))["priority"]
    named = registry.filter(~pl.col("is_generic"))["priority"]
    assert generic.min() > named.max()


# ---- registry validation and user entries -----------------------------------------------------------------
ROLE_KEYWORDS = """\
version: 1
role_keywords:
  disbursement: ['放款']
  repayment: ['还款']
  penalty: ['罚息']
  failed_debit: ['扣款失败']
  reversal: ['冲正']
lenders:
"""


def write_registry(tmp_path: Path, lenders: str) -> Path:
    path = tmp_path / "lenders.yaml"
    path.write_text(ROLE_KEYWORDS + lenders, encoding="utf-8")
    return path


def test_a_user_added_entry_is_matched(tmp_path):
    path = write_registry(
        tmp_path,
        """\
  - lender_id: acme_credit
    names: {zh: 阿克米小贷, en: Acme Credit}
    institution: acme
    category: microloan
    counterparty_patterns: ['阿克米（深圳）小额贷款']
  - lender_id: village_lender
    names: {zh: 王老板, en: Boss Wang}
    institution: village_lender
    category: private_lending
    when_both:
      - counterparty: ['^王大富$']
        description: ['借款|还款']
""",
    )
    registry = load_lender_registry(path)
    assert classify(
        [
            ("阿克米(深圳)小额贷款有限公司", "放款", "1000.00"),
            ("王大富", "还款", "-500.00"),
            ("王大富", "红包", "-500.00"),
        ],
        registry,
    ) == [
        ("acme_credit", "microloan", "disbursement"),
        ("village_lender", "private_lending", "repayment"),
        (None, None, None),
    ]


def test_first_entry_in_file_order_wins(tmp_path):
    entry = """\
  - lender_id: {id}
    names: {{zh: x, en: x}}
    institution: {id}
    category: microloan
    counterparty_patterns: ['小额贷款']
"""
    path = write_registry(tmp_path, entry.format(id="first") + entry.format(id="second"))
    assert classify([("某某小额贷款有限公司", "还款", "-1.00")], load_lender_registry(path)) == [
        ("first", "microloan", "repayment")
    ]


def test_entry_kind_hints_extend_the_role_keywords(tmp_path):
    path = write_registry(
        tmp_path,
        """\
  - lender_id: acme_credit
    names: {zh: 阿克米小贷, en: Acme Credit}
    institution: acme
    category: microloan
    counterparty_patterns: ['阿克米']
    kind_hints:
      penalty: ['服务费补缴']
""",
    )
    assert classify([("阿克米小额贷款", "服务费补缴", "-5.00")], load_lender_registry(path)) == [
        ("acme_credit", "microloan", "penalty")
    ]


@pytest.mark.parametrize(
    ("lenders", "message"),
    [
        (
            "  - {lender_id: ok_one, names: {zh: a, en: a}, institution: a, category: microloan,"
            " counterparty_patterns: ['a']}\n"
            "  - {lender_id: broken, names: {zh: b, en: b}, institution: b, category: microloan,"
            " description_patterns: ['ok', '借呗(还款']}\n",
            r"lender entry #2 \(broken\): description_patterns\.1: not a valid regular expression '借呗\(还款'",
        ),
        (
            "  - {lender_id: greedy, names: {zh: a, en: a}, institution: a, category: microloan,"
            " counterparty_patterns: ['x|']}\n",
            r"lender entry #1 \(greedy\): counterparty_patterns\.0: pattern 'x\|' matches the empty string",
        ),
        (
            "  - {lender_id: what, names: {zh: a, en: a}, institution: a, category: loan_shark,"
            " counterparty_patterns: ['a']}\n",
            r"lender entry #1 \(what\): category: Input should be",
        ),
        (
            "  - {lender_id: Bad-Id, names: {zh: a, en: a}, institution: a, category: microloan,"
            " counterparty_patterns: ['a']}\n",
            r"lender entry #1 \(Bad-Id\): lender_id: String should match pattern",
        ),
        (
            "  - {lender_id: nothing, names: {zh: a, en: a}, institution: a, category: microloan}\n",
            r"lender entry #1 \(nothing\): \(entry\): needs at least one of counterparty_patterns",
        ),
        (
            "  - {lender_id: typo, names: {zh: a, en: a}, institution: a, category: microloan,"
            " counterparty_pattern: ['a']}\n",
            r"lender entry #1 \(typo\): .*counterparty_pattern: Extra inputs are not permitted",
        ),
        (
            "  - {lender_id: twice, names: {zh: a, en: a}, institution: a, category: microloan,"
            " counterparty_patterns: ['a']}\n"
            "  - {lender_id: twice, names: {zh: b, en: b}, institution: b, category: microloan,"
            " counterparty_patterns: ['b']}\n",
            r"lender entry #2 \(twice\): duplicate lender_id, already used by entry #1",
        ),
    ],
    ids=["bad_regex", "matches_empty", "unknown_category", "bad_id", "no_matcher", "unknown_key", "duplicate"],
)
def test_invalid_registry_entries_are_named_in_the_error(tmp_path, lenders, message):
    with pytest.raises(LenderRegistryError, match=message):
        load_lender_registry(write_registry(tmp_path, lenders))


def test_unreadable_registry_files_have_clear_errors(tmp_path):
    with pytest.raises(LenderRegistryError, match=r"cannot read the lender registry"):
        load_lender_registry(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("lenders: [unclosed", encoding="utf-8")
    with pytest.raises(LenderRegistryError, match=r"bad\.yaml: not valid YAML"):
        load_lender_registry(bad)
    bad.write_text("version: 1\nlenders: []\n", encoding="utf-8")
    with pytest.raises(LenderRegistryError, match=r"role_keywords: Field required"):
        load_lender_registry(bad)


# ---- invariant ------------------------------------------------------------------------------------------
TEXT = st.one_of(
    st.none(),
    st.text(
        alphabet=st.sampled_from(
            list("借呗花还款放逾期罚息冲正失败余额不足美团京东金条（）() LOANhomecredit张三银行小额贷")
        ),
        max_size=12,
    ),
    st.sampled_from([r[0] for r in GENERATOR_LINES] + [r[1] for r in GENERATOR_LINES]),
)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(TEXT, TEXT, st.decimals(min_value=-(10**6), max_value=10**6, places=2, allow_nan=False)),
        max_size=30,
    )
)
def test_classification_keeps_every_row_and_every_input_value(rows):
    frame = pl.DataFrame(
        {
            "txn_id": [f"t{i}" for i in range(len(rows))],
            "amount": [r[2] for r in rows],
            "counterparty_name": [r[0] for r in rows],
            "description": [r[1] for r in rows],
        },
        schema=SCHEMA,
    )
    out = classify_lenders(frame.lazy(), SHIPPED).collect()
    assert out.select(frame.columns).equals(frame)
    assert out.columns == [*frame.columns, "lender_id", "lender_category", "loan_role"]
    assert set(out["loan_role"].drop_nulls()) <= {"disbursement", "repayment", "penalty", "failed_debit", "reversal"}
    # a category is there exactly when a lender is
    assert (out["lender_id"].is_null() == out["lender_category"].is_null()).all()
