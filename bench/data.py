"""Benchmark data: `generate_sample` output per row count, reused when its marker file is present.

Above `MAX_SINGLE_ROWS` the data is composed of shards generated with different seeds (one generator
call per ~10 M rows): `generate_sample` cannot make one world that large — its company-name pools are
finite (10 cities x 40 words x 5 trade kinds = 2,000 trade-company names) and `_company_pool` loops
forever once it asks for more distinct names than exist (`n_accounts // 10` trade companies: from about
20,000 accounts, i.e. ~19 M rows, the call never returns). Shard files keep their content; customer ids
in the reference files get a shard prefix so that customers of different shards never merge. Shards are
generated once into `out/shards/` and shared by the composed sizes.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import polars as pl

from synthetic.generate import BOOKED_AT_FORMAT

MARKER = "GENERATED.json"
MAX_SINGLE_ROWS = 12_000_000
SHARD_ROWS = 10_000_000


def _generate(root: Path, rows: int, seed: int = 7):
    from synthetic.generate import generate_sample

    return generate_sample(root, target_rows=rows, file_format="both", seed=seed)


def dataset(out: Path, rows: int) -> Path:
    """Directory `out/data_<rows>` with `inbox/` and `reference/`; generated once (marker file)."""
    root = out / f"data_{rows}"
    marker = root / MARKER
    if marker.exists():
        return root
    started = time.perf_counter()
    if rows <= MAX_SINGLE_ROWS:
        s = _generate(root, rows)
        meta = {
            "n_rows": s.n_rows,
            "n_overlap_rows": s.n_overlap_rows,
            "n_accounts": s.n_accounts,
            "n_customers": s.n_customers,
            "shards": 1,
        }
    else:
        meta = _composed(root, rows)
    marker.write_text(
        json.dumps({"target_rows": rows, **meta, "seconds": round(time.perf_counter() - started, 1)}, indent=1)
    )
    return root


def _composed(root: Path, rows: int) -> dict:
    k = math.ceil(rows / SHARD_ROWS)
    inbox, reference = root / "inbox", root / "reference"
    inbox.mkdir(parents=True, exist_ok=True)
    reference.mkdir(parents=True, exist_ok=True)
    accounts, related = [], []
    meta = {"n_rows": 0, "n_overlap_rows": 0, "n_accounts": 0, "n_customers": 0, "shards": k}
    for i in range(k):
        # shared by the composed sizes (50 M and 100 M take the same first five shards)
        shard = root.parent / "shards" / f"seed_{7 + i}_{rows // k}"
        done = shard / MARKER
        if done.exists():
            s = json.loads(done.read_text())
        else:
            g = _generate(shard, rows // k, seed=7 + i)
            s = {
                "n_rows": g.n_rows,
                "n_overlap_rows": g.n_overlap_rows,
                "n_accounts": g.n_accounts,
                "n_customers": g.n_customers,
            }
            done.write_text(json.dumps(s))
        for key in ("n_rows", "n_overlap_rows", "n_accounts", "n_customers"):
            meta[key] += s[key]
        for f in sorted((shard / "inbox").iterdir()):
            link = inbox / f"s{i}_{f.name}"
            if not link.exists():
                link.symlink_to(f.resolve())
        prefix = pl.lit(f"S{i}-")
        accounts.append(
            pl.read_csv(shard / "reference" / "accounts.csv", infer_schema=False).with_columns(
                customer_id=prefix + pl.col("customer_id")
            )
        )
        related.append(
            pl.read_csv(shard / "reference" / "related_parties.csv", infer_schema=False).with_columns(
                customer_id=prefix + pl.col("customer_id")
            )
        )
    acc = pl.concat(accounts)
    meta["account_id_collisions"] = acc.height - acc["account_id"].n_unique()
    acc.write_csv(reference / "accounts.csv")
    pl.concat(related).write_csv(reference / "related_parties.csv")
    return meta


FORMATS = {"csv": "unquoted CSV", "quoted_csv": "quoted CSV", "parquet": "Parquet"}
"""The one-format copies of a data set (`variant`): key -> the name the benchmark gives it."""


def variant(out: Path, rows: int, fmt: str) -> Path:
    """`out/data_<rows>_<fmt>`: the rows of `dataset(out, rows)` with every inbox file in one format —
    unquoted CSV (quoting only where a cell needs it), CSV with every cell quoted, or Parquet (the
    generator's Parquet schema: datetime, Decimal amounts) — and the same reference folder. The generator
    writes a mix of the three; the speed targets hold for each format alone. CSV text is carried over
    as text (read all-string, written again), so a CSV copy has exactly the generator's cells; built once
    (marker file)."""
    if fmt not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {fmt!r}")
    source = dataset(out, rows)
    root = out / f"data_{rows}_{fmt}"
    marker = root / MARKER
    if marker.exists():
        return root
    inbox = root / "inbox"
    inbox.mkdir(parents=True, exist_ok=True)
    if not (root / "reference").exists():
        (root / "reference").symlink_to((source / "reference").resolve())
    files = sorted(f.resolve() for f in (source / "inbox").iterdir())
    schema = next((pl.read_parquet_schema(f) for f in files if f.suffix == ".parquet"), None)
    for f in files:
        stem = f.name.rsplit(".", 1)[0]
        if fmt == "parquet":
            if f.suffix == ".parquet":
                (inbox / f.name).symlink_to(f)
                continue
            if schema is None:
                raise FileNotFoundError(f"no Parquet part in {source / 'inbox'} to take the schema from")
            frame = pl.read_csv(f, infer_schema=False).with_columns(
                pl.col(c).str.to_datetime(BOOKED_AT_FORMAT) if t == pl.Datetime else pl.col(c).cast(t)
                for c, t in schema.items()
            )
            frame.write_parquet(inbox / f"{stem}.parquet", compression="zstd", statistics=True)
            continue
        quote = "always" if fmt == "quoted_csv" else "necessary"
        if f.suffix == ".parquet":
            pl.read_parquet(f).write_csv(inbox / f"{stem}.csv", datetime_format=BOOKED_AT_FORMAT, quote_style=quote)
        else:
            pl.read_csv(f, infer_schema=False).write_csv(inbox / f"{stem}.csv", quote_style=quote)
    marker.write_text(json.dumps({**info(source), "format": FORMATS[fmt], "source": str(source)}, indent=1))
    return root


def info(root: Path) -> dict:
    return json.loads((root / MARKER).read_text())


if __name__ == "__main__":
    import sys

    for n in sys.argv[1:]:
        r = dataset(Path("bench/out"), int(n))
        print(r, info(r), flush=True)
