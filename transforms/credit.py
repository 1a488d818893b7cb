"""Credit behaviour: how many lenders, how often and how much borrowed, 以贷养贷, overdue signs, debt burden.

`credit_month_features` adds to each account month (one row per account x currency x month of
`transforms.months.account_months`, same rows) the credit columns of `contracts.ACCOUNT_MONTHS`.
`borrow_to_repay_links` returns one `contracts.TRANSFER_LINKS` row per 以贷养贷 pair: a loan disbursement
(`out_txn_id`) followed within days by a repayment to a *different* lender of a similar amount
(`in_txn_id`). `credit_flags` turns both into `contracts.RISK_FLAGS` rows (MULTI_LENDER,
BORROWING_FREQUENT, CASH_LOAN_RELIANCE, BORROW_TO_REPAY, OVERDUE_PENALTY, DEBT_BURDEN_HIGH).

Everything is per account *and currency* (the grain of `account_months`); only main-currency months are
judged. MULTI_LENDER, CASH_LOAN_RELIANCE and DEBT_BURDEN_HIGH judge trailing windows: each publishes one flag per
episode of consecutive firing months (`Rule.episodic`); the others one per month. Rules and their reasoning:
docs/rules_credit.md. Each rule is one section below: its `Rule` record
(code, names, section of config/rules.yaml, remediation, default weight) and its function.
"""

from __future__ import annotations

from decimal import Decimal
from functools import cache

import polars as pl
import polars_hash  # noqa: F401  (registers the stable `chash` namespace)

from liushui.config import (
    BorrowingRules,
    BorrowToRepayRules,
    DebtBurdenRules,
    MultiLenderRules,
    OverdueRules,
    Rules,
)
from liushui.contracts import MONEY, TRANSFER_LINKS
from liushui.vocabularies import TxnClass
from transforms.classify import txn_class_is
from transforms.flag_rows import (
    Rule,
    evidence_in_months,
    finish_flags,
    fmt_num,
    fmt_pct,
    high_when,
    month_period,
    severity,
)
from transforms.lenders import load_lender_registry
from transforms.patterns import ascii_word_boundaries
from transforms.transfers import link_id_expr, link_type_is, link_type_value, one_to_one

LOAN_ACTIVITY_CLASSES: tuple[TxnClass, ...] = ("loan_disbursement", "loan_repayment", "penalty_fee", "failed_debit")
"""Rows that show a loan with the row's lender: money lent, repaid, a penalty charged or an instalment
debit attempted. Reversals are left out: they undo a row that already counts."""

_PER_ACCOUNT = ["account_id", "currency"]
_MONTH_KEY = ["account_id", "currency", "month_on"]
_PERIOD_KEY = ["account_id", "currency", "period_start_on", "period_end_on"]
_ZERO = pl.lit(0).cast(MONEY)


@cache
def shipped_lender_names() -> pl.DataFrame:
    """`lender_id, name_zh, name_en` of the shipped lender registry (read once per process)."""
    return load_lender_registry().select("lender_id", "name_zh", "name_en")


def _with_lender_names(frame: pl.LazyFrame, names: pl.LazyFrame | None, *, lender: str, prefix: str) -> pl.LazyFrame:
    """Add `{prefix}_zh` and `{prefix}_en`: the lender's name in the registry (花呗 / Ant Huabei), else its id (a
    lender missing from `names` keeps a readable label). Reasons name lenders the way analysts and customers do;
    the id stays in the data (`transactions.lender_id`)."""
    names = names if names is not None else shipped_lender_names().lazy()
    named = names.select(
        pl.col("lender_id").alias(lender),
        pl.col("name_zh").alias(f"_{prefix}_name_zh"),
        pl.col("name_en").alias(f"_{prefix}_name_en"),
    ).unique(lender, keep="first")
    return (
        frame.join(named, on=lender, how="left")
        .with_columns(
            pl.coalesce(f"_{prefix}_name_zh", lender).alias(f"{prefix}_zh"),
            pl.coalesce(f"_{prefix}_name_en", lender).alias(f"{prefix}_en"),
        )
        .drop(f"_{prefix}_name_zh", f"_{prefix}_name_en")
    )


def _days_back(end: pl.Expr, days: int) -> pl.Expr:
    """First day of the `days`-day window ending on (and including) `end`."""
    return end - pl.duration(days=days - 1)


# ---------------------------------------------------------------------------------------------------
# Month features


def lender_activity(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per loan row that names its lender: `account_id, currency, txn_id, lender_id, booked_on`."""
    return transactions.filter(txn_class_is(*LOAN_ACTIVITY_CLASSES) & pl.col("lender_id").is_not_null()).select(
        *_PER_ACCOUNT, "txn_id", "lender_id", "booked_on"
    )


def _lender_counts(transactions: pl.LazyFrame, account_months: pl.LazyFrame, windows_days: list[int]) -> pl.LazyFrame:
    """Per account month: distinct lenders with activity in each N-day window ending at the month end,
    and lenders whose first activity in the statement falls in the month (one pass over the activity)."""
    activity = (
        lender_activity(transactions)
        .select(*_PER_ACCOUNT, "lender_id", "booked_on")
        .unique()
        .with_columns(_first_on=pl.col("booked_on").min().over(*_PER_ACCOUNT, "lender_id"))
    )
    month_end = pl.col("month_on").dt.month_end()
    earliest = pl.min_horizontal(_days_back(month_end, max(windows_days)), pl.col("month_on"))
    return (
        account_months.select(*_MONTH_KEY)
        .join(activity, on=_PER_ACCOUNT, how="inner")
        .filter(pl.col("booked_on").is_between(earliest, month_end))
        .group_by(_MONTH_KEY)
        .agg(
            *(
                pl.col("lender_id")
                .filter(pl.col("booked_on") >= _days_back(month_end, days))
                .n_unique()
                .cast(pl.Int64)
                .alias(f"lenders_active_{days}d")
                for days in windows_days
            ),
            new_lenders=pl.col("lender_id").filter(pl.col("_first_on") >= pl.col("month_on")).n_unique().cast(pl.Int64),
        )
    )


def _loan_events(transactions: pl.LazyFrame) -> pl.LazyFrame:
    overdue = overdue_evidence(transactions)
    kind = pl.col("overdue_kind")
    return (
        transactions.group_by(*_PER_ACCOUNT, month_on=pl.col("booked_on").dt.month_start())
        .agg(
            disbursement_count=txn_class_is("loan_disbursement").sum().cast(pl.Int64),
        )
        .join(
            overdue.group_by(*_PER_ACCOUNT, month_on=pl.col("booked_on").dt.month_start()).agg(
                penalty_count=(kind == "penalty").sum().cast(pl.Int64),
                penalty_amount=pl.when(kind == "penalty")
                .then(pl.col("amount").abs())
                .otherwise(_ZERO)
                .sum()
                .cast(MONEY),
                failed_debit_count=(kind == "failed_debit").sum().cast(pl.Int64),
                collection_count=(kind == "collection").sum().cast(pl.Int64),
            ),
            on=_MONTH_KEY,
            how="left",
        )
    )


def _trailing_sum(value: pl.Expr, months: int) -> pl.Expr:
    """Sum of `value` over this row and the previous `months - 1` rows of the account (rows are
    consecutive months: coverage has no holes). Works on Decimal, where `rolling_sum` does not."""
    running = value.cum_sum()
    return (running - running.shift(months).fill_null(0)).over(_PER_ACCOUNT, order_by="month_on")


def _trailing_loan_share(months: int) -> dict[str, pl.Expr]:
    """CASH_LOAN_RELIANCE's window over the `months` months ending at each row: `_full_months`, `_disbursed`,
    `_inflow` and `_share` (disbursed / inflow; null without inflow)."""
    return {
        "_full_months": _trailing_sum(pl.col("is_full_month").cast(pl.Int64), months),
        "_disbursed": _trailing_sum(pl.col("loan_disbursed"), months),
        "_inflow": _trailing_sum(pl.col("inflow"), months),
    }


def _share_of(disbursed: pl.Expr, inflow: pl.Expr) -> pl.Expr:
    return pl.when(inflow > 0).then(disbursed.cast(pl.Float64) / inflow.cast(pl.Float64))


def trailing_debt_service(account_months: pl.LazyFrame, *, rules: DebtBurdenRules) -> pl.LazyFrame:
    """Add the trailing debt-service window: `debt_burden_start_on` (first full month in the window of
    `trailing_months` months ending at this month), `debt_burden_months` (full months in it),
    `debt_burden_repaid` and `debt_burden_income` (sums over those full months), and
    `debt_burden_trailing` (repaid / income; null when this month is not full or the income is below
    `min_clean_income` per full month). Repaid is debt service out of income: `loan_repaid` less
    `_refinanced` (repayments a new loan paid for, BORROW_TO_REPAY's fact) when the frame has it."""
    n = rules.trailing_months
    full = pl.col("is_full_month")
    months_in_window = _trailing_sum(full.cast(pl.Int64), n)
    refinanced = "_refinanced" in account_months.collect_schema().names()
    serviced = pl.col("loan_repaid") - pl.col("_refinanced") if refinanced else pl.col("loan_repaid")
    return account_months.with_columns(
        debt_burden_months=pl.when(full).then(months_in_window),
        debt_burden_start_on=pl.when(full).then(
            pl.max_horizontal(
                pl.col("month_on").dt.offset_by(f"-{n - 1}mo"),
                pl.when(full).then(pl.col("month_on")).min().over(_PER_ACCOUNT),
            )
        ),
        debt_burden_repaid=pl.when(full).then(
            _trailing_sum(pl.when(full).then(serviced).otherwise(_ZERO), n).cast(MONEY)
        ),
        debt_burden_income=pl.when(full).then(
            _trailing_sum(pl.when(full).then(pl.col("clean_income")).otherwise(_ZERO), n).cast(MONEY)
        ),
    ).with_columns(
        debt_burden_trailing=pl.when(
            (pl.col("debt_burden_income") > 0)
            & (pl.col("debt_burden_income").cast(pl.Float64) >= rules.min_clean_income * pl.col("debt_burden_months"))
        ).then(pl.col("debt_burden_repaid").cast(pl.Float64) / pl.col("debt_burden_income").cast(pl.Float64))
    )


def credit_month_features(
    transactions: pl.LazyFrame,
    account_months: pl.LazyFrame,
    *,
    rules: Rules,
    borrow_to_repay: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """Add the credit columns to every account month (same rows, same order).

    `transactions` is the classified table (`txn_class`, `lender_id`); `account_months` needs
    `account_id, currency, month_on, is_full_month, inflow, clean_income, loan_disbursed, loan_repaid`.
    Counts are 0 (never null) in months without such rows; `loan_share_of_inflow` is null without inflow.
    `borrow_to_repay` (its links): the repayments a new loan paid for are not debt service out of income
    (one fact, one flag: BORROW_TO_REPAY), so the debt burden leaves them out.
    """
    windows = sorted({*rules.multi_lender.windows_days, rules.multi_lender.judged_window_days})
    counts = [
        *(f"lenders_active_{days}d" for days in windows),
        "new_lenders",
        "disbursement_count",
        "penalty_count",
        "failed_debit_count",
        "collection_count",
    ]
    private = ["debt_burden_start_on", "debt_burden_months", "debt_burden_repaid", "debt_burden_income", "_refinanced"]
    # Recomputed, never joined twice: a frame already conformed to the contract carries them as nulls.
    produced = [
        *counts,
        "lenders_active_judged",
        "penalty_amount",
        "loan_share_of_inflow",
        "loan_share_trailing",
        "debt_burden_trailing",
    ]
    window = rules.borrowing.window_months
    return (
        account_months.drop(produced, strict=False)
        .join(_lender_counts(transactions, account_months, windows), on=_MONTH_KEY, how="left", maintain_order="left")
        .join(_loan_events(transactions), on=_MONTH_KEY, how="left", maintain_order="left")
        .with_columns(
            *(pl.col(c).fill_null(0) for c in counts),
            penalty_amount=pl.col("penalty_amount").fill_null(_ZERO),
            loan_share_of_inflow=pl.when(pl.col("inflow") > 0).then(
                pl.col("loan_disbursed").cast(pl.Float64) / pl.col("inflow").cast(pl.Float64)
            ),
        )
        .join(_refinanced(transactions, borrow_to_repay), on=_MONTH_KEY, how="left", maintain_order="left")
        .with_columns(_refinanced=pl.col("_refinanced").fill_null(_ZERO))
        .pipe(trailing_debt_service, rules=rules.debt_burden)
        .with_columns(**_trailing_loan_share(window))
        .with_columns(
            # the figures MULTI_LENDER and CASH_LOAN_RELIANCE judge, month by month (today's value in account_risk)
            lenders_active_judged=pl.col(f"lenders_active_{rules.multi_lender.judged_window_days}d"),
            loan_share_trailing=pl.when(pl.col("is_full_month") & (pl.col("_full_months") == window)).then(
                _share_of(pl.col("_disbursed"), pl.col("_inflow"))
            ),
        )
        .drop([*private, *_trailing_loan_share(window)], strict=False)
    )


def _refinanced(transactions: pl.LazyFrame, borrow_to_repay: pl.LazyFrame | None) -> pl.LazyFrame:
    """Per account month: the repayments (positive) that are the repaid side of a borrow-to-repay link."""
    repaid = transactions.select(*_PER_ACCOUNT, "txn_id", "amount", month_on=pl.col("booked_on").dt.month_start())
    if borrow_to_repay is None:
        return repaid.head(0).group_by(_MONTH_KEY).agg(_refinanced=(-pl.col("amount")).sum().cast(MONEY))
    return (
        repaid.join(borrow_to_repay.select(txn_id="in_txn_id"), on="txn_id", how="semi")
        .group_by(_MONTH_KEY)
        .agg(_refinanced=(-pl.col("amount")).sum().cast(MONEY))
    )


# ---------------------------------------------------------------------------------------------------
# 以贷养贷 links


def borrow_to_repay_links(transactions: pl.LazyFrame, *, rules: BorrowToRepayRules) -> pl.LazyFrame:
    """以贷养贷: a disbursement from lender A (>= `min_amount`) followed, strictly later and at most
    `max_days` calendar days after, by a repayment to another lender B of similar size
    (|repaid - disbursed| <= `amount_tolerance` x disbursed), same account and currency.

    Orientation: `out_txn_id` is the disbursement (money borrowed, the first event), `in_txn_id` the
    repayment it funded; `counterparty` is "A→B". Each disbursement and each repayment is in at most
    one link: every disbursement takes its earliest repayment, and a repayment chosen twice goes to
    the earlier disbursement (`transforms.transfers.one_to_one`). Same-timestamp rows (date-only
    exports, same day) are not linked: their order is unknown.
    """
    loans = transactions.filter(pl.col("lender_id").is_not_null())
    disbursed = loans.filter(
        txn_class_is("loan_disbursement") & (pl.col("amount") >= pl.lit(Decimal(str(rules.min_amount))))
    ).select(
        *_PER_ACCOUNT,
        out_txn_id="txn_id",
        out_at="booked_at",
        out_on="booked_on",
        amount_out="amount",
        lender_out="lender_id",
    )
    repaid = loans.filter(txn_class_is("loan_repayment")).select(
        *_PER_ACCOUNT,
        in_txn_id="txn_id",
        in_at="booked_at",
        in_on="booked_on",
        amount_in=-pl.col("amount"),
        lender_in="lender_id",
    )
    # exact: the tolerance carries enough decimals that tolerance x amount is not rounded
    tolerance = pl.lit(Decimal(str(rules.amount_tolerance))).cast(pl.Decimal(38, 10))
    pairs = (
        disbursed.join(repaid, on=_PER_ACCOUNT, how="inner")
        .filter(
            (pl.col("lender_in") != pl.col("lender_out"))
            & (pl.col("in_at") > pl.col("out_at"))
            & (pl.col("in_on") <= pl.col("out_on") + pl.duration(days=rules.max_days))
            & ((pl.col("amount_in") - pl.col("amount_out")).abs() <= tolerance * pl.col("amount_out"))
        )
        .with_columns(days_apart=(pl.col("in_on") - pl.col("out_on")).dt.total_days())
    )
    return TRANSFER_LINKS.conform(
        one_to_one(pairs, order=["out_at", "out_txn_id", "in_at", "in_txn_id"]).with_columns(
            link_type=link_type_value("borrow_to_repay"),
            link_id=link_id_expr("borrow_to_repay"),
            counterparty=pl.format("{}→{}", pl.col("lender_out"), pl.col("lender_in")),
            evidence_txn_ids=pl.concat_list("out_txn_id", "in_txn_id"),
        )
    )


# ---------------------------------------------------------------------------------------------------
# Flags: one section per rule


def _judged(months: pl.LazyFrame) -> pl.LazyFrame:
    return months.filter(pl.col("is_main_currency"))


# --- MULTI_LENDER (多头借贷) ---
MULTI_LENDER = Rule(
    code="MULTI_LENDER",
    name_zh="多头借贷",
    name_en="Borrowing from many lenders",
    section="multi_lender",
    config_model=MultiLenderRules,
    remediation_zh="把借款集中到一到两家机构：结清并停用其余平台的借款，按时还款。",
    remediation_en="Concentrate borrowing on one or two lenders: pay off and close the loans on the other platforms, "
    "and repay on time.",
    default_weight=20,
    doc="docs/rules_credit.md",
    behaviour="multi_lender",
    episodic=True,
)


def multi_lender_flags(
    transactions: pl.LazyFrame,
    months_with_credit: pl.LazyFrame,
    *,
    rules: MultiLenderRules,
    lender_names: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """MULTI_LENDER (多头借贷): more than `max_lenders` distinct lenders active in the judged window."""
    days = rules.judged_window_days
    lenders = pl.col(f"lenders_active_{days}d")
    month_end = pl.col("month_on").dt.month_end()
    flagged = (
        _judged(months_with_credit)
        .with_columns(_first_month_on=pl.col("month_on").min().over(_PER_ACCOUNT))
        .filter(lenders > rules.max_lenders)
        .select(
            *_PER_ACCOUNT,
            period_start_on=pl.max_horizontal(_days_back(month_end, days), pl.col("_first_month_on")),
            period_end_on=month_end,
            metric_value=lenders.cast(pl.Float64),
            severity=high_when(lenders > rules.high_lenders),
        )
    )
    evidence = (
        flagged.select(_PERIOD_KEY)
        .join(lender_activity(transactions), on=_PER_ACCOUNT)
        .filter(pl.col("booked_on").is_between(pl.col("period_start_on"), pl.col("period_end_on")))
        .pipe(_with_lender_names, lender_names, lender="lender_id", prefix="_lender")
        .group_by(_PERIOD_KEY)
        .agg(
            evidence_txn_ids=pl.col("txn_id"),
            _lenders_zh=pl.col("_lender_zh").unique().sort(),
            _lenders_en=pl.col("_lender_en").unique().sort(),
        )
    )
    return finish_flags(
        flagged.join(evidence, on=_PERIOD_KEY, how="left").with_columns(
            threshold=pl.lit(float(rules.max_lenders)),
            limit_name=pl.lit(f"distinct_lenders_{days}d"),
            reason_zh=pl.format(
                "截至{}的近{}天内有{}家贷款机构发生借贷往来（{}），超过阈值{}家。",
                pl.col("period_end_on"),
                pl.lit(days),
                pl.col("metric_value").cast(pl.Int64),
                pl.col("_lenders_zh").list.join("、"),
                pl.lit(rules.max_lenders),
            ),
            reason_en=pl.format(
                "{} distinct lenders had loan activity in the {} days to {} ({}); the limit is {}.",
                pl.col("metric_value").cast(pl.Int64),
                pl.lit(days),
                pl.col("period_end_on"),
                pl.col("_lenders_en").list.join(", "),
                pl.lit(rules.max_lenders),
            ),
        ),
        MULTI_LENDER,
        rules,
    )


# --- BORROWING_FREQUENT ---
BORROWING_FREQUENT = Rule(
    code="BORROWING_FREQUENT",
    name_zh="频繁借款",
    name_en="Frequent borrowing",
    section="borrowing",
    config_model=BorrowingRules,
    remediation_zh="停止每月新增借款；连续数月没有新的放款。",
    remediation_en="Stop taking out new loans every month: several consecutive months without a new disbursement.",
    default_weight=10,
    doc="docs/rules_credit.md",
)


def borrowing_frequent_flags(
    transactions: pl.LazyFrame, months_with_credit: pl.LazyFrame, *, rules: BorrowingRules
) -> pl.LazyFrame:
    """BORROWING_FREQUENT: more than `max_disbursements_per_month` loan disbursements in a month."""
    flagged = (
        _judged(months_with_credit)
        .filter(pl.col("disbursement_count") > rules.max_disbursements_per_month)
        .with_columns(
            **month_period(),
            metric_value=pl.col("disbursement_count").cast(pl.Float64),
            threshold=pl.lit(float(rules.max_disbursements_per_month)),
            limit_name=pl.lit("disbursements_per_month"),
            severity=severity("medium"),
            reason_zh=pl.format(
                "本月收到{}笔贷款放款，共{}，超过每月{}笔的阈值。",
                pl.col("disbursement_count"),
                fmt_num(pl.col("loan_disbursed")),
                pl.lit(rules.max_disbursements_per_month),
            ),
            reason_en=pl.format(
                "{} loan disbursements this month, {} in total; the limit is {} a month.",
                pl.col("disbursement_count"),
                fmt_num(pl.col("loan_disbursed")),
                pl.lit(rules.max_disbursements_per_month),
            ),
        )
    )
    disbursement = txn_class_is("loan_disbursement")
    return finish_flags(
        evidence_in_months(flagged, transactions, disbursement),
        BORROWING_FREQUENT,
        rules,
    )


# --- CASH_LOAN_RELIANCE ---
CASH_LOAN_RELIANCE = Rule(
    code="CASH_LOAN_RELIANCE",
    name_zh="依赖现金贷",
    name_en="Reliance on cash loans",
    section="borrowing",
    config_model=BorrowingRules,
    remediation_zh="减少对现金贷的依赖，让账户流入主要来自工资或经营收入。",
    remediation_en="Rely less on cash loans: most of the money coming in should be salary or business income.",
    default_weight=12,
    doc="docs/rules_credit.md",
    episodic=True,
)


def cash_loan_reliance_flags(
    transactions: pl.LazyFrame, months_with_credit: pl.LazyFrame, *, rules: BorrowingRules
) -> pl.LazyFrame:
    """CASH_LOAN_RELIANCE: loan disbursements above `max_loan_share_of_inflow` of all inflow over the
    trailing `window_months` months, all full, ending at a full month. A trailing window, not one month: a single
    consumer loan of about a month's salary is borrowing, not reliance; a partial month is not judged
    (its salary may not have arrived yet)."""
    n = rules.window_months
    flagged = (
        _judged(months_with_credit)
        .with_columns(**_trailing_loan_share(n), _first_month_on=pl.col("month_on").min().over(_PER_ACCOUNT))
        .with_columns(_share=_share_of(pl.col("_disbursed"), pl.col("_inflow")))
        .filter(
            pl.col("is_full_month")
            & (pl.col("_full_months") == n)  # a whole window, or the statement's first month would decide
            & (pl.col("_share") > rules.max_loan_share_of_inflow)
            & (pl.col("_disbursed").cast(pl.Float64) >= rules.min_disbursed)
        )
        .with_columns(
            period_start_on=pl.max_horizontal(
                pl.col("month_on").dt.offset_by(f"-{n - 1}mo"), pl.col("_first_month_on")
            ),
            period_end_on=pl.col("month_on").dt.month_end(),
            metric_value=pl.col("_share"),
            threshold=pl.lit(rules.max_loan_share_of_inflow),
            limit_name=pl.lit(f"loan_share_of_inflow_{n}m"),
            severity=severity("medium"),
            reason_zh=pl.format(
                "近{}个月贷款放款{}，占全部流入{}的{}，超过阈值{}。",
                pl.lit(str(n)),
                fmt_num(pl.col("_disbursed")),
                fmt_num(pl.col("_inflow")),
                fmt_pct(pl.col("_share")),
                pl.lit(f"{rules.max_loan_share_of_inflow:.0%}"),
            ),
            reason_en=pl.format(
                "Over the last {} months loan disbursements of {} were {} of all inflow ({}); the limit is {}.",
                pl.lit(str(n)),
                fmt_num(pl.col("_disbursed")),
                fmt_pct(pl.col("_share")),
                fmt_num(pl.col("_inflow")),
                pl.lit(f"{rules.max_loan_share_of_inflow:.0%}"),
            ),
        )
    )
    disbursement = txn_class_is("loan_disbursement")
    return finish_flags(
        evidence_in_months(flagged, transactions, disbursement),
        CASH_LOAN_RELIANCE,
        rules,
    )


# --- BORROW_TO_REPAY (以贷养贷) ---
BORROW_TO_REPAY = Rule(
    code="BORROW_TO_REPAY",
    name_zh="以贷养贷",
    name_en="Borrowing to repay",
    section="borrow_to_repay",
    config_model=BorrowToRepayRules,
    remediation_zh="停止借新还旧：用收入而不是另一家机构的新借款还款，必要时与贷款机构协商展期或分期。",
    remediation_en="Stop repaying one lender with another lender's new loan: repay from income, or negotiate an "
    "extension or instalment plan with the lender.",
    default_weight=25,
    doc="docs/rules_credit.md",
    behaviour="borrow_to_repay",
)


def borrow_to_repay_flags(
    transactions: pl.LazyFrame,
    months_with_credit: pl.LazyFrame,
    links: pl.LazyFrame,
    *,
    rules: BorrowToRepayRules,
    lender_names: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """BORROW_TO_REPAY (以贷养贷): a month (of the repayment) with at least one borrow-to-repay pair. The reason
    names each pair by the lenders' names (借呗→花呗)."""
    repayment_months = transactions.select(
        in_txn_id="txn_id",
        currency="currency",
        month_on=pl.col("booked_on").dt.month_start(),
        _lender_in="lender_id",
    )
    lent_by = transactions.select(out_txn_id="txn_id", _lender_out="lender_id")
    judged = _judged(months_with_credit).select(*_MONTH_KEY)
    return finish_flags(
        links.filter(link_type_is("borrow_to_repay"))
        .join(repayment_months, on="in_txn_id")
        .join(lent_by, on="out_txn_id", how="left")
        .join(judged, on=_MONTH_KEY)
        .pipe(_with_lender_names, lender_names, lender="_lender_out", prefix="_out")
        .pipe(_with_lender_names, lender_names, lender="_lender_in", prefix="_in")
        .group_by(_MONTH_KEY)
        .agg(
            count=pl.len(),
            total=pl.col("amount_in").sum(),
            _pairs_zh=pl.format("{}→{}", "_out_zh", "_in_zh").unique().sort(),
            _pairs_en=pl.format("{}→{}", "_out_en", "_in_en").unique().sort(),
            evidence_txn_ids=pl.concat_list("out_txn_id", "in_txn_id").list.explode(
                keep_nulls=False, empty_as_null=False
            ),
        )
        .with_columns(
            **month_period(),
            metric_value=pl.col("count").cast(pl.Float64),
            threshold=pl.lit(1.0),
            limit_name=pl.lit("borrow_to_repay_pairs_per_month"),
            severity=high_when(pl.col("count") >= rules.high_pairs),
            reason_zh=pl.format(
                "本月{}笔还款（共{}）来自{}天内另一家机构的新借款（{}），疑似以贷养贷。",
                pl.col("count"),
                fmt_num(pl.col("total")),
                pl.lit(rules.max_days),
                pl.col("_pairs_zh").list.join("、"),
            ),
            reason_en=pl.format(
                "{} repayment(s) this month ({} in total) were funded by another lender's loan "
                "disbursed within {} days ({}): borrowing to repay.",
                pl.col("count"),
                fmt_num(pl.col("total")),
                pl.lit(rules.max_days),
                pl.col("_pairs_en").list.join(", "),
            ),
        ),
        BORROW_TO_REPAY,
        rules,
    )


# --- OVERDUE_PENALTY ---
OVERDUE_PENALTY = Rule(
    code="OVERDUE_PENALTY",
    name_zh="逾期迹象",
    name_en="Signs of overdue debt",
    section="overdue",
    config_model=OverdueRules,
    remediation_zh="按时足额还款并保持扣款账户余额充足，结清逾期罚息；连续数月没有罚息、滞纳金、扣款失败或催收。",
    remediation_en="Repay in full and on time and keep enough balance for the instalment debits; settle overdue "
    "penalties. Several consecutive months without penalties, late fees, failed debits or collection.",
    default_weight=20,
    doc="docs/rules_credit.md",
    behaviour="overdue",
)

OVERDUE_PENALTY_PATTERN = (
    r"(?i)罚息|复息|逾期|滞纳金|违约金|罚金|"
    r"late\s*(payment\s*)?(fee|charge)|overdue|penal(ty)?\s*(interest|charge|fee)|default\s*(interest|charge|fee)"
)
"""Penalty interest and late fees: 罚息 / 复息 (interest on overdue interest), 逾期 (利息, 费, 还款 ...), 滞纳金 and
违约金 (a credit card's late fee since 2017), late fee / charge, overdue, penalty / penal / default interest."""
OVERDUE_FAILED_PATTERN = ascii_word_boundaries(
    r"(?i)(扣款|代扣|扣收|划扣|划款|还款|自动还款)(交易)?失败|余额不足|退票|"
    r"insufficient\s*funds?|\bnsf\b|dishono(u)?red|bounced|bounce\s*(chq|cheque|check|charge|fee)|"
    r"(chq|cheque|check)\s*(return|bounce)|returned\s*(item|payment|debit|direct\s*debit|cheque|check|ach)|"
    r"(ach|nach|ecs|direct\s*debit)\s*return|unpaid\s*(item|direct\s*debit)|(payment|debit)\s*failed|"
    r"failed\s*(payment|debit)"
)
"""A failed or returned debit: 扣款 / 代扣 / 还款 ... 失败, 余额不足 (insufficient funds), 退票 (a returned cheque or
bill), NSF, dishonoured, bounced, returned item / payment / direct debit, ACH / NACH / ECS return. A bare
"returned" is not enough: a returned transfer (退汇) or goods is no missed payment."""
OVERDUE_COLLECTION_PATTERN = r"(?i)催收|催缴|debt\s*collect|collection\s*(agency|agent|fee|charge)"
"""Money paid to or through debt collection (催收, 委外催收, 催缴, debt collection, collection agency / fee). A bare
"collection" is not enough: POS collection and cash collection are ordinary business."""
OVERDUE_NOT_EVIDENCE_PATTERN = (
    r"(?i)提前(还款|还贷|结清|偿还|归还|清偿|还本)|"
    r"(免|减免|免收|免除|无|不收|零)(罚息|滞纳金|违约金|逾期)|(罚息|滞纳金|违约金)(减免|免除|豁免|全免|退还|返还)|"
    r"逾期未(领|取)|逾期退(回|汇)|退票(费|手续费)|"
    r"(铁路|火车|12306|高铁|航空|机票|车票|影票|电影|演出|门票|携程|去哪儿|飞猪|同程).{0,12}退票|"
    r"pre-?payment|early\s*(re)?pay(ment)?|early\s*settle(ment)?|"
    r"penalty[\s-]*free|free\s*of\s*(penalty|charge)|no\s*(late\s*fee|penalty)|waive[dr]?"
)
"""Rows that name a penalty without proving a missed payment: a prepayment fee (提前还款违约金 / 提前结清: paying
early), a waived or absent penalty (免罚息, 罚息减免, 无滞纳金, penalty-free, fee waived), a remittance returned
unclaimed (逾期未领, 逾期退回), a refunded train, plane or show ticket (火车票退票, 退票费: 退票 alone is a
returned cheque or bill)."""


def overdue_evidence(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per transaction that shows a missed payment: `account_id, currency, txn_id, booked_on, amount,
    overdue_kind` (penalty, failed_debit or collection).

    Memo and counterparty are read together (a bank may print 罚息 as the counterparty of an internal
    posting, or the memo alone). A failed debit counts with either sign (banks post it as zero, as the debit
    and its reversal, or as the returned amount); a penalty and a collection payment only as money out (money in
    is a waiver or a refund). Refunds and reversals never count, nor rows matching
    `OVERDUE_NOT_EVIDENCE_PATTERN`. The row's class (`penalty_fee`, `failed_debit` from the lender registry's
    role keywords) is not used: it also holds a prepayment fee, and a bare RETURNED.
    """
    text = pl.concat_str(pl.col("description").fill_null(""), pl.col("counterparty_name").fill_null(""), separator=" ")
    money_out = pl.col("amount") < 0
    undone = txn_class_is("refund", "reversal")
    kind = (
        pl.when(text.str.contains(OVERDUE_NOT_EVIDENCE_PATTERN))
        .then(pl.lit(None, dtype=pl.String))
        .when(text.str.contains(OVERDUE_FAILED_PATTERN))
        .then(pl.lit("failed_debit"))
        .when(undone | ~money_out)
        .then(pl.lit(None, dtype=pl.String))
        .when(text.str.contains(OVERDUE_COLLECTION_PATTERN))
        .then(pl.lit("collection"))
        .when(text.str.contains(OVERDUE_PENALTY_PATTERN))
        .then(pl.lit("penalty"))
    )
    return (
        transactions.with_columns(overdue_kind=kind)
        .filter(pl.col("overdue_kind").is_not_null())
        .select(*_PER_ACCOUNT, "txn_id", "booked_on", "amount", "overdue_kind")
    )


def overdue_penalty_flags(
    transactions: pl.LazyFrame, months_with_credit: pl.LazyFrame, *, rules: OverdueRules
) -> pl.LazyFrame:
    """OVERDUE_PENALTY: at least `min_events` rows in a month that show a missed payment (`overdue_evidence`:
    penalty interest / late fees, failed or returned debits, collection). A negative balance is not one: that
    is OVERDRAWN (`transforms.balances`)."""
    events = pl.col("penalty_count") + pl.col("failed_debit_count") + pl.col("collection_count")
    flagged = (
        _judged(months_with_credit)
        .filter(events >= rules.min_events)
        .with_columns(
            **month_period(),
            metric_value=events.cast(pl.Float64),
            threshold=pl.lit(float(rules.min_events)),
            limit_name=pl.lit("overdue_events_per_month"),
            severity=high_when(events >= rules.high_events),
            reason_zh=pl.format(
                "本月{}次逾期迹象（阈值{}次）：罚息/滞纳金{}笔共{}，扣款失败{}笔，催收{}笔。",
                events,
                pl.lit(rules.min_events),
                pl.col("penalty_count"),
                fmt_num(pl.col("penalty_amount")),
                pl.col("failed_debit_count"),
                pl.col("collection_count"),
            ),
            reason_en=pl.format(
                "{} overdue events this month (threshold {}): {} penalty / late-fee rows ({} in "
                "total), {} failed debits, {} collection payments.",
                events,
                pl.lit(rules.min_events),
                pl.col("penalty_count"),
                fmt_num(pl.col("penalty_amount")),
                pl.col("failed_debit_count"),
                pl.col("collection_count"),
            ),
        )
    )
    return finish_flags(
        evidence_in_months(flagged, overdue_evidence(transactions), pl.lit(True)),
        OVERDUE_PENALTY,
        rules,
    )


# --- DEBT_BURDEN_HIGH ---
DEBT_BURDEN_HIGH = Rule(
    code="DEBT_BURDEN_HIGH",
    name_zh="负债收入比高",
    name_en="High debt burden",
    section="debt_burden",
    config_model=DebtBurdenRules,
    remediation_zh="把每月还款降到净收入的{rules.max_ratio:.0%}以下：提前结清部分借款、延长期限或增加稳定收入。",
    remediation_en="Bring loan repayments below {rules.max_ratio:.0%} of clean income: pay off some loans early, "
    "lengthen terms, or increase steady income.",
    default_weight=15,
    doc="docs/rules_credit.md",
    behaviour="debt_burden_high",
    episodic=True,
)


def debt_burden_flags(
    transactions: pl.LazyFrame,
    months_with_credit: pl.LazyFrame,
    *,
    rules: DebtBurdenRules,
    borrow_to_repay: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """DEBT_BURDEN_HIGH: loan repayments out of income (those a new loan paid for, `borrow_to_repay`, aside)
    above `max_ratio` of clean income over the trailing full months; evidence the repayments counted."""
    flagged = (
        _judged(months_with_credit.drop("debt_burden_trailing"))
        .join(_refinanced(transactions, borrow_to_repay), on=_MONTH_KEY, how="left", maintain_order="left")
        .with_columns(_refinanced=pl.col("_refinanced").fill_null(_ZERO))
        .pipe(trailing_debt_service, rules=rules)
        .filter(pl.col("debt_burden_trailing") > rules.max_ratio)
        .with_columns(
            period_start_on=pl.col("debt_burden_start_on"),
            period_end_on=pl.col("month_on").dt.month_end(),
            metric_value=pl.col("debt_burden_trailing"),
            threshold=pl.lit(rules.max_ratio),
            limit_name=pl.lit(f"debt_service_ratio_{rules.trailing_months}m"),
            severity=high_when(pl.col("debt_burden_trailing") > rules.high_ratio),
            reason_zh=pl.format(
                "近{}个完整月以收入偿还的贷款（借新还旧除外）{}，占净收入{}的{}，超过阈值{}。",
                pl.col("debt_burden_months"),
                fmt_num(pl.col("debt_burden_repaid")),
                fmt_num(pl.col("debt_burden_income")),
                fmt_pct(pl.col("debt_burden_trailing")),
                pl.lit(f"{rules.max_ratio:.0%}"),
            ),
            reason_en=pl.format(
                "Loan repayments out of income (refinanced ones aside) of {} over the last {} full months were {} of "
                "clean income ({}); the limit is {}.",
                fmt_num(pl.col("debt_burden_repaid")),
                pl.col("debt_burden_months"),
                fmt_pct(pl.col("debt_burden_trailing")),
                fmt_num(pl.col("debt_burden_income")),
                pl.lit(f"{rules.max_ratio:.0%}"),
            ),
        )
    )
    repayment = txn_class_is("loan_repayment")
    serviced = (
        transactions
        if borrow_to_repay is None
        else transactions.join(borrow_to_repay.select(txn_id="in_txn_id"), on="txn_id", how="anti")
    )
    return finish_flags(
        evidence_in_months(flagged, serviced, repayment),
        DEBT_BURDEN_HIGH,
        rules,
    )


def credit_flags(
    transactions: pl.LazyFrame,
    months_with_credit: pl.LazyFrame,
    b2r_links: pl.LazyFrame,
    *,
    rules: Rules,
    lender_names: pl.LazyFrame | None = None,
) -> pl.LazyFrame:
    """All credit flags (`contracts.RISK_FLAGS`). `months_with_credit` is `credit_month_features`' output;
    `b2r_links` the `borrow_to_repay_links` (other link types are ignored); `lender_names` the run's lender
    registry (`lender_id, name_zh, name_en`; default the shipped one) for the reasons."""
    return pl.concat(
        [
            multi_lender_flags(transactions, months_with_credit, rules=rules.multi_lender, lender_names=lender_names),
            borrowing_frequent_flags(transactions, months_with_credit, rules=rules.borrowing),
            cash_loan_reliance_flags(transactions, months_with_credit, rules=rules.borrowing),
            borrow_to_repay_flags(
                transactions, months_with_credit, b2r_links, rules=rules.borrow_to_repay, lender_names=lender_names
            ),
            overdue_penalty_flags(transactions, months_with_credit, rules=rules.overdue),
            debt_burden_flags(
                transactions,
                months_with_credit,
                rules=rules.debt_burden,
                borrow_to_repay=b2r_links.filter(link_type_is("borrow_to_repay")),
            ),
        ]
    ).sort("account_id", "flag_code", "period_start_on", "period_end_on", "currency")
