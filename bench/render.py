"""BENCHMARKS.md from `results.json` (see bench/run.py)."""

# ruff: noqa: E501  (SQL and Markdown templates read better unwrapped)

from __future__ import annotations

from typing import Any

from bench.data import FORMATS as FORMAT_NAMES

QUIET_TARGET_S = 5.0
FIRST_LINE_TARGET_S = 1.0

TOOLS = [
    ("floor", "DuckDB floor", "one scan of every file, sum(amount) per account; no dedup, no write"),
    (
        "sql",
        "DuckDB SQL peer",
        "dbt-style models: staging (CSV all-varchar + casts, Parquet, dedup), classified transactions, account months (clean income, 6-month CV, related share), large outflows; tables in a DuckDB file",
    ),
    (
        "pandas",
        "pandas peer",
        "same features with pandas (pyarrow readers, merges, str.contains, groupby, rolling); tables written to DuckDB",
    ),
    (
        "core",
        "liushui core features",
        "liushui.ingest read + classify_lenders + classified_transactions + account_months + income_volatility + large_outflows; tables written to DuckDB",
    ),
    (
        "signals",
        "liushui read + derive_signals",
        "liushui.ingest read + every signal and flag (spilled to Parquet like the flow)",
    ),
    ("run", "liushui full run", "`liushui run` end to end (Prefect, ingest, GX suites, every signal, publish)"),
    (
        "run_served",
        "liushui full run, served Prefect",
        "the same against a long-running Prefect server (PREFECT_API_URL), as in production",
    ),
    (
        "increment",
        "liushui one-day increment",
        "`liushui run` again with one new day for ~5 % of accounts; Prefect's temporary server started by the run",
    ),
    (
        "increment_served",
        "liushui one-day increment, served Prefect",
        "the same increment against a long-running Prefect server (PREFECT_API_URL), as in production: the nightly measure",
    ),
]

# The `liushui run` measurements with a stage table: key -> label.
RUNS = {
    "run": "full run",
    "run_served": "full run, served Prefect",
    "increment": "increment",
    "increment_served": "increment, served Prefect",
}


def _wall(r: dict | None) -> float | None:
    if not r or r.get("killed") or r.get("returncode") not in (0, 3, 4):  # 3, 4: published, with problems
        return None
    return r["wall_s"]


def _f(x: Any, nd: int = 1) -> str:
    if x is None:
        return "–"
    if isinstance(x, float):
        return f"{x:,.{nd}f}"
    return f"{x:,}" if isinstance(x, int) else str(x)


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a and b else "–"


def _peak(r: dict) -> float | None:
    """The largest of: the sampled process tree RSS, the children's ru_maxrss, and, for `liushui run`, the
    flow's per-stage high-water marks. The flow resets its VmHWM at every stage start (true per-stage
    peaks), and the kernel's ru_maxrss is that same counter, so for a run it only covers the last stage; a
    short spike between two 0.25 s samples is still caught by its stage's mark."""
    stages = (_last_run_row(r).get("stage_peak_rss_mb") or {}).values()
    return max(r.get("tree_peak_rss_mib") or 0, r.get("peak_rss_mib") or 0, *stages) or None


def _gx_seconds(run: dict) -> float | None:
    runs = [x for x in run.get("runs", []) if x.get("stage_seconds")]
    if not runs:
        return None
    st = runs[-1]["stage_seconds"]
    return sum(v for k, v in st.items() if k.startswith("validate"))


def _last_run_row(r: dict | None) -> dict:
    rows = [x for x in (r or {}).get("runs", []) if x.get("stage_seconds")]
    return rows[-1] if rows else {}


def size_section(n: str, res: dict) -> list[str]:
    d = res.get("data", {})
    out = [f"### {int(n):,} rows", ""]
    invocations = res.get("invocations") or []
    covered = {i["command"] for i in invocations}
    invocations = [{"command": c} for c in dict.fromkeys(res.get("commands", [])) if c not in covered] + invocations
    out.append(
        "Invocations behind these rows: "
        + "; ".join(
            f"`{i['command']}`"
            + (
                f" ({', '.join(i['steps'])}; {i['started_at']} – {i['finished_at']} UTC; code {i['git']})"
                if i.get("steps")
                else ""
            )
            for i in invocations
        )
        + "."
    )
    out.append("")
    out.append(
        f"Data: {_f(d.get('n_rows'))} transaction rows (+ {_f(d.get('n_overlap_rows'))} overlapping re-exported "
        f"rows), {_f(d.get('n_accounts'))} accounts, {_f(d.get('n_customers'))} customers, CSV and Parquet parts"
        + (
            f", composed of {d['shards']} generator shards of different seeds (one generator call cannot make more than ~19 M rows: docs/benchmarks.md)"
            if d.get("shards", 1) > 1
            else ""
        )
        + "."
    )
    out.append("")
    core, run = _wall(res.get("core")), _wall(res.get("run"))
    out.append(
        "| tool | wall s | CPU s | peak RSS MiB | ÷ liushui core | ÷ liushui run | load avg (1 min) start → end | what it does |"
    )
    out.append("|---|---:|---:|---:|---:|---:|---|---|")
    for key, name, what in TOOLS:
        r = res.get(key)
        if not r:
            continue
        w = _wall(r)
        status = "" if w is not None else f" **failed: {r.get('killed') or 'exit ' + str(r.get('returncode'))}**"
        out.append(
            f"| {name}{status} | {_f(r['wall_s'])} | {_f(r.get('cpu_s'))} | {_f(_peak(r), 0)} | "
            f"{_ratio(w, core)} | {_ratio(w, run)} | {r['load_start'][0]:.1f} → {r['load_end'][0]:.1f} | {what} |"
        )
    out.append("")
    out.append(
        "Step times (s, inside the child): "
        + "; ".join(
            f"{name}: "
            + ", ".join(
                f"{k} {v:.1f}"
                for k, v in (res[key].get("inner") or {}).get("steps", {}).items()
                if isinstance(v, (int, float))
            )
            for key, name, _ in TOOLS
            if res.get(key) and (res[key].get("inner") or {}).get("steps")
        )
        + "."
    )
    out.append("")
    signal_steps = ((res.get("signals") or {}).get("inner") or {}).get("steps", {})
    cps = signal_steps.get("checkpoints")
    if cps:
        names = signal_steps.get("checkpoint_names") or [f"checkpoint {i}" for i in range(len(cps))]
        named = list(zip(names, cps, strict=True))
        sink = res["signals"]["inner"]["steps"].get("sink_tables")
        out.append(
            "`derive_signals` by checkpoint (s; collect + Parquet spill of each intermediate, in order, named "
            "after the transform it checkpoints): "
            + ", ".join(f"{n} {v:.1f}" for n, v in named)
            + (f"; sinking the five published tables {sink:.1f}" if sink is not None else "")
            + "."
        )
        out.append("")
    out += _formats_table(res)
    out += _quiet_table(res)
    server = res.get("prefect_server")
    if server and any(res.get(k) for k in ("run_served", "increment_served")):
        out.append(
            f"Served rows: one `prefect server start` for the whole invocation (started in {server['start_s']:.1f} s, "
            f"then one warm-up run of {server['warm_up_s']:.1f} s on an empty inbox; neither is part of a row), "
            "PREFECT_API_URL set for each `liushui run`. Their peak RSS is the `liushui run` process tree only: "
            "the server is a separate, long-lived process, as in production."
        )
        out.append("")
    for key, label in RUNS.items():
        r = res.get(key)
        row = _last_run_row(r)
        if not r:
            continue
        if not row:
            out.append(
                f"liushui {label}: no stage timings recorded ({r.get('killed') or 'exit ' + str(r.get('returncode'))}). "
                f"Last lines: `{' | '.join(r.get('tail', [])[-4:])}`"
            )
            if r.get("stage_lines"):
                out.append("Progress lines seen: " + "; ".join(f"{t:.0f} s `{ln}`" for t, ln in r["stage_lines"]))
            out.append("")
            continue
        st, mem = row["stage_seconds"], row["stage_peak_rss_mb"]
        total = r["wall_s"]
        if r.get("via"):
            out.append(f"Run through {r['via']}.")
            out.append("")
        out.append(
            f"liushui {label} (mode `{row['mode']}`, status `{row['status']}`): stages from `pipeline_runs`, "
            f"peak RSS = the flow process's high-water mark at the end of the stage."
        )
        out.append("")
        out.append("| stage | s | % of wall | peak RSS MiB |")
        out.append("|---|---:|---:|---:|")
        before = r.get("before_ingest_s")
        served = r.get("prefect") == "served"
        if before is not None:
            what = "imports, flow run on the served API" if served else "imports, Prefect temporary server, flow run"
            out.append(f"| process start → first stage ({what}) | {before:.1f} | {100 * before / total:.0f} % | – |")
        staged = sum(st.values())
        for k, v in st.items():
            out.append(f"| {k} | {v:.1f} | {100 * v / total:.0f} % | {_f(mem.get(k), 0)} |")
        rest = total - staged - (before or 0)
        what = "record stage times, print tables" + ("" if served else ", server shutdown")
        out.append(f"| rest ({what}) | {rest:.1f} | {100 * rest / total:.0f} % | – |")
        out.append(
            f"| **total (wall; peak {_f(_peak(r), 0)} MiB: process tree sampled, or a stage's high-water mark)** | **{total:.1f}** | 100 % | |"
        )
        out.append("")
        if key.startswith("increment") and r.get("increment"):
            inc = r["increment"]
            out.append(
                f"Increment: {inc['rows']:,} new rows on {inc['day']} for {inc['accounts']:,} of "
                f"{inc['accounts_total']:,} accounts; counts {row.get('counts')}."
            )
            out.append("")
    return out


def _formats_table(res: dict) -> list[str]:
    """The same rows in one input format each (`bench.data.variant`): the SQL peer, pandas and the full run."""
    formats = res.get("formats") or {}
    if not formats:
        return []
    out = [
        "The same rows with every inbox file in one format (`bench.data.variant`; `liushui run` with Prefect's "
        "temporary server):",
        "",
        "| input | DuckDB SQL peer s (CPU) | pandas peer s (CPU) | liushui full run s (CPU) | run ÷ SQL | pandas ÷ run | run peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for fmt, m in formats.items():
        sql, pandas, run = (m.get(k) for k in ("sql", "pandas", "run"))

        def cell(r: dict | None) -> str:
            if not r:
                return "–"
            if _wall(r) is None:
                return f"failed ({r.get('killed') or 'exit ' + str(r.get('returncode'))})"
            return f"{_f(r['wall_s'])} ({_f(r.get('cpu_s'))})"

        out.append(
            f"| {FORMAT_NAMES[fmt]} | {cell(sql)} | {cell(pandas)} | {cell(run)} | {_ratio(_wall(run), _wall(sql))} | "
            f"{_ratio(_wall(pandas), _wall(run))} | {_f(_peak(run), 0) if run else '–'} |"
        )
    runs = [(FORMAT_NAMES[fmt], _last_run_row(m.get("run"))) for fmt, m in formats.items()]
    if any(row for _, row in runs):
        out += [
            "",
            "Their stages (s, from `pipeline_runs`): "
            + "; ".join(
                f"{name}: " + ", ".join(f"{k} {v:.1f}" for k, v in row["stage_seconds"].items())
                for name, row in runs
                if row
            )
            + ".",
        ]
    return [*out, ""]


def _quiet_table(res: dict) -> list[str]:
    """Nights with nothing new after the full run (`bench.liushui_run.quiet_runs`)."""
    quiet = res.get("quiet")
    if not quiet:
        return []
    out = [
        "A night with nothing new: `liushui run` again on the full run's inbox, against a copy of its database; "
        "every file is known, so it is answered without Prefect or Great Expectations (flows/noop.py). Each run "
        "is a process timed from its start (interpreter start and imports included).",
        "",
        "| run | status, mode | wall s | CPU s | first line s | peak RSS MiB | stages (s) |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for i, r in enumerate(quiet["runs"], 1):
        stages = ", ".join(f"{k} {v:.2f}" for k, v in (r.get("stages") or {}).items())
        out.append(
            f"| nothing new #{i} | {r['status']}, {r['mode']} | {r['wall_s']:.2f} | {_f(r.get('cpu_s'))} | "
            f"{_f(r.get('first_line_s'), 2)} | {_f(r.get('peak_rss_mib'), 0)} | {stages} |"
        )
    return [*out, ""]


def targets(results: dict) -> list[str]:
    """The table of the speed issue's targets, in its order: met / not met, with the ratio measured."""
    by = results.get("by_rows", {})
    ten = by.get("10000000", {})
    rows: list[str] = []

    def add(target: str, measured: str, met: bool | None) -> None:
        rows.append(f"| {target} | {measured} | {'yes' if met else ('no' if met is not None else 'not measured')} |")

    def cpu(r: dict | None) -> float | None:
        return (r or {}).get("cpu_s")

    core, sql = _wall(ten.get("core")), _wall(ten.get("sql"))
    add(
        "10 M: core feature stage ≤ 1.0× the DuckDB-SQL peer",
        f"core {_f(core)} s vs SQL {_f(sql)} s ({_ratio(core, sql)}); CPU s {_f(cpu(ten.get('core')))} vs "
        f"{_f(cpu(ten.get('sql')))} ({_ratio(cpu(ten.get('core')), cpu(ten.get('sql')))})",
        core <= sql if core and sql else None,
    )
    inputs = [("the generator's mix (CSV, quoted CSV and Parquet parts)", ten)]
    inputs += [(FORMAT_NAMES[k], v) for k, v in (ten.get("formats") or {}).items()]
    for label, m in inputs:
        run, sql = _wall(m.get("run")), _wall(m.get("sql"))
        add(
            f"10 M, {label}: whole run ≤ 3× the DuckDB-SQL peer",
            f"run {_f(run)} s vs SQL {_f(sql)} s = {_ratio(run, sql)}; CPU s {_ratio(cpu(m.get('run')), cpu(m.get('sql')))}",
            run <= 3 * sql if run and sql else None,
        )
    for label, m in inputs:
        run, pandas = _wall(m.get("run")), _wall(m.get("pandas"))
        add(
            f"10 M, {label}: whole run ≥ 3× faster than the pandas peer",
            f"pandas {_f(pandas)} s vs run {_f(run)} s: pandas = {_ratio(pandas, run)} run; CPU s "
            f"{_ratio(cpu(m.get('pandas')), cpu(m.get('run')))}",
            pandas >= 3 * run if run and pandas else None,
        )
    for n in ("10000000", "50000000"):
        r = by.get(n, {})
        add(
            f"{int(n) // 1_000_000} M: one-day increment ≤ 10 % of a full rebuild",
            *_increment_target(
                _wall(r.get("increment_served")),
                _wall(r.get("increment")),
                _wall(r.get("run_served")),
                _wall(r.get("run")),
            ),
        )
    quiet = [(n, r["quiet"]) for n, r in sorted(by.items(), key=lambda kv: int(kv[0])) if r.get("quiet")]
    add(
        f"a run on an inbox with nothing new ≤ {QUIET_TARGET_S:g} s",
        "; ".join(
            f"{int(n):,} rows published: median {_f(q['wall_s'], 2)} s of {len(q['runs'])} "
            f"({', '.join(_f(run['wall_s'], 2) for run in q['runs'])}; statuses "
            f"{', '.join(sorted({str(run['status']) for run in q['runs']}))})"
            for n, q in quiet
        )
        or "–",
        all(_wall(q) is not None and q["wall_s"] <= QUIET_TARGET_S for _, q in quiet) if quiet else None,
    )
    firsts = [
        (f"{int(n):,} {name}", first)
        for n, r in sorted(by.items(), key=lambda kv: int(kv[0]))
        for name, first in _first_lines(r)
    ]
    slowest = max(firsts, key=lambda kv: kv[1]) if firsts else None
    add(
        f"the first progress line within {FIRST_LINE_TARGET_S:g} s of the command",
        f"at most {slowest[1]:.2f} s over {len(firsts)} `liushui run` processes (slowest: {slowest[0]})"
        if slowest
        else "–",
        slowest[1] <= FIRST_LINE_TARGET_S if slowest else None,
    )
    r50 = by.get("50000000", {}).get("run")
    peak50 = _peak(r50) if r50 else None
    add(
        "50 M rows within 4 GiB peak",
        f"{_completion(r50)}, peak {_f(peak50, 0)} MiB (process tree, or a stage's high-water mark)" if r50 else "–",
        (_wall(r50) is not None and peak50 is not None and peak50 <= 4 * 1024) if r50 else None,
    )
    r100 = by.get("100000000", {}).get("run")
    add(
        "100 M rows complete on this machine",
        f"{_completion(r100)}, peak {_f(_peak(r100), 0)} MiB" if r100 else "–",
        _wall(r100) is not None if r100 else None,
    )
    return ["| target (issue “Speed”) | measured | met? |", "|---|---|---|", *rows]


def _completion(r: dict) -> str:
    if _wall(r) is not None:
        return f"completed in {_f(r['wall_s'])} s"
    why = r.get("killed") or "exit " + str(r.get("returncode"))
    error = next((ln.split("] ", 1)[-1].strip() for ln in reversed(r.get("tail", [])) if "Error" in ln), None)
    return f"did not complete ({why}, after {_f(r['wall_s'])} s{': ' + error[:160] if error else ''})"


def _first_lines(res: dict) -> list[tuple[str, float]]:
    """(which run, seconds to its first output line) of every `liushui run` measured at one size."""
    out = [
        (RUNS.get(key, key), res[key]["first_line_s"])
        for key in RUNS
        if res.get(key) and res[key].get("first_line_s") is not None
    ]
    out += [
        ("nothing-new run", r["first_line_s"])
        for r in (res.get("quiet") or {}).get("runs", [])
        if r.get("first_line_s") is not None
    ]
    for fmt, m in (res.get("formats") or {}).items():
        if (m.get("run") or {}).get("first_line_s") is not None:
            out.append((f"full run, {FORMAT_NAMES[fmt]}", m["run"]["first_line_s"]))
    return out


def _increment_target(
    inc_served: float | None, inc: float | None, run_served: float | None, run: float | None
) -> tuple[str, bool | None]:
    """The nightly increment runs against a long-running Prefect server (production: `liushui serve`,
    PREFECT_API_URL), so that is the measure; the full rebuild it is compared with is the served one when
    measured, else the one with the temporary server (which is slower by the server start: a stricter
    ratio would need the served rebuild). The temporary-server increment is shown next to it."""
    base, base_name = (run_served, "served full run") if run_served else (run, "full run")
    parts = []
    if inc_served and base:
        parts.append(
            f"increment with served Prefect {_f(inc_served)} s = {100 * inc_served / base:.1f} % of {base_name} {_f(base)} s"
        )
    if inc and run:
        parts.append(
            f"with a temporary Prefect server per run {_f(inc)} s = {100 * inc / run:.1f} % of full run {_f(run)} s"
        )
    measured = inc_served if inc_served else inc
    base = base if inc_served else run
    met = measured < 0.1 * base if measured and base else None
    if parts and not inc_served:
        parts.append("served increment not measured")
    return ("; ".join(parts) or "–"), met


def sanity(results: dict) -> list[str]:
    s = results.get("by_rows", {}).get("1000000", {}).get("sanity")
    if not s:
        return ["Not run (needs the 1 M measurement with sql, pandas and core)."]
    out = [
        "Monthly clean income per account-month on the 1 M set (full outer join on account, currency, month):",
        "",
        "| pair | account-months | equal to the cent | within 1 % | total A | total B | correlation |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for k in ("sql_vs_pandas", "sql_vs_liushui", "pandas_vs_liushui", "sql_vs_liushui_published"):
        v = s.get(k)
        if not v:
            continue
        label = {
            "sql_vs_pandas": "DuckDB SQL vs pandas",
            "sql_vs_liushui": "DuckDB SQL vs liushui core",
            "pandas_vs_liushui": "pandas vs liushui core",
            "sql_vs_liushui_published": "DuckDB SQL vs liushui published (full run)",
        }[k]
        out.append(
            f"| {label} | {v['months']:,} | {100 * v['exact_share']:.1f} % | "
            f"{100 * v['within_1pct_share']:.1f} % | {v['total_a']:,.2f} | {v['total_b']:,.2f} | {v['corr']:.6f} |"
        )
    out.append("")
    if s.get("sql_vs_liushui_by_class"):
        out += [
            "Transactions where the SQL peer's clean-income flag differs from liushui's (by liushui class):",
            "",
            "| liushui class | SQL says clean | liushui says clean | rows | amount |",
            "|---|---|---|---:|---:|",
        ]
        out += [
            f"| {r['liushui_class']} | {r['sql_clean']} | {r['liushui_clean']} | {r['rows']:,} | {r['amount']:,.2f} |"
            for r in s["sql_vs_liushui_by_class"]
        ]
    else:
        out.append("No transaction has a different clean-income flag in the SQL peer and in liushui's core path.")
    return out


def render_markdown(results: dict) -> str:
    m = results.get("machine", {})
    lines = [
        "# Benchmarks",
        "",
        "Regenerate with (not part of the tests; data is generated into `bench/out/`, never downloaded):",
        "",
        "```sh",
        ".venv/bin/python -m bench.run --targets   # 1 M, 10 M, 50 M, 100 M: every figure of the targets table (~2.5 h)",
        ".venv/bin/python -m bench.run             # or make bench: 1 M and 10 M only",
        "```",
        "",
        "Results accumulate in `bench/out/results.json` by row count (`--only run,increment,increment_served` re-measures just "
        "those steps; `--only increment_served` alone starts from the full run an earlier invocation published; "
        "`run_served` is measured only when asked for; `--render-only` rewrites this file); each size lists the invocations behind its rows. "
        "*served Prefect*: `liushui run` with PREFECT_API_URL pointing at one long-running `prefect server start` "
        "(started once by the benchmark, as a nightly deployment runs); without it every `liushui run` starts "
        "Prefect's temporary server. "
        "Findings and suggestions: [docs/benchmarks.md](docs/benchmarks.md).",
        "",
        f"Machine: {m.get('nproc')} cores ({m.get('cpu')}), {m.get('mem_gib')} GiB RAM. Date {m.get('date')}. "
        f"Python {m.get('python')}, polars {m.get('polars')}, duckdb {m.get('duckdb')}, pandas {m.get('pandas')}, "
        f"pyarrow {m.get('pyarrow')}, prefect {m.get('prefect')}, great_expectations {m.get('great_expectations')}.",
        "",
        "Every tool runs in its own child process on the same files, one after the other; wall time includes reading the files and writing the results. *Peak RSS* is the child "
        "process tree's (sampled every 0.25 s; for `liushui run` it includes the Prefect server subprocess), "
        "`ru_maxrss`, or for `liushui run` the largest per-stage high-water mark of the flow process "
        "(`pipeline_runs`), whichever is largest. The machine is shared: the 1-minute load average at the start and "
        "end of every measurement is shown, and CPU seconds (user + system of the child tree) are given "
        "because they are less sensitive to other jobs than wall time.",
        "",
        "## Targets",
        "",
        *targets(results),
        "",
        "## Results",
        "",
    ]
    for n in sorted(results.get("by_rows", {}), key=int):
        lines += size_section(n, results["by_rows"][n])
    lines += ["## Do the peers compute the same thing?", "", *sanity(results), ""]
    s1 = results.get("by_rows", {}).get("1000000", {}).get("sanity", {})
    if s1.get("published_by_class"):
        lines += [
            "liushui's published clean income also excludes the inbound legs of round trips and cycles, which "
            "the peers (and liushui's core path) do not detect: "
            + ", ".join(f"{r['txn_class']} {r['rows']:,} rows, {r['amount']:,.2f}" for r in s1["published_by_class"])
            + ". The generator's lender names and memos are plain registry names, so the peers' simple "
            "pattern union and liushui's ordered, exclusion-aware classifier agree on this data; on real "
            "exports they would not.",
            "",
        ]
    lines += results.get("notes_md", [])
    return "\n".join(lines) + "\n"
