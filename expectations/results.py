"""GX's results read back as `dq_results` rows: one row per check of a suite, matched to its `Check` by
the index GX carries in the expectation's meta, with the counts, the level and a short readable detail
(GX's error, a sample of unexpected values or the observed value, the suite parameters it used)."""

from __future__ import annotations

import contextlib
import json
import math
from datetime import datetime
from typing import Any

from .session import META_KEY
from .suites import Check, Suite

DETAIL_MAX_CHARS = 200
SAMPLE_SIZE = 5
"""Unexpected values GX lists per check (and `validate_parts` keeps when merging)."""


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


def exception_message(result: Any) -> str | None:
    """The error GX met evaluating a check (e.g. a missing column), or None."""
    info = result.exception_info or {}
    if "raised_exception" in info:
        return info.get("exception_message") if info.get("raised_exception") else None
    messages: list[str] = [
        v["exception_message"] for v in info.values() if isinstance(v, dict) and v.get("exception_message")
    ]
    return "; ".join(messages) if messages else None


def _detail(check: Check, result: Any, params: dict[str, Any]) -> str | None:
    parts: list[str] = []
    error = exception_message(result)
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


def check_index(suite: Suite, result: Any) -> int:
    """The index (in `suite.checks`) of the check a GX result belongs to."""
    i: int | None = (result.expectation_config.meta or {}).get(META_KEY)
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


def restore_integers(suite: Suite, results: list[Any], integer_columns: frozenset[str]) -> None:
    """Samples of integer columns as integers: GX saw such a column as Float64 when the frame had a null in
    it (`_gx_cast`), and the sample of one frame must not read ``0.0`` where another (or a part of it,
    `validate_parts`) reads ``0``."""
    for r in results:
        check = suite.checks[check_index(suite, r)]
        res = r.result or {}
        if res.get("partial_unexpected_list") and set(check.gx_columns) <= integer_columns:
            r.result = {**res, "partial_unexpected_list": _integral(list(res["partial_unexpected_list"]))}


def dq_rows(
    suite: Suite,
    results: list[Any],
    *,
    run_id: str,
    height: int,
    params: dict[str, Any],
    validated_at: datetime,
) -> list[dict[str, Any]]:
    """One `dq_results` row per check of `suite`, in the suite's order, from GX's `results` on a frame of
    `height` rows (each check must have exactly one result)."""
    by_index: dict[int, Any] = {}
    for r in results:
        i = check_index(suite, r)
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
        error = exception_message(r)
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
