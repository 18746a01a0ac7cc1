# The two commands a newcomer needs: `make run` and `make test`. Both set themselves up.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PG_URL ?= postgres://postgres@127.0.0.1:5432/resq
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-sqlite test-postgres lint format bench setup browser

# uv itself, when the machine has none: a private copy, installed from PyPI.
.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen
	@touch $@

setup: .venv/.synced

run: setup
	$(UV) run python manage.py migrate --noinput
	$(UV) run python manage.py demo_terms
	$(UV) run python manage.py demo_data --if-empty --weeks 40
	@echo; echo "  ResQ is at http://$(HOST):$(PORT)/"; echo
	$(UV) run python manage.py runserver $(HOST):$(PORT)

# Debian's Chromium for the browser tests; test tools' own browser downloads are not used.
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "Chromium is missing: install Debian's 'chromium' package to run the browser tests."; \
	  fi; \
	fi

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .

format: setup
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

test-sqlite: setup
	env -u DATABASE_URL $(UV) run pytest

test-postgres: setup
	DATABASE_URL=$(PG_URL) $(UV) run pytest

# Every test, on both databases. An unreachable PostgreSQL fails the run.
test: setup browser lint test-sqlite test-postgres

bench: setup
	$(UV) run python bench/desk_bench.py
