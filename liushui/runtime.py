"""Process-wide switches for the libraries, set before they are imported: offline, quiet, local state.

Nothing in liushui may reach the network at run time: Prefect's and Great Expectations' telemetry are
off and DuckDB never installs extensions. Prefect keeps its state beside the database a run serves
(`prefect_home`), so that runs against two databases never share one Prefect home and the CLI works from
any working directory. Values already set in the environment win (a deployment may point Prefect at a
real server or a home of its own).

A local Prefect server that liushui starts (`liushui serve`, `liushui prefect-server`) writes where it
answers into its Prefect home (`SERVER_RECORD`) while it lives; `liushui run` on the same database, with no
PREFECT_API_URL of its own, runs against it (`use_running_server`) instead of starting Prefect's temporary
server (~10 s), and its flow runs show in that server's UI.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import urllib.error
import urllib.request
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


SERVER_RECORD = "liushui-prefect-server.json"
"""In a Prefect home: {"api_url", "pid"} of the local server liushui started there, while it runs."""


def record_server(home: Path, api_url: str, pid: int) -> Path:
    """Say in `home` that the server of process `pid` answers at `api_url` (written whole, then renamed)."""
    path = home / SERVER_RECORD
    partial = path.with_suffix(".partial")
    partial.write_text(json.dumps({"api_url": api_url, "pid": pid}), encoding="utf-8")
    partial.replace(path)
    return path


def forget_server(home: Path, pid: int) -> None:
    """Remove `home`'s server record if it is still the one of process `pid`."""
    path = home / SERVER_RECORD
    with contextlib.suppress(OSError, ValueError):
        if json.loads(path.read_text(encoding="utf-8")).get("pid") == pid:
            path.unlink()


def running_server(home: Path, *, timeout_s: float = 1.0) -> str | None:
    """The API URL of the server `home`'s record names, if its process is alive and its health endpoint
    answers within `timeout_s`; else None (no record, a dead process, a server that does not answer)."""
    try:
        record = json.loads((home / SERVER_RECORD).read_text(encoding="utf-8"))
        api_url, pid = str(record["api_url"]), int(record["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not api_url.startswith(("http://127.0.0.1:", "http://localhost:")):
        return None  # only a server on this machine, as liushui starts them
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return api_url if server_answers(api_url, timeout_s=timeout_s) else None


def server_answers(api_url: str, *, timeout_s: float = 2.0) -> bool:
    """Does the Prefect API at `api_url` answer its health endpoint (200) within `timeout_s`?"""
    try:
        with urllib.request.urlopen(f"{api_url}/health", timeout=timeout_s) as response:  # noqa: S310 - local URL
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def use_running_server(home: Path) -> str | None:
    """Point Prefect at the running local server of `home` (PREFECT_API_URL) unless an API URL is already
    set; call before Prefect is imported. Returns the URL taken, or None (Prefect then starts its
    temporary server, as before)."""
    if os.environ.get("PREFECT_API_URL") or "prefect" in sys.modules:
        return None  # an API named already, or Prefect read its settings (at import) and would not see it
    api_url = running_server(home)
    if api_url:
        os.environ["PREFECT_API_URL"] = api_url
    return api_url
