"""Absolute limits are per currency: 50,000 CNY, JPY and INR are different sums.

A rule's absolute amounts come as a table per currency (`liushui.config`, e.g. `large_outflow.limits`); a
currency the table does not list takes the row of `liushui.config.FALLBACK_CURRENCY` as it is (not converted
through the optional reference `fx_rates.csv`: not wired into the per-account rules yet), and the flags judged on
it say so (`fallback_note_zh/_en`).
"""

from __future__ import annotations

from collections.abc import Mapping

import polars as pl

from liushui.config import FALLBACK_CURRENCY


def amount_for_currency(table: Mapping[str, float], currency: str = "currency") -> pl.Expr:
    """The table's amount for the row's currency (Float64); an unlisted currency takes the fallback's."""
    return pl.col(currency).replace_strict(dict(table), default=table[FALLBACK_CURRENCY], return_dtype=pl.Float64)


def is_listed_currency(table: Mapping[str, float], currency: str = "currency") -> pl.Expr:
    """The row's currency has its own amounts in the table."""
    return pl.col(currency).is_in(list(table))


def fallback_note_zh(table: Mapping[str, float], currency: str = "currency") -> pl.Expr:
    """Empty for a listed currency, else a note that the fallback currency's amount was used."""
    return (
        pl.when(is_listed_currency(table, currency))
        .then(pl.lit(""))
        .otherwise(pl.format("（{}未设限额，按{}数额）", pl.col(currency), pl.lit(FALLBACK_CURRENCY)))
    )


def fallback_note_en(table: Mapping[str, float], currency: str = "currency") -> pl.Expr:
    """Empty for a listed currency, else a note that the fallback currency's amount was used."""
    return (
        pl.when(is_listed_currency(table, currency))
        .then(pl.lit(""))
        .otherwise(
            pl.format(
                " (no limit set for {}: the {} amount is used as it is)", pl.col(currency), pl.lit(FALLBACK_CURRENCY)
            )
        )
    )
