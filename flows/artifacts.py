"""What a run leaves in Prefect for the people watching it: a summary, flags per code, quarantine per file
and reason, failed expectations, and the Data Docs of the run.

Called at the end of the nightly flow, after the publish (the writer is closed: everything here reads
DuckDB read-only), for published, unchanged and blocked runs alike. Artifact keys are fixed, so Prefect's
UI shows each one's history run after run (keys: lowercase letters, digits and dashes, Prefect's rule).

Both functions run after the publish, so a failure here (Prefect API down, Data Docs template broken) is
reported on stderr and never turns a published run into a failed one.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import polars as pl
from prefect import task
from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from flows.run_report import RunReport
from liushui import queries, store

KEY_SUMMARY = "liushui-run-summary"
KEY_FLAGS = "liushui-flags-by-code"
KEY_QUARANTINE = "liushui-quarantine"
KEY_DATA_QUALITY = "liushui-data-quality"
KEY_DATA_DOCS = "liushui-data-docs"
DATA_DOCS_KEEP_RUNS = 60
"""Data Docs folders kept next to the database (each ~4 MB): two months of nightly runs."""


def _warn(what: str, exc: Exception) -> None:
    print(f"liushui: warning: {what}: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)


@task(name="data-docs", cache_policy=NO_CACHE)
def build_run_data_docs(
    gx_results: Mapping[str, Sequence[Any]], database: Path, run_id: str, *, keep_runs: int = DATA_DOCS_KEEP_RUNS
) -> Path | None:
    """The run's Data Docs under `<database folder>/gx_docs/<run_id>/` (older runs pruned to `keep_runs`);
    their index.html, or None when they could not be built (warned on stderr)."""
    from expectations.datadocs import build_data_docs, data_docs_dir, prune_data_docs

    try:
        index = build_data_docs(gx_results, data_docs_dir(database, run_id), run_id=run_id)
        prune_data_docs(database, keep=keep_runs)
        return index
    except Exception as exc:  # noqa: BLE001 - the run has published; docs are a view of it
        _warn(f"Data Docs of run {run_id} not built", exc)
        return None


def _columns(frame: pl.DataFrame) -> dict[str, list[Any]]:
    """Columns -> JSON-safe values (money and dates as text, as Python prints them)."""
    plain = (bool, int, float, str, type(None))
    return {n: [v if isinstance(v, plain) else str(v) for v in frame[n].to_list()] for n in frame.columns}


def run_tables(database: Path, run_id: str) -> dict[str, dict[str, list[Any]]]:
    """The tables the artifacts show, read-only: flags per code (the published state), this run's
    quarantine per file and reason, and this run's failed expectations."""
    con = store.reader(database)
    try:
        flags = queries.flags_per_code(con).drop("rule_version")
        quarantine = queries.quarantine_of_batch(con, run_id)
        failed = queries.dq_failed(con, run_id)
    finally:
        con.close()
    # The artifact's own columns and row order (by level, then table), as its history in Prefect has them.
    failed = failed.select(
        "table_name", "expectation", "column_name", "level", "unexpected_count", "element_count", "detail"
    ).sort("level", "table_name", "expectation", "column_name", nulls_last=True)
    return {KEY_FLAGS: _columns(flags), KEY_QUARANTINE: _columns(quarantine), KEY_DATA_QUALITY: _columns(failed)}


def _summary_markdown(report: RunReport, tables: dict[str, dict[str, list[Any]]], data_docs: Path | None) -> str:
    dq = tables[KEY_DATA_QUALITY]
    blocking = sum(1 for level in dq["level"] if level == "blocking")
    quarantined = sum(tables[KEY_QUARANTINE]["rows"])
    lines = [
        f"# liushui run {report.run_id}",
        "",
        f"**{report.status}** ({report.mode}) as of {report.as_of}",
        "",
        report.message.replace("\n", "  \n"),
        "",
        "| count | value |",
        "|---|---:|",
        *(f"| {k} | {v:,} |" for k, v in sorted(report.counts.items())),
        "",
        f"Flags published: {sum(tables[KEY_FLAGS]['flags']):,} in {len(tables[KEY_FLAGS]['flag_code'])} code(s). "
        f"Rows quarantined by this run: {quarantined:,}. "
        f"Failed expectations: {len(dq['level'])} ({blocking} blocking).",
        "",
        "Stage seconds: " + json.dumps(report.stage_seconds),
    ]
    if report.files_loading_nothing:
        lines += ["", "Files that loaded nothing:", *(f"- {e}" for e in report.files_loading_nothing)]
    if data_docs is not None:
        lines += ["", f"Data Docs: [{data_docs}]({data_docs.resolve().as_uri()})"]
    return "\n".join(lines) + "\n"


def publish_run_artifacts(report: RunReport, database: Path, data_docs: Path | None) -> None:
    """Create the run's Prefect artifacts (inside the flow run: they attach to it). Call after the writer
    closed. Never raises: a failure is warned on stderr."""
    try:
        tables = run_tables(database, report.run_id)
        create_markdown_artifact(
            _summary_markdown(report, tables, data_docs),
            key=KEY_SUMMARY,
            description=f"liushui run {report.run_id}: {report.status}",
        )
        create_table_artifact(
            tables[KEY_FLAGS], key=KEY_FLAGS, description="Published risk flags per code (all accounts, current state)"
        )
        create_table_artifact(
            tables[KEY_QUARANTINE], key=KEY_QUARANTINE, description="Rows this run quarantined, per file and reason"
        )
        create_table_artifact(
            tables[KEY_DATA_QUALITY], key=KEY_DATA_QUALITY, description="Expectations that failed in this run"
        )
        if data_docs is not None:
            create_link_artifact(
                data_docs.resolve().as_uri(),
                link_text=f"Data Docs of run {report.run_id}",
                key=KEY_DATA_DOCS,
                description="Great Expectations Data Docs (local file)",
            )
    except Exception as exc:  # noqa: BLE001 - the run has published; artifacts only describe it
        _warn(f"Prefect artifacts of run {report.run_id} not created", exc)
