"""Cell work on a bank export, as Polars expressions over cleaned text cells: empty and placeholder
cells, numbers as banks write them (separators, currency symbols, accounting negatives), dates and
times in the profile's formats, and the built-in currency aliases. Values come out as canonical text,
not typed: the shared parser types them."""

from __future__ import annotations

import polars as pl

from liushui.ingest.profile_spec import ProfileSpec

# Built-in currency aliases (a profile's own `currency.map` wins over these).
DEFAULT_CURRENCY_ALIASES: dict[str, str] = {
    "人民币": "CNY",
    "人民币元": "CNY",
    "RMB": "CNY",
    "CNY": "CNY",
    "¥": "CNY",
    "￥": "CNY",
    "港币": "HKD",
    "港元": "HKD",
    "HKD": "HKD",
    "美元": "USD",
    "美金": "USD",
    "USD": "USD",
    "欧元": "EUR",
    "EUR": "EUR",
    "英镑": "GBP",
    "GBP": "GBP",
    "日元": "JPY",
    "JPY": "JPY",
    "澳门元": "MOP",
    "新台币": "TWD",
    "澳元": "AUD",
    "加元": "CAD",
    "新加坡元": "SGD",
}

# A number as banks write it: optional sign, optional currency symbol, digits with or without
# thousands separators, optional decimals; or the same in parentheses (accounting negative).
_SYM = r"(?:[¥￥$€£]|HK\$|US\$)?"
_DIGITS = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?|\.\d+"
_NUM_RE = rf"^[+-]?{_SYM}\s*(?:{_DIGITS})$|^[+-]?\(\s*{_SYM}\s*(?:{_DIGITS})\s*\)$"
_ZERO_RE = r"^-?0*\.?0*$"
SYMBOL_GROUP = r"(US\$|HK\$|[¥￥$€£])"


def clean(e: pl.Expr, spec: ProfileSpec) -> pl.Expr:
    """Strip whitespace; empty and placeholder cells become null."""
    s = e.str.strip_chars()
    is_placeholder = (s == "") | s.is_in(spec.placeholders)
    if spec.placeholder_pattern:
        is_placeholder = is_placeholder | s.str.contains(spec.placeholder_pattern)
    return pl.when(is_placeholder).then(pl.lit(None, pl.String)).otherwise(s).alias(e.meta.output_name())


def _number(s: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """(is_number, normalised signed text) of a cleaned cell.

    '-1,234.50' -> '-1234.50', '(5.00)' -> '-5.00', '+¥12' -> '12'; '1,23.4' is not a number.
    """
    ok = s.str.contains(_NUM_RE)
    neg = s.str.starts_with("-") | s.str.contains(r"^\+?\(")
    digits = s.str.replace_all(r"[^0-9.]", "")
    digits = pl.when(digits.str.starts_with(".")).then(pl.lit("0") + digits).otherwise(digits)
    norm = pl.when(neg).then(pl.lit("-") + digits).otherwise(digits)
    return ok, norm


def money_text(s: pl.Expr) -> pl.Expr:
    """Normalised signed decimal text when the cell is a number, else the (stripped) original text."""
    ok, norm = _number(s)
    return pl.when(ok).then(norm).otherwise(s)


def abs_text(s: pl.Expr) -> pl.Expr:
    """The absolute value as decimal text when the cell is a number, else null."""
    ok, norm = _number(s)
    return pl.when(ok).then(norm.str.strip_prefix("-")).otherwise(None)


def is_zero(s: pl.Expr) -> pl.Expr:
    """Whether the cell is a number equal to zero."""
    ok, norm = _number(s)
    return ok & norm.str.contains(_ZERO_RE)


def _has_time(fmt: str) -> bool:
    return any(t in fmt for t in ("%H", "%I", "%T", "%R", "%M:%S"))


def datetime_text(src: pl.Expr, formats: list[str]) -> tuple[pl.Expr, pl.Expr]:
    """(parsed as canonical text or null, canonical text else the original cell)."""
    parsed = []
    for fmt in formats:
        if _has_time(fmt):
            p = src.str.strptime(pl.Datetime("us"), fmt, strict=False).dt.strftime("%Y-%m-%d %H:%M:%S")
        else:
            p = src.str.strptime(pl.Date, fmt, strict=False).dt.strftime("%Y-%m-%d")
        parsed.append(p)
    return pl.coalesce(parsed), pl.coalesce([*parsed, src])
