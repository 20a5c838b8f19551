# Two commands do everything on a fresh machine:
#   make run   - set up and serve the embedded default (SQLite, in-process layers) on :8000
#   make test  - set up and run the whole suite on PostgreSQL and Redis (make test-fast: no servers)
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/workflow
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0

.PHONY: install run test test-fast lint format check schema services serve bench bench-quick bench-peers soak clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@echo "==> creating the virtualenv $(VENV)"
	@$(PYTHON) -m venv $(VENV)
	@echo "==> installing the pinned requirements (the first time takes a minute or two)"
	@$(VENV)/bin/pip install -q --upgrade pip
	@$(VENV)/bin/pip install -q -r requirements-dev.txt
	@touch $@

install: $(VENV)/.installed

# The embedded default: nothing but Python. Set DATABASE_URL/REDIS_URL to use PostgreSQL/Redis.
run: install
	@RUN_HOST=$(HOST) PORT=$(PORT) $(PY) scripts/run.py

services:
	bash scripts/ensure-services.sh

# The suite runs in parallel (pytest-xdist): each worker has its own test database
# (test_<name>_gwN) and its own Redis key prefix (config/settings_test.py). Locally the test databases
# are kept between runs (--reuse-db; add PYTEST_ARGS=--create-db after a migration changed under
# you); CI creates and drops them. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 4
TEST_DB_ARGS := $(if $(CI),,--reuse-db)
TEST_ENV = DATABASE_URL=$${DATABASE_URL:-$(TEST_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)}
PYTEST = $(VENV)/bin/pytest -q -n $(TEST_WORKERS) --dist load --durations=10 $(TEST_DB_ARGS)

test: install services
	bash scripts/ensure-chromium.sh || true
	$(TEST_ENV) $(PYTEST) $(PYTEST_ARGS)

# The edit loop: unit and API tests; no browser, nothing that starts servers or workers, no fuzzing.
test-fast: install services
	$(TEST_ENV) $(PYTEST) -m "not browser and not integration and not fuzz" $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

check: install
	DJANGO_SETTINGS_MODULE=config.settings_test $(PY) manage.py check
	DJANGO_SETTINGS_MODULE=config.settings_test $(PY) manage.py makemigrations --check --dry-run
	DJANGO_SETTINGS_MODULE=config.settings_test $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

# Production topology on this machine (Procfile: web = gunicorn, ws = uvicorn, worker, beat) on
# PostgreSQL and Redis: the local ones unless DATABASE_URL/REDIS_URL say otherwise. Needs a .env
# (or the environment) with SECRET_KEY and ALLOWED_HOSTS, as production does; see docs/deployment.md.
SERVE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/workflow_serve
serve: install services
	export DATABASE_URL=$${DATABASE_URL:-$(SERVE_DATABASE_URL)} REDIS_URL=$${REDIS_URL:-$(TEST_REDIS_URL)}; \
	psql "$${DATABASE_URL%/*}/postgres" -XAtqc "SELECT 1 FROM pg_database WHERE datname = '$${DATABASE_URL##*/}'" | grep -q 1 \
		|| createdb -h 127.0.0.1 -U postgres "$${DATABASE_URL##*/}"; \
	$(PY) manage.py migrate --noinput && \
	$(PY) manage.py collectstatic --noinput -v0 && \
	$(PY) manage.py setup_periodic_tasks && \
	PATH=$(CURDIR)/$(VENV)/bin:$$PATH WS_PORT=$${WS_PORT:-8001} $(VENV)/bin/honcho start -f Procfile -p $(PORT)

# The benchmark suite (docs/benchmarks.md): drops and re-creates the database workflow_bench.
BENCH_ARGS ?= --serving
bench: install services
	$(PY) bench/run.py $(BENCH_ARGS)

bench-quick: install services
	$(PY) bench/run.py --quick --no-docs

# The product's engine side by side with other workflow engines: needs the peer harness checked out
# beside the project (PEERS_DIR); it drives the product through bench/peer_driver.py. Short defaults
# (one round, a few seconds per section); the harness's README has the full settings.
PEERS_DIR ?= ../peers
PEERS_ROUNDS ?= 1
PEERS_POOL ?= 300
PEERS_N ?= 80
PEERS_BUDGET ?= 6
PEERS_PGBENCH_T ?= 5
bench-peers: services
	@test -f "$(PEERS_DIR)/run.sh" || { echo "bench-peers: no peer harness at $(PEERS_DIR) (check it out there or set PEERS_DIR=...)"; exit 2; }
	mkdir -p bench/results/peers
	ROUNDS=$(PEERS_ROUNDS) POOL=$(PEERS_POOL) N=$(PEERS_N) BUDGET=$(PEERS_BUDGET) PGBENCH_T=$(PEERS_PGBENCH_T) \
		PEERS_OUT=$(CURDIR)/bench/results/peers PRODUCT_DIR=$(CURDIR) bash "$(PEERS_DIR)/run.sh"

# Approvals at half the maximum rate for SOAK_MINUTES, then the mixed load (docs/benchmarks.md).
SOAK_MINUTES ?= 30
SOAK_MIXED_MINUTES ?= 10
soak: install services
	$(PY) bench/run.py --soak $(SOAK_MINUTES) --mixed $(SOAK_MIXED_MINUTES)

clean:
	rm -rf $(VENV) db.sqlite3 test-db.sqlite3 staticfiles test-artifacts
