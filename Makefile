# Two commands on a fresh machine with Python 3.11+:  make run  |  make test
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
UV := $(BIN)/uv
UV_VERSION := 0.13.9

.PHONY: run test setup openapi authz-matrix browser lint-contract clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(UV): $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-input "uv==$(UV_VERSION)"

# Installs exactly the pinned set in requirements.lock, then the project itself (editable).
$(VENV)/.installed: requirements.lock pyproject.toml | $(UV)
	$(UV) pip install --quiet --python $(BIN)/python -r requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $@

setup: $(VENV)/.installed

## Start the service on the embedded PostgreSQL with the demo data; prints the docs URL.
run: setup
	$(BIN)/billing-api serve --demo --host 127.0.0.1 --port $${PORT:-8000}

## The whole test suite (embedded PostgreSQL, or BILLING_API_TEST_DATABASE_URL).
test: setup
	$(BIN)/python -m pytest -q

## Lint openapi/openapi.json with Spectral and its OWASP ruleset (versions pinned in tools/contract-lint; needs
## Node and npm). Fails on any error; warnings are printed, not fatal.
lint-contract:
	cd tools/contract-lint && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	cd tools/contract-lint && ./node_modules/.bin/spectral lint ../../openapi/openapi.json --ruleset .spectral.yaml \
	  --fail-severity error --display-only-failures

## Debian's chromium for the docs page's browser test (tests/e2e/test_docs_browser.py); needs root (CI is).
browser:
	@if [ -x /usr/bin/chromium ]; then echo "chromium: /usr/bin/chromium"; else \
	  apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium; fi

openapi: setup
	$(BIN)/billing-api openapi

## Regenerate docs/authorization-matrix.md from the rows of tests/authz/route_matrix.py.
authz-matrix: setup
	$(BIN)/python -m tests.authz.route_matrix

clean:
	rm -rf $(VENV) .pytest_cache
