PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

JS := tests/js

.PHONY: install demo test test-fast test-deps bench bench-quick bench-install bench-components lint clean

$(BIN)/mchat-actors: pyproject.toml
	@PY=$(PY) sh scripts/system-deps.sh venv
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

# Python packages only (enough for make demo and make test-fast).
install: $(BIN)/mchat-actors

# What the browser and node tests need: chromium + chromedriver and node + npm from the system
# package manager when missing (scripts/system-deps.sh: root or sudo, else one line saying what
# to install), then the JS client's npm packages, pinned by package-lock.json.
test-deps:
	@sh scripts/system-deps.sh test
	@$(MAKE) --no-print-directory $(JS)/node_modules/.mchat-installed

$(JS)/node_modules/.mchat-installed: $(JS)/package.json $(JS)/package-lock.json
	@cd $(JS) && npm ci --no-audit --no-fund --silent >/dev/null 2>&1 || { \
		echo "make: npm could not install the JS client packages (network?): run cd $(JS) && npm ci" >&2; exit 1; }
	@touch $@

demo: install
	$(BIN)/mchat-actors demo

# 4 xdist workers on 2 cores: most tests wait on sockets, processes and timers, not the CPU.
# Tests are handed out one at a time, in the order tests/conftest.py sets (slow ones first,
# real-process ones spread out, at most 2 of those at once).
PYTEST_WORKERS := -n 4 --maxschedchunk 1

test: install test-deps
	$(BIN)/pytest -q $(PYTEST_WORKERS)

test-fast: install
	$(BIN)/pytest -q $(PYTEST_WORKERS) -m "not slow and not browser and not node"

# the load simulation (every scenario, every peer; see docs/benchmarks.md), then its plots
bench: bench-install
	$(BIN)/python -m bench run
	$(BIN)/python -m bench plot

bench-quick: bench-install
	$(BIN)/python -m bench run --quick

bench-install: install
	$(BIN)/pip install -q -e '.[test,bench]'
	@if [ ! -x .venv-mmpy/bin/python ]; then \
		$(PY) -m venv .venv-mmpy && .venv-mmpy/bin/pip install -q 'mmpy_bot==2.2.1'; fi

# the older component benchmarks (runtime, sender, ChatService, fake)
bench-components: install
	$(BIN)/python -m bench components

lint: install
	$(BIN)/pip install -q -e '.[lint]'
	$(BIN)/ruff check mchat_actors
	$(BIN)/mypy --strict mchat_actors

clean:
	rm -rf $(VENV) .venv-mmpy .pytest_cache .hypothesis
