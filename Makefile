PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint docs bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,lint,parquet,duckdb]'
	touch $(STAMP)

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
