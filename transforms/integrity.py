"""Statement integrity: running-balance continuity.

`balance_breaks`: one row per break — a transaction whose stated balance cannot follow from any row that
may precede it in statement order (previous balance + amount != stated balance). `integrity_month_features`:
one row per account x currency x month with breaks. `integrity_flags`: one BALANCE_BREAK flag per account
x currency x month with breaks.

Statement order is not file order: many banks export newest first, and rows sharing a timestamp (or a
day, when the bank gives only a date and every time is 00:00:00) come in any order. So the file order is
never trusted. The algorithm, per account and currency, over the rows with a stated balance:

1. Order the rows into *timestamp groups*: rows with an identical `booked_at` form one group; groups are
   numbered 1, 2, ... by time. Inside a group any order is possible.
2. Every row r implies a previous balance `balance_after - amount`. r is *continuous* when some other row
   p of its own group or of the preceding group states exactly that balance: p can precede r in a
   statement order. (An exact join on the money value: cheap at any scale.)
3. Rows that are not continuous are checked again against every candidate p of the same (p != r) and
   the preceding group; the candidate whose balance is nearest the implied previous balance is the row
   before the gap (`prev_txn_id`). If even it differs by more than `tolerance`, r is a break:
   expected = p's balance + r's amount, difference = stated - expected.

Reversals (冲正, 抹账) carry their own stated balance and chain like any other row, whatever their
position inside a timestamp group; they are never breaks by themselves.

Limits, stated honestly:
- The check is *local*: it asks whether each row has a possible predecessor, not whether one single
  order chains the whole group. A gap whose missing amounts happen to recreate a balance stated by
  another row of the same or the preceding group goes unseen. Real gaps almost never do.
- Rows of the account's first timestamp group have no known predecessor and are never breaks (for a
  date-only export: the first day).
- A row is judged only when no row *without* a stated balance sits in its group or between it and the
  preceding group: the unstated amount would be part of the chain. Rows without a balance are ignored.
- A row that chains only to a *later* timestamp (the bank stamped it out of order across distinct
  times) is reported as a break; only identical timestamps are treated as unordered.
- Checking the non-continuous rows costs (rows of the group + rows of the preceding group) per such
  row; breaks are rare, so this is small, but a date-only export of an account with thousands of rows a
  day and many breaks would make it quadratic in that day's rows.
"""

from __future__ import annotations

import polars as pl

from liushui.config import StatementIntegrityRules
from liushui.contracts import MONEY
from transforms.flag_rows import Rule, finish_flags, fmt_num, month_period, severity

_KEYS = ["account_id", "currency"]

BREAK_COLUMNS = [
    "account_id",
    "currency",
    "txn_id",
    "prev_txn_id",
    "booked_on",
    "month_on",
    "expected_balance",
    "stated_balance",
    "difference",
]


def _timestamp_groups(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """Rows with a stated balance with their timestamp group `_grp`, the preceding group holding a stated
    balance `_prev_grp` (null for the account's first), and `_is_judged`: no row without a balance in the
    group or between it and the preceding group. Group ids are integers of one sort, so the joins below
    never touch the string keys again."""
    rows = (
        transactions.select(*_KEYS, "booked_at", "txn_id", "amount", "balance_after")
        .sort(*_KEYS, "booked_at")
        .with_columns(
            _grp=pl.struct(*_KEYS, "booked_at").rle_id(),
            _acct=pl.struct(*_KEYS).rle_id(),
            _unstated_through=pl.col("balance_after").is_null().cum_sum(),
            _row=pl.int_range(pl.len(), dtype=pl.UInt32),
        )
    )
    groups = (
        rows.group_by("_grp")
        .agg(
            _acct=pl.col("_acct").first(),
            _has_stated=pl.col("balance_after").is_not_null().any(),
            _unstated_through=pl.col("_unstated_through").last(),
        )
        .filter(pl.col("_has_stated"))
        .sort("_grp")
        .with_columns(
            _prev_grp=pl.when(pl.col("_acct").shift(1) == pl.col("_acct")).then(pl.col("_grp").shift(1)),
            _is_judged=pl.col("_unstated_through") - pl.col("_unstated_through").shift(1, fill_value=0) == 0,
        )
        .select("_grp", "_prev_grp", "_is_judged")
    )
    return (
        rows.filter(pl.col("balance_after").is_not_null())
        .drop("_acct", "_unstated_through")
        .join(groups, on="_grp")
        .with_columns(_implied_prev=(pl.col("balance_after") - pl.col("amount")).cast(MONEY))
    )


def _candidates(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Every row as a possible predecessor (`_target`) of the rows of its own group and of the next one."""
    p = rows.select("_grp", _prev_row="_row", prev_balance="balance_after")
    following = rows.select("_grp", _next_grp="_prev_grp").unique().filter(pl.col("_next_grp").is_not_null())
    return pl.concat(
        [
            p.rename({"_grp": "_target"}),
            p.join(following.select(_grp="_next_grp", _target="_grp"), on="_grp").drop("_grp"),
        ],
        how="diagonal",
    )


def _targets(rows: pl.LazyFrame) -> pl.LazyFrame:
    """Each row twice: looking for its predecessor in its own group and in the preceding one."""
    return pl.concat(
        [
            rows.with_columns(_target=pl.col("_grp")),
            rows.filter(pl.col("_prev_grp").is_not_null()).with_columns(_target=pl.col("_prev_grp")),
        ]
    )


def balance_breaks(transactions: pl.LazyFrame, *, rules: StatementIntegrityRules) -> pl.LazyFrame:
    """One row per balance break: `account_id, currency, txn_id` (the row after the gap), `prev_txn_id`
    (the row before it), `booked_on, month_on, expected_balance, stated_balance, difference` (stated -
    expected). See the module docstring for the algorithm and its limits."""
    rows = _timestamp_groups(transactions).cache()
    txn_ids = rows.select(_prev_row="_row", prev_txn_id="txn_id")
    candidates = _candidates(rows).cache()
    exact = (
        _targets(rows.select("_grp", "_prev_grp", "_row", prev_balance="_implied_prev"))
        .join(candidates, on=["_target", "prev_balance"])
        .filter(pl.col("_prev_row") != pl.col("_row"))
        .select("_row")
        .unique()
    )
    suspects = rows.filter(pl.col("_prev_grp").is_not_null() & pl.col("_is_judged")).join(exact, on="_row", how="anti")
    nearest = (
        _targets(suspects)
        .join(candidates, on="_target")
        .filter(pl.col("_prev_row") != pl.col("_row"))
        .join(txn_ids, on="_prev_row")
        .with_columns(expected_balance=(pl.col("prev_balance") + pl.col("amount")).cast(MONEY))
        .with_columns(difference=(pl.col("balance_after") - pl.col("expected_balance")).cast(MONEY))
        .sort("txn_id", pl.col("difference").abs(), "prev_txn_id")
        .unique("txn_id", keep="first", maintain_order=True)
    )
    return (
        nearest.filter(pl.col("difference").abs().cast(pl.Float64) > rules.tolerance)
        .with_columns(
            booked_on=pl.col("booked_at").dt.date(),
            month_on=pl.col("booked_at").dt.date().dt.month_start(),
            stated_balance=pl.col("balance_after"),
        )
        .select(BREAK_COLUMNS)
        .sort("account_id", "currency", "booked_on", "txn_id")
    )


def integrity_month_features(breaks: pl.LazyFrame) -> pl.LazyFrame:
    """One row per account x currency x month with at least one break: `balance_breaks` (count). Months
    without a row have no break (the lead fills 0 for covered months)."""
    return breaks.group_by(*_KEYS, "month_on").agg(balance_breaks=pl.len().cast(pl.Int64))


BALANCE_BREAK = Rule(
    code="BALANCE_BREAK",
    name_zh="余额不连续",
    name_en="Running balance breaks",
    section="statement_integrity",
    config_model=StatementIntegrityRules,
    remediation_zh="提供银行盖章的完整流水（含缺失的交易），或说明余额不连续的原因；在此之前该账户的其他指标仅供参考。",
    remediation_en="Provide the complete bank-stamped statement (with the missing transactions) or explain the gap; "
    "until then the account's other figures are less reliable.",
    default_weight=15,
    doc="docs/rules_integrity_cycles.md",
    behaviour="balance_break",
)


def integrity_flags(breaks: pl.LazyFrame, *, rules: StatementIntegrityRules) -> pl.LazyFrame:
    """BALANCE_BREAK: one flag per account x currency x month with breaks. Each currency of an account is
    its own statement with its own running balance (the breaks are found per currency), and the metric is
    money: the largest difference of 100 JPY and one of 50 USD are not comparable, so they are two flags.

    The metric is the largest absolute difference among the month's breaks in that currency — the
    quantity the rule compares with `tolerance` (a break exists when |difference| > tolerance); the count
    and the currency are in the reason. Severity is always high: a statement that does not add up cannot
    be trusted, so every other figure of the account is less reliable. Evidence: both rows of every break."""
    return finish_flags(
        breaks.with_columns(_abs=pl.col("difference").abs())
        .sort("account_id", "currency", "month_on", "_abs", "txn_id", descending=[False, False, False, True, False])
        .group_by("account_id", "currency", "month_on", maintain_order=True)
        .agg(
            count=pl.len(),
            _largest=pl.col("_abs").first(),
            _txn=pl.col("txn_id").first(),
            _prev=pl.col("prev_txn_id").first(),
            evidence_txn_ids=pl.concat_list("prev_txn_id", "txn_id").list.explode().unique(),
        )
        .with_columns(
            **month_period(),
            metric_value=pl.col("_largest").cast(pl.Float64),
            threshold=pl.lit(rules.tolerance),
            limit_name=pl.lit("balance_tolerance"),
            severity=severity("high"),
            reason_zh=pl.format(
                "本月{}处余额不连续（上一笔余额+本笔金额≠本笔余额），最大差额{} {}（{}之后的{}）；"
                "流水可能缺页或被删改，该账户的其他指标可信度降低。",
                pl.col("count"),
                fmt_num(pl.col("_largest")),
                pl.col("currency"),
                pl.col("_prev"),
                pl.col("_txn"),
            ),
            reason_en=pl.format(
                "{} running-balance break(s) this month (previous balance + amount != stated balance); the "
                "largest differs by {} {} ({} after {}). Rows may be missing or altered, so the account's "
                "other figures are less reliable.",
                pl.col("count"),
                fmt_num(pl.col("_largest")),
                pl.col("currency"),
                pl.col("_txn"),
                pl.col("_prev"),
            ),
        ),
        BALANCE_BREAK,
        rules,
    )
