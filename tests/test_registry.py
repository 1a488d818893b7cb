"""The rule registry is the one list of rules: everything else that names rules is derived from it or agrees with it."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
import yaml

import transforms
from liushui.config import DEFAULT_RULES_PATH, Rules, RuleSection, load_rules
from transforms.flag_rows import Rule
from transforms.registry import FLAG_CODES, RULES, _problems, rule_for

ROOT = Path(__file__).resolve().parents[1]
NOT_A_RULE_SECTION = {"coverage", "account_risk"}
"""Sections of config/rules.yaml that configure no flag: coverage of months, and the account score itself."""


def _rules_declared_in_transforms() -> dict[str, Rule]:
    found: dict[str, Rule] = {}
    for module in pkgutil.iter_modules(transforms.__path__):
        namespace = vars(importlib.import_module(f"transforms.{module.name}"))
        found |= {value.code: value for value in namespace.values() if isinstance(value, Rule)}
    return found


def test_every_rule_declared_in_transforms_is_registered():
    declared = _rules_declared_in_transforms()
    assert sorted(declared) == sorted(FLAG_CODES), "a Rule in transforms/ is missing from transforms/registry.py"
    assert all(declared[rule.code] is rule for rule in RULES)


def test_the_registry_refuses_a_code_or_a_behaviour_claimed_twice():
    first, second = RULES[0], RULES[1]
    twin = Rule(**{**vars(second), "code": first.code, "behaviour": first.behaviour})
    assert _problems((first, twin)) == [
        f"{first.code}: registered twice",
        f"behaviour {first.behaviour}: detected by two rules",
    ]
    assert _problems((Rule(**{**vars(first), "code": "income_volatile"}),)) == ["income_volatile: not UPPER_SNAKE"]


def test_rule_for_names_the_known_codes():
    assert rule_for("MULTI_LENDER").name_zh == "多头借贷"
    with pytest.raises(KeyError, match="no rule has the code 'NOPE'; known: \\['INCOME_VOLATILE'"):
        rule_for("NOPE")


def test_each_rule_reads_a_section_of_rules_typed_with_its_model():
    fields = Rules.model_fields
    for rule in RULES:
        assert rule.section in fields, f"{rule.code}: liushui.config.Rules has no section {rule.section!r}"
        assert fields[rule.section].annotation is rule.config_model, f"{rule.code}: section typed otherwise"
    versioned = {
        name
        for name, field in fields.items()
        if isinstance(field.annotation, type) and issubclass(field.annotation, RuleSection)
    }
    unread = versioned - NOT_A_RULE_SECTION - {rule.section for rule in RULES}
    assert not unread, f"sections no rule reads: {sorted(unread)}"


def test_shipped_rules_file_has_every_rules_section_and_weight_and_no_unknown_code():
    raw = yaml.safe_load(DEFAULT_RULES_PATH.read_text(encoding="utf-8"))
    missing = sorted({rule.section for rule in RULES} - set(raw))
    assert not missing, f"config/rules.yaml lacks the sections {missing}"
    weights = load_rules().account_risk.weights
    assert sorted(weights) == sorted(FLAG_CODES), "account_risk.weights must name exactly the registry's codes"
    assert {code: weights[code] for code in FLAG_CODES} == {rule.code: rule.default_weight for rule in RULES}


def test_every_remediation_fills_in_from_its_section():
    rules = load_rules()
    for rule in RULES:
        zh, en = rule.remediation(getattr(rules, rule.section))
        assert zh and en and "{" not in zh + en, rule.code
    debt = rule_for("DEBT_BURDEN_HIGH").remediation(rules.debt_burden)
    assert "50%" in debt[0] and "below 50% of clean income" in debt[1]


def _readme_rule_table() -> list[list[str]]:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("| code | 名称 |"))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_readme_rule_table_lists_exactly_the_registry():
    rows = _readme_rule_table()
    assert [row[0] for row in rows] == [f"`{code}`" for code in FLAG_CODES], "README rule table: codes or order"
    for row, rule in zip(rows, RULES, strict=True):
        code, name_zh, _rule, weight, details = row
        assert name_zh == rule.name_zh, rule.code
        assert float(weight) == rule.default_weight, rule.code
        assert re.fullmatch(rf"\[[^\]]+\]\({re.escape(rule.doc)}\)", details), f"{rule.code}: link to {rule.doc}"


def test_each_rule_has_a_section_in_its_docs_page():
    for rule in RULES:
        page = ROOT / rule.doc
        assert page.is_file(), f"{rule.code}: {rule.doc} does not exist"
        headings = [line for line in page.read_text(encoding="utf-8").splitlines() if line.startswith("## ")]
        assert any(h.split()[1] == rule.code for h in headings), f"{rule.code}: no '## {rule.code}' in {rule.doc}"


def test_adding_a_rule_is_documented_and_linked():
    assert (ROOT / "docs" / "adding_a_rule.md").is_file()
    assert "docs/adding_a_rule.md" in (ROOT / "README.md").read_text(encoding="utf-8")
    assert "adding_a_rule.md" in (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")


PLANTED_WITHOUT_A_RULE: set[str] = set()
"""Known gaps: behaviours the generator plants that no rule detects yet (evaluation reports them as "no rule").
The list may only shrink: a rule that claims one of them must remove it from here."""


def test_evaluation_maps_every_planted_behaviour_to_its_rule():
    from synthetic.catalogue import BEHAVIOURS
    from synthetic.evaluate import BEHAVIOUR_FLAGS

    assert not set(BEHAVIOUR_FLAGS) - set(BEHAVIOURS), "a rule claims a behaviour the generator does not plant"
    gaps = set(BEHAVIOURS) - set(BEHAVIOUR_FLAGS)
    assert not gaps - PLANTED_WITHOUT_A_RULE, f"planted, no rule detects it, not a known gap: {sorted(gaps)}"
    assert not PLANTED_WITHOUT_A_RULE - gaps, (
        f"now detected, remove from PLANTED_WITHOUT_A_RULE: {sorted(PLANTED_WITHOUT_A_RULE - gaps)}"
    )
    assert {rule.behaviour: rule.code for rule in RULES if rule.behaviour is not None} == BEHAVIOUR_FLAGS


def test_risk_flags_suite_accepts_exactly_the_registry_codes():
    pytest.importorskip("great_expectations")
    from expectations.suites import suite_for

    in_set = [
        check.kwargs["value_set"]
        for check in suite_for("risk_flags").checks
        if check.expectation_type == "expect_column_values_to_be_in_set" and check.kwargs.get("column") == "flag_code"
    ]
    assert in_set == [list(FLAG_CODES)]


# --- vocabularies: declared once in liushui/vocabularies.py, used by the suites and the column docs ----------
def _vocabulary_columns():
    from liushui import vocabularies as v

    return [
        ("transactions", "txn_class", v.TXN_CLASSES),
        ("transactions", "currency", v.ISO_4217),
        ("quarantine", "reason_code", v.QUARANTINE_REASON_CODES),
        ("source_files", "status", v.FILE_STATUSES),
        ("transfer_links", "link_type", v.LINK_TYPES),
        ("risk_flags", "severity", v.SEVERITIES),
        ("account_risk", "band", v.RISK_BANDS),
        ("account_risk", "recovery_status", v.RECOVERY_STATUSES),
        ("account_risk", "statement_trust", v.STATEMENT_TRUST_LEVELS),
        ("dq_results", "level", v.DQ_LEVELS),
        ("pipeline_runs", "status", v.RUN_STATUSES),
        ("pipeline_runs", "mode", v.RUN_MODES),
    ]


def test_suites_check_each_published_enum_against_its_vocabulary():
    pytest.importorskip("great_expectations")
    from expectations.suites import suite_for

    for table, column, values in _vocabulary_columns():
        in_set = [
            check.kwargs["value_set"]
            for check in suite_for(table).checks
            if check.expectation_type == "expect_column_values_to_be_in_set" and check.kwargs.get("column") == column
        ]
        assert in_set == [list(values)], f"{table}.{column}"


def test_column_descriptions_name_every_value_of_their_vocabulary():
    from liushui.contracts import table

    for name, column, values in _vocabulary_columns():
        if column == "currency":
            continue  # described as "ISO 4217 code", not listed
        description = next(c.description for c in table(name).columns if c.name == column)
        missing = [value for value in values if not re.search(rf"\b{value}\b", description)]
        assert not missing, f"{name}.{column}: {missing}"


def test_a_weight_for_an_unknown_code_is_named():
    from transforms.registry import unknown_weight_codes

    assert unknown_weight_codes({"LARGE_OUTFLOW": 10, "LARGE_OUTFLOWS": 5, "cycle": 1}) == ["LARGE_OUTFLOWS", "cycle"]
    assert unknown_weight_codes({"LARGE_OUTFLOW": 10}) == []
