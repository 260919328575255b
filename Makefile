.DEFAULT_GOAL := help
PYTHON ?= python3
BIN := .venv/bin
STAMP := .venv/.installed

help:  ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  %-9s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv .venv
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## Create .venv with the app and its dev tools

test: $(STAMP)  ## Offline tests: recorded payloads + local simulator
	$(BIN)/pytest

lint: $(STAMP)  ## Format check, lint, types
	$(BIN)/ruff format --check . && $(BIN)/ruff check . && $(BIN)/mypy

format: $(STAMP)  ## Apply ruff's formatting and safe fixes
	$(BIN)/ruff format . && $(BIN)/ruff check --fix .

check: lint test  ## What CI runs

demo: $(STAMP)  ## Simulator up, record a few seconds, backfill the window, print a DuckDB query
	$(BIN)/python demo.py demo-data

record: $(STAMP)  ## Record the live BingX market (ARGS="--symbols BTC-USDT --channels trade")
	$(BIN)/bingx-recorder record $(ARGS)

bench: $(STAMP)  ## Benchmarks: ingest, backfill, storage, query (prints a table, writes bench/results/)
	$(BIN)/python -m bench

live: $(STAMP)  ## Tests against the real BingX (needs internet)
	$(BIN)/pytest -m live

.PHONY: help install test lint format check demo record bench live
