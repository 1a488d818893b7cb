"""Peer (c), the floor: one DuckDB scan of every file summing amounts per account (no dedup, no
classification, no write). Nothing that reads these files can be faster than this on this machine.
Run as `python -m bench.peer_floor DATA_DIR`; prints a JSON line."""

from __future__ import annotations

import json
import resource
import sys
import time
from pathlib import Path

import duckdb


def run(data: Path) -> dict:
    inbox = data / "inbox"
    csvs = sorted(str(p) for p in inbox.glob("*.csv"))
    parquets = sorted(str(p) for p in inbox.glob("*.parquet"))
    started = time.perf_counter()
    con = duckdb.connect()
    sources = []  # an inbox of one format has no files of the other
    if csvs:
        sources.append(f"""
                SELECT account_id, amount FROM read_csv({csvs!r}, header = true, delim = ',', quote = '"',
                    columns = {{'account_id': 'VARCHAR', 'txn_id': 'VARCHAR', 'booked_at': 'VARCHAR',
                               'amount': 'DECIMAL(18,2)', 'currency': 'VARCHAR', 'balance_after': 'VARCHAR',
                               'counterparty_name': 'VARCHAR', 'counterparty_account': 'VARCHAR',
                               'description': 'VARCHAR', 'channel': 'VARCHAR'}})""")
    if parquets:
        sources.append(f"SELECT account_id, amount FROM read_parquet({parquets!r})")
    n = con.execute(f"""
        SELECT count(*), sum(total) FROM (
            SELECT account_id, sum(amount) AS total FROM ({" UNION ALL ".join(sources)}) GROUP BY account_id
        )""").fetchone()
    con.close()
    return {
        "wall_s": round(time.perf_counter() - started, 3),
        "accounts": n[0],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


if __name__ == "__main__":
    print(json.dumps(run(Path(sys.argv[1]))))
