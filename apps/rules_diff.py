"""`liushui rules diff`: what a rules file would change on the published data, before anyone publishes it.

The signals are recomputed on the published `transactions` (their canonical columns, as a full rebuild reads
them) with the run's own code path: the run's inputs (`flows.tasks.Resolved`: the rules validated as the run
validates them, the reference data, the lender registry), `transforms.signals.derive_signals` and the analysts'
dismissals in force (`flows.decisions.rescored_account_risk`), as of the as-of date of the last published run,
so that the rules that made the published state reproduce it exactly.
The database is opened read-only; the recompute's scratch files live in a temporary folder that is removed
afterwards. Nothing is published.

The database keeps no copy of the reference data, only where the last published run read it
(`pipeline_runs.parameters_json`): that folder is read again (or the one given), and `config_sha256` tells
whether the rules file and the reference data are still what that run hashed.

What is compared (`RulesDiff`):
- flags: one row per flag of either side, matched by `flag_id`. A setting that moves a period's start (a window
  length) changes the ids of a code's flags without changing what they judge: for such a code (a flag of the same
  account, currency and period end on both sides under two ids) the flags are matched on account, code, currency
  and period end instead, and `compared_on` says so. An episode's id is its first month's, so a window length
  leaves it; a setting that makes an episode start in another month (a threshold) moves it, and the episodes
  ending in the same month are matched;
- per flag code: flags now and with the new rules, added, removed, severity changed, accounts newly flagged and
  no longer flagged;
- accounts: score and band now and with the new rules; the ones changing band, largest score change first.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from apps import tables
from liushui import store
from liushui.config import Settings, config_fingerprint, load_rules
from liushui.contracts import ACCOUNT_RISK, CANONICAL_TRANSACTION, RISK_FLAGS
from liushui.vocabularies import RISK_BANDS
from transforms.registry import FLAG_CODES, RULES

if TYPE_CHECKING:
    from flows.tasks import Resolved

PERIOD_MATCH: tuple[str, ...] = ("account_id", "flag_code", "currency", "period_end_on")
"""What a flag is matched on when a setting moved its period's start (and so its `flag_id`)."""
NAME_ZH = {rule.code: rule.name_zh for rule in RULES}


class RulesDiffError(Exception):
    """The database cannot be diffed (no published run, reference data gone); the message says what to do."""


@dataclass(frozen=True)
class PublishedRun:
    """What the last published run was made from: its as-of date, rules file, reference folder and the hash of
    both (`pipeline_runs`)."""

    run_id: str
    as_of: date
    rules_path: Path
    reference_dir: Path | None
    config_sha256: str


@dataclass(frozen=True)
class Outcome:
    """The flags (`contracts.RISK_FLAGS`) and account risk (`contracts.ACCOUNT_RISK`) of one set of rules."""

    risk_flags: pl.DataFrame
    account_risk: pl.DataFrame


def published_run(con: duckdb.DuckDBPyConnection) -> PublishedRun:
    """The last published run (`pipeline_runs`): its as-of date is every `account_risk` row's (a publish sets it
    on every row)."""
    rows = con.execute(
        "SELECT run_id, as_of_on, parameters_json, config_sha256 FROM pipeline_runs "
        "WHERE status = 'published' ORDER BY started_at DESC LIMIT 1"
    ).fetchall()
    if not rows:
        raise RulesDiffError("no published run in the database: nothing to compare against (run `liushui run`)")
    [(run_id, as_of, parameters_json, config_sha256)] = rows
    parameters = json.loads(parameters_json)
    reference = parameters.get("reference_dir")
    return PublishedRun(
        run_id=run_id,
        as_of=as_of,
        rules_path=Path(parameters["rules_path"]),
        reference_dir=Path(reference) if reference else None,
        config_sha256=config_sha256,
    )


def published_outcome(con: duckdb.DuckDBPyConnection) -> Outcome:
    return Outcome(
        risk_flags=RISK_FLAGS.conform(con.sql("SELECT * FROM risk_flags").pl()).collect(),
        account_risk=ACCOUNT_RISK.conform(con.sql("SELECT * FROM account_risk").pl()).collect(),
    )


def run_inputs(rules: Path, reference_dir: Path | None) -> Resolved:
    """What a run with `rules` and `reference_dir` reads besides the transactions, read and validated as the run
    does (`flows.tasks.Resolved`; an invalid rules file raises `ConfigError`). The file is loaded once before,
    which imports nothing heavy: a bad file is refused at once, before Prefect is imported."""
    load_rules(rules)
    from flows.tasks import Resolved

    return Resolved.read(Settings(rules_path=rules, reference_dir=reference_dir))


def recomputed_outcome(database: Path, canonical: Path, inputs: Resolved, *, as_of: date, scratch: Path) -> Outcome:
    """Every signal of the canonical transactions at `canonical` (Parquet) with a run's `inputs`, as of `as_of`, and,
    as the run does, the analysts' dismissals published in `database` taken out of `account_risk`
    (`flows.decisions`); intermediate frames spill to `scratch`, as a run's do."""
    from flows.decisions import rescored_account_risk
    from transforms.signals import derive_signals, spill_to

    signals = derive_signals(
        CANONICAL_TRANSACTION.conform(pl.scan_parquet(canonical)),
        accounts=inputs.accounts.lazy(),
        related_parties=inputs.related_parties.lazy(),
        lender_registry=inputs.lender_registry,
        rules=inputs.rules,
        as_of=as_of,
        checkpoint=spill_to(scratch),
        fx_rates=inputs.fx_rates.lazy(),
    )
    risk_flags, account_months, account_risk = pl.collect_all(
        [signals.risk_flags, signals.account_months, signals.account_risk]
    )
    decided = rescored_account_risk(
        database,
        account_risk.lazy(),
        risk_flags.lazy(),
        account_months.lazy(),
        accounts=inputs.accounts.lazy(),
        rules=inputs.rules.account_risk,
        as_of=as_of,
    )
    return Outcome(risk_flags=risk_flags, account_risk=account_risk if decided is None else decided.collect())


def flag_changes(now: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """One row per flag of either side (`contracts.RISK_FLAGS` rows): its key, `flag_id` now and new (null on the
    side without it), severity, metric and threshold on each side, `compared_on` (flag_id, or period_end for a
    code whose ids moved: module docstring) and `change`: added, removed, severity (kept, its severity changed)
    or kept."""
    both = now.select(*PERIOD_MATCH, "flag_id").join(
        new.select(*PERIOD_MATCH, "flag_id"), on=list(PERIOD_MATCH), suffix="_new"
    )
    moved = both.filter(pl.col("flag_id") != pl.col("flag_id_new"))["flag_code"].unique().to_list()
    by_period = pl.col("flag_code").is_in(moved)

    def keyed(flags: pl.DataFrame) -> pl.DataFrame:
        return flags.select(
            "flag_code",
            "flag_id",
            "account_id",
            "currency",
            "period_start_on",
            "period_end_on",
            "severity",
            "metric_value",
            "threshold",
            _match=pl.when(by_period)
            .then(pl.concat_str([pl.col(c).cast(pl.String) for c in PERIOD_MATCH], separator="|"))
            .otherwise(pl.col("flag_id")),
        )

    joined = keyed(now).join(keyed(new), on=["flag_code", "_match"], how="full", coalesce=True, suffix="_new")
    is_now, is_new = pl.col("flag_id").is_not_null(), pl.col("flag_id_new").is_not_null()
    return joined.select(
        "flag_code",
        pl.coalesce("account_id", "account_id_new").alias("account_id"),
        pl.coalesce("currency", "currency_new").alias("currency"),
        pl.coalesce("period_start_on", "period_start_on_new").alias("period_start_on"),
        pl.coalesce("period_end_on", "period_end_on_new").alias("period_end_on"),
        flag_id_now="flag_id",
        flag_id_new="flag_id_new",
        compared_on=pl.when(by_period).then(pl.lit("period_end")).otherwise(pl.lit("flag_id")),
        change=pl.when(~is_now)
        .then(pl.lit("added"))
        .when(~is_new)
        .then(pl.lit("removed"))
        .when(pl.col("severity") != pl.col("severity_new"))
        .then(pl.lit("severity"))
        .otherwise(pl.lit("kept")),
        severity_now="severity",
        severity_new="severity_new",
        metric_now="metric_value",
        metric_new="metric_value_new",
        threshold_now="threshold",
        threshold_new="threshold_new",
    ).sort("flag_code", "account_id", "period_end_on", "currency", "period_start_on")


def changes_per_code(flags: pl.DataFrame) -> pl.DataFrame:
    """One row per flag code of the registry (its order): flags now and new, added, removed, severity changed,
    accounts with a flag of the code now and new, accounts newly flagged and no longer flagged by it."""
    is_now, is_new = pl.col("flag_id_now").is_not_null(), pl.col("flag_id_new").is_not_null()
    accounts = (
        flags.group_by("flag_code", "account_id")
        .agg(had=is_now.any(), has=is_new.any())
        .group_by("flag_code")
        .agg(
            accounts_now=pl.col("had").sum(),
            accounts_new=pl.col("has").sum(),
            accounts_added=(pl.col("has") & ~pl.col("had")).sum(),
            accounts_removed=(pl.col("had") & ~pl.col("has")).sum(),
        )
    )
    counts = flags.group_by("flag_code").agg(
        compared_on=pl.col("compared_on").max(),
        flags_now=is_now.sum(),
        flags_new=is_new.sum(),
        added=(pl.col("change") == "added").sum(),
        removed=(pl.col("change") == "removed").sum(),
        severity_changed=(pl.col("change") == "severity").sum(),
    )
    codes = pl.DataFrame(
        {"flag_code": list(FLAG_CODES), "name_zh": [NAME_ZH.get(c, "") for c in FLAG_CODES]},
        schema={"flag_code": pl.String, "name_zh": pl.String},
    )
    numbers = [
        "flags_now",
        "flags_new",
        "added",
        "removed",
        "severity_changed",
        "accounts_now",
        "accounts_new",
        "accounts_added",
        "accounts_removed",
    ]
    return (
        codes.join(counts, on="flag_code", how="left")
        .join(accounts, on="flag_code", how="left")
        .select(
            "flag_code",
            "name_zh",
            pl.col("compared_on").fill_null("flag_id"),
            *(pl.col(c).fill_null(0).cast(pl.Int64) for c in numbers),
        )
    )


def account_changes(now: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """One row per account of either side (`contracts.ACCOUNT_RISK` rows): customer and holder, band and score now
    and new, the score's change; largest change first."""
    band_rank = {band: rank for rank, band in enumerate(RISK_BANDS)}
    joined = now.select("account_id", "customer_id", "holder_name", "band", "score").join(
        new.select("account_id", "customer_id", "holder_name", "band", "score"),
        on="account_id",
        how="full",
        coalesce=True,
        suffix="_new",
    )
    return (
        joined.select(
            "account_id",
            pl.coalesce("customer_id", "customer_id_new").alias("customer_id"),
            pl.coalesce("holder_name", "holder_name_new").alias("holder_name"),
            band_now="band",
            band_new="band_new",
            score_now="score",
            score_new="score_new",
            score_change=pl.col("score_new").fill_null(0.0) - pl.col("score").fill_null(0.0),
            band_steps=pl.col("band_new").replace_strict(band_rank, default=None, return_dtype=pl.Int64)
            - pl.col("band").replace_strict(band_rank, default=None, return_dtype=pl.Int64),
        )
        .with_columns(pl.col("score_change").round(6))
        .sort(pl.col("score_change").abs(), "account_id", descending=[True, False])
    )


@dataclass(frozen=True)
class RulesDiff:
    """The diff of `new_rules` against the baseline (`baseline`: the published state, or a recompute with the
    rules file it names) as of `as_of`, and how long the recompute took."""

    new_rules: Path
    baseline: str
    as_of: date
    flags: pl.DataFrame
    """`flag_changes`"""
    per_code: pl.DataFrame
    """`changes_per_code`"""
    accounts: pl.DataFrame
    """`account_changes`"""
    notes: tuple[str, ...]
    """What the user should know about the baseline (the rules or the reference data changed since the run)."""
    seconds: float

    @property
    def band_changes(self) -> pl.DataFrame:
        """The accounts whose band changes (largest score change first)."""
        return self.accounts.filter(pl.col("band_now").ne_missing(pl.col("band_new"))).drop("band_steps")

    def summary(self) -> str:
        """The diff in one line."""
        codes = self.per_code.filter((pl.col("added") + pl.col("removed") + pl.col("severity_changed")) > 0)
        changed = self.accounts.filter(pl.col("band_now").ne_missing(pl.col("band_new")))
        up = changed.filter(pl.col("band_steps") > 0).height
        scores = self.accounts.filter(pl.col("score_change") != 0).height
        which = f" ({', '.join(codes['flag_code'])})" if codes.height else ""
        return (
            f"{self.new_rules.name} against {self.baseline} (as of {self.as_of}): "
            f"{int(codes['added'].sum())} flag(s) added, {int(codes['removed'].sum())} removed, "
            f"{int(codes['severity_changed'].sum())} of another severity{which}; "
            f"{changed.height} of {self.accounts.height} account(s) change band ({up} up, {changed.height - up} down), "
            f"{scores} change score. Nothing published."
        )

    def rows(self) -> pl.DataFrame:
        """Everything as one frame for the machine formats: a `section` column (code, band, flag), then the
        columns of the per-code table, the band changes and the changed flags (null where a section has none)."""
        flags = self.flags.filter(pl.col("change") != "kept")
        return pl.concat(
            [
                self.per_code.select(pl.lit("code").alias("section"), pl.all()),
                self.band_changes.select(pl.lit("band").alias("section"), pl.all()),
                flags.select(pl.lit("flag").alias("section"), pl.all()),
            ],
            how="diagonal_relaxed",
        )


def diff_rules(
    database: Path, new_rules: Path, *, baseline_rules: Path | None = None, reference_dir: Path | None = None
) -> RulesDiff:
    """Recompute the published data's signals with `new_rules` and compare them with the published state, or,
    with `baseline_rules`, with a recompute with that file (both sides then differ only by their rules). The
    reference data is the last published run's (`reference_dir` overrides it). Raises `ConfigError` for an
    invalid rules file, `RulesDiffError` when there is nothing to compare, `store.StoreError` for the database."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="liushui-rules-diff-") as folder:
        scratch = Path(folder)
        # One connection: the run's parameters, the transactions and the published state of one version.
        con = store.reader(database, memory_limit=store.RUN_READER_MEMORY_LIMIT, file_access=True)
        try:
            run = published_run(con)
            reference = reference_dir if reference_dir is not None else run.reference_dir
            if reference is not None and not reference.is_dir():
                raise RulesDiffError(
                    f"the published run {run.run_id} read its reference data from {reference}, which is not a "
                    "folder any more: give the folder with --reference DIR"
                )
            new_inputs = run_inputs(new_rules, reference)
            now_inputs = run_inputs(baseline_rules, reference) if baseline_rules is not None else None
            canonical = scratch / "transactions.parquet"
            store.export_history(con, None, canonical)
            published = published_outcome(con) if now_inputs is None else None
        finally:
            con.close()
        if now_inputs is None:
            assert published is not None
            now, notes = published, _baseline_notes(run, reference)
        else:
            now = recomputed_outcome(database, canonical, now_inputs, as_of=run.as_of, scratch=scratch / "now")
            notes = ()
        new = recomputed_outcome(database, canonical, new_inputs, as_of=run.as_of, scratch=scratch / "new")
    flags = flag_changes(now.risk_flags, new.risk_flags)
    return RulesDiff(
        new_rules=new_rules,
        baseline=f"the published run {run.run_id}" if baseline_rules is None else str(baseline_rules),
        as_of=run.as_of,
        flags=flags,
        per_code=changes_per_code(flags),
        accounts=account_changes(now.account_risk, new.account_risk),
        notes=notes,
        seconds=time.perf_counter() - started,
    )


def _baseline_notes(run: PublishedRun, reference: Path | None) -> tuple[str, ...]:
    """Whether the published state is still what its rules file and reference data make (`config_sha256`)."""
    if not run.rules_path.is_file():
        return (
            f"the rules file of the published run ({run.rules_path}) is gone: differences may come from more than "
            "the new file; --rules FILE recomputes the baseline with FILE",
        )
    if config_fingerprint(run.rules_path, reference) != run.config_sha256:
        return (
            f"the rules file {run.rules_path}, the reference data, the lender registry or the tables' schema "
            f"changed since the published run {run.run_id} (config_sha256): differences may come from that too; "
            "--rules FILE recomputes the baseline with FILE",
        )
    return ()


def write_diff(diff: RulesDiff, fmt: tables.ListFormat, output: Path | None) -> None:
    """The table format: the per-code table (without the accounts now and new, which csv / json carry), the band
    changes and the summary line; csv / json: `RulesDiff.rows` (the caller says the summary on stderr)."""
    with tables.destination(output, fmt) as to:
        if fmt != "table":
            arrow = diff.rows().to_arrow()
            tables.write_batches(arrow.to_batches(), arrow.schema, fmt, to.target(fmt))
            return
        per_code = diff.per_code.drop("accounts_now", "accounts_new")
        tables.write_table(
            per_code.columns, per_code.rows(), to.stream, terminal=to.terminal, title="flags per code: now -> new"
        )
        to.stream.write("\n")
        bands = diff.band_changes
        if bands.is_empty():
            to.stream.write("no account changes band\n")
        else:
            tables.write_table(
                bands.columns, bands.rows(), to.stream, terminal=to.terminal, title="accounts changing band"
            )
        to.stream.write("\n" + diff.summary() + "\n")
