# SpotOn: `make demo` and `make test` each bootstrap everything they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export SPOTON_CACHE ?= $(CURDIR)/.cache/spoton
export PYTHONUNBUFFERED := 1

.PHONY: venv models demo test test-fast bench clean

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

demo: models
	$(VENV)/bin/spoton track "$$($(VENV)/bin/spoton fetch --print sample_video)" --out out/demo

test: models
	$(PY) -m pytest -q

test-fast: venv
	$(PY) -m pytest -q -m "not integration"

bench: models
	$(PY) bench/track_speed.py

clean:
	rm -rf $(VENV) out
