"""Sanity check of the peers against liushui, and the BENCHMARKS.md renderer."""

from __future__ import annotations

from pathlib import Path

import duckdb


def sanity_check(sql_db: Path, pandas_db: Path, core_db: Path) -> dict:
    """Monthly clean income per account-month: DuckDB SQL vs pandas vs liushui (core path, no round-trip
    marking), and which liushui transaction classes make the SQL peer disagree."""
    con = duckdb.connect()
    con.execute(f"ATTACH '{sql_db}' AS s (READ_ONLY)")
    con.execute(f"ATTACH '{pandas_db}' AS p (READ_ONLY)")
    con.execute(f"ATTACH '{core_db}' AS l (READ_ONLY)")
    out: dict = {}
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
    pairs = {"sql_vs_pandas": ("s.account_months", "p.account_months"),
             "sql_vs_liushui": ("s.account_months", "l.account_months"),
             "pandas_vs_liushui": ("p.account_months", "l.account_months")}
    for name, (a, b) in pairs.items():
        row = con.execute(cmp.format(a=a, b=b)).fetchone()
        out[name] = {k: (round(v, 6) if isinstance(v, float) else v) for k, v in zip(
            ("months", "months_a", "months_b", "exact_share", "within_1pct_share", "total_a", "total_b", "corr"),
            row, strict=True)}
    # Row-level: where does the SQL peer's clean-income flag differ from liushui's class?
    out["sql_vs_liushui_by_class"] = [
        {"liushui_class": r[0], "sql_clean": r[1], "liushui_clean": r[2], "rows": r[3], "amount": float(r[4])}
        for r in con.execute("""
            WITH s AS (
                SELECT account_id, booked_at, amount, description,
                       amount > 0 AND NOT is_own AND NOT is_related AND NOT is_loan_disbursement
                       AND NOT is_refund_or_reversal AS sql_clean
                FROM s.transactions
            )
            SELECT l.txn_class, s.sql_clean, l.is_clean_income, count(*), sum(l.amount)
            FROM l.transactions l JOIN s
              ON l.account_id = s.account_id AND l.booked_at = s.booked_at AND l.amount = s.amount
             AND l.description IS NOT DISTINCT FROM s.description
            WHERE s.sql_clean <> l.is_clean_income
            GROUP BY ALL ORDER BY abs(sum(l.amount)) DESC LIMIT 12""").fetchall()
    ]
    out["months_only_in_liushui"] = con.execute("""
        SELECT count(*), sum(CASE WHEN l.txn_count = 0 THEN 1 ELSE 0 END) FROM l.account_months l
        ANTI JOIN s.account_months s ON l.account_id = s.account_id AND l.currency = s.currency
             AND l.month_on = CAST(s.month_on AS DATE)""").fetchone()
    con.close()
    return out


def render(results: dict) -> str:  # replaced below
    from bench.render import render_markdown

    return render_markdown(results)
