"""Benchmark data: `generate_sample` output per row count, reused when its marker file is present."""

from __future__ import annotations

import json
import time
from pathlib import Path

MARKER = "GENERATED.json"


def dataset(out: Path, rows: int) -> Path:
    """Directory `out/data_<rows>` with `inbox/` and `reference/`; generated once (marker file)."""
    from liushui.generate import generate_sample

    root = out / f"data_{rows}"
    marker = root / MARKER
    if marker.exists():
        return root
    started = time.perf_counter()
    sample = generate_sample(root, target_rows=rows, file_format="both")
    marker.write_text(json.dumps({
        "target_rows": rows,
        "n_rows": sample.n_rows,
        "n_overlap_rows": sample.n_overlap_rows,
        "n_accounts": sample.n_accounts,
        "n_customers": sample.n_customers,
        "seconds": round(time.perf_counter() - started, 1),
    }, indent=1))
    return root


def info(root: Path) -> dict:
    return json.loads((root / MARKER).read_text())


if __name__ == "__main__":
    import sys

    for n in sys.argv[1:]:
        r = dataset(Path("bench/out"), int(n))
        print(r, info(r), flush=True)
