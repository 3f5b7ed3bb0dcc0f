# gatewaylens: every install step lives here (and in scripts/), never only on a developer's machine.
# `make run`  : set up, install the gateways this machine can run, capture the corpus, analyze.
# `make test` : set up, install the gateways, run the whole test suite (what .ci/run calls).

SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GATEWAYS ?= all

.PHONY: setup gateways run test test-fast lint bench sample-report dist clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PY) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip
	@$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP)

# Each script is idempotent (skips what is installed at its pinned version) and prints one line per
# gateway; a missing toolchain (node, go) is reported in one line and skipped, not an error.
gateways: setup
	@bash scripts/install-gateways.sh

run: gateways
	@$(BIN)/capture --launch --gateways $(GATEWAYS)
	@$(BIN)/analyze output/latest

test: gateways
	@$(BIN)/pytest -q -p no:cacheprovider

test-fast: setup
	@$(BIN)/pytest -q -m "not slow" -p no:cacheprovider

lint: setup
	@$(BIN)/ruff check .
	@$(BIN)/mypy

bench: gateways
	@$(BIN)/python -m bench

sample-report: gateways
	@bash scripts/sample-report.sh

# The wheel (corpus, compose file, install scripts included: see README "Packaging") into dist/.
dist: setup
	@$(BIN)/pip wheel -q --no-deps -w dist .
	@ls dist/*.whl

clean:
	rm -rf $(VENV) .gateways gateways/npm/node_modules
