"""Stable ids: the same facts give the same id on every run, process and machine.

Polars' own `hash` is seeded per process, so ids are SHA-256 (polars_hash's `chash` namespace) over the
facts' text joined by `|`, cut to 32 hex digits (128 bits: no collision in any dataset this side of 10^18
rows). `flag_id`, `link_id` and `chain_id` are made here.
"""

from __future__ import annotations

import polars as pl
import polars_hash  # noqa: F401  (registers the stable `chash` namespace)


def stable_id(*parts: pl.Expr) -> pl.Expr:
    """The first 32 hex digits of SHA-256 over the parts' text joined by `|`; a null part gives a null id
    (never one shared with another row)."""
    joined = pl.concat_str(list(parts), separator="|")
    hashed: pl.Expr = joined.chash.sha2_256()  # type: ignore[attr-defined]  # polars_hash ships no types
    return hashed.str.slice(0, 32)
