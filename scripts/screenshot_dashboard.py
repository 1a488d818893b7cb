"""Screenshot the liushui dashboard with headless Chromium (for the docs, or to look at a change).

Starts the dashboard on a free localhost port against the given database, waits until it serves, takes
one PNG with headless Chromium (no network beyond localhost: background networking, component updates
and sync are off) and stops the dashboard again.

    .venv/bin/python scripts/screenshot_dashboard.py --db data/warehouse/liushui.duckdb --out overview.png
    .venv/bin/python scripts/screenshot_dashboard.py --db ... --out account.png --account 6214830624453336
    .venv/bin/python scripts/screenshot_dashboard.py --db ... --out runs.png --page "Run health"
    .venv/bin/python scripts/screenshot_dashboard.py --db ... --out worklist.png --page Worklist --lang zh
    .venv/bin/python scripts/screenshot_dashboard.py --db ... --out customer.png --customer C0000002

Needs Chromium (Debian: `apt-get install -y chromium`). Exit codes: 0 written; 1 the dashboard did not
come up or Chromium failed; 2 Chromium is missing.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from apps.dashboard import start, stop  # noqa: E402

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
SERVE_TIMEOUT_S = 60.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_chromium(explicit: str | None) -> str | None:
    if explicit:
        return explicit if Path(explicit).exists() or shutil.which(explicit) else None
    return next((found for name in CHROMIUM_NAMES if (found := shutil.which(name))), None)


def wait_until_serving(port: int, server: subprocess.Popen, *, timeout_s: float) -> bool:
    """Poll Streamlit's health endpoint until it answers `ok`, the server dies or the time is up."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                if answer.read().strip() == b"ok":
                    return True
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.3)
    return False


# Streamlit renders over a websocket after the page has loaded, which `chromium --screenshot` (even with
# --virtual-time-budget) does not wait for: drive Chromium over the DevTools protocol instead (on a pipe,
# standard library only) and take the picture once the app has finished its run and stopped changing.
READY_JS = """(() => {
  if (document.querySelector('[data-testid^="stStatusWidgetRunning"], [data-testid^="stSkeleton"]')) return -1;
  return document.querySelectorAll('[data-testid="stMainBlockContainer"] [data-testid="stElementContainer"]').length;
})()"""
CONTENT_HEIGHT_JS = """(() => {
  const main = document.querySelector('[data-testid="stMain"]') || document.scrollingElement;
  return Math.max(main.scrollHeight, document.documentElement.clientHeight);
})()"""
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
)


class DevTools:
    """A headless Chromium driven over --remote-debugging-pipe (fd 3: commands in, fd 4: replies out)."""

    def __init__(self, chromium: str, profile: str) -> None:
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_pipes() -> None:  # in the child, before exec: put the pipe ends on fds 3 and 4
            high_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD, 10)
            high_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD, 10)
            os.dup2(high_r, 3)
            os.dup2(high_w, 4)

        self.process = subprocess.Popen(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            preexec_fn=wire_pipes,
            close_fds=False,
        )
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._next_id = 0

    def call(self, method: str, params: dict | None = None, *, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in self._buffer:
                chunk = os.read(self._from_chrome, 1 << 20)
                if not chunk:
                    raise RuntimeError(f"Chromium closed the DevTools pipe during {method}")
                self._buffer += chunk
            raw, self._buffer = self._buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    def close(self) -> None:
        with contextlib.suppress(RuntimeError, OSError):  # it may already be gone
            self.call("Browser.close")
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._to_chrome)
        os.close(self._from_chrome)


def screenshot(
    chromium: str, url: str, out: Path, *, width: int, height: int, full_page: bool, timeout_s: float
) -> None:
    with tempfile.TemporaryDirectory(prefix="liushui-chromium-") as profile:
        browser = DevTools(chromium, profile)
        try:
            target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
            page = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]

            def viewport(h: int) -> None:
                browser.call(
                    "Emulation.setDeviceMetricsOverride",
                    {"width": width, "height": h, "deviceScaleFactor": 1, "mobile": False},
                    session=page,
                )

            def evaluate(expression: str):
                return browser.call(
                    "Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=page
                )["result"].get("value")

            viewport(height)
            browser.call("Page.navigate", {"url": url}, session=page)
            deadline, seen, stable = time.monotonic() + timeout_s, None, 0
            while stable < 4:  # the same element count (and nothing running) for four polls in a row
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the page did not finish rendering within {timeout_s:.0f} s")
                time.sleep(0.5)
                count = evaluate(READY_JS)
                stable = stable + 1 if count and count > 0 and count == seen else 0
                seen = count
            if full_page:
                viewport(max(height, int(evaluate(CONTENT_HEIGHT_JS))))
            time.sleep(1.5)  # charts draw after their data arrives
            data = browser.call("Page.captureScreenshot", {"format": "png"}, session=page)["data"]
            out.write_bytes(base64.b64decode(data))
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", type=Path, required=True, help="DuckDB file published by `liushui run`.")
    parser.add_argument("--out", type=Path, default=Path("dashboard.png"), help="PNG to write.")
    parser.add_argument(
        "--page", choices=("Overview", "Worklist", "Customer", "Account", "Run health"), help="Page to open."
    )
    parser.add_argument("--account", help="Open the drill-down of this account.")
    parser.add_argument("--customer", help="Open the customer page on this customer id, holder name or account.")
    parser.add_argument("--lang", choices=("en", "zh"), help="The dashboard's language (default English).")
    parser.add_argument("--size", default="1400,1800", help="Window WIDTH,HEIGHT in pixels.")
    parser.add_argument("--full-page", action="store_true", help="Grow the window to the page's full height.")
    parser.add_argument("--timeout", type=float, default=90.0, help="Seconds to wait for the page to render.")
    parser.add_argument("--chromium", help="Chromium binary (default: chromium on the PATH).")
    args = parser.parse_args(argv)

    chromium = find_chromium(args.chromium)
    if chromium is None:
        print(
            "screenshot_dashboard: Chromium not found. Install it (Debian: apt-get install -y chromium) "
            "or pass --chromium PATH.",
            file=sys.stderr,
        )
        return 2
    width, height = (int(v) for v in args.size.split(","))
    asked = (("page", args.page), ("account", args.account), ("customer", args.customer), ("lang", args.lang))
    query = {k: v for k, v in asked if v}
    port = free_port()
    url = f"http://127.0.0.1:{port}/" + (f"?{urlencode(query)}" if query else "")

    server = start(args.db, port, quiet=True)
    try:
        if not wait_until_serving(port, server, timeout_s=SERVE_TIMEOUT_S):
            print(
                f"screenshot_dashboard: the dashboard did not come up on port {port} within {SERVE_TIMEOUT_S:.0f} s",
                file=sys.stderr,
            )
            return 1
        args.out.parent.mkdir(parents=True, exist_ok=True)
        try:
            screenshot(
                chromium,
                url,
                args.out.resolve(),
                width=width,
                height=height,
                full_page=args.full_page,
                timeout_s=args.timeout,
            )
        except (RuntimeError, OSError) as exc:
            print(f"screenshot_dashboard: Chromium failed: {exc}", file=sys.stderr)
            return 1
    finally:
        stop(server)
    print(f"wrote {args.out} ({url})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
