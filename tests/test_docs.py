"""Docs generated from code stay in step with it."""

from liushui.tabledocs import TABLES_MD, render


def test_tables_md_is_up_to_date():
    assert TABLES_MD.read_text(encoding="utf-8") == render(), "docs/tables.md is stale: run `liushui docs`"


def test_every_published_column_is_documented():
    from liushui.contracts import PUBLISHED_TABLES

    text = render()
    for table in PUBLISHED_TABLES:
        for column in table.columns:
            assert f"| `{column.name}` |" in text and column.description
