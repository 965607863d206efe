# Huzhu: two commands do everything on a fresh machine: `make run` and `make test`.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test test-unit test-service test-e2e demo reset lint bench install clean chaos

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)  ## start PostgreSQL, the broker, the four services and demo data; Ctrl-C stops all
	$(BIN)/python -m deploy.localstack run --replicas $(or $(REPLICAS),1)

demo: $(STAMP)  ## with `make run` going: one claim from roster to payment instruction, timed
	$(BIN)/python -m deploy.demo

reset:  $(STAMP) ## wipe the local stack's data
	$(BIN)/python -m deploy.localstack reset

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy shared services deploy

test: $(STAMP) lint  ## everything: unit, service (real PostgreSQL) and end-to-end (the real stack) tests
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

test-service: $(STAMP)
	$(BIN)/python -m pytest -q tests/service

test-e2e: $(STAMP)
	$(BIN)/python -m pytest -q tests/e2e

clean:
	rm -rf $(VENV) .localstack .pytest_cache .mypy_cache .ruff_cache

SEED ?= $(shell date +%s)
DURATION ?= 300
chaos: $(STAMP)  ## SIGKILL services, broker and PostgreSQL while claims flow; report in chaos-results/report.json
	$(BIN)/python -m deploy.chaos --seed $(SEED) --duration $(DURATION) --report chaos-results/report.json

bench: $(STAMP)  ## speed figures into bench-results/ (never asserted in tests)
	$(BIN)/python -m bench.run
