# The two commands of the README: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml constraints.txt | sha1sum | cut -c1-12)

# The test suite runs against real PostgreSQL and Redis; override to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/rankwell
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
DEMO_ADDR ?= 127.0.0.1:8000

.PHONY: install demo test lint format services bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

## Build the demo shop on the embedded default (SQLite, in-process signals, eager tasks), serve it.
demo: install
	$(BIN)/python manage.py demo --serve --addr $(DEMO_ADDR)

## The whole suite, plus lint, against real PostgreSQL and Redis (started if not running).
test: install services lint
	RANKWELL_ENV=test DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
	RUNTIME_REFRESH_SECONDS=0 $(BIN)/pytest

services:
	platform/dev/ensure-services.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## Benchmarks against the local Redis (see bench/).
bench: install services
	REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python bench/signal_read.py

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis test-artifacts
