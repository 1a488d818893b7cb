"""The liushui dashboard: a Streamlit app (app.py) on the published DuckDB, opened read-only.

`launch(database, port)` serves it on localhost until Ctrl-C; `start` does the same in the background and
returns the process (the screenshot script and the tests use it). Streamlit runs offline and headless: no
usage statistics, no browser opened, no file watcher (see STREAMLIT_ENV).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
from pathlib import Path

from liushui.config import DEFAULT_DATABASE
from liushui.runtime import OFFLINE_ENV

APP = Path(__file__).with_name("app.py")

STREAMLIT_ENV = {
    "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false",
    "STREAMLIT_SERVER_HEADLESS": "true",
    "STREAMLIT_SERVER_FILE_WATCHER_TYPE": "none",
    "STREAMLIT_SERVER_RUN_ON_SAVE": "false",
    "STREAMLIT_GLOBAL_DEVELOPMENT_MODE": "false",
    "STREAMLIT_CLIENT_TOOLBAR_MODE": "viewer",
}


def database_path(argv: list[str], environ: dict[str, str]) -> Path:
    """The app's database: `--db PATH` (after `streamlit run app.py --`), else LIUSHUI_DB, else the default."""
    parser = argparse.ArgumentParser(add_help=False, allow_abbrev=False)
    parser.add_argument("--db", type=Path)
    args, _ = parser.parse_known_args(argv)
    return (args.db or Path(environ.get("LIUSHUI_DB") or DEFAULT_DATABASE)).expanduser().resolve()


def streamlit_command(database: Path, port: int, *, address: str = "127.0.0.1") -> list[str]:
    """`python -m streamlit run app.py` with the same interpreter (the project's venv)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        address,
        "--",
        "--db",
        str(database),
    ]


def streamlit_environment(database: Path) -> dict[str, str]:
    """The caller's environment plus the offline switches; values the caller already set win."""
    return {**OFFLINE_ENV, **STREAMLIT_ENV, **os.environ, "LIUSHUI_DB": str(database)}


def stop(process: subprocess.Popen[bytes], *, grace_s: float = 10.0) -> None:
    """Stop a dashboard server: SIGTERM, then SIGKILL if it has not ended within `grace_s`."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def start(database: Path, port: int, *, address: str = "127.0.0.1", quiet: bool = False) -> subprocess.Popen[bytes]:
    """Start the dashboard server in the background; the caller stops it (`terminate()`, then `wait()`)."""
    output = subprocess.DEVNULL if quiet else None
    return subprocess.Popen(
        streamlit_command(database.resolve(), port, address=address),
        env=streamlit_environment(database.resolve()),
        stdin=subprocess.DEVNULL,
        stdout=output,
        stderr=output,
    )


def launch(database: Path, port: int, *, address: str = "127.0.0.1") -> int:
    """Serve the dashboard on http://address:port until Ctrl-C; return the server's exit code.

    Binds to localhost by default: the dashboard shows customers' transactions and has no login, so
    exposing it (address 0.0.0.0) belongs behind an authenticating proxy.
    """
    print(
        f"liushui dashboard on http://{address}:{port} (database {database.resolve()}, read-only); Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    process = start(database, port, address=address)
    # A service manager stops us with SIGTERM: pass it on, so the server never outlives its launcher.
    previous = signal.signal(signal.SIGTERM, lambda *_: process.terminate())
    try:
        return process.wait()
    except KeyboardInterrupt:
        stop(process)
        return 0
    finally:
        signal.signal(signal.SIGTERM, previous)
