# Two commands a newcomer needs: `make run` and `make test`. Each installs what it
# needs first: Debian packages when missing (scripts/install-system-deps.sh) and
# a virtualenv with zoneflow in it (.venv).

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Python writes each module's bytecode the first time a process imports it, and
# every later process reads it. Where the environment sets PYTHONDONTWRITEBYTECODE,
# each of the hundreds of zoneflow processes a test run starts compiled its
# modules anew; compiling the whole virtualenv ahead instead (7,600 files, 25 s
# of CPU) compiled mostly what no test imports.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: run test suite unit integration functional lint bench docs deps sysdeps clean

run: deps
	$(BIN)/python scripts/demo.py

# Tests run in parallel workers (pytest-xdist): most of a functional test's time
# is spent waiting for servers and for its processes, so more workers than cores
# keep both cores busy (4 workers left a third of the CPU idle once zoneflow's
# processes were forked instead of started: tests/functional/forkserver.py).
# Each worker starts its own servers, on ports of its own (tests/conftest.py).
WORKERS ?= 6
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider -n $(WORKERS) --dist worksteal

# In a new virtualenv no module has its bytecode yet, and the test workers,
# starting at once, each compiled every module they import: 74 s until six
# workers had collected the tests, against 27 s for one collection alone and
# then 33 s for the six (2 cores). So a new virtualenv's first run collects once,
# in one process (beside lint); a collection error is left to the run to report.
BYTECODE := $(VENV)/.bytecode-stamp

# Lint runs beside the tests: mypy keeps one core busy for a few seconds while the
# test workers start up on the other; make reports either failing.
test: deps
	$(MAKE) --no-print-directory -j2 lint suite

suite: deps $(BYTECODE)
	$(PYTEST) tests

$(BYTECODE): $(STAMP)
	-$(BIN)/python -m pytest -q -p no:cacheprovider --collect-only tests > /dev/null
	touch $@

# tests/unit: pure functions, no database, no threads (seconds).
# tests/integration: in-process, a SQLite database and a zake board per test,
# conductor and mdns threads. tests/functional: real servers.
unit: deps $(BYTECODE)
	$(PYTEST) tests/unit

integration: deps $(BYTECODE)
	$(PYTEST) tests/integration

functional: deps $(BYTECODE)
	$(PYTEST) tests/functional

lint: deps
	$(BIN)/ruff check zoneflow tests bench
	$(BIN)/ruff format --check zoneflow tests bench
	$(BIN)/mypy zoneflow
	$(BIN)/lint-imports --no-cache

bench: deps
	$(BIN)/python bench/persistence.py
	$(BIN)/python bench/statements.py
	$(BIN)/python bench/propagation.py --targets 2
	$(BIN)/python bench/propagation.py --targets 8
	$(BIN)/python bench/mdns.py
	$(BIN)/python bench/notify_cost.py
	$(BIN)/python bench/orchestration.py
	$(BIN)/python bench/chaos.py
	$(BIN)/python bench/api_search.py
	$(BIN)/python bench/api_write.py
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/gc_pauses.py
	$(BIN)/python bench/zone_import.py
	$(BIN)/python bench/event_fanout.py
	$(BIN)/python bench/inspector.py
	$(BIN)/python bench/audit.py
	$(BIN)/python bench/dashboard.py
	$(BIN)/python bench/dashboard_live.py
	$(BIN)/python bench/rndc_cost.py
	$(BIN)/python bench/knot_batch.py
	$(BIN)/python bench/pdns_calls.py
	$(BIN)/python bench/jobs_scale.py
	$(BIN)/python bench/catalog_scale.py
	$(BIN)/python bench/backfill_priority.py
	$(BIN)/python bench/batch_cost.py --without-copies
	$(BIN)/python bench/capacity.py
	$(BIN)/python -m pip install -q --no-compile -e '.[bench]'
	$(BIN)/python bench/load.py

docs: deps
	$(BIN)/python scripts/render-flow-docs.py
	$(BIN)/python scripts/dashboard-screenshots.py

deps: sysdeps $(STAMP)

sysdeps:
	@bash scripts/install-system-deps.sh

$(STAMP): setup.cfg pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q --no-compile -e '.[test]'
	touch $(STAMP)

clean:
	rm -rf $(VENV) .run build *.egg-info
