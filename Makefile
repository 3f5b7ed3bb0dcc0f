# gatewaylens: every install step lives here (and in scripts/), never only on a developer's machine.
# `make run`  : set up, install the gateways this machine can run, capture the corpus, analyze.
# `make test` : set up, install the gateways and the browser, run the whole test suite (what .ci/run calls).

SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
GATEWAYS ?= all

.PHONY: setup gateways gateways-from-source browser run test test-fast lint bench sample-report dist clean

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

# Debian's chromium for the report's browser tests (Playwright drives it; its own download cannot work here).
browser:
	@bash scripts/install-browser.sh

# GoModel and Bifrost cannot come from the Go module proxy here: build them in your own checkout
# (their own build instructions), then register the binaries (README: Gateways built from source):
#   make gateways-from-source GOMODEL_BIN=… GOMODEL_SRC=… BIFROST_BIN=… BIFROST_SRC=…
gateways-from-source: setup
	@if [ -z "$(GOMODEL_BIN)$(BIFROST_BIN)" ]; then \
	  echo "usage: make gateways-from-source GOMODEL_BIN=<binary> GOMODEL_SRC=<tree> [BIFROST_BIN=<bifrost-http> BIFROST_SRC=<tree>]" >&2; exit 2; fi
	@if [ -n "$(GOMODEL_BIN)" ]; then bash scripts/register-built-gateway.sh gomodel "$(GOMODEL_BIN)" "$(GOMODEL_SRC)"; fi
	@if [ -n "$(BIFROST_BIN)" ]; then bash scripts/register-built-gateway.sh bifrost "$(BIFROST_BIN)" "$(BIFROST_SRC)"; fi

run: gateways
	@$(BIN)/capture --launch --gateways $(GATEWAYS)
	@$(BIN)/analyze output/latest

test: gateways browser
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
