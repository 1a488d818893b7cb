"""Peer (a): the core features in DuckDB SQL, written the way a dbt-duckdb project would: a staging
model over the raw files (CSV read all-varchar then cast, Parquet as is, deduplicated), a classified
transactions model, then account-month and large-outflow models, each materialised as a table in a
DuckDB file. Run as `python -m bench.peer_sql DATA_DIR OUT_DB`; prints a JSON line of timings."""

# ruff: noqa: E501  (SQL and Markdown templates read better unwrapped)

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import duckdb

from bench.patterns import REFUND, REPAY_ONLY, lender_patterns


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def models(data: Path) -> list[tuple[str, str]]:
    inbox = data / "inbox"
    csvs = sorted(str(p) for p in inbox.glob("*.csv"))
    parquets = sorted(str(p) for p in inbox.glob("*.parquet"))
    cp, ds = lender_patterns()
    cols = "account_id, txn_id, booked_at, amount, currency, balance_after, counterparty_name, counterparty_account, description, channel"
    sources = []  # an inbox of one format has no files of the other
    if csvs:
        sources.append(f"""
                SELECT account_id, nullif(txn_id, '') AS txn_id, CAST(booked_at AS TIMESTAMP) AS booked_at,
                       CAST(amount AS DECIMAL(18,2)) AS amount, coalesce(nullif(currency, ''), 'CNY') AS currency,
                       CAST(nullif(balance_after, '') AS DECIMAL(18,2)) AS balance_after,
                       nullif(counterparty_name, '') AS counterparty_name,
                       nullif(counterparty_account, '') AS counterparty_account,
                       nullif(description, '') AS description, nullif(channel, '') AS channel
                FROM read_csv({csvs!r}, all_varchar = true, header = true, union_by_name = true)""")
    if parquets:
        sources.append(f"""
                SELECT {cols} FROM read_parquet({parquets!r}, union_by_name = true)""")
    return [
        (
            "stg_transactions",
            f"""
            SELECT DISTINCT {cols} FROM ({" UNION ALL ".join(sources)}            )""",
        ),
        ("ref_accounts", f"SELECT * FROM read_csv({str(data / 'reference' / 'accounts.csv')!r}, all_varchar = true)"),
        (
            "ref_related",
            f"SELECT * FROM read_csv({str(data / 'reference' / 'related_parties.csv')!r}, all_varchar = true)",
        ),
        (
            "transactions",
            f"""
            WITH t AS (
                SELECT s.*, coalesce(a.customer_id, s.account_id) AS customer_id, a.holder_name,
                       CAST(date_trunc('month', s.booked_at) AS DATE) AS month_on
                FROM stg_transactions s LEFT JOIN ref_accounts a USING (account_id)
            ), rel AS (
                SELECT t.*,
                    (o.customer_id IS NOT NULL) OR coalesce(t.counterparty_name = t.holder_name, false) AS is_own,
                    EXISTS (SELECT 1 FROM ref_related r WHERE r.customer_id = t.customer_id
                            AND (r.party_account = t.counterparty_account OR r.party_name = t.counterparty_name)) AS is_related,
                    (regexp_matches(coalesce(t.counterparty_name, ''), {_lit(cp)})
                     OR regexp_matches(coalesce(t.description, ''), {_lit(ds)})) AS is_lender
                FROM t LEFT JOIN ref_accounts o
                    ON o.account_id = t.counterparty_account AND o.customer_id = t.customer_id
                       AND o.account_id <> t.account_id
            )
            SELECT *,
                amount > 0 AND is_lender AND NOT regexp_matches(coalesce(description, ''), {_lit(REPAY_ONLY)}) AS is_loan_disbursement,
                regexp_matches(coalesce(description, ''), {_lit(REFUND)}) AS is_refund_or_reversal
            FROM rel""",
        ),
        (
            "account_months",
            """
            WITH m AS (
                SELECT account_id, currency, month_on,
                    count(*) AS txn_count,
                    sum(amount) FILTER (amount > 0) AS inflow,
                    -sum(amount) FILTER (amount < 0) AS outflow,
                    coalesce(sum(amount) FILTER (amount > 0 AND NOT is_own AND NOT is_related
                        AND NOT is_loan_disbursement AND NOT is_refund_or_reversal), 0) AS clean_income,
                    coalesce(-sum(amount) FILTER (amount < 0 AND (is_own OR is_related)), 0) AS related_out,
                    count(*) FILTER (amount < 0 AND (is_own OR is_related)) AS related_out_count
                FROM transactions GROUP BY ALL
            ), w AS (
                SELECT *,
                    count(*) OVER w6 AS window_months,
                    stddev_pop(clean_income) OVER w6 / nullif(avg(clean_income) OVER w6, 0) AS cv6,
                    median(clean_income) OVER prev6 AS typical_income
                FROM m
                WINDOW w6 AS (PARTITION BY account_id, currency ORDER BY month_on ROWS BETWEEN 5 PRECEDING AND CURRENT ROW),
                       prev6 AS (PARTITION BY account_id, currency ORDER BY month_on ROWS BETWEEN 6 PRECEDING AND 1 PRECEDING)
            )
            SELECT *, CASE WHEN window_months >= 4 THEN cv6 END AS income_cv,
                   related_out / nullif(outflow, 0) AS related_out_share
            FROM w""",
        ),
        (
            "large_outflows",
            """
            SELECT t.txn_id, t.account_id, t.currency, t.month_on, t.booked_at, -t.amount AS amount_out,
                   m.typical_income,
                   CASE WHEN m.typical_income IS NULL THEN 50000
                        ELSE greatest(2 * m.typical_income, 20000) END AS limit_amount
            FROM transactions t JOIN account_months m USING (account_id, currency, month_on)
            WHERE t.amount < 0 AND NOT t.is_own
              AND -t.amount >= CASE WHEN m.typical_income IS NULL THEN 50000
                                    ELSE greatest(2 * m.typical_income, 20000) END""",
        ),
    ]


def run(data: Path, db: Path) -> dict:
    db.unlink(missing_ok=True)
    started = time.perf_counter()
    con = duckdb.connect(str(db))
    steps = {}
    for name, sql in models(data):
        t0 = time.perf_counter()
        kind = "VIEW" if name.startswith("ref_") else "TABLE"
        con.execute(f"CREATE OR REPLACE {kind} {name} AS {sql}")
        steps[name] = round(time.perf_counter() - t0, 3)
    con.execute("DROP TABLE stg_transactions")  # a dbt staging model would be ephemeral / a view
    con.close()
    return {
        "wall_s": round(time.perf_counter() - started, 3),
        "steps": steps,
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]), Path(sys.argv[2]))))
