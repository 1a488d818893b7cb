"""Transfers between an account and its own / related parties, and the links between transactions.

`round_trips`: one row per round trip — money out of an account to a party and back from the same party, or
money in from a party and back out to it (a friend sends 50,000, it goes back two days later), within
`max_days`, of a similar amount; for the customer's related parties and own accounts, any of them is the same
party. `transfer_legs`: one row per transfer whose two legs are both in the batch (an outflow of account A to
account B and the matching inflow of B from A). Both have the `contracts.TRANSFER_LINKS` columns; a round trip's
`out_txn_id` is always its outflow, whichever came first.

Two rules (`contracts.RISK_FLAGS` rows; rules and defaults: docs/rules_core.md): `related_transfer_flags`
(RELATED_TRANSFER_HEAVY), a month whose outflow goes mostly to own accounts and related parties, and
`round_trip_flags` (ROUND_TRIP, 刷流水), a month with several round trips.
"""

from __future__ import annotations

import polars as pl

from liushui.config import RelatedTransferRules, RoundTripRules
from liushui.contracts import TRANSFER_LINKS
from liushui.vocabularies import LinkType, TxnClass
from transforms.classify import RELATED_OUT_CLASSES, txn_class_is
from transforms.flag_rows import Rule, evidence_in_months, finish_flags, fmt_num, fmt_pct, high_when, month_period
from transforms.stable_ids import stable_id

_LOAN_CLASSES: tuple[TxnClass, ...] = (
    "loan_disbursement",
    "loan_repayment",
    "penalty_fee",
    "failed_debit",
    "refund",
    "reversal",
)
"""Loan events, refunds and reversals: money that moves out and back for reasons of its own, never a round trip."""

_MASK = r"[*＊•]|[xX×]{2,}|尾号|\.\.\.|…"
"""What marks a counterparty account number as masked (6222****1234, 尾号1234, 6222...1234)."""


def _counterparty_parts() -> dict[str, pl.Expr]:
    """The counterparty as statements show it, normalised for matching one leg against the other.

    `_cp_name`: the name without spaces and punctuation, case-folded, full-width brackets made half-width;
    `_cp_number`: the account number without spaces and dashes; `_cp_masked`: the number hides digits;
    `_cp_head`: its visible leading digits (a full number: all of it); `_cp_tail`: its last four visible digits.
    """
    name = (
        pl.col("counterparty_name")
        .str.replace_all(r"[\s　·•.,，。\-_]", "")
        .str.replace_all("（", "(")
        .str.replace_all("）", ")")
        .str.to_lowercase()
    )
    number = pl.col("counterparty_account").str.replace_all(r"[\s\-]", "")
    return {
        "_cp_name": pl.when(name != "").then(name),
        "_cp_number": pl.when(number != "").then(number),
        "_cp_masked": number.str.contains(_MASK).fill_null(False),
        "_cp_head": number.str.extract(r"^(\d+)", 1),
        "_cp_tail": number.str.extract(r"(\d{4})\D*$", 1),
    }


def _same_counterparty() -> pl.Expr:
    """The two legs (`<part>` of the outflow, `<part>_in` of the inflow) name the same party.

    - the same account number, as written (names may be spelt differently by the two banks);
    - a masked number on either side whose visible digits fit the other's (same last four digits, one visible
      head starting the other), unless both legs name the party and the names differ;
    - the same name, unless both legs give account numbers that cannot be the same account;
    - or both are the customer's related parties / own accounts (one party group).
    """

    def both(part: str) -> pl.Expr:
        return pl.col(part).is_not_null() & pl.col(f"{part}_in").is_not_null()

    def col_pair(part: str) -> tuple[pl.Expr, pl.Expr]:
        return pl.col(part), pl.col(f"{part}_in")

    number, number_in = col_pair("_cp_number")
    head, head_in = col_pair("_cp_head")
    tail, tail_in = col_pair("_cp_tail")
    name, name_in = col_pair("_cp_name")
    masked = pl.col("_cp_masked") | pl.col("_cp_masked_in")
    heads_fit = ~both("_cp_head") | head.str.starts_with(head_in) | head_in.str.starts_with(head)
    digits_fit = both("_cp_tail") & (tail == tail_in) & heads_fit
    same_number = both("_cp_number") & ~masked & (number == number_in)
    numbers_conflict = both("_cp_number") & pl.when(masked).then(~digits_fit).otherwise(number != number_in)
    names_conflict = both("_cp_name") & (name != name_in)
    related = pl.col("_related_party").is_not_null() & (pl.col("_related_party") == pl.col("_related_party_in"))
    return (
        related
        | same_number
        | (masked & digits_fit & ~names_conflict)
        | (both("_cp_name") & (name == name_in) & ~numbers_conflict)
    ).fill_null(False)


_PARTS = ["_cp_name", "_cp_number", "_cp_masked", "_cp_head", "_cp_tail", "_related_party"]
"""What `_same_counterparty` compares of each leg."""


def _match_keys() -> pl.Expr:
    """Equi-join keys under which two legs may be the same party (the pair is then checked whole by
    `_same_counterparty`): the related-party group, the account number, its last four digits, the name."""
    return pl.concat_list(
        pl.lit("related:") + pl.col("_related_party"),
        pl.lit("number:") + pl.col("_cp_number"),
        pl.lit("tail:") + pl.col("_cp_tail"),
        pl.lit("name:") + pl.col("_cp_name"),
    ).list.drop_nulls()


def link_id_expr(link_type: LinkType) -> pl.Expr:
    """`link_id`: a stable id of the link type and its two transactions."""
    return stable_id(pl.lit(link_type), pl.col("out_txn_id"), pl.col("in_txn_id"))


def link_type_is(link_type: LinkType) -> pl.Expr:
    """`link_type` is `link_type`."""
    return pl.col("link_type") == link_type


def link_type_value(link_type: LinkType) -> pl.Expr:
    """A link type as a literal."""
    return pl.lit(link_type)


MATCH_ROUNDS = 8
"""Rounds of mutual-first matching in `one_to_one` before a last greedy pass takes what is left."""


def one_to_one(pairs: pl.LazyFrame, *, order: list[str]) -> pl.LazyFrame:
    """Keep each outgoing and each incoming transaction in at most one pair, best pairs by `order` first.

    In rounds: a pair that comes first in `order` both for its outflow and for its inflow is kept, and every
    other pair of its two legs is dropped; the rest go to the next round. The first remaining pair is always
    kept, so a round never stalls, and legs whose first choice went to a better pair get their second choice
    (alternating out-in-out-in legs with one party pair up in order, where a single pass kept every other
    trip). After `MATCH_ROUNDS` a last pass keeps, for every outflow left, its first inflow not yet taken.
    Materialised: the candidate pairs are few, and each round needs the previous one's result."""
    remaining = pairs.sort(order).collect()
    kept: list[pl.DataFrame] = []
    for _ in range(MATCH_ROUNDS):
        if remaining.is_empty():
            break
        first_for_out = pl.int_range(pl.len()).over("out_txn_id") == 0
        first_for_in = pl.int_range(pl.len()).over("in_txn_id") == 0
        chosen = remaining.filter(first_for_out & first_for_in)
        kept.append(chosen)
        remaining = remaining.join(chosen.select("out_txn_id"), on="out_txn_id", how="anti").join(
            chosen.select("in_txn_id"), on="in_txn_id", how="anti"
        )
    kept.append(
        remaining.unique("out_txn_id", keep="first", maintain_order=True).unique(
            "in_txn_id", keep="first", maintain_order=True
        )
    )
    return pl.concat(kept).sort(order).lazy()


def round_trips(transactions: pl.LazyFrame, *, rules: RoundTripRules) -> pl.LazyFrame:
    """Round trips (刷流水) in both directions: out to a party and back from it, or in from a party and back out
    to it, within `max_days`, the second leg within `amount_tolerance` of the first."""
    candidates = (
        transactions.filter(
            ~txn_class_is(*_LOAN_CLASSES)
            & (pl.col("amount").abs() >= rules.min_amount)
            & (pl.col("counterparty_account").is_not_null() | pl.col("counterparty_name").is_not_null())
        )
        .with_columns(
            **_counterparty_parts(),
            _related_party=pl.when(pl.col("related_relation").is_not_null()).then(pl.col("customer_id")),
        )
        .with_columns(_key=_match_keys())
        .explode("_key")
        .filter(pl.col("_key").is_not_null())
    )
    outs = candidates.filter(pl.col("amount") < 0).select(
        "account_id",
        "currency",
        "_key",
        *_PARTS,
        out_txn_id="txn_id",
        out_at="booked_at",
        amount_out=pl.col("amount").abs(),
        counterparty=pl.coalesce("counterparty_name", "counterparty_account"),
    )
    ins = candidates.filter(pl.col("amount") > 0).select(
        "account_id",
        "currency",
        "_key",
        *[pl.col(c).alias(f"{c}_in") for c in _PARTS],
        in_txn_id="txn_id",
        in_at="booked_at",
        amount_in="amount",
    )
    first_amount = pl.when(pl.col("out_at") < pl.col("in_at")).then("amount_out").otherwise("amount_in")
    gap = (pl.col("in_at") - pl.col("out_at")).abs()
    pairs = (
        outs.join(ins, on=["account_id", "currency", "_key"], how="inner")
        .unique(["out_txn_id", "in_txn_id"])
        .filter(
            (pl.col("in_at") != pl.col("out_at"))
            & (gap <= pl.duration(days=rules.max_days))
            & (
                (pl.col("amount_in") - pl.col("amount_out")).abs().cast(pl.Float64)
                <= pl.lit(rules.amount_tolerance) * first_amount.cast(pl.Float64)
            )
            & _same_counterparty()
        )
        .with_columns(
            days_apart=(pl.col("in_at").dt.date() - pl.col("out_at").dt.date()).dt.total_days().abs(),
            _start_at=pl.min_horizontal("out_at", "in_at"),
            _gap=gap,
        )
    )
    return TRANSFER_LINKS.conform(
        one_to_one(pairs, order=["_start_at", "_gap", "out_txn_id", "in_txn_id"]).with_columns(
            link_type=link_type_value("round_trip"),
            link_id=link_id_expr("round_trip"),
            evidence_txn_ids=pl.concat_list("out_txn_id", "in_txn_id"),
        )
    )


def transfer_legs(transactions: pl.LazyFrame, *, max_days: int = 3) -> pl.LazyFrame:
    """Both legs of a transfer inside the batch: A's outflow to account B matched with B's inflow from A."""
    outs = transactions.filter((pl.col("amount") < 0) & pl.col("counterparty_account").is_not_null()).select(
        "account_id",
        "currency",
        _to=pl.col("counterparty_account"),
        out_txn_id="txn_id",
        out_at="booked_at",
        amount_out=pl.col("amount").abs(),
        counterparty="counterparty_account",
    )
    ins = transactions.filter((pl.col("amount") > 0) & pl.col("counterparty_account").is_not_null()).select(
        _to=pl.col("account_id"),
        account_id=pl.col("counterparty_account"),
        currency="currency",
        in_txn_id="txn_id",
        in_at="booked_at",
        amount_in="amount",
    )
    pairs = (
        outs.join(ins, on=["account_id", "_to", "currency"], how="inner")
        .filter(
            (pl.col("amount_in") == pl.col("amount_out"))
            & ((pl.col("in_at") - pl.col("out_at")).abs() <= pl.duration(days=max_days))
        )
        .with_columns(
            days_apart=(pl.col("in_at").dt.date() - pl.col("out_at").dt.date()).dt.total_days().abs(),
            _gap=(pl.col("in_at") - pl.col("out_at")).abs(),
        )
    )
    return TRANSFER_LINKS.conform(
        one_to_one(pairs, order=["_gap", "out_txn_id", "in_txn_id"]).with_columns(
            link_type=link_type_value("transfer_legs"),
            link_id=link_id_expr("transfer_legs"),
            evidence_txn_ids=pl.concat_list("out_txn_id", "in_txn_id"),
        )
    )


# --- RELATED_TRANSFER_HEAVY ---
RELATED_TRANSFER_HEAVY = Rule(
    code="RELATED_TRANSFER_HEAVY",
    name_zh="关联方频繁划转",
    name_en="Heavy transfers to related parties",
    section="related_transfers",
    config_model=RelatedTransferRules,
    remediation_zh="停止通过本人其他账户或关联方账户频繁划转资金。",
    remediation_en="Stop routing money through the holder's other accounts or related parties.",
    default_weight=10,
    doc="docs/rules_core.md",
    behaviour="related_transfer_heavy",
)


def related_transfer_flags(
    account_months: pl.LazyFrame, transactions: pl.LazyFrame, *, rules: RelatedTransferRules
) -> pl.LazyFrame:
    """RELATED_TRANSFER_HEAVY: a main-currency month whose outflow goes mostly to own accounts / related
    parties, in enough transfers; evidence: those transfers."""
    flagged = account_months.filter(
        pl.col("is_main_currency")
        & (pl.col("related_out_share") >= rules.share_threshold)
        & (pl.col("related_out_count") >= rules.min_count)
    ).with_columns(
        **month_period(),
        metric_value=pl.col("related_out_share"),
        threshold=pl.lit(rules.share_threshold),
        limit_name=pl.lit("share_of_outflow"),
        severity=high_when(pl.col("related_out_share") >= rules.high_share),
        reason_zh=pl.format(
            "本月{}笔转给本人其他账户或关联方，共{}，占支出{}，超过阈值{}。",
            pl.col("related_out_count"),
            fmt_num(pl.col("related_out")),
            fmt_pct(pl.col("related_out_share")),
            pl.lit(f"{rules.share_threshold:.0%}"),
        ),
        reason_en=pl.format(
            "{} transfers to own accounts or related parties this month, {} in total, {} of outflow (threshold {}).",
            pl.col("related_out_count"),
            fmt_num(pl.col("related_out")),
            fmt_pct(pl.col("related_out_share")),
            pl.lit(f"{rules.share_threshold:.0%}"),
        ),
    )
    related_out = txn_class_is(*RELATED_OUT_CLASSES)
    return finish_flags(evidence_in_months(flagged, transactions, related_out), RELATED_TRANSFER_HEAVY, rules)


# --- ROUND_TRIP ---
ROUND_TRIP = Rule(
    code="ROUND_TRIP",
    name_zh="刷流水",
    name_en="Round trips (inflated turnover)",
    section="round_trip",
    config_model=RoundTripRules,
    remediation_zh="停止与同一对手方资金一进一出、虚增流水（刷流水）。",
    remediation_en="Stop moving money out and back (or in and back out) to inflate turnover (round trips).",
    default_weight=20,
    doc="docs/rules_core.md",
    behaviour="round_trip",
)


def round_trip_flags(links: pl.LazyFrame, transactions: pl.LazyFrame, *, rules: RoundTripRules) -> pl.LazyFrame:
    """ROUND_TRIP (刷流水): a month (of the first leg, out or in) with at least `min_count_per_month` round trips
    (`round_trips` links); evidence: both legs of each."""
    days = transactions.select("txn_id", "currency", "booked_on")
    return finish_flags(
        links.filter(link_type_is("round_trip"))
        .join(days.rename({"txn_id": "out_txn_id", "booked_on": "_out_on"}), on="out_txn_id")
        .join(days.select(in_txn_id="txn_id", _in_on="booked_on"), on="in_txn_id")
        .with_columns(month_on=pl.min_horizontal("_out_on", "_in_on").dt.month_start())
        .group_by("account_id", "currency", "month_on")
        .agg(
            count=pl.len(),
            total=pl.col("amount_out").sum(),
            evidence_txn_ids=pl.concat_list("out_txn_id", "in_txn_id").list.explode(
                keep_nulls=False, empty_as_null=False
            ),
        )
        .filter(pl.col("count") >= rules.min_count_per_month)
        .with_columns(
            **month_period(),
            metric_value=pl.col("count").cast(pl.Float64),
            threshold=pl.lit(float(rules.min_count_per_month)),
            limit_name=pl.lit("round_trips_per_month"),
            severity=high_when(pl.col("count") >= rules.high_count),
            reason_zh=pl.format(
                "本月{}笔资金在{}天内与同一对手方以相近金额一进一出（转出后转回或转入后转出，共{}），疑似刷流水。",
                pl.col("count"),
                pl.lit(str(rules.max_days)),
                fmt_num(pl.col("total")),
            ),
            reason_en=pl.format(
                "{} times this month money went out to a party and came back, or came in and went back, within "
                "{} days at a similar amount ({} in total): likely inflated turnover.",
                pl.col("count"),
                pl.lit(str(rules.max_days)),
                fmt_num(pl.col("total")),
            ),
        ),
        ROUND_TRIP,
        rules,
    )
