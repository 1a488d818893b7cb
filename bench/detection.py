"""Detection quality on a seed the tests do not use: generate a sample, run the nightly pipeline on it, score the
published flags against the generator's labels (recall, precision against every account without the behaviour,
TP / FP / FN, and the co-occurring flags) and write `bench/out/detection.md` (BENCHMARKS-style Markdown).

Usage: python -m bench.detection --seed 101 --accounts 300 --months 12 [--out bench/out]
(tests use seeds 7, 8 and 11: any other seed is unseen by the rules' authors.)
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEST_SEEDS = frozenset({7, 8, 11})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.detection", description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=101)
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "out")
    args = parser.parse_args(argv)
    if args.seed in TEST_SEEDS:
        print(f"seed {args.seed} is used by the tests; pick an unseen one", file=sys.stderr)
        return 2
    out: Path = args.out.resolve()
    work = out / f"detection_seed{args.seed}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    os.environ.setdefault("PREFECT_HOME", str(out / "detection_prefect"))
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

    from liushui.runtime import configure_environment

    configure_environment()

    from flows.nightly import run_nightly
    from liushui.config import Settings
    from liushui.store import reader
    from synthetic.evaluate import evaluate_database, markdown
    from synthetic.generate import generate_sample

    started = time.perf_counter()
    sample = generate_sample(work / "sample", seed=args.seed, n_accounts=args.accounts, months=args.months)
    generated = time.perf_counter()
    db = work / "liushui.duckdb"
    report = run_nightly(
        Settings(inbox=sample.out_dir / "inbox", database=db, reference_dir=sample.out_dir / "reference")
    )
    ran = time.perf_counter()
    if report.status != "published":
        print(f"the run did not publish: {report.status} {report.message}", file=sys.stderr)
        return 1
    con = reader(db)
    try:
        scores, pairs = evaluate_database(sample.labels_file, con)
    finally:
        con.close()
    lines = [
        "# Detection on an unseen seed",
        "",
        f"`python -m bench.detection --seed {args.seed} --accounts {args.accounts} --months {args.months}` — "
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, Python {platform.python_version()}, {os.cpu_count()} cores.",
        "",
        f"Sample: {sample.n_accounts} accounts ({sample.n_customers} customers), {sample.n_rows:,} rows, "
        f"{sample.n_label_rows} label rows; generated in {generated - started:.1f} s, "
        f"pipeline {ran - generated:.1f} s.",
        "",
        "Per behaviour, per account: recall = TP / (TP + FN); precision = TP / (TP + FP), where FP counts every "
        "flagged account without the behaviour's label (whatever else is planted on it); *precision vs clean* "
        "counts only ordinary accounts (no label at all) as false positives. A behaviour no rule claims yet is "
        "*no rule*.",
        "",
        markdown(scores, pairs),
    ]
    target = out / "detection.md"
    target.write_text("\n".join(lines), encoding="utf-8")
    print(markdown(scores, pairs))
    print(f"written: {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
