"""Cell work on a bank export, as Polars expressions over cleaned text cells: empty and placeholder
cells, numbers as banks write them (separators, currency symbols, accounting negatives), dates and
times in the profile's formats, and the built-in currency aliases. Values come out as canonical text,
not typed: the shared parser types them."""

from __future__ import annotations

import re

import polars as pl

from liushui.ingest.profile_spec import CellSpec, ProfileSpec

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


def clean(e: pl.Expr, spec: ProfileSpec, cell: CellSpec | None = None) -> pl.Expr:
    """Strip whitespace (and the column's `strip` characters, then whitespace again: `'6222…'` -> `6222…`);
    empty and placeholder cells become null. A column's own `placeholders` replace the file-wide list
    (and `placeholder_pattern`) for it."""
    s = e.str.strip_chars()
    if cell is not None and cell.strip:
        s = s.str.strip_chars(cell.strip).str.strip_chars()
    own = cell.placeholders if cell is not None else None
    is_placeholder = (s == "") | s.is_in(spec.placeholders if own is None else own)
    if spec.placeholder_pattern and own is None:
        is_placeholder = is_placeholder | s.str.contains(spec.placeholder_pattern)
    return pl.when(is_placeholder).then(pl.lit(None, pl.String)).otherwise(s).alias(e.meta.output_name())


_EXACT_CENTS = r"^\d+(?:\.\d{1,2})?$"


def extract_value(s: pl.Expr, pattern: str) -> pl.Expr:
    """The group `value` of `pattern` in a cleaned cell ('CNY 123.18' -> '123.18'), less the group `less`
    when the pattern has one and it matched ('131.77(已退款89.84)' -> '41.93', exact in cents). A cell the
    pattern does not match stays as written, so the parser reports it instead of a guess."""
    groups = s.str.extract_groups(pattern)
    value = groups.struct.field("value").str.strip_chars()
    if "less" in re.compile(pattern).groupindex:
        less = groups.struct.field("less").str.strip_chars()
        both = value.str.contains(_EXACT_CENTS) & less.str.contains(_EXACT_CENTS)
        net = (value.cast(pl.Decimal(18, 2)) - less.cast(pl.Decimal(18, 2))).cast(pl.String)
        # a refund larger than the amount is not netted into a negative: the parser reports the cell
        value = (
            pl.when(less.is_null() | (less == ""))
            .then(value)
            .when(both & ~net.str.starts_with("-"))
            .then(net)
            .otherwise(None)
        )
    return pl.when(value.is_null() | (value == "")).then(s).otherwise(value)


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


def _parsed(src: pl.Expr, fmt: str) -> pl.Expr:
    if _has_time(fmt):
        return src.str.strptime(pl.Datetime("us"), fmt, strict=False).dt.strftime("%Y-%m-%d %H:%M:%S")
    return src.str.strptime(pl.Date, fmt, strict=False).dt.strftime("%Y-%m-%d")


def _without_year(src: pl.Expr, fmt: str, statement: tuple[int, int | None]) -> pl.Expr:
    """A date written without a year ('12/29') in the statement's year, or the year before when its month
    comes after the statement's month (a January statement's December rows)."""
    year, month = statement
    this_year = _parsed(pl.lit(f"{year}|") + src, f"%Y|{fmt}")
    if month is None:
        return this_year
    year_before = _parsed(pl.lit(f"{year - 1}|") + src, f"%Y|{fmt}")
    after = this_year.str.slice(5, 2).cast(pl.Int32, strict=False) > month
    return pl.when(after).then(year_before).otherwise(this_year)


def datetime_text(
    src: pl.Expr, formats: list[str], statement: tuple[int, int | None] | None = None
) -> tuple[pl.Expr, pl.Expr]:
    """(parsed as canonical text or null, canonical text else the original cell). With `statement`
    (year, month), formats without a year take it from the statement."""
    parsed = []
    for fmt in formats:
        if statement is not None and not any(y in fmt for y in ("%Y", "%y", "%G")):
            parsed.append(_without_year(src, fmt, statement))
        else:
            parsed.append(_parsed(src, fmt))
    return pl.coalesce(parsed), pl.coalesce([*parsed, src])
