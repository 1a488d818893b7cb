"""Great Expectations Data Docs of one run: the HTML pages of every suite's validation results.

    validation = validate_tables(frames, run_id=run_id, as_of=as_of)      # expectations.runner
    index = build_data_docs(validation.gx_results, data_docs_dir(database, run_id))

Built from the results the runner already has (nothing is validated twice), with a short-lived ephemeral
GX context holding only this run's results and one local site whose folder is the run's own:
`<database folder>/gx_docs/<run_id>/index.html`, next to the database it describes. Each folder is
self-contained (GX copies its static assets, ~4 MB, into every site; the offline copies add ~2.6 MB), so old
runs are removed by `prune_data_docs`, keeping the most recent ones.

Offline: building needs no network, and neither does viewing: GX's page templates link Bootstrap, jQuery,
bootstrap-table, Font Awesome and Vega from CDNs, and `expectations.datadocs_offline.make_offline` copies
those files from installed packages into the site's `static/vendor/` and points every page at the copies.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .datadocs_offline import make_offline

DOCS_FOLDER = "gx_docs"
SITE_NAME = "liushui_run"


def data_docs_dir(database: Path, run_id: str) -> Path:
    """Where the Data Docs of run `run_id` on `database` live."""
    return database.parent / DOCS_FOLDER / run_id


def build_data_docs(
    results_per_table: Mapping[str, Sequence[Any]], directory: Path, *, run_id: str | None = None
) -> Path:
    """Write the Data Docs site of one run into `directory` (replaced if it exists); return its index.html.

    `results_per_table`: table name -> GX `ExpectationSuiteValidationResult`s (as kept by
    `expectations.runner.validate_tables`). `run_id` (default: the folder's name) is the run shown on the
    pages; the table name is shown as the batch.
    """
    from expectations.runner import gx_session

    gx_session()  # offline environment and GX import, once per process
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier
    from great_expectations.data_context.types.resource_identifiers import (
        ExpectationSuiteIdentifier,
        ValidationResultIdentifier,
    )

    directory = directory.resolve()
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    run = RunIdentifier(run_name=run_id or directory.name)
    context = gx.get_context(mode="ephemeral")
    context.config.analytics_enabled = False
    context.add_data_docs_site(
        SITE_NAME,
        {
            "class_name": "SiteBuilder",
            # GX's DataDocsSiteConfigTypedDict lists only some keys (its own note says so); SiteBuilder takes this one.
            "show_how_to_buttons": False,  # type: ignore[typeddict-unknown-key]
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(directory)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder", "show_cta_footer": False},
        },
    )
    keys = []
    for table_name, results in results_per_table.items():
        for result in results:
            key = ValidationResultIdentifier(
                ExpectationSuiteIdentifier(name=result.suite_name), run, batch_identifier=table_name
            )
            context.validation_results_store.set(key, result)
            keys.append(key)
    context.build_data_docs(site_names=[SITE_NAME], resource_identifiers=keys)
    index = directory / "index.html"
    if not index.exists():
        raise RuntimeError(f"great_expectations built no Data Docs index in {directory}")
    remote = make_offline(directory)
    if remote:  # a GX upgrade linking a new CDN file: the pages still open, that file needs network
        logging.getLogger(__name__).warning(
            "Data Docs in %s still load %d remote file(s), e.g. %s", directory, len(remote), remote[0][1]
        )
    return index


def prune_data_docs(database: Path, *, keep: int) -> list[Path]:
    """Remove all but the `keep` most recent runs' Data Docs next to `database`; return what was removed.
    Run ids start with their UTC start time, so their names sort by age."""
    root = database.parent / DOCS_FOLDER
    if not root.is_dir():
        return []
    runs = sorted(p for p in root.iterdir() if p.is_dir())
    stale = runs[: max(len(runs) - keep, 0)]
    for path in stale:
        shutil.rmtree(path)
    return stale
