"""Running the nightly flow on a schedule, and backfilling past as-of dates.

    serve(settings)                                   # blocks: the nightly cron, until SIGTERM
    backfill(settings, start=date(2026, 7, 1), end=date(2026, 10, 15))

`serve` needs a Prefect API server that can schedule (the temporary server Prefect starts on its own
cannot): the one named by PREFECT_API_URL (or `api_url`), else a local `prefect server start` that lives
as long as `serve` does, its state under the project's data/prefect. `prefect.yaml` describes the same
deployment for a `prefect deploy` + worker setup (docs/operations.md).
"""

from __future__ import annotations

import calendar
import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from liushui.config import DEFAULT_DATA_DIR, Settings
from liushui.runtime import configure_environment, forget_server, record_server, server_answers

configure_environment()

if TYPE_CHECKING:  # pragma: no cover
    from prefect.deployments.runner import RunnerDeployment

    from flows.run_report import RunReport

DEPLOYMENT_NAME = "liushui-nightly"
NIGHTLY_CRON = "0 2 * * *"
NIGHTLY_TIMEZONE = "Asia/Shanghai"
SERVER_STARTUP_TIMEOUT_S = 180.0  # the first start on a fresh PREFECT_HOME migrates its database (~30 s)
SERVER_STOP_TIMEOUT_S = 30.0


class ServerError(Exception):
    """The local Prefect server did not start; the message says why (with its last output)."""


# Schedule ------------------------------------------------------------------------------------------
def nightly_deployment(
    settings: Settings, *, cron: str = NIGHTLY_CRON, timezone: str = NIGHTLY_TIMEZONE, name: str = DEPLOYMENT_NAME
) -> RunnerDeployment:
    """The nightly flow as a deployment: the cron in local time, `settings` as its default parameters
    (typed and validated again by the flow on every run)."""
    from prefect.deployments.runner import RunnerDeployment
    from prefect.schedules import Cron

    from flows.nightly import nightly

    deployment = nightly.to_deployment(
        name=name,
        schedules=[Cron(cron, timezone=timezone)],
        parameters={"settings": settings.model_dump(mode="json")},
        description="liushui nightly: inbox -> canonical transactions -> explained risk flags in DuckDB",
        tags=["liushui"],
    )
    # Prefect's async_dispatch returns a coroutine only to a caller inside an event loop.
    if not isinstance(deployment, RunnerDeployment):
        raise TypeError("nightly_deployment must be called outside an event loop")
    return deployment


def serve(
    settings: Settings, *, cron: str = NIGHTLY_CRON, timezone: str = NIGHTLY_TIMEZONE, api_url: str | None = None
) -> None:
    """Run the nightly flow on `cron` (in `timezone`) until SIGTERM; blocks.

    With `api_url` or PREFECT_API_URL: registers with that server. Otherwise starts a local Prefect server
    (127.0.0.1, a free port, the PREFECT_HOME in use (the database's own, set by the CLI), analytics off) and
    stops it on exit."""
    import prefect
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = api_url or os.environ.get("PREFECT_API_URL")
    with contextlib.ExitStack() as stack:
        if not url:
            url = stack.enter_context(local_prefect_server())
        stack.enter_context(_environment("PREFECT_API_URL", url))  # inherited by the flow-run processes
        stack.enter_context(temporary_settings(updates={PREFECT_API_URL: url}))
        print(
            f"liushui: serving {DEPLOYMENT_NAME} ({cron}, {timezone}) against {url}; stop with SIGTERM",
            file=sys.stderr,
            flush=True,
        )
        prefect.serve(nightly_deployment(settings, cron=cron, timezone=timezone))


@contextlib.contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    before = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _raise_sigterm_as_exit(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


@contextlib.contextmanager
def local_prefect_server(*, home: Path | None = None, timeout_s: float = SERVER_STARTUP_TIMEOUT_S) -> Iterator[str]:
    """A `prefect server start` subprocess on 127.0.0.1 and a free port; yields its API URL once its
    health endpoint answers, stops it (SIGTERM, then SIGKILL) on exit. While it runs, `home` records it
    (`liushui.runtime.SERVER_RECORD`): a `liushui run` of the same Prefect home uses it."""
    home = home or Path(os.environ.get("PREFECT_HOME", DEFAULT_DATA_DIR / "prefect"))
    home.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    log_path = home / "server.log"
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.pop("PREFECT_API_URL", None)
    # A SIGTERM must still stop the server (the default action would skip `finally`); while serving,
    # Prefect's runner installs its own handler, which ends `serve` gracefully.
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_sigterm_as_exit) if in_main_thread else None
    with log_path.open("ab") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "prefect",
                "server",
                "start",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--analytics-off",
            ],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout_s
        while not server_answers(api_url):
            if server.poll() is not None:
                raise ServerError(f"prefect server exited with code {server.returncode}: {_tail(log_path)}")
            if time.monotonic() > deadline:
                raise ServerError(
                    f"prefect server did not answer on {api_url} within {timeout_s:.0f} s: {_tail(log_path)}"
                )
            time.sleep(0.5)
        record_server(home, api_url, server.pid)  # `liushui run` on this database runs against it
        yield api_url
    finally:
        forget_server(home, server.pid)
        _stop(server)
        if in_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _stop(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(timeout=SERVER_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no server log)"


# Backfill ------------------------------------------------------------------------------------------
def backfill_dates(start: date, end: date) -> list[date]:
    """The as-of dates of a backfill: every month end from `start` to `end` inclusive, and `end` itself
    when it falls inside a month (e.g. 2026-03-15 .. 2026-05-10 -> 03-31, 04-30, 05-10)."""
    if end < start:
        raise ValueError(f"backfill end {end} is before its start {start}")
    dates = []
    year, month = start.year, start.month
    while (year, month) <= (end.year, end.month):
        dates.append(min(date(year, month, calendar.monthrange(year, month)[1]), end))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return dates


def backfill(settings: Settings, *, start: date, end: date) -> list[RunReport]:
    """Run the nightly flow once per as-of date of `backfill_dates(start, end)`, oldest first, each a full
    rebuild; return the runs' reports.

    Every run records its own `pipeline_runs` and `dq_results` rows (and Prefect artifacts); the published
    tables are current-state tables, so after the backfill they hold the state as of `end`, even when the
    data goes further. The next nightly run without an as-of date moves them to the latest booking date
    (fully when that is in a later month). A blocked run stops the backfill (PublishBlocked) with the
    database as of the previous date."""
    from flows.nightly import run_nightly

    reports = []
    for as_of in backfill_dates(start, end):
        print(f"liushui: backfill as of {as_of}", file=sys.stderr, flush=True)
        reports.append(run_nightly(settings.model_copy(update={"as_of": as_of, "full_rebuild": True})))
    return reports
