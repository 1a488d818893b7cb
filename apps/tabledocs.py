"""`docs/tables.md`, generated from the contracts (the one place the schemas are declared).

Regenerate with `liushui docs`; a test fails when the committed file is out of date.
"""

from __future__ import annotations

from pathlib import Path

from liushui.config import PROJECT_ROOT
from liushui.contracts import PUBLISHED_TABLES, Table
from liushui.store import VIEWS

TABLES_MD = PROJECT_ROOT / "docs" / "tables.md"


def _table_section(table: Table) -> str:
    lines = [
        f"## `{table.name}`",
        "",
        table.description,
        "",
        f"Primary key: `{', '.join(table.primary_key)}`"
        + (
            ""
            if table.index_primary_key
            else " (checked every run by a blocking expectation; no DuckDB index, "
            "which must fit in memory and slows bulk inserts)"
        )
        + ". "
        + (
            "Rows are replaced per account on recompute."
            if table.account_scoped and not table.append_only
            else "Append-only history."
        ),
        "",
        "| column | type | null | unit | meaning |",
        "|---|---|---|---|---|",
    ]
    for c in table.columns:
        lines.append(f"| `{c.name}` | {c.sql} | {'yes' if c.nullable else 'no'} | {c.unit} | {c.description} |")
    return "\n".join(lines) + "\n"


def render() -> str:
    parts = [
        "# Published tables\n",
        "Generated from `liushui/contracts.py` by `liushui docs` — do not edit by hand.\n",
        "Money is `DECIMAL(18,2)` in the row's currency (never added across currencies); timestamps are "
        "bank local time (Asia/Shanghai for Chinese banks); `_on` columns are dates, `_at` timestamps.\n",
    ]
    parts += [_table_section(t) for t in PUBLISHED_TABLES]
    parts.append("## Views\n")
    parts += [f"- `{name}`: `{' '.join(sql.split())}`" for name, sql in VIEWS.items()]
    return "\n".join(parts) + "\n"


def write(path: Path = TABLES_MD) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(), encoding="utf-8")
    return path
