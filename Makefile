# Each target sets up what it needs from nothing: a venv, the packages, a Chromium.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
PYTHON ?= python3
export DAGSTER_HOME ?= $(CURDIR)/var/dagster

# A recipe that fails leaves no half-made target behind (an empty var/.chromium would pass).
.DELETE_ON_ERROR:

.PHONY: setup demo test test-all dev lint clean bench loadtest wheelhouse image

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

# Four workers on two cores: a worker spends about half its time waiting on daemons, brokers and
# runs. Six overloaded the cores: sensor ticks of 10 s, timeouts missed.
test: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pytest -q -n 4 --dist loadfile --no-loadscope-reorder -m "not thorough"

# Everything, the tests marked thorough too (about 4 minutes more).
test-all: setup
	$(BIN)/pytest -q -n 4 --dist loadfile --no-loadscope-reorder

# The UI and the daemon on http://127.0.0.1:3000 (`dg dev`, dagster dev's successor).
dev: setup
	mkdir -p $(DAGSTER_HOME)
	$(BIN)/dg dev

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
# 1,000,000-row card table (PostgreSQL), change capture on 1,000,000 card rows (a bulk ratings
# UPDATE with and without the triggers, its burst worked off, a first look), a one-card change in
# a 50,000-card cardset against a 10-card one, edit to URL under dagster dev on 1,000,000 card
# rows taken over from another renderer, a design rolled out over 3,000 cards under dagster
# dev while new variants arrive, a 50,000-card backlog worked off by the sensor, and sensor ticks
# (and a changed card found) on 1,000,000 card rows.
LOADTEST_CARDS ?= 50000
loadtest: setup
	$(BIN)/python -m bench memory --cards 1000 10000
	$(BIN)/python -m bench writeback --rows 100000 --explain-rows 1000000
	$(BIN)/python -m bench changes --players 500000
	$(BIN)/python -m bench change --cards 10 50000
	$(BIN)/python -m bench edits --card-rows 1000000
	$(BIN)/python -m bench rollout --cards 3000
	PD_LOADTEST_CARDS=$(LOADTEST_CARDS) $(BIN)/pytest -q -s pd_pipeline_tests/test_load.py \
	  pd_pipeline_tests/test_sensor_scale.py

# The pd_pipeline wheel and a wheel of every dependency it runs with (the demo extra too, for the
# demo image), so that images and tests install offline:
#   pip install --no-index --find-links dist/wheelhouse pd_pipeline
# Built by a Python 3.11, as the image's (Debian bookworm's); see deploy/image/build.sh.
wheelhouse: $(VENV)/.installed
	PYTHON=$(BIN)/python deploy/image/build.sh wheelhouse

# The container image pd-pipeline:<version> (and :latest) from the Dockerfile: with docker when
# a Docker daemon answers, else with podman (installed here when missing; see deploy/image/).
image: wheelhouse
	deploy/image/build.sh

clean:
	rm -rf var dist build
