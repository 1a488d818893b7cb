"""The process-wide Great Expectations session: one ephemeral GX context (``import great_expectations``
costs seconds: imported on the first call, never at module import), progress bars off, analytics off,
nothing written to disk, nothing sent anywhere; and the GX suites built from our `Suite`s, cached in it.
`warm_up` creates it on a background thread."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from dataclasses import dataclass
from typing import Any

from .suites import Suite

META_KEY = "liushui_check"
"""The key of an expectation's ``meta`` holding the index of its `Check` in the suite."""


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
class GxSession:
    """The ephemeral context, its whole-dataframe batch definition, the lock validations run under (GX's
    context is not thread-safe) and the GX suites built so far."""

    context: Any
    batch_definition: Any
    lock: threading.Lock
    suites: dict[str, tuple[Any, Any]]  # suite name -> (GX data suite, GX schema suite)


_SESSION: GxSession | None = None
_SESSION_LOCK = threading.Lock()


def gx_session() -> GxSession:
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
            _SESSION = GxSession(context, batch_definition, threading.Lock(), {})
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


def gx_suites(session: GxSession, suite: Suite) -> tuple[Any, Any]:
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
        expectation.meta = {**(expectation.meta or {}), META_KEY: i}
        (schema if check.is_schema_check else data).add_expectation(expectation)
    if len(data.expectations) + len(schema.expectations) != len(suite.checks):
        raise RuntimeError(f"suite {suite.name}: GX dropped expectations (duplicates?)")
    session.suites[suite.name] = (data, schema)
    return data, schema
