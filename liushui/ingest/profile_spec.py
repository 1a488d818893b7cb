"""Layout profiles as data: the YAML schema of a profile (pydantic, strict: an unknown key is an error,
so a typo does not pass silently), the validated `Profile`, and `load_profiles` for a folder of them.
The format is described in ``docs/profiles.md``."""

from __future__ import annotations

import re
from collections.abc import Hashable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import polars as pl
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

SHIPPED_PROFILES_DIR = Path(__file__).resolve().parents[1] / "profiles"


class ProfileError(ValueError):
    """A profile YAML file is invalid; the message names the file, the offending key and where it is
    (`line` / `column`, 1-based, when known)."""

    def __init__(self, message: str, *, file: Path | None = None, line: int | None = None, column: int | None = None):
        super().__init__(message)
        self.file = file
        self.line = line
        self.column = column


_WS_RE = re.compile(r"\s+")


def norm_header(s: str) -> str:
    """Header names are compared with all whitespace (spaces, tabs, full-width spaces) and BOM removed."""
    return _WS_RE.sub("", s.replace("\ufeff", ""))


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
    fallback_column: str | None = None
    date_column: str | None = None
    time_column: str | None = None
    formats: list[str] = Field(min_length=1)
    year_regex: str | None = None

    @field_validator("year_regex")
    @classmethod
    def _year_regex(cls, v: str | None) -> str | None:
        return _check_regex(v, ("year",))

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
        if self.fallback_column and not self.column:
            raise ValueError("'fallback_column' needs 'column'")
        return self


Sign = Literal[1, -1, "reject", "neutral"]
"""What a direction value means: money in (1), out (-1), a row to quarantine, or a neutral row (neither
income nor spending: the amount as written, the value published as `flow_tag`)."""


class AmountSpec(_Model):
    convention: Literal["signed", "split", "direction"]
    column: str | None = None
    income_column: str | None = None
    expense_column: str | None = None
    direction_column: str | None = None
    direction_map: dict[str, Sign] = Field(default_factory=dict)
    direction_match: Literal["exact", "prefix", "regex"] = "exact"
    direction_tags: list[str] = Field(default_factory=list)
    flip_sign: bool = False

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
        if self.direction_match == "regex":
            for key in self.direction_map:
                _check_polars_regex(key)
        return self


class CurrencySpec(_Model):
    column: str | None = None
    pattern: str | None = None
    map: dict[str, str] = Field(default_factory=dict)
    default: str = "CNY"

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return _check_polars_regex(v, ("value",))


class CellSpec(_Model):
    """How the cells of one bank column are cleaned before use (all optional)."""

    strip: str | None = None
    placeholders: list[str] | None = None
    pattern: str | None = None

    @field_validator("pattern")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        return _check_polars_regex(v, ("value",))


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
        _check_polars_regex(v, ("name", "account"))
        return v


SimpleField = Literal["txn_id", "balance_after", "counterparty_name", "counterparty_account", "channel"]


class ProfileSpec(_Model):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
    description: str
    encoding: Literal["auto", "utf-8", "utf-8-sig", "gb18030", "gbk", "utf-16"] = "auto"
    delimiter: Annotated[str, Field(min_length=1, max_length=1)] = ","
    sheet: str | Annotated[int, Field(ge=0)] = 0
    header_signature: list[str] = Field(default_factory=list)
    header_exclude: list[str] = Field(default_factory=list)
    header_search_lines: Annotated[int, Field(ge=1, le=10_000)] = 60
    column_names: list[str] | None = None
    row_pattern: str | None = None
    short_rows: Literal["reject", "accept_optional"] = "reject"
    footer_patterns: list[str] = Field(default_factory=list)
    trailing_junk_is_footer: bool = True
    placeholders: list[str] = Field(default_factory=lambda: ["-", "--", "/", "—", "N/A"])
    placeholder_pattern: str | None = r"^-{3,}$"
    cells: dict[str, CellSpec] = Field(default_factory=dict)
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

    @field_validator("row_pattern")
    @classmethod
    def _row_pattern(cls, v: str | None) -> str | None:
        return _check_regex(v)

    @field_validator("placeholder_pattern")
    @classmethod
    def _placeholder(cls, v: str | None) -> str | None:
        return _check_polars_regex(v)

    @field_validator("header_signature", "header_exclude", "column_names")
    @classmethod
    def _signature(cls, v: list[str] | None) -> list[str] | None:
        norm = [norm_header(s) for s in v or []]
        if any(not s for s in norm):
            raise ValueError("header names must not be empty")
        return v

    @model_validator(mode="after")
    def _exclude_is_not_required(self) -> ProfileSpec:
        clash = sorted({norm_header(c) for c in self.header_exclude} & required_columns(self))
        if clash:
            raise ValueError(f"header_exclude names columns the profile needs: {', '.join(clash)}")
        return self

    @model_validator(mode="after")
    def _header_or_names(self) -> ProfileSpec:
        if self.column_names is None:
            if not self.header_signature:
                raise ValueError("give a header_signature (or column_names for a file without a header line)")
            if self.row_pattern:
                raise ValueError("row_pattern is for files without a header line (column_names)")
            return self
        if self.header_signature or self.header_exclude:
            raise ValueError("a file without a header line (column_names) has no header_signature / header_exclude")
        if not self.row_pattern:
            raise ValueError("column_names needs row_pattern: how detection recognises the file's first row")
        names = {norm_header(c) for c in self.column_names}
        unknown = sorted({norm_header(c) for c in self.mapped_columns()} - names)
        if unknown:
            raise ValueError(f"columns read but not in column_names: {', '.join(unknown)}")
        return self

    @property
    def has_header(self) -> bool:
        return self.column_names is None

    def mapped_columns(self) -> list[str]:
        """Every bank column the profile reads (a file without one of them cannot be read with it)."""
        ba, am = self.booked_at, self.amount
        named = [ba.column, ba.fallback_column, ba.date_column, ba.time_column]
        named += [am.column, am.income_column, am.expense_column]
        named += [am.direction_column, self.currency.column, self.account_id.column, *self.columns.values()]
        named += [self.counterparty_split.column if self.counterparty_split else None, *self.description_columns]
        return [c for c in named if c]


def required_columns(spec: ProfileSpec) -> frozenset[str]:
    """The header names (normalised) a file must have for `spec` to claim it: its signature and every column
    it reads (a file without a header line: its `column_names`)."""
    names = spec.column_names if spec.column_names is not None else [*spec.header_signature, *spec.mapped_columns()]
    return frozenset(norm_header(c) for c in names)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Hashable, Any]:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


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
    def from_dict(cls, data: Any, path: Path | None = None, node: yaml.Node | None = None) -> Profile:
        """`node` (the composed YAML document) lets an error say on which line and column the key is."""
        where = path.name if path else "<profile>"
        if not isinstance(data, dict):
            line, column = _position(node, ())
            raise ProfileError(
                f"{where}: a profile must be a YAML mapping, got {type(data).__name__}{_at(line, column)}",
                file=path,
                line=line,
                column=column,
            )
        try:
            spec = ProfileSpec.model_validate(data)
        except ValidationError as exc:
            errors = exc.errors()
            positions = [_position(node, tuple(err["loc"])) for err in errors]
            problems = "; ".join(
                f"{'.'.join(str(p) for p in err['loc']) or '(top level)'}: {err['msg']}{_at(*pos)}"
                for err, pos in zip(errors, positions, strict=True)
            )
            line, column = positions[0] if positions else (None, None)
            raise ProfileError(f"{where}: invalid profile: {problems}", file=path, line=line, column=column) from None
        return cls(spec.name, spec.description, spec.encoding, tuple(spec.header_signature), spec, path)

    @classmethod
    def from_yaml(cls, path: Path) -> Profile:
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProfileError(f"{path.name}: cannot read profile: {exc}", file=path) from None
        loader = _UniqueKeyLoader(text)
        try:
            node = loader.get_single_node()
            data = loader.construct_document(node) if node is not None else None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line, column = (mark.line + 1, mark.column + 1) if mark is not None else (None, None)
            what = ": ".join(p for p in (exc.context, exc.problem) if p) or type(exc).__name__
            raise ProfileError(
                f"{path.name}: not valid YAML: " + (f"line {line}, column {column}: " if line else "") + what,
                file=path,
                line=line,
                column=column,
            ) from None
        except yaml.YAMLError as exc:
            raise ProfileError(f"{path.name}: not valid YAML: {exc}", file=path) from None
        finally:
            loader.dispose()
        return cls.from_dict(data, path, node)

    @property
    def signature_norm(self) -> frozenset[str]:
        return frozenset(norm_header(s) for s in self.header_signature)

    @property
    def required_norm(self) -> frozenset[str]:
        """Header names a file must have for detection to give it this profile (signature + mapped columns)."""
        return required_columns(self.spec)

    @property
    def exclude_norm(self) -> frozenset[str]:
        """Header names that mark another layout (e.g. the same bank's credit-card export): never detected."""
        return frozenset(norm_header(s) for s in self.spec.header_exclude)


def _at(line: int | None, column: int | None) -> str:
    return f" (line {line}, column {column})" if line is not None else ""


def _position(node: yaml.Node | None, loc: tuple[int | str, ...]) -> tuple[int | None, int | None]:
    """1-based (line, column) of the YAML node a pydantic error location points at: the key of a mapping
    entry (an unknown or invalid key), else the deepest node of the path that exists (a missing key: its
    parent mapping)."""
    if node is None:
        return None, None
    mark = node.start_mark
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            found = next(((k, v) for k, v in node.value if getattr(k, "value", None) == str(part)), None)
            if found is None:
                break
            mark, node = found[0].start_mark, found[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and 0 <= part < len(node.value):
            node = node.value[part]
            mark = node.start_mark
        else:
            break
    return mark.line + 1, mark.column + 1


def load_profiles(directory: Path | None = None) -> dict[str, Profile]:
    """Load every ``*.yaml`` / ``*.yml`` profile of ``directory`` (default: the shipped profiles); the first
    invalid file raises `ProfileError` (`load_profile_set` skips it instead and says why)."""
    directory = Path(directory) if directory is not None else SHIPPED_PROFILES_DIR
    if not directory.is_dir():
        raise ProfileError(f"profile directory {directory} does not exist")
    profiles: dict[str, Profile] = {}
    for f in _profile_files(directory):
        p = Profile.from_yaml(f)
        if p.name in profiles:
            other = profiles[p.name].path
            raise ProfileError(
                f"{f.name}: profile name {p.name!r} is already used by {other.name if other else '?'}", file=f
            )
        profiles[p.name] = p
    return profiles


def _profile_files(directory: Path) -> list[Path]:
    return sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])


@dataclass(frozen=True)
class SkippedProfile:
    """A profile file that could not be loaded: it is left out, and every file that might have needed it
    says so."""

    path: Path
    error: ProfileError
    name: str | None
    """The profile's `name` when the YAML could be read that far (a file that is not YAML has none)."""
    header_signature: tuple[str, ...]
    """Its `header_signature` when readable: a file whose header has these names needed this profile."""

    def describe(self) -> str:
        return str(self.error)


@dataclass(frozen=True)
class ProfileSet:
    """The profiles a run reads with: the shipped ones, overridden by name by a user folder's, and the
    files that were skipped because they are invalid."""

    profiles: dict[str, Profile]
    skipped: tuple[SkippedProfile, ...] = ()
    overridden: tuple[str, ...] = ()
    """Names of shipped profiles replaced by a user profile of the same name."""

    def skipped_named(self, name: str) -> SkippedProfile | None:
        return next((s for s in self.skipped if s.name == name), None)


def _skipped(path: Path, error: ProfileError) -> SkippedProfile:
    """What can still be told about an invalid profile file: its name and header signature, if readable."""
    name: str | None = None
    signature: tuple[str, ...] = ()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError):
        data = None
    if isinstance(data, dict):
        raw_name, raw_sig = data.get("name"), data.get("header_signature")
        name = raw_name if isinstance(raw_name, str) else None
        if isinstance(raw_sig, list) and all(isinstance(c, str) for c in raw_sig):
            signature = tuple(raw_sig)
    return SkippedProfile(path, error, name or path.stem, signature)


def load_profile_set(user_dir: Path | None = None, *, shipped_dir: Path = SHIPPED_PROFILES_DIR) -> ProfileSet:
    """The shipped profiles merged with those of `user_dir` (a user profile replaces a shipped one of the
    same name). An invalid file is skipped with its reason (file, line, column, problem); every other
    profile still loads. A `user_dir` that does not exist is a `ProfileError`."""
    if user_dir is not None and not Path(user_dir).is_dir():
        raise ProfileError(f"profile directory {user_dir} does not exist")
    profiles: dict[str, Profile] = {}
    skipped: list[SkippedProfile] = []
    overridden: list[str] = []
    for directory, is_user in ((shipped_dir, False), (Path(user_dir) if user_dir else None, True)):
        if directory is None or not directory.is_dir():
            continue
        mine: set[str] = set()
        for f in _profile_files(directory):
            try:
                p = Profile.from_yaml(f)
            except ProfileError as exc:
                skipped.append(_skipped(f, exc))
                continue
            if p.name in mine:
                other = profiles[p.name].path
                error = ProfileError(
                    f"{f.name}: profile name {p.name!r} is already used by {other.name if other else '?'}", file=f
                )
                skipped.append(SkippedProfile(f, error, p.name, p.header_signature))
                continue
            if is_user and p.name in profiles:
                overridden.append(p.name)
            mine.add(p.name)
            profiles[p.name] = p
    # a profile that loaded under a name is not "skipped" for that name (a user file fixed a shipped one)
    return ProfileSet(profiles, tuple(skipped), tuple(overridden))
