"""Compare the published data tables of two liushui databases, row for row.

    python -m bench.compare_published BEFORE.duckdb AFTER.duckdb

Every table but the run history (dq_results, pipeline_runs) is read whole, without the columns that name a
run (batch_id, seen_at), sorted by every column, and compared exactly. Exit 0 when all are identical. Used to
show that a refactoring changes nothing: run the same inbox through the code before and after into two files.
"""

from __future__ import annotations

import sys

import duckdb

TABLES = (
    "transactions",
    "quarantine",
    "source_files",
    "account_months",
    "transfer_links",
    "risk_flags",
    "account_risk",
)
RUN_SPECIFIC = {"batch_id", "seen_at"}


def compare(before: str, after: str) -> bool:
    left, right = duckdb.connect(before, read_only=True), duckdb.connect(after, read_only=True)
    identical = True
    for table in TABLES:
        columns = [r[0] for r in left.execute(f"DESCRIBE {table}").fetchall() if r[0] not in RUN_SPECIFIC]
        other = [r[0] for r in right.execute(f"DESCRIBE {table}").fetchall() if r[0] not in RUN_SPECIFIC]
        if columns != other:
            print(f"{table}: columns differ: {sorted(set(columns) ^ set(other))}")
            identical = False
            continue
        select = ", ".join(f'"{c}"' for c in columns)
        a = left.sql(f"SELECT {select} FROM {table} ORDER BY ALL").pl()
        b = right.sql(f"SELECT {select} FROM {table} ORDER BY ALL").pl()
        same = a.equals(b)
        identical &= same
        print(f"{table}: {a.height:,} vs {b.height:,} rows, {'identical' if same else 'DIFFERENT'}")
    return identical


if __name__ == "__main__":
    sys.exit(0 if compare(sys.argv[1], sys.argv[2]) else 1)
