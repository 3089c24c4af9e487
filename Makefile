# queue-hooks: every task a developer or CI runs. `make help` lists them.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
LOCK := requirements.lock
# Pinned so that `make lock` resolves the same way on every machine.
PIP := pip==26.3
PIP_TOOLS := pip-tools==7.6.2
STAMP := $(VENV)/.installed-$(shell cat $(LOCK) pyproject.toml | cksum | cut -d' ' -f1)
SERVICES := deploy/local/services.sh
WITH := deploy/local/with-services.sh

.PHONY: help install lock run stop test test-unit lint bench chaos services clean

help:
	@echo "make run    - set up everything, then the worker with demo fixtures and receiver"
	@echo "make test   - the whole test suite against its own RabbitMQ and PostgreSQL"
	@echo "make test-unit - the unit tests alone: no service, a few seconds"
	@echo "make lint   - ruff, mypy --strict, and the container files (deploy/check_deploy.py)"
	@echo "make chaos  - the fault suite: kills, outages, a flaky receiver (prints its figures)"
	@echo "make bench  - the benchmark of the whole path (prints its figures)"
	@echo "make stop   - stop the services of make run"
	@echo "make lock   - regenerate requirements.lock from pyproject.toml (UPGRADE=1: newest versions)"
	@echo "make clean  - remove the virtual environment and .local/"

# The virtual environment follows requirements.lock (every package pinned, with its hashes);
# the project itself is installed editable on top, without resolving anything.
$(STAMP): $(LOCK) pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q '$(PIP)'
	$(BIN)/python -m pip install -q --require-hashes -r $(LOCK)
	$(BIN)/python -m pip install -q --no-deps -e .
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

# After changing the dependencies in pyproject.toml. Pins already in the lock are kept (only
# what is new or no longer fits is resolved), so two runs give the same file.
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q '$(PIP)' '$(PIP_TOOLS)'
	$(BIN)/pip-compile -q --extra dev --generate-hashes --strip-extras --allow-unsafe \
		--no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade) \
		-o $(LOCK) pyproject.toml

run: install
	deploy/local/run-demo.sh

stop:
	$(SERVICES) stop run

services: install
	$(SERVICES) start run

test: install
	$(WITH) test -- $(BIN)/pytest $(PYTEST_ARGS)

# Pure logic only (tests/unit): no RabbitMQ, no PostgreSQL.
test-unit: install
	$(BIN)/pytest tests/unit $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python deploy/check_deploy.py

# Its own run of the test profile: the suite stops and starts RabbitMQ and PostgreSQL.
chaos: install
	$(WITH) test -- env QH_CHAOS_PROFILE=test $(BIN)/pytest tests/chaos $(PYTEST_ARGS)

bench: install
	$(WITH) bench -- $(BIN)/python -m bench $(BENCH_ARGS)

clean:
	-$(SERVICES) stop run; $(SERVICES) stop test; $(SERVICES) stop bench
	rm -rf $(VENV) .local
