"""The `liushui` command line: run the nightly job, generate sample data, look at the results.

Every command that reads results opens DuckDB read-only. Errors a user can cause (bad paths, a locked
database, invalid config, a blocking data-quality failure) are printed as one clear message with a
non-zero exit code, never as a traceback.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, NoReturn

import duckdb
import polars as pl
import typer
from rich.console import Console
from rich.table import Table as RichTable
from typer.core import TyperCommand

from apps import tables
from flows.decisions import account_flags as decided_flags
from flows.decisions import decision_text
from liushui import queries
from liushui.config import DEFAULT_DATA_DIR, DEFAULT_DATABASE, ConfigError, Settings
from liushui.contracts import RECOVERY_STATUSES, RISK_BANDS
from liushui.runtime import configure_environment, use_prefect_home, use_running_server
from liushui.store import DatabaseBusy, StoreError, reader, run_lock
from transforms.registry import FLAG_CODES, RULES

if TYPE_CHECKING:
    from flows.run_report import RunReport

Lang = Literal["both", "zh", "en"]
"""`report --lang`: the language(s) of reasons and remediation (`apps.report.Lang`)."""

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
EXIT_USAGE = 2
"""A wrong option or argument (click's own code for usage errors), or a `reingest` file that is not known."""
EXIT_NOTHING_LOADED = 3
"""Published, but at least one file of the night loaded no row (rejected, all rows quarantined, empty)."""
EXIT_QUARANTINED = 4
"""Published, with some rows quarantined (each with its reason in `quarantine`)."""
EXIT_BLOCKED = 5
"""A blocking data-quality expectation failed; nothing was published."""
EXIT_BUSY = 75
"""Another run holds the database (sysexits' EX_TEMPFAIL: try again later)."""


class _NoTraceback(logging.Filter):
    """Prefect logs a failed flow's or task's exception with its traceback. For the errors `run` reports itself as
    one clear message (every error: a locked database, bad config, a blocked publish, and an unforeseen one, whose
    traceback goes to a file), keep Prefect's line, drop the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and isinstance(record.exc_info[1], Exception):
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
    _run_and_exit(settings)


@app.command()
def reingest(
    file: Annotated[str, typer.Argument(help="The file to read again: its path, its file name or its sha256.")],
    inbox: Annotated[Path, typer.Option(help="Folder of exports (CSV / Parquet).")] = DEFAULT_DATA_DIR / "inbox",
    db: Database = DEFAULT_DB,
    reference: Annotated[
        Path | None, typer.Option(help="Folder with accounts.csv / related_parties.csv (optional).")
    ] = None,
    rules: Annotated[Path | None, typer.Option(help="Rules file (default config/rules.yaml).")] = None,
    as_of: Annotated[str | None, typer.Option(help="As-of date YYYY-MM-DD (default: latest booking).")] = None,
    profile: Annotated[str | None, typer.Option(help="Force this layout profile for the file.")] = None,
    profiles: Annotated[
        Path | None,
        typer.Option(
            "--profiles",
            envvar="LIUSHUI_PROFILES",
            help="Folder of your own layout profiles (YAML), merged with the shipped ones (same name: yours wins).",
        ),
    ] = None,
) -> None:
    """Read one known file of the inbox again with today's profiles and replace its rows (transactions,
    quarantine, source_files and every signal), in one transaction; the run is recorded with mode reingest.
    Exit 2: no such known file in the inbox; 3: it would load no row now (nothing changed).

    Example: liushui reingest statement_march.csv --inbox data/inbox --profiles my_profiles
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
        reingest=str(Path(file).resolve()) if Path(file).is_file() else file,
        **({"profiles_dir": _profiles_dir(profiles)} if profiles is not None else {}),
    )
    _run_and_exit(settings)


def _run_and_exit(settings: Settings) -> NoReturn:
    """Run the flow once, print its outcome and what was published, and exit with the run's code."""
    print(f"liushui: run on {settings.database}", file=sys.stderr, flush=True)
    try:
        # The lock before the expensive start-up (Prefect, the libraries): of two runs started together the
        # first to ask goes first, and a busy database is refused without starting anything.
        with run_lock(settings.database, timeout_s=settings.lock_timeout_s):
            from flows.noop import nothing_new_run
            from flows.run_report import new_run_id

            # A night with nothing to do is answered and recorded without starting Prefect (flows/noop.py).
            quiet = nothing_new_run(settings, new_run_id())
            if quiet is not None:
                _finish(settings, quiet)

            # A local server kept for this database (`liushui serve`, `liushui prefect-server`) saves Prefect's
            # temporary one (~10 s of every run); the run then shows in that server's UI.
            server = use_running_server(Path(os.environ["PREFECT_HOME"]))
            if server:
                print(f"liushui: Prefect API {server} (the local server kept for this database)", file=sys.stderr)
            from flows.nightly import PublishBlocked, run_nightly
            from flows.tasks import ReingestError, ReingestRefused

            # Every failure is reported below as one message (an unforeseen one with its traceback in a file).
            for logger in ("prefect.flow_runs", "prefect.task_runs"):
                logging.getLogger(logger).addFilter(_NoTraceback())
            try:
                report = run_nightly(settings)
            except PublishBlocked as exc:
                _fail(str(exc), EXIT_BLOCKED)
            except ReingestRefused as exc:
                _fail(str(exc), EXIT_NOTHING_LOADED)
            except ReingestError as exc:
                _fail(str(exc), EXIT_USAGE)
    except DatabaseBusy as exc:
        _fail(str(exc), EXIT_BUSY)
    except (ConfigError, StoreError) as exc:
        _fail(str(exc))
    except typer.Exit:
        raise
    except Exception as exc:  # noqa: BLE001 - a bug, a full disk, an I/O error: one clear line, not a traceback
        _unforeseen(settings, exc)
    _finish(settings, report)


def _unforeseen(settings: Settings, exc: Exception) -> NoReturn:
    """A failure nobody foresaw: say what failed and that nothing was published (the publish is atomic, and last);
    the traceback goes to a file beside the database (else the temporary folder) for whoever debugs it."""
    import tempfile
    import traceback

    name = f"{settings.database.stem}.last-error.log"
    written = None
    for path in (settings.database.parent / name, Path(tempfile.gettempdir()) / f"liushui-{name}"):
        try:
            path.write_text("".join(traceback.format_exception(exc)), encoding="utf-8")
        except OSError:
            continue
        written = path
        break
    _fail(
        f"the run failed: {type(exc).__name__}: {exc}. Nothing was published; the previous state is kept."
        + (f" The traceback is in {written}." if written else "")
    )


def _finish(settings: Settings, report: RunReport) -> NoReturn:
    """Print the run's closing line, its problems and warnings and what is published; exit with its code."""
    console.print(f"[bold green]{report.status}[/] {report.message}", highlight=False)
    for problem in report.files_loading_nothing:
        err.print(f"[yellow]loaded nothing:[/] {problem}", highlight=False)
    for warning in report.warnings:
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
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
        recall="recall",
        precision="precision",
        FP_clean="flagged_clean",
    )
    _print_table(shown, title="recall and precision per behaviour (FP: any account without it)")
    _print_table(pairs, title="flags co-occurring on each behaviour's accounts")


NAME_ZH = {rule.code: rule.name_zh for rule in RULES}
"""Flag code -> its Chinese name (多头借贷, 以贷养贷, 刷流水 ...), from the rule registry."""


def _one_of(allowed: Sequence[str], what: str) -> Callable[[Any], Any]:
    """An option callback refusing values outside `allowed` as a usage error (exit 2)."""

    def check(value: Any) -> Any:
        for v in value if isinstance(value, list | tuple) else [value]:
            if v is not None and v not in allowed:
                raise typer.BadParameter(f"{v!r} is not a {what}; one of: {', '.join(allowed)}")
        return value

    return check


FlagCode = Annotated[
    str | None, typer.Option("--code", help="A flag code, e.g. ROUND_TRIP.", callback=_one_of(FLAG_CODES, "flag code"))
]
Output = Annotated[Path | None, typer.Option("--output", "-o", help="Write to this file instead of stdout.")]
ListFormat = Annotated[
    tables.ListFormat, typer.Option("--format", help="table (for reading), csv or json (JSON Lines): docs/cli.md.")
]


def _with_names(frame: pl.DataFrame) -> pl.DataFrame:
    """`name_zh` (the code's Chinese name) right after `flag_code`."""
    named = frame.with_columns(name_zh=pl.col("flag_code").replace_strict(NAME_ZH, default=""))
    at = named.columns.index("flag_code") + 1
    return named.select([*named.columns[:at], "name_zh", *[c for c in named.columns[at:] if c != "name_zh"]])


def _print_table(frame: pl.DataFrame, *, title: str) -> None:
    """A table of fetched rows on stdout (rich in a terminal, plain aligned columns in a pipe)."""
    with _stdout_closed_ok():
        tables.write_table(frame.columns, frame.rows(), sys.stdout, terminal=sys.stdout.isatty(), title=title)


def _write(frame: pl.DataFrame, output_format: tables.Format, output: Path | None, *, title: str) -> None:
    with _stdout_closed_ok():
        try:
            tables.write_frame(frame, output_format, output, title=title)
        except (tables.OutputError, OSError) as exc:
            _fail(str(exc))


@contextmanager
def _stdout_closed_ok() -> Iterator[None]:
    """A reader that stops early (`| head`) is not an error: no traceback, exit 0."""
    try:
        yield
        sys.stdout.flush()
    except BrokenPipeError:
        # Python flushes stdout again at exit; point it at nothing so that flush cannot fail.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise typer.Exit(0) from None


def _cut_note(what: str, rest: str) -> None:
    """Say on stderr that the rows shown are not all (stdout keeps only the rows)."""
    err.print(f"({what}; {rest})", highlight=False, markup=False)


@app.command()
def flags(
    db: Database = DEFAULT_DB,
    code: FlagCode = None,
    limit: Annotated[int, typer.Option(min=1, help="With --code: at most this many flags, newest first.")] = 30,
    output_format: ListFormat = "table",
    output: Output = None,
) -> None:
    """Flags per code (accounts, severity); with --code, the flags of that code, newest first, each active (it
    counts in its account's score as of the as-of date) or past.

    Example: liushui flags --code ROUND_TRIP
    """
    con = _open(db)
    try:
        if code is None:
            found = _with_names(queries.flags_per_code(con).sort("flag_code"))
            cut = False
        else:
            found = queries.flags_of_code_with_status(con, code, limit=limit + 1)
            cut, found = found.height > limit, found.head(limit)
    finally:
        con.close()
    if code is not None:
        found = _with_names(found).with_columns(
            status=pl.when(pl.col("is_active")).then(pl.lit("active")).otherwise(pl.lit("past"))
        )
        if output_format == "table":
            found = found.select(
                "account_id",
                "status",
                "flag_code",
                "name_zh",
                "period_start_on",
                "period_end_on",
                "currency",
                pl.col("metric_value").alias("metric"),
                "threshold",
                "limit_name",
                "severity",
                "reason_zh",
            )
        else:
            found = found.drop("is_active")
    _write(found, output_format, output, title=f"risk flags {code} {NAME_ZH[code]}" if code else "risk flags")
    if cut:
        _cut_note(f"the newest {limit:,} flags of {code}", "--limit N for more")


@app.command()
def accounts(
    db: Database = DEFAULT_DB,
    band: Annotated[
        list[str] | None,
        typer.Option(help="Only this band (repeat for several).", callback=_one_of(RISK_BANDS, "band")),
    ] = None,
    recovery: Annotated[
        list[str] | None,
        typer.Option(
            help="Only this recovery status (repeat for several).",
            callback=_one_of(RECOVERY_STATUSES, "recovery status"),
        ),
    ] = None,
    code: Annotated[
        str | None,
        typer.Option(help="Only accounts with this flag code active.", callback=_one_of(FLAG_CODES, "flag code")),
    ] = None,
    min_score: Annotated[float | None, typer.Option(min=0, max=100, help="Only a score of at least this.")] = None,
    customer: Annotated[
        str | None,
        typer.Option(help="Only accounts whose customer id or holder name contains this (case-insensitive)."),
    ] = None,
    changed: Annotated[
        bool,
        typer.Option(
            "--changed",
            help="Only accounts that changed in the last publish (new, score, band, recovery, flags), with the change.",
        ),
    ] = False,
    limit: Annotated[int, typer.Option(min=1, help="Table format: at most this many accounts.")] = 100,
    output_format: ListFormat = "table",
    output: Output = None,
) -> None:
    """The worklist: accounts riskiest first (score), with their customer and holder, band, recovery status and
    active flags; every filter given must hold. csv and json list every account that passes.

    Example: liushui accounts --band high --band severe --recovery at_risk --code MULTI_LENDER
    Example: liushui accounts --customer 张
    Example: liushui accounts --changed    (what last night's run changed)
    """
    con = _open(db)
    try:
        found = queries.worklist(
            con,
            bands=band or (),
            recovery_statuses=recovery or (),
            flag_code=code,
            min_score=min_score,
            customer=customer,
        )
    finally:
        con.close()
    if changed:
        found = queries.with_changes(found, queries.previous_risk_state(db)).filter(pl.col("change").is_not_null())
    cut = output_format == "table" and found.height > limit
    if output_format == "table":
        found = found.head(limit)
    _write(found, output_format, output, title=f"accounts ({found.height:,})")
    if cut:
        _cut_note(f"the first {limit:,} accounts", "--limit N for more, --format csv or json for every one")


@app.command()
def account(
    account_id: Annotated[str, typer.Argument(help="Account id.")],
    db: Database = DEFAULT_DB,
) -> None:
    """One account: risk and recovery, what would restore it, monthly figures, flags with evidence (newest
    first).

    Example: liushui account 6214830624453336
    """
    con = _open(db)
    try:
        risk = queries.account_risk(con, account_id)
        if risk is None:
            _fail(f"no account {account_id!r} in {db}")
        months = queries.account_months(con, account_id, main_currency_only=False)
        flagged = decided_flags(con, account_id)
    finally:
        con.close()
    since, trend, burden = risk["months_since_severe"], risk["clean_income_trend_pct"], risk["debt_burden_last"]
    console.print(
        f"[bold]account {account_id}[/] as of {risk['as_of_on']}: score [bold]{risk['score']:.0f}[/] "
        f"({risk['band']}), recovery [bold]{risk['recovery_status']}[/]"
        + (f", {since} clean month(s) since the last severe flag" if since is not None else "")
        + f"; statement trust {risk['statement_trust']}; clean income trend "
        f"{tables.display(trend) or '-'} %/month; "
        f"debt burden {tables.display(burden) or '-'}",
        highlight=False,
    )
    holder = f" ({risk['holder_name']})" if risk["holder_name"] else ""
    console.print(
        f"customer {risk['customer_id']}{holder}: liushui customer {risk['customer_id']}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    active = ", ".join(f"{c} {NAME_ZH.get(c, '')}".strip() for c in risk["active_flags"])
    console.print(f"active flags: {active or 'none'}  points: {risk['score_components_json']}", highlight=False)
    for zh, en in zip(risk["remediation_zh"], risk["remediation_en"], strict=True):
        console.print(f"  • {en}\n    {zh}", highlight=False, markup=False)
    if risk["active_flags"]:
        _print_table(remediation_table(risk), title=f"account {account_id}: what must change, by when")
    months = months.select(
        "month_on",
        "currency",
        pl.col("is_full_month").alias("full"),
        "inflow",
        "outflow",
        "clean_income",
        "related_out",
        "loan_repaid",
        pl.col("debt_burden_trailing").alias("debt_burden"),
        pl.col("lenders_active_90d").alias("lenders_90d"),
        pl.col("large_outflow_count").alias("large_n"),
        "income_cv",
        "closing_balance",
    )
    _print_table(months, title=f"account {account_id}: months")
    ids = pl.col("evidence_txn_ids")
    flagged = _with_names(
        flagged.sort("period_end_on", "period_start_on", descending=True, maintain_order=True).select(
            "flag_code",
            "period_start_on",
            "severity",
            "reason_zh",
            "reason_en",
            evidence=pl.concat_str(
                ids.list.head(5).list.join(" "),
                pl.when(ids.list.len() > 5).then(pl.format(" … ({})", ids.list.len())).otherwise(pl.lit("")),
            ),
            decision=decision_text(),
            decided_by=pl.col("decided_by"),
            decided_at=pl.col("decided_at").dt.strftime("%Y-%m-%d %H:%M"),
            flag_id=pl.col("flag_id"),
        )
    )
    _print_table(flagged, title=f"account {account_id}: flags")


def remediation_table(risk: dict[str, Any]) -> pl.DataFrame:
    """One row per active cause of an account_risk row (its list columns side by side): today's value and the
    month it is measured in, the target, clean months so far and still needed, the date it stops counting and
    the points it adds."""
    return pl.DataFrame(
        {
            "flag_code": risk["active_flags"],
            "name_zh": [NAME_ZH.get(c, "") for c in risk["active_flags"]],
            "now": risk["recovery_now"],
            "now_month": [m.strftime("%Y-%m") if m else None for m in risk["recovery_now_month_on"]],
            "target": risk["recovery_target"],
            "clean_months": risk["recovery_clean_months"],
            "months_needed": risk["recovery_months_needed"],
            "stops_counting_on": risk["recovery_clears_on"],
            "points": risk["recovery_points"],
        },
        schema={
            "flag_code": pl.String,
            "name_zh": pl.String,
            "now": pl.Float64,
            "now_month": pl.String,
            "target": pl.Float64,
            "clean_months": pl.Int64,
            "months_needed": pl.Int64,
            "stops_counting_on": pl.Date,
            "points": pl.Float64,
        },
    )


@app.command()
def customer(
    id_or_name: Annotated[
        str, typer.Argument(metavar="ID_OR_NAME", help="Customer id, part of it or of a holder name, or an account id.")
    ],
    db: Database = DEFAULT_DB,
) -> None:
    """One customer: every account (band, score, recovery, active flags, clean income) and the money moved between
    them. The customer whose id is ID_OR_NAME, else the one customer whose id or holder name contains it
    (case-insensitive) or who owns the account ID_OR_NAME; several matches are listed to choose from.

    Example: liushui customer C1
    """
    con = _open(db)
    try:
        found = queries.customers(con, search=id_or_name)
        exact = found.filter(pl.col("customer_id") == id_or_name)
        chosen = exact if exact.height else found
        if chosen.height == 1:
            customer_id = chosen["customer_id"][0]
            owned = queries.customer_accounts(con, customer_id)
            moved = queries.customer_transfers(con, customer_id)
    finally:
        con.close()
    if chosen.is_empty():
        _fail(f"no customer id or holder name contains {id_or_name!r} in {db}")
    if chosen.height > 1:
        _print_table(chosen, title=f"customers matching {id_or_name}")
        _fail(f"{chosen.height} customers match {id_or_name!r}: give one customer id")
    row = chosen.row(0, named=True)
    names = f" ({row['holder_names']})" if row["holder_names"] else ""
    active = ", ".join(f"{c} {NAME_ZH.get(c, '')}".strip() for c in row["active_flags"])
    console.print(
        f"customer {customer_id}{names}: {row['accounts']} account(s), worst band {row['worst_band']}, "
        f"highest score {tables.display(row['max_score'])}, {row['flagged_accounts']} with active flags: "
        f"{active or 'none'}",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    _print_table(owned.drop("remediation_en"), title=f"customer {customer_id}: accounts")
    for account_id, fixes in zip(owned["account_id"], owned["remediation_en"], strict=True):
        for fix in fixes:
            console.print(f"  • {account_id}: {fix}", highlight=False, markup=False)
    if moved.is_empty():
        console.print("no transfers between its accounts", highlight=False)
    else:
        _print_table(moved, title=f"customer {customer_id}: transfers between its accounts")


_round = tables.round_half_away
"""The CLI's rounding of ratios (tests/test_read_queries.py holds it to DuckDB's round())."""


@app.command()
def report(
    account_id: Annotated[str, typer.Argument(help="Account id.")],
    db: Database = DEFAULT_DB,
    html: Annotated[Path | None, typer.Option("--html", help="Also write a self-contained HTML page here.")] = None,
    lang: Annotated[
        Lang,
        typer.Option(
            "--lang", help="Reasons and remediation in zh (中文), en (English) or both; the HTML page has a switch."
        ),
    ] = "both",
) -> None:
    """One account's report: risk and recovery, monthly clean income / outflow / debt burden, flags with
    reasons and evidence, what would restore it. --html writes a page that opens offline.

    Example: liushui report 6214830624453336 --lang zh --html report.html
    """
    from apps.report import AccountNotFound, account_report, render_html, render_terminal

    try:
        result = account_report(db, account_id)
    except (AccountNotFound, StoreError) as exc:
        _fail(str(exc))
    render_terminal(result, console, lang=lang)
    if html is not None:
        html.write_text(render_html(result, lang=lang), encoding="utf-8")
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


@app.command("prefect-server")
def prefect_server(db: Database = DEFAULT_DB) -> None:
    """Keep a local Prefect API running for the database until SIGTERM or Ctrl-C: every `liushui run` on it
    then uses this server instead of starting Prefect's temporary one (~10 s a run), and its runs show in
    the server's UI. `liushui serve` does the same while it serves (docs/operations.md).

    Example: liushui prefect-server --db data/warehouse/liushui.duckdb
    """
    import threading

    use_prefect_home(db.resolve())
    from flows.deploy import ServerError, local_prefect_server

    try:
        with local_prefect_server() as api_url:
            print(f"liushui: Prefect API {api_url} for {db.resolve()}; stop with SIGTERM or Ctrl-C", file=sys.stderr)
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
    except ServerError as exc:
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


class _SqlFirstCommand(TyperCommand):
    """Takes an argument that starts with a SQL comment (`-- recipe ...`, docs/queries.sql) as the SQL, not as an
    option: an option name never holds whitespace or a line break."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if "--" not in args:
            sql = [a for a in args if _starts_with_sql_comment(a)]
            if sql:
                args = [a for a in args if not _starts_with_sql_comment(a)] + ["--", *sql]
        return super().parse_args(ctx, args)


def _starts_with_sql_comment(arg: str) -> bool:
    return arg.startswith("--") and (arg[2:3].isspace() or "\n" in arg)


def _one_line(exc: BaseException) -> str:
    """DuckDB's message without its caret diagram: the lines before the first blank one, joined."""
    first = str(exc).strip().split("\n\n")[0]
    return " ".join(line.strip() for line in first.splitlines())


@app.command(cls=_SqlFirstCommand)
def query(
    sql: Annotated[
        str | None, typer.Argument(help="A SQL query (the database is opened read-only); '-' reads it from stdin.")
    ] = None,
    file: Annotated[Path | None, typer.Option("--file", "-f", help="Read the SQL from this file ('-': stdin).")] = None,
    db: Database = DEFAULT_DB,
    output_format: Annotated[
        tables.Format, typer.Option("--format", help="table (for reading), csv, json (JSON Lines) or parquet.")
    ] = "table",
    output: Output = None,
    limit: Annotated[
        int | None,
        typer.Option(min=1, help="At most this many rows (table: default 100; csv / json / parquet: default all)."),
    ] = None,
) -> None:
    """Run an ad-hoc read-only SQL query against the published tables. The table format shows the first 100
    rows (and says so when there are more); csv, json and parquet stream every row.

    Example: liushui query "SELECT * FROM v_flag_counts_by_month" --format csv -o counts.csv
    """
    if (sql is None) == (file is None):
        raise typer.BadParameter(
            "give the SQL either as the argument or with --file FILE ('-': stdin)", param_hint="SQL"
        )
    if output_format == "parquet" and output is None:
        raise typer.BadParameter("--format parquet writes a file: add --output FILE", param_hint="--output")
    if file is not None and str(file) != "-":
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            _fail(f"cannot read SQL file {file}: {exc}")
    else:
        text = sys.stdin.read() if (sql is None or sql == "-") else sql
    shown = limit if limit is not None else (DEFAULT_QUERY_ROWS if output_format == "table" else None)
    con = _open(db)
    try:
        with _stdout_closed_ok():
            relation = con.sql(text)
            if relation is None:
                _fail("the SQL holds no query that returns rows (nothing to show)")
            cut = tables.write_relation(relation, output_format, output, limit=shown, title="query")
    except duckdb.Error as exc:
        _fail(f"query failed: {_one_line(exc)}")
    except (tables.OutputError, OSError) as exc:
        _fail(str(exc))
    finally:
        con.close()
    if cut and shown is not None:
        _cut_note(f"the first {shown:,} rows", "--limit N for more, --format csv / json / parquet for every row")


DEFAULT_QUERY_ROWS = 100
"""Rows `liushui query` shows in the table format unless --limit says otherwise."""


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


rules_app = typer.Typer(
    help="Rule files: what a change of thresholds would do, before it is published.", no_args_is_help=True
)
app.add_typer(rules_app, name="rules")


@rules_app.command("diff")
def rules_diff(
    new: Annotated[Path, typer.Argument(metavar="NEW.yaml", help="The rules file to try.")],
    db: Database = DEFAULT_DB,
    rules: Annotated[
        Path | None,
        typer.Option("--rules", help="Compare with a recompute with this rules file (default: the published state)."),
    ] = None,
    reference: Annotated[
        Path | None, typer.Option(help="Reference folder (default: the one the last published run read).")
    ] = None,
    output_format: ListFormat = "table",
    output: Output = None,
) -> None:
    """Recompute every signal of the published transactions with NEW.yaml, as of the last published run's date,
    and show per flag code the flags now and with the new rules, added, removed, accounts newly flagged and no
    longer flagged, then the accounts that change band, largest score change first. The database is opened
    read-only and nothing is published. csv / json: one row per code, band change and changed flag (docs/cli.md).

    Example: liushui rules diff my_rules.yaml --db data/warehouse/liushui.duckdb
    """
    from apps.rules_diff import RulesDiffError, diff_rules, write_diff

    if db.exists():
        use_prefect_home(db.resolve())  # the run's inputs are read through flows.tasks, which imports Prefect
    try:
        diff = diff_rules(db.resolve(), new, baseline_rules=rules, reference_dir=reference)
    except (ConfigError, RulesDiffError, StoreError) as exc:
        _fail(" ".join(str(exc).split()))  # one line: YAML's own messages span several
    for note in diff.notes:
        err.print(f"[yellow]note:[/] {note}", highlight=False)
    with _stdout_closed_ok():
        try:
            write_diff(diff, output_format, output)
        except (tables.OutputError, OSError) as exc:
            _fail(str(exc))
    if output_format != "table" or output is not None:
        err.print(diff.summary(), highlight=False, markup=False)
    err.print(f"(recomputed in {diff.seconds:.1f} s)", highlight=False, markup=False)


decide_app = typer.Typer(
    help="Analysts' decisions on flags: confirm or dismiss one (a dismissed flag stops scoring until its evidence "
    "changes), list them (docs/decisions.md).",
    no_args_is_help=True,
)
app.add_typer(decide_app, name="decide")
FlagId = Annotated[str, typer.Argument(help="The flag's id (risk_flags.flag_id; `liushui account` lists them).")]
By = Annotated[str, typer.Option("--by", help="Who decides (your name, as the audit trail should show it).")]
Note = Annotated[str, typer.Option("--note", help="Why: what you checked.")]
DecideRules = Annotated[
    Path | None, typer.Option("--rules", help="The rules file of the last run, if it moved (same content).")
]
DecideReference = Annotated[
    Path | None, typer.Option("--reference", help="The reference folder of the last run, if it moved (same content).")
]
DecideWait = Annotated[float, typer.Option("--lock-timeout", help="Seconds to wait for a run using the database.")]


def _decide(
    decision: str, flag_id: str, by: str, note: str, db: Path, rules: Path | None, reference: Path | None, wait: float
) -> None:
    from flows.decisions import DecisionError, UnknownFlag, record

    try:
        done = record(db, flag_id, decision, by, note, rules_path=rules, reference_dir=reference, lock_timeout_s=wait)
    except UnknownFlag as exc:
        _fail(str(exc), EXIT_USAGE)
    except DatabaseBusy as exc:
        _fail(str(exc), EXIT_BUSY)
    except (DecisionError, ConfigError, StoreError) as exc:
        _fail(str(exc))
    verb = "dismissed" if decision == "dismiss" else "confirmed"
    console.print(
        f"{verb} {done.flag_id} ({done.flag_code}, account {done.account_id}) by {by.strip()} at "
        f"{done.decided_at:%Y-%m-%d %H:%M:%S} UTC; score {done.score_before:.0f} ({done.band_before}) -> "
        f"{done.score_after:.0f} ({done.band_after})",
        highlight=False,
        markup=False,
        soft_wrap=True,
    )
    if decision == "dismiss" and done.is_code_still_counted:
        console.print(
            f"{done.flag_code} still counts: another active flag of it is not dismissed "
            f"(liushui account {done.account_id})",
            highlight=False,
            markup=False,
            soft_wrap=True,
        )


@decide_app.command("confirm")
def decide_confirm(
    flag_id: FlagId,
    by: By,
    note: Note,
    db: Database = DEFAULT_DB,
    rules: DecideRules = None,
    reference: DecideReference = None,
    lock_timeout: DecideWait = 60.0,
) -> None:
    """Confirm a flag: recorded and shown, the score does not change.

    Example: liushui decide confirm 3f2a... --by 王敏 --note "checked with the credit report"
    """
    _decide("confirm", flag_id, by, note, db, rules, reference, lock_timeout)


@decide_app.command("dismiss")
def decide_dismiss(
    flag_id: FlagId,
    by: By,
    note: Note,
    db: Database = DEFAULT_DB,
    rules: DecideRules = None,
    reference: DecideReference = None,
    lock_timeout: DecideWait = 60.0,
) -> None:
    """Dismiss a flag: it stays published and shown, but no longer counts in its account's score (unless another
    flag of its code does) until its evidence changes. The account is rescored at once.

    Example: liushui decide dismiss 3f2a... --by 王敏 --note "the money came back from the holder's own card"
    """
    _decide("dismiss", flag_id, by, note, db, rules, reference, lock_timeout)


@decide_app.command("list")
def decide_list(
    db: Database = DEFAULT_DB,
    account_id: Annotated[str | None, typer.Option("--account", help="Only this account's decisions.")] = None,
    output_format: ListFormat = "table",
    output: Output = None,
) -> None:
    """Every decision, newest first: when, who, the decision, its status now (dismissed: not scored, confirmed,
    evidence changed since dismissal, superseded, flag no longer raised), the flag and why.

    Example: liushui decide list --account 6214830624453336
    """
    from flows.decisions import decision_history

    con = _open(db)
    try:
        found = decision_history(con, account_id=account_id)
    finally:
        con.close()
    if output_format == "table":  # csv and json add the flag's metric, fingerprint and the decision's id
        found = found.drop("metric_value", "evidence_sha256", "decision_id")
    _write(found, output_format, output, title=f"decisions{f' on account {account_id}' if account_id else ''}")


def main() -> None:  # pragma: no cover - console entry point
    sys.exit(app())
