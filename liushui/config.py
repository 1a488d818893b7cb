"""Settings of a run and the rule configuration, read from file / environment in this one place.

`Settings` are the run parameters (inbox, database, as-of date, ...); `Rules` is `config/rules.yaml`,
validated. Business code receives the pieces it needs as arguments and never reads either itself.

Why the rules' settings models live here and not beside each rule's function (`transforms/`): the file is
validated when it is loaded, before any transform is imported, so a bad file fails at once with the file and
the field named; and the ground imports nothing above it. A rule's record in the registry
(`transforms.registry.RULES`: `Rule.section`, `Rule.config_model`) names its section here, and
tests/test_registry.py fails when `Rules` and the registry disagree (a section nobody reads, a rule whose
section is missing or typed with another model).
"""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path
from typing import Final, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from liushui.vocabularies import ISO_4217, RiskBand, Severity

PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_DIR.parent
DEFAULT_RULES_PATH = next(
    (p for p in (PROJECT_ROOT / "config" / "rules.yaml", PACKAGE_DIR / "default_rules.yaml") if p.is_file()),
    PROJECT_ROOT / "config" / "rules.yaml",
)
"""`config/rules.yaml` of a source checkout; a wheel carries the same file as `liushui/default_rules.yaml`."""
DEFAULT_DATA_DIR = Path(os.environ.get("LIUSHUI_DATA_DIR", "data"))
"""The state folder (inbox, warehouse, staging, Prefect home, Data Docs): `./data` of the working directory,
as `make run` uses it from the repository root, or LIUSHUI_DATA_DIR. Every folder under it is created on
demand; a run names its own with --inbox and --db."""
DEFAULT_DATABASE = DEFAULT_DATA_DIR / "warehouse" / "liushui.duckdb"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RuleSection(_Strict):
    """A versioned section of config/rules.yaml: the settings of one rule (or of rules sharing them, as
    `borrowing` does), and the version every row they produce records."""

    version: str


class CoverageRules(_Strict):
    min_covered_days_for_full_month: int = Field(25, ge=1, le=31)


# One model per rule section. Which rule reads which section: `transforms.registry.RULES`.
class IncomeVolatilityRules(RuleSection):
    window_months: int = Field(ge=2)
    min_months: int = Field(ge=2)
    cv_threshold: float = Field(gt=0)
    cv_high: float = Field(gt=0)
    swing_pct: float = Field(gt=0)


class IncomeStreamRules(RuleSection):
    """`income_streams`: recurring income sources (`contracts.INCOME_STREAMS`) and INCOME_STOPPED
    (`transforms.income_streams`)."""

    min_payments: int = Field(ge=2)
    """A source is a stream with at least this many clean-income payments ..."""
    min_months: int = Field(ge=2)
    """... in at least this many distinct months."""
    grace_days: int = Field(ge=0, le=31)
    """A payment this many days after its expected date is still on time (weekends, holidays)."""
    missed_for_stopped: int = Field(ge=1)
    """Expected payments missing, each past its grace, that make a stream stopped."""
    fall_share: float = Field(gt=0, lt=1)
    """Fallen: the last period's amount or the recent periods' mean is below this share of the typical amount."""
    fall_periods: int = Field(ge=1)
    steady_amount_cv: float = Field(ge=0)
    """A stream whose amounts vary more than this (coefficient of variation) is judged fallen on the mean of its
    recent periods only, never on its last payment alone."""
    """The recent periods (months of a monthly stream, payments of another) whose mean is compared."""
    share_window_months: int = Field(ge=1)
    """Full months before the judged month over which a stream's share of clean income is measured."""
    min_share: float = Field(gt=0, le=1)
    """INCOME_STOPPED judges a stream that carried at least this share of the account's clean income."""
    high_share: float = Field(gt=0, le=1)
    """... severity high from this share."""
    evidence_payments: int = Field(ge=1)
    """The flag's evidence: the stream's last payments, this many."""


FALLBACK_CURRENCY: Final = "CNY"
"""The row of a per-currency table that a currency not listed in it takes, as it is (the absolute limits do not
convert through the optional reference `fx_rates.csv`); a flag judged on it says so in its reason."""


_Amounts = TypeVar("_Amounts")


def _per_currency(table: dict[str, _Amounts]) -> dict[str, _Amounts]:
    """A per-currency table: ISO 4217 keys, and the fallback currency's row present."""
    unknown = sorted(code for code in table if code not in ISO_4217)
    if unknown:
        raise ValueError(f"not ISO 4217 currency codes: {unknown}")
    if FALLBACK_CURRENCY not in table:
        raise ValueError(f"the table needs a {FALLBACK_CURRENCY} row (the fallback of unlisted currencies)")
    return table


class OutflowLimits(_Strict):
    """The absolute amounts of LARGE_OUTFLOW in one currency."""

    absolute_floor: float = Field(ge=0)
    """Noise floor: an outflow below it is never large, whatever the income."""
    no_history_limit: float = Field(gt=0)
    """The limit when there is no income base (too few full months, or a typical clean income of zero)."""


class LargeOutflowRules(RuleSection):
    income_multiple: float = Field(gt=0)
    limits: dict[str, OutflowLimits]
    """Per currency (ISO 4217); an unlisted currency takes the `FALLBACK_CURRENCY` row."""
    min_months: int = Field(ge=1)
    high_multiple: float = Field(gt=0)
    recurring_months: int = Field(ge=2)
    """A payment to a party paid a similar amount in this many months of the statement is a commitment."""
    recurring_tolerance: float = Field(ge=0, lt=1)
    """How close "a similar amount" is, as a share of the payment."""

    _limits_per_currency = field_validator("limits")(_per_currency)


class RelatedTransferRules(RuleSection):
    share_threshold: float = Field(gt=0, le=1)
    min_count: int = Field(ge=1)
    high_share: float = Field(gt=0, le=1)


class RoundTripRules(RuleSection):
    max_days: int = Field(ge=0)
    amount_tolerance: float = Field(ge=0, lt=1)
    min_amount: float = Field(ge=0)
    min_count_per_month: int = Field(ge=1)
    high_count: int = Field(ge=1)


class PassThroughRules(RuleSection):
    """`pass_through` (PASS_THROUGH, 快进快出, `transforms.pass_through`)."""

    max_days: int = Field(ge=0, le=31)
    """Money that leaves within this many days of arriving has passed through."""
    share_threshold: float = Field(gt=0, le=1)
    high_share: float = Field(gt=0, le=1)
    min_passed: dict[str, float]
    """Noise floor per currency (ISO 4217): the money that passed through a month; an unlisted currency takes the
    `FALLBACK_CURRENCY` amount."""
    min_leg: dict[str, float]
    """Per currency: an inflow below this never passes through (interest, a refund, a red packet); it counts in
    the month's inflow but does not take the outflows that carry the money which arrived before it."""
    min_inflows: int = Field(ge=1)
    """Inflows of the month of which at least half left within `max_days`."""
    max_balance_share: float = Field(gt=0)
    """The month's median stated balance stays below this share of its inflow (money does not stay)."""

    _min_passed_per_currency = field_validator("min_passed", "min_leg")(_per_currency)


class MultiLenderRules(RuleSection):
    windows_days: list[int]
    judged_window_days: int = Field(ge=1)
    max_lenders: int = Field(ge=0)
    high_lenders: int = Field(ge=0)


class BorrowingRules(RuleSection):
    max_disbursements_per_month: int = Field(ge=0)
    max_loan_share_of_inflow: float = Field(gt=0, le=1)
    window_months: int = Field(ge=1)
    min_disbursed: float = Field(ge=0)


class BorrowToRepayRules(RuleSection):
    max_days: int = Field(ge=0)
    amount_tolerance: float = Field(ge=0, lt=1)
    min_amount: float = Field(ge=0)
    high_pairs: int = Field(ge=1)


class OverdueRules(RuleSection):
    min_events: int = Field(ge=1)
    high_events: int = Field(ge=1)


class OverdrawnRules(RuleSection):
    """`overdrawn` (OVERDRAWN, `transforms.balances`): days a debit account ends overdrawn."""

    min_days: int = Field(ge=1)
    high_days: int = Field(ge=1)
    low_balance_limit: float = Field(ge=0)
    """A day ending below this (in the account's currency) is a low-balance day (`account_months.low_balance_days`)."""


class WindowDressingRules(RuleSection):
    """`window_dressing` (WINDOW_DRESSING, 冲时点, `transforms.balances`): a debit account's balance pushed up
    around month ends and drained days later, at several month ends of the statement."""

    days_before_end: int = Field(ge=1, le=10)
    """The window around a month end: the month's last this many days (the month end included) ..."""
    days_after_end: int = Field(ge=0, le=10)
    """... and the next month's first this many days; its days are left out of the usual balance."""
    baseline_days: int = Field(ge=5, le=45)
    """The usual balance: the lower median ending balance of the days within this many days of the month end, the
    window left out; every one of them must be known (inside the coverage)."""
    balance_multiple: float = Field(gt=1)
    """The month end's ending balance is at least this multiple of the usual balance ..."""
    min_push: dict[str, float]
    """... and at least this much above it (a negative usual balance counts as zero): the noise floor per currency
    (ISO 4217); an unlisted currency takes the `FALLBACK_CURRENCY` amount."""
    push_days: int = Field(ge=1, le=10)
    """The push: inflows (salary aside) booked within this many days up to the month end ..."""
    min_push_share: float = Field(gt=0, le=1)
    """... bring at least this share of the rise (month-end balance - usual balance)."""
    drain_days: int = Field(ge=1, le=15)
    """The drain: within this many days after the month end the balance falls ..."""
    min_drained_share: float = Field(gt=0, le=1)
    """... by at least this share of the rise."""
    min_leg_share: float = Field(gt=0, le=1)
    """A push inflow or a drain outflow is evidence (and counts) when it is at least this share of the rise."""
    min_month_ends: int = Field(ge=1)
    """Flag only an account whose statement shows at least this many dressed month ends (a habit)."""
    high_month_ends: int = Field(ge=1)
    """... severity high from this many, or when the dressed month end is a quarter end."""

    _min_push_per_currency = field_validator("min_push")(_per_currency)


class DebtBurdenRules(RuleSection):
    trailing_months: int = Field(ge=1)
    max_ratio: float = Field(gt=0)
    high_ratio: float = Field(gt=0)
    min_clean_income: float = Field(ge=0)


class ComminglingRules(RuleSection):
    min_business_in_count: int = Field(ge=1)
    min_business_in_share: float = Field(ge=0, le=1)
    min_business_out_count: int = Field(ge=0)


class StatementIntegrityRules(RuleSection):
    tolerance: float = Field(ge=0)


class CycleRules(RuleSection):
    """`cycles` (transforms.cycles): chains of transfers across customers that return to where they started."""

    max_length: int = Field(ge=3, le=12)
    window_days: int = Field(ge=1)
    max_hop_lead_hours: int = Field(ge=0, le=72)
    """A hop may leave this long before the previous hop arrived (paid from the balance, the same day)."""
    max_total_loss: float = Field(ge=0, lt=1)
    """The last hop may carry this much less than the first (fees along the chain, cumulative)."""
    max_hop_gain: float = Field(ge=0, lt=1)
    """A hop may carry this much more than the one before it (rounding, a conversion's spread)."""
    min_amount: float = Field(ge=0)
    max_next_hops: int = Field(ge=1, le=50)
    """Fan-out bound: a path is extended by at most this many next hops (the earliest), which bounds memory."""


class ScatterGatherRules(RuleSection):
    """`scatter_gather` (transforms.scatter_gather): one account to another through several intermediaries."""

    window_days: int = Field(ge=1)
    min_intermediaries: int = Field(ge=2)
    min_amount: float = Field(ge=0)
    """Per transfer, in CNY (another currency through the rates table, else taken as it is)."""
    max_loss: float = Field(ge=0, lt=1)
    """An intermediary may pass on this much less than it received (its fee)."""
    max_gain: float = Field(ge=0, lt=1)
    max_lead_hours: int = Field(ge=0, le=72)
    """An intermediary may pay on this long before the money it forwards arrived."""


class FanInRules(RuleSection):
    """`fan_in` (transforms.fan): many distinct senders to one personal account in a short window."""

    window_days: int = Field(ge=1)
    min_senders: int = Field(ge=2)
    min_amount: float = Field(ge=0)
    onward_days: int = Field(ge=0)
    min_onward_share: float = Field(ge=0, le=1)
    """Required share of the gathered money that left again (0: the gathering alone is the fact)."""
    high_onward_share: float = Field(ge=0, le=1)
    """From this share on, the money moved on: severity high."""


class FanOutRules(RuleSection):
    """`fan_out` (transforms.fan): one personal account paying many distinct receivers in a short window."""

    window_days: int = Field(ge=1)
    min_receivers: int = Field(ge=2)
    min_amount: float = Field(ge=0)
    funded_days: int = Field(ge=0)
    min_funded_share: float = Field(ge=0, le=1)
    """Required share of the scattered money that had just come in (0: the scattering alone is the fact)."""
    high_funded_share: float = Field(ge=0, le=1)
    """From this share on, money that arrived was split on: severity high."""


class GatherScatterRules(RuleSection):
    """`gather_scatter` (transforms.gather_scatter): a personal account gathering from many senders and paying
    most of it on to many other receivers within days."""

    gather_days: int = Field(ge=1)
    min_senders: int = Field(ge=2)
    scatter_days: int = Field(ge=0)
    """Outflows count from the gather window's first inflow to this many days after its last."""
    min_receivers: int = Field(ge=2)
    min_amount: float = Field(ge=0)
    """Per row, in CNY (another currency through the rates table, else taken as it is)."""
    min_share_out: float = Field(gt=0, le=1)
    """Share of the gathered money paid on to the receivers."""
    high_share_out: float = Field(gt=0, le=1)


class AccountRiskRules(RuleSection):
    """`account_risk`: the score, band and recovery status of every account (`transforms.risk`)."""

    lookback_months: int = Field(ge=1)
    weights: dict[str, float]
    """Score points per flag code. The codes are the rule registry's (`transforms.registry.FLAG_CODES`); the
    ground cannot check them at load time, tests/test_registry.py checks the shipped file."""
    high_multiplier: float = Field(ge=1)
    bands: dict[RiskBand, float]
    recovering_after_clean_months: int = Field(ge=1)
    recovered_after_clean_months: int = Field(ge=1)
    severe_severities: list[Severity]


class Rules(_Strict):
    coverage: CoverageRules = CoverageRules()
    income_volatility: IncomeVolatilityRules
    income_streams: IncomeStreamRules
    large_outflow: LargeOutflowRules
    related_transfers: RelatedTransferRules
    round_trip: RoundTripRules
    pass_through: PassThroughRules
    multi_lender: MultiLenderRules
    borrowing: BorrowingRules
    borrow_to_repay: BorrowToRepayRules
    overdue: OverdueRules
    overdrawn: OverdrawnRules
    window_dressing: WindowDressingRules
    debt_burden: DebtBurdenRules
    commingling: ComminglingRules
    statement_integrity: StatementIntegrityRules
    cycles: CycleRules
    scatter_gather: ScatterGatherRules
    fan_in: FanInRules
    fan_out: FanOutRules
    gather_scatter: GatherScatterRules
    account_risk: AccountRiskRules

    def versions(self) -> dict[str, str]:
        sections = {name: getattr(self, name) for name in type(self).model_fields}
        return {name: section.version for name, section in sections.items() if isinstance(section, RuleSection)}


class ConfigError(Exception):
    """A configuration file is missing or invalid; the message names the file and the field."""


def load_rules(path: Path | None = None) -> Rules:
    path = path or DEFAULT_RULES_PATH
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read rules file ({exc.strerror})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    try:
        return Rules.model_validate(raw or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{path}: invalid rules: {problems}") from None


STAGING_COMPRESSION: Final = "uncompressed"
"""Parquet compression of a run's scratch files (staged inbox files, shards, derive checkpoints), which live
only for the run: none (measured on 3M canonical rows: write 1.0 s and read 0.5 s uncompressed, 1.6 s and
1.1 s with lz4, for files 23 % larger)."""


class Settings(_Strict):
    """Parameters of one run."""

    inbox: Path = DEFAULT_DATA_DIR / "inbox"
    database: Path = DEFAULT_DATABASE
    reference_dir: Path | None = None
    rules_path: Path = DEFAULT_RULES_PATH
    as_of: date | None = None
    """As-of date; default: the latest booking date in the data."""
    profile: str | None = None
    """Force one layout profile for every non-canonical file (default: detect per file)."""
    profiles_dir: Path | None = Field(
        default_factory=lambda: Path(os.environ["LIUSHUI_PROFILES"]) if os.environ.get("LIUSHUI_PROFILES") else None
    )
    """A folder of the user's own layout profiles (YAML), merged with the shipped ones (same name: the user's
    wins); default: the LIUSHUI_PROFILES environment variable, else none. Not part of `config_fingerprint`:
    profiles only affect how new files are read, not the published history."""
    full_rebuild: bool = False
    reingest: str | None = None
    """Read this one known file of the inbox again (its path, its file name or its sha256 in `source_files`), with
    today's profiles, and replace its rows: `liushui reingest` (docs/profiles.md). Only that file is read."""
    lock_timeout_s: float = 600.0
    """How long a run waits for another run holding the database before it gives up."""
    shards: int = Field(1, ge=1, le=1024)
    """Per-account work split into at least this many account-hash shards (1: as few as `shard_rows` allows)."""
    shard_rows: int = Field(2_000_000, ge=1_000)
    """A shard holds about this many rows (history + new): bigger nights get more shards, so that memory
    holds one shard's working set at a time (about 1.3 GiB per million rows)."""
    dask_address: str | None = None
    """Run the shards on this Dask scheduler (e.g. tcp://10.0.0.5:8786)."""
    dask_local: bool = False
    """Run the shards on a Dask LocalCluster started for the run (when no address is given)."""

    @property
    def staging_dir(self) -> Path:
        """Spilled intermediate tables of this database's runs (one folder per run)."""
        return self.database.parent / "staging" / self.database.stem

    @property
    def file_hashes_path(self) -> Path:
        """The inbox files' remembered SHA-256 (`liushui.file_hashes`), beside the database."""
        return self.database.parent / f"{self.database.stem}.file-hashes.json"


LENDER_REGISTRY_PATH = PACKAGE_DIR / "reference" / "lenders.yaml"


def config_fingerprint(rules_path: Path, reference_dir: Path | None) -> str:
    """Hash of the rule file, the lender registry, the reference data and the published tables' schema: when
    any of them changes, every account is recomputed (a new column is filled for every row)."""
    from liushui.contracts import PUBLISHED_TABLES

    digest = hashlib.sha256(rules_path.read_bytes())
    digest.update(LENDER_REGISTRY_PATH.read_bytes())
    for table in PUBLISHED_TABLES:
        digest.update(table.ddl().encode())
    if reference_dir is not None:
        for path in sorted(reference_dir.glob("*.csv")):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()
