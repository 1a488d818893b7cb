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

How a frame reaches GX (GX 1.24 has no Polars support):

* Only the columns the suite's data checks read are materialised, in one Polars ``select``: source
  columns as they are, Decimal money as exact Int64 minor units (``<name>_cents``), List columns as
  their length (``<name>_count``), plus the suite's business derivations. Then ``to_pandas()`` through
  pyarrow, with dtypes GX's pandas metrics handle vectorised (see `_gx_dtypes`). The source frame is
  never changed.
* Schema checks (the column set) run on a zero-row pandas frame carrying the source frame's column
  names, since the data frame holds derived columns.
* One ephemeral GX context per process (``import great_expectations`` costs seconds: imported on the first
  call, never at module import), progress bars off, analytics off, nothing written to disk, nothing
  sent anywhere.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import polars as pl

from liushui import contracts

from .suites import PARAM_BOOKED_AT_MAX, Check, Suite, suite_for

DETAIL_MAX_CHARS = 200
SAMPLE_SIZE = 5
RESULT_FORMAT = {
    # BASIC: success, element / unexpected counts and a partial list of unexpected values. SUMMARY would
    # also compute index lists and value counts (slower, not stored).
    "result_format": "BASIC",
    "partial_unexpected_count": SAMPLE_SIZE,
}
_META_KEY = "liushui_check"


class BlockingExpectationFailed(Exception):
    """A blocking expectation failed: the publish must not happen."""

    def __init__(self, message: str, failures: pl.DataFrame) -> None:
        super().__init__(message)
        self.failures = failures


# GX session (one per process) -------------------------------------------------------------------------
def _offline_environment() -> None:
    """Make sure GX never tries the network: no analytics, no cloud mode."""
    os.environ["GX_ANALYTICS_ENABLED"] = "false"
    for var in ("GX_CLOUD_ACCESS_TOKEN", "GX_CLOUD_ORGANIZATION_ID", "GX_CLOUD_WORKSPACE_ID"):
        # a cloud token in the environment must not switch this process to GX Cloud
        os.environ.pop(var, None)


def _skip_batch_fingerprint() -> None:
    """GX's pandas engine md5-hashes every row of every batch below 1 GB (`HASH_THRESHOLD`), only to put a
    ``pandas_data_fingerprint`` into the batch markers, twice per validation (the batch is loaded again by
    the validator): ~half of the validation time on 1M rows. We never read that marker. Setting the
    module constant to 0 skips it; nothing else changes (tests pin GX and assert the constant exists)."""
    from great_expectations.execution_engine import pandas_execution_engine

    if not hasattr(pandas_execution_engine, "HASH_THRESHOLD"):
        raise RuntimeError("great_expectations changed: pandas_execution_engine.HASH_THRESHOLD is gone")
    pandas_execution_engine.HASH_THRESHOLD = 0


@dataclass
class _GxSession:
    context: Any
    batch_definition: Any
    lock: threading.Lock
    suites: dict[str, tuple[Any, Any]]  # suite name -> (GX data suite, GX schema suite)


_SESSION: _GxSession | None = None
_SESSION_LOCK = threading.Lock()


def gx_session() -> _GxSession:
    """The process-wide ephemeral GX context (created on first use)."""
    global _SESSION
    with _SESSION_LOCK:
        if _SESSION is None:
            _offline_environment()
            import great_expectations as gx
            from great_expectations.data_context.types.base import ProgressBarsConfig

            _skip_batch_fingerprint()
            # GX announces its temporary docs folder at INFO on every context (that module sets its own
            # logger to INFO); the run's own progress is what belongs on the terminal.
            logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
            context = gx.get_context(mode="ephemeral")
            context.config.analytics_enabled = False
            context.variables.progress_bars = ProgressBarsConfig(globally=False, metric_calculations=False)
            batch_definition = (
                context.data_sources.add_pandas("liushui")
                .add_dataframe_asset("frame")
                .add_batch_definition_whole_dataframe("whole_frame")
            )
            _SESSION = _GxSession(context, batch_definition, threading.Lock(), {})
        return _SESSION


def warm_up() -> threading.Thread:
    """Create the GX session on a background thread (importing GX takes seconds of pure Python) while the
    caller does other work, typically the run's ingest and history export. The import holds the GIL, so it
    slows the Python parts of that work; the net gain is what overlaps with Polars and DuckDB (10M
    increment: ingest + validate_raw 8.2 s -> 6.7 s). The first validation waits for it (the session lock);
    if the warm-up fails, that first call creates the session itself and reports the error where it belongs."""

    def create() -> None:
        with contextlib.suppress(Exception):
            gx_session()

    thread = threading.Thread(target=create, name="liushui-gx-warm-up", daemon=True)
    thread.start()
    return thread


def _gx_suites(session: _GxSession, suite: Suite) -> tuple[Any, Any]:
    """GX ExpectationSuites for the data checks and the schema checks, each expectation tagged with the
    index of its Check (GX returns results in its own order)."""
    cached = session.suites.get(suite.name)
    if cached is not None:
        return cached
    import great_expectations as gx

    data = gx.ExpectationSuite(name=f"{suite.name}")
    schema = gx.ExpectationSuite(name=f"{suite.name}__schema")
    for i, check in enumerate(suite.checks):
        expectation = check.expectation.copy(deep=True)
        expectation.id = None
        expectation.meta = {**(expectation.meta or {}), _META_KEY: i}
        (schema if check.is_schema_check else data).add_expectation(expectation)
    if len(data.expectations) + len(schema.expectations) != len(suite.checks):
        raise RuntimeError(f"suite {suite.name}: GX dropped expectations (duplicates?)")
    session.suites[suite.name] = (data, schema)
    return data, schema


# Frame preparation -----------------------------------------------------------------------------------
def gx_frame(suite: Suite, frame: pl.DataFrame) -> pl.DataFrame:
    """The (Polars) frame GX will see: the columns the data checks read, derived where needed.

    A column whose sources are missing from `frame` is left out: its expectations then fail in GX
    ("column does not exist"), they never silently pass.
    """
    present = set(frame.columns)
    exprs: list[pl.Expr] = []
    seen: set[str] = set()
    for check in suite.checks:
        if check.is_schema_check:
            continue
        for name in check.gx_columns:
            if name in seen:
                continue
            seen.add(name)
            derived = suite.derived_column(name)
            if derived is not None:
                if set(derived.sources) <= present:
                    exprs.append(derived.expr.alias(name))
            elif name in present:
                exprs.append(pl.col(name))
    return frame.select(exprs) if exprs else pl.DataFrame()


# pandas datetime64[ns] range (GX compares datetimes vectorised only for ns columns; any other unit falls
# back to a per-row Python `map`, ~6 s per 1M rows). Values outside are clipped to the bounds: still far
# outside any plausible range, so range checks fail on them as they should.
_NS_MIN = datetime(1677, 9, 22)
_NS_MAX = datetime(2262, 4, 11)


def _gx_cast(name: str, dtype: pl.DataType, *, has_nulls: bool) -> pl.Expr | None:
    """The cast of one prepared column to what GX's pandas metrics handle vectorised (None: as it is).

    * Datetime / Date -> Datetime("ns") (clipped to the ns range).
    * Integers with no null -> Int64 (numpy int64: exact, vectorised).
    * Integers with nulls -> Float64 (NaN): GX handles pandas' nullable ``Int64`` only through slow
      per-row paths and breaks on ``pd.NA`` in column-pair comparisons. Exact up to 2**53 (90 trillion
      currency units in cents); these columns are only range-checked.
    """
    c = pl.col(name)
    if dtype == pl.Datetime("ns") and getattr(dtype, "time_zone", None) is None:
        return None
    if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
        if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
            c = c.dt.replace_time_zone(None)
        return c.cast(pl.Datetime("us")).clip(_NS_MIN, _NS_MAX).cast(pl.Datetime("ns"))
    if dtype.is_integer():
        return c.cast(pl.Float64 if has_nulls else pl.Int64)
    return None


def _gx_dtypes(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast the prepared frame to what GX's pandas metrics handle vectorised (see `_gx_cast`)."""
    casts = [
        cast
        for name, dtype in frame.schema.items()
        if (cast := _gx_cast(name, dtype, has_nulls=frame[name].null_count() > 0)) is not None
    ]
    return frame.with_columns(casts) if casts else frame


def _to_pandas(frame: pl.DataFrame):
    import pandas as pd

    if frame.width == 0:
        return pd.DataFrame(index=pd.RangeIndex(frame.height))
    return _gx_dtypes(frame).to_pandas()


def _suite_parameters(as_of: date | None) -> dict[str, Any]:
    as_of = as_of or datetime.now(UTC).date()
    return {PARAM_BOOKED_AT_MAX: datetime.combine(as_of + timedelta(days=1), time())}


# Result rows -----------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """numpy / pandas scalars -> plain Python for readable details."""
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        with contextlib.suppress(ValueError, TypeError):
            value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    if value.__class__.__name__ in {"NAType", "NaTType"}:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def _truncate(text: str) -> str:
    return text if len(text) <= DETAIL_MAX_CHARS else text[: DETAIL_MAX_CHARS - 1] + "…"


def _exception_message(result: Any) -> str | None:
    info = result.exception_info or {}
    if "raised_exception" in info:
        return info.get("exception_message") if info.get("raised_exception") else None
    messages = [v.get("exception_message") for v in info.values() if isinstance(v, dict)]
    messages = [m for m in messages if m]
    return "; ".join(messages) if messages else None


def _detail(check: Check, result: Any, params: dict[str, Any]) -> str | None:
    parts: list[str] = []
    error = _exception_message(result)
    if error:
        parts.append(f"error: {error}")
    res = result.result or {}
    sample = res.get("partial_unexpected_list")
    if sample:
        parts.append("unexpected sample: " + json.dumps(_plain(list(sample)), ensure_ascii=False, default=str))
    elif "observed_value" in res:
        parts.append("observed: " + json.dumps(_plain(res["observed_value"]), ensure_ascii=False, default=str))
    used = [p for p in params if p in check.kwargs_json]
    if used:
        parts.append(", ".join(f"{p}={_plain(params[p])}" for p in used))
    return _truncate("; ".join(parts)) if parts else None


def _check_index(suite: Suite, result: Any) -> int:
    """The index (in `suite.checks`) of the check a GX result belongs to."""
    i = (result.expectation_config.meta or {}).get(_META_KEY)
    if i is None:
        raise RuntimeError(f"suite {suite.name}: cannot match GX result to a check: {result.expectation_config}")
    return i


def _integral(value: Any) -> Any:
    """Integral floats -> int, inside lists, tuples and dicts too."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, (list, tuple)):
        return type(value)(_integral(v) for v in value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    return value


def _restore_integers(suite: Suite, results: list[Any], integer_columns: frozenset[str]) -> None:
    """Samples of integer columns as integers: GX saw such a column as Float64 when the frame had a null in
    it (`_gx_cast`), and the sample of one frame must not read ``0.0`` where another (or a part of it,
    `validate_parts`) reads ``0``."""
    for r in results:
        check = suite.checks[_check_index(suite, r)]
        res = r.result or {}
        if res.get("partial_unexpected_list") and set(check.gx_columns) <= integer_columns:
            r.result = {**res, "partial_unexpected_list": _integral(list(res["partial_unexpected_list"]))}


def _rows(
    suite: Suite,
    results: list[Any],
    *,
    run_id: str,
    height: int,
    params: dict[str, Any],
    validated_at: datetime,
) -> list[dict[str, Any]]:
    by_index: dict[int, Any] = {}
    for r in results:
        i = _check_index(suite, r)
        if i in by_index:
            raise RuntimeError(f"suite {suite.name}: cannot match GX result to a check: {r.expectation_config}")
        by_index[i] = r
    missing = [i for i in range(len(suite.checks)) if i not in by_index]
    if missing:
        raise RuntimeError(f"suite {suite.name}: GX returned no result for checks {missing}")
    rows = []
    for i, check in enumerate(suite.checks):
        r = by_index[i]
        res = r.result or {}
        error = _exception_message(r)
        unexpected = res.get("unexpected_count")
        rows.append(
            {
                "run_id": run_id,
                "suite": suite.name,
                "table_name": suite.table_name,
                "expectation": check.expectation_type,
                "column_name": suite.column_name(check),
                "kwargs_json": check.kwargs_json,
                "level": check.level,
                "success": bool(r.success) and error is None,
                "unexpected_count": None if unexpected is None else int(unexpected),
                "element_count": int(res.get("element_count", height) or 0),
                "detail": _detail(check, r, params),
                "validated_at": validated_at,
            }
        )
    return rows


# Public API ------------------------------------------------------------------------------------------
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
    params = _suite_parameters(as_of)
    validated_at = datetime.now(UTC).replace(tzinfo=None)
    part = _validate_part(suite, frame, frame.columns, params)
    return _table_validation(suite, [part], run_id=run_id, params=params, validated_at=validated_at)


Part = Path | str | pl.LazyFrame | pl.DataFrame
"""A part of a table: a Parquet file or a frame."""


def validate_parts(
    table_name: str, parts: Sequence[Part], *, run_id: str, as_of: date | None = None
) -> TableValidation:
    """`validate_table` of the concatenation of `parts` (in their order), one part in memory at a time.

    For tables too large for one frame, held as account-hash shards (one Parquet file per shard). Of a
    Parquet file only the columns the data checks read are loaded; the schema checks see all its column
    names. Each part is validated by GX on its own and the per-check results are merged into exactly the
    whole table's, by expectation type (`merge_rule`):

    * ``rows`` -- the value checks (not null, in / not in set, between, regex, value lengths, column
      pairs): each row's verdict depends on that row alone (``between`` bounds every value, it is not a
      min / max), so the table fails iff a part fails; element, missing and unexpected counts add up;
      the sample is the first parts' samples, capped at `SAMPLE_SIZE`: GX lists unexpected values in row
      order, so this is the whole table's sample.
    * ``keys`` -- uniqueness (single and compound key): per-part counts add up, and a key found in two
      parts is a duplicate no part saw. Every part keeps the 64-bit hashes of its distinct keys (8 bytes a
      row; the only state carried from part to part); a hash in two parts sends its key's rows back
      through an exact recount (see `_recount_keys`). Account-hash shards keep all rows of an account in
      one part and the keys are built from the account (txn_id, flag_id and the account_months key
      include it, link_id hashes txn ids), so this normally finds nothing and reads nothing again -- but
      it is checked, not assumed.
    * ``schema`` -- the column set: looks at column names only. Parts of one table have the same names,
      so each part's verdict is the table's; parts that disagree cannot be one table and the first failing
      part's result is kept. Its element count is the sum of the parts' rows, as for one frame.

    The suites hold no aggregate expectation (row count, mean, min / max, distinct set). One added later,
    or a ``mostly`` below 1, has no merge rule: several parts are then refused (ValueError) rather than
    merged wrongly; `tests/test_validate_parts.py` keeps every suite mergeable. The same refusal for a
    suite with a whole-table computed column (`Derived.whole_table`, e.g. the night's quarantined share
    on source_files, a table that is always one frame): each part would compute its own value.

    `gx_results` are the parts' GX results merged the same way (one data and one schema result, as for
    one frame) so that the run's Data Docs show the table. Keeping every part's would not: Data Docs key
    a result by suite, run and table, so all but the last part's would be overwritten; keeping the first
    part's would show one shard's counts as the table's.

    One part: exactly `validate_table` of that frame. No part: `validate_table` of an empty frame of the
    table's contract.
    """
    suite = suite_for(table_name)
    if not parts:
        return validate_table(table_name, suite.table.empty(), run_id=run_id, as_of=as_of)
    several = len(parts) > 1
    unmergeable = sorted({c.expectation_type for c in suite.checks if merge_rule(c) is None})
    unmergeable += sorted(f"{d.name} (a whole-table value)" for d in suite.derived if d.whole_table)
    if several and unmergeable:
        raise ValueError(f"suite {suite.name}: no rule merges the per-part results of {unmergeable}")
    params = _suite_parameters(as_of)
    validated_at = datetime.now(UTC).replace(tzinfo=None)
    needed = _sources(suite, [g for c in suite.checks if not c.is_schema_check for g in c.gx_columns])
    results = []
    for part in parts:
        frame, columns = _load_part(part, needed)
        results.append(_validate_part(suite, frame, columns, params, hash_keys=several))
        del frame  # before the next part is read
    if several:
        _count_keys_across_parts(suite, parts, results)
    return _table_validation(suite, results, run_id=run_id, params=params, validated_at=validated_at)


def validate_frames(frames: dict[str, pl.DataFrame], *, run_id: str, as_of: date | None = None) -> pl.DataFrame:
    """Validate several tables; results concatenated (one row per check per table)."""
    return validate_tables(frames, run_id=run_id, as_of=as_of).rows


def validate_tables(frames: dict[str, pl.DataFrame], *, run_id: str, as_of: date | None = None) -> Validation:
    """`validate_frames`, keeping GX's own results per table (for Data Docs)."""
    parts = {name: validate_table(name, f, run_id=run_id, as_of=as_of) for name, f in frames.items()}
    rows = pl.concat([p.rows for p in parts.values()]) if parts else contracts.DQ_RESULTS.empty()
    return Validation(rows, {name: p.gx_results for name, p in parts.items()})


def blocking_failures(results: pl.DataFrame) -> pl.DataFrame:
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


# One frame, several parts ------------------------------------------------------------------------------
@dataclass
class _PartResult:
    """GX's results on one frame (a whole table, or one part of it before merging)."""

    height: int
    outcomes: list[Any]
    """GX `ExpectationSuiteValidationResult`s: the data suite's, then the schema suite's."""
    integer_columns: frozenset[str]
    """GX columns that are integers in Polars (`_restore_integers`)."""
    key_hashes: dict[int, pl.Series]
    """Check index -> hashes of the distinct keys of a uniqueness check (only when validating parts)."""


def _validate_part(
    suite: Suite, frame: pl.DataFrame, columns: Sequence[str], params: dict[str, Any], *, hash_keys: bool = False
) -> _PartResult:
    """Run `suite` on `frame`. `columns`: the frame's column names, for the schema checks (the frame may
    hold only the columns the data checks read)."""
    import pandas as pd

    prepared = gx_frame(suite, frame)
    data_pd = _to_pandas(prepared)
    schema_pd = pd.DataFrame({c: pd.Series([], dtype="object") for c in columns})
    session = gx_session()
    outcomes: list[Any] = []
    with session.lock:
        data_suite, schema_suite = _gx_suites(session, suite)
        for gx_suite, pdf in ((data_suite, data_pd), (schema_suite, schema_pd)):
            if not gx_suite.expectations:
                continue
            batch = session.batch_definition.get_batch(batch_parameters={"dataframe": pdf})
            outcomes.append(batch.validate(gx_suite, result_format=RESULT_FORMAT, expectation_parameters=params))
    hashes: dict[int, pl.Series] = {}
    for i, check in enumerate(suite.checks):
        if hash_keys and merge_rule(check) == "keys" and (keys := _key_values(prepared, check)) is not None:
            hashes[i] = keys.select(pl.struct(keys.columns).hash()).to_series().unique()
    integers = frozenset(name for name, dtype in prepared.schema.items() if dtype.is_integer())
    return _PartResult(frame.height, outcomes, integers, hashes)


def _table_validation(
    suite: Suite, parts: list[_PartResult], *, run_id: str, params: dict[str, Any], validated_at: datetime
) -> TableValidation:
    outcomes = parts[0].outcomes if len(parts) == 1 else _merged_outcomes(suite, parts)
    results = [r for outcome in outcomes for r in outcome.results]
    _restore_integers(suite, results, frozenset().union(*(p.integer_columns for p in parts)))
    rows = _rows(
        suite, results, run_id=run_id, height=sum(p.height for p in parts), params=params, validated_at=validated_at
    )
    return TableValidation(
        contracts.DQ_RESULTS.conform(pl.DataFrame(rows, schema=contracts.DQ_RESULTS.polars_schema)).collect(),
        outcomes,
    )


def _sources(suite: Suite, gx_columns: Sequence[str]) -> set[str]:
    """The table columns `gx_columns` are computed from."""
    return {source for name in gx_columns for source in suite.source_columns(name)}


def _load_part(part: Part, needed: set[str]) -> tuple[pl.DataFrame, list[str]]:
    """The part's columns among `needed` (a frame part as it is), and the names of all its columns."""
    if isinstance(part, pl.DataFrame):
        return part, part.columns
    lazy = pl.scan_parquet(part) if isinstance(part, (str, Path)) else part
    columns = lazy.collect_schema().names()
    # with no needed column at all, still the part's rows: their number is the element count
    return lazy.select([c for c in columns if c in needed] or columns).collect(), columns


# Merging parts (validate_parts) --------------------------------------------------------------------------
_ROW_WISE = frozenset(
    {
        "expect_column_values_to_not_be_null",
        "expect_column_values_to_be_in_set",
        "expect_column_values_to_not_be_in_set",
        "expect_column_values_to_be_between",
        "expect_column_values_to_match_regex",
        "expect_column_value_lengths_to_be_between",
        "expect_column_pair_values_a_to_be_greater_than_b",
        "expect_column_pair_values_to_be_equal",
    }
)
_KEYED = frozenset({"expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique"})
_MAP_RESULT_KEYS = frozenset(
    {
        "element_count",
        "unexpected_count",
        "unexpected_percent",
        "partial_unexpected_list",
        "missing_count",
        "missing_percent",
        "unexpected_percent_total",
        "unexpected_percent_nonmissing",
    }
)


def merge_rule(check: Check) -> str | None:
    """How `validate_parts` merges the check's per-part results: ``rows``, ``keys``, ``schema``, or None
    when it cannot (see `validate_parts`)."""
    if check.kwargs.get("mostly", 1) != 1:
        return None  # success would be a share of the whole table
    if check.is_schema_check:
        return "schema"
    if check.expectation_type in _ROW_WISE:
        return "rows"
    if check.expectation_type in _KEYED:
        return "keys"
    return None


def _merged_outcomes(suite: Suite, parts: list[_PartResult]) -> list[Any]:
    """The parts' GX suite results merged into the whole table's: one per GX suite, as for one frame."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.validator.validation_statistics import calc_validation_statistics

    merged = []
    for k, first in enumerate(parts[0].outcomes):
        per_check: dict[int, list[Any]] = {}
        for part in parts:
            for r in part.outcomes[k].results:
                per_check.setdefault(_check_index(suite, r), []).append(r)
        results = [_merged_result(suite.checks[i], rs) for i, rs in per_check.items()]
        stats = calc_validation_statistics(results)
        merged.append(
            ExpectationSuiteValidationResult(
                success=stats.success,
                results=results,
                suite_name=first.suite_name,
                suite_parameters=first.suite_parameters,
                statistics={
                    "evaluated_expectations": stats.evaluated_expectations,
                    "successful_expectations": stats.successful_expectations,
                    "unsuccessful_expectations": stats.unsuccessful_expectations,
                    "success_percent": stats.success_percent,
                },
                meta=first.meta,
                batch_id=first.batch_id,
            )
        )
    return merged


def _merged_result(check: Check, results: list[Any]) -> Any:
    """One check's result on the whole table from its results on the parts (`merge_rule`)."""
    if check.is_schema_check:
        return next((r for r in results if not r.success), results[0])
    error = next((r for r in results if _exception_message(r)), None)
    if error is not None:  # GX could not evaluate it (a missing column): nothing to add up
        return error
    parts = [r.result for r in results]
    unknown = set().union(*parts) - _MAP_RESULT_KEYS
    if unknown:
        raise RuntimeError(f"great_expectations changed: cannot merge result fields {sorted(unknown)}")
    from great_expectations.core.expectation_validation_result import ExpectationValidationResult

    return ExpectationValidationResult(
        success=all(r.success for r in results),
        expectation_config=results[0].expectation_config,
        result=_map_result(parts),
        meta=results[0].meta,
        exception_info=results[0].exception_info,
    )


def _map_result(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Map-expectation results of parts added up, with GX's own arithmetic for the percentages
    (`great_expectations.expectations.expectation._format_map_output`)."""
    element = sum(p["element_count"] for p in parts)
    unexpected = sum(p["unexpected_count"] for p in parts)
    sample = list(
        itertools.islice(
            itertools.chain.from_iterable(p.get("partial_unexpected_list") or [] for p in parts), SAMPLE_SIZE
        )
    )
    total = unexpected / element * 100 if element else None
    result = {
        "element_count": element,
        "unexpected_count": unexpected,
        "unexpected_percent": total,
        "partial_unexpected_list": sample,
    }
    if "missing_count" in parts[0]:
        missing = sum(p["missing_count"] for p in parts)
        nonmissing = unexpected / (element - missing) * 100 if element and element > missing else None
        result |= {
            "unexpected_percent": nonmissing,
            "missing_count": missing,
            "missing_percent": missing / element * 100 if element else None,
            "unexpected_percent_total": total,
            "unexpected_percent_nonmissing": nonmissing,
        }
    return result


def _key_values(prepared: pl.DataFrame, check: Check) -> pl.DataFrame | None:
    """The key values a uniqueness check compares, as GX compares them (datetimes clipped as in
    `_gx_cast`), without the rows GX ignores (key all null); None when a key column is missing (GX
    failed the check on it already)."""
    columns = list(check.gx_columns)
    if not set(columns) <= set(prepared.columns):
        return None
    keys = prepared.select(columns)
    casts = [
        cast for name, dtype in keys.schema.items() if (cast := _gx_cast(name, dtype, has_nulls=False)) is not None
    ]
    return keys.with_columns(casts).filter(~pl.all_horizontal(pl.col(c).is_null() for c in columns))


def _count_keys_across_parts(suite: Suite, parts: Sequence[Part], results: list[_PartResult]) -> None:
    """Uniqueness across parts: recount every uniqueness check with a key hash found in two parts."""
    for i in range(len(suite.checks)):
        hashes = [r.key_hashes[i] for r in results if i in r.key_hashes]
        if len(hashes) < len(results):
            continue  # no such check, or a part without the key columns: GX's error is the result
        everything = pl.concat(hashes, rechunk=False)  # distinct within each part: a repeat is a second part
        candidates = everything.filter(everything.is_duplicated()).unique()
        if not candidates.is_empty():
            _recount_keys(suite, i, parts, results, candidates)


def _recount_keys(
    suite: Suite, index: int, parts: Sequence[Part], results: list[_PartResult], candidates: pl.Series
) -> None:
    """Replace each part's count and sample of uniqueness check `index` by its share of the whole table's:
    its rows whose key repeats inside the part or occurs in another part. Reads the key columns of every
    part twice, one part at a time: first the keys whose hash is a candidate (to tell real repeats from
    hash collisions), then each part's unexpected rows in order (for the sample)."""
    check = suite.checks[index]
    key = pl.struct(list(check.gx_columns))
    needed = _sources(suite, check.gx_columns)

    def keys_of(part: Part) -> pl.DataFrame:
        keys = _key_values(gx_frame(suite, _load_part(part, needed)[0]), check)
        assert keys is not None  # every part had the key columns when hashed
        return keys

    found = pl.concat([keys_of(p).filter(key.hash().is_in(candidates.implode())).unique() for p in parts])
    shared = found.filter(key.is_duplicated()).select(key).to_series().unique()
    if shared.is_empty():
        return  # only hashes collided
    for part, result in zip(parts, results, strict=True):
        keys = keys_of(part)
        unexpected = keys.filter(key.is_duplicated() | key.is_in(shared.implode()))
        r = next(r for o in result.outcomes for r in o.results if _check_index(suite, r) == index)
        r.success = unexpected.is_empty()
        r.result = {
            **r.result,
            "unexpected_count": unexpected.height,
            "partial_unexpected_list": _gx_values(check, unexpected.head(SAMPLE_SIZE)),
        }


def _gx_values(check: Check, keys: pl.DataFrame) -> list[Any]:
    """Key rows as GX lists unexpected ones: the value (one column), else a dict per row."""
    frame = _to_pandas(keys)
    if check.expectation_type == "expect_column_values_to_be_unique":
        return frame[check.gx_columns[0]].tolist()
    return frame.to_dict("records")
