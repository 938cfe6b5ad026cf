PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install browser postgres-server prometheus-tools singer-targets demo test test-fast test-random test-hours lint docs bench bench-smoke bench-table bench-scale clean deploy-check

install: $(STAMP) browser postgres-server prometheus-tools singer-targets

# The report's browser test needs Chromium: Debian's package, installed where it is missing.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } || \
	  echo "chromium could not be installed (apt-get install -y chromium): the report's browser test will not run"

# The telemetry tests push to a real Pushgateway, and deploy-check runs promtool on the alert rules:
# Debian's prometheus-pushgateway and prometheus (which ships promtool), installed where missing.
prometheus-tools:
	@missing=""; command -v prometheus-pushgateway >/dev/null 2>&1 || missing="prometheus-pushgateway"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	  else echo "missing $$missing and neither root nor sudo is here to install it: the telemetry tests" \
	    "will be skipped (in CI they fail)" >&2; exit 0; fi; \
	  echo "installing$$missing (apt-get install -y)" >&2; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq \
	    --no-install-recommends $$missing >/dev/null; \
	fi

# The Singer tap's tests pipe into real targets from PyPI, each in a venv of its own (never our
# dependencies): target-jsonl and meltanolabs-target-postgres.
SINGER := .venv-singer
singer-targets: $(SINGER)/target-jsonl/.installed $(SINGER)/target-postgres/.installed

$(SINGER)/target-jsonl/.installed:
	$(PYTHON) -m venv $(SINGER)/target-jsonl
	$(SINGER)/target-jsonl/bin/python -m pip install --quiet 'target-jsonl==0.1.4'
	touch $@

$(SINGER)/target-postgres/.installed:
	$(PYTHON) -m venv $(SINGER)/target-postgres
	$(SINGER)/target-postgres/bin/python -m pip install --quiet 'meltanolabs-target-postgres==0.8.1'
	touch $@

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint,report,parquet,duckdb,postgres,prometheus,dlt]'
	touch $(STAMP)

# PostgreSQL for the postgres sink's tests (the suite starts its own server with initdb/pg_ctl):
# installed from the system's packages only when initdb is missing, as root or with sudo.
postgres-server:
	@if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then sudo=""; elif command -v sudo >/dev/null 2>&1; then sudo="sudo"; \
	  else echo "PostgreSQL is missing (no initdb) and neither root nor sudo is here to install it:" \
	    "its tests will be skipped (in CI they fail)" >&2; exit 0; fi; \
	  if ! command -v apt-get >/dev/null 2>&1; then echo "PostgreSQL is missing (no initdb) and there is" \
	    "no apt-get: install PostgreSQL's server package" >&2; exit 0; fi; \
	  echo "installing PostgreSQL (initdb not found): apt-get install -y postgresql" >&2; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq postgresql >/dev/null; \
	fi

demo: install
	$(BIN)/harvester demo

# --durations=15: the slowest tests show in every run's log (and CI's).
test: install
	$(BIN)/python -m pytest -q --durations=15

# The edit-test loop: everything but the tests marked slow (subprocess kills, > 3 s each).
test-fast: install
	$(BIN)/python -m pytest -q --durations=15 -m "not slow"

# The suite in a shuffled order (pytest-randomly); the seed is printed: replay with
# `pytest -p randomly --randomly-seed=N`. SEED=N fixes it here. PYTEST_ARGS narrows it (-m "not slow").
test-random: install
	$(BIN)/python -m pytest --durations=15 -p randomly $(if $(SEED),--randomly-seed=$(SEED)) $(PYTEST_ARGS)

# The suite with its worlds at other hours (tests/support.py NOW, moved by HARVESTER_TEST_SHIFT_HOURS):
# HOURS="0 3 7 11 13 17 21" by default; PYTEST_ARGS='-m "not slow"' for the fast loop at each.
HOURS ?= 0 3 7 11 13 17 21
test-hours: install
	@status=0; for h in $(HOURS); do echo "== worlds shifted by $$h h"; \
	  HARVESTER_TEST_SHIFT_HOURS=$$h $(BIN)/python -m pytest -q $(PYTEST_ARGS) || status=1; done; exit $$status

# ruff, mypy, no import cycle in the package, and no room importing from one above it: the rooms
# from the bottom up (the root's modules below them all, cli above them all; docs/internals.md).
ROOMS := config,telemetry,graph,sinks,state,webhook,plan,schedule,tokens,run,singer,dlt,simulator,report,commands
lint: install
	@status=0; \
	$(BIN)/ruff check harvester tests bench deploy || status=1; \
	$(BIN)/mypy || status=1; \
	$(BIN)/python tests/check_imports.py harvester --rooms $(ROOMS) || status=1; \
	exit $$status

# The error policy's tables in README.md and docs/error-policy.md, from RULES.
docs: install
	$(BIN)/python -m harvester.graph.policy_doc

bench: install
	$(BIN)/python -m bench

# Every benchmark at small sizes with its own checks (records equal to the ground truth, no
# rolling window exceeded, every delivery stored once, ...), never its speed: a benchmark that
# breaks exits non-zero. About a minute and a half on two cores; .ci/run runs it.
bench-smoke: install
	$(BIN)/python -m bench --quick

# bench/README.md's table, from bench/results.json (make bench does this after its run).
bench-table: install
	$(BIN)/python -m bench.table

# The deployment files (deploy/): the Kubernetes ones against the schemas that kubernetes-validate
# ships (strict, without network: under `unshare -n` where it can be used), and the Airflow DAG's
# test with Airflow installed. Each in a venv of its own: neither tool is a dependency of harvester,
# and Airflow (about 300 MB) is too heavy for `make test`'s install. AIRFLOW=0 leaves the DAG out.
# Then the Prometheus alert rules, checked and unit-tested by promtool.
DEPLOY_VENV := .venv-deploy
AIRFLOW_VENV := .venv-airflow
AIRFLOW ?= 1
OFFLINE := $(shell unshare -n true 2>/dev/null && echo "unshare -n")

$(DEPLOY_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install --quiet 'kubernetes-validate>=1.33' -e .
	touch $@

$(AIRFLOW_VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet 'apache-airflow>=3.0,<4' -e '.[test]'
	touch $@

deploy-check: $(DEPLOY_VENV)/.installed $(if $(filter 1,$(AIRFLOW)),$(AIRFLOW_VENV)/.installed) prometheus-tools
	$(OFFLINE) $(DEPLOY_VENV)/bin/python deploy/check.py
	promtool check rules deploy/prometheus/alerts.yaml
	cd deploy/prometheus && promtool test rules alerts.test.yaml
ifeq ($(AIRFLOW),1)
	$(OFFLINE) $(AIRFLOW_VENV)/bin/python -m pytest -q -p no:cacheprovider tests/test_deploy_airflow.py
endif

# The scale benchmark with 100,000 accounts too (about 40 minutes); merges into bench/results.json.
bench-scale: install
	$(BIN)/python -m bench.scale --sizes 1000,10000,100000

clean:
	rm -rf $(VENV) $(DEPLOY_VENV) $(AIRFLOW_VENV) $(SINGER) out demo-out
