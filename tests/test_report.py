"""`liushui report ACCOUNT`: the account report read from a database the real flow published, its terminal
and HTML renderings (self-contained, offline, escaped)."""

from __future__ import annotations

import html
import re
from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import pytest
from rich.console import Console

from apps.report import AccountNotFound, EvidenceTransaction, account_report, render_html, render_terminal
from liushui import store


def fetch(db, sql: str, params: list | None = None) -> list[tuple]:
    con = store.reader(db)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture(scope="module")
def flagged_account(published_db) -> str:
    """The account with the most distinct flag codes (several rules, evidence, remediation)."""
    [(account_id,)] = fetch(
        published_db,
        """
        SELECT account_id FROM risk_flags GROUP BY account_id
        ORDER BY count(DISTINCT flag_code) DESC, account_id LIMIT 1""",
    )
    return account_id


@pytest.fixture(scope="module")
def report(published_db, flagged_account):
    return account_report(published_db, flagged_account)


def test_risk_and_recovery_are_the_published_row(published_db, report, flagged_account):
    [row] = fetch(
        published_db,
        """
        SELECT as_of_on, currency, score, band, recovery_status, months_since_severe, statement_trust,
               active_flags, clean_income_last, debt_burden_last, remediation_zh, remediation_en
        FROM account_risk WHERE account_id = ?""",
        [flagged_account],
    )
    assert (
        report.as_of_on,
        report.currency,
        report.score,
        report.band,
        report.recovery_status,
        report.months_since_severe,
        report.statement_trust,
        report.active_flags,
        report.clean_income_last,
        report.debt_burden_last,
        report.remediation_zh,
        report.remediation_en,
    ) == row
    assert report.remediation_en and len(report.remediation_en) == len(report.remediation_zh)


def test_monthly_figures_are_exact(published_db, report, flagged_account):
    rows = fetch(
        published_db,
        """
        SELECT month_on, is_full_month, inflow, outflow, clean_income, loan_repaid, debt_burden, debt_burden_trailing
        FROM account_months WHERE account_id = ? AND is_main_currency ORDER BY month_on""",
        [flagged_account],
    )
    assert [
        (
            m.month_on,
            m.is_full_month,
            m.inflow,
            m.outflow,
            m.clean_income,
            m.loan_repaid,
            m.debt_burden,
            m.debt_burden_trailing,
        )
        for m in report.months
    ] == rows
    assert all(isinstance(m.clean_income, Decimal) for m in report.months)  # money stays exact


def test_flags_carry_reasons_and_their_evidence_transactions(published_db, report, flagged_account):
    rows = fetch(
        published_db,
        """
        SELECT flag_code, period_start_on, reason_zh, reason_en, evidence_txn_ids FROM risk_flags
        WHERE account_id = ? ORDER BY period_start_on, flag_code, flag_id""",
        [flagged_account],
    )
    assert [
        (f.flag_code, f.period_start_on, f.reason_zh, f.reason_en, f.evidence_txn_ids) for f in report.flags
    ] == rows
    for flag in report.flags:
        assert sorted(t.txn_id for t in flag.evidence) == sorted(set(flag.evidence_txn_ids))
    some = report.flags[0].evidence[0]
    [(amount, booked_at)] = fetch(
        published_db, "SELECT amount, booked_at FROM transactions WHERE txn_id = ?", [some.txn_id]
    )
    assert (some.amount, some.booked_at) == (amount, booked_at)


def test_html_is_self_contained_and_shows_the_flags(report):
    page = render_html(report)
    assert page.startswith("<!DOCTYPE html>") and '<meta charset="utf-8">' in page
    assert "http" not in page.lower()  # no CDN, no link, no namespace URL: nothing to fetch
    assert not re.search(r"<(script|link|img|iframe|object)\b", page, re.IGNORECASE)
    assert report.account_id in page and page.count("<svg") == 2
    for flag in report.flags:
        assert flag.flag_code in page
        assert html.escape(flag.reason_zh) in page and html.escape(flag.reason_en) in page
    assert html.escape(report.remediation_zh[0]) in page  # Chinese text written as it is (utf-8)
    shown = report.flags[0].evidence[0]
    assert shown.txn_id in page and f"{shown.amount:,.2f}" in page


def test_text_from_the_data_is_escaped(report):
    hostile = EvidenceTransaction(
        "t<1>",
        datetime(2026, 3, 1, 9),
        Decimal("-1.00"),
        "CNY",
        '<script>alert("x")</script>',
        "<img src=x onerror=y>",
        "spend",
    )
    flag = replace(report.flags[0], evidence=[hostile], reason_en="a < b & <b>bold</b>")
    page = render_html(replace(report, account_id="<acct>", flags=[flag]))
    assert "<script" not in page and "<img" not in page and "<acct>" not in page and "<b>bold" not in page
    assert "&lt;script&gt;" in page and "a &lt; b &amp;" in page


def test_terminal_rendering_lists_flags_and_remediation(report):
    console = Console(record=True, width=220, color_system=None)
    render_terminal(report, console)
    text = console.export_text()
    assert report.account_id in text and report.band in text
    for code in {f.flag_code for f in report.flags}:
        assert code in text
    assert report.remediation_en[0][:40] in text


def test_account_without_flags_renders(published_db):
    rows = fetch(
        published_db,
        "SELECT account_id FROM account_risk WHERE len(active_flags) = 0 AND account_id "
        "NOT IN (SELECT account_id FROM risk_flags) ORDER BY account_id LIMIT 1",
    )
    if not rows:
        pytest.skip("every sample account has a flag")
    quiet = account_report(published_db, rows[0][0])
    assert quiet.flags == [] and quiet.months
    assert "No flags" in render_html(quiet)


def test_unknown_account_is_a_clear_error(published_db):
    with pytest.raises(AccountNotFound, match=r"no account 'NOPE-1' in .*liushui\.duckdb"):
        account_report(published_db, "NOPE-1")
