"""Sanity check of the peers against liushui, and the BENCHMARKS.md renderer."""

# ruff: noqa: E501  (SQL and Markdown templates read better unwrapped)

from __future__ import annotations

from pathlib import Path

import duckdb


def sanity_check(sql_db: Path, pandas_db: Path, core_db: Path, run_db: Path | None = None) -> dict:
    """Monthly clean income per account-month: DuckDB SQL vs pandas vs liushui (core path, no round-trip
    marking), and which liushui transaction classes make the SQL peer disagree."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{sql_db}' AS sql_db (READ_ONLY)")
    con.execute(f"ATTACH '{pandas_db}' AS pd_db (READ_ONLY)")
    con.execute(f"ATTACH '{core_db}' AS ls_db (READ_ONLY)")
    out: dict = {}
    if run_db is not None and run_db.exists():
        con.execute(f"ATTACH '{run_db}' AS run_db (READ_ONLY)")
    cmp = """
        WITH j AS (
            SELECT coalesce(a.account_id, b.account_id) AS account_id,
                   CAST(coalesce(a.month_on, b.month_on) AS DATE) AS month_on,
                   CAST(a.clean_income AS DOUBLE) AS x, CAST(b.clean_income AS DOUBLE) AS y
            FROM {a} a FULL JOIN {b} b
              ON a.account_id = b.account_id AND a.currency = b.currency
             AND CAST(a.month_on AS DATE) = CAST(b.month_on AS DATE)
        )
        SELECT count(*) AS months, count(x) AS months_a, count(y) AS months_b,
               avg(CASE WHEN abs(coalesce(x,0) - coalesce(y,0)) < 0.005 THEN 1 ELSE 0 END) AS exact_share,
               avg(CASE WHEN abs(coalesce(x,0) - coalesce(y,0)) <= 0.01 * greatest(abs(coalesce(y,0)), 1) THEN 1 ELSE 0 END) AS within_1pct_share,
               sum(x) AS total_a, sum(y) AS total_b, corr(x, y) AS corr
        FROM j"""
    pairs = {
        "sql_vs_pandas": ("sql_db.account_months", "pd_db.account_months"),
        "sql_vs_liushui": ("sql_db.account_months", "ls_db.account_months"),
        "pandas_vs_liushui": ("pd_db.account_months", "ls_db.account_months"),
    }
    if run_db is not None and run_db.exists():
        pairs["sql_vs_liushui_published"] = ("sql_db.account_months", "run_db.account_months")
        out["published_by_class"] = [
            {"txn_class": r[0], "rows": r[1], "amount": float(r[2])}
            for r in con.execute(
                "SELECT txn_class, count(*), sum(amount) FROM run_db.transactions "
                "WHERE txn_class IN ('round_trip_in', 'cycle_in') GROUP BY 1 ORDER BY 1"
            ).fetchall()
        ]
    for name, (a, b) in pairs.items():
        row = con.execute(cmp.format(a=a, b=b)).fetchone()
        out[name] = {
            k: (round(v, 6) if isinstance(v, float) else v)
            for k, v in zip(
                ("months", "months_a", "months_b", "exact_share", "within_1pct_share", "total_a", "total_b", "corr"),
                row,
                strict=True,
            )
        }
    # Row-level: where does the SQL peer's clean-income flag differ from liushui's class?
    out["sql_vs_liushui_by_class"] = [
        {"liushui_class": r[0], "sql_clean": r[1], "liushui_clean": r[2], "rows": r[3], "amount": float(r[4])}
        for r in con.execute("""
            WITH s AS (
                SELECT account_id, booked_at, amount, description,
                       amount > 0 AND NOT is_own AND NOT is_related AND NOT is_loan_disbursement
                       AND NOT is_refund_or_reversal AS sql_clean
                FROM sql_db.transactions
            )
            SELECT l.txn_class, s.sql_clean, l.is_clean_income, count(*), sum(l.amount)
            FROM ls_db.transactions l JOIN s
              ON l.account_id = s.account_id AND l.booked_at = s.booked_at AND l.amount = s.amount
             AND l.description IS NOT DISTINCT FROM s.description
            WHERE s.sql_clean IS DISTINCT FROM l.is_clean_income
            GROUP BY ALL ORDER BY abs(sum(l.amount)) DESC LIMIT 12""").fetchall()
    ]
    out["months_only_in_liushui"] = con.execute("""
        SELECT count(*), sum(CASE WHEN l.txn_count = 0 THEN 1 ELSE 0 END) FROM ls_db.account_months l
        ANTI JOIN sql_db.account_months s ON l.account_id = s.account_id AND l.currency = s.currency
             AND l.month_on = CAST(s.month_on AS DATE)""").fetchone()
    con.close()
    return out


def render(results: dict) -> str:  # replaced below
    from bench.render import render_markdown

    return render_markdown(results)
