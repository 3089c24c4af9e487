# queue-hooks: every task a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
SERVICES := deploy/local/services.sh
WITH := deploy/local/with-services.sh

.PHONY: help install run stop test lint bench chaos services clean cluster cluster-stop cluster-check

help:
	@echo "make run    - set up everything, then the worker with demo fixtures and receiver"
	@echo "make test   - the test suite against its own RabbitMQ and PostgreSQL"
	@echo "make lint   - ruff, mypy --strict, and the container files (deploy/check_deploy.py)"
	@echo "make chaos  - the fault suite: kills, outages, a flaky receiver (prints its figures)"
	@echo "make bench  - the benchmark of the whole path (prints its figures)"
	@echo "make stop   - stop the services of make run"
	@echo "make cluster - make run on a 3-node RabbitMQ cluster and a PostgreSQL primary + standby"
	@echo "make cluster-check - the cluster profile's checks and fault cases (also in make chaos)"
	@echo "make clean  - remove the virtual environment and .local/"

# The virtual environment is rebuilt whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

run: install
	deploy/local/run-demo.sh

stop:
	$(SERVICES) stop run

services: install
	$(SERVICES) start run

# The demo on the cluster profile (docs/cluster.md); deploy/local/services.sh node-kill etc.
# break single nodes meanwhile.
cluster: install
	QH_PROFILE=cluster deploy/local/run-demo.sh

cluster-stop:
	$(SERVICES) stop cluster

# The cluster's own checks, then the worker's failover cases on it (issue 14).
cluster-check: install
	$(WITH) cluster -- env QH_CHAOS_PROFILE=cluster $(BIN)/pytest tests/chaos/test_cluster.py tests/chaos/test_cluster_faults.py $(PYTEST_ARGS)

test: install
	$(WITH) test -- $(BIN)/pytest $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python deploy/check_deploy.py

# Its own run of the test profile: the suite stops and starts RabbitMQ and PostgreSQL.
chaos: install
	$(WITH) test -- env QH_CHAOS_PROFILE=test $(BIN)/pytest tests/chaos $(PYTEST_ARGS)
	$(MAKE) cluster-check

bench: install
	$(WITH) bench -- $(BIN)/python -m bench $(BENCH_ARGS)

clean:
	-$(SERVICES) stop run; $(SERVICES) stop test; $(SERVICES) stop bench; $(SERVICES) stop cluster
	rm -rf $(VENV) .local
