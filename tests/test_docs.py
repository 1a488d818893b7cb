"""Docs generated from code stay in step with it."""

from apps.tabledocs import TABLES_MD, render


def test_tables_md_is_up_to_date():
    assert TABLES_MD.read_text(encoding="utf-8") == render(), "docs/tables.md is stale: run `liushui docs`"


def test_every_published_column_is_documented():
    from liushui.contracts import PUBLISHED_TABLES

    text = render()
    for table in PUBLISHED_TABLES:
        for column in table.columns:
            assert f"| `{column.name}` |" in text and column.description


def test_example_account_ids_exist_in_the_sample_make_run_builds(tmp_path):
    """Every account id an example names (README, docs, --help texts, docstrings) is an account of the
    built-in sample, generated with the Makefile's own parameters."""
    import re
    from pathlib import Path

    import polars as pl

    from synthetic.generate import generate_sample

    root = Path(__file__).resolve().parents[1]
    params = re.search(
        r"liushui generate \$\(SAMPLE\) --seed (\d+) --accounts (\d+) --months (\d+)", (root / "Makefile").read_text()
    )
    assert params, "the Makefile no longer generates the sample with --seed/--accounts/--months"
    seed, accounts, months = map(int, params.groups())
    generate_sample(tmp_path, seed=seed, n_accounts=accounts, months=months, file_format="csv")
    sample_ids = set(pl.read_csv(tmp_path / "reference" / "accounts.csv", infer_schema=False)["account_id"])
    places = [
        root / "README.md",
        *sorted((root / "docs").glob("*.md")),
        *(path for package in ("liushui", "apps", "flows") for path in sorted((root / package).rglob("*.py"))),
        *sorted((root / "scripts").glob("*.py")),
    ]
    named = {
        (path.relative_to(root).as_posix(), m.group(0))
        for path in places
        for m in re.finditer(
            r"(?:liushui (?:account|report)|--account|account=|account_report\([^,]+,) ?\"?(\d{12,19})",
            path.read_text(encoding="utf-8"),
        )
    }
    named = {(place, re.search(r"\d{12,19}", text).group(0)) for place, text in named}
    assert named, "no example account id found: the pattern above no longer matches the docs"
    missing = sorted((place, account) for place, account in named if account not in sample_ids)
    assert not missing, f"example ids not in the default sample: {missing}"
