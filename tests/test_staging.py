"""Out-of-core ingest: files staged one at a time, the night split into account-hash shards, each shard
deduplicated on its own — and the result equals the in-memory ingest, for any number of shards."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from liushui.ingest.inbox import ingest_files
from liushui.ingest.staging import night_tables, shard_night, stage_files

HEADER = "account_id,booked_at,amount,currency,balance_after,counterparty_name,counterparty_account,description\n"
DAY1 = (
    "A1,2026-01-05 10:00:00,8000.00,CNY,8000.00,公司,,代发工资\n"
    "A1,2026-01-06 12:00:00,-100.50,CNY,7899.50,美团,,外卖\n"
    "B2,2026-01-06 09:00:00,-2000.00,CNY,,,A1,转账\n"
)
DAY2 = (  # re-exports A1's 6 January row, adds one row each for A1 and C3, and one bad row
    "A1,2026-01-06 12:00:00,-100.50,CNY,7899.50,美团,,外卖\n"
    "A1,2026-01-07 08:00:00,-20.00,CNY,7879.50,地铁,,交通\n"
    "C3,2026-01-07 09:00:00,15.00,CNY,,,,退款\n"
    "C3,not a date,15.00,CNY,,,,退款\n"
)
LATEST = date(2026, 11, 28)


def write(path: Path, text: str) -> Path:
    path.write_text(HEADER + text, encoding="utf-8")
    return path


def stage(paths: list[Path], directory: Path, known: set[str] | None = None):
    return stage_files(
        paths, directory=directory, known_file_hashes=known or set(), batch_id="b1", latest_booking=LATEST
    )


def in_memory(paths: list[Path], known_txn: set[str] | None = None):
    known_txn = known_txn or set()
    return ingest_files(
        paths,
        known_file_hashes=set(),
        batch_id="b1",
        latest_booking=LATEST,
        is_known_txn=lambda ids: ids.is_in(pl.Series(list(known_txn), dtype=pl.String).implode()),
    )


def rows(paths: list[Path]) -> pl.DataFrame:
    return pl.read_parquet(paths).sort("txn_id") if paths else pl.DataFrame()


@pytest.mark.parametrize("shards", [1, 2, 5])
def test_sharded_night_equals_the_in_memory_ingest(tmp_path, shards):
    files = [write(tmp_path / "day1.csv", DAY1), write(tmp_path / "day2.csv", DAY2)]
    staged = stage(files, tmp_path / "staged")
    night = shard_night(staged.files, None, shards=shards, directory=tmp_path / "shards")
    source_files, quarantine = night_tables(staged, night)
    expected = in_memory(files)

    assert staged.rows == 6 and night.rows_new == 5
    assert rows(night.new).equals(expected.transactions.sort("txn_id"))
    assert rows(night.canonical).equals(expected.transactions.sort("txn_id"))
    assert source_files.drop("seen_at").equals(expected.source_files.drop("seen_at"))
    assert source_files.select("file_name", "rows_duplicate").rows() == [("day1.csv", 0), ("day2.csv", 1)]
    assert quarantine.equals(expected.quarantine) and quarantine["source_row"].to_list() == [4]


def test_every_account_lives_in_one_shard(tmp_path):
    staged = stage([write(tmp_path / "day1.csv", DAY1), write(tmp_path / "day2.csv", DAY2)], tmp_path / "s")
    night = shard_night(staged.files, None, shards=3, directory=tmp_path / "shards")
    owners = pl.concat(
        [
            pl.read_parquet(p).select("account_id").unique().with_columns(shard=pl.lit(i))
            for i, p in enumerate(night.canonical)
        ]
    )
    assert owners["account_id"].is_unique().all()
    assert sorted(owners["account_id"]) == ["A1", "B2", "C3"]


def test_history_wins_and_its_rows_are_not_new(tmp_path):
    first = in_memory([write(tmp_path / "day1.csv", DAY1)]).transactions
    history = tmp_path / "history.parquet"
    first.write_parquet(history)
    staged = stage([write(tmp_path / "day2.csv", DAY2)], tmp_path / "staged")
    night = shard_night(staged.files, history, shards=2, directory=tmp_path / "shards")
    source_files, _ = night_tables(staged, night)

    new = rows(night.new)
    assert sorted(new["description"]) == ["交通", "退款"]  # the re-exported 外卖 row is already published
    assert source_files["rows_duplicate"].to_list() == [1]
    canonical = rows(night.canonical)
    assert canonical.height == 5
    # the published copy is kept, with its own batch and source file
    kept = canonical.filter(pl.col("description") == "外卖")
    assert kept["source_file"].to_list() == ["day1.csv"]
    assert canonical.equals(
        pl.concat([first, in_memory([tmp_path / "day2.csv"]).transactions])
        .unique("txn_id", keep="first")
        .sort("txn_id")
    )


def test_an_empty_night_yields_empty_shards(tmp_path):
    staged = stage([], tmp_path / "staged")
    night = shard_night(staged.files, None, shards=2, directory=tmp_path / "shards")
    assert staged.rows == 0 and night.rows_new == 0 and len(night.shards) == 2
    assert all(pl.read_parquet(p).is_empty() for p in night.canonical)
    source_files, quarantine = night_tables(staged, night)
    assert source_files.is_empty() and quarantine.is_empty()


def test_a_known_file_is_skipped_while_staging(tmp_path):
    from liushui.file_hashes import file_sha256

    day1 = write(tmp_path / "day1.csv", DAY1)
    staged = stage([day1], tmp_path / "staged", known={file_sha256(day1)})
    assert (staged.skipped_files, staged.rows, staged.files, staged.file_rows) == (1, 0, [], [])


_ROW = st.tuples(
    st.sampled_from(["A1", "B2", "C3", "D4", "E5"]), st.integers(1, 28), st.sampled_from(["-1.00", "2.50", "100.00"])
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.lists(st.lists(_ROW, min_size=0, max_size=8), min_size=1, max_size=4), shards=st.integers(1, 4))
def test_any_split_into_shards_keeps_exactly_the_in_memory_rows(tmp_path_factory, files, shards):
    tmp = tmp_path_factory.mktemp("night")
    paths = [
        write(tmp / f"f{i}.csv", "".join(f"{a},2026-01-{d:02d} 10:00:00,{x},CNY,,,,\n" for a, d, x in rows_))
        for i, rows_ in enumerate(files)
    ]
    staged = stage(paths, tmp / "staged")
    night = shard_night(staged.files, None, shards=shards, directory=tmp / "shards")
    expected = in_memory(paths)
    got = rows(night.new)
    assert got.height == expected.transactions.height == night.rows_new
    if got.height:
        assert got.equals(expected.transactions.sort("txn_id"))
    source_files, _ = night_tables(staged, night)
    assert source_files.drop("seen_at").equals(expected.source_files.drop("seen_at"))
