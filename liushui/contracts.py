"""Data contracts: one schema per table, declared once.

Every published table is a `Table`: its columns (name, Polars dtype, DuckDB type, nullability, meaning,
unit) and its primary key. The same object drives the Polars casts (`Table.conform`), the DuckDB DDL
(`Table.ddl`), the Great Expectations suites (not-null / unique / type checks) and `docs/tables.md`.
The values an enumerated column may hold are declared beside the contracts, in `liushui.vocabularies`; the
column descriptions below are written from them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

import polars as pl

from liushui.vocabularies import (
    ACCOUNT_TYPE_MEANINGS,
    ACCOUNT_TYPES,
    COUNTERPARTY_RESOLUTION_MEANINGS,
    COUNTERPARTY_RESOLUTIONS,
    DQ_LEVELS,
    FILE_STATUS_MEANINGS,
    FILE_STATUSES,
    LENDER_CATEGORIES,
    LINK_TYPE_MEANINGS,
    LINK_TYPES,
    LOAN_ROLES,
    QUARANTINE_REASON_CODES,
    RECOVERY_STATUS_MEANINGS,
    RUN_MODES,
    RUN_STATUSES,
    SEVERITIES,
    STATEMENT_TRUST_LEVELS,
    STATEMENT_TRUST_MEANINGS,
    STREAM_CADENCE_MEANINGS,
    STREAM_CADENCES,
    STREAM_KINDS,
    STREAM_STATUS_MEANINGS,
    STREAM_STATUSES,
    TXN_CLASSES,
    one_of,
)

# Re-exported: readers (parse, the dashboard) import these from the contracts.
from liushui.vocabularies import ISO_4217 as ISO_4217
from liushui.vocabularies import RECOVERY_STATUSES as RECOVERY_STATUSES
from liushui.vocabularies import RISK_BANDS as RISK_BANDS

if TYPE_CHECKING:
    from polars._typing import PolarsDataType

MONEY = pl.Decimal(18, 2)
MONEY_SQL = "DECIMAL(18,2)"
TIMESTAMP = pl.Datetime("us")
_CENT = Decimal("0.01")


def money_cents(expr: pl.Expr) -> pl.Expr:
    """A MONEY expression as whole cents (Int64): sums and means of cents are exact and independent of row order."""
    return (expr * 100).cast(pl.Int64)


def money_mean(expr: pl.Expr) -> pl.Expr:
    """The mean of a MONEY expression as MONEY, rounded half away from zero to the cent, computed in integer
    cents: a float mean depends on the order rows are summed in, so an incremental night and a full build
    could differ by a cent."""
    cents = money_cents(expr).drop_nulls()
    total, n = cents.sum(), cents.len()
    rounded = ((2 * total.abs() + n) // (2 * n)) * total.sign()
    return pl.when(n > 0).then(rounded * pl.lit(_CENT, dtype=MONEY)).cast(MONEY)


# Plausibility bounds of one transaction, declared once: parse quarantines a row outside them (a row's
# problem), and the canonical / transactions suites check them again (then only a bypassed parse can fail).
EARLIEST_BOOKING = datetime(1990, 1, 1)
"""Nothing is booked before 1990: an earlier date is a parse error (two-digit year, epoch zero)."""
MAX_PLAUSIBLE_AMOUNT = Decimal("1000000000")
"""Exclusive bound on |amount| in the row's currency units: one transaction of a billion or more on a
personal / SME statement is a broken export (a shifted decimal, an account number in the amount column)."""


@dataclass(frozen=True)
class Column:
    name: str
    dtype: PolarsDataType
    sql: str
    description: str
    nullable: bool = True
    unit: str = ""


@dataclass(frozen=True)
class Table:
    name: str
    description: str
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()
    index_primary_key: bool = True
    """Declare the key to DuckDB (an ART index checks it on every insert). Off for the fact table: an ART
    index must fit in memory and made inserting 10M rows 2.6x slower; the key is unique by construction
    (deduplicated ingest) and checked by the table's blocking GX expectation every run."""
    account_scoped: bool = True
    """Rows belong to one account (`account_id`): an incremental run replaces them per account."""
    append_only: bool = False
    """Rows are history (runs, files, results): never replaced, only appended."""
    notes: tuple[str, ...] = field(default_factory=tuple)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def polars_schema(self) -> pl.Schema:
        return pl.Schema({c.name: c.dtype for c in self.columns})

    @property
    def required(self) -> list[str]:
        return [c.name for c in self.columns if not c.nullable]

    def ddl(self) -> str:
        cols = ",\n  ".join(f'"{c.name}" {c.sql}{"" if c.nullable else " NOT NULL"}' for c in self.columns)
        pk = f",\n  PRIMARY KEY ({', '.join(self.primary_key)})" if self.primary_key and self.index_primary_key else ""
        return f'CREATE TABLE IF NOT EXISTS "{self.name}" (\n  {cols}{pk}\n)'

    def conform(self, frame: pl.LazyFrame | pl.DataFrame) -> pl.LazyFrame:
        """Select exactly this table's columns, in order, cast to the contract types.

        A missing nullable column is added as nulls; a missing required column is a programming error.
        """
        lf = frame.lazy()
        present = set(lf.collect_schema().names())
        missing = [c for c in self.required if c not in present]
        if missing:
            raise ValueError(f"{self.name}: required columns missing from frame: {missing}")
        return lf.select(
            [(pl.col(c.name) if c.name in present else pl.lit(None)).cast(c.dtype).alias(c.name) for c in self.columns]
        )

    def empty(self) -> pl.DataFrame:
        return pl.DataFrame(schema=self.polars_schema)


def col(
    name: str, dtype: PolarsDataType, sql: str, description: str, *, nullable: bool = True, unit: str = ""
) -> Column:
    return Column(name, dtype, sql, description, nullable, unit)


def money(name: str, description: str, *, nullable: bool = False) -> Column:
    return Column(name, MONEY, MONEY_SQL, description, nullable, "currency units (exact, 2 decimals)")


def count(name: str, description: str) -> Column:
    return Column(name, pl.Int64, "BIGINT", description, False, "count")


def ratio(name: str, description: str, *, nullable: bool = True) -> Column:
    return Column(name, pl.Float64, "DOUBLE", description, nullable, "ratio")


def text(name: str, description: str, *, nullable: bool = True) -> Column:
    return Column(name, pl.String, "VARCHAR", description, nullable)


def month_col(description: str = "Calendar month (first day), local time.") -> Column:
    return Column("month_on", pl.Date, "DATE", description, False)


ACCOUNT_ID = text("account_id", "Account identifier as given by the bank export.", nullable=False)
RUN_ID = text("run_id", "Pipeline run that produced the row.", nullable=False)
EVIDENCE = Column("evidence_txn_ids", pl.List(pl.String), "VARCHAR[]", "Transaction ids that prove the row.", False)

# ---------------------------------------------------------------------------------------------------
# Canonical input: the columns a canonical CSV / Parquet export may carry, before any parsing.
CANONICAL_INPUT_COLUMNS = (
    "account_id",
    "txn_id",
    "booked_at",
    "amount",
    "currency",
    "balance_after",
    "counterparty_name",
    "counterparty_account",
    "description",
    "channel",
)
CANONICAL_REQUIRED_INPUT = ("account_id", "booked_at", "amount")

CANONICAL_TRANSACTION = Table(
    "canonical_transactions",
    "One row per unique bank transaction, parsed and typed (the ingest output, before classification).",
    (
        text(
            "txn_id",
            "Stable id: the bank's id (prefixed by account) or a hash of the identifying fields "
            "and the ordinal among identical rows of the same day.",
            nullable=False,
        ),
        ACCOUNT_ID,
        col(
            "booked_at",
            TIMESTAMP,
            "TIMESTAMP",
            "Booking time, bank local time (date-only exports: 00:00).",
            nullable=False,
        ),
        money("amount", "Signed amount: + money in, - money out."),
        text("currency", "ISO 4217 code (default CNY).", nullable=False),
        money("balance_after", "Balance after the transaction, as the bank states it.", nullable=True),
        text("counterparty_name", "Counterparty name (对方户名)."),
        text("counterparty_account", "Counterparty account number (对方账号)."),
        text("description", "Memo / 摘要 / 附言."),
        text("channel", "Channel (网银, ATM, POS, ...)."),
        text(
            "flow_tag",
            "The export's own mark of a neutral row, neither income nor spending (Alipay/JD 不计收支, WeChat '/'), "
            "as written; such a row is txn_class neutral and counts in no inflow, outflow or income total. "
            "Null for every other row (and for canonical files).",
        ),
        text("source_file", "File name the row came from.", nullable=False),
        count("source_row", "1-based data row number in the source file (header excluded)."),
        text("batch_id", "Ingest batch (one per run).", nullable=False),
    ),
    primary_key=("txn_id",),
)

TRANSACTIONS = Table(
    "transactions",
    "Canonical transactions plus their classification. One row per unique bank transaction.",
    CANONICAL_TRANSACTION.columns
    + (
        col("booked_on", pl.Date, "DATE", "Local booking date.", nullable=False),
        text("customer_id", "Customer owning the account (accounts.csv); the account id when unknown.", nullable=False),
        text("txn_class", f"Classification: {one_of(TXN_CLASSES)}.", nullable=False),
        text("related_relation", "Relation of the counterparty when related (self, spouse, family, own_account, ...)."),
        text("lender_id", "Lender registry id (liushui/reference/lenders.yaml) when the row is a loan event."),
        text("lender_category", f"Registry category: {one_of(LENDER_CATEGORIES)}."),
        text("loan_role", f"{one_of(LOAN_ROLES)} (from registry keywords)."),
        col("is_clean_income", pl.Boolean, "BOOLEAN", "Counts as earned income (clean income).", nullable=False),
        text(
            "counterparty_account_id",
            "The account of the batch on the other side of the transfer, when resolved uniquely "
            "(transforms.counterparty); null otherwise.",
        ),
        text(
            "counterparty_resolution",
            f"How counterparty_account_id was resolved: "
            f"{one_of(COUNTERPARTY_RESOLUTIONS, COUNTERPARTY_RESOLUTION_MEANINGS)}; null when unresolved.",
        ),
    ),
    primary_key=("txn_id",),
    index_primary_key=False,
)

QUARANTINE = Table(
    "quarantine",
    "Input rows that could not become transactions: file, row, raw content and reason.",
    (
        text("source_file", "File name.", nullable=False),
        count("source_row", "1-based data row number in the file (header excluded)."),
        text("raw", "The raw row content as read (cells joined by ',').", nullable=False),
        text("reason_code", f"Machine code: {one_of(QUARANTINE_REASON_CODES)}.", nullable=False),
        text("reason", "Human readable reason naming the column and value.", nullable=False),
        text("batch_id", "Ingest batch.", nullable=False),
        text("file_sha256", "Content hash of the file.", nullable=False),
    ),
    primary_key=("file_sha256", "source_row"),
    account_scoped=False,
    append_only=True,
)

SOURCE_FILES = Table(
    "source_files",
    "Every file the pipeline has seen, with its outcome.",
    (
        text("file_sha256", "SHA-256 of the file content.", nullable=False),
        text("file_name", "File name (as found in the inbox).", nullable=False),
        text("profile", "Layout profile used (canonical, icbc_debit, ...).", nullable=True),
        col("size_bytes", pl.Int64, "BIGINT", "File size.", nullable=False, unit="bytes"),
        count("rows_read", "Data rows read."),
        count("rows_ok", "Rows that became (or already were) transactions."),
        count("rows_duplicate", "Rows that duplicated a transaction already known (counted in rows_ok)."),
        count("rows_rejected", "Rows sent to quarantine."),
        text("status", f"{one_of(FILE_STATUSES, FILE_STATUS_MEANINGS)}.", nullable=False),
        text("error", "Whole-file error message."),
        text("batch_id", "Batch that first saw the file.", nullable=False),
        col("seen_at", TIMESTAMP, "TIMESTAMP", "When the file was processed (UTC).", nullable=False),
    ),
    primary_key=("file_sha256", "batch_id"),
    account_scoped=False,
    append_only=True,
)

ACCOUNT_MONTHS = Table(
    "account_months",
    "One row per account per covered month: flows, clean income, related and large flows, balances.",
    (
        ACCOUNT_ID,
        month_col(),
        text("currency", "Currency of the figures (figures are per currency, never added across).", nullable=False),
        col(
            "is_main_currency",
            pl.Boolean,
            "BOOLEAN",
            "The account's main currency (most transactions); only main-currency months are judged.",
            nullable=False,
        ),
        col(
            "is_full_month",
            pl.Boolean,
            "BOOLEAN",
            "Month fully covered by the statement and before the as-of month; only full months are judged.",
            nullable=False,
        ),
        count("covered_days", "Days of the month inside the account's statement coverage."),
        count("txn_count", "Transactions in the month."),
        money("inflow", "Sum of positive amounts."),
        money("outflow", "Sum of negative amounts, as a positive number."),
        money(
            "clean_income",
            "Inflow that is earned: minus own/related transfers, loan disbursements, "
            "refunds/reversals and inbound legs of round trips.",
        ),
        money("related_in", "Inflow from own accounts or related parties."),
        money("related_out", "Outflow to own accounts or related parties."),
        count("related_out_count", "Outflows to own accounts or related parties."),
        money("loan_disbursed", "Loan disbursements received."),
        money("loan_repaid", "Loan repayments paid."),
        count("large_outflow_count", "Outflows flagged as large."),
        money("large_outflow_sum", "Sum of flagged large outflows."),
        money("closing_balance", "Last stated balance in the month (statement order).", nullable=True),
        ratio(
            "income_cv",
            "Coefficient of variation of clean income over the trailing window; null when "
            "fewer months than the minimum.",
        ),
        ratio(
            "income_swing_share",
            "Share of window months whose clean income moved >= the swing threshold against the previous month.",
        ),
        count("window_months", "Full months in the trailing window used for income_cv."),
        count("income_history_months", "Full months before this one in the window (the base of typical_income)."),
        money(
            "typical_income",
            "Mean clean income of the previous full months in the window, the best month left out (the base for "
            "large-outflow limits).",
            nullable=True,
        ),
        ratio("related_out_share", "related_out / outflow."),
        ratio("debt_burden", "loan_repaid / clean_income (null when clean income is 0)."),
        # credit (transforms.credit)
        count("lenders_active_30d", "Distinct lenders with loan activity in the 30 days to month end."),
        count("lenders_active_90d", "Distinct lenders with loan activity in the 90 days to month end."),
        count("lenders_active_180d", "Distinct lenders with loan activity in the 180 days to month end."),
        count(
            "lenders_active_judged",
            "Distinct lenders active in the window MULTI_LENDER judges (multi_lender.judged_window_days) to month end.",
        ),
        count("new_lenders", "Lenders first seen in this month (within the statement)."),
        count("disbursement_count", "Loan disbursements received in the month."),
        ratio("loan_share_of_inflow", "loan_disbursed / inflow."),
        ratio(
            "loan_share_trailing",
            "loan_disbursed / inflow over the borrowing.window_months months ending at this full month, all full "
            "(CASH_LOAN_RELIANCE's figure); null otherwise.",
        ),
        count(
            "penalty_count",
            "Penalty interest / late fee rows paid (罚息, 逾期, 滞纳金, 违约金, late fee); not a prepayment fee "
            "(提前还款违约金) nor a waived / penalty-free mention.",
        ),
        money("penalty_amount", "Penalties paid, as a positive number."),
        count("failed_debit_count", "Failed or returned debits (扣款失败, 余额不足, 退票, NSF, returned item)."),
        count("collection_count", "Payments marked as debt collection (催收, debt collection)."),
        # balances (transforms.balances)
        count(
            "negative_balance_days",
            "Calendar days ending with a negative balance: each day's last stated balance, carried over days "
            "without one (as Plaid counts days with a negative balance).",
        ),
        count("low_balance_days", "Calendar days ending below overdrawn.low_balance_limit (negative days included)."),
        money(
            "avg_daily_balance",
            "Mean of the days' ending balances (carried over days without one); null without a stated balance.",
            nullable=True,
        ),
        money(
            "min_daily_balance",
            "Lowest ending balance of the month's days (carried over days without one); null without a stated balance.",
            nullable=True,
        ),
        money(
            "max_daily_balance",
            "Highest ending balance of the month's days (carried over days without one); null without a stated "
            "balance.",
            nullable=True,
        ),
        ratio(
            "debt_burden_trailing",
            "Loan repayments / clean income over the trailing full months "
            "(debt_burden.trailing_months); null when clean income is below the minimum.",
        ),
        # commingling (transforms.commingling)
        count("business_in_count", "Payments in from companies (business counterparties)."),
        money("business_in", "Sum of payments in from companies."),
        count("business_out_count", "Payments out to companies / suppliers (货款, 采购)."),
        money("business_out", "Sum of payments out to companies / suppliers."),
        ratio("business_in_share", "business_in / inflow (null for business accounts: not judged)."),
        # statement integrity (transforms.integrity)
        count("balance_breaks", "Running-balance breaks found in the month."),
    ),
    primary_key=("account_id", "month_on", "currency"),
)

INCOME_STREAMS = Table(
    "income_streams",
    "One row per account, currency and income source paying clean income at least income_streams.min_payments "
    "times in at least income_streams.min_months distinct months: cadence, regularity, amounts and status as of "
    "the run's as-of date (transforms.income_streams).",
    (
        ACCOUNT_ID,
        text("currency", "Currency of the payments and amounts.", nullable=False),
        text(
            "source_key",
            "The source as compared: the payer's name (NFKC, lower case, without spaces, punctuation and company "
            "suffixes such as 有限公司, (中国), 分公司), else the batch account it resolved to, else its number.",
            nullable=False,
        ),
        text("source_name", "The payer's name as the latest payment shows it."),
        text("counterparty_account_id", "The batch account the payments resolved to, when any did."),
        text("kind", f"{one_of(STREAM_KINDS)} when most payments are of class salary; null otherwise."),
        text("cadence", f"{one_of(STREAM_CADENCES, STREAM_CADENCE_MEANINGS)}.", nullable=False),
        col(
            "median_gap_days",
            pl.Float64,
            "DOUBLE",
            "Median days between consecutive payment days.",
            nullable=False,
            unit="days",
        ),
        col(
            "typical_day_of_month",
            pl.Int64,
            "BIGINT",
            "Monthly streams: the median day of the month of the payments (a salary around the 10th: 10).",
            unit="day",
        ),
        count(
            "expected_periods",
            "Periods (pay months of a monthly stream, cadence intervals of a weekly or biweekly one) from the first "
            "payment's to the judged date's, the current one counted only when paid; 0 when irregular.",
        ),
        count("paid_periods", "Of those, periods with at least one payment."),
        ratio("regularity_share", "paid_periods / expected_periods (null when irregular)."),
        ratio("amount_cv", "Coefficient of variation (population) of the period amounts."),
        col("first_seen_on", pl.Date, "DATE", "First payment (local date).", nullable=False),
        col("last_seen_on", pl.Date, "DATE", "Last payment (local date).", nullable=False),
        count("payments_count", "Clean-income payments from the source."),
        money(
            "typical_amount",
            "Median period amount (a monthly stream's months summed; the lower median of an even count, exact) over "
            "the judged periods (a monthly stream's partial as-of month is shown, never judged).",
        ),
        money("last_amount", "Amount of the last judged period (a monthly stream: its last full month's payments)."),
        money("recent_amount", "Mean of the last income_streams.fall_periods judged period amounts."),
        col(
            "expected_next_on",
            pl.Date,
            "DATE",
            "When the next payment is due: a monthly stream's typical day of the month after the last payment (the "
            "month's last day when shorter), else the last payment + the cadence (irregular: + the median gap).",
            nullable=False,
        ),
        col(
            "judged_on",
            pl.Date,
            "DATE",
            "The date the status is judged at: the as-of date, or the end of the account's statement when earlier "
            "(months after it are unknown, not months without pay).",
            nullable=False,
        ),
        count("missed_payments", "Expected payments after the last one whose date + income_streams.grace_days passed."),
        ratio(
            "trailing_share",
            "The stream's share of the account's clean income in this currency over the income_streams."
            "share_window_months full months before the judged month (null without clean income there).",
        ),
        col(
            "is_replaced",
            pl.Boolean,
            "BOOLEAN",
            "Another source took its place: the account's clean income in the full months of that window after the "
            "last payment's month averages at least income_streams.fall_share of the months up to it (a new "
            "employer); a stopped stream so replaced is not INCOME_STOPPED.",
            nullable=False,
        ),
        text("status", f"{one_of(STREAM_STATUSES, STREAM_STATUS_MEANINGS)}.", nullable=False),
        Column("payment_txn_ids", pl.List(pl.String), "VARCHAR[]", "The stream's payments (transactions).", False),
    ),
    primary_key=("account_id", "currency", "source_key"),
)

TRANSFER_LINKS = Table(
    "transfer_links",
    "Pairs or chains of transactions that belong together: round trips, both legs of a transfer inside "
    "the batch, related transfers, borrow-to-repay, cycles.",
    (
        text("link_id", "Stable id of the link.", nullable=False),
        text("link_type", f"{one_of(LINK_TYPES, LINK_TYPE_MEANINGS)}.", nullable=False),
        ACCOUNT_ID,
        text("out_txn_id", "First (outgoing / disbursement) transaction.", nullable=False),
        text("in_txn_id", "Second transaction (returning / repayment / other leg).", nullable=False),
        money("amount_out", "Absolute amount of the first transaction."),
        money("amount_in", "Absolute amount of the second transaction."),
        col("days_apart", pl.Int64, "BIGINT", "Days between the two transactions.", nullable=False, unit="days"),
        text("counterparty", "Party the money went to and came back from (or lender pair)."),
        text("chain_id", "Cycles: the id shared by every hop of one chain (A->B->C->A)."),
        col("chain_length", pl.Int64, "BIGINT", "Cycles: accounts in the chain.", unit="count"),
        EVIDENCE,
    ),
    primary_key=("link_id",),
)

RISK_FLAGS = Table(
    "risk_flags",
    "One row per flag code x account x currency x period: metric, threshold, severity, rule version, reasons, "
    "remediation and evidence.",
    (
        text(
            "flag_id",
            "Stable id: hash of the flag code and the key the rule is judged on (account, currency, period; for a "
            "rule that publishes episodes, account, currency and the episode's first month, so that the id stays "
            "when the episode grows).",
            nullable=False,
        ),
        ACCOUNT_ID,
        text(
            "currency",
            "Currency the rule judged in (ISO 4217): money in metric_value, threshold and the reasons is in it. "
            "No rule judges across currencies, because money is never added or compared across them: the rules "
            "on monthly figures (income, related transfers, credit, commingling) judge only the account's main "
            "currency; LARGE_OUTFLOW, ROUND_TRIP, BALANCE_BREAK and CYCLE judge each currency on its own, one "
            "flag per currency.",
            nullable=False,
        ),
        text(
            "flag_code",
            "Rule code, one per rule of the rule registry (`transforms.registry.RULES`; the README's rule table), "
            "e.g. INCOME_VOLATILE, MULTI_LENDER (多头借贷), BORROW_TO_REPAY (以贷养贷).",
            nullable=False,
        ),
        col(
            "period_start_on",
            pl.Date,
            "DATE",
            "First day of the judged period (of an episode: of its first month's trailing window).",
            nullable=False,
        ),
        col(
            "period_end_on",
            pl.Date,
            "DATE",
            "Last day of the judged period (of an episode: of its last month).",
            nullable=False,
        ),
        ratio("metric_value", "Value of the metric the rule judged (of an episode: its peak month's).", nullable=False),
        ratio("threshold", "Threshold the metric crossed.", nullable=False),
        text("limit_name", "Which limit fired (e.g. relative_to_income, absolute_floor).", nullable=False),
        text("severity", f"{one_of(SEVERITIES)}.", nullable=False),
        text("rule_version", "Version of the rule (config).", nullable=False),
        text("reason_zh", "Explanation in Chinese.", nullable=False),
        text("reason_en", "Explanation in English.", nullable=False),
        text("remediation_zh", "What would have to change (Chinese).", nullable=False),
        text("remediation_en", "What would have to change (English).", nullable=False),
        EVIDENCE,
    ),
    primary_key=("flag_id",),
)

ACCOUNT_RISK = Table(
    "account_risk",
    "One row per account: its customer, risk score from the active flags, band, recovery status, trends, and what "
    "would have to change by when.",
    (
        ACCOUNT_ID,
        text(
            "customer_id",
            "Customer owning the account (accounts.csv); the account id when the reference data does not name one. "
            "A customer's accounts share it: group by it for the customer's view.",
            nullable=False,
        ),
        text("holder_name", "Account holder name (accounts.csv); null when the reference data does not name one."),
        text("currency", "The account's main currency (the one judged).", nullable=False),
        col("as_of_on", pl.Date, "DATE", "As-of date the status refers to.", nullable=False),
        ratio(
            "score",
            "0-100: sum of the active flag codes' weights (high severity x multiplier), capped.",
            nullable=False,
        ),
        text("band", f"{one_of(RISK_BANDS)} (config account_risk.bands).", nullable=False),
        text("score_components_json", "Points per active flag code (JSON object).", nullable=False),
        Column("active_flags", pl.List(pl.String), "VARCHAR[]", "Flag codes active in the lookback window.", False),
        count("active_flag_count", "Active flag rows in the lookback window (an episode is one)."),
        text("statement_trust", f"{one_of(STATEMENT_TRUST_LEVELS, STATEMENT_TRUST_MEANINGS)}.", nullable=False),
        text("recovery_status", f"{one_of(RECOVERY_STATUSES, RECOVERY_STATUS_MEANINGS)}.", nullable=False),
        col("last_severe_on", pl.Date, "DATE", "End of the last period with a severe (high) flag."),
        col(
            "months_since_severe",
            pl.Int64,
            "BIGINT",
            "Clean months since the last severe flag: full, covered months after its month up to the last full month "
            "(a month outside the statement is unknown, never clean).",
            unit="months",
        ),
        count("history_months", "Full, covered months of the main currency up to the last full month."),
        money("clean_income_last", "Clean income of the last full month.", nullable=True),
        ratio(
            "clean_income_trend_pct",
            "Slope of clean income over the last 6 full months, % of their mean per month (+ rising).",
        ),
        ratio("debt_burden_last", "Debt burden (trailing) of the last full month."),
        ratio("debt_burden_trend", "Slope of the trailing debt burden over the last 6 full months, per month."),
        Column(
            "remediation_zh",
            pl.List(pl.String),
            "VARCHAR[]",
            "What would restore the account, one item per active flag code (the order of active_flags): the rule's "
            "remediation with today's value and its month, the target, clean months so far and still needed, the "
            "date it stops counting and the points it adds (Chinese).",
            False,
        ),
        Column("remediation_en", pl.List(pl.String), "VARCHAR[]", "The same in English.", False),
        Column(
            "recovery_now",
            pl.List(pl.Float64),
            "DOUBLE[]",
            "Per active flag code (the order of active_flags): today's value, the rule's figure on the latest window "
            "it judges (account_months: the as-of month so far for rules judging a month's events or shares, else "
            "the last full month; for other rules the metric of its flag in the last full month or later); null "
            "when not known (the rule did not fire since and its figure is not a month column).",
            False,
        ),
        Column(
            "recovery_now_month_on",
            pl.List(pl.Date),
            "DATE[]",
            "Per active code: the month (first day) today's value is measured in (the as-of month: so far); null "
            "with the value.",
            False,
        ),
        Column(
            "recovery_target", pl.List(pl.Float64), "DOUBLE[]", "Per active code: the threshold to get under.", False
        ),
        Column(
            "recovery_clean_months",
            pl.List(pl.Int64),
            "BIGINT[]",
            "Per active code: full, covered months since its last flag's month.",
            False,
        ),
        Column(
            "recovery_months_needed",
            pl.List(pl.Int64),
            "BIGINT[]",
            "Per active code: months still needed without the flag before it stops counting.",
            False,
        ),
        Column(
            "recovery_clears_on",
            pl.List(pl.Date),
            "DATE[]",
            "Per active code: the first as-of date on which its last flag no longer counts (lookback_months later).",
            False,
        ),
        Column(
            "recovery_points",
            pl.List(pl.Float64),
            "DOUBLE[]",
            "Per active code: the points it adds to the score (its weight, x high_multiplier when high; the score "
            "is their sum, capped at 100).",
            False,
        ),
        col(
            "clears_on",
            pl.Date,
            "DATE",
            "The first as-of date on which no flag active today counts any more (without new flags); null: none.",
        ),
        text("rule_version", "account_risk rule version.", nullable=False),
    ),
    primary_key=("account_id",),
)

DQ_RESULTS = Table(
    "dq_results",
    "Every expectation of every run: suite, expectation, blocking or warning, outcome.",
    (
        RUN_ID,
        text("suite", "Suite name (one per table).", nullable=False),
        text("table_name", "Table validated.", nullable=False),
        text("expectation", "Expectation type.", nullable=False),
        text("column_name", "Column, if any."),
        text("kwargs_json", "Expectation arguments (JSON).", nullable=False),
        text("level", f"{one_of(DQ_LEVELS)}.", nullable=False),
        col("success", pl.Boolean, "BOOLEAN", "Did the expectation hold.", nullable=False),
        col("unexpected_count", pl.Int64, "BIGINT", "Rows violating it, when known.", unit="count"),
        count("element_count", "Rows validated."),
        text("detail", "Observed value / sample of unexpected values."),
        col("validated_at", TIMESTAMP, "TIMESTAMP", "When (UTC).", nullable=False),
    ),
    primary_key=("run_id", "suite", "expectation", "kwargs_json"),
    account_scoped=False,
    append_only=True,
)

PIPELINE_RUNS = Table(
    "pipeline_runs",
    "One row per run: parameters, counts, stage timings, versions, status.",
    (
        RUN_ID,
        col("started_at", TIMESTAMP, "TIMESTAMP", "Start (UTC).", nullable=False),
        col("finished_at", TIMESTAMP, "TIMESTAMP", "End (UTC)."),
        text("status", f"{one_of(RUN_STATUSES)}.", nullable=False),
        text("mode", f"{one_of(RUN_MODES)}.", nullable=False),
        col("as_of_on", pl.Date, "DATE", "As-of date of the run.", nullable=False),
        text("parameters_json", "Run parameters (JSON).", nullable=False),
        text("counts_json", "Row counts per table and per stage (JSON).", nullable=False),
        text("stage_seconds_json", "Wall time per stage (JSON, seconds).", nullable=False),
        text("stage_peak_rss_mb_json", "Peak resident memory after each stage (JSON, MiB).", nullable=False),
        text("versions_json", "Library and rule versions (JSON).", nullable=False),
        text(
            "config_sha256", "Hash of rules config + reference data; a change forces a full recompute.", nullable=False
        ),
        text("message", "Summary or error message."),
        text(
            "warnings_json",
            "What the run could not judge, as a JSON list of lines: reference data missing for some rules "
            "(null for runs before this column).",
        ),
    ),
    primary_key=("run_id",),
    account_scoped=False,
    append_only=True,
)

FLAG_DECISION_KINDS = ("confirm", "dismiss")
"""`flag_decisions.decision` (transforms.decisions: what each does to the score)."""

FLAG_DECISIONS = Table(
    "flag_decisions",
    "Analysts' decisions on flags (liushui decide): one row per decision, never changed or removed; a flag's latest "
    "decision is the one in force. Carried forward by every publish (docs/decisions.md).",
    (
        text("decision_id", "Id of the decision (random).", nullable=False),
        col("decided_at", TIMESTAMP, "TIMESTAMP", "When it was recorded (UTC).", nullable=False),
        text("decided_by", "Who decided, as they gave their name (--by).", nullable=False),
        text("note", "Why (--note).", nullable=False),
        text(
            "decision",
            f"{one_of(FLAG_DECISION_KINDS)}: a dismissed flag does not count in account_risk while its evidence is "
            "the one decided on; a confirmation changes no score.",
            nullable=False,
        ),
        text("flag_id", "The flag decided on (risk_flags.flag_id).", nullable=False),
        ACCOUNT_ID,
        text("flag_code", "The flag's code when decided.", nullable=False),
        ratio("metric_value", "The flag's metric when decided.", nullable=False),
        Column(
            "evidence_txn_ids",
            pl.List(pl.String),
            "VARCHAR[]",
            "The flag's evidence transactions when decided.",
            False,
        ),
        text(
            "evidence_sha256",
            "Fingerprint of the flag's evidence when decided: SHA-256 over the metric in millionths and the sorted "
            "evidence ids (transforms.decisions); a flag whose fingerprint differs now has new evidence, and a "
            "dismissal of it no longer applies.",
            nullable=False,
        ),
    ),
    primary_key=("decision_id",),
    account_scoped=False,
    append_only=True,
)

PUBLISHED_TABLES: tuple[Table, ...] = (
    TRANSACTIONS,
    QUARANTINE,
    SOURCE_FILES,
    ACCOUNT_MONTHS,
    INCOME_STREAMS,
    TRANSFER_LINKS,
    RISK_FLAGS,
    ACCOUNT_RISK,
    DQ_RESULTS,
    PIPELINE_RUNS,
    FLAG_DECISIONS,
)

# Reference inputs -----------------------------------------------------------------------------------
ACCOUNTS_REF = Table(
    "accounts",
    "Reference: account ownership (data/reference/accounts.csv).",
    (
        ACCOUNT_ID,
        text("customer_id", "Customer.", nullable=False),
        text("holder_name", "Account holder name."),
        text("account_type", f"{one_of(ACCOUNT_TYPES, ACCOUNT_TYPE_MEANINGS)}."),
        text("account_number", "Optional: the bank's card or account number, as counterparties' statements show it."),
        text("aliases", "Optional: further numbers of the account (old cards, sub-accounts), separated by ';'."),
    ),
    primary_key=("account_id",),
)

FX_RATES_REF = Table(
    "fx_rates",
    "Reference, optional: conversion rates to CNY (data/reference/fx_rates.csv), used to compare the amounts of "
    "a transfer that changes currency (cycles, mirrored legs).",
    (
        text("currency", "ISO 4217 code.", nullable=False),
        col("rate_to_cny", pl.Float64, "DOUBLE", "CNY for one unit of the currency.", nullable=False),
        col("valid_from", pl.Date, "DATE", "Optional: first day the rate applies (until the next one)."),
    ),
    account_scoped=False,
)

RELATED_PARTIES_REF = Table(
    "related_parties",
    "Reference: declared related parties per customer (data/reference/related_parties.csv).",
    (
        text("customer_id", "Customer.", nullable=False),
        text("party_name", "Related party name."),
        text("party_account", "Related party account number."),
        text("relation", "spouse, shareholder, legal_representative, family, self, ...", nullable=False),
    ),
    account_scoped=False,
)


def table(name: str) -> Table:
    for t in PUBLISHED_TABLES:
        if t.name == name:
            return t
    raise KeyError(name)
