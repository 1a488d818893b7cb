"""The `liushui` console entry point: a run says it has started before the libraries load.

Importing the command line loads Polars, DuckDB, PyArrow, Typer and the rule registry (~2.5 s on a 2-core
machine, before any code of the command runs). For the commands that run the nightly job the first progress
line comes first, so that nobody waits in silence wondering whether anything happens; the others (listing,
query) print their answer, which is their progress.
"""

from __future__ import annotations

import sys

RUN_COMMANDS = frozenset({"run", "reingest", "backfill"})
"""Commands that run the nightly job: they print `starting` before the imports."""


def first_line(args: list[str]) -> str | None:
    """The line printed before the imports for these command-line arguments (without the program name), or
    None: only for a run command that is not asking for its help."""
    command = next((arg for arg in args if not arg.startswith("-")), None)
    if command not in RUN_COMMANDS or "--help" in args or "-h" in args:
        return None
    return f"liushui {command}: starting ..."


def main() -> None:  # pragma: no cover - console entry point (tested through the installed script)
    if line := first_line(sys.argv[1:]):
        print(line, file=sys.stderr, flush=True)
    from apps.cli import main as cli_main

    cli_main()
