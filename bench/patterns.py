"""The regexes the peers use, taken from liushui's lender registry the way a SQL / pandas user would:
one union of every lender's counterparty patterns, one of every description pattern. No per-entry
priority, no exclusions, no `when_both` pairs, no full-width folding (liushui does all of these)."""

from __future__ import annotations

from functools import cache
from importlib import resources

import yaml

REFUND = "退款|冲正"
REPAY_ONLY = "还款|退款|退货"


@cache
def lender_patterns() -> tuple[str, str]:
    text = resources.files("liushui.reference").joinpath("lenders.yaml").read_text(encoding="utf-8")
    registry = yaml.safe_load(text)
    cps, dss = [], []
    for entry in registry["lenders"]:
        cps += entry.get("counterparty_patterns", [])
        dss += entry.get("description_patterns", [])
    fix = lambda p: p.replace("（", r"\(").replace("）", r"\)")  # noqa: E731
    return "(?i)" + "|".join(f"(?:{fix(p)})" for p in cps), "(?i)" + "|".join(f"(?:{fix(p)})" for p in dss)
