"""The run's decisions (transforms/scope.py): literal inputs, exact decisions."""

from __future__ import annotations

from datetime import UTC, date, datetime

import polars as pl
import pytest

from transforms import scope

ACCOUNTS = pl.DataFrame(
    {
        "account_id": ["A1", "A2", "B1", "C1"],
        "customer_id": ["CA", "CA", "CB", "CC"],
        "holder_name": ["甲", "甲", "乙", "丙"],
        "account_type": ["personal"] * 4,
    }
)


@pytest.mark.parametrize(
    ("full_rebuild", "last_run", "fingerprint", "as_of", "mode"),
    [
        (False, None, "f1", date(2026, 6, 4), "full"),  # first run
        (False, ("f1", "2026-06"), "f1", date(2026, 6, 4), "incremental"),
        (False, ("f1", "2026-06"), "f1", date(2026, 6, 30), "incremental"),  # the month's last day
        (False, ("f1", "2026-06"), "f1", date(2026, 7, 1), "full"),  # the as-of month moved
        (False, ("f1", "2026-06"), "f2", date(2026, 6, 4), "full"),  # rules / reference / schema changed
        (True, ("f1", "2026-06"), "f1", date(2026, 6, 4), "full"),  # asked for
        (False, ("f1", "2026-07"), "f1", date(2026, 6, 20), "full"),  # an explicit earlier as-of
    ],
)
def test_run_mode(full_rebuild, last_run, fingerprint, as_of, mode):
    assert scope.run_mode(full_rebuild=full_rebuild, last_run=last_run, fingerprint=fingerprint, as_of=as_of) == mode


@pytest.mark.parametrize(
    ("explicit", "published_max", "tonight_max", "expected"),
    [
        (None, date(2026, 6, 3), date(2026, 6, 4), date(2026, 6, 4)),
        (None, date(2026, 6, 5), date(2026, 6, 4), date(2026, 6, 5)),  # a late row does not move it back
        (None, None, date(2026, 6, 4), date(2026, 6, 4)),  # first night
        (None, date(2026, 6, 3), None, date(2026, 6, 3)),  # nothing new tonight
        (None, None, None, date(2026, 12, 1)),  # empty database, empty inbox: today
        (date(2026, 5, 31), date(2026, 6, 3), date(2026, 6, 4), date(2026, 5, 31)),  # asked for wins
    ],
)
def test_as_of_date(explicit, published_max, tonight_max, expected):
    got = scope.as_of_date(
        explicit=explicit, published_max=published_max, tonight_max=tonight_max, today=date(2026, 12, 1)
    )
    assert got == expected


@pytest.mark.parametrize(
    ("as_of", "now_utc", "expected"),
    [
        (None, datetime(2026, 12, 1, 10, 0, tzinfo=UTC), date(2026, 12, 2)),
        (None, datetime(2026, 12, 1, 16, 30, tzinfo=UTC), date(2026, 12, 3)),  # 00:30 on the 2nd in Shanghai
        (None, datetime(2026, 12, 1, 15, 59, tzinfo=UTC), date(2026, 12, 2)),  # 23:59 on the 1st in Shanghai
        (date(2027, 1, 15), datetime(2026, 12, 1, 10, 0, tzinfo=UTC), date(2027, 1, 15)),  # a later as-of
        (date(2026, 6, 30), datetime(2026, 12, 1, 10, 0, tzinfo=UTC), date(2026, 12, 2)),  # a past as-of
    ],
)
def test_latest_plausible_booking_is_tomorrow_in_bank_local_time(as_of, now_utc, expected):
    assert scope.latest_plausible_booking(as_of=as_of, now_utc=now_utc) == expected


def test_affected_accounts_are_the_new_rows_accounts_their_siblings_and_named_counterparties():
    new = pl.DataFrame({"account_id": ["A1", "Z9"], "counterparty_account": ["B1", "6222000011112222"]})
    # A1's sibling A2 (same customer), B1 named as counterparty; Z9 (no reference) itself; C1 untouched
    assert scope.affected_accounts(new, ACCOUNTS).to_list() == ["A1", "A2", "B1", "Z9"]


def test_affected_accounts_of_an_empty_night_are_none():
    new = pl.DataFrame(
        {"account_id": [], "counterparty_account": []},
        schema={"account_id": pl.String, "counterparty_account": pl.String},
    )
    assert scope.affected_accounts(new, ACCOUNTS).to_list() == []


def test_accounts_to_recompute_add_the_cross_account_changes():
    new = pl.DataFrame(
        {"account_id": ["B1"], "counterparty_account": [None]},
        schema={"account_id": pl.String, "counterparty_account": pl.String},
    )
    changed = pl.Series("account_id", ["C1", "B1"])
    assert scope.accounts_to_recompute(new, ACCOUNTS, changed).to_list() == ["B1", "C1"]


def _canonical(rows: list[tuple[str, str, str]]) -> pl.LazyFrame:
    return pl.DataFrame(
        {
            "txn_id": [r[0] for r in rows],
            "account_id": [r[1] for r in rows],
            "booked_at": [datetime(2026, 6, 1, 10, 0)] * len(rows),
            "amount": pl.Series([r[2] for r in rows]).cast(pl.Decimal(18, 2)),
            "currency": ["CNY"] * len(rows),
            "source_file": ["f.csv"] * len(rows),
            "source_row": list(range(1, len(rows) + 1)),
            "batch_id": ["b1"] * len(rows),
        }
    ).lazy()


def test_tonight_rows_drop_published_and_repeated_txn_ids_first_delivered_wins():
    published = _canonical([("t1", "A1", "10.00"), ("t2", "A1", "20.00")])
    staged = _canonical([("t2", "A1", "20.00"), ("t3", "A1", "30.00"), ("t3", "A1", "31.00"), ("t4", "B1", "40.00")])
    out = scope.tonight_rows(published, staged).collect()
    assert out.select("txn_id", "account_id", pl.col("amount").cast(pl.String)).rows() == [
        ("t3", "A1", "30.00"),
        ("t4", "B1", "40.00"),
    ]


@pytest.mark.parametrize(
    ("min_shards", "shard_rows", "rows", "expected"),
    [
        (1, 2_000_000, 0, 1),
        (1, 2_000_000, 2_000_000, 1),
        (1, 2_000_000, 2_000_001, 2),
        (4, 2_000_000, 10, 4),
        (1, 1_000, 9_500, 10),
    ],
)
def test_shard_count(min_shards, shard_rows, rows, expected):
    assert scope.shard_count(min_shards=min_shards, shard_rows=shard_rows, rows=rows) == expected
