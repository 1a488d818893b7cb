"""The sample's reference tables and ground truth, as frames: `reference/accounts.csv` (one row per
account), `reference/related_parties.csv` (one row per declared related party of a customer, and one
`self` row per account of a customer with two), `reference/fx_rates.csv` and `labels.csv` (one row per
account x behaviour x month planted)."""

from __future__ import annotations

import numpy as np
import polars as pl

from synthetic.catalogue import BEHAVIOURS, CURRENCIES, RATE_TO_CNY
from synthetic.world import World


def accounts_frame(w: World) -> pl.DataFrame:
    """account_id, customer_id, holder_name, account_type (personal / business)."""
    return pl.DataFrame(
        {
            "account_id": w.account_ids,
            "customer_id": [w.customer_ids[c] for c in w.cust_of],
            "holder_name": w.holder,
            "account_type": np.where(w.is_business, "business", "personal").tolist(),
        }
    )


def related_parties_frame(w: World) -> pl.DataFrame:
    """customer_id, party_name, party_account, relation; by customer, its `self` rows first."""
    rows: list[tuple[str, str, str, str]] = []
    for c, parties in enumerate(w.related):
        rows.extend((w.customer_ids[c], name, card, rel) for name, card, rel in parties)
    for a in range(w.n):
        if w.other[a] >= 0:
            rows.append((w.customer_ids[w.cust_of[a]], w.holder[a], w.account_ids[a], "self"))
    rows.sort(key=lambda r: (r[0], r[3] != "self", r[2]))
    return pl.DataFrame(rows, schema=["customer_id", "party_name", "party_account", "relation"], orient="row")


def fx_rates_frame() -> pl.DataFrame:
    """currency, rate_to_cny (exact decimals as text): the rates the generator converts at."""
    return pl.DataFrame({"currency": list(CURRENCIES), "rate_to_cny": list(RATE_TO_CNY)})


def labels_frame(w: World) -> pl.DataFrame:
    """account_id, behaviour, month_on (first day of the month): the labels the world collected, each once,
    by account, behaviour (in `BEHAVIOURS` order) and month."""
    unique = sorted(set(w.labels), key=lambda r: (r[0], BEHAVIOURS.index(r[1]), r[2]))
    return pl.DataFrame(
        {
            "account_id": [w.account_ids[a] for a, _, _ in unique],
            "behaviour": [b for _, b, _ in unique],
            "month_on": pl.Series([w.month_on[m] for _, _, m in unique], dtype=pl.Date),
        }
    )
