PY ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: install demo test test-fast bench lint clean

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

bench: install
	$(BIN)/python -m bench

lint: install
	$(BIN)/pip install -q -e '.[lint]'
	$(BIN)/ruff check mchat_actors
	$(BIN)/mypy --strict mchat_actors

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
