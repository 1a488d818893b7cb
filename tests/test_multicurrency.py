"""An account that pays in two currencies in one month, through the real nightly flow (Prefect's test harness)
into real DuckDB: it publishes, one LARGE_OUTFLOW flag per currency with distinct ids, and an incremental night
ends where a full rebuild over the same files ends.

Before flag ids carried the currency, both LARGE_OUTFLOW flags of such an account had one id, the primary-key
expectation on risk_flags failed, and the night published nothing for any account.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from liushui.config import Settings
from tests.test_flow import assert_same_tables, count, snapshot

AS_OF = date(2026, 9, 15)  # the same as-of month both nights: the second night is incremental
HEADER = "account_id,booked_at,amount,currency,balance_after,counterparty_name,counterparty_account,description\n"
RUN_COLUMNS = ("batch_id", "seen_at")


def _night1() -> str:
    """MC1: CNY salaries (its main currency) and, in June, a large outflow in CNY and one in USD. SC1: one
    currency, one large outflow: an account that has nothing to do with the other's currencies."""
    lines = [
        f"{a},2026-{m:02d}-01 09:00:00,12000.00,CNY,,上海某某科技有限公司,,代发工资"
        for a in ("MC1", "SC1")
        for m in range(1, 10)
    ]
    lines += [
        "MC1,2026-06-15 09:00:00,-30000.00,CNY,,某人,999,转账",
        "MC1,2026-06-16 09:00:00,-25000.00,USD,,Someone,998,transfer",
        "SC1,2026-07-15 09:00:00,-40000.00,CNY,,某人,997,转账",
    ]
    return HEADER + "\n".join(lines) + "\n"


def _night2() -> str:
    """A second USD large outflow of MC1 in June: the USD flag gains evidence, the CNY flag stays."""
    return HEADER + "MC1,2026-06-20 09:00:00,-21000.00,USD,,Someone,998,transfer\n"


def _run(inbox: Path, db: Path):
    from flows.nightly import nightly

    return nightly(Settings(inbox=inbox, database=db, reference_dir=None, as_of=AS_OF))


LARGE_OUTFLOWS = """
    SELECT account_id, currency, period_start_on, metric_value, evidence_txn_ids, flag_id
    FROM risk_flags WHERE flag_code = 'LARGE_OUTFLOW' ORDER BY account_id, currency"""


def test_a_two_currency_account_publishes_and_an_increment_equals_a_full_rebuild(prefect_harness, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "night1.csv").write_text(_night1(), encoding="utf-8")
    db = tmp_path / "incremental.duckdb"
    first = _run(inbox, db)
    assert (first.status, first.mode) == ("published", "full")

    june = date(2026, 6, 1)
    flags = count(db, LARGE_OUTFLOWS)
    assert [f[:4] for f in flags] == [
        ("MC1", "CNY", june, 30000.0),
        ("MC1", "USD", june, 25000.0),
        ("SC1", "CNY", date(2026, 7, 1), 40000.0),
    ]
    assert len({f[5] for f in flags}) == 3  # distinct ids
    assert count(db, "SELECT count(*) = count(DISTINCT flag_id) FROM risk_flags") == [(True,)]
    assert count(db, "SELECT account_id FROM account_risk ORDER BY 1") == [("MC1",), ("SC1",)]

    (inbox / "night2.csv").write_text(_night2(), encoding="utf-8")
    second = _run(inbox, db)
    assert (second.status, second.mode) == ("published", "incremental")
    assert second.counts["rows_new"] == 1
    usd = [f for f in count(db, LARGE_OUTFLOWS) if f[1] == "USD"]
    assert [(f[3], len(f[4])) for f in usd] == [(25000.0, 2)]  # the same flag (same id), one more evidence row
    assert usd[0][5] == flags[1][5]

    rebuilt = tmp_path / "rebuilt.duckdb"
    assert _run(inbox, rebuilt).mode == "full"
    assert_same_tables(snapshot(db, drop=RUN_COLUMNS), snapshot(rebuilt, drop=RUN_COLUMNS))
