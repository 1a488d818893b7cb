"""Fan-in and fan-out: money gathered from many parties into one personal account, or scattered from one
to many, within days — the collection and distribution steps of laundering-shaped flows (集中转入 / 分散转出).

`fan_in_flags`: one FAN_IN flag per account, currency and month with a window of `window_days` in which at
least `min_senders` distinct senders paid the account, and — unless `min_onward_share` is 0 — at least that
share of what came in left the account again by `onward_days` after the window's last inflow.
`fan_out_flags`: the mirror image: at least `min_receivers` distinct receivers paid within `window_days`,
funded — unless `min_funded_share` is 0 — by inflows of at least that share within `funded_days` before the
window's first outflow.

Computed per account from its own statement (the counterparty's account, when resolved, only tells parties
apart), so the rules run shard by shard and are not cross-account patterns.

A *party* is `transforms.counterparty.party_keys` over the account's candidate rows: the resolved account,
else the number (a masked number fitting a full number, or another masked form, of the same name is that
party), else the name (one named both ways is the numbered party); a row naming nobody counts for nobody. So a
receiver shown once as 6222****1234, once in full and once by name alone is one receiver, not three.

What is normal and does not count (precision):

- the account is a business account (`account_type` business in accounts.csv): a shop or a company is paid by
  many customers and pays many suppliers;
- salary (a payroll day pays many employees: outflows whose memo is a payroll memo; inflows of class salary),
  loan events, refunds and reversals, own transfers (the customer's own accounts), and amounts below
  `min_amount`;
- merchant-like parties (`MERCHANT_PATTERN`: companies, shops, payment platforms) and parties that are
  business accounts of the batch: a personal account buying from five shops, or refunded by them, is
  shopping.

Why the onward / funded condition: a personal account that collects from many friends and keeps the money
(a wedding, a shared purchase) is not a conduit; what marks laundering is that the money moves on.

The metric is the number of distinct parties in the month's busiest window; the evidence, that window's rows
and the onward (or funding) rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from liushui.config import FanInRules, FanOutRules
from liushui.vocabularies import TxnClass
from transforms.classify import SALARY_PATTERN, txn_class_is
from transforms.counterparty import party_keys
from transforms.flag_rows import Rule, finish_flags, fmt_num, fmt_pct, high_when, month_period
from transforms.patterns import ascii_word_boundaries

MERCHANT_PATTERN = ascii_word_boundaries(
    r"(?i)公司|有限|集团|商户|商行|商店|超市|便利|门店|店$|餐厅|饭店|酒店|医院|学校|银行|保险|证券|基金|"
    r"支付宝|财付通|微信支付|美团|京东|淘宝|天猫|拼多多|银联|"
    r"\b(ltd|inc|llc|corp|co|gmbh|plc|store|shop|market)\b"
)
"""Counterparty names of merchants, institutions and payment platforms: paying or being paid by many of them
is everyday life. The Latin words take an ASCII word boundary (`transforms.patterns`): a Unicode one made this
pattern cost 2.7 s of CPU per million names, an ASCII one 0.1 s."""
FAN_IN_CLASSES: tuple[TxnClass, ...] = (
    "income",
    "related_transfer_in",
    "round_trip_in",
    "cycle_in",
    "pass_through_in",
    "window_dressing_in",
)
"""Inflows that may be gathered money (not salary, loans, refunds or own transfers)."""
FAN_OUT_CLASSES: tuple[TxnClass, ...] = (
    "spend",
    "related_transfer_out",
    "round_trip_out",
    "cycle_out",
    "pass_through_out",
    "window_dressing_out",
)
"""Outflows that may be scattered money (not loan repayments, fees or own transfers)."""

_KEY = ["account_id", "currency"]


def _business_accounts(accounts: pl.LazyFrame) -> pl.LazyFrame:
    return accounts.filter(pl.col("account_type").str.strip_chars().str.to_lowercase() == "business").select(
        "account_id"
    )


def fanned_rows(
    transactions: pl.LazyFrame, accounts: pl.LazyFrame, condition: pl.Expr, *, min_amount: float
) -> pl.LazyFrame:
    """The rows meeting `condition` of personal (or unknown) accounts that may be fanned money (module
    docstring: what does not count), one row each: `account_id, currency, txn_id, booked_at, _party` (its
    `party_keys` among these rows), `_amount` (absolute, float: a ratio's base) and `_is_inflow`."""
    business = _business_accounts(accounts)
    return (
        transactions.filter(
            condition
            & (pl.col("amount").abs() >= min_amount)
            & pl.col("lender_id").is_null()
            & ~pl.col("counterparty_name").fill_null("").str.contains(MERCHANT_PATTERN)
        )
        .join(business, on="account_id", how="anti")
        .join(business.select(counterparty_account_id="account_id"), on="counterparty_account_id", how="anti")
        .pipe(party_keys, within=["account_id"])
        .filter(pl.col("party_key").is_not_null())
        .rename({"party_key": "_party"})
        .select(
            *_KEY,
            "txn_id",
            "booked_at",
            "_party",
            _amount=pl.col("amount").abs().cast(pl.Float64),
            _is_inflow=pl.col("amount") > 0,
        )
    )


def _busiest_windows(rows: pl.LazyFrame, *, window_days: int, min_parties: int) -> pl.LazyFrame:
    """Per account, currency and month: the window of `window_days` ending at one of the rows with the most
    distinct parties, when they are at least `min_parties` (`_parties, _start_at, _end_at, _total`)."""
    windows = (
        rows.sort(*_KEY, "booked_at")
        .rolling(index_column="booked_at", period=f"{window_days}d", group_by=_KEY)
        .agg(
            _parties=pl.col("_party").n_unique(),
            _start_at=pl.col("booked_at").min(),
            _total=pl.col("_amount").sum(),
        )
        .rename({"booked_at": "_end_at"})
        .unique([*_KEY, "_end_at"])
        .filter(pl.col("_parties") >= min_parties)
        .with_columns(month_on=pl.col("_end_at").dt.date().dt.month_start())
    )
    return windows.sort(
        *_KEY, "month_on", pl.col("_parties"), "_end_at", descending=[False, False, False, True, False]
    ).unique([*_KEY, "month_on"], keep="first", maintain_order=True)


def _window_rows(windows: pl.LazyFrame, rows: pl.LazyFrame) -> pl.LazyFrame:
    """The ids of each window's rows (`_window_ids`)."""
    return (
        windows.select(*_KEY, "month_on", "_start_at", "_end_at")
        .join(rows.select(*_KEY, "txn_id", "booked_at"), on=_KEY)
        .filter(pl.col("booked_at").is_between(pl.col("_start_at"), pl.col("_end_at")))
        .group_by(*_KEY, "month_on")
        .agg(_window_ids=pl.col("txn_id"))
    )


def _other_side(
    windows: pl.LazyFrame, transactions: pl.LazyFrame, *, inflow: bool, start: pl.Expr, end: pl.Expr
) -> pl.LazyFrame:
    """Per window: the rows moving the other way (`inflow`) between `start` and `end` (`_other_ids`,
    `_other_total`)."""
    direction = pl.col("amount") > 0 if inflow else pl.col("amount") < 0
    other = transactions.filter(direction).select(
        *_KEY, _txn="txn_id", _at="booked_at", _value=pl.col("amount").abs().cast(pl.Float64)
    )
    return (
        windows.select(*_KEY, "month_on", "_start_at", "_end_at")
        .join(other, on=_KEY)
        .filter(pl.col("_at").is_between(start, end))
        .group_by(*_KEY, "month_on")
        .agg(_other_ids=pl.col("_txn"), _other_total=pl.col("_value").sum())
    )


def _with_evidence(windows: pl.LazyFrame, rows: pl.LazyFrame, other: pl.LazyFrame, *, min_share: float) -> pl.LazyFrame:
    key = [*_KEY, "month_on"]
    return (
        windows.join(_window_rows(windows, rows), on=key)
        .join(other, on=key, how="left")
        .with_columns(
            _other_ids=pl.col("_other_ids").fill_null([]),
            _share=(pl.col("_other_total").fill_null(0.0) / pl.col("_total")).clip(upper_bound=1.0),
        )
        .filter(pl.col("_share") >= min_share)
        .with_columns(evidence_txn_ids=pl.concat_list("_window_ids", "_other_ids").list.unique())
    )


@dataclass(frozen=True)
class _Wording:
    """A fan rule's reason text: the gathering or scattering, then whether the money moved on."""

    zh: str
    """Format with window start, end, days, parties, total."""
    en: str
    """Format with days, window start, end, parties, total."""
    moved_zh: str
    """Format with share, days: the other side reached the rule's high share."""
    moved_en: str
    stayed_zh: str
    """Format with share, days: it did not."""
    stayed_en: str


def _fan_flags(
    rows: pl.LazyFrame,
    windows: pl.LazyFrame,
    other: pl.LazyFrame,
    *,
    rule: Rule,
    rules: FanInRules | FanOutRules,
    min_parties: int,
    min_share: float,
    high_share: float,
    other_days: int,
    limit_name: str,
    wording: _Wording,
) -> pl.LazyFrame:
    """The flags of both fan rules: metric the distinct parties of the month's busiest window, threshold
    `min_parties`; high at twice that or when the money moving the other way reaches `high_share`."""
    moved = pl.col("_share") >= high_share
    share, days = fmt_pct(pl.col("_share")), pl.lit(str(other_days))
    window = [pl.col("_start_at").dt.date(), pl.col("_end_at").dt.date()]
    counts = [pl.col("_parties"), fmt_num(pl.col("_total"))]
    flagged = _with_evidence(windows, rows, other, min_share=min_share).with_columns(
        **month_period(),
        metric_value=pl.col("_parties").cast(pl.Float64),
        threshold=pl.lit(float(min_parties)),
        limit_name=pl.lit(limit_name),
        severity=high_when((pl.col("_parties") >= 2 * min_parties) | moved),
        reason_zh=pl.format(wording.zh, *window, pl.lit(str(rules.window_days)), *counts)
        + pl.when(moved)
        .then(pl.format(wording.moved_zh, share, days))
        .otherwise(pl.format(wording.stayed_zh, share, days)),
        reason_en=pl.format(wording.en, pl.lit(str(rules.window_days)), *window, *counts)
        + pl.when(moved)
        .then(pl.format(wording.moved_en, share, days))
        .otherwise(pl.format(wording.stayed_en, share, days)),
    )
    return finish_flags(flagged, rule, rules)


# --- FAN_IN ---
FAN_IN = Rule(
    code="FAN_IN",
    name_zh="多方集中转入",
    name_en="Fan-in from many senders",
    section="fan_in",
    config_model=FanInRules,
    remediation_zh="说明{rules.window_days}天内多名转款人向本账户转账的背景（借款、代收、合伙款等）并提供凭证；"
    "停止代他人归集资金后再转出。",
    remediation_en="Explain why many people paid this account within {rules.window_days} days (a loan, collecting "
    "on someone's behalf, a shared venture) with receipts; stop collecting other people's money to pass it on.",
    default_weight=15,
    doc="docs/rules_integrity_cycles.md",
    behaviour="fan_in",
)


def _fan_in_parts(
    transactions: pl.LazyFrame, accounts: pl.LazyFrame, *, rules: FanInRules
) -> tuple[pl.LazyFrame, pl.LazyFrame, pl.LazyFrame]:
    """The rows that may be gathered money, the month's busiest windows and the money that moved on."""
    rows = fanned_rows(
        transactions,
        accounts,
        (pl.col("amount") > 0) & txn_class_is(*FAN_IN_CLASSES),
        min_amount=rules.min_amount,
    )
    windows = _busiest_windows(rows, window_days=rules.window_days, min_parties=rules.min_senders)
    onward = _other_side(
        windows,
        transactions,
        inflow=False,
        start=pl.col("_start_at"),
        end=pl.col("_end_at") + pl.duration(days=rules.onward_days),
    )
    return rows, windows, onward


def gathered_inflows(transactions: pl.LazyFrame, accounts: pl.LazyFrame, *, rules: FanInRules) -> pl.LazyFrame:
    """`txn_id` of the inflows of every FAN_IN window: money gathered from many parties (红包, 借款 from ten
    people in three days, collections) is that fact, not earned income."""
    rows, windows, onward = _fan_in_parts(transactions, accounts, rules=rules)
    flagged = _with_evidence(windows, rows, onward, min_share=rules.min_onward_share)
    return flagged.select(txn_id="_window_ids").explode("txn_id").drop_nulls().unique()


def fan_in_flags(transactions: pl.LazyFrame, accounts: pl.LazyFrame, *, rules: FanInRules) -> pl.LazyFrame:
    """FAN_IN (module docstring): metric the distinct senders of the month's busiest window, threshold
    `min_senders`; high when twice that many or when `high_onward_share` of it moved on; evidence the window's
    inflows and the onward outflows."""
    rows, windows, onward = _fan_in_parts(transactions, accounts, rules=rules)
    return _fan_flags(
        rows,
        windows,
        onward,
        rule=FAN_IN,
        rules=rules,
        min_parties=rules.min_senders,
        min_share=rules.min_onward_share,
        high_share=rules.high_onward_share,
        other_days=rules.onward_days,
        limit_name="distinct_senders",
        wording=_Wording(
            zh="{}至{}的{}天内有{}名不同转款人转入共{}",
            en="Within {} days ({} to {}) {} distinct senders paid in {}",
            moved_zh="，其中{}在{}天内转出：资金从多方集中到本账户后又转走。",
            moved_en="; {} of it left within {} days: money gathered from many parties and passed on.",
            stayed_zh="（{}在{}天内转出）：资金从多方集中到本账户。",
            stayed_en=" ({} of it left within {} days): money gathered from many parties into this account.",
        ),
    )


# --- FAN_OUT ---
FAN_OUT = Rule(
    code="FAN_OUT",
    name_zh="分散转出多方",
    name_en="Fan-out to many receivers",
    section="fan_out",
    config_model=FanOutRules,
    remediation_zh="说明{rules.window_days}天内向多名收款人转账的用途并提供合同或凭证；停止将转入资金拆分转给多人。",
    remediation_en="Explain the purpose of paying many people within {rules.window_days} days with contracts or "
    "receipts; stop splitting money that came in across many receivers.",
    default_weight=15,
    doc="docs/rules_integrity_cycles.md",
    behaviour="fan_out",
)


def fan_out_flags(transactions: pl.LazyFrame, accounts: pl.LazyFrame, *, rules: FanOutRules) -> pl.LazyFrame:
    """FAN_OUT (module docstring): metric the distinct receivers of the month's busiest window, threshold
    `min_receivers`; high when twice that many or when `high_funded_share` of it had just come in; evidence the
    window's outflows and the funding inflows."""
    rows = fanned_rows(
        transactions,
        accounts,
        (pl.col("amount") < 0)
        & txn_class_is(*FAN_OUT_CLASSES)
        & ~pl.col("description").fill_null("").str.contains(SALARY_PATTERN),
        min_amount=rules.min_amount,
    )
    windows = _busiest_windows(rows, window_days=rules.window_days, min_parties=rules.min_receivers)
    funding = _other_side(
        windows,
        transactions,
        inflow=True,
        start=pl.col("_start_at") - pl.duration(days=rules.funded_days),
        end=pl.col("_end_at"),
    )
    return _fan_flags(
        rows,
        windows,
        funding,
        rule=FAN_OUT,
        rules=rules,
        min_parties=rules.min_receivers,
        min_share=rules.min_funded_share,
        high_share=rules.high_funded_share,
        other_days=rules.funded_days,
        limit_name="distinct_receivers",
        wording=_Wording(
            zh="{}至{}的{}天内向{}名不同收款人转出共{}",
            en="Within {} days ({} to {}) paid {} distinct receivers {}",
            moved_zh="，其中{}来自此前{}天内的转入：资金转入后被拆分转给多方。",
            moved_en="; {} of it had come in within {} days before: money split across many parties.",
            stayed_zh="（{}来自此前{}天内的转入）：资金分散转给多方。",
            stayed_en=" ({} of it had come in within {} days before): money scattered to many parties.",
        ),
    )
