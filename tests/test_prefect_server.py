"""A local Prefect server kept for a database (`liushui prefect-server`, `liushui serve`) is what `liushui run`
on that database runs against, instead of starting Prefect's temporary server (liushui/runtime.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from liushui.runtime import SERVER_RECORD, forget_server, record_server, running_server

LIUSHUI = Path(sys.executable).parent / "liushui"
HEADER = "account_id,booked_at,amount,currency,balance_after,counterparty_name,counterparty_account,description\n"


class _Health(BaseHTTPRequestHandler):
    """Answers /api/health as a Prefect server does (200), anything else 404."""

    def do_GET(self) -> None:  # noqa: N802 - the http.server interface
        self.send_response(200 if self.path == "/api/health" else 404)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the http.server interface
        pass


@pytest.fixture
def health_server() -> Iterator[str]:
    """A real HTTP server on 127.0.0.1 with a health endpoint; yields its API URL."""
    server = HTTPServer(("127.0.0.1", 0), _Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/api"
    finally:
        server.shutdown()
        server.server_close()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_a_live_recorded_server_that_answers_is_used(tmp_path, health_server):
    record_server(tmp_path, health_server, os.getpid())
    assert running_server(tmp_path) == health_server


def test_no_record_means_no_server(tmp_path):
    assert running_server(tmp_path) is None


def test_a_record_of_a_dead_process_is_not_used(tmp_path, health_server):
    record_server(tmp_path, health_server, _dead_pid())
    assert running_server(tmp_path) is None


def test_a_recorded_server_that_does_not_answer_is_not_used(tmp_path, health_server):
    port = int(health_server.rsplit(":", 1)[1].split("/")[0])
    record_server(tmp_path, f"http://127.0.0.1:{port + 1 if port < 65535 else port - 1}/api", os.getpid())
    assert running_server(tmp_path, timeout_s=0.5) is None


@pytest.mark.parametrize(
    "record",
    [
        "not json",
        json.dumps({"api_url": "http://127.0.0.1:4200/api"}),  # no pid
        json.dumps({"api_url": "http://prefect.example.com/api", "pid": 1}),  # not on this machine
        json.dumps(["http://127.0.0.1:4200/api", 1]),
    ],
)
def test_a_broken_or_foreign_record_is_not_used(tmp_path, record):
    (tmp_path / SERVER_RECORD).write_text(record, encoding="utf-8")
    assert running_server(tmp_path) is None


def test_a_server_forgets_only_its_own_record(tmp_path, health_server):
    record_server(tmp_path, health_server, os.getpid())
    forget_server(tmp_path, os.getpid() + 1)  # another server's exit leaves this record
    assert running_server(tmp_path) == health_server
    forget_server(tmp_path, os.getpid())
    assert not (tmp_path / SERVER_RECORD).exists()
    forget_server(tmp_path, os.getpid())  # nothing left to forget: no error


@pytest.mark.slow
def test_a_run_uses_the_server_kept_for_its_database_and_shows_in_it(tmp_path):
    """`liushui prefect-server`'s server (`local_prefect_server`, a real `prefect server start`): the run
    says it uses it, publishes, and its flow run is in that server; once the server stops, its record is gone."""
    from flows.deploy import local_prefect_server

    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (inbox / "night.csv").write_text(HEADER + "A1,2026-03-01 10:00:00,8000.00,CNY,,某公司,,工资\n", encoding="utf-8")
    db = tmp_path / "w.duckdb"
    home = tmp_path / "prefect" / "w"  # the database's own Prefect home (liushui.runtime.prefect_home)
    env = {k: v for k, v in os.environ.items() if k not in ("PREFECT_API_URL", "PREFECT_HOME")}
    with local_prefect_server(home=home) as api_url:
        assert running_server(home) == api_url
        result = subprocess.run(
            [str(LIUSHUI), "run", "--inbox", str(inbox), "--db", str(db)],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"liushui: Prefect API {api_url} (the local server kept for this database)" in result.stderr
        assert "published" in result.stdout
        request = urllib.request.Request(
            f"{api_url}/flow_runs/count", data=b"{}", headers={"Content-Type": "application/json"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - the local test server
            assert json.loads(response.read()) == 1
    assert not (home / SERVER_RECORD).exists()
    assert running_server(home) is None
