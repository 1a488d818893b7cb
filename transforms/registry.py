"""The rule registry: every rule, once, in the order the README's rule table lists them.

A rule is one `transforms.flag_rows.Rule` record declared beside its function, in the module of its business
concept — income, outflows, transfers, credit (one section per rule), commingling, integrity, cycles —
with its typed settings model in the ground (`liushui.config`, which says why). Adding one:
docs/adding_a_rule.md.

Derived from `RULES`: `FLAG_CODES` (the `risk_flags.flag_code` vocabulary, which the risk_flags suite checks),
`synthetic.evaluate.BEHAVIOUR_FLAGS` (which flag detects which planted behaviour). Checked against it
by tests/test_registry.py: config/rules.yaml (a section and a weight per rule, no unknown code),
`liushui.config.Rules` (each rule's section typed with its model), the README's rule table, the docs pages,
and that every `Rule` declared in `transforms` is registered here.

`transforms.signals` wires the functions (their inputs differ: months, links, breaks, ...); a rule missing
there publishes no flag, which the rule's own tests and the end-to-end recall test catch.
"""

from __future__ import annotations

import re

from transforms.balances import OVERDRAWN, WINDOW_DRESSING
from transforms.commingling import COMMINGLING
from transforms.credit import (
    BORROW_TO_REPAY,
    BORROWING_FREQUENT,
    CASH_LOAN_RELIANCE,
    DEBT_BURDEN_HIGH,
    MULTI_LENDER,
    OVERDUE_PENALTY,
)
from transforms.cycles import CYCLE
from transforms.fan import FAN_IN, FAN_OUT
from transforms.flag_rows import Rule
from transforms.gather_scatter import GATHER_SCATTER
from transforms.income import INCOME_VOLATILE
from transforms.income_streams import INCOME_STOPPED
from transforms.integrity import BALANCE_BREAK
from transforms.outflows import LARGE_OUTFLOW
from transforms.pass_through import PASS_THROUGH
from transforms.scatter_gather import SCATTER_GATHER
from transforms.transfers import RELATED_TRANSFER_HEAVY, ROUND_TRIP

RULES: tuple[Rule, ...] = (
    INCOME_VOLATILE,
    INCOME_STOPPED,
    LARGE_OUTFLOW,
    RELATED_TRANSFER_HEAVY,
    ROUND_TRIP,
    PASS_THROUGH,
    MULTI_LENDER,
    BORROWING_FREQUENT,
    CASH_LOAN_RELIANCE,
    BORROW_TO_REPAY,
    OVERDUE_PENALTY,
    OVERDRAWN,
    WINDOW_DRESSING,
    DEBT_BURDEN_HIGH,
    COMMINGLING,
    BALANCE_BREAK,
    CYCLE,
    SCATTER_GATHER,
    FAN_IN,
    FAN_OUT,
    GATHER_SCATTER,
)

FLAG_CODES: tuple[str, ...] = tuple(rule.code for rule in RULES)
"""The `risk_flags.flag_code` vocabulary."""

FLAG_CODE_PATTERN = r"^[A-Z][A-Z0-9_]*$"
"""What a code looks like (UPPER_SNAKE); the risk_flags suite checks it on every row."""


def rule_for(code: str) -> Rule:
    """The rule of a flag code; KeyError naming the known codes for any other."""
    for rule in RULES:
        if rule.code == code:
            return rule
    raise KeyError(f"no rule has the code {code!r}; known: {list(FLAG_CODES)}")


def unknown_weight_codes(weights: dict[str, float]) -> list[str]:
    """Codes a rules file weighs that no rule has (a typo would otherwise score 0 without a word)."""
    return sorted(code for code in weights if code not in FLAG_CODES)


def _problems(rules: tuple[Rule, ...]) -> list[str]:
    """What would make the registry ambiguous: a code or a behaviour claimed twice, a malformed code."""
    problems = [f"{r.code}: not UPPER_SNAKE" for r in rules if not re.fullmatch(FLAG_CODE_PATTERN, r.code)]
    codes = [r.code for r in rules]
    problems += [f"{c}: registered twice" for c in sorted({c for c in codes if codes.count(c) > 1})]
    behaviours = [r.behaviour for r in rules if r.behaviour is not None]
    problems += [
        f"behaviour {b}: detected by two rules" for b in sorted({b for b in behaviours if behaviours.count(b) > 1})
    ]
    return problems


if _problems(RULES):  # at import: a broken registry must not run a night
    raise ValueError(f"rule registry: {'; '.join(_problems(RULES))}")
