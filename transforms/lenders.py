"""Lender classification: which transactions are loan flows, with which lender, in which role.

`classify_lenders` returns its input unchanged (same rows, same order, same values) plus three
columns per transaction: `lender_id` (registry id of the lender, null when none), `lender_category`
(consumer_finance, microloan, bank_loan, ...) and `loan_role` (disbursement, repayment, penalty,
failed_debit, reversal, or null).

The lenders are data: `liushui/reference/lenders.yaml`, loaded and validated by
`load_lender_registry` into one row per registry entry. Matching rules (docs/lenders.md):

- Text is matched after folding full-width ASCII to half-width (（）→(), ＬＯＡＮ→LOAN), case-insensitively.
- An entry matches when its counterparty pattern matches the counterparty name, OR its description
  pattern matches the memo, OR one of its `when_both` pairs matches both.
- Entries are tried in registry order; the first matching entry decides: the row is that lender's,
  unless one of the entry's exclude patterns matches the counterparty or the memo, in which case the
  row is no lender's (later entries are not tried).
- The role is decided by the registry's role keywords and the sign of the amount, in this priority:
  failed_debit > reversal > penalty > disbursement / repayment.

Lender identity depends only on (counterparty, memo), which repeat heavily in bank statements, so the
regexes run once per distinct pair that could be a loan flow, and the result is joined back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import polars as pl
import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from liushui.vocabularies import LOAN_ROLES, LenderCategory, LoanRole
from transforms.patterns import ascii_word_boundaries

if TYPE_CHECKING:
    from polars._typing import PolarsDataType
    from polars.expr.whenthen import ChainedThen, Then

REQUIRED_COLUMNS = ("txn_id", "amount", "counterparty_name", "description")
OUTPUT_COLUMNS = ("lender_id", "lender_category", "loan_role")

_REGISTRY_COLUMNS: dict[str, PolarsDataType] = {
    "priority": pl.UInt32,
    "lender_id": pl.String,
    "name_zh": pl.String,
    "name_en": pl.String,
    "institution": pl.String,
    "category": pl.String,
    "is_generic": pl.Boolean,
    "counterparty_pattern": pl.String,
    "description_pattern": pl.String,
    "both_counterparty_patterns": pl.List(pl.String),
    "both_description_patterns": pl.List(pl.String),
    "exclude_pattern": pl.String,
    "hint_disbursement": pl.String,
    "hint_repayment": pl.String,
    "hint_penalty": pl.String,
    "kw_disbursement": pl.String,
    "kw_repayment": pl.String,
    "kw_penalty": pl.String,
    "kw_failed_debit": pl.String,
    "kw_reversal": pl.String,
}
REGISTRY_SCHEMA = pl.Schema(_REGISTRY_COLUMNS)
"""One row per registry entry, `priority` = position in the file (0 wins first).

`*_pattern` columns are the entry's pattern lists combined into one regex (null when the list is empty);
`both_*_patterns` are the `when_both` pairs as two parallel lists. `hint_*` are the entry's own
kind hints; `kw_*` are the registry-wide role keywords, repeated on every row.
"""

_HINT_KINDS: tuple[LoanRole, ...] = ("disbursement", "repayment", "penalty")
"""The roles a registry entry may hint with its own keywords (`kind_hints`)."""

# Full-width ASCII (U+FF01..U+FF5E) and the ideographic space fold to their half-width forms, so that
# 重庆（中国） and 重庆(中国) are the same name.
_FOLD_TEXT = {chr(c): chr(c - 0xFEE0) for c in range(0xFF01, 0xFF5F)} | {"\u3000": " "}
# In a pattern a full-width bracket is a literal bracket (a company name); half-width ones are regex.
_FOLD_PATTERN = _FOLD_TEXT | {"（": r"\(", "）": r"\)"}
_FOLD_PATTERN_RE = re.compile("|".join(re.escape(k) for k in _FOLD_PATTERN))

_CP = "__lender_cp"
_DS = "__lender_ds"
_FLAGS = ("__is_failed", "__is_reversal", "__is_penalty", "__is_disbursement", "__is_repayment")


class LenderRegistryError(ValueError):
    """The lender registry file cannot be used; the message names the file, the entry and the field."""


# --------------------------------------------------------------------------------------------------
# Registry loading and validation


def _fold_pattern(pattern: str) -> str:
    folded = _FOLD_PATTERN_RE.sub(lambda m: _FOLD_PATTERN[m.group(0)], pattern)
    return ascii_word_boundaries(folded)  # the registry's patterns keep the fast regex engine


def _valid_regex(pattern: str) -> str:
    """Accept a pattern only if the engine that will run it (Polars / Rust regex) compiles it and it
    cannot match the empty string (which would match every transaction)."""
    if not pattern.strip():
        raise ValueError("empty pattern")
    try:
        matches_empty = pl.select(pl.lit("").str.contains(f"(?i){_fold_pattern(pattern)}")).item()
    except pl.exceptions.PolarsError as exc:
        detail = next((ln.strip() for ln in str(exc).splitlines() if ln.strip().startswith("error:")), "")
        raise ValueError(f"not a valid regular expression {pattern!r} ({detail or 'parse error'})") from None
    if matches_empty:
        raise ValueError(f"pattern {pattern!r} matches the empty string, so it would match every transaction")
    return pattern


Pattern = Annotated[str, AfterValidator(_valid_regex)]
Snake = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Names(_Strict):
    zh: str = Field(min_length=1)
    en: str = Field(min_length=1)


class _PatternPair(_Strict):
    counterparty: list[Pattern] = Field(min_length=1)
    description: list[Pattern] = Field(min_length=1)


class _KindHints(_Strict):
    disbursement: list[Pattern] = []
    repayment: list[Pattern] = []
    penalty: list[Pattern] = []


class LenderEntry(_Strict):
    """One registry entry: a lender (credit line) and the evidence that a transaction is theirs."""

    lender_id: Snake
    names: _Names
    institution: Snake
    category: LenderCategory
    is_generic: bool = False
    counterparty_patterns: list[Pattern] = []
    description_patterns: list[Pattern] = []
    when_both: list[_PatternPair] = []
    exclude_patterns: list[Pattern] = []
    kind_hints: _KindHints = _KindHints()
    notes: str | None = None

    @model_validator(mode="after")
    def _has_a_matcher(self) -> LenderEntry:
        if not (self.counterparty_patterns or self.description_patterns or self.when_both):
            raise ValueError("needs at least one of counterparty_patterns, description_patterns or when_both")
        return self


class RoleKeywords(_Strict):
    disbursement: list[Pattern] = Field(min_length=1)
    repayment: list[Pattern] = Field(min_length=1)
    penalty: list[Pattern] = Field(min_length=1)
    failed_debit: list[Pattern] = Field(min_length=1)
    reversal: list[Pattern] = Field(min_length=1)


class _RegistryHead(_Strict):
    version: int
    role_keywords: RoleKeywords
    shared_patterns: dict[str, Any] = {}
    lenders: list[Any] = Field(min_length=1)


def _format_error(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(entry)"
        parts.append(f"{where}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)


def _combine(patterns: Iterable[str]) -> str | None:
    folded = [f"(?:{_fold_pattern(p)})" for p in patterns]
    return "(?i)" + "|".join(folded) if folded else None


def _read_registry_text(path: Path | None) -> tuple[str, str]:
    if path is None:
        shipped = resources.files("liushui") / "reference" / "lenders.yaml"
        return "liushui/reference/lenders.yaml", shipped.read_text(encoding="utf-8")
    try:
        return str(path), Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise LenderRegistryError(f"{path}: cannot read the lender registry ({exc.strerror})") from None


def load_lender_registry(path: Path | None = None) -> pl.DataFrame:
    """Read, validate and compile the lender registry (default: the shipped `lenders.yaml`).

    Returns one row per entry in file order (`REGISTRY_SCHEMA`). Raises `LenderRegistryError` naming the
    file, the entry (position and lender_id) and the field for any problem: unreadable YAML, unknown or
    missing keys, an unknown category, a duplicate lender_id, a regex that does not compile or that
    matches the empty string.
    """
    source, text = _read_registry_text(path)
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise LenderRegistryError(f"{source}: not valid YAML: {exc}") from None
    if not isinstance(raw, Mapping):
        raise LenderRegistryError(f"{source}: expected a mapping with 'version', 'role_keywords', 'lenders'")
    try:
        head = _RegistryHead.model_validate(raw)
    except ValidationError as exc:
        raise LenderRegistryError(f"{source}: {_format_error(exc)}") from None

    entries: list[LenderEntry] = []
    seen: dict[str, int] = {}
    for position, item in enumerate(head.lenders, start=1):
        label = item.get("lender_id", "?") if isinstance(item, Mapping) else "?"
        try:
            entry = LenderEntry.model_validate(item)
        except ValidationError as exc:
            raise LenderRegistryError(f"{source}: lender entry #{position} ({label}): {_format_error(exc)}") from None
        if entry.lender_id in seen:
            raise LenderRegistryError(
                f"{source}: lender entry #{position} ({label}): duplicate lender_id, "
                f"already used by entry #{seen[entry.lender_id]}"
            )
        seen[entry.lender_id] = position
        entries.append(entry)
    return _registry_frame(entries, head.role_keywords)


def _registry_frame(entries: list[LenderEntry], keywords: RoleKeywords) -> pl.DataFrame:
    kw = {f"kw_{kind}": _combine(getattr(keywords, kind)) for kind in LOAN_ROLES}
    rows = [
        {
            "priority": priority,
            "lender_id": e.lender_id,
            "name_zh": e.names.zh,
            "name_en": e.names.en,
            "institution": e.institution,
            "category": e.category,
            "is_generic": e.is_generic,
            "counterparty_pattern": _combine(e.counterparty_patterns),
            "description_pattern": _combine(e.description_patterns),
            "both_counterparty_patterns": [_combine(p.counterparty) for p in e.when_both],
            "both_description_patterns": [_combine(p.description) for p in e.when_both],
            "exclude_pattern": _combine(e.exclude_patterns),
            **{f"hint_{kind}": _combine(getattr(e.kind_hints, kind)) for kind in _HINT_KINDS},
            **kw,
        }
        for priority, e in enumerate(entries)
    ]
    return pl.DataFrame(rows, schema=REGISTRY_SCHEMA)


# --------------------------------------------------------------------------------------------------
# Classification


def _union(patterns: Iterable[str | None]) -> str | None:
    """One regex matching whatever any of the (already combined, `(?i)`-prefixed) patterns matches."""
    bodies = [p.removeprefix("(?i)") for p in patterns if p]
    return "(?i)" + "|".join(bodies) if bodies else None


def _contains(column: str, pattern: str | None) -> pl.Expr:
    return pl.col(column).str.contains(pattern) if pattern else pl.lit(False)


def _registry_rows(registry: pl.DataFrame) -> list[dict[str, Any]]:
    missing = [c for c in REGISTRY_SCHEMA.names() if c not in registry.columns]
    if missing:
        raise ValueError(f"lender registry frame lacks columns {missing}; build it with load_lender_registry")
    if registry.height == 0:
        raise ValueError("lender registry is empty")
    rows = registry.sort("priority").to_dicts()
    for kind in LOAN_ROLES:
        if registry[f"kw_{kind}"].n_unique() != 1:
            raise ValueError(f"lender registry: kw_{kind} must be the same on every row (registry-wide)")
    return rows


def _entry_matches(row: Mapping[str, Any]) -> pl.Expr:
    matched = _contains(_CP, row["counterparty_pattern"]) | _contains(_DS, row["description_pattern"])
    for cp_pattern, ds_pattern in zip(row["both_counterparty_patterns"], row["both_description_patterns"], strict=True):
        matched = matched | (_contains(_CP, cp_pattern) & _contains(_DS, ds_pattern))
    return matched


def _entry_excluded(row: Mapping[str, Any]) -> pl.Expr:
    return _contains(_CP, row["exclude_pattern"]) | _contains(_DS, row["exclude_pattern"])


def _keyword_flag(kind: LoanRole, rows: list[dict[str, Any]]) -> pl.Expr:
    """Memo mentions a role keyword: registry-wide, plus the matched entry's own kind hint."""
    base = rows[0][f"kw_{kind}"]
    flag = _contains(_DS, base)
    hinted = [r for r in rows if r.get(f"hint_{kind}")]
    if not hinted:
        return flag
    chain: Then | ChainedThen = pl.when(pl.col("lender_id") == hinted[0]["lender_id"]).then(
        _contains(_DS, _union([base, hinted[0][f"hint_{kind}"]]))
    )
    for r in hinted[1:]:
        chain = chain.when(pl.col("lender_id") == r["lender_id"]).then(
            _contains(_DS, _union([base, r[f"hint_{kind}"]]))
        )
    return chain.otherwise(flag)


def _could_be_loan(rows: list[dict[str, Any]]) -> pl.Expr:
    """Cheap pre-filter: some entry pattern or a penalty / failed-debit keyword occurs at all. Only these
    rows go through the per-entry regexes."""
    any_cp = _union(
        [r["counterparty_pattern"] for r in rows] + [p for r in rows for p in r["both_counterparty_patterns"]]
    )
    any_ds = _union(
        [r["description_pattern"] for r in rows]
        + [p for r in rows for p in r["both_description_patterns"]]
        + [rows[0]["kw_penalty"], rows[0]["kw_failed_debit"]]
        + [r["hint_penalty"] for r in rows]
    )
    return _contains(_CP, any_cp) | _contains(_DS, any_ds)


def _classified_pairs(pairs: pl.LazyFrame, rows: list[dict[str, Any]]) -> pl.LazyFrame:
    """Per distinct (counterparty, memo): lender, category and the role keyword flags."""
    # An entry whose exclusion fires claims the row as "not a loan" ("") so no later entry (a generic
    # bucket sharing the company name) picks up, say, a 花呗 refund.
    claimed = pl.coalesce(
        [
            pl.when(_entry_matches(r)).then(
                pl.when(_entry_excluded(r)).then(pl.lit("")).otherwise(pl.lit(r["lender_id"]))
            )
            for r in rows
        ]
    )
    lender_id = pl.when(claimed != "").then(claimed)
    categories = {r["lender_id"]: r["category"] for r in rows}
    is_penalty = _keyword_flag("penalty", rows)
    return pairs.with_columns(lender_id.alias("lender_id")).with_columns(
        pl.col("lender_id").replace_strict(categories, default=None, return_dtype=pl.String).alias("lender_category"),
        _contains(_DS, rows[0]["kw_failed_debit"]).alias("__is_failed"),
        (_contains(_DS, rows[0]["kw_reversal"]) & (pl.col("lender_id").is_not_null() | is_penalty)).alias(
            "__is_reversal"
        ),
        is_penalty.alias("__is_penalty"),
        _keyword_flag("disbursement", rows).alias("__is_disbursement"),
        _keyword_flag("repayment", rows).alias("__is_repayment"),
    )


def loan_role_is(role: LoanRole) -> pl.Expr:
    """`loan_role` is `role`."""
    return pl.col("loan_role") == role


def _role(role: LoanRole) -> pl.Expr:
    return pl.lit(role)


def _loan_role() -> pl.Expr:
    has_lender = pl.col("lender_id").is_not_null()
    inflow, outflow = pl.col("amount") > 0, pl.col("amount") < 0
    says_repay_only = pl.col("__is_repayment") & ~pl.col("__is_disbursement")
    says_disburse_only = pl.col("__is_disbursement") & ~pl.col("__is_repayment")
    return (
        pl.when(pl.col("__is_failed"))
        .then(_role("failed_debit"))
        .when(pl.col("__is_reversal"))
        .then(_role("reversal"))
        .when(pl.col("__is_penalty") & outflow)
        .then(_role("penalty"))
        # Money in from a lender is new credit unless the memo speaks only of repaying (a refunded
        # overpayment) or of a penalty (a waived fee): those are not disbursements.
        .when(has_lender & inflow & ~says_repay_only & ~pl.col("__is_penalty"))
        .then(_role("disbursement"))
        .when(has_lender & outflow & ~says_disburse_only)
        .then(_role("repayment"))
        .otherwise(pl.lit(None, dtype=pl.String))
    )


def classify_lenders(transactions: pl.LazyFrame, registry: pl.DataFrame) -> pl.LazyFrame:
    """Add `lender_id`, `lender_category` and `loan_role` to canonical transactions.

    Needs at least `txn_id, amount (signed: + in, - out), counterparty_name, description`. Every input row
    comes out once, in input order, with its input values untouched.
    """
    schema = transactions.collect_schema()
    missing = [c for c in REQUIRED_COLUMNS if c not in schema]
    if missing:
        raise ValueError(f"classify_lenders: transactions lack required columns {missing}")
    clashing = [c for c in (*OUTPUT_COLUMNS, _CP, _DS, *_FLAGS) if c in schema]
    if clashing:
        raise ValueError(f"classify_lenders: transactions already have columns {clashing}")
    rows = _registry_rows(registry)

    def folded(column: str) -> pl.Expr:
        return pl.col(column).cast(pl.String).fill_null("").str.replace_many(_FOLD_TEXT)

    keyed = transactions.with_columns(folded("counterparty_name").alias(_CP), folded("description").alias(_DS))
    pairs = keyed.filter(_could_be_loan(rows)).select(_CP, _DS).unique()
    return (
        keyed.join(_classified_pairs(pairs, rows), on=[_CP, _DS], how="left", maintain_order="left")
        .with_columns(pl.col(flag).fill_null(False) for flag in _FLAGS)
        .with_columns(_loan_role().alias("loan_role"))
        .drop(_CP, _DS, *_FLAGS)
    )
