"""The `liushui` command line: run the nightly job, generate sample data, look at the results.

Every command that reads results opens DuckDB read-only. Errors a user can cause (bad paths, a locked
database, invalid config, a blocking data-quality failure) are printed as one clear message with a
non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Iterable, Sequence
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Annotated, Any, NoReturn

import duckdb
import polars as pl
import typer
from rich.console import Console
from rich.table import Table as RichTable

from liushui import queries
from liushui.config import DEFAULT_DATA_DIR, DEFAULT_DATABASE, ConfigError, Settings
from liushui.runtime import configure_environment, use_prefect_home
from liushui.store import DatabaseBusy, StoreError, reader, run_lock

configure_environment()

app = typer.Typer(
    name="liushui",
    help="Bank-statement analytics: inbox of exports -> canonical transactions -> explained risk flags in DuckDB.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err = Console(stderr=True, soft_wrap=True)

DEFAULT_DB = DEFAULT_DATABASE
Database = Annotated[Path, typer.Option("--db", help="DuckDB file.")]

EXIT_ERROR = 1
# 2: a wrong option or argument (click's own code for usage errors).
EXIT_NOTHING_LOADED = 3
"""Published, but at least one file of the night loaded no row (rejected, all rows quarantined, empty)."""
EXIT_QUARANTINED = 4
"""Published, with some rows quarantined (each with its reason in `quarantine`)."""
EXIT_BLOCKED = 5
"""A blocking data-quality expectation failed; nothing was published."""
EXIT_BUSY = 75
"""Another run holds the database (sysexits' EX_TEMPFAIL: try again later)."""


class _NoTraceback(logging.Filter):
    """Prefect logs a failed flow's exception with its traceback. For the errors `run` reports itself as one
    clear message (a locked database, bad config, a blocked publish), keep Prefect's line, drop the traceback."""

    def __init__(self, reported: tuple[type[BaseException], ...]) -> None:
        super().__init__()
        self.reported = reported

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], self.reported):
            record.exc_info, record.exc_text = None, None
        return True


def _fail(message: str, code: int = EXIT_ERROR) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False)
    raise typer.Exit(code)


@app.command()
def run(
    inbox: Annotated[Path, typer.Option(help="Folder of exports (CSV / Parquet).")] = DEFAULT_DATA_DIR / "inbox",
    db: Database = DEFAULT_DB,
    reference: Annotated[
        Path | None, typer.Option(help="Folder with accounts.csv / related_parties.csv (optional).")
    ] = None,
    rules: Annotated[Path | None, typer.Option(help="Rules file (default config/rules.yaml).")] = None,
    as_of: Annotated[str | None, typer.Option(help="As-of date YYYY-MM-DD (default: latest booking).")] = None,
    profile: Annotated[str | None, typer.Option(help="Force this layout profile for bank exports.")] = None,
    profiles: Annotated[
        Path | None,
        typer.Option(
            "--profiles",
            envvar="LIUSHUI_PROFILES",
            help="Folder of your own layout profiles (YAML), merged with the shipped ones (same name: yours wins).",
        ),
    ] = None,
    full_rebuild: Annotated[bool, typer.Option(help="Recompute every account, not only affected ones.")] = False,
    lock_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for another run using the database (default 600).")
    ] = None,
    shards: Annotated[int, typer.Option(help="Split per-account work into at least N account-hash shards.")] = 1,
    shard_rows: Annotated[
        int, typer.Option(help="Rows per shard (history included); more rows, more shards, less memory.")
    ] = 2_000_000,
    dask_address: Annotated[str | None, typer.Option(help="Run the shards on this Dask scheduler.")] = None,
    dask_local: Annotated[bool, typer.Option(help="Run the shards on a local Dask cluster.")] = False,
) -> None:
    """Run the nightly job once.

    Example: liushui run --inbox data/sample/inbox --reference data/sample/reference
    """
    try:
        as_of_on = date.fromisoformat(as_of) if as_of else None
    except ValueError as exc:
        _fail(f"invalid parameter --as-of: {exc}")
    settings = _settings(
        inbox,
        db,
        reference,
        rules,
        as_of=as_of_on,
        profile=profile,
        **({"profiles_dir": _profiles_dir(profiles)} if profiles is not None else {}),
        full_rebuild=full_rebuild,
        shards=shards,
        shard_rows=shard_rows,
        dask_address=dask_address,
        dask_local=dask_local,
        **({"lock_timeout_s": lock_timeout} if lock_timeout is not None else {}),
    )
    print(f"liushui: run on {settings.database}", file=sys.stderr, flush=True)
    try:
        # The lock before the expensive start-up (Prefect, the libraries): of two runs started together the
        # first to ask goes first, and a busy database is refused without starting anything.
        with run_lock(settings.database, timeout_s=settings.lock_timeout_s):
            from flows.nightly import PublishBlocked, run_nightly

            logging.getLogger("prefect.flow_runs").addFilter(_NoTraceback((PublishBlocked, ConfigError, StoreError)))
            try:
                report = run_nightly(settings)
            except PublishBlocked as exc:
                _fail(str(exc), EXIT_BLOCKED)
    except DatabaseBusy as exc:
        _fail(str(exc), EXIT_BUSY)
    except (ConfigError, StoreError) as exc:
        _fail(str(exc))
    console.print(f"[bold green]{report.status}[/] {report.message}", highlight=False)
    for problem in report.files_loading_nothing:
        err.print(f"[yellow]loaded nothing:[/] {problem}", highlight=False)
    _print_published(settings.database)
    raise typer.Exit(run_exit_code(report.files_loading_nothing, report.counts.get("rows_quarantined", 0)))


def _profiles_dir(profiles: Path) -> Path:
    """The --profiles folder, resolved; an error when it does not exist."""
    if not profiles.is_dir():
        _fail(f"profiles folder {profiles} does not exist")
    return profiles.resolve()


def run_exit_code(files_loading_nothing: list[str], rows_quarantined: int) -> int:
    """0 when every row loaded; 3 when a file loaded nothing; else 4 when some rows were quarantined."""
    if files_loading_nothing:
        return EXIT_NOTHING_LOADED
    return EXIT_QUARANTINED if rows_quarantined else 0


def _print_published(database: Path) -> None:
    con = _open(database)
    try:
        counts = queries.published_row_counts(con)
    finally:
        con.close()
    table = RichTable(title=f"Published in {database}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in counts.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    console.print(
        "Look at it:  liushui flags  |  liushui account ACCOUNT_ID  |  "
        'liushui query "SELECT flag_code, count(*) FROM risk_flags GROUP BY 1"',
        highlight=False,
    )


def _open(database: Path) -> duckdb.DuckDBPyConnection:
    try:
        return reader(database)
    except StoreError as exc:
        _fail(str(exc))


@app.command()
def generate(
    out_dir: Annotated[Path, typer.Argument(help="Folder to write inbox/, reference/ and labels.csv into.")],
    seed: int = 7,
    accounts: Annotated[int, typer.Option(help="Number of accounts.")] = 200,
    months: Annotated[int, typer.Option(help="Months of history.")] = 12,
    rows: Annotated[int | None, typer.Option(help="Target total rows (scales the data).")] = None,
    file_format: Annotated[str, typer.Option("--format", help="csv, parquet or both.")] = "both",
) -> None:
    """Write deterministic sample data with planted behaviours and ground-truth labels.

    Example: liushui generate data/sample --seed 7 --accounts 200 --months 12
    """
    from synthetic.generate import generate_sample

    sample = generate_sample(
        out_dir, seed=seed, n_accounts=accounts, months=months, file_format=file_format, target_rows=rows
    )
    console.print(sample)


@app.command()
def evaluate(
    labels: Annotated[Path, typer.Option(help="The generator's labels.csv (ground truth).")],
    db: Database = DEFAULT_DB,
    output_format: Annotated[str, typer.Option("--format", help="table or json.")] = "table",
) -> None:
    """Recall and precision per planted behaviour (TP / FP / FN; precision against every account without the
    behaviour), and the flags that co-occur on each behaviour's accounts. A behaviour no rule detects yet shows
    as "no rule".

    Example: liushui evaluate --db data/warehouse/liushui.duckdb --labels data/sample/labels.csv
    """
    from synthetic.evaluate import as_json, evaluate_database

    if output_format not in ("table", "json"):
        _fail(f"--format must be table or json, got {output_format!r}", 2)
    if not labels.is_file():
        _fail(f"labels file not found: {labels}", 2)
    con = _open(db)
    try:
        scores, pairs = evaluate_database(labels, con)
    finally:
        con.close()
    if output_format == "json":
        print(as_json(scores, pairs))
        return
    shown = scores.select(
        "behaviour",
        "status",
        flag="flag_code",
        n="labelled",
        TP="true_positive",
        FP="false_positive",
        FN="false_negative",
        recall=_rounded("recall", 3),
        precision=_rounded("precision", 3),
        FP_clean="flagged_clean",
    )
    _print_rows(shown.columns, shown.rows(), title="recall and precision per behaviour (FP: any account without it)")
    pairs = pairs.with_columns(_rounded("share", 3))
    _print_rows(pairs.columns, pairs.rows(), title="flags co-occurring on each behaviour's accounts")


@app.command()
def flags(
    db: Database = DEFAULT_DB,
    code: Annotated[str | None, typer.Option(help="Only this flag code: list its flags.")] = None,
    limit: int = 30,
) -> None:
    """Flags per code (accounts, severity); with --code, the flags of that code.

    Example: liushui flags --code ROUND_TRIP
    """
    con = _open(db)
    try:
        if code is None:
            found = queries.flags_per_code(con).sort("flag_code")
        else:
            found = queries.flags_of_code(con, code, limit=limit).select(
                "account_id",
                "period_start_on",
                "period_end_on",
                _rounded("metric_value", 2).alias("metric"),
                "threshold",
                "limit_name",
                "severity",
                "reason_en",
            )
    finally:
        con.close()
    _print_rows(found.columns, found.rows(), title="risk flags")


def _print_rows(names: Sequence[str], rows: Iterable[Sequence[object]], *, title: str) -> None:
    """Print rows as a table, NULL as an empty cell."""
    table = RichTable(title=title)
    for name in names:
        table.add_column(name, overflow="fold")
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    console.print(table)


def _round(value: float, digits: int) -> float:
    """`value` rounded as DuckDB's round() does it (half away from zero, on the exact binary value), as these
    views have always printed it; Python's round() takes a tie to the even digit."""
    if not math.isfinite(value):
        return value
    return float(Decimal(value).quantize(Decimal(1).scaleb(-digits), rounding=ROUND_HALF_UP))


def _rounded(column: str, digits: int) -> pl.Expr:
    return pl.col(column).map_elements(lambda v: _round(v, digits), return_dtype=pl.Float64)


@app.command()
def account(
    account_id: Annotated[str, typer.Argument(help="Account id.")],
    db: Database = DEFAULT_DB,
) -> None:
    """One account: risk and recovery, what would restore it, monthly figures, flags with evidence.

    Example: liushui account 6214830624453336
    """
    con = _open(db)
    try:
        risk = queries.account_risk(con, account_id)
        if risk is None:
            _fail(f"no account {account_id!r} in {db}")
        months = queries.account_months(con, account_id, main_currency_only=False)
        flagged = queries.account_flags(con, account_id)
    finally:
        con.close()
    since, trend, burden = risk["months_since_severe"], risk["clean_income_trend_pct"], risk["debt_burden_last"]
    console.print(
        f"[bold]account {account_id}[/] as of {risk['as_of_on']}: score [bold]{risk['score']:.0f}[/] "
        f"({risk['band']}), recovery [bold]{risk['recovery_status']}[/]"
        + (f", {since} clean month(s) since the last severe flag" if since is not None else "")
        + f"; statement trust {risk['statement_trust']}; clean income trend "
        f"{_round(trend, 1) if trend is not None else '-'} %/month; "
        f"debt burden {_round(burden, 2) if burden is not None else '-'}",
        highlight=False,
    )
    console.print(
        f"active flags: {', '.join(risk['active_flags']) or 'none'}  points: {risk['score_components_json']}",
        highlight=False,
    )
    for zh, en in zip(risk["remediation_zh"], risk["remediation_en"], strict=True):
        console.print(f"  • {en}\n    {zh}", highlight=False)
    months = months.select(
        "month_on",
        "currency",
        pl.col("is_full_month").alias("full"),
        "inflow",
        "outflow",
        "clean_income",
        "related_out",
        "loan_repaid",
        _rounded("debt_burden_trailing", 2).alias("debt_burden"),
        pl.col("lenders_active_90d").alias("lenders_90d"),
        pl.col("large_outflow_count").alias("large_n"),
        _rounded("income_cv", 2),
        "closing_balance",
    )
    _print_rows(months.columns, months.rows(), title=f"account {account_id}: months")
    ids = pl.col("evidence_txn_ids")
    flagged = flagged.select(
        "flag_code",
        "period_start_on",
        "severity",
        "reason_zh",
        "reason_en",
        evidence=pl.concat_str(
            ids.list.head(5).list.join(" "),
            pl.when(ids.list.len() > 5).then(pl.format(" … ({})", ids.list.len())).otherwise(pl.lit("")),
        ),
    )
    _print_rows(flagged.columns, flagged.rows(), title=f"account {account_id}: flags")


@app.command()
def report(
    account_id: Annotated[str, typer.Argument(help="Account id.")],
    db: Database = DEFAULT_DB,
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML page here.")] = None,
) -> None:
    """One account's report: risk and recovery, monthly clean income / outflow / debt burden, flags with
    reasons and evidence, what would restore it. --html writes a page that opens offline.

    Example: liushui report 6214830624453336 --html report.html
    """
    from apps.report import AccountNotFound, account_report, render_html, render_terminal

    try:
        result = account_report(db, account_id)
    except (AccountNotFound, StoreError) as exc:
        _fail(str(exc))
    render_terminal(result, console)
    if html is not None:
        html.write_text(render_html(result), encoding="utf-8")
        console.print(f"wrote {html}", highlight=False)


def _settings(inbox: Path, db: Path, reference: Path | None, rules: Path | None, **options: Any) -> Settings:
    """The run's settings from the command line, checked before anything expensive starts; points Prefect at
    the database's own home (created on demand), so call it before Prefect is imported."""
    try:
        settings = Settings(
            inbox=inbox.resolve(),
            database=db.resolve(),
            reference_dir=reference.resolve() if reference else None,
            **({"rules_path": rules.resolve()} if rules else {}),
            **options,
        )
    except ValueError as exc:
        _fail(f"invalid parameter: {exc}")
    if not settings.inbox.is_dir():
        _fail(f"inbox folder {settings.inbox} does not exist")
    if settings.reference_dir is not None and not settings.reference_dir.is_dir():
        _fail(f"reference folder {settings.reference_dir} does not exist")
    if not settings.rules_path.is_file():
        _fail(f"rules file {settings.rules_path} does not exist")
    use_prefect_home(settings.database)
    return settings


@app.command()
def serve(
    inbox: Annotated[Path, typer.Option(help="Folder of exports (CSV / Parquet).")] = DEFAULT_DATA_DIR / "inbox",
    db: Database = DEFAULT_DB,
    reference: Annotated[Path | None, typer.Option(help="Folder with accounts.csv / related_parties.csv.")] = None,
    rules: Annotated[Path | None, typer.Option(help="Rules file (default config/rules.yaml).")] = None,
    cron: Annotated[str, typer.Option(help="Schedule (cron, in --timezone).")] = "0 2 * * *",
    timezone: Annotated[str, typer.Option(help="Timezone of the cron.")] = "Asia/Shanghai",
    api_url: Annotated[
        str | None,
        typer.Option(help="Prefect API (default PREFECT_API_URL, else a local server started for this process)."),
    ] = None,
) -> None:
    """Run the nightly job on a schedule until SIGTERM (docs/operations.md).

    Example: liushui serve --inbox data/inbox --reference data/reference
    """
    from flows.deploy import ServerError
    from flows.deploy import serve as serve_nightly

    settings = _settings(inbox, db, reference, rules)
    try:
        serve_nightly(settings, cron=cron, timezone=timezone, api_url=api_url)
    except (ServerError, ValueError) as exc:
        _fail(str(exc))


@app.command()
def backfill(
    start: Annotated[str, typer.Option(help="First date YYYY-MM-DD (its month end is the first as-of).")],
    end: Annotated[str, typer.Option(help="Last as-of date YYYY-MM-DD (inclusive).")],
    inbox: Annotated[Path, typer.Option(help="Folder of exports (CSV / Parquet).")] = DEFAULT_DATA_DIR / "inbox",
    db: Database = DEFAULT_DB,
    reference: Annotated[Path | None, typer.Option(help="Folder with accounts.csv / related_parties.csv.")] = None,
    rules: Annotated[Path | None, typer.Option(help="Rules file (default config/rules.yaml).")] = None,
) -> None:
    """Rebuild as of every month end from --start to --end (and --end itself); the database ends as of --end.

    Example: liushui backfill --start 2026-07-01 --end 2026-10-15 --inbox data/inbox
    """
    from flows.deploy import backfill as run_backfill
    from flows.nightly import PublishBlocked

    settings = _settings(inbox, db, reference, rules)
    try:
        reports = run_backfill(settings, start=date.fromisoformat(start), end=date.fromisoformat(end))
    except PublishBlocked as exc:
        _fail(str(exc), EXIT_BLOCKED)
    except DatabaseBusy as exc:
        _fail(str(exc), EXIT_BUSY)
    except (ConfigError, StoreError, ValueError) as exc:
        _fail(str(exc))
    for r in reports:
        console.print(f"[bold green]{r.status}[/] as of {r.as_of}: {r.message}", highlight=False)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="A SQL query (the database is opened read-only).")],
    db: Database = DEFAULT_DB,
) -> None:
    """Run an ad-hoc read-only SQL query against the published tables.

    Example: liushui query "SELECT * FROM v_flag_counts_by_month"
    """
    con = _open(db)
    try:
        result = con.sql(sql)
        _print_rows(result.columns, result.fetchall(), title="query")
    except duckdb.Error as exc:
        _fail(f"query failed: {exc}")
    finally:
        con.close()


@app.command()
def dashboard(
    db: Database = DEFAULT_DB,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8501,
) -> None:
    """Start the Streamlit dashboard (reads the database read-only).

    Example: liushui dashboard --db data/warehouse/liushui.duckdb   then open http://127.0.0.1:8501
    """
    from apps.dashboard import launch

    raise typer.Exit(launch(db.resolve(), port))


@app.command()
def docs() -> None:
    """Regenerate docs/tables.md from the table contracts."""
    from apps.tabledocs import write

    console.print(f"wrote {write()}")


profile_app = typer.Typer(help="Layout profiles of bank exports: check how a file would be read.", no_args_is_help=True)
app.add_typer(profile_app, name="profile")


@profile_app.command("check")
def profile_check(
    file: Annotated[Path, typer.Argument(help="One export file (CSV, Parquet, Excel).")],
    profile: Annotated[str | None, typer.Option(help="Read it with this layout profile (default: detect).")] = None,
    profiles: Annotated[
        Path | None,
        typer.Option(
            "--profiles", envvar="LIUSHUI_PROFILES", help="Folder of your own layout profiles, merged with the shipped."
        ),
    ] = None,
    rows: Annotated[int, typer.Option(help="How many parsed rows to show.")] = 5,
) -> None:
    """What a run would make of FILE, without Prefect or the database: the matching profile (and any other
    that matches too), the first rows as parsed, every row that would be quarantined with its reason and
    line, totals in / out per currency. Exit 0: every row parses; 4: some rows would be quarantined;
    3: nothing would load.

    Example: liushui profile check statement.csv --profiles my_profiles
    """
    from liushui.ingest.profile_check import check_file, render

    if not file.is_file():
        _fail(f"file {file} does not exist")
    report = check_file(file, profile=profile, profiles_dir=_profiles_dir(profiles) if profiles is not None else None)
    for line in render(report, first_rows=rows):
        typer.echo(line)
    raise typer.Exit(report.exit_code)


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
