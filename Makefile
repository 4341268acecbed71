PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-fast bench bench-quick bench-install bench-components lint clean

$(BIN)/mchat-actors: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

install: $(BIN)/mchat-actors
	@if command -v npm >/dev/null 2>&1 && [ -f tests/js/package.json ] && [ ! -d tests/js/node_modules ]; then \
		cd tests/js && npm install --no-audit --no-fund --silent; fi

demo: install
	$(BIN)/mchat-actors demo

test: install
	$(BIN)/pytest -q

test-fast: install
	$(BIN)/pytest -q -m "not slow and not browser and not node"

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
