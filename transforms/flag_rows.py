"""Flag rows: what every rule declares (`Rule`) and the `contracts.RISK_FLAGS` rows it produces.

A rule turns a feature into flag *candidates*, one row per key (`FLAG_KEY`: account, currency, period), with
the metric it judged, the threshold it crossed, which limit fired, severity, a reason in Chinese and English
and the ids of the transactions that prove it. `finish_flags` adds what every flag has — id, code, rule
version, remediation — and drops a candidate without evidence (evidence or it did not happen). A rule judged
every month on a trailing window is `episodic`: its run of consecutive firing months is one flag, one *episode*
(`episodes`), not one flag per month of the same ongoing condition.

The rules themselves live in the modules of their business concept (`income`, `outflows`, `transfers`,
`credit`, `integrity`, `commingling`, `cycles`), each beside its `Rule` record; `transforms.registry` lists
them. What is here is what they share: the record, the finishing step, the evidence within a period, the
severities and the number formats of the reasons.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from liushui.config import RuleSection
from liushui.contracts import RISK_FLAGS
from liushui.vocabularies import SEVERITIES, Severity
from transforms.stable_ids import stable_id


@dataclass(frozen=True)
class Rule:
    """One rule (one flag code), declared once, beside its function.

    Listed in `transforms.registry.RULES`; derived from that list: the flag-code vocabulary
    (`registry.FLAG_CODES`, the risk_flags suite's value set), the behaviour -> code mapping of
    `synthetic.evaluate`; checked against it by tests/test_registry.py: the sections and weights of
    config/rules.yaml, the sections of `liushui.config.Rules`, the README's rule table and the docs pages.
    """

    code: str
    """`risk_flags.flag_code` (UPPER_SNAKE)."""
    name_zh: str
    """Short Chinese name, as analysts say it (多头借贷, 以贷养贷, 刷流水)."""
    name_en: str
    section: str
    """Its section of config/rules.yaml: a field of `liushui.config.Rules` (several rules may share one)."""
    config_model: type[RuleSection]
    """The section's settings model, in the ground (`liushui.config`; why there: its module docstring)."""
    remediation_zh: str
    """What would have to change. `{rules.<setting>}` is filled from the section's settings (`str.format`, so a
    literal brace is written twice)."""
    remediation_en: str
    default_weight: float
    """Score points of an active flag (`account_risk.weights` of the shipped config/rules.yaml)."""
    doc: str
    """The docs page that explains the rule and the reasoning behind its defaults (it has a `## CODE` heading)."""
    behaviour: str | None = None
    """The synthetic generator's behaviour label this rule detects (`synthetic.evaluate` scores recall and
    precision per label); None when the generator plants no such behaviour."""
    episodic: bool = False
    """Judged every month on a trailing window that reaches back over earlier months (a volatility, a ratio, a
    count of lenders over months): consecutive firing months are one ongoing condition, published as one flag per
    episode (`episodes`). A rule whose month stands on its own (the month's events, shares of the month's money)
    is not: each of its months is a new fact."""

    def remediation(self, settings: RuleSection) -> tuple[str, str]:
        """The remediation (zh, en) with the settings filled in."""
        return self.remediation_zh.format(rules=settings), self.remediation_en.format(rules=settings)


FLAG_KEY: tuple[str, ...] = ("account_id", "currency", "period_start_on", "period_end_on")
"""What every rule is judged on: one account, in one currency, over one period. `flag_id` hashes the
rule code and these columns (an episodic rule's: account, currency and the episode's first month), so two flags of
one rule can share an id only if they share this key."""


def flag_id_expr(code: str, key: tuple[str, ...] = FLAG_KEY) -> pl.Expr:
    """`flag_id`: the first 32 hex digits of SHA-256 over `code|<key columns as text>`. A null key column
    gives a null id (which the contract's not-null expectation blocks), never a shared one."""
    return stable_id(pl.lit(code), *(pl.col(c).cast(pl.String) for c in key))


EPISODE_START = "episode_start_month_on"
"""The column `episodes` adds: the first month of the episode, which its `flag_id` hashes instead of the period."""


def episodes(monthly: pl.LazyFrame, *, extra_key: tuple[str, ...] = ()) -> pl.LazyFrame:
    """One row per episode of monthly flag candidates: a run of consecutive calendar months (the month of each
    candidate's `period_end_on`) in which the rule fired for one account and currency (and `extra_key`). A month
    without a candidate — not firing, not judged, not covered — ends the episode.

    The episode's period runs from its first month's `period_start_on` to its last month's `period_end_on`; its
    metric_value, threshold, limit_name (and any other column) are those of the *peak* month, the highest metric
    (the earliest of equal peaks, so that an episode growing by a month no worse keeps its peak); severity the worst
    of its months; evidence the union of theirs. An episode of more than one month says so in its reasons (the peak
    month's, followed by "；连续 N 个月（first 至 last），峰值月 peak" / "; N consecutive months (first to last), peak
    peak"); a one-month episode is the month's candidate unchanged. `EPISODE_START` is the first month."""
    group = ["account_id", "currency", *extra_key]
    names = monthly.collect_schema().names()
    month_index = pl.col("period_end_on").dt.year().cast(pl.Int64) * 12 + pl.col("period_end_on").dt.month()
    severity_rank = pl.col("severity").replace_strict(list(SEVERITIES), list(range(len(SEVERITIES))))
    episode = [*group, "_episode"]
    peak_month = pl.col("_month").filter(pl.col("metric_value") == pl.col("metric_value").max()).min()
    merged_otherwise = {*group, "period_start_on", "period_end_on", "severity", "evidence_txn_ids"}
    peak_only = [c for c in names if c not in merged_otherwise]
    month_text = pl.col("_month_on").dt.strftime("%Y-%m")
    first, last = month_text.min(), month_text.max()
    merged = (
        monthly.with_columns(_month=month_index, _month_on=pl.col("period_end_on").dt.month_start())
        .with_columns(
            _episode=(pl.col("_month").diff().fill_null(0) != 1).cum_sum().over(group, order_by="_month"),
        )
        .with_columns(_is_peak=pl.col("_month") == peak_month.over(episode))
        .group_by(episode)
        .agg(
            pl.col("period_start_on").sort_by("_month").first(),
            pl.col("period_end_on").sort_by("_month").last(),
            pl.col("severity").sort_by(severity_rank).last(),
            pl.col("evidence_txn_ids").explode(keep_nulls=False).unique(),
            *(pl.col(c).filter(pl.col("_is_peak")).first() for c in peak_only),
            _months=pl.len(),
            _first=first,
            _last=last,
            _peak=month_text.filter(pl.col("_is_peak")).first(),
            **{EPISODE_START: pl.col("_month_on").min()},
        )
    )
    several = pl.col("_months") > 1
    return merged.with_columns(
        reason_zh=pl.when(several)
        .then(
            pl.format(
                "{}；连续 {} 个月（{} 至 {}），峰值月 {}。",
                pl.col("reason_zh").str.strip_suffix("。"),
                "_months",
                "_first",
                "_last",
                "_peak",
            )
        )
        .otherwise(pl.col("reason_zh")),
        reason_en=pl.when(several)
        .then(
            pl.format(
                "{}; {} consecutive months ({} to {}), peak {}.",
                pl.col("reason_en").str.strip_suffix("."),
                "_months",
                "_first",
                "_last",
                "_peak",
            )
        )
        .otherwise(pl.col("reason_en")),
    ).drop("_episode", "_months", "_first", "_last", "_peak")


def finish_flags(
    candidates: pl.LazyFrame, rule: Rule, settings: RuleSection, *, extra_key: tuple[str, ...] = ()
) -> pl.LazyFrame:
    """Common columns of every rule's flags: id, code, version (the section's), remediation (the rule's,
    with the settings filled in); candidates without evidence are dropped. `candidates` carries the key
    (`FLAG_KEY`: account_id, currency, period_start_on, period_end_on) and metric_value, threshold,
    limit_name, severity, reason_zh, reason_en, evidence_txn_ids.

    An `episodic` rule's candidates (one per firing month) become one flag per episode (`episodes`), after the
    months without evidence are dropped (a month that publishes nothing did not fire). Its `flag_id` hashes the
    code, account, currency (and `extra_key`) and the episode's first month — not its period, which grows when a
    later night adds a firing month, while analysts' decisions refer to the id. Not the period's start either:
    two episodes of one account can both have their trailing window clipped to the statement's first month.

    The key is required, not defaulted: a rule whose candidates lack a key column fails here, when the
    query is built. A rule that can fire more than once for one account, currency and period names what
    tells those flags apart in `extra_key` (hashed into `flag_id`). Each rule builds its candidates one
    row per key (a group_by on it, or one row per `account_months` row), so the ids are unique by
    construction; `duplicate_flag_ids` finds any row breaking that, and the blocking primary-key
    expectation on `flag_id` stops a publish that would carry one."""
    if not isinstance(settings, rule.config_model):
        raise TypeError(
            f"{rule.code}: given {type(settings).__name__} settings; the rule reads section "
            f"{rule.section!r} ({rule.config_model.__name__})"
        )
    key = (*FLAG_KEY, *extra_key)
    missing = [c for c in key if c not in candidates.collect_schema().names()]
    if missing:
        raise ValueError(
            f"{rule.code}: flag candidates lack the key column(s) {missing}; every flag is judged on {key}"
        )
    remediation_zh, remediation_en = rule.remediation(settings)
    flags = candidates.filter(pl.col("evidence_txn_ids").list.len() > 0)
    if rule.episodic:
        flags = episodes(flags, extra_key=extra_key)
        key = ("account_id", "currency", EPISODE_START, *extra_key)
    return RISK_FLAGS.conform(
        flags.with_columns(
            flag_code=pl.lit(rule.code),
            rule_version=pl.lit(settings.version),
            remediation_zh=pl.lit(remediation_zh),
            remediation_en=pl.lit(remediation_en),
            evidence_txn_ids=pl.col("evidence_txn_ids").list.sort(),
            flag_id=flag_id_expr(rule.code, key),
        )
    )


def duplicate_flag_ids(flags: pl.LazyFrame) -> pl.LazyFrame:
    """Flags (`contracts.RISK_FLAGS` rows) sharing a `flag_id`: empty when every rule kept its key unique."""
    return flags.filter(pl.len().over("flag_id") > 1).sort("flag_id", "flag_code", *FLAG_KEY)


def evidence_in_months(flagged: pl.LazyFrame, transactions: pl.LazyFrame, condition: pl.Expr) -> pl.LazyFrame:
    """Collect, per flagged account period, the ids of transactions meeting `condition` inside it."""
    rows = transactions.filter(condition).select("account_id", "currency", "txn_id", "booked_on")
    evidence = (
        flagged.select("account_id", "currency", "period_start_on", "period_end_on")
        .join(rows, on=["account_id", "currency"])
        .filter(pl.col("booked_on").is_between(pl.col("period_start_on"), pl.col("period_end_on")))
        .group_by("account_id", "currency", "period_start_on", "period_end_on")
        .agg(evidence_txn_ids=pl.col("txn_id"))
    )
    return flagged.join(evidence, on=["account_id", "currency", "period_start_on", "period_end_on"], how="left")


def month_period() -> dict[str, pl.Expr]:
    """The period of a flag judged on one calendar month (`month_on`): its first to its last day."""
    return {"period_start_on": pl.col("month_on"), "period_end_on": pl.col("month_on").dt.month_end()}


def severity(level: Severity) -> pl.Expr:
    """A severity of the published vocabulary (checked by mypy), as a literal."""
    return pl.lit(level)


def high_when(is_high: pl.Expr) -> pl.Expr:
    """Severity `high` where `is_high` holds, else `medium`: the rules that grade their flags."""
    return pl.when(is_high).then(severity("high")).otherwise(severity("medium"))


def fmt_pct(expr: pl.Expr) -> pl.Expr:
    """Percent text with one decimal, e.g. 62.5%."""
    return (expr * 100).round(1).cast(pl.String) + pl.lit("%")


def fmt_num(expr: pl.Expr, decimals: int = 2) -> pl.Expr:
    """Fixed two-decimal text (money and ratios alike), e.g. 50000.00."""
    return expr.cast(pl.Float64).round(decimals).cast(pl.Decimal(38, decimals)).cast(pl.String)
