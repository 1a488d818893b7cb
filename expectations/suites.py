"""Great Expectations suites, one per table, declared in code next to the contracts they guard.

A suite is a list of `Check`s: a Great Expectations 1.x expectation instance plus a level,
``blocking`` (a failure stops the publish) or ``warning`` (recorded in ``dq_results``, nothing stops).

The generic part of every suite is derived from the table's contract (`liushui.contracts`) by
`contract_checks`: the column set, not-null for every non-nullable column, uniqueness of the primary key.
Business expectations are added per table below.

GX runs on pandas and knows nothing about Polars Decimal or List columns, so the suites speak about
*GX columns*: a source column as is, or a `Derived` column computed by Polars before the frame is handed
to GX (see `expectations.runner`):

* every Decimal (money) column ``x`` is checked as ``x_cents`` (Int64, exact integer minor units);
* every List column ``x`` is checked as ``x_count`` (Int64 list length, null stays null);
* business derivations (``month_on_day``, ``rows_unaccounted``, ...) are declared per suite.

The source data is never changed. ``import great_expectations`` takes seconds, so nothing here imports it
at module import time: suites are built on first use (`suite_for`, `ALL_SUITES`) and cached.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import polars as pl

from liushui import contracts
from liushui.contracts import EARLIEST_BOOKING, MAX_PLAUSIBLE_AMOUNT, Table
from liushui.vocabularies import (
    DQ_LEVELS,
    FILE_STATUSES,
    ISO_4217,
    LINK_TYPES,
    QUARANTINE_REASON_CODES,
    RECOVERY_STATUSES,
    RISK_BANDS,
    RUN_MODES,
    RUN_STATUSES,
    SEVERITIES,
    STATEMENT_TRUST_LEVELS,
    STREAM_CADENCES,
    STREAM_KINDS,
    STREAM_STATUSES,
    TXN_CLASSES,
    DqLevel,
)
from transforms.registry import FLAG_CODE_PATTERN, FLAG_CODES

if TYPE_CHECKING:  # pragma: no cover
    from great_expectations.expectations.expectation import Expectation

# Suite parameters (GX ``{"$PARAMETER": name}``), supplied by the runner at validation time.
PARAM_BOOKED_AT_MAX = "booked_at_max"
"""as-of date + 1 day, 00:00 (naive local time): nothing can be booked after the end of the as-of day."""

# EARLIEST_BOOKING and MAX_PLAUSIBLE_AMOUNT are declared in liushui.contracts: parse quarantines the rows outside
# them, these suites check them again.
MAX_PLAUSIBLE_AMOUNT_CENTS = int(MAX_PLAUSIBLE_AMOUNT * 100) - 1  # |amount| below one billion, in cents

# A night with mostly bad rows is the table's problem (blocking on source_files); see `_source_files`.
MAX_QUARANTINED_SHARE = 0.5
"""More than this share of the night's rows read quarantined blocks the publish."""
MIN_ROWS_FOR_QUARANTINED_SHARE = 20
"""... once the night has read at least this many rows (below, a share of a handful of rows is noise)."""

# Vocabularies ------------------------------------------------------------------------------------------
# Declared once: the published enums in `liushui.vocabularies`, the flag codes in the rule registry
# (`transforms.registry`). Values a writer derives (classes, link types, flag codes, quarantine reason codes)
# are checked as a *warning*: a value outside the vocabulary means code wrote something never declared, worth
# seeing but not worth stopping a night for. The others are part of the published interface (dashboards
# filter on them): blocking.

SHA256_REGEX = r"^[0-9a-f]{64}$"

# Expectations that look only at the column names: the runner checks them against a zero-row frame with the
# source frame's columns (the data frame GX sees holds only the derived / needed columns).
SCHEMA_EXPECTATIONS = frozenset(
    {
        "expect_table_columns_to_match_set",
        "expect_table_columns_to_match_ordered_list",
        "expect_table_column_count_to_equal",
        "expect_table_column_count_to_be_between",
        "expect_column_to_exist",
    }
)
_COLUMN_KWARGS = ("column", "column_A", "column_B")
_COLUMN_LIST_KWARGS = ("column_list",)


# Building blocks ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Derived:
    """A column computed (by Polars, from the source frame) only for validation."""

    name: str
    expr: pl.Expr
    sources: tuple[str, ...]
    description: str
    whole_table: bool = False
    """The value depends on the whole table (an aggregate), not on its row alone: a table held in several
    parts cannot be validated part by part (`runner.validate_parts` refuses)."""


@dataclass(frozen=True)
class Check:
    """One expectation and what a failure means."""

    expectation: Expectation
    level: DqLevel
    why: str = ""

    def __post_init__(self) -> None:
        if self.level not in DQ_LEVELS:
            raise ValueError(f"level must be one of {DQ_LEVELS}, got {self.level!r}")

    @property
    def expectation_type(self) -> str:
        """Snake-case type, e.g. ``expect_column_values_to_not_be_null``."""
        return self.expectation.expectation_type

    @property
    def kwargs(self) -> dict[str, Any]:
        kw = dict(self.expectation.configuration.kwargs)
        kw.pop("batch_id", None)
        return kw

    @property
    def kwargs_json(self) -> str:
        return json.dumps(self.kwargs, sort_keys=True, default=str, ensure_ascii=False)

    @property
    def gx_columns(self) -> tuple[str, ...]:
        """Columns of the GX frame this expectation reads (empty for table-level expectations)."""
        kw = self.kwargs
        cols: list[str] = [kw[k] for k in _COLUMN_KWARGS if isinstance(kw.get(k), str)]
        for k in _COLUMN_LIST_KWARGS:
            if isinstance(kw.get(k), list):
                cols.extend(kw[k])
        return tuple(cols)

    @property
    def is_schema_check(self) -> bool:
        return self.expectation_type in SCHEMA_EXPECTATIONS


@dataclass(frozen=True)
class Suite:
    name: str
    table: Table
    checks: tuple[Check, ...]
    derived: tuple[Derived, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        keys = [(c.expectation_type, c.kwargs_json) for c in self.checks]
        dupes = {k for k in keys if keys.count(k) > 1}
        if dupes:
            # GX suites are set-like and would silently drop the duplicate: one check = one result row.
            raise ValueError(f"suite {self.name}: duplicate expectations {sorted(dupes)}")
        names = [d.name for d in self.derived]
        if len(set(names)) != len(names):
            raise ValueError(f"suite {self.name}: duplicate derived columns {names}")
        clash = set(names) & set(self.table.names)
        if clash:
            raise ValueError(f"suite {self.name}: derived columns shadow table columns {sorted(clash)}")

    @property
    def table_name(self) -> str:
        return self.table.name

    def derived_column(self, name: str) -> Derived | None:
        for d in self.derived:
            if d.name == name:
                return d
        return None

    def source_columns(self, gx_column: str) -> tuple[str, ...]:
        """The table columns a GX column is computed from (itself when not derived)."""
        d = self.derived_column(gx_column)
        return d.sources if d is not None else (gx_column,)

    def column_name(self, check: Check) -> str | None:
        """What ``dq_results.column_name`` reports: the source column(s) the check is about."""
        sources: list[str] = []
        for c in check.gx_columns:
            for s in self.source_columns(c):
                if s not in sources:
                    sources.append(s)
        return ",".join(sources) if sources else None

    @property
    def blocking(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.level == "blocking")

    @property
    def warnings(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.level == "warning")


def gx_column(table: Table, name: str) -> str:
    """The GX column that stands for table column `name`."""
    column = next(c for c in table.columns if c.name == name)
    if isinstance(column.dtype, pl.Decimal):
        return f"{name}_cents"
    if isinstance(column.dtype, pl.List):
        return f"{name}_count"
    return name


def contract_derived(table: Table) -> list[Derived]:
    """Decimal -> ``<name>_cents`` (exact Int64 minor units), List -> ``<name>_count``."""
    out: list[Derived] = []
    for c in table.columns:
        if isinstance(c.dtype, pl.Decimal):
            scale = c.dtype.scale or 0
            out.append(
                Derived(
                    gx_column(table, c.name),
                    (pl.col(c.name) * (10**scale)).cast(pl.Int64),
                    (c.name,),
                    f"{c.name} in integer minor units (x 10^{scale}, exact)",
                )
            )
        elif isinstance(c.dtype, pl.List):
            out.append(
                Derived(
                    gx_column(table, c.name),
                    pl.col(c.name).list.len().cast(pl.Int64),
                    (c.name,),
                    f"number of elements of {c.name} (null stays null)",
                )
            )
    return out


def contract_checks(table: Table) -> list[Check]:
    """The generic, contract-derived part of a suite (all blocking)."""
    import great_expectations as gx

    E: Any = gx.expectations
    checks = [
        Check(
            E.ExpectTableColumnsToMatchSet(column_set=table.names, exact_match=True),
            "blocking",
            "the frame has exactly the contract's columns",
        )
    ]
    checks += [
        Check(
            E.ExpectColumnValuesToNotBeNull(column=gx_column(table, name)),
            "blocking",
            f"{name} is required by the contract",
        )
        for name in table.required
    ]
    pk = [gx_column(table, n) for n in table.primary_key]
    if len(pk) == 1:
        checks.append(Check(E.ExpectColumnValuesToBeUnique(column=pk[0]), "blocking", "primary key"))
    elif pk:
        checks.append(Check(E.ExpectCompoundColumnsToBeUnique(column_list=pk), "blocking", "primary key"))
    return checks


# Business expectations per table ------------------------------------------------------------------------
def _E() -> Any:  # noqa: N802 - short alias for the GX expectations namespace
    import great_expectations as gx

    return gx.expectations


def _transaction_checks() -> list[Check]:
    """Shared by canonical_transactions and transactions."""
    E = _E()
    return [
        Check(
            E.ExpectColumnValuesToBeInSet(column="currency", value_set=list(ISO_4217)),
            "blocking",
            "ISO 4217 code (implies ^[A-Z]{3}$); an unknown code (e.g. RMB) would split an account's "
            "figures into a currency nobody judges",
        ),
        Check(
            E.ExpectColumnValuesToBeBetween(
                column="booked_at", min_value=EARLIEST_BOOKING, max_value={"$PARAMETER": PARAM_BOOKED_AT_MAX}
            ),
            "blocking",
            "booked between 1990-01-01 and the end of the as-of day: anything else is a parse "
            "error (day/month swapped, 2-digit years, epoch zero)",
        ),
        Check(
            E.ExpectColumnValuesToBeBetween(column="source_row", min_value=1),
            "blocking",
            "every row traces back to a 1-based data row of its file",
        ),
        Check(
            E.ExpectColumnValuesToBeBetween(
                column="amount_cents", min_value=-MAX_PLAUSIBLE_AMOUNT_CENTS, max_value=MAX_PLAUSIBLE_AMOUNT_CENTS
            ),
            "blocking",
            "one transaction of a billion or more on a personal / SME statement is a broken export (shifted "
            "decimal, account number in the amount column). That is the row's problem: parse quarantines it "
            "(implausible_amount) and the night publishes, so this fails only on rows that bypassed parse",
        ),
        Check(
            E.ExpectColumnValuesToNotBeInSet(column="amount_cents", value_set=[0]),
            "warning",
            "zero-amount rows exist in real exports (waived fees, 0.00 interest postings, authorisations): "
            "suspicious but legal",
        ),
    ]


def _canonical_transactions() -> tuple[list[Check], list[Derived]]:
    return _transaction_checks(), []


def _transactions() -> tuple[list[Check], list[Derived]]:
    E = _E()
    derived = [
        Derived(
            "booked_on_matches_booked_at",
            pl.col("booked_at").dt.date() == pl.col("booked_on"),
            ("booked_on", "booked_at"),
            "booked_on is the (local) date of booked_at",
        ),
        Derived(
            "clean_income_amount_cents",
            pl.when(pl.col("is_clean_income")).then((pl.col("amount") * 100).cast(pl.Int64)),
            ("amount", "is_clean_income"),
            "amount in cents of rows counted as clean income, else null",
        ),
    ]
    checks = _transaction_checks() + [
        Check(
            E.ExpectColumnValuesToBeInSet(column="booked_on_matches_booked_at", value_set=[True]),
            "blocking",
            "day boundaries are local: booked_on must be booked_at's date",
        ),
        Check(
            E.ExpectColumnValuesToBeBetween(column="clean_income_amount_cents", min_value=1),
            "blocking",
            "only money in can be clean income",
        ),
        Check(
            E.ExpectColumnValuesToBeInSet(column="txn_class", value_set=list(TXN_CLASSES)),
            "warning",
            "classification vocabulary (written by classify): declare a new class in liushui/vocabularies.py",
        ),
    ]
    return checks, derived


def _account_months() -> tuple[list[Check], list[Derived]]:
    E = _E()
    derived = [
        Derived("month_on_day", pl.col("month_on").dt.day().cast(pl.Int64), ("month_on",), "day of month of month_on"),
    ]
    between = E.ExpectColumnValuesToBeBetween
    pair_ge = E.ExpectColumnPairValuesAToBeGreaterThanB
    either = "either_value_is_missing"
    checks = [
        Check(E.ExpectColumnValuesToBeInSet(column="currency", value_set=list(ISO_4217)), "blocking", "ISO 4217 code"),
        Check(
            between(column="month_on_day", min_value=1, max_value=1),
            "blocking",
            "month_on is the first day of the month",
        ),
        Check(
            between(column="covered_days", min_value=1, max_value=31),
            "blocking",
            "a row exists only for a covered month",
        ),
        Check(between(column="inflow_cents", min_value=0), "blocking", "inflow is a sum of positive amounts"),
        Check(
            between(column="outflow_cents", min_value=0),
            "blocking",
            "outflow is a sum of negative amounts, stated positive",
        ),
        Check(between(column="clean_income_cents", min_value=0), "blocking", "clean income >= 0"),
        Check(
            pair_ge(column_A="inflow_cents", column_B="clean_income_cents", or_equal=True, ignore_row_if=either),
            "blocking",
            "clean income is a part of inflow",
        ),
        Check(between(column="income_cv", min_value=0), "blocking", "a coefficient of variation is >= 0"),
        Check(between(column="income_swing_share", min_value=0, max_value=1), "blocking", "a share"),
        Check(between(column="related_out_share", min_value=0, max_value=1), "blocking", "a share"),
        Check(between(column="txn_count", min_value=0), "blocking", "a count"),
        Check(between(column="window_months", min_value=0), "blocking", "a count"),
        Check(between(column="income_history_months", min_value=0), "blocking", "a count"),
        Check(between(column="debt_burden", min_value=0), "warning", "repayments / clean income"),
        Check(
            pair_ge(column_A="inflow_cents", column_B="related_in_cents", or_equal=True, ignore_row_if=either),
            "warning",
            "a sub-total of inflow",
        ),
        Check(
            pair_ge(column_A="inflow_cents", column_B="loan_disbursed_cents", or_equal=True, ignore_row_if=either),
            "warning",
            "a sub-total of inflow",
        ),
        Check(
            pair_ge(column_A="outflow_cents", column_B="related_out_cents", or_equal=True, ignore_row_if=either),
            "warning",
            "a sub-total of outflow",
        ),
        Check(
            pair_ge(column_A="outflow_cents", column_B="large_outflow_sum_cents", or_equal=True, ignore_row_if=either),
            "warning",
            "a sub-total of outflow",
        ),
    ]
    return checks, derived


def _income_streams() -> tuple[list[Check], list[Derived]]:
    E = _E()
    derived = [
        Derived(
            "paid_beyond_expected",
            pl.col("paid_periods") > pl.col("expected_periods"),
            ("paid_periods", "expected_periods"),
            "more periods paid than expected",
        ),
        Derived(
            "last_before_first",
            pl.col("last_seen_on") < pl.col("first_seen_on"),
            ("first_seen_on", "last_seen_on"),
            "the last payment before the first",
        ),
    ]
    in_set = E.ExpectColumnValuesToBeInSet
    checks = [
        Check(in_set(column="status", value_set=list(STREAM_STATUSES)), "blocking", "published vocabulary"),
        Check(in_set(column="cadence", value_set=list(STREAM_CADENCES)), "blocking", "published vocabulary"),
        Check(in_set(column="kind", value_set=list(STREAM_KINDS)), "blocking", "published vocabulary"),
        Check(
            E.ExpectColumnValuesToBeBetween(column="payment_txn_ids_count", min_value=2),
            "blocking",
            "a stream is several payments, each named",
        ),
        Check(in_set(column="paid_beyond_expected", value_set=[False]), "blocking", "a share of expected periods"),
        Check(in_set(column="last_before_first", value_set=[False]), "blocking", "first and last payment in order"),
        Check(
            E.ExpectColumnValuesToBeBetween(column="trailing_share", min_value=0, max_value=1),
            "warning",
            "a share of the account's clean income",
        ),
    ]
    return checks, derived


def _transfer_links() -> tuple[list[Check], list[Derived]]:
    E = _E()
    derived = [
        Derived(
            "links_txn_to_itself",
            pl.col("out_txn_id") == pl.col("in_txn_id"),
            ("out_txn_id", "in_txn_id"),
            "out_txn_id equals in_txn_id",
        ),
    ]
    checks = [
        Check(
            E.ExpectColumnValuesToBeBetween(column="days_apart", min_value=0),
            "blocking",
            "the second leg never precedes the first",
        ),
        Check(E.ExpectColumnValuesToBeBetween(column="amount_out_cents", min_value=0), "blocking", "absolute amount"),
        Check(E.ExpectColumnValuesToBeBetween(column="amount_in_cents", min_value=0), "blocking", "absolute amount"),
        Check(
            E.ExpectColumnValuesToBeBetween(column="evidence_txn_ids_count", min_value=1),
            "blocking",
            "evidence or it did not happen",
        ),
        Check(
            E.ExpectColumnValuesToBeInSet(column="links_txn_to_itself", value_set=[False]),
            "blocking",
            "a link joins two different transactions",
        ),
        Check(
            E.ExpectColumnValuesToBeInSet(column="link_type", value_set=list(LINK_TYPES)),
            "warning",
            "link vocabulary (written by the link transforms): declare a new type in liushui/vocabularies.py",
        ),
    ]
    return checks, derived


def _risk_flags() -> tuple[list[Check], list[Derived]]:
    E = _E()
    lengths = E.ExpectColumnValueLengthsToBeBetween
    checks = [
        Check(
            E.ExpectColumnValuesToBeInSet(column="severity", value_set=list(SEVERITIES)),
            "blocking",
            "published vocabulary",
        ),
        Check(
            E.ExpectColumnValuesToBeBetween(column="evidence_txn_ids_count", min_value=1),
            "blocking",
            "evidence or it did not happen: a flag that cannot name its transactions is not published",
        ),
        Check(
            E.ExpectColumnValuesToMatchRegex(column="flag_code", regex=FLAG_CODE_PATTERN),
            "blocking",
            "rule codes are UPPER_SNAKE",
        ),
        Check(
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="period_end_on",
                column_B="period_start_on",
                or_equal=True,
                ignore_row_if="either_value_is_missing",
            ),
            "blocking",
            "a period ends after it starts",
        ),
        Check(lengths(column="reason_zh", min_value=1), "blocking", "explained: a non-empty reason"),
        Check(lengths(column="reason_en", min_value=1), "blocking", "explained: a non-empty reason"),
        Check(
            E.ExpectColumnValuesToBeInSet(column="flag_code", value_set=list(FLAG_CODES)),
            "warning",
            "rule vocabulary: the codes of the rule registry (transforms/registry.py)",
        ),
        Check(lengths(column="remediation_zh", min_value=1), "warning", "what would have to change"),
        Check(lengths(column="remediation_en", min_value=1), "warning", "what would have to change"),
    ]
    return checks, []


def _account_risk() -> tuple[list[Check], list[Derived]]:
    E = _E()
    checks = [
        Check(
            E.ExpectColumnValuesToBeBetween(column="score", min_value=0, max_value=100),
            "blocking",
            "the score is 0-100",
        ),
        Check(
            E.ExpectColumnValuesToBeInSet(column="band", value_set=list(RISK_BANDS)), "blocking", "published vocabulary"
        ),
        Check(
            E.ExpectColumnValuesToBeInSet(column="recovery_status", value_set=list(RECOVERY_STATUSES)),
            "blocking",
            "published vocabulary",
        ),
        Check(
            E.ExpectColumnValuesToBeInSet(column="statement_trust", value_set=list(STATEMENT_TRUST_LEVELS)),
            "blocking",
            "published vocabulary",
        ),
        Check(
            E.ExpectColumnValuesToBeBetween(column="months_since_severe", min_value=0),
            "blocking",
            "months since the last severe flag cannot be negative",
        ),
        Check(
            E.ExpectColumnPairValuesToBeEqual(column_A="active_flags_count", column_B="remediation_en_count"),
            "blocking",
            "every active flag code has its remediation",
        ),
        Check(
            E.ExpectColumnPairValuesToBeEqual(column_A="active_flags_count", column_B="recovery_points_count"),
            "blocking",
            "every active flag code says the points it adds",
        ),
        Check(
            E.ExpectColumnPairValuesToBeEqual(column_A="active_flags_count", column_B="recovery_now_month_on_count"),
            "blocking",
            "every active flag code says the month of today's value (null when unknown)",
        ),
    ]
    return checks, []


def _quarantine() -> tuple[list[Check], list[Derived]]:
    E = _E()
    checks = [
        Check(
            E.ExpectColumnValueLengthsToBeBetween(column="reason", min_value=1),
            "blocking",
            "every rejected row says why",
        ),
        Check(
            E.ExpectColumnValuesToMatchRegex(column="file_sha256", regex=SHA256_REGEX),
            "blocking",
            "joins to source_files",
        ),
        Check(
            E.ExpectColumnValuesToBeBetween(column="source_row", min_value=1),
            "warning",
            "1-based row number; never block the record of a rejection for it",
        ),
        Check(
            E.ExpectColumnValuesToBeInSet(column="reason_code", value_set=list(QUARANTINE_REASON_CODES)),
            "warning",
            "reason vocabulary (written by ingest): declare a new code in liushui/vocabularies.py; never block "
            "the record of a rejection for it",
        ),
    ]
    return checks, []


def _source_files() -> tuple[list[Check], list[Derived]]:
    E = _E()
    night_read = pl.col("rows_read").sum()
    derived = [
        Derived(
            "rows_unaccounted",
            pl.col("rows_read") - pl.col("rows_ok") - pl.col("rows_rejected"),
            ("rows_read", "rows_ok", "rows_rejected"),
            "rows read but neither ok nor quarantined",
        ),
        Derived(
            "rejected_without_error",
            (pl.col("status") == "rejected") & pl.col("error").is_null(),
            ("status", "error"),
            "a rejected file with no error message",
        ),
        Derived(
            "night_quarantined_share",
            pl.when((pl.int_range(pl.len()) == 0) & (night_read >= MIN_ROWS_FOR_QUARANTINED_SHARE)).then(
                pl.col("rows_rejected").sum() / night_read
            ),
            ("rows_read", "rows_rejected"),
            "on the first row only: quarantined rows / rows read of all the night's files (null when the night "
            f"read fewer than {MIN_ROWS_FOR_QUARANTINED_SHARE} rows)",
            whole_table=True,
        ),
    ]
    between = E.ExpectColumnValuesToBeBetween
    checks = [
        Check(
            E.ExpectColumnValuesToBeInSet(column="status", value_set=list(FILE_STATUSES)),
            "blocking",
            "published vocabulary",
        ),
        Check(
            E.ExpectColumnValuesToMatchRegex(column="file_sha256", regex=SHA256_REGEX),
            "blocking",
            "lower-case hex SHA-256",
        ),
        Check(
            between(column="rows_unaccounted", max_value=0),
            "blocking",
            "nothing is silently dropped: rows_ok + rows_rejected >= rows_read",
        ),
        Check(between(column="size_bytes", min_value=0), "blocking", "a size"),
        Check(between(column="rows_read", min_value=0), "blocking", "a count"),
        Check(between(column="rows_ok", min_value=0), "blocking", "a count"),
        Check(between(column="rows_rejected", min_value=0), "blocking", "a count"),
        Check(
            E.ExpectColumnPairValuesAToBeGreaterThanB(
                column_A="rows_ok", column_B="rows_duplicate", or_equal=True, ignore_row_if="either_value_is_missing"
            ),
            "warning",
            "duplicates are counted in rows_ok",
        ),
        Check(
            E.ExpectColumnValuesToBeInSet(column="rejected_without_error", value_set=[False]),
            "warning",
            "a rejected file carries its error message",
        ),
        Check(
            between(column="night_quarantined_share", max_value=MAX_QUARANTINED_SHARE),
            "blocking",
            f"a night with mostly bad rows: more than {MAX_QUARANTINED_SHARE:.0%} of the rows read quarantined "
            "points at the export or the layout (a changed format, a wrong profile, a broken download), not at "
            "rows, and publishing the rest would judge accounts on a fraction of their statements. One bad row "
            "is the row's problem (quarantined, the night publishes). Judged from "
            f"{MIN_ROWS_FOR_QUARANTINED_SHARE} rows read: below that a share is noise (a 3-row file with 2 bad "
            "rows is 67 %) and every bad row is in quarantine with its reason anyway",
        ),
    ]
    return checks, derived


def _dq_results() -> tuple[list[Check], list[Derived]]:
    E = _E()
    checks = [
        Check(E.ExpectColumnValuesToBeInSet(column="level", value_set=list(DQ_LEVELS)), "blocking", "vocabulary"),
        Check(E.ExpectColumnValuesToBeBetween(column="unexpected_count", min_value=0), "blocking", "a count"),
    ]
    return checks, []


def _pipeline_runs() -> tuple[list[Check], list[Derived]]:
    E = _E()
    checks = [
        Check(
            E.ExpectColumnValuesToBeInSet(column="status", value_set=list(RUN_STATUSES)),
            "blocking",
            "published vocabulary",
        ),
        Check(
            E.ExpectColumnValuesToBeInSet(column="mode", value_set=list(RUN_MODES)), "blocking", "published vocabulary"
        ),
    ]
    return checks, []


_BUSINESS: dict[str, Callable[[], tuple[list[Check], list[Derived]]]] = {
    "canonical_transactions": _canonical_transactions,
    "transactions": _transactions,
    "quarantine": _quarantine,
    "source_files": _source_files,
    "account_months": _account_months,
    "income_streams": _income_streams,
    "transfer_links": _transfer_links,
    "risk_flags": _risk_flags,
    "account_risk": _account_risk,
    "dq_results": _dq_results,
    "pipeline_runs": _pipeline_runs,
}


def _guarded_tables() -> tuple[Table, ...]:
    return (contracts.CANONICAL_TRANSACTION, *contracts.PUBLISHED_TABLES)


def table_names() -> tuple[str, ...]:
    """Names of every table that has a suite (cheap: does not import GX)."""
    return tuple(t.name for t in _guarded_tables())


def build_suite(table: Table, business: Iterable[Check] = (), derived: Iterable[Derived] = ()) -> Suite:
    """Contract checks + business checks for `table`; suite name = table name."""
    return Suite(
        name=table.name,
        table=table,
        checks=tuple(contract_checks(table)) + tuple(business),
        derived=tuple(contract_derived(table)) + tuple(derived),
    )


@cache
def suite_for(table_name: str) -> Suite:
    """The suite guarding `table_name` (built on first use, then cached)."""
    for t in _guarded_tables():
        if t.name == table_name:
            business, derived = _BUSINESS.get(table_name, lambda: ([], []))()
            return build_suite(t, business, derived)
    raise KeyError(f"no expectation suite for table {table_name!r}; known: {list(table_names())}")


def all_suites() -> dict[str, Suite]:
    return {name: suite_for(name) for name in table_names()}


def __getattr__(name: str) -> Any:  # lazy module attribute: building suites imports GX (seconds)
    if name == "ALL_SUITES":
        return all_suites()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
