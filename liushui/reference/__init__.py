"""Reference inputs: account ownership and declared related parties (optional CSV files).

`accounts.csv` (account_id, customer_id, holder_name, account_type) and `related_parties.csv`
(customer_id, party_name, party_account, relation) in the reference folder. Both are optional: without
them every account is its own customer with no declared relations. The lender registry ships next to
this module (`lenders.yaml`).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from liushui.config import ConfigError
from liushui.contracts import ACCOUNTS_REF, RELATED_PARTIES_REF, Table


def _read(path: Path, table: Table) -> pl.DataFrame:
    if not path.exists():
        return table.empty()
    try:
        frame = pl.read_csv(path, infer_schema=False, encoding="utf8")
    except (pl.exceptions.ComputeError, pl.exceptions.NoDataError) as exc:
        raise ConfigError(f"{path}: cannot read reference file: {str(exc).splitlines()[0]}") from None
    frame = frame.rename({c: c.strip().lstrip("\ufeff") for c in frame.columns})
    missing = [c for c in table.required if c not in frame.columns]
    if missing:
        raise ConfigError(f"{path}: missing column(s) {', '.join(missing)}; expected {', '.join(table.names)}")
    frame = frame.with_columns(pl.col(c).str.strip_chars() for c in frame.columns if c in table.names)
    empty = frame.select(pl.any_horizontal(pl.col(c).is_null() for c in table.required)).to_series()
    if empty.any():
        row = int(empty.arg_true()[0]) + 1
        raise ConfigError(f"{path}, row {row}: empty value in a required column ({', '.join(table.required)})")
    return table.conform(frame).collect()


def read_reference(reference_dir: Path | None) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(accounts, related_parties); empty tables when there is no reference folder or file."""
    if reference_dir is None:
        return ACCOUNTS_REF.empty(), RELATED_PARTIES_REF.empty()
    return (
        _read(reference_dir / "accounts.csv", ACCOUNTS_REF),
        _read(reference_dir / "related_parties.csv", RELATED_PARTIES_REF),
    )
