# DockWarden: `make run` runs the bot, `make test` runs every test (it starts what it needs).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test check lint typecheck bench clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/dockwarden run

check: $(STAMP)
	$(VENV)/bin/dockwarden check

test: $(STAMP)
	$(PY) -m tests.services prepare
	$(PY) -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(VENV)/bin/ruff check bot adapters tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m tests.services prepare
	$(PY) benchmarks/check_pass.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
