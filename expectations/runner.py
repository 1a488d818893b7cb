"""Run a table's suite with Great Expectations 1.x and return the results as `dq_results` rows.

    results = validate_frame("transactions", frame, run_id=run_id, as_of=as_of)
    raise_on_blocking(results)          # BlockingExpectationFailed if a blocking expectation failed

    validation = validate_tables({"transactions": frame, ...}, run_id=run_id, as_of=as_of)
    validation.rows                     # the dq_results rows, as above
    validation.gx_results               # table -> GX ExpectationSuiteValidationResults (for Data Docs,
                                        # expectations.datadocs.build_data_docs; no second validation)

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
import json
import logging
import math
import os
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
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


def _gx_dtypes(frame: pl.DataFrame) -> pl.DataFrame:
    """Cast the prepared frame to what GX's pandas metrics handle vectorised.

    * Datetime / Date -> Datetime("ns") (clipped to the ns range).
    * Integers with no null -> Int64 (numpy int64: exact, vectorised).
    * Integers with nulls -> Float64 (NaN): GX handles pandas' nullable ``Int64`` only through slow
      per-row paths and breaks on ``pd.NA`` in column-pair comparisons. Exact up to 2**53 (90 trillion
      currency units in cents); these columns are only range-checked.
    """
    casts: list[pl.Expr] = []
    for name, dtype in frame.schema.items():
        c = pl.col(name)
        if dtype == pl.Datetime("ns") and getattr(dtype, "time_zone", None) is None:
            continue
        if isinstance(dtype, pl.Datetime) or dtype == pl.Date:
            if isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
                c = c.dt.replace_time_zone(None)
            casts.append(c.cast(pl.Datetime("us")).clip(_NS_MIN, _NS_MAX).cast(pl.Datetime("ns")))
        elif dtype.is_integer():
            casts.append(c.cast(pl.Float64 if frame[name].null_count() else pl.Int64))
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
        i = (r.expectation_config.meta or {}).get(_META_KEY)
        if i is None or i in by_index:
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


def validate_frame(
    table_name: str, frame: pl.DataFrame, *, run_id: str, as_of: date | None = None
) -> pl.DataFrame:
    """Validate `frame` against the suite of `table_name`: one `dq_results` row per check.

    `as_of` (default: today, UTC) bounds booking times: nothing after the end of the as-of day.
    Never raises for failed expectations (see `raise_on_blocking`); raises for programming errors.
    """
    return validate_table(table_name, frame, run_id=run_id, as_of=as_of).rows


def validate_table(
    table_name: str, frame: pl.DataFrame, *, run_id: str, as_of: date | None = None
) -> TableValidation:
    """`validate_frame`, keeping GX's own results next to the `dq_results` rows."""
    if isinstance(frame, pl.LazyFrame):
        frame = frame.collect()
    suite = suite_for(table_name)
    params = _suite_parameters(as_of)
    data_pd = _to_pandas(gx_frame(suite, frame))
    import pandas as pd

    schema_pd = pd.DataFrame({c: pd.Series([], dtype="object") for c in frame.columns})

    session = gx_session()
    validated_at = datetime.now(UTC).replace(tzinfo=None)
    with session.lock:
        data_suite, schema_suite = _gx_suites(session, suite)
        results: list[Any] = []
        outcomes: list[Any] = []
        for gx_suite, pdf in ((data_suite, data_pd), (schema_suite, schema_pd)):
            if not gx_suite.expectations:
                continue
            batch = session.batch_definition.get_batch(batch_parameters={"dataframe": pdf})
            outcome = batch.validate(gx_suite, result_format=RESULT_FORMAT, expectation_parameters=params)
            results.extend(outcome.results)
            outcomes.append(outcome)
    rows = _rows(suite, results, run_id=run_id, height=frame.height, params=params,
                 validated_at=validated_at)
    return TableValidation(
        contracts.DQ_RESULTS.conform(pl.DataFrame(rows, schema=contracts.DQ_RESULTS.polars_schema)).collect(),
        outcomes,
    )


def validate_frames(
    frames: dict[str, pl.DataFrame], *, run_id: str, as_of: date | None = None
) -> pl.DataFrame:
    """Validate several tables; results concatenated (one row per check per table)."""
    return validate_tables(frames, run_id=run_id, as_of=as_of).rows


def validate_tables(
    frames: dict[str, pl.DataFrame], *, run_id: str, as_of: date | None = None
) -> Validation:
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
