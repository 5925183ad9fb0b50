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
# Tools whose pins conflict with the project's (checkov) live in their own virtualenv.
TOOLS_VENV := .venv-tools
TOOLS_STAMP := $(TOOLS_VENV)/.installed-$(shell sha1sum platform/dev/tools-requirements.txt | cut -c1-12)
PROTO_MODULES := $(patsubst %.proto,%_pb2.py,$(wildcard wire/rankwell/v1/*.proto))

.PHONY: install tools demo test lint format services bench quality fuzz clean

install: $(STAMP) $(PROTO_MODULES)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[dev]'
	rm -f $(VENV)/.installed-* && touch $@

## The protobuf messages of /v1/rank and /v1/events, generated from wire/ (not kept in git).
wire/rankwell/v1/%_pb2.py: wire/rankwell/v1/%.proto $(STAMP)
	$(BIN)/python -m grpc_tools.protoc -Iwire --python_out=wire --pyi_out=wire $<

## checkov (tests/operations runs it over terraform/) in its own virtualenv.
tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): platform/dev/tools-requirements.txt
	test -x $(TOOLS_VENV)/bin/python || $(PYTHON) -m venv $(TOOLS_VENV)
	$(TOOLS_VENV)/bin/pip install --quiet --upgrade pip
	$(TOOLS_VENV)/bin/pip install --quiet -r platform/dev/tools-requirements.txt
	rm -f $(TOOLS_VENV)/.installed-* && touch $@

## Build the demo shop on the embedded default (SQLite, in-process signals, eager tasks), serve it.
demo: install
	$(BIN)/python manage.py demo --serve --addr $(DEMO_ADDR)

## The whole suite, plus lint, against real PostgreSQL and Redis (started if not running).
test: install tools services lint
	RANKWELL_ENV=test DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
	RUNTIME_REFRESH_SECONDS=0 $(BIN)/pytest $(ARGS)

services:
	platform/dev/ensure-services.sh

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

## Benchmarks on the local PostgreSQL (its own database, rankwell_bench) and Redis (namespace
## rwbench), served by gunicorn with production settings: writes bench/results.json and the table
## in docs/performance.md. About 15 minutes here, most of it writing 10M events for the refresh.
bench: install services
	REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python bench/run.py

## Ranking quality on the shopper simulator through the public API (gunicorn, a Celery worker,
## PostgreSQL, Redis): three scenarios x three seeds; writes bench/quality.json and the tables in
## docs/quality.md. Its own database (rankwell_quality) and Redis namespace.
quality: install services
	REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python bench/quality.py

## schemathesis against the API with every phase, boundary values included (make test runs a
## bounded sample: tests/test_fuzz_api.py). About 10 minutes here.
fuzz: install services
	RANKWELL_ENV=test DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) \
	RUNTIME_REFRESH_SECONDS=0 FUZZ_PHASES=examples,coverage,fuzzing,stateful FUZZ_MAX_EXAMPLES=100 \
	$(BIN)/pytest tests/test_fuzz_api.py

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:
	rm -rf $(VENV) $(TOOLS_VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis test-artifacts wire/rankwell/v1/*_pb2.py*
