"""Reading a bank export with its profile: one output row per data line, every value canonical text
(``OUTPUT_COLUMNS``), with ``source_row``, ``raw`` and the reader-level rejects (ragged rows, amounts set
twice, unknown or excluded directions, currency symbols that disagree with the row's currency).

`read_profiled` builds one Polars expression per canonical field from the profile's mapping, in the
order below; a mapped column missing from the header is a `LayoutError` naming it.
"""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from liushui.contracts import CANONICAL_INPUT_COLUMNS
from liushui.ingest.parse import symbol_disagrees
from liushui.ingest.profile_cells import (
    DEFAULT_CURRENCY_ALIASES,
    SYMBOL_GROUP,
    abs_text,
    clean,
    datetime_text,
    is_zero,
    money_text,
)
from liushui.ingest.profile_spec import AccountSpec, AmountSpec, Profile, ProfileSpec, norm_header
from liushui.ingest.profile_text import LayoutError, SplitExport, split_export

VALUE_COLUMNS = CANONICAL_INPUT_COLUMNS
OUTPUT_COLUMNS = (*VALUE_COLUMNS, "source_row", "source_line", "raw", "reject_code", "reject_reason")

_Reject = tuple[pl.Expr, str, pl.Expr]
"""A reader reject rule: (condition, reject_code, reject_reason); the first rule that holds wins."""


def read_profiled(path: Path, profile: Profile) -> pl.DataFrame:
    """Read a bank export with ``profile``: one output row per data line, all values canonical TEXT."""
    path = Path(path)
    spec = profile.spec
    cols = _Columns(path.name, profile.name, split_export(path, profile))
    frame = _cell_frame(cols.split, spec)

    date_parsed, booked_at = _booked_at(cols, spec)
    amount, tag, rejects = _amount(cols, spec.amount, profile.name)
    currency = _currency(cols, spec)
    rejects += _currency_mismatches(cols, spec.amount, currency)
    file_account = _file_account(path, cols.split.preamble, spec.account_id)
    account = pl.coalesce([cols.cell(spec.account_id.column, "account_id"), pl.lit(file_account, pl.String)])
    cp_name, cp_account = _counterparty(cols, spec)
    description = _description(cols, spec, tag)
    code, reason = _reject_code_and_reason(cols.width, rejects)

    out = frame.with_columns(
        account_id=account,
        txn_id=cols.cell(spec.columns.get("txn_id"), "txn_id"),
        booked_at=booked_at,
        amount=amount,
        currency=currency,
        balance_after=money_text(cols.cell(spec.columns.get("balance_after"), "balance_after")),
        counterparty_name=cp_name,
        counterparty_account=cp_account,
        description=description,
        channel=cols.cell(spec.columns.get("channel"), "channel"),
        reject_code=code,
        reject_reason=reason,
        _date_ok=date_parsed.is_not_null(),
    )
    if spec.trailing_junk_is_footer:
        out = _without_trailing_junk(out, cols)
    return out.select(
        *[pl.col(c).cast(pl.String) for c in VALUE_COLUMNS],
        source_row=(pl.col("_i") + 1).cast(pl.Int64),
        source_line=pl.col("_line"),
        raw=pl.col("raw"),
        reject_code=pl.col("reject_code"),
        reject_reason=pl.col("reject_reason"),
    )


class _Columns:
    """The split export's cells, found by the bank's column names (cell frame columns ``c0``, ``c1`` ...)."""

    def __init__(self, file_name: str, profile_name: str, split: SplitExport) -> None:
        self.file_name = file_name
        self.profile_name = profile_name
        self.split = split
        self.width = len(split.header)
        self._index: dict[str, int] = {}
        for i, h in enumerate(split.header):
            self._index.setdefault(h, i)  # duplicated header names: the first column wins

    def cell(self, bank_name: str | None, key: str) -> pl.Expr:
        """The cleaned cell of the column `bank_name` (null when the profile maps none); `key` names the
        profile entry in the error when the header lacks that column."""
        if not bank_name:
            return pl.lit(None, pl.String)
        h = norm_header(bank_name)
        if h not in self._index:
            raise LayoutError(
                f"{self.file_name}: profile '{self.profile_name}' maps {key} to column '{bank_name}', which is not "
                f"in the header (line {self.split.header_line}: {', '.join(self.split.header)})"
            )
        return pl.col(f"c{self._index[h]}")


def _cell_frame(split: SplitExport, spec: ProfileSpec) -> pl.DataFrame:
    """One row per data record: its cells ``c0`` .. cleaned once (whitespace stripped, empty / placeholder
    -> null), ``_n`` its cell count as written, ``raw`` its text, ``_line`` its first physical line and
    ``_i`` its index."""
    width = len(split.header)
    columns = list(zip(*split.cells, strict=True)) if split.cells else [() for _ in range(width)]
    frame = pl.DataFrame(
        {f"c{i}": pl.Series(f"c{i}", list(col), dtype=pl.String) for i, col in enumerate(columns)}
        | {
            "_n": pl.Series("_n", split.n_cells, dtype=pl.Int64),
            "raw": pl.Series("raw", split.raws, dtype=pl.String),
            "_line": pl.Series("_line", split.lines, dtype=pl.Int64),
        }
    ).with_row_index("_i")
    return frame.with_columns(clean(pl.col(f"c{i}"), spec) for i in range(width))


def _booked_at(cols: _Columns, spec: ProfileSpec) -> tuple[pl.Expr, pl.Expr]:
    """(parsed as canonical text or null, canonical text else the cell as written) of the booking time:
    one date/time cell, or a date cell and an optional time cell."""
    ba = spec.booked_at
    if ba.column:
        date_src = cols.cell(ba.column, "booked_at")
    else:
        date_src = pl.concat_str(
            [cols.cell(ba.date_column, "booked_at"), cols.cell(ba.time_column, "booked_at")],
            separator=" ",
            ignore_nulls=True,
        )
        date_src = pl.when(date_src == "").then(None).otherwise(date_src)
    # an Excel date cell comes as YYYY-MM-DD HH:MM:SS whatever its display format
    formats = [*ba.formats, "%Y-%m-%d %H:%M:%S"] if cols.split.workbook else ba.formats
    return datetime_text(date_src, formats)


def _amount(cols: _Columns, am: AmountSpec, profile_name: str) -> tuple[pl.Expr, pl.Expr, list[_Reject]]:
    """(signed amount text, direction tag for the description or null, reject rules) by the convention."""
    no_tag = pl.lit(None, pl.String)
    if am.convention == "signed":
        return money_text(cols.cell(am.column, "amount")), no_tag, []
    if am.convention == "split":
        amount, ambiguous = _split_amount(cols, am)
        return amount, no_tag, [ambiguous]
    return _direction_amount(cols, am, profile_name)


def _split_amount(cols: _Columns, am: AmountSpec) -> tuple[pl.Expr, _Reject]:
    """An income and an expense column: the one that is set, signed; both set is ambiguous."""
    inc, exp = cols.cell(am.income_column, "amount"), cols.cell(am.expense_column, "amount")
    inc_off = inc.is_null() | is_zero(inc)
    exp_off = exp.is_null() | is_zero(exp)
    exp_abs = abs_text(exp)
    amount = (
        pl.when(inc.is_null() & exp.is_null())
        .then(None)
        .when(~inc_off)
        .then(pl.when(exp_off).then(money_text(inc)).otherwise(None))
        .when(~exp_off)
        .then(pl.when(exp_abs.is_not_null()).then(pl.lit("-") + exp_abs).otherwise(exp))
        .otherwise(money_text(pl.coalesce([inc, exp])))  # both zero
    )
    ambiguous = pl.format(
        "both '{}' ({}) and '{}' ({}) are set", pl.lit(am.income_column), inc, pl.lit(am.expense_column), exp
    )
    return amount, (~inc_off & ~exp_off, "ambiguous_amount", ambiguous)


def _direction_amount(cols: _Columns, am: AmountSpec, profile_name: str) -> tuple[pl.Expr, pl.Expr, list[_Reject]]:
    """An absolute amount and a direction column mapped to a sign (or to "reject"); some directions tag
    the description."""
    value = cols.cell(am.column, "amount")
    direction = cols.cell(am.direction_column, "amount.direction_column")
    signs = {k: str(v) for k, v in am.direction_map.items()}
    sign = direction.replace_strict(signs, default=None, return_dtype=pl.String)
    absolute = abs_text(value)
    amount = (
        pl.when(absolute.is_null())
        .then(value)
        .when(sign == "-1")
        .then(pl.lit("-") + absolute)
        .when(sign == "1")
        .then(absolute)
        .otherwise(value)
    )
    written = pl.when(direction.is_null()).then(pl.lit("(empty)")).otherwise(pl.format("'{}'", direction))
    unknown = pl.format(
        "{} {} is not one of {}", pl.lit(am.direction_column), written, pl.lit(", ".join(am.direction_map))
    )
    excluded = pl.format(
        "{} '{}' is excluded by profile '{}'", pl.lit(am.direction_column), direction, pl.lit(profile_name)
    )
    tag = pl.lit(None, pl.String)
    if am.direction_tags:
        tag = pl.when(direction.is_in(am.direction_tags)).then(pl.format("[{}]", direction)).otherwise(None)
    return amount, tag, [(sign.is_null(), "bad_direction", unknown), (sign == "reject", "excluded_direction", excluded)]


def _currency(cols: _Columns, spec: ProfileSpec) -> pl.Expr:
    """ISO code via the profile's map and the built-in aliases; a 3-letter code upper-cased; an empty
    cell (or no column) the profile's default; anything else as written (the parser rejects it)."""
    cur = spec.currency
    aliases = DEFAULT_CURRENCY_ALIASES | cur.map
    raw_cur = cols.cell(cur.column, "currency")
    mapped = raw_cur.replace_strict(aliases, default=None, return_dtype=pl.String)
    return (
        pl.when(raw_cur.is_null())
        .then(pl.lit(cur.default))
        .when(mapped.is_not_null())
        .then(mapped)
        .when(raw_cur.str.contains(r"^[A-Za-z]{3}$"))
        .then(raw_cur.str.to_uppercase())
        .otherwise(raw_cur)
    )


def _currency_mismatches(cols: _Columns, am: AmountSpec, currency: pl.Expr) -> list[_Reject]:
    """A currency symbol in an amount cell must agree with the row's currency: '$5.00' on a CNY row is
    not 5 yuan (the symbol is stripped by the number parsing, so the check is made on the cell as written)."""
    amount_columns = {
        "signed": (am.column,),
        "split": (am.income_column, am.expense_column),
        "direction": (am.column,),
    }[am.convention]
    rejects: list[_Reject] = []
    for bank_name in amount_columns:
        written = cols.cell(bank_name, "amount")
        symbol = written.str.extract(SYMBOL_GROUP, 1)
        reason = pl.format(
            "currency symbol '{}' in column '{}' ('{}') does not agree with the row's currency {}",
            symbol,
            pl.lit(bank_name),
            written,
            currency,
        )
        rejects.append((symbol_disagrees(symbol, currency), "currency_mismatch", reason))
    return rejects


def _file_account(path: Path, preamble: str, acc: AccountSpec) -> str | None:
    """The account of the whole file, for rows without an account cell: from the preamble, else the
    file name, else the profile's default."""

    def first(regex: str | None, text: str) -> str | None:
        if not regex:
            return None
        m = _account_match(re.compile(regex, flags=re.MULTILINE), text)
        if not m:
            return None
        # the named group `account_id` if it took part in the match, else the first group that
        # matched (alternatives), else the whole match
        value = m.groupdict().get("account_id") or next((g for g in m.groups() if g), None) or m.group(0)
        return value.strip() or None

    return first(acc.preamble_regex, preamble) or first(acc.filename_regex, path.name) or acc.default


def _account_match(regex: re.Pattern[str], text: str) -> re.Match[str] | None:
    """The leftmost match in which the group `account_id` takes part, else the leftmost match.

    A fallback alternative such as ``(?P<account_id>\\d{6,})|^(?P<stem>[^.]+)`` matches at position 0, so
    the leftmost match alone would never reach digits later in the name (``cmb_debit_6214….csv``): the
    later start positions are tried for the account group (``^`` matches only at the real start)."""
    leftmost = regex.search(text)
    if leftmost is None or "account_id" not in regex.groupindex or leftmost.group("account_id") is not None:
        return leftmost
    for pos in range(leftmost.start() + 1, len(text)):  # the characters of a file name or a preamble
        m = regex.match(text, pos)
        if m is not None and m.group("account_id") is not None:
            return m
    return leftmost


def _counterparty(cols: _Columns, spec: ProfileSpec) -> tuple[pl.Expr, pl.Expr]:
    """(name, account) of the counterparty: their own columns, else split out of one combined cell."""
    cp_name = cols.cell(spec.columns.get("counterparty_name"), "counterparty_name")
    cp_account = cols.cell(spec.columns.get("counterparty_account"), "counterparty_account")
    if spec.counterparty_split:
        combined = cols.cell(spec.counterparty_split.column, "counterparty_split")
        groups = combined.str.extract_groups(spec.counterparty_split.pattern)
        g_name = groups.struct.field("name").str.strip_chars()
        g_acct = groups.struct.field("account").str.strip_chars()
        matched = g_acct.is_not_null() & (g_acct != "")
        cp_name = pl.coalesce(
            [
                cp_name,
                pl.when(matched).then(pl.when(g_name == "").then(None).otherwise(g_name)).otherwise(combined),
            ]
        )
        cp_account = pl.coalesce([cp_account, pl.when(matched).then(g_acct).otherwise(None)])
    return cp_name, cp_account


def _description(cols: _Columns, spec: ProfileSpec, tag: pl.Expr) -> pl.Expr:
    """The description columns joined, then the direction tag; runs of spaces folded, empty -> null."""
    if spec.description_columns:
        parts = [cols.cell(c, "description_columns") for c in spec.description_columns]
        desc = pl.concat_str(parts, separator=spec.description_separator, ignore_nulls=True)
    else:
        desc = pl.lit(None, pl.String)
    desc = pl.concat_str([desc, tag], separator=" ", ignore_nulls=True).str.replace_all(r"\s{2,}", " ")
    return pl.when(desc == "").then(None).otherwise(desc)


def _reject_code_and_reason(width: int, rejects: list[_Reject]) -> tuple[pl.Expr, pl.Expr]:
    """(reject_code, reject_reason) of the first rule that holds, a ragged row first; null when none."""
    ragged = pl.col("_n") != width
    rules = [
        (ragged, "ragged_row", pl.format("row has {} cells, header has {}", pl.col("_n"), pl.lit(width))),
        *rejects,
    ]
    code = pl.lit(None, pl.String)
    reason = pl.lit(None, pl.String)
    for cond, c, r in reversed(rules):
        code = pl.when(cond).then(pl.lit(c)).otherwise(code)
        reason = pl.when(cond).then(r).otherwise(reason)
    return code, reason


def _without_trailing_junk(out: pl.DataFrame, cols: _Columns) -> pl.DataFrame:
    """Trailing lines that are not rows (wrong cell count AND no parsable date) are footer, e.g. a totals
    line or legal text without a footer pattern. A ragged row with a valid date stays a row."""
    junk = (pl.col("_n") != cols.width) & ~pl.col("_date_ok")
    last_row = out.filter(~junk).select(pl.col("_i").max()).item()
    if last_row is None:
        raise LayoutError(
            f"{cols.file_name}: header found on line {cols.split.header_line} (profile '{cols.profile_name}') "
            "but no data rows follow"
        )
    return out.filter(pl.col("_i") <= last_row)
