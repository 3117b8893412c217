# Everything a fresh machine needs: Python >= 3.11 (duckdb 2.0 requires it) and network access to PyPI.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export DBT_SEND_ANONYMOUS_USAGE_STATS := false
export DO_NOT_TRACK := 1

.PHONY: setup java browser demo test screenshot bench clean

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python >= 3.11 is needed (duckdb 2.0); set PYTHON=python3.11")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

setup: $(VENV)/.installed

## A Java runtime for PySpark (the Spark engine's tests): Debian's openjdk-17 when java is missing (as root).
java:
	@bash scripts/ensure_java.sh

## Start the emulator (unless ANTHROPIC_API_KEY is set), run `dbt build` until every demo row is classified,
## print label counts and what it cost.
demo: setup
	$(BIN)/python scripts/demo.py

## The whole test suite (unit, emulator, pipeline end to end with real dbt runs, crash and fault suites).
test: setup java browser
	$(BIN)/python -m pytest

## Debian's Chromium for the report's browser test (scripts/ensure_chromium.sh: when missing, as root).
browser:
	@bash scripts/ensure_chromium.sh

## docs/report.png (README): the report tests/integration/test_report.py builds and renders in Chromium.
screenshot: setup browser
	CLAUDE_BATCH_UPDATE_SCREENSHOT=1 $(BIN)/python -m pytest tests/integration/test_report.py -q -k real_browser

bench: setup
	$(BIN)/python bench/emulator.py
	$(BIN)/python bench/cost.py
	$(BIN)/python bench/scale.py
	$(BIN)/python bench/noop_run.py
	$(BIN)/python bench/quality.py

clean:
	rm -rf target logs dbt_packages integration_tests/target integration_tests/dbt_packages integration_tests/logs
