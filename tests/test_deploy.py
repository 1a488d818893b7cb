"""Nightly operations: the deployment as registered with a Prefect server, a run with its parameters, the
run artifacts, prefect.yaml, and the backfill over month ends (real flow, Prefect's test harness)."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import polars as pl
import pytest
import yaml

from flows.deploy import DEPLOYMENT_NAME, backfill, backfill_dates, nightly_deployment
from liushui import store
from liushui.config import PROJECT_ROOT, Settings


def fetch(db: Path, sql: str, params: list | None = None) -> list[tuple]:
    con = store.reader(db)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


@pytest.fixture
def inbox(tmp_path, sample_dir) -> Path:
    shutil.copytree(sample_dir / "inbox", tmp_path / "inbox")
    return tmp_path / "inbox"


# Backfill dates ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (date(2026, 3, 15), date(2026, 5, 10), [date(2026, 3, 31), date(2026, 4, 30), date(2026, 5, 10)]),
        (date(2026, 1, 1), date(2026, 2, 28), [date(2026, 1, 31), date(2026, 2, 28)]),
        (date(2024, 2, 1), date(2024, 2, 29), [date(2024, 2, 29)]),
        (date(2025, 12, 31), date(2026, 1, 31), [date(2025, 12, 31), date(2026, 1, 31)]),
        (date(2026, 5, 3), date(2026, 5, 3), [date(2026, 5, 3)]),
    ],
)
def test_backfill_dates_are_month_ends_and_the_end(start, end, expected):
    assert backfill_dates(start, end) == expected


def test_backfill_end_before_start_is_refused():
    with pytest.raises(ValueError, match="before its start"):
        backfill_dates(date(2026, 5, 1), date(2026, 4, 30))


# Deployment --------------------------------------------------------------------------------------------
def test_deployment_registers_with_cron_timezone_and_parameters_and_runs_with_them(
    prefect_harness, inbox, sample_dir, tmp_path
):
    from prefect import get_client

    from flows.nightly import nightly

    settings = Settings(inbox=inbox, database=tmp_path / "w.duckdb", reference_dir=sample_dir / "reference")
    deployment_id = nightly_deployment(settings).apply()
    with get_client(sync_client=True) as client:
        registered = client.read_deployment(deployment_id)
    assert registered.name == DEPLOYMENT_NAME
    [schedule] = registered.schedules
    assert (schedule.schedule.cron, schedule.schedule.timezone, schedule.active) == ("0 2 * * *", "Asia/Shanghai", True)
    assert registered.parameters == {"settings": json.loads(settings.model_dump_json())}
    assert "settings" in registered.parameter_openapi_schema["properties"]  # typed, enforced by the server

    # What the scheduler would start: the flow called with the registered (JSON) parameters.
    report = nightly(**registered.parameters)
    assert (report.status, report.mode) == ("published", "full")
    assert fetch(settings.database, "SELECT count(*) FROM pipeline_runs WHERE status = 'published'") == [(1,)]


def test_prefect_yaml_describes_the_nightly_deployment():
    from prefect.flows import load_flow_from_entrypoint

    config = yaml.safe_load((PROJECT_ROOT / "prefect.yaml").read_text(encoding="utf-8"))
    [deployment] = [d for d in config["deployments"] if d["name"] == DEPLOYMENT_NAME]
    [schedule] = deployment["schedules"]
    assert (schedule["cron"], schedule["timezone"]) == ("0 2 * * *", "Asia/Shanghai")
    assert deployment["work_pool"]["name"]
    flow = load_flow_from_entrypoint(str(PROJECT_ROOT / deployment["entrypoint"]))
    assert flow.name == "liushui-nightly"
    settings = Settings.model_validate(deployment["parameters"]["settings"])  # valid, typed parameters
    assert settings.as_of is None and not settings.inbox.is_absolute()


# Artifacts ---------------------------------------------------------------------------------------------
def test_run_artifacts_are_created_and_attached_to_the_flow_run(prefect_harness, published_db, tmp_path):
    from prefect import flow, get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId
    from prefect.runtime import flow_run

    from expectations.runner import validate_tables
    from flows import artifacts
    from flows.run_report import RunReport

    [(run_id, as_of, counts)] = fetch(published_db, "SELECT run_id, as_of_on, counts_json FROM pipeline_runs")
    report = RunReport(run_id=run_id, status="published", as_of=as_of, counts=json.loads(counts), message="full run")
    frames = {"quarantine": pl.DataFrame({"source_file": ["x.csv"]})}
    gx_results = validate_tables(frames, run_id=run_id).gx_results

    @flow(name="artifacts-probe")
    def probe() -> str:
        docs = artifacts.build_run_data_docs(gx_results, tmp_path / "w.duckdb", run_id)
        artifacts.publish_run_artifacts(report, published_db, docs)
        return flow_run.id

    run = probe()
    with get_client(sync_client=True) as client:
        made = client.read_artifacts(artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run])))
    by_key = {a.key: a for a in made}
    assert set(by_key) == {
        artifacts.KEY_SUMMARY,
        artifacts.KEY_FLAGS,
        artifacts.KEY_QUARANTINE,
        artifacts.KEY_DATA_QUALITY,
        artifacts.KEY_DATA_DOCS,
    }
    assert run_id in by_key[artifacts.KEY_SUMMARY].data and "published" in by_key[artifacts.KEY_SUMMARY].data

    flags = json.loads(by_key[artifacts.KEY_FLAGS].data)
    expected = dict(fetch(published_db, "SELECT flag_code, count(*) FROM risk_flags GROUP BY 1"))
    assert dict(zip(flags["flag_code"], flags["flags"], strict=True)) == expected

    quarantine = json.loads(by_key[artifacts.KEY_QUARANTINE].data)
    assert (
        sum(quarantine["rows"])
        == fetch(published_db, "SELECT count(*) FROM quarantine WHERE batch_id = ?", [run_id])[0][0]
    )
    failed = json.loads(by_key[artifacts.KEY_DATA_QUALITY].data)
    assert (
        len(failed["expectation"])
        == fetch(published_db, "SELECT count(*) FROM dq_results WHERE run_id = ? AND NOT success", [run_id])[0][0]
    )
    index = tmp_path / "gx_docs" / run_id / "index.html"
    assert index.is_file() and index.as_uri() in by_key[artifacts.KEY_DATA_DOCS].data


def test_artifacts_never_fail_a_published_run(tmp_path, capsys):
    from flows import artifacts
    from flows.run_report import RunReport

    artifacts.publish_run_artifacts(RunReport(run_id="r1"), tmp_path / "missing.duckdb", None)
    assert "Prefect artifacts of run r1 not created" in capsys.readouterr().err


# Backfill ----------------------------------------------------------------------------------------------
BACKFILL_START, BACKFILL_END = date(2026, 8, 1), date(2026, 9, 30)  # the sample's data runs to 2026-10-31


@pytest.fixture(scope="module")
def backfilled(prefect_harness, sample_dir, tmp_path_factory):
    work = tmp_path_factory.mktemp("backfill")
    shutil.copytree(sample_dir / "inbox", work / "inbox")
    settings = Settings(inbox=work / "inbox", database=work / "w.duckdb", reference_dir=sample_dir / "reference")
    return settings, backfill(settings, start=BACKFILL_START, end=BACKFILL_END)


def test_backfill_publishes_one_full_run_per_as_of_date(backfilled):
    settings, reports = backfilled
    assert [(r.as_of, r.status, r.mode) for r in reports] == [
        (date(2026, 8, 31), "published", "full"),
        (date(2026, 9, 30), "published", "full"),
    ]
    runs = fetch(settings.database, "SELECT run_id, as_of_on, status FROM pipeline_runs ORDER BY started_at")
    assert runs == [(r.run_id, r.as_of, "published") for r in reports]


def test_backfill_leaves_the_state_of_its_last_date(backfilled):
    settings, _ = backfilled
    assert fetch(settings.database, "SELECT DISTINCT as_of_on FROM account_risk") == [(BACKFILL_END,)]
    [(last_month, last_flag_end)] = fetch(
        settings.database,
        """
        SELECT (SELECT max(month_on) FROM account_months), (SELECT max(period_end_on) FROM risk_flags)""",
    )
    assert last_month <= date(2026, 9, 1) and last_flag_end <= BACKFILL_END  # nothing judged after the as-of


def test_backfill_keeps_every_row_and_equals_one_run_as_of_its_end(backfilled, published_db, tmp_path):
    from flows.nightly import nightly

    settings, _ = backfilled
    # rows booked after the as-of date are kept in transactions, only left out of the signals
    assert fetch(settings.database, "SELECT count(*) FROM transactions") == fetch(
        published_db, "SELECT count(*) FROM transactions"
    )
    assert fetch(settings.database, "SELECT count(*) FROM quarantine") == fetch(
        published_db, "SELECT count(*) FROM quarantine"
    )
    single = settings.model_copy(update={"database": tmp_path / "single.duckdb", "as_of": BACKFILL_END})
    nightly(single)
    for table, key in (
        ("account_risk", "account_id"),
        ("risk_flags", "flag_id"),
        ("account_months", "account_id, month_on, currency"),
    ):
        assert fetch(settings.database, f"SELECT * FROM {table} ORDER BY {key}") == fetch(
            single.database, f"SELECT * FROM {table} ORDER BY {key}"
        ), table
