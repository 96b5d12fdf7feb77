# SpotOn: `make demo` and `make test` each bootstrap everything they need.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export SPOTON_CACHE ?= $(CURDIR)/.cache/spoton
export PYTHONUNBUFFERED := 1
export SPOTON_VAR ?= $(CURDIR)/var
export DAGSTER_HOME ?= $(SPOTON_VAR)/dagster_home

.PHONY: venv models demo ui review test test-fast bench clean scale-demo worker

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
	$(VENV)/bin/spoton track "$$($(VENV)/bin/spoton fetch --print sample_video)" --out out/demo \
		--calibration data/calibration/pets_s2l1_view_001.json
	$(PY) -m orchestration.demo

ui: models
	mkdir -p $(DAGSTER_HOME) && cp -n deploy/dagster.yaml $(DAGSTER_HOME)/dagster.yaml || true
	$(VENV)/bin/dagster dev -w workspace.yaml

# the review app (Streamlit) on the demo's outputs: http://127.0.0.1:$(REVIEW_PORT)
REVIEW_PORT ?= 8501
review: models
	@test -f "$(SPOTON_VAR)/spoton.duckdb" || { echo "no pipeline outputs in $(SPOTON_VAR): run 'make demo' first"; exit 1; }
	$(VENV)/bin/streamlit run apps/streamlit/app.py --server.headless true --server.address 127.0.0.1 \
		--server.port $(REVIEW_PORT) --browser.gatherUsageStats false

test: models system-deps-if-missing
	$(PY) -m pytest -q

test-fast: venv
	$(PY) -m pytest -q -m "not integration"

bench: models
	$(PY) bench/track_speed.py

clean:
	rm -rf $(VENV) out var

# Debian packages the live-source tests use (GStreamer's RTSP server for a real RTSP stream on
# loopback; its tests skip without them), the overlay page test (Chromium) and the compose-file test
# (docker-compose v1 parses deploy/compose.yaml).
SYSTEM_DEPS := ffmpeg chromium chromium-driver gstreamer1.0-rtsp gir1.2-gst-rtsp-server-1.0 \
	python3-gst-1.0 gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly \
	gstreamer1.0-libav docker-compose
.PHONY: system-deps system-deps-if-missing
system-deps:
	apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $(SYSTEM_DEPS)

# `make test` installs the missing ones when it can (root, apt reachable); otherwise their tests skip
system-deps-if-missing:
	@missing=$$(for p in $(SYSTEM_DEPS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then echo "installing Debian packages:" $$missing; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) \
	  || echo "could not install" $$missing "- the browser / RTSP tests will skip"; fi

# The live API on http://127.0.0.1:8000 (overlay page at /): builds the sample environment into
# $(SPOTON_VAR)/store when missing; without SPOTON_API_KEYS / SPOTON_JWT_SECRET it prints a one-run admin key.
.PHONY: live
live: models
	$(PY) -m apps.live_api

# The prod profile on this machine (docs/deploy.md): SeaweedFS, a private RabbitMQ vhost and PostgreSQL
# database, two Celery workers; every partition through the Celery executor. Stops all it started.
SCALE_FRAMES ?= 120
scale-demo: models
	$(PY) -m orchestration.scale_demo --max-source-frames $(SCALE_FRAMES)

# One Celery worker of the prod profile (needs its settings in the environment: docs/deploy.md)
WORKER_NAME ?= worker-$(shell hostname)
worker: models
	SPOTON_DEPLOYMENT=prod $(PY) -m orchestration.workers --name $(WORKER_NAME)
