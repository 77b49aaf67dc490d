# The two README commands: `make demo` and `make test`. Everything installs into the repo.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
NODE_DIR := .local/node
STAMP := $(VENV)/.installed
NODE_STAMP := $(NODE_DIR)/.installed
# The console's front-end libraries (npm ci from the committed lock file; served locally, never a CDN) and
# Debian's chromium for the console's browser tests (Playwright drives /usr/bin/chromium).
CONSOLE_DIR := .local/console
CONSOLE_STAMP := $(CONSOLE_DIR)/.installed
CHROMIUM_STAMP := .local/.chromium-installed
# The IaC checkers (checkov, terraform fmt, actionlint) live in their own venv: their pins clash with Ray's.
DEPLOY_TOOLS := .local/deploy-tools
DEPLOY_STAMP := $(DEPLOY_TOOLS)/.installed
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER := 0
export RAY_USAGE_STATS_ENABLED := 0
export PYTHONDONTWRITEBYTECODE := 1
export GX_ANALYTICS_ENABLED := false
UV := uv==0.13.9
EXTRAS := .[dev,airflow]
# $(call uv_install,<venv python>,<pip arguments>): uv from the project venv, else that venv's pip.
# --compile-bytecode as pip does: with PYTHONDONTWRITEBYTECODE set, a venv without .pyc files makes every
# process (each Ray worker, each test's subprocess) compile what it imports, and the suite ran 75 % longer.
uv_install = $(BIN)/uv pip install -q --compile-bytecode --python $(1) $(2) || $(1) -m pip install -q $(2)

.PHONY: install demo test lint unit integration e2e bench clean stack-down deploy-tools deploy-check screenshots grafana

install: $(STAMP) $(NODE_STAMP) $(DEPLOY_STAMP) $(CONSOLE_STAMP) $(CHROMIUM_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	# the CPU build on disk; a plain `torch` from an index pulls a multi-GB CUDA build. pip, because uv
	# does not look on this disk; uv then keeps the torch it finds installed.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q $(UV)
	# uv resolves the same versions as pip (compared package by package) in seconds instead of minutes;
	# pip stays the fallback should uv fail on a machine
	$(call uv_install,$(BIN)/python,-e '$(EXTRAS)')
	$(call uv_install,$(BIN)/python,--no-deps drain3==0.9.11)
	touch $@

$(NODE_STAMP):
	mkdir -p $(NODE_DIR)
	npm install --silent --no-audit --no-fund --prefix $(NODE_DIR) kinesalite@3.3.3
	touch $@

$(CONSOLE_STAMP): cali/console/package.json cali/console/package-lock.json
	mkdir -p $(CONSOLE_DIR)
	cp cali/console/package.json cali/console/package-lock.json $(CONSOLE_DIR)/
	npm ci --silent --no-audit --no-fund --prefix $(CONSOLE_DIR)
	touch $@

$(CHROMIUM_STAMP):
	test -x /usr/bin/chromium || (apt-get update && apt-get install -y chromium)
	mkdir -p .local
	touch $@

deploy-tools: $(DEPLOY_STAMP)

$(DEPLOY_STAMP): infra/tools/requirements.txt infra/tools/terraform.txt infra/tools/package-lock.json | $(STAMP)
	test -x $(DEPLOY_TOOLS)/bin/python || $(PY) -m venv $(DEPLOY_TOOLS)
	$(call uv_install,$(DEPLOY_TOOLS)/bin/python,-r infra/tools/requirements.txt)
	$(call uv_install,$(DEPLOY_TOOLS)/bin/python,--no-deps --require-hashes -r infra/tools/terraform.txt)
	mkdir -p $(DEPLOY_TOOLS)/node
	cp infra/tools/package.json infra/tools/package-lock.json $(DEPLOY_TOOLS)/node/
	npm ci --silent --no-audit --no-fund --prefix $(DEPLOY_TOOLS)/node
	touch $@

# Terraform, Kubernetes manifests, the image layout and the workflows, checked offline (docs/deploy.md).
deploy-check: $(STAMP) $(DEPLOY_STAMP)
	$(BIN)/python -m cali.deploy.kuberay generate --check
	$(BIN)/python -m cali.deploy.grafana generate --check
	$(BIN)/pytest -q -p no:cacheprovider tests/deploy

demo: install
	$(BIN)/cali demo

lint: install
	$(BIN)/ruff check cali tests benchmarks docker dags jobs

unit: install
	$(BIN)/pytest -q tests/unit

integration: install
	$(BIN)/pytest -q tests/integration

e2e: install
	$(BIN)/pytest -q tests/e2e

test: install
	$(BIN)/ruff check cali tests benchmarks docker dags jobs
	$(BIN)/pytest -q -p no:cacheprovider --durations=25 tests

# The console's screenshots in docs/console/ (shown in the README), from its browser tests.
screenshots: install
	CALI_SCREENSHOTS=docs/console $(BIN)/pytest -q -p no:cacheprovider tests/e2e/test_console.py

# deploy/grafana/ from cali/deploy/grafana.py.
grafana: install
	$(BIN)/python -m cali.deploy.grafana generate

bench: install
	$(BIN)/python benchmarks/hot_path.py --actor-records 200000
	$(BIN)/python benchmarks/shipper_parsing.py
	$(BIN)/python benchmarks/alert_latency.py
	$(BIN)/python benchmarks/grouping.py
	$(BIN)/python benchmarks/retrieval.py
	$(BIN)/python benchmarks/serve_analyze.py
	$(BIN)/python benchmarks/index.py
	$(BIN)/python benchmarks/hot_path.py --records 200000 --index
	$(BIN)/python benchmarks/batch.py --records 1000000 --embedder minilm

stack-down:
	$(BIN)/cali stack down || true

clean: stack-down
	rm -rf .local $(VENV) *.egg-info
