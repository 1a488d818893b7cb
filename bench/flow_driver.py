"""Fallback for `liushui run` while the CLI module cannot start (it is edited concurrently): the same
`Settings` and `flows.nightly.run_nightly` call the CLI makes, same progress lines on stderr.
Usage: python -m bench.flow_driver INBOX REFERENCE DB"""

from __future__ import annotations

import sys
from pathlib import Path

from liushui.runtime import configure_environment

configure_environment()

from flows.nightly import run_nightly  # noqa: E402
from liushui.config import Settings  # noqa: E402

if __name__ == "__main__":
    inbox, reference, db = (Path(a).resolve() for a in sys.argv[1:4])
    report = run_nightly(Settings(inbox=inbox, database=db, reference_dir=reference))
    print(f"{report.status} {report.message}")
