# The two Quick-start commands: `make demo` and `make test`. Each creates/updates .venv itself.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.microfab-installed
# Exact versions of every package `make test` installs (the dev extra and all it pulls in);
# pyproject.toml keeps the ranges. Regenerate with `make lock` after changing a range.
LOCK := requirements/ci.lock
# pytest-xdist processes for `make test` (a module's tests stay in one process; 0 = no extra process).
TEST_WORKERS ?= 2

.PHONY: demo test lint typecheck services docs-schemas proto clean lock

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r $(LOCK)
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

## Re-pin requirements/ci.lock from pyproject.toml's ranges, keeping today's pins where they still
## fit (`make lock UPGRADE=1` moves every pin to the newest release in range).
lock: $(STAMP)
	$(BIN)/uv pip compile pyproject.toml --extra dev --python-version 3.11 --quiet \
	  --annotation-style line --custom-compile-command 'make lock' $(if $(UPGRADE),--upgrade) -o $(LOCK)

## Set up and run the demo: a simulated Hong Kong food line with a live terminal view (Ctrl-C stops).
demo: $(STAMP)
	$(BIN)/microfab demo --scenario food-line --speed 600 --db sqlite:///demo.db --fresh

## Set up and run the whole test suite (lint, strict types, declared dependencies, tests on SQLite
## and PostgreSQL).
test: $(STAMP) services chromium
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src/microfab
	$(BIN)/deptry src
	$(BIN)/pytest -q -n $(TEST_WORKERS) --dist loadscope

services:
	@bash .ci/services

## Debian chromium (and a CJK font) for the browser test; installed when missing.
chromium:
	@bash .ci/chromium

## Regenerate docs/factory.schema.json and docs/events.schema.json from the models.
docs-schemas: $(STAMP)
	$(BIN)/microfab factory schema > docs/factory.schema.json
	$(BIN)/microfab events schema > docs/events.schema.json

## Regenerate the Sparkplug B protobuf module from connect/proto/sparkplug_b.proto (protoc 31 =
## protobuf 6.31 gencode; grpcio-tools is fetched into a throw-away venv, not a project dependency).
proto:
	$(PYTHON) -m venv /tmp/microfab-protoc && /tmp/microfab-protoc/bin/pip install --quiet 'grpcio-tools==1.74.*'
	cd src/microfab/connect && /tmp/microfab-protoc/bin/python -m grpc_tools.protoc -Iproto \
	  --python_out=. --pyi_out=. proto/sparkplug_b.proto

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis demo.db demo.db-wal demo.db-shm
