"""Process-wide switches for the libraries, set before they are imported: offline, quiet, local state.

Nothing in liushui may reach the network at run time: Prefect's and Great Expectations' telemetry are
off, DuckDB never installs extensions, and Prefect keeps its state under the project's data folder.
Values already set in the environment win (a deployment may point Prefect at a real server).
"""

from __future__ import annotations

import os

from liushui.config import DEFAULT_DATA_DIR

OFFLINE_ENV = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_HOME": str(DEFAULT_DATA_DIR / "prefect"),
    "PREFECT_UI_ENABLED": "false",
    "GX_ANALYTICS_ENABLED": "false",
    "DASK_LOGGING__DISTRIBUTED": "warning",
    "POLARS_SKIP_CPU_CHECK": "1",
}


def configure_environment() -> None:
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
