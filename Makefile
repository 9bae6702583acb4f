# chargeline: `make demo` and `make test` work on a fresh machine with Python 3.11 and make.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV := $(shell command -v uv 2>/dev/null || echo $(BIN)/uv)
export UV_COMPILE_BYTECODE := 1
export UV_PROJECT_ENVIRONMENT := $(VENV)
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home

.PHONY: demo test dev bench accuracy lint clean setup

# The venv is rebuilt whenever the lock file changes.
$(BIN)/.synced: uv.lock pyproject.toml
	@test -x $(BIN)/python || { command -v $(PYTHON) >/dev/null && $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV); }
	@command -v uv >/dev/null 2>&1 || test -x $(BIN)/uv || $(BIN)/python -m pip install -q uv
	@# --inexact keeps the uv we installed into the venv
	$(UV) sync --frozen --inexact --all-groups --python $(BIN)/python
	@touch $@

setup: $(BIN)/.synced

demo: setup
	@mkdir -p $(DAGSTER_HOME) && touch $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/chargeline demo

test: setup
	@mkdir -p $(DAGSTER_HOME) && touch $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/ruff check pipeline assets checks tests benchmarks
	$(BIN)/python -m pytest

dev: setup
	@mkdir -p $(DAGSTER_HOME) && touch $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/dagster dev -w workspace.yaml

bench: setup
	@mkdir -p $(DAGSTER_HOME) && touch $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python benchmarks/run.py
	$(BIN)/python benchmarks/nights.py --evses 1000 --nights 10

# Precision and recall of every check on many noisy generated networks (about 15 min).
accuracy: setup
	@mkdir -p $(DAGSTER_HOME) && touch $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/python benchmarks/accuracy.py

lint: setup
	$(BIN)/ruff check pipeline assets checks tests benchmarks

clean:
	rm -rf $(VENV) .dagster_home data/landing data/truth data/warehouse.duckdb data/reports
