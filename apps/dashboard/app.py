"""The liushui dashboard (Streamlit): overview, worklist, customer, account drill-down and run health,
read-only on DuckDB, in English or 中文 (a switch in the sidebar).

Start it with `liushui dashboard --db PATH`, or `streamlit run apps/dashboard/app.py -- --db PATH`
(or with the path in LIUSHUI_DB). The URL follows the page, the account, the customer and the language, so
it can be shared or bookmarked: `?page=Run+health`, `?account=6214830624453336` (opens the drill-down),
`?customer=C0000002` (opens the customer), `&lang=zh`.

DuckDB lets one process write a file only while no other process has it open, so every interaction opens
the database read-only, runs its queries and closes it: the nightly writer is never kept waiting by a
dashboard left open in a browser. Results are cached per database state (file and WAL modification time),
so a publish shows on the next interaction and a page switch costs no query.
"""

from __future__ import annotations

import io
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import Any, TypedDict

import altair as alt
import duckdb
import polars as pl
import polars.selectors as cs
import streamlit as st

from apps import tables
from apps.dashboard import database_path
from apps.dashboard.texts import LANGUAGE_NAMES, LANGUAGES, flag_label, headers, say, with_flag_labels
from flows import decisions
from liushui import queries
from liushui.store import StoreError, reader
from transforms.registry import FLAG_CODES

PAGES = ("Overview", "Worklist", "Customer", "Account", "Run health")
CACHE_TTL_S = 300
READ_TIMEOUT_S = 5.0
ACCOUNT_CHOICES = 1000
# A bare string at the top level of a Streamlit script is drawn on the page ("magic"): these constants are
# described in comments, not in docstrings.
# The worklist shows at most this many accounts (the CSV download has every one that passes).
WORKLIST_ROWS = 5000
# The customer search lists at most this many customers.
CUSTOMER_ROWS = 1000
BAND_COLOURS = ("#4c9f70", "#e0b040", "#e07b39", "#c8423b")
RECOVERY_MEANING = {
    "clean": "no flags in the lookback window",
    "watch": "active flags, none severe",
    "at_risk": "a severe (high) flag within the last months",
    "recovering": "clean months since the last severe flag, not yet enough",
    "recovered": "enough clean months since the last severe flag",
}
# The account_months columns the drill-down charts and lists.
MONTH_FIGURES = (
    "month_on",
    "currency",
    "is_full_month",
    "inflow",
    "outflow",
    "clean_income",
    "loan_repaid",
    "debt_burden_trailing",
    "lenders_active_90d",
    "large_outflow_count",
    "income_cv",
    "closing_balance",
)
# The `queries.worklist` columns the worklist table shows (as_of_on, one date for all, is in its caption); the
# active flags, a long text with their names, come last so that the short columns fit on the screen.
WORKLIST_COLUMNS = (
    "account_id",
    "customer_id",
    "holder_name",
    "score",
    "band",
    "recovery_status",
    "active_flag_count",
    "months_since_severe",
    "clears_on",
    "currency",
    "active_flags",
)
# The `queries.customer_accounts` columns the customer page shows, in the same spirit.
CUSTOMER_ACCOUNT_COLUMNS = (
    "account_id",
    "holder_name",
    "currency",
    "score",
    "band",
    "recovery_status",
    "clean_income_last",
    "clean_income_6m",
    "months_since_severe",
    "clears_on",
    "active_flags",
)


class Overview(TypedDict):
    headline: dict[str, Any]
    flags_per_code: pl.DataFrame
    flags_by_month: pl.DataFrame
    bands: pl.DataFrame
    recovery: pl.DataFrame
    dq_per_run: pl.DataFrame
    quarantine: pl.DataFrame
    file_status: pl.DataFrame
    file_problems: pl.DataFrame


class AccountData(TypedDict):
    risk: dict[str, Any] | None
    months: pl.DataFrame
    """MONTH_FIGURES, money as DOUBLE (a chart cannot plot decimals)."""
    flags: pl.DataFrame
    evidence: pl.DataFrame


class CustomerData(TypedDict):
    accounts: pl.DataFrame
    transfers: pl.DataFrame


class RunDq(TypedDict):
    summary: pl.DataFrame
    failed: pl.DataFrame


def database_state(database: Path) -> tuple[int, int]:
    """Changes whenever the writer publishes: part of every cache key. The file at the path is a new version
    after every publish (a plain file of an older liushui is written in place: its time changes)."""
    if not database.exists():
        return 0, 0
    file = database.stat()
    return file.st_ino, file.st_mtime_ns


@contextmanager
def _reading(database: str) -> Iterator[duckdb.DuckDBPyConnection]:
    con = reader(Path(database), timeout_s=READ_TIMEOUT_S)
    try:
        yield con
    finally:
        con.close()


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def overview_data(database: str, state: tuple[int, int]) -> Overview:
    with _reading(database) as con:
        return {
            "headline": queries.headline(con),
            "flags_per_code": queries.flags_per_code(con).drop("rule_version"),
            "flags_by_month": queries.flags_per_code_by_month(con),
            "bands": queries.accounts_per_band(con),
            "recovery": queries.accounts_per_recovery_status(con),
            "dq_per_run": queries.dq_failures_per_run(con),
            "quarantine": queries.quarantine_per_batch(con),
            "file_status": queries.files_per_status(con),
            "file_problems": queries.files_with_problems(con),
        }


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def account_choices(database: str, state: tuple[int, int], wanted: str | None) -> pl.DataFrame:
    """The riskiest accounts, plus the one a URL asked for when it exists but is not among them."""
    with _reading(database) as con:
        return queries.account_choices(con, limit=ACCOUNT_CHOICES, include=wanted)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def account_data(database: str, state: tuple[int, int], account_id: str) -> AccountData:
    with _reading(database) as con:
        months = queries.account_months(con, account_id).select(MONTH_FIGURES)
        return {
            "risk": queries.account_risk(con, account_id),
            "months": months.with_columns(cs.decimal().cast(pl.Float64)),
            "flags": queries.account_flags(con, account_id).join(
                decisions.account_flags(con, account_id).select(
                    "flag_id", decision_text=decisions.decision_text(), decided_by="decided_by", decided_at="decided_at"
                ),
                on="flag_id",
                how="left",
            ),
            "evidence": queries.account_evidence(con, account_id),
        }


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def worklist_data(
    database: str,
    state: tuple[int, int],
    bands: tuple[str, ...],
    recovery_statuses: tuple[str, ...],
    flag_codes: tuple[str, ...],
    min_score: float | None,
    customer: str | None,
    changed: bool = False,
) -> pl.DataFrame:
    """`liushui accounts` for these filters; with several flag codes, the accounts with any of them active; with
    `changed`, only the accounts the last publish changed, with the change (`liushui accounts --changed`)."""
    with _reading(database) as con:
        found = queries.worklist(
            con, bands=bands, recovery_statuses=recovery_statuses, min_score=min_score, customer=customer
        )
    if changed:
        found = queries.with_changes(found, queries.previous_risk_state(Path(database))).filter(
            pl.col("change").is_not_null()
        )
    if not flag_codes:
        return found
    return found.filter(pl.col("active_flags").list.eval(pl.element().is_in(list(flag_codes))).list.any())


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def customer_search(database: str, state: tuple[int, int], search: str | None) -> pl.DataFrame:
    """The customers `liushui customer SEARCH` would choose from; every customer, riskiest first, without one."""
    with _reading(database) as con:
        return queries.customer_matches(con, search) if search else queries.customers(con)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def customer_data(database: str, state: tuple[int, int], customer_id: str) -> CustomerData:
    with _reading(database) as con:
        return {
            "accounts": queries.customer_accounts(con, customer_id),
            "transfers": queries.customer_transfers(con, customer_id),
        }


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def runs_data(database: str, state: tuple[int, int]) -> pl.DataFrame:
    with _reading(database) as con:
        return queries.runs(con)


@st.cache_data(ttl=CACHE_TTL_S, show_spinner=False)
def run_dq_data(database: str, state: tuple[int, int], run_id: str) -> RunDq:
    with _reading(database) as con:
        return {"summary": queries.dq_summary(con, run_id), "failed": queries.dq_failed(con, run_id)}


def table(frame: pl.DataFrame, *, max_rows: int = 15, select_key: str | None = None) -> int | None:
    """A dataframe with dates as plain YYYY-MM-DD, tall enough for up to `max_rows` rows (then it scrolls).

    With `select_key`, one row can be selected (a click on it): its position in `frame`, None when none is."""
    shown = frame.with_columns(pl.col(pl.Date).cast(pl.String))
    height = 38 + 35 * min(max(len(shown), 1), max_rows)
    # money (exact DECIMAL) with its two decimals, as the CLI and the report show it: 7800.00, not 7800
    money = {
        name: st.column_config.NumberColumn(format="%.2f") for name, dtype in shown.schema.items() if dtype.is_decimal()
    }
    if select_key is None:
        st.dataframe(shown, hide_index=True, width="stretch", height=height, column_config=money)
        return None
    event = st.dataframe(
        shown,
        hide_index=True,
        width="stretch",
        height=height,
        column_config=money,
        key=select_key,
        on_select="rerun",
        selection_mode="single-row",
    )
    rows = event.selection.rows
    return rows[0] if rows else None


def csv_text(frame: pl.DataFrame) -> str:
    """The rows as the CLI's `--format csv` writes them (raw values, lists as JSON)."""
    out = io.StringIO()
    arrow = frame.to_arrow()
    tables.write_batches(arrow.to_batches(), arrow.schema, "csv", out)
    return out.getvalue()


def go_to(page: str, *, account: str | None = None, customer: str | None = None) -> None:
    """Open `page` (on `account` or `customer`) on the next run: `main` switches before any widget exists.
    A button's callback needs nothing more; the script itself calls `st.rerun()` after it."""
    st.session_state["go_to"] = {"page": page, "account": account, "customer": customer}


def _follow_go_to() -> None:
    target = st.session_state.pop("go_to", None)
    if target is None:
        return
    st.session_state["page"] = target["page"]
    if target["account"]:
        st.query_params["account"] = st.session_state["account"] = target["account"]
    if target["customer"]:
        st.query_params["customer"] = st.session_state["customer_search"] = target["customer"]


def _bar(
    frame: pl.DataFrame, category: str, value: str, *, order: tuple[str, ...], colours: tuple[str, ...] | None = None
) -> alt.Chart:
    colour = (
        alt.Color(f"{category}:N", scale=alt.Scale(domain=list(order), range=list(colours)), legend=None)
        if colours
        else alt.value("#4a78b0")
    )
    chart: alt.Chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X(f"{category}:N", sort=list(order), title=None, axis=alt.Axis(labelAngle=0)),
            y=alt.Y(f"{value}:Q", title=value),
            color=colour,
            tooltip=[category, value],
        )
        .properties(height=220)
    )
    return chart


def overview_page(database: str, state: tuple[int, int]) -> None:
    data = overview_data(database, state)
    head = data["headline"]
    st.header("Overview")
    cols = st.columns(5)
    cols[0].metric("Accounts", f"{head['accounts']:,}")
    cols[1].metric("Transactions", f"{head['transactions']:,}")
    cols[2].metric("Flags", f"{head['flags']:,}")
    cols[3].metric("Flagged accounts", f"{head['flagged_accounts']:,}")
    cols[4].metric("As of", str(head["as_of_on"] or "-"))
    latest = head["latest_run"]
    if latest is None:
        st.info("No run has been recorded in this database yet.")
    elif latest["status"] in ("published", "nothing_new"):
        say = st.warning if latest["files_rejected"] or latest["rows_quarantined"] else st.success
        say(f"Last run {latest['run_id']} ({latest['mode']}): {latest['status']}. {latest['message'] or ''}")
    else:
        st.error(f"Last run {latest['run_id']} did not publish ({latest['status']}): {latest['message'] or ''}")

    st.subheader("Flags per code by month")
    by_month = data["flags_by_month"]
    if by_month.is_empty():
        st.info("No flags published.")
    else:
        st.altair_chart(
            alt.Chart(by_month)
            .mark_bar()
            .encode(
                x=alt.X("yearmonth(month_on):O", title="month"),
                y=alt.Y("sum(flags):Q", title="flags"),
                color=alt.Color("flag_code:N", title="flag code", scale=alt.Scale(scheme="tableau20")),
                tooltip=["flag_code", alt.Tooltip("yearmonth(month_on):T", title="month"), "flags"],
            )
            .properties(height=320),
            width="stretch",
        )
    table(data["flags_per_code"])

    left, right = st.columns(2)
    with left:
        st.subheader("Risk bands")
        st.altair_chart(
            _bar(data["bands"], "band", "accounts", order=queries.BAND_ORDER, colours=BAND_COLOURS), width="stretch"
        )
        table(data["bands"])
    with right:
        st.subheader("Recovery status")
        st.altair_chart(
            _bar(data["recovery"], "recovery_status", "accounts", order=queries.RECOVERY_ORDER), width="stretch"
        )
        table(data["recovery"])

    st.subheader("Data quality and quarantine")
    st.markdown("**Expectation failures per run** (newest first; a blocking failure stops the publish)")
    table(data["dq_per_run"], max_rows=8)
    left, right = st.columns(2)
    with left:
        st.markdown("**Source files by status**")
        table(data["file_status"])
    with right:
        st.markdown("**Quarantined rows per batch**")
        if data["quarantine"].is_empty():
            st.success("No input row has been quarantined.")
        else:
            table(data["quarantine"], max_rows=8)
    if not data["file_problems"].is_empty():
        st.markdown("**Files not loaded whole** (partial: some rows quarantined; rejected: retried next run)")
        table(data["file_problems"])


def worklist_page(database: str, state: tuple[int, int], *, language: str) -> None:
    t = partial(say, language=language)
    st.header(t("Worklist"))
    left, middle, right = st.columns([2, 3, 4])
    bands = left.multiselect(t("Band"), queries.BAND_ORDER, key="wl_band")
    statuses = middle.multiselect(t("Recovery status"), queries.RECOVERY_ORDER, key="wl_recovery")
    codes = right.multiselect(
        t("Active flag code (any of)"), FLAG_CODES, format_func=partial(flag_label, language=language), key="wl_code"
    )
    left, middle, right = st.columns([2, 5, 2])
    min_score = left.number_input(t("Minimum score"), min_value=0, max_value=100, value=0, step=5, key="wl_min_score")
    customer = middle.text_input(t("Customer id or holder name contains"), key="wl_customer").strip()
    changed = right.checkbox(t("Changed in the last publish"), key="wl_changed")
    found = worklist_data(
        database,
        state,
        tuple(bands),
        tuple(statuses),
        tuple(codes),
        float(min_score) if min_score else None,
        customer or None,
        changed,
    )
    if found.is_empty():
        st.info(t("No account passes these filters."))
        return
    as_of = found.row(0, named=True)["as_of_on"]
    st.caption(f"{len(found):,} {t('accounts')} · {t('As of')} {as_of} · {t('Select a row to open its account.')}")
    st.download_button(t("Download CSV"), csv_text(found), file_name="worklist.csv", mime="text/csv", key="wl_download")
    if len(found) > WORKLIST_ROWS:
        st.caption(f"The first {WORKLIST_ROWS:,} are shown; the CSV has every one.")
    listed = found.head(WORKLIST_ROWS)
    columns = (*WORKLIST_COLUMNS, "change") if changed else WORKLIST_COLUMNS
    shown = headers(with_flag_labels(listed.select(columns), language), language)
    picked = table(shown, max_rows=20, select_key="wl_table")
    if picked is not None:
        go_to("Account", account=listed["account_id"][picked])
        st.rerun()


def customer_page(database: str, state: tuple[int, int], *, language: str) -> None:
    t = partial(say, language=language)
    st.header(t("Customer"))
    if "customer_search" not in st.session_state:
        st.session_state["customer_search"] = st.query_params.get("customer", "")
    search = st.text_input(t("Customer id, holder name or account id"), key="customer_search").strip()
    if search:
        st.query_params["customer"] = search
    else:
        st.query_params.pop("customer", None)
    found = customer_search(database, state, search or None)
    if found.is_empty():
        st.warning(f"{t('No customer id, holder name or account id matches')} {search!r}.")
        return
    if found.height > 1:
        if search:
            st.caption(f"{found.height:,} {t('customers match; select one.')}")
        else:
            st.caption(t("The riskiest customers; search above, or select a row to open the customer."))
        listed = found.head(CUSTOMER_ROWS)
        picked = table(headers(with_flag_labels(listed, language), language), max_rows=20, select_key="customer_table")
        if picked is not None:
            go_to("Customer", customer=listed["customer_id"][picked])
            st.rerun()
        return

    customer = found.row(0, named=True)
    st.subheader(f"{customer['customer_id']} · {customer['holder_names'] or '-'}")
    cols = st.columns(4)
    cols[0].metric(t("Accounts"), customer["accounts"])
    cols[1].metric(t("Worst band"), customer["worst_band"])
    cols[2].metric(t("Highest score"), f"{customer['max_score']:g}")
    cols[3].metric(t("Flagged accounts"), customer["flagged_accounts"])
    active = ", ".join(flag_label(c, language) for c in customer["active_flags"])
    st.markdown(f"**{t('Active flags')}**: {active or t('none')}")

    data = customer_data(database, state, customer["customer_id"])
    accounts = data["accounts"]
    st.subheader(t("The customer's accounts"))
    st.caption(t("Select an account to open it."))
    picked = table(
        headers(with_flag_labels(accounts.select(CUSTOMER_ACCOUNT_COLUMNS), language), language),
        select_key="customer_accounts",
    )
    if picked is not None:
        go_to("Account", account=accounts["account_id"][picked])
        st.rerun()
    st.subheader(t("Transfers between its own accounts"))
    if data["transfers"].is_empty():
        st.info(t("No transfers between its accounts."))
    else:
        table(headers(data["transfers"], language))


def _choice_label(choices: pl.DataFrame) -> dict[str, str]:
    return {
        row["account_id"]: f"{row['account_id']} · score {row['score']:.0f} ({row['band']}) · {row['flags']} flags"
        for row in choices.iter_rows(named=True)
    }


def account_page(database: str, state: tuple[int, int], *, language: str) -> None:
    st.header("Account drill-down")
    wanted = st.query_params.get("account")
    choices = account_choices(database, state, wanted)
    if choices.is_empty():
        st.info("No account has been published yet.")
        return
    labels = _choice_label(choices)
    if wanted and wanted not in labels:
        st.warning(f"No account {wanted!r} in this database; showing the riskiest accounts instead.")
    if len(choices) >= ACCOUNT_CHOICES:
        st.caption(f"The {ACCOUNT_CHOICES:,} riskiest accounts are listed; open any other with ?account=ID.")
    if st.session_state.get("account") not in labels:
        st.session_state["account"] = wanted if wanted in labels else next(iter(labels))
    account_id = st.selectbox("Account (riskiest first)", list(labels), format_func=labels.__getitem__, key="account")
    st.query_params["account"] = account_id
    data = account_data(database, state, account_id)
    risk = data["risk"]
    if risk is None:
        st.warning(f"Account {account_id} has no risk row.")
        return

    who, to_customer = st.columns([5, 1])
    who.markdown(f"**{say('customer', language)} {risk['customer_id']}** · {risk['holder_name'] or '-'}")
    to_customer.button(
        say("Customer page", language),
        on_click=go_to,
        args=("Customer",),
        kwargs={"customer": risk["customer_id"]},
        key="to_customer",
    )
    cols = st.columns(5)
    cols[0].metric("Score", f"{risk['score']:.0f}")
    cols[1].metric("Band", risk["band"])
    cols[2].metric("Recovery", risk["recovery_status"])
    cols[3].metric("Months since severe", "-" if risk["months_since_severe"] is None else risk["months_since_severe"])
    cols[4].metric("Statement trust", risk["statement_trust"])
    st.caption(f"As of {risk['as_of_on']}; score 0-100 from the active flags (rule version {risk['rule_version']}).")

    left, right = st.columns(2)
    with left:
        st.subheader("Recovery path")
        st.markdown(
            f"**{risk['recovery_status']}**: {RECOVERY_MEANING.get(risk['recovery_status'], '')}. "
            f"Last severe flag: {risk['last_severe_on'] or 'none'}."
        )
        income, trend = risk["clean_income_last"], risk["clean_income_trend_pct"]
        burden, burden_trend = risk["debt_burden_last"], risk["debt_burden_trend"]
        st.markdown(
            f"- clean income last full month: {'-' if income is None else income} {risk['currency']}, "
            f"trend {'-' if trend is None else f'{trend:+.1f} %/month'}\n"
            f"- debt burden (trailing): {'-' if burden is None else f'{burden:.2f}'}, "
            f"trend {'-' if burden_trend is None else f'{burden_trend:+.3f}/month'}\n"
            f"- active flags: {', '.join(risk['active_flags']) or 'none'}"
        )
        components = pl.DataFrame(
            {"flag_code": list(risk["score_components"]), "points": list(risk["score_components"].values())},
            schema={"flag_code": pl.String, "points": pl.Float64},
        )
        if not components.is_empty():
            st.markdown("**Score components** (points per active flag code)")
            table(components)
    with right:
        st.subheader("What would restore the account")
        if not risk["remediation_en"]:
            st.success("Nothing to change: no active flags.")
        for en, zh in zip(risk["remediation_en"], risk["remediation_zh"], strict=True):
            st.markdown(f"- {en}  \n  {zh}")

    months = data["months"]
    st.subheader(f"Monthly figures ({risk['currency']})")
    if months.is_empty():
        st.info("No months published for this account.")
    else:
        partial = months.filter(~pl.col("is_full_month"))["month_on"].to_list()
        flows = months.unpivot(
            index="month_on",
            on=["inflow", "outflow", "clean_income", "loan_repaid"],
            variable_name="figure",
            value_name="amount",
        )
        st.altair_chart(
            alt.Chart(flows)
            .mark_line(point=True)
            .encode(
                x=alt.X("yearmonth(month_on):T", title="month"),
                y=alt.Y("amount:Q", title=risk["currency"]),
                color=alt.Color("figure:N", sort=["clean_income", "inflow", "outflow", "loan_repaid"]),
                tooltip=["figure", alt.Tooltip("yearmonth(month_on):T", title="month"), "amount"],
            )
            .properties(height=280),
            width="stretch",
        )
        st.markdown("**Debt burden** (loan repayments / clean income over the trailing full months)")
        st.altair_chart(
            alt.Chart(months.drop_nulls("debt_burden_trailing"))
            .mark_line(point=True)
            .encode(
                x=alt.X("yearmonth(month_on):T", title="month"),
                y=alt.Y("debt_burden_trailing:Q", title="debt burden", axis=alt.Axis(format=".2f")),
                tooltip=[
                    alt.Tooltip("yearmonth(month_on):T", title="month"),
                    alt.Tooltip("debt_burden_trailing:Q", format=".2f"),
                ],
            )
            .properties(height=200),
            width="stretch",
        )
        if partial:
            st.caption(
                f"Not full months (partial coverage or the as-of month; shown, never judged): "
                f"{', '.join(str(m)[:7] for m in partial)}."
            )
        with st.expander("Monthly figures as a table"):
            table(months)

    flags, evidence = data["flags"], data["evidence"]
    st.subheader(f"Flags ({len(flags)}) and their evidence")
    if flags.is_empty():
        st.success("No flags for this account.")
        return
    table(
        flags.select(
            "flag_code",
            "period_start_on",
            "period_end_on",
            "severity",
            "metric_value",
            "threshold",
            "limit_name",
            "rule_version",
            "evidence_count",
            "reason_en",
        )
    )
    opened = flags.sort(pl.col("severity") != "high", maintain_order=True)["flag_id"][0]
    for flag in flags.iter_rows(named=True):
        title = (
            f"{flag['flag_code']} · {flag['period_start_on']} – {flag['period_end_on']} · {flag['severity']}"
            f" · {flag['evidence_count']} evidence transactions"
        )
        if flag["decision_text"] is not None:
            title += f" · {flag['decision_text']}"
        with st.expander(title, expanded=flag["flag_id"] == opened):
            st.markdown(f"{flag['reason_en']}  \n{flag['reason_zh']}")
            st.markdown(f"*Remediation:* {flag['remediation_en']}  \n{flag['remediation_zh']}")
            rows = evidence.filter(pl.col("flag_id") == flag["flag_id"]).drop("flag_id")
            table(rows)
            decision_form(database, flag)


def decision_form(database: str, flag: dict[str, Any]) -> None:
    """Confirm or dismiss one flag with a note (`flows.decisions.record`, as `liushui decide` does): published at
    once with the account rescored; a dismissed flag stays listed and stops scoring until its evidence changes."""
    if flag["decision_text"] is not None:
        when = f"{flag['decided_at']:%Y-%m-%d %H:%M} UTC"
        st.caption(f"Decision: {flag['decision_text']} by {flag['decided_by']} at {when}")
    with st.form(key=f"decide-{flag['flag_id']}", clear_on_submit=True, border=False):
        by_col, note_col, kind_col = st.columns([1, 3, 1])
        by = by_col.text_input("By", key=f"by-{flag['flag_id']}", placeholder="your name")
        note = note_col.text_input("Why", key=f"note-{flag['flag_id']}", placeholder="what you checked")
        kind = kind_col.radio("Decision", ("confirm", "dismiss"), key=f"kind-{flag['flag_id']}", horizontal=True)
        if not st.form_submit_button("Record decision", key=f"submit-{flag['flag_id']}"):
            return
    try:
        recorded = decisions.record(Path(database), flag["flag_id"], kind, by, note)
    except (decisions.DecisionError, StoreError) as exc:
        st.error(str(exc))
        return
    st.success(
        f"{recorded.decision} recorded; score {recorded.score_before:g} ({recorded.band_before}) → "
        f"{recorded.score_after:g} ({recorded.band_after})"
    )
    st.cache_data.clear()


def run_health_page(database: str, state: tuple[int, int]) -> None:
    st.header("Run health")
    runs = runs_data(database, state)
    if runs.is_empty():
        st.info("No run has been recorded in this database yet.")
        return
    table(runs.select("run_id", "started_at", "status", "mode", "as_of_on", "seconds", "message"), max_rows=8)
    labels = {r["run_id"]: f"{r['run_id']} · {r['status']} · {r['mode']}" for r in runs.iter_rows(named=True)}
    run_id = st.selectbox("Run (newest first)", list(labels), format_func=labels.__getitem__, key="run")
    run = runs.filter(pl.col("run_id") == run_id).row(0, named=True)

    cols = st.columns(4)
    cols[0].metric("Status", run["status"])
    cols[1].metric("Mode", run["mode"])
    cols[2].metric("As of", str(run["as_of_on"]))
    cols[3].metric("Wall time", "-" if run["seconds"] is None else f"{run['seconds']:.1f} s")
    if run["message"]:
        st.caption(run["message"])

    stages = queries.stage_figures(run["stage_seconds_json"], run["stage_peak_rss_mb_json"])
    left, right = st.columns(2)
    with left:
        st.subheader("Stage timings")
        if stages.is_empty():
            st.info("This run recorded no stage timings.")
        else:
            st.altair_chart(
                alt.Chart(stages)
                .mark_bar()
                .encode(
                    y=alt.Y("stage:N", sort=alt.EncodingSortField("order"), title=None),
                    x=alt.X("seconds:Q", title="seconds"),
                    tooltip=["stage", "seconds", "peak_rss_mb"],
                )
                .properties(height=40 + 28 * len(stages)),
                width="stretch",
            )
            table(stages.drop("order"))
    with right:
        st.subheader("Counts")
        table(queries.run_counts(run["counts_json"]), max_rows=20)

    dq = run_dq_data(database, state, run_id)
    st.subheader("Data-quality expectations")
    table(dq["summary"])
    failed = dq["failed"]
    if failed.is_empty():
        st.success(f"All {int(dq['summary']['expectations'].sum())} expectations of this run held.")
    else:
        st.markdown(f"**Failed expectations** ({len(failed)}; blocking first: a blocking failure stops the publish)")
        table(failed)
    with st.expander("Library and rule versions"):
        st.json(run["versions_json"])


def main() -> None:
    st.set_page_config(page_title="liushui 流水", layout="wide")
    database = database_path(sys.argv[1:], dict(os.environ))
    st.sidebar.title("liushui 流水")
    st.sidebar.caption(f"Database (read-only): `{database}`")
    if not database.exists():
        st.error(
            f"No liushui database at {database} yet. Run the nightly job first "
            f"(`liushui run --inbox ... --db {database}`), or point the dashboard at one with `--db PATH`."
        )
        return
    if "language" not in st.session_state:
        st.session_state["language"] = st.query_params.get("lang") if st.query_params.get("lang") in LANGUAGES else "en"
    language = st.sidebar.radio(
        "Language · 语言", LANGUAGES, format_func=LANGUAGE_NAMES.__getitem__, key="language", horizontal=True
    )
    if language == "en":
        st.query_params.pop("lang", None)
    else:
        st.query_params["lang"] = language
    _follow_go_to()
    if "page" not in st.session_state:
        asked = st.query_params.get("page")
        st.session_state["page"] = (
            asked
            if asked in PAGES
            else "Account"
            if "account" in st.query_params
            else "Customer"
            if "customer" in st.query_params
            else PAGES[0]
        )
    page = st.sidebar.radio("Page", PAGES, format_func=partial(say, language=language), key="page")
    st.query_params["page"] = page
    state = database_state(database)
    pages: dict[str, Callable[[str, tuple[int, int]], None]] = {
        "Overview": overview_page,
        "Worklist": partial(worklist_page, language=language),
        "Customer": partial(customer_page, language=language),
        "Account": partial(account_page, language=language),
        "Run health": run_health_page,
    }
    try:
        pages[page](str(database), state)
    except (StoreError, duckdb.Error) as exc:
        st.error(f"Cannot read {database}: {exc}")
        st.button("Try again")


main()
