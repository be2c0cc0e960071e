# Each target sets up what it needs from nothing: a venv, the packages, a Chromium.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
export DAGSTER_HOME ?= $(CURDIR)/var/dagster

.PHONY: setup demo test dev lint clean bench loadtest

setup: $(VENV)/.installed var/.chromium

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[demo,test]'
	touch $@

# Finds PD_CHROMIUM_PATH, the system's Chromium or Playwright's; installs Debian's if none.
var/.chromium: $(VENV)/.installed
	mkdir -p var
	$(BIN)/pd-pipeline chromium --install > $@

demo: setup
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/pd-pipeline seed-demo
	$(BIN)/dagster job execute -m pd_pipeline -j render_pending_job
	$(BIN)/pd-pipeline status
	@echo "Open the URLs above, or browse runs and assets with: make dev (http://127.0.0.1:3000)"

# Two workers: half the suite's time is spent waiting on daemons, brokers and runs to start.
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q -n 2 --dist loadfile

dev: setup
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dagster dev

lint: setup
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# The render benchmark (1,000 cards: the pipeline end to end, the bare Chromium loop, a browser
# per card), then 100,000 URLs written back on PostgreSQL (skipped, saying why, without one).
# Results: bench/results/. Never part of `make test`.
bench: setup
	$(BIN)/python -m bench render
	$(BIN)/python -m bench writeback --rows 100000

# Heavy runs: peak memory over 1,000 and 10,000 cards, the write-back's candidate query on a
# 1,000,000-row card table (PostgreSQL), a design rolled out over 3,000 cards under dagster dev
# while new variants arrive, a 50,000-card backlog worked off by the sensor, and sensor ticks on
# 1,000,000 card rows.
LOADTEST_CARDS ?= 50000
loadtest: setup
	$(BIN)/python -m bench memory --cards 1000 10000
	$(BIN)/python -m bench writeback --rows 100000 --explain-rows 1000000
	$(BIN)/python -m bench rollout --cards 3000
	PD_LOADTEST_CARDS=$(LOADTEST_CARDS) $(BIN)/pytest -q -s pd_pipeline_tests/test_load.py \
	  pd_pipeline_tests/test_sensor_scale.py

clean:
	rm -rf var
