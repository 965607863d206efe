# Huzhu: two commands do everything on a fresh machine: `make run` and `make test`.
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# tests/browser and tests/dashboard drive Debian's Chromium through playwright: `browser-deps` installs it and
# a CJK font when missing (quiet, idempotent, as root or with password-less sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
# When this make command started: `make run`'s banner counts from here, install included.
STARTED := $(shell date +%s.%N)

.PHONY: run test test-unit test-service test-e2e test-browser demo reset lint bench install clean browser-deps chaos

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need $(PY)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# Chart.js for the ops dashboard, pinned in services/dashboard/package-lock.json, served locally (no CDN).
DASHBOARD_JS := services/dashboard/node_modules/.installed
$(DASHBOARD_JS): services/dashboard/package.json services/dashboard/package-lock.json
	cd services/dashboard && npm ci --no-audit --no-fund --loglevel=error
	touch $(DASHBOARD_JS)

browser-deps:
	@test -x /usr/bin/chromium && fc-list :lang=zh family 2>/dev/null | grep -q . || { \
	  command -v apt-get >/dev/null 2>&1 || { echo "need Debian's chromium and fonts-noto-cjk (apt-get)"; exit 1; }; \
	  echo "installing Debian's chromium and fonts-noto-cjk for the browser tests (apt-get)"; \
	  $(SUDO) apt-get update -qq >/dev/null && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

install: $(STAMP) $(DASHBOARD_JS)

run: $(STAMP) $(DASHBOARD_JS)  ## start PostgreSQL, the broker, the four services, the dashboard and demo data; Ctrl-C stops all
	HUZHU_RUN_STARTED=$(STARTED) $(BIN)/python -m deploy.localstack run --replicas $(or $(REPLICAS),1)

demo: $(STAMP)  ## with `make run` going: one claim from roster to payment instruction, timed
	$(BIN)/python -m deploy.demo

reset:  $(STAMP) ## wipe the local stack's data
	$(BIN)/python -m deploy.localstack reset

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy shared services deploy

test: $(STAMP) $(DASHBOARD_JS) browser-deps lint  ## everything: unit, service (real PostgreSQL), end-to-end (the real stack), browser
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

test-service: $(STAMP)
	$(BIN)/python -m pytest -q tests/service

test-e2e: $(STAMP)
	$(BIN)/python -m pytest -q tests/e2e

test-browser: $(STAMP) $(DASHBOARD_JS) browser-deps
	$(BIN)/python -m pytest -q tests/browser tests/dashboard

clean:
	rm -rf $(VENV) .localstack .pytest_cache .mypy_cache .ruff_cache services/dashboard/node_modules

SEED ?= $(shell date +%s)
DURATION ?= 300
chaos: $(STAMP)  ## SIGKILL services, broker and PostgreSQL while claims flow; report in chaos-results/report.json
	$(BIN)/python -m deploy.chaos --seed $(SEED) --duration $(DURATION) --report chaos-results/report.json

bench: $(STAMP)  ## speed figures into bench-results/ (never asserted in tests)
	$(BIN)/python -m bench.run
