# lake_platform: `make run` builds the whole lake locally, `make test` runs the tests, `make dev` opens the UI.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
MANIFEST := dbt_project/target/manifest.json
DBT_SOURCES := $(shell find dbt_project -name '*.sql' -o -name '*.yml' -not -path 'dbt_project/target/*' 2>/dev/null)

.PHONY: install prepare seed sftp run dev test test-fast bench bench-quick clean

install: $(VENV)/.installed

# Exact versions from requirements.lock, then the project itself (editable, so dbt_project/ and
# spark_jobs/ are found beside the package). Offline-repeatable from the package registry.
$(VENV)/.installed: requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	# Iceberg's Spark runtime and SQLite's JDBC driver, from Maven Central into the venv (not committed).
	$(BIN)/python -m lake_platform.adapters.iceberg fetch
	touch $@

# dagster-dbt reads the dbt manifest when the definitions load; `dbt parse` writes it (offline, ~10 s).
# `prepare` also creates the local Dagster instance (DAGSTER_HOME), so `dagster` commands work after it.
# Same --target and --vars as the runs use, so dbt's partial parsing is reused instead of re-parsing.
LAKE_ROOT ?= $(CURDIR)/.lake
prepare: $(MANIFEST) $(DAGSTER_HOME)/dagster.yaml
$(MANIFEST): $(VENV)/.installed $(DBT_SOURCES)
	cd dbt_project && ../$(BIN)/dbt parse --profiles-dir . --target duckdb --quiet \
		--vars '{"lake_root": "$(abspath $(LAKE_ROOT))"}'
	touch $@

$(DAGSTER_HOME)/dagster.yaml: dagster.yaml
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $@

seed: install
	$(BIN)/lake seed

# The partners' SFTP server on loopback, in the foreground (Ctrl-C stops it). A partner logs in once
# registered: `lake sftp add-partner NAME` (generates a key) or `... --public-key FILE`.
SFTP_PORT ?= 2222
sftp: install
	$(BIN)/lake sftp serve --port $(SFTP_PORT)

# Seeds the local source systems (first time only), then materializes every asset and prints a summary.
run: prepare $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/lake seed --if-missing
	$(BIN)/lake run

# Started from inside DAGSTER_HOME: Dagster warns when the working folder holds a dagster.yaml that is
# not the instance's, and the project root holds the template. Beside it, the approved model's server
# (`lake model serve`, http://127.0.0.1:$(MODEL_PORT)) when there is one (otherwise one line says how to
# start it later); the trap stops it when dagster dev exits, Ctrl-C included.
MODEL_PORT ?= 8080
dev: prepare $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/lake model serve --if-approved --port $(MODEL_PORT) & model=$$!; \
	trap 'kill $$model 2>/dev/null; wait $$model 2>/dev/null' EXIT INT TERM; \
	cd $(DAGSTER_HOME) && $(CURDIR)/$(BIN)/dagster dev -w $(CURDIR)/workspace.yaml -h 127.0.0.1 -p 3000

test: prepare
	$(BIN)/python -m pytest

test-fast: prepare
	$(BIN)/python -m pytest -m "not full"

# Where the time goes (bench/run.py): real pipeline runs in temporary lakes beside a DuckDB reference;
# writes bench/results/latest.{json,md}. bench-quick: scale 1, a one-month lake's new day, 10,000 objects.
bench: prepare
	$(BIN)/python bench/run.py

bench-quick: prepare
	$(BIN)/python bench/run.py --quick

clean:
	rm -rf .lake .dagster_home dbt_project/target dbt_project/logs
