# SpotOn: `make demo` and `make test` each bootstrap everything they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export SPOTON_CACHE ?= $(CURDIR)/.cache/spoton
export PYTHONUNBUFFERED := 1
export SPOTON_VAR ?= $(CURDIR)/var
export DAGSTER_HOME ?= $(SPOTON_VAR)/dagster_home

.PHONY: venv models demo ui test test-fast bench clean

$(VENV)/.installed: requirements.lock requirements-nodeps.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements.lock
	# boxmot, deep-sort-realtime and trackeval declare deps that would pull CUDA torch
	# or a second OpenCV: their real runtime needs are in requirements.lock.
	$(PY) -m pip install -q --disable-pip-version-check --no-deps -r requirements-nodeps.txt
	$(PY) -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

venv: $(VENV)/.installed

models: venv
	$(VENV)/bin/spoton fetch

# 1) track the sample video (annotated MP4 + Parquet in out/demo), 2) the whole Dagster graph
demo: models
	$(VENV)/bin/spoton track "$$($(VENV)/bin/spoton fetch --print sample_video)" --out out/demo
	$(PY) -m orchestration.demo

ui: models
	mkdir -p $(DAGSTER_HOME) && cp -n deploy/dagster.yaml $(DAGSTER_HOME)/dagster.yaml || true
	$(VENV)/bin/dagster dev -w workspace.yaml

test: models
	$(PY) -m pytest -q

test-fast: venv
	$(PY) -m pytest -q -m "not integration"

bench: models
	$(PY) bench/track_speed.py

clean:
	rm -rf $(VENV) out var
