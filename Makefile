# Two commands on a fresh machine: `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ADDRPORT ?= 127.0.0.1:8000
STAMP := $(VENV)/.installed

.PHONY: install run test lint typecheck docs pytest postgres redis django-asgi-suite peer-suites matrix bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall when the package metadata changes.
$(STAMP): $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py runasgi $(ADDRPORT)

# ruff, and the package's import contracts (pyproject.toml, [tool.importlinter]).
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# PostgreSQL's server programs, for tests/threads/test_postgres.py (it starts a private cluster).
postgres:
	command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $$(command -v sudo) apt-get update -qq && $$(command -v sudo) apt-get install -y -qq postgresql; }

# Redis' server, for tests/layers/ (tests/harness/redis.py starts a private one on a unix socket).
redis:
	command -v redis-server >/dev/null || { $$(command -v sudo) apt-get update -qq && $$(command -v sudo) apt-get install -y -qq redis-server; }

# Django's own ASGI handler tests (tests/asgi of the installed release's sdist, fetched with pip
# into .cache/), run with LifespanASGIHandler substituted: request threads off, then on; then
# Django's handler, middleware and async tests with the one-hop path off and on.
DJANGO_ONE_HOP_LABELS := asgi handlers middleware middleware_exceptions async
django-asgi-suite: $(STAMP)
	$(BIN)/python -m tests.django_asgi_suite
	$(BIN)/python -m tests.django_asgi_suite --threads 4
	$(BIN)/python -m tests.django_asgi_suite $(DJANGO_ONE_HOP_LABELS)
	$(BIN)/python -m tests.django_asgi_suite --threads 4 --one-hop $(DJANGO_ONE_HOP_LABELS)

# Daphne's own tests (tests/ of the installed release's sdist, fetched with pip into .cache/),
# run against LifespanServer and LifespanCommandLineInterface: the named exceptions are in the
# runner. About a minute.
peer-suites: $(STAMP)
	$(BIN)/python -m tests.peer_suites

# coverage run (not pytest-cov): it also measures the pytest plugin and the servers' subprocesses,
# and (patch = subprocess) the pytest-xdist workers. Tests run in parallel: the servers wait on
# subprocesses and sockets more than they use the CPU. PYTEST_ARGS="-n 0" runs them one by one;
# PYTEST_ARGS="-m soak" runs the soak tests (CI does, after make test).
PYTEST_WORKERS ?= 4
pytest: $(STAMP) postgres redis
	rm -f .coverage .coverage.*
	PYTHONDEVMODE=1 $(BIN)/coverage run -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report

# The documentation site: warnings are errors, every cross-reference must resolve; no network.
docs: $(STAMP)
	$(BIN)/sphinx-build -W --keep-going -n -q -b html docs docs/_build/html

test: lint typecheck docs pytest

# Python x Django matrix (see tox.ini), with the pyenv pythons on PATH when pyenv has them.
PYENV_BINS := $(shell ls -d $(HOME)/.pyenv/versions/3.1[0-3].*/bin 2>/dev/null | tr '\n' ':')
matrix: $(STAMP)
	PATH="$(PYENV_BINS)$$PATH" $(BIN)/tox run

# Benchmarks, not part of `make test`: wrk from Debian's packages, matplotlib for the chart.
bench: $(STAMP) redis
	command -v wrk >/dev/null || { $$(command -v sudo) apt-get update -qq && $$(command -v sudo) apt-get install -y -qq wrk; }
	$(BIN)/python -c "import matplotlib" 2>/dev/null || $(BIN)/python -m pip install --quiet matplotlib
	$(BIN)/python -m bench.run

clean:
	rm -rf $(VENV) .tox build dist docs/_build *.egg-info .coverage .mypy_cache .ruff_cache .pytest_cache
