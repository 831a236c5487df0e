# The two commands of the README are the contract: `make run` and `make test`.
# Both work on a fresh machine with only Python 3.11: they create .venv and install into it.

PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
PYTEST_ARGS ?=

.PHONY: run test test-loaded lint bench bench-deps install browser-deps pds-deps sso-deps obs-deps clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

install: $(STAMP)

## Start web, worker and beat with the demo organisation (embedded defaults unless
## DATABASE_URL / CELERY_BROKER_URL say otherwise). Ctrl-C stops everything.
run: install sso-deps
	$(PY) -m cxhub.run

## SAML single sign-on (pysaml2) signs and verifies with Debian's xmlsec1, only when missing.
sso-deps:
	@command -v xmlsec1 >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends xmlsec1; }

## promtool checks the alert rules and the /metrics exposition (tests/cxhub/test_operating_files.py):
## the one program taken out of Debian's prometheus package into the venv, so that no Prometheus
## server is installed or started on the machine.
obs-deps: install
	@test -x $(VENV)/bin/promtool || { set -e; dir=$$(mktemp -d); chmod a+rwx $$dir; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null; \
		(cd $$dir && apt-get download -q prometheus >/dev/null && dpkg-deb -x prometheus_*.deb tree); \
		cp $$dir/tree/usr/bin/promtool $(VENV)/bin/promtool; rm -rf $$dir; }

## What the browser tests (tests/e2e) need besides Python: Debian's chromium (Playwright's own
## browser download cannot be reached) and axe-core from npm, each only when missing or stale.
browser-deps:
	@test -x /usr/bin/chromium || { DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }
	@if [ ! -d node_modules/axe-core ] || [ package-lock.json -nt node_modules/axe-core ]; then \
		npm ci --no-audit --no-fund && touch node_modules/axe-core; fi

PDS_DIR := tests/publishing/networks/real_pds

## The real Bluesky PDS of tests/publishing/networks/test_bluesky_pds.py (npm packages with their
## own Node 22), only when missing or older than its lock file. Without the npm registry the
## install fails and those tests are skipped, saying why.
pds-deps:
	@if [ ! -f $(PDS_DIR)/node_modules/.cxhub-installed ] || \
		[ $(PDS_DIR)/package-lock.json -nt $(PDS_DIR)/node_modules/.cxhub-installed ]; then \
		bash $(PDS_DIR)/install.sh || echo "real PDS not installed: test_bluesky_pds.py will say why"; fi

## Install what the tests need and run the whole suite.
test: install browser-deps pds-deps sso-deps obs-deps
	$(PY) -m pytest $(PYTEST_ARGS)

## No test may depend on an idle machine: the suite LOADED_RUNS times in a row while a busy
## loop runs on every core (bench/loaded.py prints each run's exit code, time and load).
LOADED_RUNS ?= 3
test-loaded: install browser-deps pds-deps sso-deps obs-deps
	$(PY) bench/loaded.py --runs $(LOADED_RUNS) -- $(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports --no-cache --no-logo
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run

## wrk, the HTTP load generator of bench/api.py (Debian's package), only when missing.
bench-deps:
	@command -v wrk >/dev/null 2>&1 || { DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends wrk; }

## Benchmarks, each printing ratios against a baseline run beside it (bench/dispatch.py: the
## publish pipeline against a bare Celery no-op task, then against sites that answer late;
## bench/web.py: gunicorn
## against runserver and the in-process time; bench/api.py: three API lists under wrk against a
## bare DRF list view in the same gunicorn; bench/listening.py: public posts classified and stored
## against a bare insert of the same rows, and the time from a surge's first post to its alert,
## collected every 5 s from a stand-in Mastodon). They need PostgreSQL
## (and Redis for dispatch); each makes and drops its own scratch database on that server.
## Then the chaos bench (bench/chaos.py, with a redis-server of its own): posts sent twice, lost
## or stuck when the network, a worker, Redis or PostgreSQL fails mid-batch, printed whatever
## they are (CHAOS_ARGS=--strict fails when the issue's target is missed).
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/postgres
CHAOS_ARGS ?=
bench: install bench-deps
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/dispatch.py
	@# Issue 16's set: four sites answering in 100 and 400 ms, 2,000 and 20,000 posts, the two
	@# worker processes of `make run`.
	for delay in 100 400; do for n in 2000 20000; do \
		DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/dispatch.py --delay-ms $$delay --hosts 4 \
			--targets $$n --concurrency 2 || exit 1; done; done
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/audit.py
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/web.py
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/api.py
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/ingest.py
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/listening.py
	DATABASE_URL=$(BENCH_DATABASE_URL) $(PY) bench/chaos.py $(CHAOS_ARGS)

clean:
	rm -rf $(VENV) var
