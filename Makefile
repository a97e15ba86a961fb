# tabkeeper: the two commands are `make run` and `make test` (see README.md).
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.lock pyproject.toml clients/python/pyproject.toml | cksum | cut -d' ' -f1)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install system-deps browser-deps clients-deps run lint test test-sqlite test-sqlite-http \
  test-postgres test-postgres-http test-wheel bench bench-hotpath clean

# The project, then the Python client (clients/python; its one dependency, httpx, is in the
# lock), both editable into .venv.
$(STAMP): requirements.lock pyproject.toml clients/python/pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --requirement requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --editable .
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation --editable clients/python
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: system-deps $(STAMP)

# Pango and HarfBuzz for WeasyPrint's PDFs (apt-get when missing).
system-deps:
	scripts/system-deps

run: install
	$(BIN)/tabkeeper serve --demo --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy --strict src bench
	$(BIN)/ruff check clients/python/src clients/python/generate.py
	$(BIN)/ruff format --check clients/python/src clients/python/generate.py
	cd clients/python && ../../$(BIN)/mypy --strict src generate.py

# Debian's Chromium and axe-core for the billing tab's browser tests (tests/portal/).
browser-deps:
	scripts/browser-deps

# The TypeScript client's packages (clients/typescript/package-lock.json), for its tests
# in tests/clients/ (Node 20 or later; Debian's nodejs and npm installed when missing).
clients-deps:
	scripts/clients-deps

# Each database's tests in two runs: the domain's (unit, scenarios, services on the
# database), which measure the domain's branch coverage (at least 95%: pyproject.toml), and
# the rest (the API over HTTP, the clients, the browser, operations), without the coverage
# tracer, which made them 60% slower. A new tests/ directory lands in the second run.
DOMAIN_TESTS := tests/unit tests/scenarios tests/integration
HTTP_TESTS := tests $(foreach d,$(DOMAIN_TESTS),--ignore=$(d))
PYTEST := $(BIN)/pytest -p no:cacheprovider --durations=15

test-sqlite: install
	mkdir -p .pytest-tmp
	$(PYTEST) --basetemp=.pytest-tmp/sqlite $(DOMAIN_TESTS) \
	  --cov=tabkeeper.domain --cov-branch --cov-report=term-missing:skip-covered

test-sqlite-http: install browser-deps clients-deps
	mkdir -p .pytest-tmp
	TABKEEPER_REQUIRE_BROWSER=1 $(PYTEST) --basetemp=.pytest-tmp/sqlite-http $(HTTP_TESTS)

test-postgres: install
	mkdir -p .pytest-tmp
	scripts/with-postgres $(PYTEST) -m db --basetemp=.pytest-tmp/postgres $(DOMAIN_TESTS)

test-postgres-http: install browser-deps
	mkdir -p .pytest-tmp
	TABKEEPER_REQUIRE_BROWSER=1 scripts/with-postgres $(PYTEST) -m db \
	  --basetemp=.pytest-tmp/postgres-http $(HTTP_TESTS)

# The built wheel installed as a user would (pip resolving pyproject's dependencies, no
# lock) runs --help, simulate and serve (scripts/check-wheel; about a minute, needs PyPI).
test-wheel: install
	scripts/check-wheel

# Everything CI runs: the checks and the four test runs side by side (the machine's 2
# cores are shared; a run often waits on a server, a browser or the database), the longest
# first; each one's output is printed when it ends.
test: install browser-deps clients-deps
	$(MAKE) --no-print-directory -j4 --output-sync=target \
	  test-postgres-http test-sqlite-http test-postgres lint test-wheel test-sqlite

# Not part of `make test`: figures, not pass/fail (docs/benchmarks.md). Several minutes.
bench: install
	$(BIN)/python bench/renewals.py --n 1000 --n 10000 --database sqlite
	TABKEEPER_PG_DURABLE=1 scripts/with-postgres \
	  $(BIN)/python bench/renewals.py --n 1000 --n 10000 --database postgresql
	$(BIN)/python bench/credits.py --n 1000 --database sqlite
	TABKEEPER_PG_DURABLE=1 scripts/with-postgres \
	  $(BIN)/python bench/credits.py --n 1000 --database postgresql
	$(MAKE) --no-print-directory bench-hotpath

# The real-time path (issue 11): ingestion, the check, session starts, the check under
# ingestion (docs/benchmarks.md); on SQLite, then on one durable PostgreSQL server.
bench-hotpath: install
	$(BIN)/python bench/ingest.py --events 1000 --database sqlite
	$(BIN)/python bench/check.py --database sqlite
	$(BIN)/python bench/sessions.py --database sqlite
	$(BIN)/python bench/mixed.py --seconds 20 --database sqlite
	TABKEEPER_PG_DURABLE=1 scripts/with-postgres sh -c '\
	  $(BIN)/python bench/ingest.py --events 1000 --database postgresql && \
	  $(BIN)/python bench/check.py --database postgresql && \
	  $(BIN)/python bench/sessions.py --database postgresql && \
	  $(BIN)/python bench/mixed.py --seconds 20 --database postgresql'

clean:
	rm -rf $(VENV) tests/portal/node_modules clients/typescript/node_modules clients/typescript/dist .pytest-tmp .pytest_cache .mypy_cache .ruff_cache .hypothesis .coverage

# docs/openapi.json regenerated from the code (INT-2; tests/api/test_openapi_contract.py
# fails while they differ), and the clients' generated parts from it (clients/python's
# _api.py, clients/typescript's schema.ts; tests/clients/test_generated.py fails while they
# differ). Run after changing any route, and commit the diff.
.PHONY: openapi
openapi: install clients-deps
	$(BIN)/tabkeeper openapi > docs/openapi.json
	$(BIN)/python clients/python/generate.py
	cd clients/typescript && npm run --silent generate
