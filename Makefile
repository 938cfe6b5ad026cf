PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install postgres-server demo test test-fast lint docs bench clean

install: $(STAMP) postgres-server

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint,postgres]'
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

test: install
	$(BIN)/python -m pytest -q

# The edit-test loop: everything but the tests marked slow (subprocess kills, > 3 s each).
test-fast: install
	$(BIN)/python -m pytest -q -m "not slow"

# ruff, mypy, and no import cycle in the package.
lint: install
	@status=0; \
	$(BIN)/ruff check harvester tests bench || status=1; \
	$(BIN)/mypy || status=1; \
	$(BIN)/python tests/check_imports.py harvester || status=1; \
	exit $$status

# The error policy's tables in README.md and docs/error-policy.md, from RULES.
docs: install
	$(BIN)/python -m harvester.graph.policy_doc

bench: install
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) out demo-out
