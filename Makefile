# txguard: `make demo` runs the whole pipeline on the embedded stack; `make test` runs the tests.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install demo test test-unit test-integration test-slow bench lint clean browser

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-18s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[local,test,dev]'
	touch $(STAMP)

# dynalite (a durable DynamoDB, on LevelDB) for the embedded stack, from package-lock.json into
# node_modules/, where Node.js 20+ is. Not fatal: without it the stack uses moto, in memory, and says so.
NODE_STAMP := node_modules/.installed
$(NODE_STAMP): package.json package-lock.json
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 && \
	   [ "$$(node -p 'process.versions.node.split(".")[0]')" -ge 20 ]; then \
	  if npm ci --prefix "$(CURDIR)" --no-audit --no-fund --loglevel=error; then touch $(NODE_STAMP); \
	  else echo "install: npm ci failed: DynamoDB will be moto, in memory (not kept across stack down/up)"; fi; \
	else echo "install: no Node.js 20+: DynamoDB will be moto, in memory (not kept across stack down/up)"; fi

install: $(STAMP) $(NODE_STAMP) ## create .venv and install txguard with the local stack and test tools

demo: $(STAMP) $(NODE_STAMP) ## the main job: embedded stack, sample data, train, replay, score, summary
	$(VENV)/bin/txguard demo

# Two workers: one runs the integration tests in order on one embedded stack, the other the unit
# tests meanwhile (tests/conftest.py's scheduler).
test: lint browser $(NODE_STAMP) ## lint, then unit + integration tests (integration on the embedded stack)
	$(PY) -m pytest -q -n 2

# Debian's Chromium for the dashboard's browser tests (Playwright drives it; nothing downloads
# a browser). Installed as root where apt-get exists; otherwise those tests skip, saying why.
browser: ## install Debian's chromium for the browser tests, where possible (root + apt-get)
	@if [ -x /usr/bin/chromium ]; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  export DEBIAN_FRONTEND=noninteractive; \
	  { apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 || \
	    { apt-get update -qq >/dev/null 2>&1 && apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1; }; } \
	  || echo "browser: apt-get could not install chromium; the browser tests will be skipped"; \
	else echo "browser: no /usr/bin/chromium and not root with apt-get; the browser tests will be skipped"; fi

test-unit: $(STAMP) ## unit tests only (no servers)
	$(PY) -m pytest -q tests/unit

test-integration: $(STAMP) $(NODE_STAMP) ## integration tests only
	$(PY) -m pytest -q tests/integration

test-slow: $(STAMP) ## the long fault-injection variants
	$(PY) -m pytest -q -m slow

# The benchmarks' own tools (psutil, py-spy), and the quix-streams peer in a venv of its own:
# it pins confluent-kafka and pydantic below txguard's versions.
BENCH_STAMP := $(VENV)/.bench-installed
PEER_VENV   := benchmarks/.peer-venv
$(BENCH_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $(BENCH_STAMP)

$(PEER_VENV)/.installed: benchmarks/peer-requirements.txt
	$(PYTHON) -m venv $(PEER_VENV)
	$(PEER_VENV)/bin/python -m pip install --quiet -r benchmarks/peer-requirements.txt
	touch $(PEER_VENV)/.installed

# BENCH_ARGS: flags of benchmarks.run, e.g. BENCH_ARGS='--only latency --latency-seconds 10'.
bench: $(BENCH_STAMP) $(PEER_VENV)/.installed ## all benchmarks (~25 min), JSON in benchmarks/results/, compared with the last
	$(PY) -m benchmarks.compare save
	@# every step runs and the comparison is printed even when one fails; then make fails
	@status=0; \
	$(PY) -m benchmarks.run $(BENCH_ARGS) || status=1; \
	$(PY) -m benchmarks.views || status=1; \
	$(PY) -m benchmarks.capacity || status=1; \
	$(PY) -m benchmarks.compare show; \
	exit $$status

lint: $(STAMP) ## ruff (lint + format check) and mypy on every package
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

clean: ## stop the embedded stack and remove local state
	-$(VENV)/bin/txguard stack down --force  # clean deletes the state anyway: nothing left to keep
	rm -rf .txguard
