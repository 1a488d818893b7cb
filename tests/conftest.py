"""Shared fixtures. The environment is set before any library import: offline, quiet, and a private
Prefect home per test session (never the developer's)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

_SESSION_HOME = Path(tempfile.mkdtemp(prefix="liushui-tests-"))
os.environ["PREFECT_HOME"] = str(_SESSION_HOME / "prefect")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")

from liushui.runtime import configure_environment  # noqa: E402

configure_environment()

import pytest  # noqa: E402

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The project's own synthetic bank exports in the real layouts (tests/fixtures/README.md): tests use these.
FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "bank_exports"
# The real anonymised samples exist only beside this workspace; tests against them are extras that skip
# when the folder is absent (LIUSHUI_SHARED_FIXTURES points elsewhere, e.g. /nonexistent to force the skip).
SHARED_FIXTURES = Path(
    os.environ.get("LIUSHUI_SHARED_FIXTURES") or PROJECT_ROOT.parent / "shared" / "fixtures" / "bank_exports"
)


@pytest.fixture(scope="session")
def prefect_harness():
    """Prefect's test harness: a real (temporary) API server and engine, once per session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    """A generated dataset with every planted behaviour and its labels (deterministic)."""
    from synthetic.generate import generate_sample

    out = tmp_path_factory.mktemp("sample")
    generate_sample(out, seed=11, n_accounts=150, months=9)
    return out


@pytest.fixture(scope="session")
def published_db(prefect_harness, sample_dir, tmp_path_factory) -> Path:
    """A database published by the real flow from the sample (read it only: tests share it)."""
    import shutil

    from flows.nightly import nightly
    from liushui.config import Settings

    work = tmp_path_factory.mktemp("published")
    shutil.copytree(sample_dir / "inbox", work / "inbox")
    db = work / "liushui.duckdb"
    nightly(Settings(inbox=work / "inbox", database=db, reference_dir=sample_dir / "reference"))
    return db


SLOW_FIXTURES = {"prefect_harness", "published_db"}
"""A test that runs the real flow (Prefect's engine) is slow by what it needs."""
SLOW_MODULES = {"test_crash", "test_dashboard", "test_sharding", "test_deploy"}
"""Subprocesses, a served dashboard, a Dask cluster, a Prefect server."""


def pytest_collection_modifyitems(config, items):
    """Mark the flow, subprocess and server tests `slow`, so that `make test-fast` (`-m "not slow"`) runs the
    literal-row and unit tests alone; a test may also carry the marker itself."""
    for item in items:
        if (
            SLOW_FIXTURES & set(getattr(item, "fixturenames", ()))
            or item.module.__name__.split(".")[-1] in SLOW_MODULES
        ):
            item.add_marker(pytest.mark.slow)
