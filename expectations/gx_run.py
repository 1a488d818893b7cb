"""One suite run by GX on one frame (a whole table, or one part of it): the data checks on the prepared
pandas frame, the schema checks (the column set) on a zero-row frame carrying the source frame's
column names, since the data frame holds derived columns."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import polars as pl

from .gx_frames import gx_frame, to_pandas
from .merge import PartResult, key_hashes
from .results import SAMPLE_SIZE
from .session import gx_session, gx_suites
from .suites import PARAM_BOOKED_AT_MAX, Suite

RESULT_FORMAT = {
    # BASIC: success, element / unexpected counts and a partial list of unexpected values. SUMMARY would
    # also compute index lists and value counts (slower, not stored).
    "result_format": "BASIC",
    "partial_unexpected_count": SAMPLE_SIZE,
}


def suite_parameters(as_of: date | None) -> dict[str, Any]:
    """The suite parameters of a validation: bookings up to the end of the as-of day (default: today, UTC)."""
    as_of = as_of or datetime.now(UTC).date()
    return {PARAM_BOOKED_AT_MAX: datetime.combine(as_of + timedelta(days=1), time())}


def run_suite(
    suite: Suite, frame: pl.DataFrame, columns: Sequence[str], params: dict[str, Any], *, hash_keys: bool = False
) -> PartResult:
    """Run `suite` on `frame`. `columns`: the frame's column names, for the schema checks (the frame may
    hold only the columns the data checks read). `hash_keys`: keep the key hashes of the uniqueness
    checks (a part of several)."""
    import pandas as pd  # type: ignore[import-untyped]

    prepared = gx_frame(suite, frame)
    data_pd = to_pandas(prepared)
    schema_pd = pd.DataFrame({c: pd.Series([], dtype="object") for c in columns})
    session = gx_session()
    outcomes: list[Any] = []
    with session.lock:
        data_suite, schema_suite = gx_suites(session, suite)
        for gx_suite, pdf in ((data_suite, data_pd), (schema_suite, schema_pd)):
            if not gx_suite.expectations:
                continue
            batch = session.batch_definition.get_batch(batch_parameters={"dataframe": pdf})
            outcomes.append(batch.validate(gx_suite, result_format=RESULT_FORMAT, expectation_parameters=params))
    hashes = key_hashes(suite, prepared) if hash_keys else {}
    integers = frozenset(name for name, dtype in prepared.schema.items() if dtype.is_integer())
    return PartResult(frame.height, outcomes, integers, hashes)
