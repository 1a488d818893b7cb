"""Income streams: recurring sources of clean income with their cadence, and the INCOME_STOPPED rule.

`income_streams`: one row per account, currency and source (`contracts.INCOME_STREAMS`). A source is the payer of
clean-income inflows (money that came back, passed through or was borrowed is already out of clean income): its
name as compared, with company suffixes and bracketed parts dropped (`上海某某科技有限公司`, `上海某某科技(上海)有限
公司` are one payer) and a name that only says "payroll" (代发工资) ignored, else the batch account it resolved to,
else its number; a salary row naming no payer at all is the account's `工资` source. A source paying at least
`min_payments` times in at least `min_months` distinct months is a stream.

Cadence is the median gap between payment days (`STREAM_CADENCE_MEANINGS`). A monthly stream's payments belong to
the *pay month* of their typical day: a salary due on the 1st and paid early on 31 August (a Saturday 1 September)
is September's. Its periods are pay months (a bonus paid beside the salary adds to the month); other streams' periods
are payments. The current pay month is partial: shown, never judged — typical, last and recent amounts come from
the earlier periods. Status is judged at `judged_on`: the as-of date, or the end of the account's statement when
earlier (a month the statement does not cover is unknown, not a month without pay). A payment is missed once its
expected date + `grace_days` has passed.

`income_stopped_flags`: one INCOME_STOPPED flag per main-currency stream (monthly, biweekly or weekly) that is
stopped or fallen and carried at least `min_share` of the account's clean income over the trailing full months.
Rule and defaults: docs/rules_core.md.
"""

from __future__ import annotations

from datetime import date

import polars as pl

from liushui.config import IncomeStreamRules
from liushui.contracts import INCOME_STREAMS, money_cents, money_mean
from liushui.vocabularies import StreamCadence, StreamStatus
from transforms.classify import txn_class_is
from transforms.counterparty import normalised_name, normalised_number
from transforms.flag_rows import Rule, finish_flags, fmt_num, fmt_pct, high_when

STREAM_KEY = ["account_id", "currency", "source_key"]

CADENCE_GAP_DAYS: dict[StreamCadence, tuple[float, float]] = {
    "weekly": (5, 9),
    "biweekly": (12, 17),
    "monthly": (26, 35),
}
"""Median gap (days, inclusive) of each regular cadence; any other gap is irregular. Wide enough for pay days that
move over weekends and holidays, apart enough that no gap is two cadences."""
CADENCE_DAYS: dict[StreamCadence, int] = {"weekly": 7, "biweekly": 14}
"""The interval of the cadences that are not calendar months."""
CADENCE_ZH: dict[StreamCadence, str] = {
    "monthly": "按月",
    "biweekly": "每两周",
    "weekly": "每周",
    "irregular": "不定期",
}

BRACKETED = r"[（(【\[][^）)】\]]*[）)】\]]"
"""`(中国)`, `（上海）`: a region or a note in brackets, dropped before names are compared."""
COMPANY_SUFFIX = (
    r"(股份有限公司|有限责任公司|有限公司|责任公司|集团|分公司|总公司|公司|股份|"
    r"corporation|company|limited|corp|ltd|inc|llc|co)+$"
)
"""Legal-form suffixes of a normalised name (lower case, no punctuation), dropped so that `某某科技有限公司` and
`某某科技` are one payer."""
GENERIC_PAYER = r"^(批量|代发|代付|工资|薪资|薪酬|奖金|专户|payroll|salary|wages)*$"
"""A normalised payer name that only says "payroll": not a name (the number or the salary source decides)."""
SALARY_SOURCE = "工资"
"""`source_key` of salary rows naming no payer at all."""


def source_key() -> pl.Expr:
    """Who paid: the payer's name as compared (brackets and company suffixes dropped, a bare payroll word is no
    name), else the resolved batch account, else the payer's number, else `工资` for a salary row."""
    name = normalised_name(pl.col("counterparty_name").str.replace_all(BRACKETED, "")).str.replace(COMPANY_SUFFIX, "")
    return pl.coalesce(
        pl.when(~name.str.contains(GENERIC_PAYER)).then(name),
        pl.col("counterparty_account_id"),
        pl.when(normalised_number(pl.col("counterparty_account")) != "").then(
            normalised_number(pl.col("counterparty_account"))
        ),
        pl.when(txn_class_is("salary")).then(pl.lit(SALARY_SOURCE)),
    )


def _lower_median(expr: pl.Expr) -> pl.Expr:
    """The lower median: a value of the group itself, so a median of money stays exact."""
    return expr.sort().get((expr.len() - 1) // 2)


def _month_index(day: pl.Expr) -> pl.Expr:
    return day.dt.year().cast(pl.Int64) * 12 + day.dt.month().cast(pl.Int64) - 1


def _cadence(gap: pl.Expr) -> pl.Expr:
    out: pl.Expr = pl.lit("irregular")
    for cadence, (low, high) in CADENCE_GAP_DAYS.items():
        out = pl.when(gap.is_between(low, high)).then(pl.lit(cadence)).otherwise(out)
    return out


def _is(cadence: StreamCadence) -> pl.Expr:
    return pl.col("cadence") == cadence


def _status(status: StreamStatus) -> pl.Expr:
    return pl.lit(status)


def _pay_month(day: pl.Expr) -> pl.Expr:
    """A monthly stream's pay month of a date: the month whose typical day is nearest (within 15 days)."""
    return (day + pl.duration(days=15 - pl.col("typical_day_of_month"))).dt.month_start()


def _on_typical_day(month_on: pl.Expr) -> pl.Expr:
    """The typical day of the month starting `month_on` (its last day when the month is shorter)."""
    return pl.min_horizontal(month_on + pl.duration(days=pl.col("typical_day_of_month") - 1), month_on.dt.month_end())


def in_order(column: str) -> pl.Expr:
    """A stream's values of `column` in payment order (date, then id), whatever order the rows came in."""
    return pl.col(column).sort_by("booked_on", "txn_id")


def income_payments(transactions: pl.LazyFrame) -> pl.LazyFrame:
    """One row per clean-income inflow with a source: `account_id, currency, source_key, txn_id, booked_on,
    amount, counterparty_name, counterparty_account_id, is_salary`."""
    return (
        transactions.filter(pl.col("is_clean_income") & (pl.col("amount") > 0))
        .with_columns(source_key=source_key(), is_salary=txn_class_is("salary"))
        .filter(pl.col("source_key").is_not_null())
        .select(
            *STREAM_KEY,
            "txn_id",
            "booked_on",
            "amount",
            "counterparty_name",
            "counterparty_account_id",
            "is_salary",
        )
    )


def income_streams(
    transactions: pl.LazyFrame, account_months: pl.LazyFrame, *, rules: IncomeStreamRules, as_of: date
) -> pl.LazyFrame:
    """The published `income_streams` rows of the accounts in `transactions` (the judged rows: booked by
    `as_of`), with `account_months` (`transforms.months.account_months`) for the clean income of full months."""
    payments = income_payments(transactions)
    judged_on = transactions.group_by("account_id").agg(
        judged_on=pl.min_horizontal(pl.col("booked_on").max(), pl.lit(as_of))
    )
    gaps = (
        payments.select(*STREAM_KEY, "booked_on")
        .unique()
        .sort(*STREAM_KEY, "booked_on")
        .with_columns(_gap=pl.col("booked_on").diff().dt.total_days().over(STREAM_KEY))
        .group_by(STREAM_KEY)
        .agg(
            median_gap_days=pl.col("_gap").median().cast(pl.Float64),
            _day=_lower_median(pl.col("booked_on").dt.day().cast(pl.Int64)),
        )
    )
    streams = (
        payments.group_by(STREAM_KEY)
        .agg(
            payments_count=pl.len().cast(pl.Int64),
            _months=pl.col("booked_on").dt.month_start().n_unique(),
            first_seen_on=pl.col("booked_on").min(),
            last_seen_on=pl.col("booked_on").max(),
            source_name=in_order("counterparty_name").drop_nulls().last(),
            counterparty_account_id=in_order("counterparty_account_id").drop_nulls().last(),
            _salary_share=pl.col("is_salary").mean(),
            payment_txn_ids=in_order("txn_id"),
        )
        .filter((pl.col("payments_count") >= rules.min_payments) & (pl.col("_months") >= rules.min_months))
        .join(gaps, on=STREAM_KEY)
        .join(judged_on, on="account_id")
        .with_columns(cadence=_cadence(pl.col("median_gap_days")))
        .with_columns(
            typical_day_of_month=pl.when(_is("monthly")).then(pl.col("_day")),
            kind=pl.when(pl.col("_salary_share") > 0.5).then(pl.lit("salary")),
            # weekly / biweekly: their interval; irregular: the median gap (an expectation, never judged as missed)
            _step_days=pl.coalesce(
                *(pl.when(_is(c)).then(pl.lit(d)) for c, d in CADENCE_DAYS.items()),
                pl.col("median_gap_days").round().cast(pl.Int64).clip(lower_bound=1),
            ),
        )
        .with_columns(_current=pl.when(_is("monthly")).then(_pay_month(pl.col("judged_on"))))
    )
    periods = _periods(payments, streams)
    return INCOME_STREAMS.conform(
        streams.join(_amounts(periods, rules=rules), on=STREAM_KEY, how="left")
        .join(_regularity(periods, streams), on=STREAM_KEY, how="left")
        .join(_trailing(payments, streams, account_months, rules=rules), on=STREAM_KEY, how="left")
        .with_columns(pl.col("is_replaced").fill_null(False))
        .pipe(_expected, rules=rules)
        .sort(STREAM_KEY)
    )


def _periods(payments: pl.LazyFrame, streams: pl.LazyFrame) -> pl.LazyFrame:
    """One row per stream period: `period_on` (a monthly stream's pay month, else the payment day; several
    payments of one day are one period), `amount` (its payments summed), `is_judged` (before the current pay month
    of a monthly stream; every payment of another)."""
    shape = streams.select(*STREAM_KEY, "cadence", "typical_day_of_month", "_current", "first_seen_on", "_step_days")
    return (
        payments.join(shape, on=STREAM_KEY)
        .with_columns(
            period_on=pl.when(_is("monthly")).then(_pay_month(pl.col("booked_on"))).otherwise(pl.col("booked_on"))
        )
        .with_columns(is_judged=pl.col("_current").is_null() | (pl.col("period_on") < pl.col("_current")))
        .group_by(*STREAM_KEY, "period_on")
        .agg(
            amount=pl.col("amount").sum(),
            cadence=pl.col("cadence").first(),
            first_seen_on=pl.col("first_seen_on").first(),
            typical_day_of_month=pl.col("typical_day_of_month").first(),
            _step_days=pl.col("_step_days").first(),
            is_judged=pl.col("is_judged").first(),
        )
    )


def _amounts(periods: pl.LazyFrame, *, rules: IncomeStreamRules) -> pl.LazyFrame:
    """Per stream: typical (lower median), last and recent (mean of the last `fall_periods`) judged period
    amounts, exact, and the amounts' coefficient of variation."""
    judged = periods.filter(pl.col("is_judged"))
    by_period = pl.col("amount").sort_by("period_on")
    # population CV = sqrt(n * sum(x^2) - sum(x)^2) / sum(x), the sums exact (cents as 38-digit decimals): a float
    # standard deviation depends on the order rows are summed in, and an incremental night must equal a full build
    cents = money_cents(pl.col("amount")).cast(pl.Decimal(38, 0))
    total = cents.sum()
    spread = (pl.len().cast(pl.Decimal(38, 0)) * (cents * cents).sum() - total * total).cast(pl.Float64)
    return judged.group_by(STREAM_KEY).agg(
        typical_amount=_lower_median(pl.col("amount")),
        last_amount=by_period.last(),
        recent_amount=money_mean(by_period.tail(rules.fall_periods)),
        amount_cv=pl.when(total > 0).then(spread.clip(lower_bound=0).sqrt() / total.cast(pl.Float64)),
    )


def _regularity(periods: pl.LazyFrame, streams: pl.LazyFrame) -> pl.LazyFrame:
    """Per stream: expected periods from the first payment's to the judged date's (the current one only when
    paid) and those paid: pay months of a monthly stream, the cadence's intervals from the first payment of a weekly
    or biweekly one."""
    bounds = streams.select(*STREAM_KEY, "judged_on", "_current")
    first_month = _month_index(_pay_month(pl.col("first_seen_on")))
    intervals = (pl.col("period_on") - pl.col("first_seen_on")).dt.total_days() // pl.col("_step_days")
    current = (pl.col("judged_on") - pl.col("first_seen_on")).dt.total_days() // pl.col("_step_days")
    indexed = periods.join(bounds, on=STREAM_KEY).with_columns(
        _index=pl.when(_is("monthly")).then(_month_index(pl.col("period_on")) - first_month).otherwise(intervals),
        _current_index=pl.when(_is("monthly")).then(_month_index(pl.col("_current")) - first_month).otherwise(current),
        _regular=~_is("irregular"),
    )
    regular = pl.col("_regular").first()
    current_index = pl.col("_current_index").first()
    return (
        indexed.group_by(STREAM_KEY)
        .agg(
            paid_periods=pl.when(regular).then(pl.col("_index").n_unique()).otherwise(0).cast(pl.Int64),
            expected_periods=pl.when(regular)
            .then(current_index + (pl.col("_index") >= current_index).any().cast(pl.Int64))
            .otherwise(0)
            .cast(pl.Int64),
        )
        .with_columns(
            regularity_share=pl.when(pl.col("expected_periods") > 0).then(
                pl.col("paid_periods") / pl.col("expected_periods")
            )
        )
    )


def _trailing(
    payments: pl.LazyFrame, streams: pl.LazyFrame, account_months: pl.LazyFrame, *, rules: IncomeStreamRules
) -> pl.LazyFrame:
    """Per stream, over the full months of the `share_window_months` before the judged month: `trailing_share`
    (its payments / the account's clean income in the currency) and `is_replaced` (the clean income of the full months
    after its last payment's month is at least `fall_share` of what the months up to it averaged: another source
    took its place, e.g. a new employer)."""
    window = streams.select(*STREAM_KEY, "judged_on", "last_seen_on").with_columns(
        _end=pl.col("judged_on").dt.month_start(),
        _start=pl.col("judged_on").dt.month_start().dt.offset_by(f"-{rules.share_window_months}mo"),
    )
    full = account_months.filter(pl.col("is_full_month")).select("account_id", "currency", "month_on", "clean_income")
    months = window.join(full, on=["account_id", "currency"]).filter(
        (pl.col("month_on") >= pl.col("_start")) & (pl.col("month_on") < pl.col("_end"))
    )
    paid = payments.group_by(*STREAM_KEY, month_on=pl.col("booked_on").dt.month_start()).agg(
        _paid=pl.col("amount").sum()
    )
    after = pl.col("month_on") > pl.col("last_seen_on").dt.month_start()
    # exact cents: the sums do not depend on the order of the rows
    income = money_cents(pl.col("clean_income"))
    return (
        months.join(paid, on=[*STREAM_KEY, "month_on"], how="left")
        .group_by(STREAM_KEY)
        .agg(
            _paid=money_cents(pl.col("_paid")).sum(),
            _income=income.sum(),
            _after=income.filter(after).mean(),
            _before=income.filter(~after).mean(),
        )
        .select(
            *STREAM_KEY,
            trailing_share=pl.when(pl.col("_income") > 0).then(pl.col("_paid") / pl.col("_income")),
            is_replaced=(pl.col("_after") >= rules.fall_share * pl.col("_before")).fill_null(False),
        )
    )


def _expected(streams: pl.LazyFrame, *, rules: IncomeStreamRules) -> pl.LazyFrame:
    """`expected_next_on`, `missed_payments` (expected dates after the last payment with their grace passed by the
    judged date; never for an irregular stream) and `status`."""
    last_pay_month = _pay_month(pl.col("last_seen_on"))
    cutoff = pl.col("judged_on") - pl.duration(days=rules.grace_days)
    cutoff_month = cutoff.dt.month_start()
    monthly_missed = (
        _month_index(cutoff_month)
        - _month_index(last_pay_month)
        - 1
        + (_on_typical_day(cutoff_month) < cutoff).cast(pl.Int64)
    )
    stepped_missed = ((cutoff - pl.col("last_seen_on")).dt.total_days() + pl.col("_step_days") - 1) // pl.col(
        "_step_days"
    ) - 1
    missed = pl.col("missed_payments")
    fallen = _fall_ratio(rules) < rules.fall_share
    return streams.with_columns(
        expected_next_on=pl.when(_is("monthly"))
        .then(_on_typical_day(last_pay_month.dt.offset_by("1mo")))
        .otherwise(pl.col("last_seen_on") + pl.duration(days=pl.col("_step_days"))),
        missed_payments=pl.when(_is("irregular"))
        .then(0)
        .when(_is("monthly"))
        .then(monthly_missed)
        .otherwise(stepped_missed)
        .clip(lower_bound=0)
        .cast(pl.Int64),
    ).with_columns(
        status=pl.when(missed >= rules.missed_for_stopped)
        .then(_status("stopped"))
        .when(fallen)
        .then(_status("fallen"))
        .when(missed >= 1)
        .then(_status("late"))
        .otherwise(_status("active"))
    )


def _fall_ratio(rules: IncomeStreamRules) -> pl.Expr:
    """What the stream pays now against its typical amount: the lower of the last period and the mean of the recent
    ones — for a stream of steady amounts (`amount_cv` at most `steady_amount_cv`); a stream paying 500 one month
    and 30,000 the next has no level a single payment can fall from, and is judged on the recent mean only."""
    typical = pl.col("typical_amount").cast(pl.Float64)
    recent = pl.col("recent_amount").cast(pl.Float64)
    last = pl.col("last_amount").cast(pl.Float64)
    steady = pl.col("amount_cv").fill_null(0) <= rules.steady_amount_cv
    return pl.when(steady).then(pl.min_horizontal(last, recent)).otherwise(recent) / typical


INCOME_STOPPED = Rule(
    code="INCOME_STOPPED",
    name_zh="收入中断",
    name_en="Income stopped or fallen",
    section="income_streams",
    config_model=IncomeStreamRules,
    remediation_zh="恢复主要收入：提供新的劳动合同或收入证明，并连续数月按时入账不低于原金额的{rules.fall_share:.0%}。",
    remediation_en="Restore the main income: a new employment contract or proof of income, then several months paid on "
    "time at no less than {rules.fall_share:.0%} of the former amount.",
    default_weight=15,
    doc="docs/rules_core.md",
    behaviour="income_stopped",
)


def income_stopped_flags(
    streams: pl.LazyFrame,
    account_months: pl.LazyFrame,
    transactions: pl.LazyFrame,
    *,
    rules: IncomeStreamRules,
) -> pl.LazyFrame:
    """INCOME_STOPPED: a main-currency stream of a regular cadence, stopped or fallen as of its judged date, that
    carried at least `min_share` of the account's clean income over the trailing full months — a stopped stream
    whose place another source took (the months since pay as before) is a change of payer, not lost income. One
    flag per stream (`source_key` tells two apart); period: its evidence's first payment to the first missed date
    (stopped) or the last payment (fallen); evidence: its last `evidence_payments` payments."""
    main = account_months.filter(pl.col("is_main_currency")).select("account_id", "currency").unique()
    stopped = pl.col("status") == "stopped"
    evidence = pl.col("payment_txn_ids").list.tail(rules.evidence_payments)
    judged = (
        streams.join(main, on=["account_id", "currency"], how="semi")
        .filter(
            pl.col("status").is_in(["stopped", "fallen"])
            & (pl.col("cadence") != "irregular")
            & (pl.col("trailing_share") >= rules.min_share)
            & ~(stopped & pl.col("is_replaced"))
        )
        .with_columns(evidence_txn_ids=evidence)
    )
    first_evidence_on = (
        judged.select(*STREAM_KEY, txn_id=pl.col("evidence_txn_ids"))
        .explode("txn_id")
        .join(transactions.select("txn_id", "booked_on"), on="txn_id")
        .group_by(STREAM_KEY)
        .agg(period_start_on=pl.col("booked_on").min())
    )
    source = pl.coalesce(pl.col("source_name"), pl.col("source_key"))
    cadence_zh = pl.col("cadence").replace_strict(CADENCE_ZH, return_dtype=pl.String)
    ratio = _fall_ratio(rules)
    days = [pl.col(c).cast(pl.String) for c in ("last_seen_on", "expected_next_on")]
    share = fmt_pct(pl.col("trailing_share"))
    window = pl.lit(str(rules.share_window_months))
    flagged = judged.join(first_evidence_on, on=STREAM_KEY).with_columns(
        period_end_on=pl.when(stopped).then(pl.col("expected_next_on")).otherwise(pl.col("last_seen_on")),
        metric_value=pl.when(stopped).then(pl.col("missed_payments").cast(pl.Float64)).otherwise(ratio),
        threshold=pl.when(stopped).then(pl.lit(float(rules.missed_for_stopped))).otherwise(pl.lit(rules.fall_share)),
        limit_name=pl.when(stopped).then(pl.lit("missed_payments")).otherwise(pl.lit("fall_share")),
        severity=high_when(pl.col("trailing_share") >= rules.high_share),
        reason_zh=pl.when(stopped)
        .then(
            pl.format(
                "收入来源{}（{}）已中断：最后一次入账{}，应于{}入账，已缺{}次（宽限{}天）；该来源占近{}个完整月净收入的{}。",
                source,
                cadence_zh,
                *days,
                pl.col("missed_payments"),
                pl.lit(str(rules.grace_days)),
                window,
                share,
            )
        )
        .otherwise(
            pl.format(
                "收入来源{}（{}）下降：最近一期{}，近{}期均值{}，低于通常金额{}的{}；最后一次入账{}，下次应于{}；"
                "该来源占近{}个完整月净收入的{}。",
                source,
                cadence_zh,
                fmt_num(pl.col("last_amount")),
                pl.lit(str(rules.fall_periods)),
                fmt_num(pl.col("recent_amount")),
                fmt_num(pl.col("typical_amount")),
                pl.lit(f"{rules.fall_share:.0%}"),
                *days,
                window,
                share,
            )
        ),
        reason_en=pl.when(stopped)
        .then(
            pl.format(
                "Income from {} ({}) stopped: last paid on {}, next expected on {}; {} expected payments missed "
                "(grace {} days). It carried {} of clean income over the last {} full months.",
                source,
                pl.col("cadence"),
                *days,
                pl.col("missed_payments"),
                pl.lit(str(rules.grace_days)),
                share,
                window,
            )
        )
        .otherwise(
            pl.format(
                "Income from {} ({}) fell: last period {}, mean of the last {} periods {}, below {} of the typical "
                "{}; last paid on {}, next expected on {}. It carried {} of clean income over the last {} full months.",
                source,
                pl.col("cadence"),
                fmt_num(pl.col("last_amount")),
                pl.lit(str(rules.fall_periods)),
                fmt_num(pl.col("recent_amount")),
                pl.lit(f"{rules.fall_share:.0%}"),
                fmt_num(pl.col("typical_amount")),
                *days,
                share,
                window,
            )
        ),
    )
    return finish_flags(flagged, INCOME_STOPPED, rules, extra_key=("source_key",))
