"""Checkpoints: where a lazy plan is cut and its result kept, so that what follows reads a table instead of
re-planning (and re-running) everything before it.

A `Checkpoint` takes a lazy frame and returns one that reads its result. `in_memory` collects; the flow's
`transforms.signals.spill_to` writes Parquet and scans it back. A transform that builds its plan in a loop (a
path grown hop by hop, rounds of a selection) takes one, because Polars optimises the whole plan at every
collect and a plan that doubles each round costs seconds to plan on ten rows."""

from __future__ import annotations

from collections.abc import Callable

import polars as pl

Checkpoint = Callable[[pl.LazyFrame], pl.LazyFrame]


def in_memory(frame: pl.LazyFrame) -> pl.LazyFrame:
    """The default checkpoint: collect once, keep the result in memory."""
    return frame.collect().lazy()
