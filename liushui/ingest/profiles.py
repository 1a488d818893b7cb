"""Declarative bank-export layout profiles: one YAML file per layout, no code per bank.

A profile (``liushui/profiles/*.yaml``, format in ``docs/profiles.md``) says how to find the header
line, where the data stops, which bank column feeds which canonical field, and the amount / date /
currency conventions. This module:

- ``load_profiles(directory)`` parses and validates the YAML files (``ProfileError`` on a bad file);
- ``detect_profile(path, profiles)`` picks the profile whose header signature appears in the first
  lines of the file (``None`` when nothing matches, including the canonical layout);
- ``read_profiled(path, profile)`` returns one string row per data line, normalised to canonical
  TEXT forms (not type-parsed), with ``source_row``, ``raw`` and reader-level rejects;
- ``LayoutError`` is a whole-file failure with a message that names the file and the problem.

Python only decodes the bytes and splits lines / cells (csv module); all cell work is done with
Polars expressions.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from liushui.contracts import CANONICAL_INPUT_COLUMNS
from liushui.ingest.canonical import binary_kind
from liushui.ingest.parse import symbol_disagrees

__all__ = [
    "OUTPUT_COLUMNS",
    "SHIPPED_PROFILES_DIR",
    "LayoutError",
    "Profile",
    "ProfileError",
    "detect_profile",
    "load_profiles",
    "read_profiled",
]

SHIPPED_PROFILES_DIR = Path(__file__).resolve().parents[1] / "profiles"

VALUE_COLUMNS = CANONICAL_INPUT_COLUMNS
OUTPUT_COLUMNS = (*VALUE_COLUMNS, "source_row", "raw", "reject_code", "reject_reason")
OUTPUT_SCHEMA = pl.Schema(
    {c: pl.String for c in VALUE_COLUMNS}
    | {"source_row": pl.Int64, "raw": pl.String, "reject_code": pl.String, "reject_reason": pl.String}
)

CANONICAL_HEADER = frozenset({"account_id", "booked_at", "amount"})
DETECT_BYTES = 256 * 1024  # how much of a file detect_profile decodes
CHUNK_BYTES = 16 * 1024 * 1024  # incremental decoding chunk
BINARY_SNIFF_BYTES = 8192

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
_SYMBOL_GROUP = r"(US\$|HK\$|[¥￥$€£])"


class LayoutError(Exception):
    """A whole file cannot be read with a layout (unknown, empty, binary, no header, undecodable)."""


class ProfileError(ValueError):
    """A profile YAML file is invalid; the message names the file and the offending key."""


# ---------------------------------------------------------------------------------------------------
# Profile schema (pydantic 2): strict (unknown keys are errors, so typos do not pass silently).


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_regex(value: str | None, groups: tuple[str, ...] = ()) -> str | None:
    if value is None:
        return value
    try:
        compiled = re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression {value!r}: {exc}") from exc
    missing = [g for g in groups if g not in compiled.groupindex]
    if missing:
        raise ValueError(f"regular expression {value!r} needs the named group(s) {missing}")
    return value


def _check_polars_regex(value: str | None, groups: tuple[str, ...] = ()) -> str | None:
    """A regex run by Polars (Rust regex syntax: no look-around, no backreferences)."""
    _check_regex(value, groups)
    if value is not None:
        try:
            pl.Series([""], dtype=pl.String).str.contains(value)
        except Exception as exc:  # noqa: BLE001 - polars raises ComputeError for bad patterns
            msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ValueError(f"regular expression {value!r} is not supported by Polars: {msg}") from None
    return value


class BookedAtSpec(_Model):
    column: str | None = None
    date_column: str | None = None
    time_column: str | None = None
    formats: list[str] = Field(min_length=1)

    @field_validator("formats")
    @classmethod
    def _formats(cls, v: list[str]) -> list[str]:
        for f in v:
            if "%" not in f:
                raise ValueError(f"format {f!r} is not a strftime format (e.g. '%Y-%m-%d')")
        return v

    @model_validator(mode="after")
    def _columns(self) -> BookedAtSpec:
        if bool(self.column) == bool(self.date_column):
            raise ValueError("give either 'column' (one date/time cell) or 'date_column' (+ 'time_column')")
        if self.time_column and not self.date_column:
            raise ValueError("'time_column' needs 'date_column'")
        return self


Sign = Literal[1, -1, "reject"]


class AmountSpec(_Model):
    convention: Literal["signed", "split", "direction"]
    column: str | None = None
    income_column: str | None = None
    expense_column: str | None = None
    direction_column: str | None = None
    direction_map: dict[str, Sign] = Field(default_factory=dict)
    direction_tags: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _by_convention(self) -> AmountSpec:
        need = {
            "signed": ("column",),
            "split": ("income_column", "expense_column"),
            "direction": ("column", "direction_column", "direction_map"),
        }[self.convention]
        missing = [k for k in need if not getattr(self, k)]
        if missing:
            raise ValueError(f"convention '{self.convention}' requires {', '.join(missing)}")
        unknown_tags = [t for t in self.direction_tags if t not in self.direction_map]
        if unknown_tags:
            raise ValueError(f"direction_tags {unknown_tags} are not keys of direction_map")
        return self


class CurrencySpec(_Model):
    column: str | None = None
    map: dict[str, str] = Field(default_factory=dict)
    default: str = "CNY"


class AccountSpec(_Model):
    column: str | None = None
    preamble_regex: str | None = None
    filename_regex: str | None = None
    default: str | None = None

    @field_validator("preamble_regex", "filename_regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return _check_regex(v)


class CounterpartySplitSpec(_Model):
    column: str
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v: str) -> str:
        return _check_polars_regex(v, ("name", "account"))  # type: ignore[return-value]


SimpleField = Literal["txn_id", "balance_after", "counterparty_name", "counterparty_account", "channel"]


class ProfileSpec(_Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
    description: str
    encoding: Literal["auto", "utf-8", "utf-8-sig", "gb18030", "gbk", "utf-16"] = "auto"
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    header_signature: list[str] = Field(min_length=1)
    header_search_lines: Annotated[int, Field(ge=1, le=10_000)] = 60
    footer_patterns: list[str] = Field(default_factory=list)
    trailing_junk_is_footer: bool = True
    placeholders: list[str] = Field(default_factory=lambda: ["-", "--", "/", "—", "N/A"])
    placeholder_pattern: str | None = r"^-{3,}$"
    columns: dict[SimpleField, str] = Field(default_factory=dict)
    booked_at: BookedAtSpec
    amount: AmountSpec
    currency: CurrencySpec = Field(default_factory=CurrencySpec)
    account_id: AccountSpec = Field(default_factory=AccountSpec)
    counterparty_split: CounterpartySplitSpec | None = None
    description_columns: list[str] = Field(default_factory=list)
    description_separator: str = " | "

    @field_validator("footer_patterns")
    @classmethod
    def _footers(cls, v: list[str]) -> list[str]:
        for p in v:
            _check_regex(p)
        return v

    @field_validator("placeholder_pattern")
    @classmethod
    def _placeholder(cls, v: str | None) -> str | None:
        return _check_polars_regex(v)

    @field_validator("header_signature")
    @classmethod
    def _signature(cls, v: list[str]) -> list[str]:
        norm = [_norm_header(s) for s in v]
        if any(not s for s in norm):
            raise ValueError("header_signature names must not be empty")
        return v


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node, deep=False):  # type: ignore[no-untyped-def]
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


# ---------------------------------------------------------------------------------------------------
# Public profile object


@dataclass(frozen=True)
class Profile:
    """A validated layout profile (one YAML file)."""

    name: str
    description: str
    encoding: str
    header_signature: tuple[str, ...]
    spec: ProfileSpec
    path: Path | None = None

    @classmethod
    def from_dict(cls, data: Any, path: Path | None = None) -> Profile:
        where = path.name if path else "<profile>"
        if not isinstance(data, dict):
            raise ProfileError(f"{where}: a profile must be a YAML mapping, got {type(data).__name__}")
        try:
            spec = ProfileSpec.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}" for err in exc.errors()
            )
            raise ProfileError(f"{where}: invalid profile: {problems}") from None
        return cls(spec.name, spec.description, spec.encoding, tuple(spec.header_signature), spec, path)

    @classmethod
    def from_yaml(cls, path: Path) -> Profile:
        path = Path(path)
        try:
            data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)  # noqa: S506
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{path.name}: cannot read profile: {exc}") from None
        except yaml.YAMLError as exc:
            raise ProfileError(f"{path.name}: not valid YAML: {exc}") from None
        return cls.from_dict(data, path)

    @property
    def signature_norm(self) -> frozenset[str]:
        return frozenset(_norm_header(s) for s in self.header_signature)


def load_profiles(directory: Path | None = None) -> dict[str, Profile]:
    """Load every ``*.yaml`` / ``*.yml`` profile of ``directory`` (default: the shipped profiles)."""
    directory = Path(directory) if directory is not None else SHIPPED_PROFILES_DIR
    if not directory.is_dir():
        raise ProfileError(f"profile directory {directory} does not exist")
    profiles: dict[str, Profile] = {}
    files = sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    for f in files:
        p = Profile.from_yaml(f)
        if p.name in profiles:
            other = profiles[p.name].path
            raise ProfileError(f"{f.name}: profile name {p.name!r} is already used by {other.name if other else '?'}")
        profiles[p.name] = p
    return profiles


# ---------------------------------------------------------------------------------------------------
# Decoding and line splitting (the only Python-level work)

_WS_RE = re.compile(r"\s+")


def _norm_header(s: str) -> str:
    """Header names are compared with all whitespace (spaces, tabs, full-width spaces) and BOM removed."""
    return _WS_RE.sub("", s.replace("\ufeff", ""))


def _sniff_binary(head: bytes, name: str) -> None:
    """One NUL inside a cell is a bad row (quarantined by `parse`), not a binary file."""
    kind = binary_kind(head)
    if kind is not None:
        raise LayoutError(f"{name}: binary content ({kind}), not a text export")


def _decode_stream(path: Path, encoding: str, errors: str = "strict") -> str:
    """Decode a file with an incremental decoder in chunks (no second full-size bytes copy)."""
    decoder = codecs.getincrementaldecoder(encoding)(errors=errors)
    parts: list[str] = []
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK_BYTES):
            parts.append(decoder.decode(chunk))
        parts.append(decoder.decode(b"", final=True))
    return "".join(parts)


def _bom_encoding(head: bytes) -> str | None:
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    return None


def _decode_file(path: Path, encoding: str) -> tuple[str, str]:
    """Return (text, encoding used). ``auto``: BOM, strict utf-8, gb18030, then charset-normalizer."""
    name = path.name
    try:
        with path.open("rb") as fh:
            head = fh.read(BINARY_SNIFF_BYTES)
    except OSError as exc:
        raise LayoutError(f"{name}: cannot read file: {exc.strerror or exc}") from None
    if not head.strip():
        raise LayoutError(f"{name}: empty file")
    _sniff_binary(head, name)
    if encoding != "auto":
        try:
            return _decode_stream(path, encoding), encoding
        except UnicodeDecodeError as exc:
            raise LayoutError(
                f"{name}: cannot decode as {encoding} ({exc.reason} at byte {exc.start}); "
                f"set the profile's encoding to 'auto' or the right one"
            ) from None
    candidates = [_bom_encoding(head)] if _bom_encoding(head) else ["utf-8", "gb18030"]
    for enc in candidates:
        try:
            return _decode_stream(path, enc), enc
        except UnicodeDecodeError:
            continue
    try:  # last resort: statistical detection
        from charset_normalizer import from_path

        best = from_path(path).best()
    except Exception:  # noqa: BLE001 - any failure here means "undecodable"
        best = None
    if best is None or best.encoding is None:
        raise LayoutError(f"{name}: undecodable: not utf-8, not gb18030/GBK and no other encoding detected")
    return str(best), best.encoding


def _decode_head(path: Path, encoding: str) -> str | None:
    """Decode the first DETECT_BYTES of a file for detection; None when it cannot be text."""
    try:
        with path.open("rb") as fh:
            head = fh.read(DETECT_BYTES)
    except OSError:
        return None
    if not head.strip() or binary_kind(head) is not None:
        return None
    encs = (
        [encoding] if encoding != "auto" else ([_bom_encoding(head)] if _bom_encoding(head) else ["utf-8", "gb18030"])
    )
    for enc in encs:
        try:
            return codecs.getincrementaldecoder(enc)().decode(head, final=False)
        except UnicodeDecodeError:
            continue
    return None


def _split_cells(line: str, delimiter: str) -> list[str]:
    try:
        return next(csv.reader([line], delimiter=delimiter, skipinitialspace=True), [])
    except csv.Error:
        return line.split(delimiter)


def _find_header(lines: list[str], profile: Profile, limit: int) -> int | None:
    want = profile.signature_norm
    for i, line in enumerate(lines[:limit]):
        cells = {_norm_header(c) for c in _split_cells(line, profile.spec.delimiter)}
        if want <= cells:
            return i
    return None


@dataclass
class _Split:
    header: list[str]  # normalised header names, trailing empty names dropped
    header_line: int  # 1-based physical line of the header
    preamble: str
    cells: list[list[str]]  # one list per data record (trailing empty cells beyond the header dropped)
    n_cells: list[int]
    raws: list[str]


def _split_file(path: Path, profile: Profile) -> _Split:
    spec = profile.spec
    name = path.name
    text, _enc = _decode_file(path, spec.encoding)
    if text.startswith("\ufeff"):
        text = text[1:]
    if not text.strip():
        raise LayoutError(f"{name}: empty file")
    ctrl = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\t\r\n\f\v")
    if ctrl > 8:
        raise LayoutError(f"{name}: binary content (control characters), not a text export")

    stream = io.StringIO(text, newline="")
    limit = spec.header_search_lines
    head_lines: list[str] = []
    header_idx = None
    for line in stream:
        head_lines.append(line)
        if _find_header([line], profile, 1) == 0:
            header_idx = len(head_lines) - 1
            break
        if len(head_lines) >= limit:
            break
    if header_idx is None:
        raise LayoutError(
            f"{name}: no header line found matching profile '{profile.name}' within the first {limit} lines "
            f"(looked for a line with the columns {', '.join(profile.header_signature)})"
        )
    header_cells = [_norm_header(c) for c in _split_cells(head_lines[header_idx], spec.delimiter)]
    while header_cells and not header_cells[-1]:
        header_cells.pop()
    width = len(header_cells)
    preamble = "".join(head_lines[:header_idx])

    footers = [re.compile(p) for p in spec.footer_patterns]
    consumed: list[str] = []
    state = {"record_start": True}

    def feed() -> Iterator[str]:
        for line in stream:
            if state["record_start"] and footers:
                probe = line.strip()
                if any(f.search(probe) for f in footers):
                    return  # footer: this line and everything after it is not data
            state["record_start"] = False
            consumed.append(line)
            yield line

    cells_out: list[list[str]] = []
    n_cells: list[int] = []
    raws: list[str] = []

    def add(record: list[str], raw: str) -> None:
        if not "".join(record).strip():
            return  # blank line (or only delimiters): skipped, not numbered
        while len(record) > width and not record[-1].strip():
            record.pop()
        n_cells.append(len(record))
        if len(record) < width:
            record = record + [""] * (width - len(record))
        cells_out.append(record[:width])
        raws.append(raw)

    old_limit = csv.field_size_limit(64 * 1024 * 1024)
    reader = csv.reader(feed(), delimiter=spec.delimiter, skipinitialspace=True)
    try:
        for record in reader:
            lines = consumed.copy()
            consumed.clear()
            state["record_start"] = True
            if len(lines) > 1 and len(record) < width:
                # A quoted field spanned several lines but the record is still short: most likely a
                # stray quote swallowed the following lines. Split each physical line on its own so
                # every line stays one row (the ragged ones are rejected, not lost).
                for line in lines:
                    add(_split_cells(line, spec.delimiter), line.rstrip("\r\n"))
                continue
            add(record, "".join(lines).rstrip("\r\n"))
    except csv.Error as exc:
        raise LayoutError(f"{name}: cannot split rows after line {reader.line_num + header_idx + 1}: {exc}") from None
    finally:
        csv.field_size_limit(old_limit)
    if not cells_out:
        raise LayoutError(
            f"{name}: header found on line {header_idx + 1} (profile '{profile.name}') but no data rows follow"
        )
    return _Split(header_cells, header_idx + 1, preamble, cells_out, n_cells, raws)


# ---------------------------------------------------------------------------------------------------
# Cell work (Polars expressions)


def _clean(e: pl.Expr, spec: ProfileSpec) -> pl.Expr:
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


def _money_text(s: pl.Expr) -> pl.Expr:
    """Normalised signed decimal text when the cell is a number, else the (stripped) original text."""
    ok, norm = _number(s)
    return pl.when(ok).then(norm).otherwise(s)


def _abs_text(s: pl.Expr) -> pl.Expr:
    ok, norm = _number(s)
    return pl.when(ok).then(norm.str.strip_prefix("-")).otherwise(None)


def _is_zero(s: pl.Expr) -> pl.Expr:
    ok, norm = _number(s)
    return ok & norm.str.contains(_ZERO_RE)


def _has_time(fmt: str) -> bool:
    return any(t in fmt for t in ("%H", "%I", "%T", "%R", "%M:%S"))


def _datetime_text(src: pl.Expr, formats: list[str]) -> tuple[pl.Expr, pl.Expr]:
    """(parsed as canonical text or null, canonical text else the original cell)."""
    parsed = []
    for fmt in formats:
        if _has_time(fmt):
            p = src.str.strptime(pl.Datetime("us"), fmt, strict=False).dt.strftime("%Y-%m-%d %H:%M:%S")
        else:
            p = src.str.strptime(pl.Date, fmt, strict=False).dt.strftime("%Y-%m-%d")
        parsed.append(p)
    return pl.coalesce(parsed), pl.coalesce([*parsed, src])


def _file_account(path: Path, preamble: str, acc: AccountSpec) -> str | None:
    def first(regex: str | None, text: str) -> str | None:
        if not regex:
            return None
        m = re.search(regex, text, flags=re.MULTILINE)
        if not m:
            return None
        # the named group `account_id` if it took part in the match, else the first group that
        # matched (alternatives), else the whole match
        value = m.groupdict().get("account_id") or next((g for g in m.groups() if g), None) or m.group(0)
        return value.strip() or None

    return first(acc.preamble_regex, preamble) or first(acc.filename_regex, path.name) or acc.default


def read_profiled(path: Path, profile: Profile) -> pl.DataFrame:
    """Read a bank export with ``profile``: one output row per data line, all values canonical TEXT."""
    path = Path(path)
    spec = profile.spec
    split = _split_file(path, profile)
    name = path.name

    index = {}
    for i, h in enumerate(split.header):
        index.setdefault(h, i)  # duplicated header names: the first column wins

    def colname(bank_name: str, key: str) -> str:
        h = _norm_header(bank_name)
        if h not in index:
            raise LayoutError(
                f"{name}: profile '{profile.name}' maps {key} to column '{bank_name}', which is not in the "
                f"header (line {split.header_line}: {', '.join(split.header)})"
            )
        return f"c{index[h]}"

    width = len(split.header)
    columns = list(zip(*split.cells, strict=True)) if split.cells else [() for _ in range(width)]
    frame = pl.DataFrame(
        {f"c{i}": pl.Series(f"c{i}", list(col), dtype=pl.String) for i, col in enumerate(columns)}
        | {
            "_n": pl.Series("_n", split.n_cells, dtype=pl.Int64),
            "raw": pl.Series("raw", split.raws, dtype=pl.String),
        }
    ).with_row_index("_i")

    # every cell is cleaned once: whitespace stripped, empty / placeholder -> null
    frame = frame.with_columns(_clean(pl.col(f"c{i}"), spec) for i in range(width))

    def cell(bank_name: str | None, key: str) -> pl.Expr:
        if not bank_name:
            return pl.lit(None, pl.String)
        return pl.col(colname(bank_name, key))

    # booked_at ------------------------------------------------------------------------------------
    ba = spec.booked_at
    if ba.column:
        date_src = cell(ba.column, "booked_at")
    else:
        date_src = pl.concat_str(
            [cell(ba.date_column, "booked_at"), cell(ba.time_column, "booked_at")],
            separator=" ",
            ignore_nulls=True,
        )
        date_src = pl.when(date_src == "").then(None).otherwise(date_src)
    date_parsed, booked_at = _datetime_text(date_src, ba.formats)

    # amount ---------------------------------------------------------------------------------------
    am = spec.amount
    reject_rules: list[tuple[pl.Expr, str, pl.Expr]] = []
    tag = pl.lit(None, pl.String)
    if am.convention == "signed":
        amount = _money_text(cell(am.column, "amount"))
    elif am.convention == "split":
        inc, exp = cell(am.income_column, "amount"), cell(am.expense_column, "amount")
        inc_off = inc.is_null() | _is_zero(inc)
        exp_off = exp.is_null() | _is_zero(exp)
        exp_abs = _abs_text(exp)
        amount = (
            pl.when(inc.is_null() & exp.is_null())
            .then(None)
            .when(~inc_off)
            .then(pl.when(exp_off).then(_money_text(inc)).otherwise(None))
            .when(~exp_off)
            .then(pl.when(exp_abs.is_not_null()).then(pl.lit("-") + exp_abs).otherwise(exp))
            .otherwise(_money_text(pl.coalesce([inc, exp])))  # both zero
        )
        reject_rules.append(
            (
                ~inc_off & ~exp_off,
                "ambiguous_amount",
                pl.format(
                    "both '{}' ({}) and '{}' ({}) are set",
                    pl.lit(am.income_column),
                    inc,
                    pl.lit(am.expense_column),
                    exp,
                ),
            )
        )
    else:  # direction
        value = cell(am.column, "amount")
        direction = cell(am.direction_column, "amount.direction_column")
        signs = {k: str(v) for k, v in am.direction_map.items()}
        sign = direction.replace_strict(signs, default=None, return_dtype=pl.String)
        absolute = _abs_text(value)
        amount = (
            pl.when(absolute.is_null())
            .then(value)
            .when(sign == "-1")
            .then(pl.lit("-") + absolute)
            .when(sign == "1")
            .then(absolute)
            .otherwise(value)
        )
        reject_rules.append(
            (
                sign.is_null(),
                "bad_direction",
                pl.format(
                    "{} {} is not one of {}",
                    pl.lit(am.direction_column),
                    pl.when(direction.is_null()).then(pl.lit("(empty)")).otherwise(pl.format("'{}'", direction)),
                    pl.lit(", ".join(am.direction_map)),
                ),
            )
        )
        reject_rules.append(
            (
                sign == "reject",
                "excluded_direction",
                pl.format(
                    "{} '{}' is excluded by profile '{}'",
                    pl.lit(am.direction_column),
                    direction,
                    pl.lit(profile.name),
                ),
            )
        )
        if am.direction_tags:
            tag = pl.when(direction.is_in(am.direction_tags)).then(pl.format("[{}]", direction)).otherwise(None)

    # currency ---------------------------------------------------------------------------------------
    cur = spec.currency
    aliases = DEFAULT_CURRENCY_ALIASES | cur.map
    raw_cur = cell(cur.column, "currency")
    mapped = raw_cur.replace_strict(aliases, default=None, return_dtype=pl.String)
    currency = (
        pl.when(raw_cur.is_null())
        .then(pl.lit(cur.default))
        .when(mapped.is_not_null())
        .then(mapped)
        .when(raw_cur.str.contains(r"^[A-Za-z]{3}$"))
        .then(raw_cur.str.to_uppercase())
        .otherwise(raw_cur)
    )

    # A currency symbol in an amount cell must agree with the row's currency: '$5.00' on a CNY row is
    # not 5 yuan (the symbol is stripped by _number, so the check is made on the cell as written).
    amount_cells = {"signed": (am.column,), "split": (am.income_column, am.expense_column), "direction": (am.column,)}[
        am.convention
    ]
    for bank_name in amount_cells:
        written = cell(bank_name, "amount")
        symbol = written.str.extract(_SYMBOL_GROUP, 1)
        reject_rules.append(
            (
                symbol_disagrees(symbol, currency),
                "currency_mismatch",
                pl.format(
                    "currency symbol '{}' in column '{}' ('{}') does not agree with the row's currency {}",
                    symbol,
                    pl.lit(bank_name),
                    written,
                    currency,
                ),
            )
        )

    # account ------------------------------------------------------------------------------------------
    acc = spec.account_id
    file_account = _file_account(path, split.preamble, acc)
    account = pl.coalesce([cell(acc.column, "account_id"), pl.lit(file_account, pl.String)])

    # counterparty -------------------------------------------------------------------------------------
    cp_name = cell(spec.columns.get("counterparty_name"), "counterparty_name")
    cp_account = cell(spec.columns.get("counterparty_account"), "counterparty_account")
    if spec.counterparty_split:
        combined = cell(spec.counterparty_split.column, "counterparty_split")
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

    # description ---------------------------------------------------------------------------------------
    if spec.description_columns:
        parts = [cell(c, "description_columns") for c in spec.description_columns]
        desc = pl.concat_str(parts, separator=spec.description_separator, ignore_nulls=True)
    else:
        desc = pl.lit(None, pl.String)
    desc = pl.concat_str([desc, tag], separator=" ", ignore_nulls=True).str.replace_all(r"\s{2,}", " ")
    desc = pl.when(desc == "").then(None).otherwise(desc)

    # reader rejects -------------------------------------------------------------------------------------
    ragged = pl.col("_n") != width
    rules = [
        (ragged, "ragged_row", pl.format("row has {} cells, header has {}", pl.col("_n"), pl.lit(width))),
        *reject_rules,
    ]
    code = pl.when(rules[0][0]).then(pl.lit(rules[0][1]))
    reason = pl.when(rules[0][0]).then(rules[0][2])
    for cond, c, r in rules[1:]:
        code = code.when(cond).then(pl.lit(c))
        reason = reason.when(cond).then(r)
    code = code.otherwise(pl.lit(None, pl.String))
    reason = reason.otherwise(pl.lit(None, pl.String))

    out = frame.with_columns(
        account_id=account,
        txn_id=cell(spec.columns.get("txn_id"), "txn_id"),
        booked_at=booked_at,
        amount=amount,
        currency=currency,
        balance_after=_money_text(cell(spec.columns.get("balance_after"), "balance_after")),
        counterparty_name=cp_name,
        counterparty_account=cp_account,
        description=desc,
        channel=cell(spec.columns.get("channel"), "channel"),
        reject_code=code,
        reject_reason=reason,
        _date_ok=date_parsed.is_not_null(),
    )

    if spec.trailing_junk_is_footer:
        # Trailing lines that are not rows (wrong cell count AND no parsable date) are footer, e.g. a
        # totals line or legal text without a footer pattern. A ragged row with a valid date stays a row.
        junk = (pl.col("_n") != width) & ~pl.col("_date_ok")
        last_row = out.filter(~junk).select(pl.col("_i").max()).item()
        if last_row is None:
            raise LayoutError(
                f"{name}: header found on line {split.header_line} (profile '{profile.name}') but no data rows follow"
            )
        out = out.filter(pl.col("_i") <= last_row)

    return out.select(
        *[pl.col(c).cast(pl.String) for c in VALUE_COLUMNS],
        source_row=(pl.col("_i") + 1).cast(pl.Int64),
        raw=pl.col("raw"),
        reject_code=pl.col("reject_code"),
        reject_reason=pl.col("reject_reason"),
    )


def detect_profile(path: Path, profiles: dict[str, Profile]) -> Profile | None:
    """The profile whose header signature appears in the first lines of ``path``, or None.

    When several match, the one with the most signature columns wins (most specific), then the one
    whose header line comes first, then the name. Files in the canonical layout (a header with
    ``account_id``, ``booked_at`` and ``amount`` before any profile header) give None, as do empty,
    binary and undecodable files (``read_profiled`` raises ``LayoutError`` with the reason).
    """
    path = Path(path)
    heads: dict[str, list[str] | None] = {}
    best: tuple[int, int, str] | None = None
    chosen: Profile | None = None
    for profile in profiles.values():
        enc = profile.encoding
        if enc not in heads:
            text = _decode_head(path, enc)
            heads[enc] = None if text is None else text.lstrip("\ufeff").splitlines()
        lines = heads[enc]
        if not lines:
            continue
        limit = profile.spec.header_search_lines
        idx = _find_header(lines, profile, limit)
        if idx is None:
            continue
        canonical = next(
            (
                i
                for i, line in enumerate(lines[: idx + 1])
                if {_norm_header(c) for c in _split_cells(line, ",")} >= CANONICAL_HEADER
            ),
            None,
        )
        if canonical is not None and canonical <= idx:
            continue
        key = (-len(profile.signature_norm), idx, profile.name)
        if best is None or key < best:
            best, chosen = key, profile
    return chosen
