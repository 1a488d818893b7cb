"""Data Docs open offline: every file the pages load is in the site (copied from installed packages), no page
or stylesheet loads anything over the network; links in plain anchors to GX's web site are allowed (a reader
may follow them, nothing loads them). JS libraries are not scanned: their URL strings (docs, schemas) are not
fetched on opening a page."""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path

import polars as pl
import pytest

from expectations import datadocs
from expectations.datadocs import build_data_docs, data_docs_dir
from expectations.datadocs_offline import (
    ASSETS,
    REPLACEMENTS,
    VENDOR_FOLDER,
    local_references,
    make_offline,
    remote_loads,
)
from tests.test_datadocs import AS_OF, canonical

ANY_URL = re.compile(r"https?://[^\s\"'<>()]+", re.IGNORECASE)
ANCHOR_HREF = re.compile(r"<a\b[^>]*?\bhref\s*=\s*[\"'](https?://[^\"']+)[\"']", re.IGNORECASE)
CSS_REMOTE = re.compile(r"(?:url\(\s*[\"']?|@import\s+(?:url\(\s*)?[\"']?)(?:https?:)?//", re.IGNORECASE)
CSS_COMMENT = re.compile(r"/\*.*?\*/", re.DOTALL)


@pytest.fixture(scope="module")
def sites(tmp_path_factory) -> tuple[Path, Path]:
    """(the site as GX 1.24.1 writes it, the same site as build_data_docs leaves it)."""
    from expectations.runner import validate_tables

    good = validate_tables({"canonical_transactions": canonical(["a1", "a2"])}, run_id="r-off", as_of=AS_OF)
    bad = validate_tables({"quarantine": pl.DataFrame({"source_file": ["x.csv"]})}, run_id="r-off", as_of=AS_OF)
    root = tmp_path_factory.mktemp("docs")
    offline = build_data_docs((good | bad).gx_results, data_docs_dir(root / "w.duckdb", "r-off")).parent
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datadocs, "make_offline", lambda site: [])
        raw = build_data_docs((good | bad).gx_results, root / "raw").parent
    return raw, offline


def pages(site: Path) -> list[Path]:
    found = sorted(site.rglob("*.html"))
    assert len(found) == 5  # the index and one page per suite
    return found


def test_gx_pages_as_written_load_every_mapped_cdn_file(sites):
    raw, _ = sites
    loaded = {url.split("?")[0] for _, url in remote_loads(raw)}
    assert loaded == set(REPLACEMENTS)  # all mapped, nothing mapped that GX does not link
    assert make_offline(raw) == []  # and the rewrite clears them in place too


def test_no_page_or_stylesheet_loads_anything_remote(sites):
    _, site = sites
    assert remote_loads(site) == []
    for page in pages(site):
        text = page.read_text(encoding="utf-8")
        # independent of the module's tag parser: every URL left in the page is a plain anchor's target
        assert set(ANY_URL.findall(text)) <= set(ANCHOR_HREF.findall(text)), page
        assert set(ANCHOR_HREF.findall(text)) <= {
            "https://greatexpectations.io",
            "https://greatexpectations.io/newsletter?utm_source=datadocs&utm_medium=product"
            "&utm_campaign=newsletter&utm_content=form",
        }
        assert "integrity=" not in text and "crossorigin" not in text  # the copies are not the CDN's bytes
        assert "popper" not in text  # Bootstrap's bundle carries it
        assert "posthog" not in text.lower()
    for sheet in site.rglob("*.css"):
        text = CSS_COMMENT.sub("", sheet.read_text(encoding="utf-8"))
        assert not CSS_REMOTE.search(text), sheet


def test_every_local_reference_exists_and_the_copies_are_used(sites):
    _, site = sites
    references = local_references(site)
    missing = [(page.relative_to(site), target) for page, target in references if not target.exists()]
    assert missing == []
    used = {target for _, target in references}
    for asset in ASSETS:
        copied = (site / asset.site_path).resolve()
        assert copied.stat().st_size > 0
        assert copied in used, asset.site_path
    fonts = sorted(p.name for p in (site / VENDOR_FOLDER / "font-awesome" / "webfonts").iterdir())
    assert "fa-solid-900.woff2" in fonts  # loaded by Font Awesome's own CSS, by relative path
    # every page, at its depth, points at the same copies
    for page in pages(site):
        text = page.read_text(encoding="utf-8")
        prefix = Path(os.path.relpath(site, page.parent)).as_posix()
        assert f'src="{prefix}/{VENDOR_FOLDER}/bootstrap-table/bootstrap-table.min.js"' in text
        assert f'src="{prefix}/{VENDOR_FOLDER}/jquery/jquery.min.js"' in text


def test_gx_analytics_stay_off(sites):
    from expectations.runner import gx_session

    gx_session()
    assert os.environ["GX_ANALYTICS_ENABLED"] == "false"
    assert "posthog" not in sys.modules  # GX 1.24's usage-statistics client is not even loaded


def test_a_new_cdn_link_is_reported_and_left_alone(sites, tmp_path):
    _, site = sites
    copy = tmp_path / "site"
    shutil.copytree(site, copy)
    page = copy / "index.html"
    text = page.read_text(encoding="utf-8")
    page.write_text(text.replace("</head>", '<script src="https://cdn.example/new.js"></script></head>'), "utf-8")
    assert make_offline(copy) == [(page, "https://cdn.example/new.js")]
