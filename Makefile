# The two commands a newcomer needs: `make run` and `make test`. Both set themselves up.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
PG_URL ?= postgres://postgres@127.0.0.1:5432/resq
# Where `make run` serves: `make run PORT=8001` when port 8000 is taken.
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-sqlite test-postgres lint format bench setup browser crash-test screenshots

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

# Debian's Chromium for the browser tests, Firefox ESR and WebKitGTK's WebDriver (on
# a virtual X display) for the same flows in Firefox and Safari's engine, and Caddy to
# validate the proxy's configuration; test tools' own browser downloads are not used.
browser:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	[ -x /usr/bin/firefox-esr ] || missing="$$missing firefox-esr"; \
	[ -x /usr/bin/WebKitWebDriver ] || missing="$$missing webkit2gtk-driver"; \
	[ -x /usr/bin/Xvfb ] || missing="$$missing xvfb"; \
	command -v caddy >/dev/null || missing="$$missing caddy"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "Missing:$$missing. Install Debian's packages to run the browser and proxy tests."; \
	  fi; \
	fi

lint: setup
	$(UV) run ruff check .
	$(UV) run ruff format --check .

format: setup
	$(UV) run ruff format .
	$(UV) run ruff check --fix .

# The suites run on every core (pytest-xdist; each worker has its own test database), and
# a worker that finishes early takes tests from a busy one. `make test WORKERS=1` runs
# them in one process.
WORKERS ?= auto
PYTEST := $(UV) run pytest -n $(WORKERS) --dist worksteal

test-sqlite: setup
	env -u DATABASE_URL $(PYTEST)

test-postgres: setup
	DATABASE_URL=$(PG_URL) $(PYTEST)

# Every test, on both databases. An unreachable PostgreSQL fails the run.
test: setup browser lint test-sqlite test-postgres

# The desk benchmark (bench/README.md), with wrk as its load generator: Debian's package,
# installed when missing as the browser target installs browsers. `make bench
# BEFORE=../resq-before` also measures that checkout beside this tree, interleaved.
BEFORE ?=
bench: setup
	@command -v wrk >/dev/null || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; \
	  else \
	    echo "Missing: wrk. Install Debian's package wrk to run the desk benchmark."; \
	  fi; \
	}
	$(UV) run python bench/desk_bench.py $(if $(BEFORE),--before "$(BEFORE)")

# The crash test in full: gunicorn killed under load, then PostgreSQL stopped as in a
# crash and started again (it needs to run as root or postgres, and cuts off every
# other user of the server for about ten seconds). `make test` runs the quick part.
crash-test: setup
	RESQ_CRASH_TEST=1 DATABASE_URL=$(PG_URL) $(UV) run pytest -q queueing/tests/test_crash_safety.py

# The pictures in the README and the user guide, taken from demo data (docs/images/).
screenshots: setup browser
	$(UV) run python docs/screenshots.py
