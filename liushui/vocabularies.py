"""Published vocabularies: the values an enumerated column of a published table may hold, declared once.

Each vocabulary is a `Literal` type and the tuple of its values derived from it (`get_args`), in the order of
their meaning (dashboards sort by it). The type is what the transforms use where they write or compare one
value: mypy (strict on `transforms.*`) rejects a misspelt class, link type or severity, which as a plain
string would silently match nothing. The tuple is what the transforms' sets, the Great Expectations suites
(`expectations.suites`: value sets) and the column descriptions of `liushui.contracts` (hence
`docs/tables.md`) are built from. Adding a value is adding it here; the suites and the docs follow.

Not here, on purpose:

- **flag codes** (`risk_flags.flag_code`): a code is a rule, and a rule's home is its module in `transforms/`;
  the list is `transforms.registry.FLAG_CODES` (the ground imports nothing above it, so it cannot hold the
  list without holding a second copy of every rule's code);
- **related_relation**: besides `own_account` and `self` it carries the relations the customer's reference
  file declares (free text);
- **risk bands' bounds** and the severities a rule calls severe: those are settings (`config/rules.yaml`),
  typed with these vocabularies in `liushui.config`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Literal, TypeVar, get_args

_Value = TypeVar("_Value", bound=str)

# transactions ---------------------------------------------------------------------------------------
TxnClass = Literal[
    "salary",
    "income",
    "loan_disbursement",
    "loan_repayment",
    "penalty_fee",
    "failed_debit",
    "reversal",
    "refund",
    "own_transfer_in",
    "own_transfer_out",
    "related_transfer_in",
    "related_transfer_out",
    "round_trip_in",
    "round_trip_out",
    "cycle_in",
    "cycle_out",
    "pass_through_in",
    "pass_through_out",
    "window_dressing_in",
    "window_dressing_out",
    "spend",
    "neutral",
]
"""`transactions.txn_class`: what kind of money moved (`transforms.classify`). `neutral`: a row its export marks
as neither income nor spending (`flow_tag`: 不计收支, '/'), e.g. a move into a money-market fund or a
refund the export already netted, and a currency exchange within the account (购汇, 结汇); it counts in no
inflow, outflow or income total. The `*_in` / `*_out` classes of
round trips, cycles, pass-through and window dressing (money parked over month ends, WINDOW_DRESSING) are the legs
of money that came back, merely passed or was parked: inflows that looked earned or related and outflows that
looked spent or related (`transforms.classify.mark_returned_money`) — one fact, one flag: they are neither
income, spending nor related transfers."""
TXN_CLASSES: tuple[TxnClass, ...] = get_args(TxnClass)

CounterpartyResolution = Literal["account_id", "account_number", "masked_number", "mirrored_leg", "holder_name"]
COUNTERPARTY_RESOLUTION_MEANINGS: dict[CounterpartyResolution, str] = {
    "account_id": "counterparty_account is the account's id",
    "account_number": "counterparty_account is a number accounts.csv declares for it: account_number or aliases",
    "masked_number": "a masked number's visible digits and the holder name both match",
    "mirrored_leg": "the other account's statement shows the same transfer: amount, time, this holder",
    "holder_name": "no counterparty account; the name is the holder of exactly one account",
}
"""`transactions.counterparty_resolution`: how the other side of a transfer was resolved to an account of the
batch (`transforms.counterparty`), most confident first; null: not resolved (none, or more than one, matched)."""
COUNTERPARTY_RESOLUTIONS: tuple[CounterpartyResolution, ...] = get_args(CounterpartyResolution)

LoanRole = Literal["disbursement", "repayment", "penalty", "failed_debit", "reversal"]
"""`transactions.loan_role`, from the lender registry's role keywords (`transforms.lenders`)."""
LOAN_ROLES: tuple[LoanRole, ...] = get_args(LoanRole)

LenderCategory = Literal[
    "consumer_finance",
    "microloan",
    "bank_loan",
    "internet_bank",
    "bnpl",
    "p2p",
    "private_lending",
    "guarantee",
    "leasing",
    "factoring",
    "credit_card",
]
"""`transactions.lender_category`: the category of a lender registry entry (`liushui/reference/lenders.yaml`)."""
LENDER_CATEGORIES: tuple[LenderCategory, ...] = get_args(LenderCategory)

ISO_4217: tuple[str, ...] = tuple(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD
    CAD CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP
    GEL GHS GIP GMD GNF GTQ GYD HKD HNL HRK HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW
    KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD
    NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE
    SLL SOS SRD SSP STN SVC SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED
    VES VND VUV WST XAF XAG XAU XCD XCG XDR XOF XPD XPF XPT XSU XUA YER ZAR ZMW ZWG ZWL
    """.split()  # noqa: SIM905 (26 codes a line read better than one a line)
)
"""Every `currency` column: ISO 4217 codes, the active ones plus the precious-metal and fund codes banks use in
statements. Parse quarantines a row with another code, the suites check it again."""

# reference inputs -----------------------------------------------------------------------------------
AccountType = Literal["personal", "business", "credit_card"]
ACCOUNT_TYPE_MEANINGS: dict[AccountType, str] = {
    "personal": "",
    "business": "",
    "credit_card": "a negative balance is the amount owed, not an overdraft",
}
"""`accounts.account_type` (data/reference/accounts.csv). Read case-insensitively; `credit card`, `credit-card`,
`creditcard` and 信用卡 also mean `credit_card` (`transforms.balances.is_credit_card`); an unknown or missing
type is a debit account."""
ACCOUNT_TYPES: tuple[AccountType, ...] = get_args(AccountType)

# quarantine and source_files ------------------------------------------------------------------------
QuarantineReasonCode = Literal[
    "ragged_row",
    "bad_encoding",
    "ambiguous_amount",
    "bad_direction",
    "excluded_direction",
    "missing_account",
    "missing_date",
    "bad_date",
    "missing_amount",
    "bad_amount",
    "bad_balance",
    "bad_currency",
    "currency_mismatch",
    "implausible_amount",
]
"""`quarantine.reason_code`: why an input row did not become a transaction — the reader's codes (a malformed
row, a layout profile's own checks) and then parse's, in the order they are checked (`liushui.ingest`)."""
QUARANTINE_REASON_CODES: tuple[QuarantineReasonCode, ...] = get_args(QuarantineReasonCode)

FileStatus = Literal["loaded", "partial", "quarantined", "rejected"]
FILE_STATUS_MEANINGS: dict[FileStatus, str] = {
    "loaded": "",
    "partial": "some rows quarantined",
    "quarantined": "every row quarantined: nothing loaded",
    "rejected": "whole file; retried on the next run, one row per attempt",
}
"""`source_files.status`: the outcome of one file."""
FILE_STATUSES: tuple[FileStatus, ...] = get_args(FileStatus)

# transfer_links and risk_flags ----------------------------------------------------------------------
LinkType = Literal["round_trip", "transfer_legs", "borrow_to_repay", "cycle"]
LINK_TYPE_MEANINGS: dict[LinkType, str] = {
    "round_trip": "out to a party and back, or in from it and back out; out_txn_id is the outflow either way",
    "transfer_legs": "",
    "borrow_to_repay": "",
    "cycle": "one row per hop: the hop's outflow and the next account's inflow",
}
"""`transfer_links.link_type`: what ties the two transactions of a link together."""
LINK_TYPES: tuple[LinkType, ...] = get_args(LinkType)

Severity = Literal["low", "medium", "high"]
"""`risk_flags.severity`."""
SEVERITIES: tuple[Severity, ...] = get_args(Severity)

# account_risk ---------------------------------------------------------------------------------------
RiskBand = Literal["low", "medium", "high", "severe"]
"""`account_risk.band`; each band's lower bound is a setting (`account_risk.bands` in config/rules.yaml)."""
RISK_BANDS: tuple[RiskBand, ...] = get_args(RiskBand)

RecoveryStatus = Literal["clean", "watch", "at_risk", "recovering", "recovered", "insufficient_history"]
RECOVERY_STATUS_MEANINGS: dict[RecoveryStatus, str] = {
    "clean": "no flags",
    "watch": "active flags, none severe",
    "at_risk": "a severe flag within the last M months",
    "recovering": "M..K-1 clean months since",
    "recovered": "K or more",
    "insufficient_history": "a severe flag with fewer than K clean months since, and the statement ends before the "
    "last full month: the months that would show recovery are not covered",
}
"""`account_risk.recovery_status` (M, K: `account_risk.recovering_after_clean_months`, `..recovered_after_..`;
clean months are full, covered months: a month outside the statement is unknown, never clean)."""
RECOVERY_STATUSES: tuple[RecoveryStatus, ...] = get_args(RecoveryStatus)

StatementTrust = Literal["normal", "low"]
STATEMENT_TRUST_MEANINGS: dict[StatementTrust, str] = {
    "normal": "",
    "low": "the statement's running balance breaks: its other figures are less reliable",
}
"""`account_risk.statement_trust`."""
STATEMENT_TRUST_LEVELS: tuple[StatementTrust, ...] = get_args(StatementTrust)

# income_streams -------------------------------------------------------------------------------------
StreamCadence = Literal["monthly", "biweekly", "weekly", "irregular"]
STREAM_CADENCE_MEANINGS: dict[StreamCadence, str] = {
    "monthly": "median gap between payment days of 26-35 days",
    "biweekly": "12-17 days",
    "weekly": "5-9 days",
    "irregular": "any other gap: no payment is expected on a date",
}
"""`income_streams.cadence` (`transforms.income_streams`)."""
STREAM_CADENCES: tuple[StreamCadence, ...] = get_args(StreamCadence)

StreamStatus = Literal["active", "late", "fallen", "stopped"]
STREAM_STATUS_MEANINGS: dict[StreamStatus, str] = {
    "active": "paid on time, or the next payment is still within its grace",
    "late": "the expected payment is missing and its grace has passed",
    "fallen": "the last period's amount, or the recent periods' mean, is below the fall share of the typical amount",
    "stopped": "at least the stopped number of expected payments is missing, each past its grace",
}
"""`income_streams.status` as of the run's as-of date (or the end of the account's statement when earlier); stopped
is judged first, then fallen, then late (`income_streams` settings in config/rules.yaml)."""
STREAM_STATUSES: tuple[StreamStatus, ...] = get_args(StreamStatus)

StreamKind = Literal["salary"]
"""`income_streams.kind`: salary when most payments are of class salary (代发工资, 工资, payroll ...); null when
the statement does not say what the income is."""
STREAM_KINDS: tuple[StreamKind, ...] = get_args(StreamKind)

# dq_results and pipeline_runs -----------------------------------------------------------------------
DqLevel = Literal["blocking", "warning"]
"""`dq_results.level`: a failed blocking expectation stops the publish, a warning is only recorded."""
DQ_LEVELS: tuple[DqLevel, ...] = get_args(DqLevel)

RunStatus = Literal["published", "nothing_new", "blocked_by_dq", "failed", "crashed"]
"""`pipeline_runs.status`."""
RUN_STATUSES: tuple[RunStatus, ...] = get_args(RunStatus)

RunMode = Literal["full", "incremental", "reingest"]
"""`pipeline_runs.mode`; reingest: one known file read again (`liushui reingest`), the signals rebuilt in full."""
RUN_MODES: tuple[RunMode, ...] = get_args(RunMode)


def one_of(values: Iterable[_Value], meanings: Mapping[_Value, str] | None = None) -> str:
    """The values as a column description says them: "a, b or c", each followed by its meaning in brackets
    when `meanings` gives one (an empty meaning: the name says it)."""
    said = [f"{v} ({meanings[v]})" if meanings and meanings.get(v) else v for v in values]
    return said[0] if len(said) == 1 else f"{', '.join(said[:-1])} or {said[-1]}"


def _check_meanings(values: tuple[_Value, ...], meanings: Mapping[_Value, str]) -> None:
    """A meanings table names exactly its vocabulary's values, in the same order (the tuple is the order)."""
    if tuple(meanings) != values:
        raise ValueError(f"meanings {list(meanings)} do not match the vocabulary {list(values)}")


_check_meanings(ACCOUNT_TYPES, ACCOUNT_TYPE_MEANINGS)
_check_meanings(FILE_STATUSES, FILE_STATUS_MEANINGS)
_check_meanings(COUNTERPARTY_RESOLUTIONS, COUNTERPARTY_RESOLUTION_MEANINGS)
_check_meanings(LINK_TYPES, LINK_TYPE_MEANINGS)
_check_meanings(RECOVERY_STATUSES, RECOVERY_STATUS_MEANINGS)
_check_meanings(STATEMENT_TRUST_LEVELS, STATEMENT_TRUST_MEANINGS)
_check_meanings(STREAM_CADENCES, STREAM_CADENCE_MEANINGS)
_check_meanings(STREAM_STATUSES, STREAM_STATUS_MEANINGS)
