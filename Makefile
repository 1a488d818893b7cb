# liushui — a newcomer's targets: `make run` and `make test` work on a fresh machine with Python 3.11.
PYTHON ?= python3
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
SAMPLE := data/sample
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := $(VENV)

.PHONY: help setup run sample test test-fast lint format typecheck check bench clean screenshot
.DEFAULT_GOAL := help

help:  ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):.*## (.*)/  \1\t\2/' | expand -t 14

$(UV):
	$(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==0.13.8

setup: $(VENV)/.synced  ## create .venv from the lockfile (exact pinned versions)

# Bytecode is compiled at install: a machine with PYTHONDONTWRITEBYTECODE set would otherwise compile every
# library from source in every process (importing Great Expectations: 16 s instead of 7 s).
$(VENV)/.synced: uv.lock pyproject.toml | $(UV)
	$(UV) sync --frozen --python $(PYTHON) --quiet --compile-bytecode
	$(BIN)/python -m compileall -q liushui transforms expectations flows apps synthetic tests bench > /dev/null
	touch $@

$(SAMPLE)/labels.csv: | setup
	$(BIN)/liushui generate $(SAMPLE) --seed 7 --accounts 200 --months 12

sample: setup $(SAMPLE)/labels.csv  ## generate the built-in sample data (deterministic)

run: sample  ## run the nightly job on the sample into data/warehouse/liushui.duckdb
	$(BIN)/liushui run --inbox $(SAMPLE)/inbox --reference $(SAMPLE)/reference

screenshot: setup  ## dashboard screenshot of the last run (installs Debian's chromium if missing)
	@test -f data/warehouse/liushui.duckdb || (echo "no database yet: run 'make run' first" && exit 1)
	command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium fonts-noto-cjk)
	$(BIN)/python scripts/screenshot_dashboard.py --db data/warehouse/liushui.duckdb --out data/dashboard.png
	@echo "screenshot: data/dashboard.png"

test: setup  ## the whole test suite, on two processes
	$(BIN)/python -m pytest -n 2 --dist worksteal

test-fast: setup  ## the literal-row and unit tests (no flow, subprocess or server tests)
	$(BIN)/python -m pytest -m "not slow"

lint: setup  ## ruff check and ruff format --check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup  ## ruff format and ruff check --fix
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

typecheck: setup  ## mypy (config in pyproject.toml)
	$(BIN)/mypy

check: lint typecheck test  ## what CI runs: lint, format check, types, tests

bench: setup  ## benchmarks (not part of the tests); writes BENCHMARKS.md
	$(BIN)/python -m bench.run

clean:  ## remove the venv, the tools and the state under data/
	rm -rf $(VENV) $(TOOLS) data/warehouse data/staging data/prefect data/inbox $(SAMPLE)
