"""Run a table's suite with Great Expectations 1.x and return the results as `dq_results` rows.

    results = validate_frame("transactions", frame, run_id=run_id, as_of=as_of)
    raise_on_blocking(results)          # BlockingExpectationFailed if a blocking expectation failed

    validation = validate_tables({"transactions": frame, ...}, run_id=run_id, as_of=as_of)
    validation.rows                     # the dq_results rows, as above
    validation.gx_results               # table -> GX ExpectationSuiteValidationResults (for Data Docs,
                                        # expectations.datadocs.build_data_docs; no second validation)

    validate_parts("transactions", shard_paths, run_id=run_id, as_of=as_of)
                                        # a table held as account-hash shards (Parquet files), one shard in
                                        # memory at a time; the same rows as validating the whole table

This module is the API; the work is done in `expectations.session` (the one GX context per process, the
GX suites), `expectations.gx_frames` (how a Polars frame reaches GX), `expectations.gx_run` (one suite on
one frame), `expectations.results` (GX results -> `dq_results` rows) and `expectations.merge` (a table
validated in parts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import polars as pl

from liushui import contracts

from .gx_frames import gx_frame
from .gx_frames import to_pandas as _to_pandas  # noqa: F401 - expectations.benchmark times it
from .gx_run import run_suite, suite_parameters
from .merge import (
    Part,
    PartResult,
    count_keys_across_parts,
    load_part,
    merge_rule,
    merged_outcomes,
    sources,
    unmergeable,
)
from .results import dq_rows, restore_integers
from .session import gx_session, warm_up
from .suites import Suite, suite_for

__all__ = [
    "BlockingExpectationFailed",
    "Part",
    "TableValidation",
    "Validation",
    "blocking_failures",
    "gx_frame",
    "gx_session",
    "merge_rule",
    "raise_on_blocking",
    "validate_frame",
    "validate_parts",
    "validate_table",
    "validate_tables",
    "warm_up",
]


class BlockingExpectationFailed(Exception):
    """A blocking expectation failed: the publish must not happen."""

    def __init__(self, message: str, failures: pl.DataFrame) -> None:
        super().__init__(message)
        self.failures = failures


@dataclass(frozen=True)
class TableValidation:
    """One table's validation: its `dq_results` rows and the GX results they were read from (the data
    suite's and the schema suite's `ExpectationSuiteValidationResult`, for Data Docs)."""

    rows: pl.DataFrame
    gx_results: list[Any]


@dataclass(frozen=True)
class Validation:
    """Several tables' validations: `dq_results` rows of all, and the GX results per table."""

    rows: pl.DataFrame
    gx_results: dict[str, list[Any]]

    def __or__(self, other: Validation) -> Validation:
        """Both validations (e.g. raw input and output of one run)."""
        return Validation(pl.concat([self.rows, other.rows]), {**self.gx_results, **other.gx_results})


def validate_frame(table_name: str, frame: pl.DataFrame, *, run_id: str, as_of: date | None = None) -> pl.DataFrame:
    """Validate `frame` against the suite of `table_name`: one `dq_results` row per check.

    `as_of` (default: today, UTC) bounds booking times: nothing after the end of the as-of day.
    Never raises for failed expectations (see `raise_on_blocking`); raises for programming errors.
    """
    return validate_table(table_name, frame, run_id=run_id, as_of=as_of).rows


def validate_table(table_name: str, frame: pl.DataFrame, *, run_id: str, as_of: date | None = None) -> TableValidation:
    """`validate_frame`, keeping GX's own results next to the `dq_results` rows."""
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    suite = suite_for(table_name)
    params = suite_parameters(as_of)
    validated_at = datetime.now(UTC).replace(tzinfo=None)
    part = run_suite(suite, frame, frame.columns, params)
    return _table_validation(suite, [part], run_id=run_id, params=params, validated_at=validated_at)


def validate_parts(
    table_name: str, parts: Sequence[Part], *, run_id: str, as_of: date | None = None
) -> TableValidation:
    """`validate_table` of the concatenation of `parts` (in their order), one part in memory at a time.

    For tables too large for one frame, held as account-hash shards (one Parquet file per shard). Of a
    Parquet file only the columns the data checks read are loaded; the schema checks see all its column
    names. Each part is validated by GX on its own and the per-check results, and the GX results for
    Data Docs, are merged into exactly the whole table's by expectation type (`merge_rule`; the rules
    are described in `expectations.merge`). A suite with an expectation no rule merges, or with a
    whole-table computed column, is refused for several parts (ValueError) rather than merged wrongly.

    One part: exactly `validate_table` of that frame. No part: `validate_table` of an empty frame of the
    table's contract.
    """
    suite = suite_for(table_name)
    if not parts:
        return validate_table(table_name, suite.table.empty(), run_id=run_id, as_of=as_of)
    several = len(parts) > 1
    if several and (refused := unmergeable(suite)):
        raise ValueError(f"suite {suite.name}: no rule merges the per-part results of {refused}")
    params = suite_parameters(as_of)
    validated_at = datetime.now(UTC).replace(tzinfo=None)
    needed = sources(suite, [g for c in suite.checks if not c.is_schema_check for g in c.gx_columns])
    results = []
    for part in parts:
        frame, columns = load_part(part, needed)
        results.append(run_suite(suite, frame, columns, params, hash_keys=several))
        del frame  # before the next part is read
    if several:
        count_keys_across_parts(suite, parts, results)
    return _table_validation(suite, results, run_id=run_id, params=params, validated_at=validated_at)


def validate_tables(frames: dict[str, pl.DataFrame], *, run_id: str, as_of: date | None = None) -> Validation:
    """Validate several tables: their `dq_results` rows concatenated (one row per check per table), and
    GX's own results per table (for Data Docs)."""
    parts = {name: validate_table(name, f, run_id=run_id, as_of=as_of) for name, f in frames.items()}
    rows = pl.concat([p.rows for p in parts.values()]) if parts else contracts.DQ_RESULTS.empty()
    return Validation(rows, {name: p.gx_results for name, p in parts.items()})


def blocking_failures(results: pl.DataFrame) -> pl.DataFrame:
    """The `dq_results` rows of failed blocking expectations."""
    return results.filter((pl.col("level") == "blocking") & ~pl.col("success"))


def raise_on_blocking(results: pl.DataFrame) -> None:
    """Raise `BlockingExpectationFailed` listing every failed blocking expectation; warnings never raise."""
    failed = blocking_failures(results)
    if failed.is_empty():
        return
    lines = [
        f"- {r['table_name']}: {r['expectation']} on {r['column_name'] or '(table)'} failed"
        f" ({r['unexpected_count'] if r['unexpected_count'] is not None else '?'} unexpected"
        f" of {r['element_count']} rows){': ' + r['detail'] if r['detail'] else ''}"
        for r in failed.iter_rows(named=True)
    ]
    tables = sorted(set(failed["table_name"].to_list()))
    raise BlockingExpectationFailed(
        f"{failed.height} blocking expectation(s) failed in {', '.join(tables)}:\n" + "\n".join(lines),
        failed,
    )


def _table_validation(
    suite: Suite, parts: list[PartResult], *, run_id: str, params: dict[str, Any], validated_at: datetime
) -> TableValidation:
    """The table's validation from its parts' GX results (one part: as they are; several: merged)."""
    outcomes = parts[0].outcomes if len(parts) == 1 else merged_outcomes(suite, parts)
    results = [r for outcome in outcomes for r in outcome.results]
    restore_integers(suite, results, frozenset().union(*(p.integer_columns for p in parts)))
    rows = dq_rows(
        suite, results, run_id=run_id, height=sum(p.height for p in parts), params=params, validated_at=validated_at
    )
    return TableValidation(
        contracts.DQ_RESULTS.conform(pl.DataFrame(rows, schema=contracts.DQ_RESULTS.polars_schema)).collect(),
        outcomes,
    )
