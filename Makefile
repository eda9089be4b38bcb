# The two Quick-start commands: `make demo` and `make test`. Each creates/updates .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.microfab-installed

.PHONY: demo test lint typecheck services docs-schemas clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

## Set up and run the demo: a simulated Hong Kong food line with a live terminal view (Ctrl-C stops).
demo: $(STAMP)
	$(BIN)/microfab demo --scenario food-line --speed 600 --db sqlite:///demo.db --fresh

## Set up and run the whole test suite (lint, strict types, tests on SQLite and PostgreSQL).
test: $(STAMP) services
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src/microfab
	$(BIN)/pytest -q

services:
	@bash .ci/services

## Regenerate docs/factory.schema.json and docs/events.schema.json from the models.
docs-schemas: $(STAMP)
	$(BIN)/microfab factory schema > docs/factory.schema.json
	$(BIN)/microfab events schema > docs/events.schema.json

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis demo.db demo.db-wal demo.db-shm
