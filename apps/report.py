"""One account's report for the people who decide on it: risk and recovery, monthly clean income, outflow
and debt burden, the flags with their reasons and evidence transactions, and what would restore the account.

    report = account_report(database, "6214830624453336")     # reads DuckDB read-only
    render_terminal(report, Console())                         # rich, for `liushui report ACCOUNT`
    Path("report.html").write_text(render_html(report), encoding="utf-8")

The HTML page is self-contained: inline CSS and charts drawn as inline SVG (no script, no font, no image,
no link to anything outside the page), so it opens offline, in a mail attachment or a locked-down browser,
and prints. Every text from the data (names, memos) is HTML-escaped.

Monthly figures are those of the account's main currency (the one its risk is judged in).
"""

from __future__ import annotations

import html
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, get_args

import polars as pl

from flows import decisions
from liushui import queries, store

if TYPE_CHECKING:  # pragma: no cover
    from _typeshed import DataclassInstance
    from rich.console import Console


class AccountNotFound(LookupError):
    """The account has no row in `account_risk`; the message names the account and the database."""


@dataclass(frozen=True)
class MonthFigures:
    """One month of the account (main currency)."""

    month_on: date
    is_full_month: bool
    inflow: Decimal
    outflow: Decimal
    clean_income: Decimal
    loan_repaid: Decimal
    debt_burden: float | None
    """loan_repaid / clean_income of the month."""
    debt_burden_trailing: float | None
    """Loan repayments / clean income over the trailing months (what DEBT_BURDEN_HIGH judges)."""


@dataclass(frozen=True)
class EvidenceTransaction:
    txn_id: str
    booked_at: datetime
    amount: Decimal
    currency: str
    counterparty_name: str | None
    description: str | None
    txn_class: str


@dataclass(frozen=True)
class FlagEntry:
    """One published flag with its explanation and the transactions that prove it."""

    flag_code: str
    period_start_on: date
    period_end_on: date
    severity: str
    metric_value: float
    threshold: float
    limit_name: str
    rule_version: str
    reason_zh: str
    reason_en: str
    remediation_zh: str
    remediation_en: str
    evidence_txn_ids: list[str]
    evidence: list[EvidenceTransaction]
    """The evidence transactions found in `transactions`, in booking order."""
    decision: str | None = None
    """The flag's latest decision as shown (`flows.decisions.decision_text`): dismissed, confirmed, or either with
    "evidence changed since ..."; None without one."""
    decided_by: str | None = None
    decided_at: datetime | None = None
    """When (UTC)."""


@dataclass(frozen=True)
class AccountReport:
    account_id: str
    customer_id: str
    holder_name: str | None
    as_of_on: date
    currency: str
    score: float
    band: str
    recovery_status: str
    months_since_severe: int | None
    last_severe_on: date | None
    statement_trust: str
    active_flags: list[str]
    score_components: dict[str, float]
    clean_income_last: Decimal | None
    clean_income_trend_pct: float | None
    debt_burden_last: float | None
    debt_burden_trend: float | None
    remediation_zh: list[str]
    remediation_en: list[str]
    months: list[MonthFigures] = field(default_factory=list)
    flags: list[FlagEntry] = field(default_factory=list)


# Reading -----------------------------------------------------------------------------------------------
Lang = Literal["both", "zh", "en"]
"""Which language the reasons and remediation are shown in: both (中文 then English), 中文 or English."""
LANGS: tuple[Lang, ...] = get_args(Lang)


def _in(lang: Lang, zh: str, en: str, *, sep: str = "\n") -> str:
    """A text pair in the asked language(s)."""
    return {"zh": zh, "en": en}.get(lang, f"{zh}{sep}{en}")


def _taken_by(cls: type[DataclassInstance], row: Mapping[str, Any]) -> dict[str, Any]:
    """The values of a query's row that the dataclass has fields for."""
    return {f.name: row[f.name] for f in fields(cls) if f.name in row}


def account_report(database: Path, account_id: str) -> AccountReport:
    """Everything published about `account_id`, read through a read-only connection.
    Raises AccountNotFound for an account without a risk row, StoreError for a missing/locked database."""
    con = store.reader(database)
    try:
        risk = queries.account_risk(con, account_id)
        if risk is None:
            raise AccountNotFound(f"no account {account_id!r} in {database} (account_risk has no row for it)")
        months = queries.account_months(con, account_id)
        flags = decisions.account_flags(con, account_id).with_columns(decision=decisions.decision_text())
        evidence = queries.account_evidence(con, account_id)
    finally:
        con.close()
    # Each flag's evidence found in `transactions` (booked_at is null for an id it lacks), once, by booking.
    found = evidence.filter(pl.col("booked_at").is_not_null()).unique(["flag_id", "txn_id"], maintain_order=True)
    proof: dict[str, list[EvidenceTransaction]] = {}
    for e in found.iter_rows(named=True):
        proof.setdefault(e["flag_id"], []).append(EvidenceTransaction(**_taken_by(EvidenceTransaction, e)))

    return AccountReport(
        **_taken_by(AccountReport, risk),
        months=[MonthFigures(**_taken_by(MonthFigures, m)) for m in months.iter_rows(named=True)],
        flags=[
            FlagEntry(**_taken_by(FlagEntry, f), evidence=proof.get(f["flag_id"], []))
            for f in flags.iter_rows(named=True)
        ],
    )


# Formatting --------------------------------------------------------------------------------------------
def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _ratio(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _headline(report: AccountReport) -> str:
    since = (
        f", {report.months_since_severe} clean month(s) since the last severe flag"
        if report.months_since_severe is not None
        else ""
    )
    return (
        f"score {report.score:.0f} ({report.band}), recovery {report.recovery_status}{since}; "
        f"statement trust {report.statement_trust}; clean income last full month "
        f"{_money(report.clean_income_last)} {report.currency}, trend "
        f"{_ratio(report.clean_income_trend_pct, 1)} %/month; debt burden {_ratio(report.debt_burden_last)}"
    )


def _customer(report: AccountReport) -> str:
    holder = f" ({report.holder_name})" if report.holder_name else ""
    return f"customer {report.customer_id}{holder}"


def render_terminal(
    report: AccountReport, console: Console, *, evidence_per_flag: int = 5, lang: Lang = "both"
) -> None:
    """The report on a rich Console: headline, what would restore the account, months, then each flag (newest
    first) as a block — its line, its reasons in full (wrapped, never cut), its evidence — at any width.
    `lang`: reasons, remediation and flag names in 中文, English or both."""
    from rich.padding import Padding
    from rich.text import Text

    from apps.tables import display, write_table
    from transforms.registry import RULES

    names = {rule.code: rule.name_en if lang == "en" else rule.name_zh for rule in RULES}
    console.print(f"[bold]account {report.account_id}[/] as of {report.as_of_on} ({report.currency})", highlight=False)
    console.print(_customer(report), highlight=False, markup=False)
    console.print(_headline(report), highlight=False, markup=False)
    active = ", ".join(f"{c} {names.get(c, '')}".strip() for c in report.active_flags)
    console.print(f"active flags: {active or 'none'}", highlight=False, markup=False)
    if report.remediation_en:
        console.print("[bold]what would restore the account[/]", highlight=False)
        for en, zh in zip(report.remediation_en, report.remediation_zh, strict=True):
            console.print(Padding(Text("• " + _in(lang, zh, en, sep="\n  ")), (0, 0, 0, 2)))

    # the project's table format: in a terminal ids and money keep their width; else plain aligned columns, one
    # line per month however narrow the console (soft wrap: never folded)
    plain = io.StringIO()
    write_table(
        ("month", "coverage", "inflow", "outflow", "clean_income", "loan_repaid", "debt_burden_trailing"),
        [
            (
                m.month_on.strftime("%Y-%m"),
                "full" if m.is_full_month else "partial",
                m.inflow,
                m.outflow,
                m.clean_income,
                m.loan_repaid,
                m.debt_burden_trailing,
            )
            for m in report.months
        ],
        plain,
        terminal=console.is_terminal,
        title=f"months ({report.currency})",
        console=console,
    )
    if plain.getvalue():
        console.print(plain.getvalue().rstrip("\n"), soft_wrap=True, markup=False, highlight=False)

    if not report.flags:
        console.print("no flags")
        return
    console.print("[bold]flags[/] (newest first)", highlight=False)
    for f in sorted(report.flags, key=lambda f: (f.period_end_on, f.period_start_on), reverse=True):
        console.print(
            Text(
                f"{f.flag_code} {names.get(f.flag_code, '')}  {f.period_start_on} .. {f.period_end_on}  "
                f"{f.severity}  {display(f.metric_value)} / {display(f.threshold)} ({f.limit_name})",
                style="bold",
            )
        )
        if f.decision is not None:
            console.print(Padding(Text(_decided(f), style="italic"), (0, 0, 0, 2)))
        console.print(Padding(Text(_in(lang, f.reason_zh, f.reason_en)), (0, 0, 0, 2)))
        shown = [
            f"{t.booked_at:%Y-%m-%d %H:%M}  {_money(t.amount)} {t.currency}  {t.counterparty_name or ''}  {t.txn_id}"
            for t in f.evidence[:evidence_per_flag]
        ]
        more = len(f.evidence_txn_ids) - len(shown)
        evidence = "\n".join(shown + ([f"… {more} more"] if more > 0 else []))
        if evidence:
            console.print(Padding(Text(evidence, style="dim"), (0, 0, 0, 4)))


def _decided(flag: FlagEntry) -> str:
    when = f" at {flag.decided_at:%Y-%m-%d %H:%M} UTC" if flag.decided_at else ""
    return f"{flag.decision} by {flag.decided_by}{when}"


# HTML --------------------------------------------------------------------------------------------------
def _e(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _svg_bars(
    title: str,
    labels: list[str],
    series: Sequence[tuple[str, str, Sequence[float | None]]],
    partial: list[bool],
    value_text: list[list[str]],
    threshold: float | None = None,
) -> str:
    """A grouped bar chart as inline SVG: `series` are (name, css class, values), None = no bar. Hovering
    a bar shows its exact value (SVG <title>)."""
    width, height, left, bottom, top = 760, 240, 70, 40, 16
    plot_w, plot_h = width - left - 10, height - bottom - top
    values = [v for _, _, vs in series for v in vs if v is not None] + ([threshold] if threshold else [])
    hi, lo = max(values + [0.0]), min(values + [0.0])
    span = (hi - lo) or 1.0

    def y(v: float) -> float:
        return top + plot_h * (hi - v) / span

    n = max(len(labels), 1)
    group_w = plot_w / n
    bar_w = group_w * 0.8 / max(len(series), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{_e(title)}">',
        f'<line class="axis" x1="{left}" y1="{y(0):.1f}" x2="{width - 10}" y2="{y(0):.1f}"/>',
    ]
    for tick in (lo, (lo + hi) / 2, hi):
        parts.append(f'<text class="tick" x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{tick:,.2f}</text>')
        parts.append(f'<line class="grid" x1="{left}" y1="{y(tick):.1f}" x2="{width - 10}" y2="{y(tick):.1f}"/>')
    for i, label in enumerate(labels):
        x0 = left + i * group_w + group_w * 0.1
        for j, (name, css, vs) in enumerate(series):
            v = vs[i]
            if v is None:
                continue
            y0, y1 = sorted((y(0), y(v)))
            klass = f"{css} partial" if partial[i] else css
            parts.append(
                f'<rect class="{klass}" x="{x0 + j * bar_w:.1f}" y="{y0:.1f}" width="{bar_w:.1f}" '
                f'height="{max(y1 - y0, 0.5):.1f}"><title>{_e(label)} {_e(name)}: '
                f"{_e(value_text[j][i])}{' (partial month)' if partial[i] else ''}</title></rect>"
            )
        if n <= 18 or i % 2 == 0:
            parts.append(
                f'<text class="tick" x="{left + (i + 0.5) * group_w:.1f}" y="{height - bottom + 16}" '
                f'text-anchor="middle">{_e(label)}</text>'
            )
    if threshold:
        parts.append(
            f'<line class="threshold" x1="{left}" y1="{y(threshold):.1f}" x2="{width - 10}" '
            f'y2="{y(threshold):.1f}"><title>threshold {threshold:g}</title></line>'
        )
    legend = "".join(f'<span class="key {css}"></span>{_e(name)} ' for name, css, _ in series)
    return (
        f'<figure><figcaption>{_e(title)} <span class="legend">{legend}'
        f'<span class="key partial-key"></span>partial month</span></figcaption>' + "".join(parts) + "</svg></figure>"
    )


_CSS = """
body{font-family:system-ui,-apple-system,"PingFang SC","Microsoft YaHei","Noto Sans CJK SC",sans-serif;
margin:2em auto;max-width:1000px;padding:0 1em;color:#1f2328}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;width:100%;font-size:.9em;margin:.5em 0}
th,td{border:1px solid #d0d7de;padding:.3em .5em;vertical-align:top;text-align:left}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.band{display:inline-block;padding:.1em .6em;border-radius:1em;color:#fff;background:#57606a}
.band-low{background:#1a7f37}.band-medium{background:#9a6700}.band-high{background:#cf222e}
.band-severe{background:#82071e}.sev-high{color:#cf222e;font-weight:bold}.sev-medium{color:#9a6700}
figure{margin:1em 0}figcaption{font-weight:bold}.legend{font-weight:normal;font-size:.85em;margin-left:1em}
.key{display:inline-block;width:.9em;height:.9em;margin:0 .3em 0 .8em;vertical-align:middle}
svg.chart{width:100%;height:auto}.axis{stroke:#57606a}.grid{stroke:#eaeef2}
.tick{font-size:11px;fill:#57606a}.threshold{stroke:#cf222e;stroke-dasharray:6 4;stroke-width:1.5}
.income{fill:#2da44e;background:#2da44e}.outflow{fill:#cf222e;background:#cf222e}
.burden{fill:#8250df;background:#8250df}.partial{opacity:.35}.partial-key{background:#8c959f;opacity:.35}
.zh,.footer{color:#57606a}details{margin:.3em 0}
.lang{float:right;font-size:.85em}.lang label{margin:0 .6em 0 .2em}
body:has(#lang-zh:checked) .en,body:has(#lang-en:checked) .zh{display:none}
"""

_LANG_LABELS: dict[Lang, str] = {"both": "中文 + English", "zh": "中文", "en": "English"}


def _lang_switch(lang: Lang) -> str:
    """Radio buttons that show the reasons and remediation in one language or both (the CSS above)."""
    return "".join(
        f'<input type="radio" name="lang" id="lang-{code}"{" checked" if code == lang else ""}>'
        f'<label for="lang-{code}">{label}</label>'
        for code, label in _LANG_LABELS.items()
    )


def render_html(report: AccountReport, *, lang: Lang = "both") -> str:
    """A self-contained HTML page of the report (utf-8, inline CSS and SVG, no external resource). Reasons and
    remediation are in both languages; a 中文 / English / both switch on the page (CSS only, no script) shows
    one of them, `lang` is the one it opens with."""
    labels = [m.month_on.strftime("%Y-%m") for m in report.months]
    partial = [not m.is_full_month for m in report.months]
    income = [float(m.clean_income) for m in report.months]
    outflow = [float(m.outflow) for m in report.months]
    burden = [m.debt_burden_trailing for m in report.months]
    burden_limit = next((f.threshold for f in report.flags if f.flag_code == "DEBT_BURDEN_HIGH"), None)
    money_chart = _svg_bars(
        f"Monthly clean income and outflow ({report.currency}) 月度净收入与支出",
        labels,
        [("clean income 净收入", "income", income), ("outflow 支出", "outflow", outflow)],
        partial,
        [[_money(m.clean_income) for m in report.months], [_money(m.outflow) for m in report.months]],
    )
    burden_chart = _svg_bars(
        "Debt burden (loan repayments / clean income, trailing) 负债收入比",
        labels,
        [("debt burden 负债收入比", "burden", burden)],
        partial,
        [[_ratio(m.debt_burden_trailing) for m in report.months]],
        threshold=burden_limit,
    )

    month_rows = "".join(
        f"<tr><td>{m.month_on:%Y-%m}</td><td>{'full' if m.is_full_month else 'partial'}</td>"
        f'<td class="num">{_money(m.inflow)}</td><td class="num">{_money(m.outflow)}</td>'
        f'<td class="num">{_money(m.clean_income)}</td><td class="num">{_money(m.loan_repaid)}</td>'
        f'<td class="num">{_ratio(m.debt_burden)}</td><td class="num">{_ratio(m.debt_burden_trailing)}</td></tr>'
        for m in report.months
    )
    flag_rows = "".join(
        f'<tr id="flag-{i}"><td><b>{_e(f.flag_code)}</b></td><td>{f.period_start_on} .. {f.period_end_on}</td>'
        f'<td class="sev-{_e(f.severity)}">{_e(f.severity)}</td>'
        f'<td class="num">{f.metric_value:.4g} / {f.threshold:.4g}<br>{_e(f.limit_name)}</td>'
        f'<td><div class="en">{_e(f.reason_en)}</div><div class="zh">{_e(f.reason_zh)}</div>'
        + (f'<div class="decision">{_e(_decided(f))}</div>' if f.decision is not None else "")
        + "</td>"
        f'<td><div class="en">{_e(f.remediation_en)}</div><div class="zh">{_e(f.remediation_zh)}</div></td>'
        f"<td>{_e(f.rule_version)}</td></tr>"
        for i, f in enumerate(report.flags)
    )
    evidence = "".join(
        f"<details><summary>{_e(f.flag_code)} {f.period_start_on} .. {f.period_end_on}: "
        f"{len(f.evidence_txn_ids)} transaction(s)</summary><table><tr><th>booked at</th><th>amount</th>"
        f"<th>counterparty</th><th>description</th><th>class</th><th>txn_id</th></tr>"
        + "".join(
            f"<tr><td>{t.booked_at:%Y-%m-%d %H:%M}</td>"
            f'<td class="num">{t.amount:,.2f} {_e(t.currency)}</td><td>{_e(t.counterparty_name)}</td>'
            f"<td>{_e(t.description)}</td><td>{_e(t.txn_class)}</td><td><code>{_e(t.txn_id)}</code></td></tr>"
            for t in f.evidence
        )
        + "</table></details>"
        for f in report.flags
    )
    remediation = "".join(
        f'<li><div class="en">{_e(en)}</div><div class="zh">{_e(zh)}</div></li>'
        for en, zh in zip(report.remediation_en, report.remediation_zh, strict=True)
    )
    components = ", ".join(f"{_e(k)} {v:g}" for k, v in sorted(report.score_components.items()))
    return f"""<!DOCTYPE html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>liushui 流水 · account {_e(report.account_id)} as of {report.as_of_on}</title>
<style>{_CSS}</style>
</head>
<body>
<div class="lang">{_lang_switch(lang)}</div>
<h1>Account 账户 {_e(report.account_id)} <span class="band band-{_e(report.band)}">{_e(report.band)}</span></h1>
<p>Customer 客户 {_e(report.customer_id)}{f" · holder 户名 {_e(report.holder_name)}" if report.holder_name else ""}
· as of 截至 {report.as_of_on} · main currency 主要币种 {_e(report.currency)}</p>
<table>
<tr><th>risk score 风险分</th><td class="num">{report.score:.0f}</td><th>band 等级</th><td>{_e(report.band)}</td></tr>
<tr><th>recovery 恢复状态</th><td>{_e(report.recovery_status)}</td><th>clean months since severe flag</th>
<td class="num">{_e(report.months_since_severe if report.months_since_severe is not None else "-")}</td></tr>
<tr><th>last severe flag 最近严重风险</th><td>{_e(report.last_severe_on or "-")}</td>
<th>statement trust 流水可信度</th><td>{_e(report.statement_trust)}</td></tr>
<tr><th>clean income, last full month 上一完整月净收入</th><td class="num">{_money(report.clean_income_last)}</td>
<th>clean income trend 净收入趋势</th><td class="num">{_ratio(report.clean_income_trend_pct, 1)} %/month</td></tr>
<tr><th>debt burden 负债收入比</th><td class="num">{_ratio(report.debt_burden_last)}</td>
<th>debt burden trend</th><td class="num">{_ratio(report.debt_burden_trend, 3)} /month</td></tr>
<tr><th>active flags 当前风险</th><td colspan="3">{_e(", ".join(report.active_flags) or "none 无")}
{f" (points: {components})" if components else ""}</td></tr>
</table>
<h2>What would restore the account 恢复条件</h2>
{f"<ul>{remediation}</ul>" if remediation else "<p>Nothing: no active flag. 无当前风险。</p>"}
<h2>Monthly figures 月度数据</h2>
{money_chart}
{burden_chart}
<table><tr><th>month</th><th>coverage</th><th>inflow 流入</th><th>outflow 流出</th><th>clean income 净收入</th>
<th>loan repaid 还款</th><th>debt burden</th><th>debt burden (trailing)</th></tr>{month_rows}</table>
<h2>Flags 风险标记 ({len(report.flags)})</h2>
{
        f'''<table><tr><th>code</th><th>period</th><th>severity</th><th>metric / threshold</th><th>reason 原因</th>
<th>remediation 整改</th><th>rule</th></tr>{flag_rows}</table>'''
        if report.flags
        else "<p>No flags. 无风险标记。</p>"
    }
<h2>Evidence 证据交易</h2>
{evidence or "<p>-</p>"}
<p class="footer">liushui 流水 · generated from the published tables (read-only)</p>
</body>
</html>
"""
