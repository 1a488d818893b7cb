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
    extract_value,
    is_zero,
    money_text,
)
from liushui.ingest.profile_spec import AccountSpec, AmountSpec, Profile, ProfileSpec, norm_header
from liushui.ingest.profile_text import LayoutError, SplitExport, split_export

VALUE_COLUMNS = CANONICAL_INPUT_COLUMNS
OUTPUT_COLUMNS = (*VALUE_COLUMNS, "flow_tag", "source_row", "source_line", "raw", "reject_code", "reject_reason")
"""`flow_tag`: the direction value of a neutral row (neither income nor spending, e.g. 不计收支), else null."""

_Reject = tuple[pl.Expr, str, pl.Expr]
"""A reader reject rule: (condition, reject_code, reject_reason); the first rule that holds wins."""


def read_profiled(path: Path, profile: Profile) -> pl.DataFrame:
    """Read a bank export with ``profile``: one output row per data line, all values canonical TEXT."""
    path = Path(path)
    spec = profile.spec
    cols = _Columns(path.name, spec, profile.name, split_export(path, profile))
    frame = _cell_frame(cols.split, spec)

    date_parsed, booked_at = _booked_at(cols, spec)
    amount, tag, flow_tag, rejects = _amount(cols, spec.amount, profile.name)
    currency = _currency(cols, spec)
    rejects += _currency_mismatches(cols, spec.amount, currency)
    file_account = _file_account(path, cols.split.preamble, spec.account_id)
    account = pl.coalesce([cols.cell(spec.account_id.column, "account_id"), pl.lit(file_account, pl.String)])
    cp_name, cp_account = _counterparty(cols, spec)
    description = _description(cols, spec, tag)
    code, reason = _reject_code_and_reason(cols, spec, rejects)

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
        flow_tag=flow_tag,
        reject_code=code,
        reject_reason=reason,
        _date_ok=date_parsed.is_not_null(),
    )
    if spec.trailing_junk_is_footer:
        out = _without_trailing_junk(out, cols)
    return out.select(
        *[pl.col(c).cast(pl.String) for c in VALUE_COLUMNS],
        flow_tag=pl.col("flow_tag").cast(pl.String),
        source_row=(pl.col("_i") + 1).cast(pl.Int64),
        source_line=pl.col("_line"),
        raw=pl.col("raw"),
        reject_code=pl.col("reject_code"),
        reject_reason=pl.col("reject_reason"),
    )


class _Columns:
    """The split export's cells, found by the bank's column names (cell frame columns ``c0``, ``c1`` ...)."""

    def __init__(self, file_name: str, spec: ProfileSpec, profile_name: str, split: SplitExport) -> None:
        self.file_name = file_name
        self.profile_name = profile_name
        self.split = split
        self.width = len(split.header)
        self._index: dict[str, int] = {}
        for i, h in enumerate(split.header):
            self._index.setdefault(h, i)  # duplicated header names: the first column wins
        with_pattern = {norm_header(name) for name, cell in spec.cells.items() if cell.pattern}
        self.patterned = {i for i, h in enumerate(split.header) if h in with_pattern}

    def cell(self, bank_name: str | None, key: str) -> pl.Expr:
        """The cleaned cell of the column `bank_name` (null when the profile maps none); `key` names the
        profile entry in the error when the header lacks that column."""
        if not bank_name:
            return pl.lit(None, pl.String)
        return pl.col(f"c{self.position(bank_name, key)}")

    def written(self, bank_name: str | None, key: str) -> pl.Expr:
        """The cell of `bank_name` cleaned but before its column's `cells.pattern` (e.g. the currency in
        'CNY 123.18' when the pattern keeps the number)."""
        if not bank_name:
            return pl.lit(None, pl.String)
        i = self.position(bank_name, key)
        return pl.col(f"w{i}") if i in self.patterned else pl.col(f"c{i}")

    def position(self, bank_name: str, key: str) -> int:
        h = norm_header(bank_name)
        if h not in self._index:
            raise LayoutError(
                f"{self.file_name}: profile '{self.profile_name}' maps {key} to column '{bank_name}', which is not "
                f"in the header (line {self.split.header_line}: {', '.join(self.split.header)})"
            )
        return self._index[h]


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
    specs = {norm_header(name): cell for name, cell in spec.cells.items()}
    cells = [specs.get(h) for h in split.header]
    frame = frame.with_columns(clean(pl.col(f"c{i}"), spec, cell) for i, cell in enumerate(cells))
    # a column with a pattern keeps its cleaned cell as `w{i}` (`_Columns.written`), the value as `c{i}`
    patterned = [(i, cell.pattern) for i, cell in enumerate(cells) if cell is not None and cell.pattern]
    return frame.with_columns(pl.col(f"c{i}").alias(f"w{i}") for i, _ in patterned).with_columns(
        extract_value(pl.col(f"w{i}"), pattern).alias(f"c{i}") for i, pattern in patterned
    )


def _booked_at(cols: _Columns, spec: ProfileSpec) -> tuple[pl.Expr, pl.Expr]:
    """(parsed as canonical text or null, canonical text else the cell as written) of the booking time:
    one date/time cell, or a date cell and an optional time cell."""
    ba = spec.booked_at
    if ba.column:
        date_src = pl.coalesce([cols.cell(ba.column, "booked_at"), cols.cell(ba.fallback_column, "booked_at")])
    else:
        date_src = pl.concat_str(
            [cols.cell(ba.date_column, "booked_at"), cols.cell(ba.time_column, "booked_at")],
            separator=" ",
            ignore_nulls=True,
        )
        date_src = pl.when(date_src == "").then(None).otherwise(date_src)
    # an Excel date cell comes as YYYY-MM-DD HH:MM:SS whatever its display format
    formats = [*ba.formats, "%Y-%m-%d %H:%M:%S"] if cols.split.workbook else ba.formats
    if ba.year_regex:
        return datetime_text(date_src, formats, statement_month(cols, ba.year_regex))
    return datetime_text(date_src, formats)


def statement_month(cols: _Columns, year_regex: str) -> tuple[int, int | None]:
    """(year, month or None) of the statement, from the preamble: for dates written without a year."""
    m = re.search(year_regex, cols.split.preamble, flags=re.MULTILINE)
    if m is None:
        raise LayoutError(
            f"{cols.file_name}: profile '{cols.profile_name}' takes the year of its dates from the preamble, but "
            f"booked_at.year_regex {year_regex!r} does not match it"
        )
    month = m.groupdict().get("month")
    return int(m.group("year")), int(month) if month else None


def _amount(cols: _Columns, am: AmountSpec, profile_name: str) -> tuple[pl.Expr, pl.Expr, pl.Expr, list[_Reject]]:
    """(signed amount text, direction tag for the description or null, flow tag of a neutral row or null,
    reject rules) by the convention; `flip_sign` then turns the sign (a credit card's purchases positive)."""
    no_tag = pl.lit(None, pl.String)
    if am.convention == "signed":
        amount, tag, flow_tag, rejects = money_text(cols.cell(am.column, "amount")), no_tag, no_tag, []
    elif am.convention == "split":
        amount, ambiguous = _split_amount(cols, am)
        tag, flow_tag, rejects = no_tag, no_tag, [ambiguous]
    else:
        amount, tag, flow_tag, rejects = _direction_amount(cols, am, profile_name)
    if am.flip_sign:  # a neutral row keeps its amount as written
        amount = pl.when(flow_tag.is_not_null()).then(amount).otherwise(flipped(amount))
    return amount, tag, flow_tag, rejects


def flipped(amount: pl.Expr) -> pl.Expr:
    """The other sign of a normalised number text ('-5.00' -> '5.00', '5.00' -> '-5.00'); text that is
    not a number stays as it is (the parser reports it)."""
    number = amount.str.contains(r"^-?(?:\d|\.\d)")
    negative = amount.str.starts_with("-")
    return (
        pl.when(number & negative)
        .then(amount.str.strip_prefix("-"))
        .when(number)
        .then(pl.lit("-") + amount)
        .otherwise(amount)
    )


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


def _direction_amount(
    cols: _Columns, am: AmountSpec, profile_name: str
) -> tuple[pl.Expr, pl.Expr, pl.Expr, list[_Reject]]:
    """An absolute amount and a direction column whose value (exactly, by prefix or by regex) maps to a
    sign, to "reject" or to "neutral"; some directions tag the description. The direction may be any
    column, e.g. the memo of a card statement ('（退款）…' by prefix)."""
    value = cols.cell(am.column, "amount")
    direction = cols.cell(am.direction_column, "amount.direction_column")
    sign, key = _direction_sign(direction, am)
    absolute = abs_text(value)
    amount = (
        pl.when(absolute.is_null())
        .then(value)
        .when(sign == "-1")
        .then(pl.lit("-") + absolute)
        .when(sign.is_in(["1", "neutral"]))
        .then(absolute)
        .otherwise(value)
    )
    flow_tag = pl.when(sign == "neutral").then(direction).otherwise(None)
    written = pl.when(direction.is_null()).then(pl.lit("(empty)")).otherwise(pl.format("'{}'", direction))
    unknown = pl.format(
        "{} {} is not one of {}", pl.lit(am.direction_column), written, pl.lit(", ".join(am.direction_map))
    )
    excluded = pl.format(
        "{} '{}' is excluded by profile '{}'", pl.lit(am.direction_column), direction, pl.lit(profile_name)
    )
    tag = pl.lit(None, pl.String)
    if am.direction_tags:
        tag = pl.when(key.is_in(am.direction_tags)).then(pl.format("[{}]", key)).otherwise(None)
    rejects: list[_Reject] = [
        (sign.is_null(), "bad_direction", unknown),
        (sign == "reject", "excluded_direction", excluded),
    ]
    return amount, tag, flow_tag, rejects


def _direction_sign(direction: pl.Expr, am: AmountSpec) -> tuple[pl.Expr, pl.Expr]:
    """(the sign text '1' / '-1' / 'reject' / 'neutral' or null, the `direction_map` key that matched or
    null) of a direction cell: exact match, the first key the cell starts with, or the first key (a regex)
    found in it."""
    if am.direction_match == "exact":
        signs = {k: str(v) for k, v in am.direction_map.items()}
        key = pl.when(direction.is_in(list(signs))).then(direction).otherwise(None)
        return direction.replace_strict(signs, default=None, return_dtype=pl.String), key
    sign, key = pl.lit(None, pl.String), pl.lit(None, pl.String)
    for k, v in reversed(am.direction_map.items()):
        hit = direction.str.starts_with(k) if am.direction_match == "prefix" else direction.str.contains(k)
        sign = pl.when(hit).then(pl.lit(str(v))).otherwise(sign)
        key = pl.when(hit).then(pl.lit(k)).otherwise(key)
    return sign, key


def _currency(cols: _Columns, spec: ProfileSpec) -> pl.Expr:
    """ISO code via the profile's map and the built-in aliases; a 3-letter code upper-cased; an empty
    cell (or no column) the profile's default; anything else as written (the parser rejects it)."""
    cur = spec.currency
    aliases = DEFAULT_CURRENCY_ALIASES | cur.map
    raw_cur = cols.cell(cur.column, "currency")
    if cur.pattern:
        raw_cur = cols.written(cur.column, "currency").str.extract_groups(cur.pattern).struct.field("value")
        raw_cur = pl.when(raw_cur.str.strip_chars() == "").then(None).otherwise(raw_cur.str.strip_chars())
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


def _reject_code_and_reason(cols: _Columns, spec: ProfileSpec, rejects: list[_Reject]) -> tuple[pl.Expr, pl.Expr]:
    """(reject_code, reject_reason) of the first rule that holds, a ragged row first; null when none.

    With `short_rows: accept_optional` a row shorter than the header (its trailing empty cells left out) is
    read when every cell it lacks is of a column the profile does not need (date, amount, direction)."""
    width = cols.width
    ragged = pl.col("_n") != width
    reason = pl.format("row has {} cells, header has {}", pl.col("_n"), pl.lit(width))
    if spec.short_rows == "accept_optional":
        needed = sorted({cols.position(c, "short_rows") for c in _needed_columns(spec)})
        lacking = pl.lit(None, pl.String)
        for i in reversed(needed):
            lacking = pl.when(pl.col("_n") <= i).then(pl.lit(cols.split.header[i])).otherwise(lacking)
        ragged = (pl.col("_n") > width) | lacking.is_not_null()
        reason = (
            pl.when(pl.col("_n") > width)
            .then(reason)
            .otherwise(pl.format("{}: the missing cells include '{}', which the profile needs", reason, lacking))
        )
    rules = [(ragged, "ragged_row", reason), *rejects]
    code = pl.lit(None, pl.String)
    reason = pl.lit(None, pl.String)
    for cond, c, r in reversed(rules):
        code = pl.when(cond).then(pl.lit(c)).otherwise(code)
        reason = pl.when(cond).then(r).otherwise(reason)
    return code, reason


def _needed_columns(spec: ProfileSpec) -> list[str]:
    """The columns a row cannot do without: its booking date and time and its amount and direction."""
    ba, am = spec.booked_at, spec.amount
    # split: either side may be empty (both empty: the parser reports the missing amount)
    named = [ba.column, ba.date_column, am.column, am.direction_column]
    return [c for c in named if c]


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
