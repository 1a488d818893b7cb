"""Commingling: business money through a personal account (公私混用).

`business_rows`: the transactions of personal accounts that are business money — payments in from
companies and payments out to suppliers. `commingling_month_features`: one row per personal account x
currency x month of activity with the business counts, sums and the business share of inflow.
`commingling_flags`: one COMMINGLING flag per personal account month (main currency) that receives
business money often, for a large share of its inflow, and also pays suppliers.

Which accounts: those whose `account_type` is not `business` — personal, or unknown (an account missing
from the reference, or without a type, is treated as personal: the rule exists for exactly those).

A row is business money when ALL of these hold:
- the counterparty name looks like a company (`COMPANY_PATTERN`);
- it is not a salary, a loan / lender / penalty row, a refund / reversal, nor an own or related-party
  transfer (those have their own rules and are not trade);
- inflow: the memo names trade (`BUSINESS_IN_MEMO`: 货款, 结算, 回款, 合同 ...), or the amount is at
  least `BUSINESS_IN_MIN_AMOUNT` and the counterparty is not a consumer payment platform
  (`PLATFORM_PATTERN`: 支付宝, 财付通, 美团, 京东 ... — cash-back and small platform credits are not
  trade) and the memo is not a personal payment (`PERSONAL_IN_MEMO`: 报销, 理赔, 利息 ...);
- outflow: the memo names a purchase of goods (`BUSINESS_OUT_MEMO`: 货款, 采购, 进货 ...). A bare
  "付款" is not enough: every card and platform purchase says 付款, and buying from a company
  (a shop, a restaurant, a 便利店) is consumption, not supplying a business.
"""

from __future__ import annotations

import polars as pl

from liushui.config import ComminglingRules
from liushui.contracts import MONEY
from liushui.vocabularies import TxnClass
from transforms.classify import txn_class_is
from transforms.flag_rows import Rule, evidence_in_months, finish_flags, fmt_num, fmt_pct, month_period, severity
from transforms.months import main_currency
from transforms.patterns import ascii_word_boundaries

COMPANY_PATTERN = ascii_word_boundaries(
    r"(?i)有限公司|有限责任公司|股份|集团|商贸|贸易|公司|厂|店|商行|经营部|工作室|合作社|批发部|门市部|"
    r"\b(?:co|ltd|limited|llc|inc|corp|corporation|company|gmbh|plc)\b"
)
"""A company name. The Latin suffixes need a word boundary, an ASCII one (`transforms.patterns`): a Chinese
character next to the suffix counts as a boundary ("腾讯Ltd" is a company), and the regex engine keeps its fast
automaton (a Unicode `\b` made this one pattern 20x slower than every other pattern of the run)."""
PLATFORM_PATTERN = (
    r"(?i)支付宝|财付通|微信|美团|京东|拼多多|滴滴|淘宝|天猫|饿了么|抖音|快手|银联|云闪付|拉卡拉|快钱|"
    r"携程|alipay|tenpay|wechat"
)
BUSINESS_IN_MEMO = r"(?i)货款|采购|结算|回款|发票|合同|经营|销售|订单|工程款|invoice|payment for goods"
BUSINESS_OUT_MEMO = r"(?i)货款|采购|进货|订货|备货|供货|材料款|原料|加工费|批发|结算款|purchase|supplier"
PERSONAL_IN_MEMO = r"(?i)报销|理赔|赔款|保险|利息|分红|公积金|社保|养老|补贴|退款|冲正"
BUSINESS_IN_MIN_AMOUNT = 1000

NOT_TRADE_CLASSES: tuple[TxnClass, ...] = (
    "salary",
    "loan_disbursement",
    "loan_repayment",
    "penalty_fee",
    "failed_debit",
    "refund",
    "reversal",
    "own_transfer_in",
    "own_transfer_out",
    "related_transfer_in",
    "related_transfer_out",
)

_KEYS = ["account_id", "currency", "month_on"]


def _personal_accounts(transactions: pl.LazyFrame, accounts: pl.LazyFrame) -> pl.LazyFrame:
    """Transactions of accounts whose type is not `business` (unknown counts as personal)."""
    types = accounts.select(
        "account_id", _is_business=pl.col("account_type").str.strip_chars().str.to_lowercase() == "business"
    ).unique("account_id", keep="first")
    return (
        transactions.join(types, on="account_id", how="left")
        .filter(~pl.col("_is_business").fill_null(False))
        .drop("_is_business")
    )


def _business_direction() -> pl.Expr:
    """`in` / `out` for business rows, null otherwise (see the module docstring)."""
    name = pl.col("counterparty_name").fill_null("")
    memo = pl.col("description").fill_null("")
    eligible = name.str.contains(COMPANY_PATTERN) & pl.col("lender_id").is_null() & ~txn_class_is(*NOT_TRADE_CLASSES)
    business_in = (pl.col("amount") > 0) & (
        memo.str.contains(BUSINESS_IN_MEMO)
        | (
            (pl.col("amount") >= BUSINESS_IN_MIN_AMOUNT)
            & ~name.str.contains(PLATFORM_PATTERN)
            & ~memo.str.contains(PERSONAL_IN_MEMO)
        )
    )
    business_out = (pl.col("amount") < 0) & memo.str.contains(BUSINESS_OUT_MEMO)
    return pl.when(eligible & business_in).then(pl.lit("in")).when(eligible & business_out).then(pl.lit("out"))


def business_rows(transactions: pl.LazyFrame, accounts: pl.LazyFrame) -> pl.LazyFrame:
    """Personal accounts' transactions with `business_direction` (in / out / null)."""
    return _personal_accounts(transactions, accounts).with_columns(
        business_direction=_business_direction(), month_on=pl.col("booked_on").dt.month_start()
    )


def commingling_month_features(transactions: pl.LazyFrame, accounts: pl.LazyFrame) -> pl.LazyFrame:
    """One row per personal account x currency x month with transactions: `business_in_count`,
    `business_in`, `business_out_count`, `business_out` (positive), `business_in_share` (business_in /
    inflow; null without inflow). Business accounts have no rows."""
    is_in = pl.col("business_direction") == "in"
    is_out = pl.col("business_direction") == "out"
    zero = pl.lit(0).cast(MONEY)
    return (
        business_rows(transactions, accounts)
        .group_by(_KEYS)
        .agg(
            business_in_count=is_in.sum().cast(pl.Int64),
            business_in=pl.when(is_in).then(pl.col("amount")).otherwise(zero).sum().cast(MONEY),
            business_out_count=is_out.sum().cast(pl.Int64),
            business_out=pl.when(is_out).then(-pl.col("amount")).otherwise(zero).sum().cast(MONEY),
            _inflow=pl.when(pl.col("amount") > 0).then(pl.col("amount")).otherwise(zero).sum(),
        )
        .with_columns(
            business_in_share=pl.when(pl.col("_inflow") > 0).then(
                pl.col("business_in").cast(pl.Float64) / pl.col("_inflow").cast(pl.Float64)
            )
        )
        .drop("_inflow")
    )


def _top_counterparties(business: pl.LazyFrame, n: int = 3) -> pl.LazyFrame:
    """Per account month: the `n` business counterparties with the most money, joined with 、."""
    return (
        business.group_by(*_KEYS, "counterparty_name")
        .agg(_total=pl.col("amount").abs().sum())
        .sort(*_KEYS, "_total", "counterparty_name", descending=[False, False, False, True, False])
        .group_by(_KEYS, maintain_order=True)
        .agg(top_counterparties=pl.col("counterparty_name").head(n).str.join("、"))
    )


COMMINGLING = Rule(
    code="COMMINGLING",
    name_zh="公私混用",
    name_en="Business money through a personal account",
    section="commingling",
    config_model=ComminglingRules,
    remediation_zh="开立并使用对公（经营）账户收付货款，个人账户只用于个人收支。",
    remediation_en="Open and use a business account for business receipts and supplier payments; keep the personal "
    "account for personal money.",
    default_weight=8,
    doc="docs/rules_integrity_cycles.md",
    behaviour="commingling",
)


def commingling_months(
    transactions: pl.LazyFrame, month_features: pl.LazyFrame, *, rules: ComminglingRules
) -> pl.LazyFrame:
    """The account months COMMINGLING judges (main currency, enough business in, share and supplier payments):
    the rows of `month_features` that meet the rule."""
    return month_features.join(main_currency(transactions), on="account_id").filter(
        (pl.col("currency") == pl.col("main_currency"))
        & (pl.col("business_in_count") >= rules.min_business_in_count)
        & (pl.col("business_in_share") >= rules.min_business_in_share)
        & (pl.col("business_out_count") >= rules.min_business_out_count)
    )


def trade_money(
    transactions: pl.LazyFrame, month_features: pl.LazyFrame, accounts: pl.LazyFrame, *, rules: ComminglingRules
) -> pl.LazyFrame:
    """`txn_id, business_direction` of the business rows in the months COMMINGLING judges: in a month a personal
    account trades through (sells to companies and pays suppliers), its receipts are turnover, not the holder's
    income, and its supplier payments are the business's, not large personal outflows — one fact, one flag."""
    months = commingling_months(transactions, month_features, rules=rules).select(_KEYS)
    return (
        business_rows(transactions, accounts)
        .filter(pl.col("business_direction").is_not_null())
        .join(months, on=_KEYS, how="semi")
        .select("txn_id", "business_direction")
    )


def commingling_flags(
    transactions: pl.LazyFrame,
    month_features: pl.LazyFrame,
    accounts: pl.LazyFrame,
    *,
    rules: ComminglingRules,
) -> pl.LazyFrame:
    """COMMINGLING: a personal account month (main currency) with at least `min_business_in_count`
    payments in from companies making at least `min_business_in_share` of inflow, and at least
    `min_business_out_count` payments to suppliers. Metric: business_in_share. Evidence: every business
    row of the month; the reason names the top counterparties."""
    business = business_rows(transactions, accounts).filter(pl.col("business_direction").is_not_null())
    flagged = (
        commingling_months(transactions, month_features, rules=rules)
        .join(_top_counterparties(business), on=_KEYS, how="left")
        .with_columns(
            **month_period(),
            metric_value=pl.col("business_in_share"),
            threshold=pl.lit(rules.min_business_in_share),
            limit_name=pl.lit("business_in_share"),
            severity=severity("medium"),
            reason_zh=pl.format(
                "个人账户本月收到{}笔企业货款等经营款共{}，占入账{}（阈值{}），并向供应商付款{}笔共{}；"
                "主要往来方：{}。疑似公私混用。",
                pl.col("business_in_count"),
                fmt_num(pl.col("business_in")),
                fmt_pct(pl.col("business_in_share")),
                pl.lit(f"{rules.min_business_in_share:.0%}"),
                pl.col("business_out_count"),
                fmt_num(pl.col("business_out")),
                pl.col("top_counterparties"),
            ),
            reason_en=pl.format(
                "This personal account received {} business payments from companies this month ({}, {} of "
                "inflow; threshold {}) and paid suppliers {} times ({}); main counterparties: {}. Business "
                "and personal money are mixed.",
                pl.col("business_in_count"),
                fmt_num(pl.col("business_in")),
                fmt_pct(pl.col("business_in_share")),
                pl.lit(f"{rules.min_business_in_share:.0%}"),
                pl.col("business_out_count"),
                fmt_num(pl.col("business_out")),
                pl.col("top_counterparties"),
            ),
        )
    )
    return finish_flags(evidence_in_months(flagged, business, pl.lit(True)), COMMINGLING, rules)
