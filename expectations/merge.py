"""A table validated in parts (account-hash shards as Parquet files, one in memory at a time) and the
parts' GX results merged into exactly the whole table's, by expectation type (`merge_rule`):

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
or a ``mostly`` below 1, has no merge rule: several parts are then refused (`unmergeable`) rather than
merged wrongly; `tests/test_validate_parts.py` keeps every suite mergeable. The same refusal for a
suite with a whole-table computed column (`Derived.whole_table`, e.g. the night's quarantined share
on source_files, a table that is always one frame): each part would compute its own value.

The GX results are merged the same way (one data and one schema result, as for one frame) so that the
run's Data Docs show the table. Keeping every part's would not: Data Docs key a result by suite, run
and table, so all but the last part's would be overwritten; keeping the first part's would show one
shard's counts as the table's.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from .gx_frames import gx_cast, gx_frame, to_pandas
from .results import SAMPLE_SIZE, check_index, exception_message
from .suites import Check, Suite

Part = Path | str | pl.LazyFrame | pl.DataFrame
"""A part of a table: a Parquet file or a frame."""


@dataclass
class PartResult:
    """GX's results on one frame (a whole table, or one part of it before merging)."""

    height: int
    outcomes: list[Any]
    """GX `ExpectationSuiteValidationResult`s: the data suite's, then the schema suite's."""
    integer_columns: frozenset[str]
    """GX columns that are integers in Polars (`restore_integers`)."""
    key_hashes: dict[int, pl.Series]
    """Check index -> hashes of the distinct keys of a uniqueness check (only when validating parts)."""


def sources(suite: Suite, gx_columns: Sequence[str]) -> set[str]:
    """The table columns `gx_columns` are computed from."""
    return {source for name in gx_columns for source in suite.source_columns(name)}


def load_part(part: Part, needed: set[str]) -> tuple[pl.DataFrame, list[str]]:
    """The part's columns among `needed` (a frame part as it is), and the names of all its columns."""
    if isinstance(part, pl.DataFrame):
        return part, part.columns
    lazy = pl.scan_parquet(part) if isinstance(part, (str, Path)) else part
    columns = lazy.collect_schema().names()
    # with no needed column at all, still the part's rows: their number is the element count
    return lazy.select([c for c in columns if c in needed] or columns).collect(), columns


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


def unmergeable(suite: Suite) -> list[str]:
    """What keeps `suite` from being validated in several parts: its expectation types without a merge
    rule, then its whole-table computed columns (empty: the suite merges)."""
    found = sorted({c.expectation_type for c in suite.checks if merge_rule(c) is None})
    found += sorted(f"{d.name} (a whole-table value)" for d in suite.derived if d.whole_table)
    return found


def key_hashes(suite: Suite, prepared: pl.DataFrame) -> dict[int, pl.Series]:
    """Check index -> hashes of the distinct keys, for each uniqueness check whose key columns the
    prepared frame has."""
    hashes: dict[int, pl.Series] = {}
    for i, check in enumerate(suite.checks):
        if merge_rule(check) == "keys" and (keys := key_values(prepared, check)) is not None:
            hashes[i] = keys.select(pl.struct(keys.columns).hash()).to_series().unique()
    return hashes


def merged_outcomes(suite: Suite, parts: list[PartResult]) -> list[Any]:
    """The parts' GX suite results merged into the whole table's: one per GX suite, as for one frame."""
    from great_expectations.core.expectation_validation_result import ExpectationSuiteValidationResult
    from great_expectations.validator.validation_statistics import calc_validation_statistics

    merged = []
    for k, first in enumerate(parts[0].outcomes):
        per_check: dict[int, list[Any]] = {}
        for part in parts:
            for r in part.outcomes[k].results:
                per_check.setdefault(check_index(suite, r), []).append(r)
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
    error = next((r for r in results if exception_message(r)), None)
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


def key_values(prepared: pl.DataFrame, check: Check) -> pl.DataFrame | None:
    """The key values a uniqueness check compares, as GX compares them (datetimes clipped as in
    `gx_cast`), without the rows GX ignores (key all null); None when a key column is missing (GX
    failed the check on it already)."""
    columns = list(check.gx_columns)
    if not set(columns) <= set(prepared.columns):
        return None
    keys = prepared.select(columns)
    casts = [cast for name, dtype in keys.schema.items() if (cast := gx_cast(name, dtype, has_nulls=False)) is not None]
    return keys.with_columns(casts).filter(~pl.all_horizontal(pl.col(c).is_null() for c in columns))


def count_keys_across_parts(suite: Suite, parts: Sequence[Part], results: list[PartResult]) -> None:
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
    suite: Suite, index: int, parts: Sequence[Part], results: list[PartResult], candidates: pl.Series
) -> None:
    """Replace each part's count and sample of uniqueness check `index` by its share of the whole table's:
    its rows whose key repeats inside the part or occurs in another part. Reads the key columns of every
    part twice, one part at a time: first the keys whose hash is a candidate (to tell real repeats from
    hash collisions), then each part's unexpected rows in order (for the sample)."""
    check = suite.checks[index]
    key = pl.struct(list(check.gx_columns))
    needed = sources(suite, check.gx_columns)

    def keys_of(part: Part) -> pl.DataFrame:
        keys = key_values(gx_frame(suite, load_part(part, needed)[0]), check)
        assert keys is not None  # every part had the key columns when hashed
        return keys

    found = pl.concat([keys_of(p).filter(key.hash().is_in(candidates.implode())).unique() for p in parts])
    shared = found.filter(key.is_duplicated()).select(key).to_series().unique()
    if shared.is_empty():
        return  # only hashes collided
    for part, result in zip(parts, results, strict=True):
        keys = keys_of(part)
        unexpected = keys.filter(key.is_duplicated() | key.is_in(shared.implode()))
        r = next(r for o in result.outcomes for r in o.results if check_index(suite, r) == index)
        r.success = unexpected.is_empty()
        r.result = {
            **r.result,
            "unexpected_count": unexpected.height,
            "partial_unexpected_list": _gx_values(check, unexpected.head(SAMPLE_SIZE)),
        }


def _gx_values(check: Check, keys: pl.DataFrame) -> list[Any]:
    """Key rows as GX lists unexpected ones: the value (one column), else a dict per row."""
    frame = to_pandas(keys)
    values: list[Any]
    if check.expectation_type == "expect_column_values_to_be_unique":
        values = frame[check.gx_columns[0]].tolist()
    else:
        values = frame.to_dict("records")
    return values
