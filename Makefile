# Two commands on a fresh machine with Python 3.11+ and make:
#   make run    set everything up and start the provider with demo data
#   make test   run the whole test suite (lint, types, tests)
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck pytest migration clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11) and "Python 3.11 or newer is required")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,postgres,redis]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/idp demo

test: $(STAMP) lint typecheck pytest

lint: $(STAMP)
	$(BIN)/ruff check idp tests clients bench
	$(BIN)/ruff format --check idp tests clients bench

typecheck: $(STAMP)
	$(BIN)/mypy

# Tests mostly wait (on databases, servers, the browser): four processes keep two cores busy.
PYTEST_WORKERS ?= 4
pytest: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

# Regenerate the initial migration from the models (only until the first release).
migration: $(STAMP)
	$(BIN)/python scripts/regenerate_migration.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
