"""Process-wide switches for the libraries, set before they are imported: offline, quiet, local state.

Nothing in liushui may reach the network at run time: Prefect's and Great Expectations' telemetry are
off and DuckDB never installs extensions. Prefect keeps its state beside the database a run serves
(`prefect_home`), so that runs against two databases never share one Prefect home and the CLI works from
any working directory. Values already set in the environment win (a deployment may point Prefect at a
real server or a home of its own).
"""

from __future__ import annotations

import os
from pathlib import Path

OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_UI_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "DASK_LOGGING__DISTRIBUTED": "warning",
    "POLARS_SKIP_CPU_CHECK": "1",
}


def configure_environment() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)


def prefect_home(database: Path) -> Path:
    """Prefect's state (its local API database, logs) for the runs of `database`: beside the database file,
    as its staging and Data Docs are (`<database folder>/prefect/<database name>`)."""
    return database.parent / "prefect" / database.stem


def use_prefect_home(database: Path) -> Path:
    """Point Prefect at `database`'s home (created on demand) unless PREFECT_HOME is already set; call before
    Prefect is imported, since Prefect reads its settings once at import. Returns the home in use."""
    home = Path(os.environ.setdefault("PREFECT_HOME", str(prefect_home(database))))
    home.mkdir(parents=True, exist_ok=True)
    return home
