# One entry point for humans and CI. `make test` is exactly what .ci/run runs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help venv setup podman kafka-jars test test-unit test-fast lint bench demo up down status clean

help:
	@echo "make demo   - set everything up, start the local stack (squall up) and run the demo batch"
	@echo "make test   - lint, then the whole test suite (unit, contract, integration with real Kafka/Postgres/podman, e2e)"
	@echo "make test-fast - unit and in-memory contract tests: no Kafka, PostgreSQL or podman (~55 s on 2 cores)"
	@echo "make lint   - ruff and mypy"
	@echo "make bench  - every benchmark, printing numbers"

$(VENV)/.installed: pyproject.toml setup.py events/_avro_codec.pyx projections/readmodel/_copytext.pyx
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	@# the unmodified Hail client for the compatibility tests; its own dependencies (pyspark, ...)
	@# are not needed by hailtop.batch_client, whose imports the dev extras cover
	$(PY) -m pip install -q --no-deps hail==0.2.139
	touch $@

venv: $(VENV)/.installed

# podman, its three fixes for these machines, and the local base images (idempotent; needs root)
podman:
	bash deploy/podman/setup.sh

# Apache Kafka's jars from Maven Central, cached under ~/.cache/squall (idempotent)
kafka-jars: venv
	$(PY) -m deploy.kafka fetch

setup: venv kafka-jars podman

test: setup lint
	$(PY) -m pytest -q -p no:cacheprovider --durations=15

test-unit: venv
	$(PY) -m pytest -q -p no:cacheprovider tests/unit

# the developer's loop: no Kafka, PostgreSQL or podman (a test reaching one without its marker fails)
test-fast: venv
	SQUALL_TEST_FAST=1 $(PY) -m pytest -q -p no:cacheprovider -n auto --dist worksteal tests/unit tests/contract \
		-m "not kafka and not postgres and not podman and not e2e"

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy events projections services worker deploy

bench: setup
	@for b in tests/bench/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

up: setup
	$(VENV)/bin/squall up

down:
	$(VENV)/bin/squall down

status:
	$(VENV)/bin/squall status

demo: setup
	$(VENV)/bin/squall up
	$(VENV)/bin/squall demo

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache artifacts
