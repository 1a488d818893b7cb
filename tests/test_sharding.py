"""Scale-out: a sharded run (account-hash shards on a Dask LocalCluster) publishes exactly the tables of
a single-process run."""

from __future__ import annotations

import shutil

from flows.nightly import run_nightly
from liushui.config import Settings
from tests.test_flow import assert_same_tables, snapshot

IGNORE = ("batch_id", "seen_at")


def test_sharded_run_on_a_local_dask_cluster_equals_the_single_process_run(prefect_harness, sample_dir, tmp_path):
    inbox = tmp_path / "inbox"
    shutil.copytree(sample_dir / "inbox", inbox)
    single = tmp_path / "single.duckdb"
    sharded = tmp_path / "sharded.duckdb"
    run_nightly(Settings(inbox=inbox, database=single, reference_dir=sample_dir / "reference"))
    report = run_nightly(
        Settings(inbox=inbox, database=sharded, reference_dir=sample_dir / "reference", shards=4, dask_local=True)
    )
    assert report.status == "published"
    assert_same_tables(snapshot(single, drop=IGNORE), snapshot(sharded, drop=IGNORE))


def test_sequential_shards_equal_the_single_process_run(prefect_harness, sample_dir, tmp_path):
    inbox = tmp_path / "inbox"
    shutil.copytree(sample_dir / "inbox", inbox)
    single = tmp_path / "single.duckdb"
    sharded = tmp_path / "sharded.duckdb"
    run_nightly(Settings(inbox=inbox, database=single, reference_dir=sample_dir / "reference"))
    run_nightly(Settings(inbox=inbox, database=sharded, reference_dir=sample_dir / "reference", shards=3))
    assert_same_tables(snapshot(single, drop=IGNORE), snapshot(sharded, drop=IGNORE))
