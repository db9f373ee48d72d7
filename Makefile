# DockWarden: `make run` runs the bot, `make test` runs every test (it starts what it needs).
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
RUN_STAMP := $(VENV)/.installed-run
# `make image`: the image's name and the base it is built on (a Debian-based image with Python
# 3.11+; empty: the Dockerfile's default). Wheels come from this machine's pip configuration.
IMAGE      ?= dockwarden:latest
BASE_IMAGE ?=
VERSION    := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
REVISION   := $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
SOURCE     := $(shell git remote get-url origin 2>/dev/null)

.PHONY: run test check lint typecheck bench image clean

# The runtime dependencies only: what `make run` and `make check` need.
$(RUN_STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e .
	touch $(RUN_STAMP)

# The test extras too (pytest, mypy, ruff...).
$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

run: $(RUN_STAMP)
	$(VENV)/bin/dockwarden run

check: $(RUN_STAMP)
	$(VENV)/bin/dockwarden check

test: $(STAMP)
	$(PY) -m tests.services prepare
	$(PY) -m pytest -q -p no:cacheprovider --durations=20

lint: $(STAMP)
	$(VENV)/bin/ruff check bot adapters tests benchmarks
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) -m tests.services prepare
	$(PY) benchmarks/check_pass.py

image: $(RUN_STAMP)
	rm -rf build/wheels
	$(PY) -m pip wheel -q -w build/wheels . hatchling
	rm -f build/wheels/dockwarden-*.whl
	docker build -t $(IMAGE) --build-arg WHEELS_ONLY=1 \
		$(if $(BASE_IMAGE),--build-arg BASE_IMAGE=$(BASE_IMAGE)) \
		--build-arg VERSION=$(VERSION) --build-arg REVISION=$(REVISION) \
		--build-arg SOURCE=$(SOURCE) .

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build
