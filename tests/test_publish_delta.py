"""Incremental publish writes only the difference, and ends exactly where a full rebuild ends.

Literal rows for every account-scoped table: a full publish of accounts A, B and C, then an incremental
publish of A and B with rows that stay, change (a cent, a list's order, a NULL), vanish or are new. The
published tables must equal a full rebuild of the same end state, only the changed rows may be written,
and a failure anywhere inside the publish must leave exactly the old state.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import polars as pl
import pytest

from liushui import store
from liushui.contracts import ACCOUNT_MONTHS, ACCOUNT_RISK, RISK_FLAGS, TRANSACTIONS, TRANSFER_LINKS, Table

SCOPED = (TRANSACTIONS, ACCOUNT_MONTHS, TRANSFER_LINKS, RISK_FLAGS, ACCOUNT_RISK)


def _default(column) -> object:
    dtype = column.dtype
    if dtype == pl.String:
        return column.name
    if dtype == pl.Int64:
        return 0
    if dtype == pl.Float64:
        return None if column.nullable else 0.0
    if dtype == pl.Boolean:
        return False
    if dtype == pl.Date:
        return date(2026, 10, 1)
    if isinstance(dtype, pl.Datetime):
        return datetime(2026, 10, 1, 9, 0)
    if isinstance(dtype, pl.Decimal):
        return Decimal("0.00")
    if isinstance(dtype, pl.List):
        return []
    raise AssertionError(f"no default for {column.name} {dtype}")


def row(table: Table, **values) -> dict:
    unknown = set(values) - set(table.names)
    assert not unknown, unknown
    return {c.name: values.get(c.name, _default(c)) for c in table.columns}


def frame(table: Table, rows: list[dict]) -> pl.DataFrame:
    return table.conform(pl.DataFrame(rows, schema=table.polars_schema, orient="row")).collect()


def txn(txn_id: str, account: str, amount: str, **values) -> dict:
    return row(TRANSACTIONS, txn_id=txn_id, account_id=account, amount=Decimal(amount), **values)


def month(account: str, month_on: date, clean_income: str, **values) -> dict:
    return row(
        ACCOUNT_MONTHS,
        account_id=account,
        month_on=month_on,
        currency="CNY",
        clean_income=Decimal(clean_income),
        **values,
    )


def link(link_id: str, account: str, evidence: list[str], **values) -> dict:
    return row(TRANSFER_LINKS, link_id=link_id, account_id=account, evidence_txn_ids=evidence, **values)


def flag(flag_id: str, account: str, metric: float, **values) -> dict:
    return row(RISK_FLAGS, flag_id=flag_id, account_id=account, metric_value=metric, **values)


def risk(account: str, score: float, flags: list[str], **values) -> dict:
    return row(ACCOUNT_RISK, account_id=account, score=score, active_flags=flags, **values)


OCT, SEP = date(2026, 10, 1), date(2026, 9, 1)

BEFORE = {
    "transactions": [
        txn("A-1", "A", "100.00"),  # stays
        txn("A-2", "A", "-20.00", description="房租"),  # changes by one cent
        txn("A-3", "A", "5.00"),  # vanishes
        txn("B-1", "B", "7.00", lender_id=None),  # NULL becomes a value
        txn("B-2", "B", "8.00", description=None),  # stays, with NULLs
        txn("C-1", "C", "9.99"),  # not affected
    ],
    "account_months": [
        month("A", SEP, "100.00", income_cv=float("nan")),  # stays, NaN included
        month("A", OCT, "80.00", closing_balance=None),  # closing balance appears
        month("B", OCT, "15.00"),  # stays
        month("C", OCT, "9.99"),
    ],
    "transfer_links": [
        link("L-1", "A", ["A-1", "A-2"]),  # list order changes
        link("L-2", "B", ["B-1", None]),  # stays, NULL inside the list
        link("L-3", "B", ["B-2"]),  # vanishes
        link("L-4", "C", ["C-1"]),
    ],
    "risk_flags": [
        flag("F-1", "A", 0.5),  # stays
        flag("F-2", "B", 0.25, reason_en="old reason"),  # text changes
        flag("F-3", "C", 1.0),
    ],
    "account_risk": [
        risk("A", 10.0, ["F"], remediation_en=["a", "b"]),  # list gains an item
        risk("B", 0.0, []),  # empty list stays (not NULL)
        risk("C", 5.0, ["X"]),
    ],
}

# The recomputed rows of the affected accounts A and B.
RECOMPUTED = {
    "transactions": [
        txn("A-1", "A", "100.00"),
        txn("A-2", "A", "-20.01", description="房租"),
        txn("A-4", "A", "42.00", booked_on=date(2026, 10, 31)),  # new
        txn("B-1", "B", "7.00", lender_id="lender_x"),
        txn("B-2", "B", "8.00", description=None),
    ],
    "account_months": [
        month("A", SEP, "100.00", income_cv=float("nan")),
        month("A", OCT, "80.00", closing_balance=Decimal("12.34")),
        month("B", OCT, "15.00"),
        month("B", date(2026, 11, 1), "1.00"),  # new
    ],
    "transfer_links": [
        link("L-1", "A", ["A-2", "A-1"]),
        link("L-2", "B", ["B-1", None]),
    ],
    "risk_flags": [
        flag("F-1", "A", 0.5),
        flag("F-2", "B", 0.25, reason_en="new reason"),
        flag("F-4", "A", 2.0),  # new
    ],
    "account_risk": [
        risk("A", 10.0, ["F"], remediation_en=["a", "b", "c"]),
        risk("B", 0.0, []),
    ],
}

# Rows the delta must write: (deleted, inserted) per table.
EXPECTED_DELTA = {
    "transactions": {"deleted": 3, "inserted": 3},  # B-1 out, B-1 in
    "account_months": {"deleted": 1, "inserted": 2},  # A/OCT changed, B/NOV new
    "transfer_links": {"deleted": 2, "inserted": 1},  # L-1 changed, L-3 gone
    "risk_flags": {"deleted": 1, "inserted": 2},  # F-2 changed, F-4 new
    "account_risk": {"deleted": 1, "inserted": 1},  # A changed
}


def frames_of(rows: dict[str, list[dict]], kind: str, where: Path) -> dict:
    """The tables as the flow hands them over: in-memory frames, or Parquet files (one or several)."""
    out: dict = {}
    for table in SCOPED:
        data = frame(table, rows[table.name])
        if kind == "frame":
            out[table.name] = data
        elif kind == "parquet":
            out[table.name] = where / f"{table.name}.parquet"
            data.write_parquet(out[table.name])
        else:  # several Parquet files, as a sharded run writes them (one may be empty)
            parts = [data.head(1), data.slice(1), data.clear()]
            out[table.name] = [where / f"{table.name}_{i}.parquet" for i in range(len(parts))]
            for part, path in zip(parts, out[table.name], strict=True):
                part.write_parquet(path)
    return out


def snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    return {t.name: con.sql(f'SELECT * FROM "{t.name}"').pl().sort(list(t.primary_key)) for t in SCOPED}


def assert_same(left: dict[str, pl.DataFrame], right: dict[str, pl.DataFrame]) -> None:
    for name in left:
        assert left[name].height == right[name].height, name
        assert left[name].equals(right[name]), f"{name} differs:\n{left[name]}\n{right[name]}"


def expected_end_state(tmp_path: Path) -> dict[str, pl.DataFrame]:
    """A full rebuild: the unaffected account's old rows plus the recomputed ones, published at once."""
    rebuilt = {t.name: RECOMPUTED[t.name] + [r for r in BEFORE[t.name] if r["account_id"] == "C"] for t in SCOPED}
    with store.writer(tmp_path / "rebuild.duckdb") as con:
        store.publish(con, frames_of(rebuilt, "frame", tmp_path), affected_accounts=None)
        return snapshot(con)


@pytest.fixture
def published(tmp_path):
    db = tmp_path / "delta.duckdb"
    with store.writer(db) as con:
        store.publish(con, frames_of(BEFORE, "frame", tmp_path), affected_accounts=None)
    return db


AFFECTED = pl.Series("account_id", ["B", "A", "A"])  # unsorted, repeated: as callers may pass it


@pytest.mark.parametrize("kind", ["frame", "parquet", "parquet_parts"])
def test_incremental_publish_equals_full_rebuild_and_writes_only_changes(tmp_path, published, kind):
    expected = expected_end_state(tmp_path)
    with store.writer(published) as con:
        written = store.publish(con, frames_of(RECOMPUTED, kind, tmp_path), affected_accounts=AFFECTED)
        assert written == EXPECTED_DELTA
        assert_same(snapshot(con), expected)
        # nothing staged outlives the publish
        assert con.sql("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall() == []


def test_republishing_the_same_rows_writes_nothing(tmp_path, published):
    with store.writer(published) as con:
        before = snapshot(con)
        affected = pl.Series("account_id", ["A", "B", "C"])
        written = store.publish(con, frames_of(BEFORE, "parquet", tmp_path), affected_accounts=affected)
        assert written == {t.name: {"deleted": 0, "inserted": 0} for t in SCOPED}
        assert_same(snapshot(con), before)


def test_unaffected_accounts_and_history_tables_are_untouched(tmp_path, published):
    with store.writer(published) as con:
        store.publish(con, frames_of(RECOMPUTED, "frame", tmp_path), affected_accounts=AFFECTED)
        assert con.execute("SELECT amount FROM transactions WHERE account_id = 'C'").fetchall() == [(Decimal("9.99"),)]
        assert con.execute("SELECT evidence_txn_ids FROM transfer_links WHERE link_id = 'L-4'").fetchall() == [
            (["C-1"],)
        ]


def test_failure_mid_publish_rolls_back_to_exactly_the_old_state(tmp_path, published, monkeypatch):
    """The first tables' differences are already written when a later table fails: nothing may stay."""
    real = store._write_delta
    calls = []

    def failing_after_two_tables(con, table, frame):
        calls.append(table.name)
        if len(calls) == 3:
            raise RuntimeError("disk full (simulated)")
        return real(con, table, frame)

    with store.writer(published) as con:
        before = snapshot(con)
        monkeypatch.setattr(store, "_write_delta", failing_after_two_tables)
        with pytest.raises(RuntimeError, match="simulated"):
            store.publish(con, frames_of(RECOMPUTED, "parquet", tmp_path), affected_accounts=AFFECTED)
        assert calls == ["transactions", "account_months", "transfer_links"]
        assert_same(snapshot(con), before)
        # the connection is clean afterwards: the same publish succeeds and lands the rebuild's state
        monkeypatch.setattr(store, "_write_delta", real)
        store.publish(con, frames_of(RECOMPUTED, "parquet", tmp_path), affected_accounts=AFFECTED)
        assert_same(snapshot(con), expected_end_state(tmp_path))


def test_a_repeated_key_still_fails_and_rolls_back(tmp_path, published):
    """A recomputed frame with the same row twice fails on the primary key, as a plain insert would,
    even when that row is unchanged (a set difference alone would silently drop the duplicate)."""
    doubled = dict(RECOMPUTED)
    doubled["account_risk"] = RECOMPUTED["account_risk"] + [RECOMPUTED["account_risk"][1]]  # unchanged row B
    with store.writer(published) as con:
        before = snapshot(con)
        with pytest.raises(duckdb.ConstraintException):
            store.publish(con, frames_of(doubled, "frame", tmp_path), affected_accounts=AFFECTED)
        assert_same(snapshot(con), before)


def test_crash_before_commit_leaves_the_old_state_on_disk(tmp_path, published):
    """A process that dies inside the publish (no ROLLBACK, no COMMIT) leaves the file as it was."""
    import multiprocessing

    with store.writer(published) as con:
        before = snapshot(con)
    paths = frames_of(RECOMPUTED, "parquet", tmp_path)
    ctx = multiprocessing.get_context("spawn")
    child = ctx.Process(target=_publish_then_die, args=(str(published), {k: str(v) for k, v in paths.items()}))
    child.start()
    child.join(60)
    assert child.exitcode == 17
    with store.writer(published) as con:
        assert_same(snapshot(con), before)


def _publish_then_die(db: str, paths: dict[str, str]) -> None:
    import os

    from liushui import store as child_store

    real = child_store._write_delta

    def die_after_transactions(con, table, frame):
        written = real(con, table, frame)
        if table.name == "account_months":
            os._exit(17)
        return written

    child_store._write_delta = die_after_transactions
    with child_store.writer(Path(db)) as con:
        child_store.publish(
            con, {k: Path(v) for k, v in paths.items()}, affected_accounts=pl.Series("account_id", ["A", "B"])
        )
