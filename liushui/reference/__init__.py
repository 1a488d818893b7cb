"""Reference inputs: account ownership and declared related parties (optional CSV files).

`accounts.csv` (account_id, customer_id, holder_name, account_type, and optionally account_number and aliases:
the bank's numbers of the account as counterparties' statements show them, aliases separated by ';') and
`related_parties.csv` (customer_id, party_name, party_account, relation) in the reference folder. Both are
optional: without them every account is its own customer with no declared relations.

`fx_rates.csv` (currency, rate_to_cny, optionally valid_from), also optional: what one unit of a currency is
worth in CNY, from `valid_from` (ISO date) until the currency's next row; a currency without `valid_from`
has one rate for all time. Cross-account rules compare a transfer that changes currency through it; without
a rate for a currency such a transfer is not compared (docs/rules_integrity_cycles.md). The lender registry
ships next to this module (`lenders.yaml`).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from pathlib import Path

import polars as pl

from liushui.config import ConfigError
from liushui.contracts import ACCOUNTS_REF, FX_RATES_REF, RELATED_PARTIES_REF, Table


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


def read_fx_rates(reference_dir: Path | None) -> pl.DataFrame:
    """`fx_rates.csv` of the reference folder (empty without one); a rate that is not a positive number or a
    valid_from that is not an ISO date is a ConfigError naming the row."""
    path = reference_dir / "fx_rates.csv" if reference_dir is not None else None
    if path is None or not path.exists():
        return FX_RATES_REF.empty()
    as_text = replace(FX_RATES_REF, columns=tuple(replace(c, dtype=pl.String) for c in FX_RATES_REF.columns))
    raw = _read(path, as_text)
    parsed = raw.with_columns(
        currency=pl.col("currency").str.to_uppercase(),
        rate_to_cny=pl.col("rate_to_cny").cast(pl.Float64, strict=False),
        valid_from=pl.col("valid_from").str.to_date("%Y-%m-%d", strict=False),
    )
    bad = (parsed["rate_to_cny"].is_null() | (parsed["rate_to_cny"] <= 0)).fill_null(True) | (
        parsed["valid_from"].is_null() & raw["valid_from"].is_not_null()
    )
    if bad.any():
        row = int(bad.arg_true()[0]) + 1
        raise ConfigError(f"{path}, row {row}: rate_to_cny must be a positive number and valid_from an ISO date")
    return FX_RATES_REF.conform(parsed).collect()


def reference_warnings(
    reference_dir: Path | None,
    accounts: pl.DataFrame,
    related_parties: pl.DataFrame,
    fx_rates: pl.DataFrame,
    currencies: Collection[str],
) -> list[str]:
    """What the run could not judge for lack of reference data, one line per missing input naming the rules it
    weakens: a run without `--reference` (or with a file missing or empty) still publishes, but its results
    differ from a run with it, and the analyst must be told. `currencies`: the currencies of the rows judged."""
    where = f"{reference_dir}" if reference_dir is not None else "no --reference folder"
    found: list[str] = []
    if accounts.is_empty():
        found.append(
            f"accounts.csv missing or empty ({where}): every account is its own customer, so transfers between a "
            "customer's accounts count as transfers to others (RELATED_TRANSFER_HEAVY, ROUND_TRIP, CYCLE); "
            "counterparty numbers cannot be matched to accounts of the batch; no account is known as a credit card "
            "(OVERDRAWN judges every negative balance) or a business account (COMMINGLING and FAN_IN judge every "
            "account)"
        )
    if related_parties.is_empty():
        found.append(
            f"related_parties.csv missing or empty ({where}): no declared related party, so RELATED_TRANSFER_HEAVY "
            "sees only the customer's own accounts"
        )
    foreign = sorted(set(currencies) - {"CNY"} - set(fx_rates["currency"].to_list()))
    if foreign:
        found.append(
            f"fx_rates.csv has no rate for {', '.join(foreign)} ({where}): transfers that change currency into or out "
            "of it are not compared (CYCLE, SCATTER_GATHER, mirrored transfer legs)"
        )
    return found
