# crosslist — `make test` and `make dev` work on a fresh clone: they install what they need.
SHELL := /bin/bash
# The Lambda runtime's Python (template.yaml: python3.13): the newest pyenv install of it, else the one on PATH
# (a pyenv shim on PATH runs only when that version is selected: the install itself is taken first).
PYTHON_VERSION := 3.13
PYENV_PYTHONS := $(sort $(wildcard $(or $(PYENV_ROOT),$(HOME)/.pyenv)/versions/$(PYTHON_VERSION).*/bin/python$(PYTHON_VERSION)))
PYTHON ?= $(or $(lastword $(PYENV_PYTHONS)),$(shell command -v python$(PYTHON_VERSION) 2>/dev/null))
VENV := .venv
SAM_VENV := .venv-sam
SAM_CLI_VERSION := 1.170.0
BIN := $(VENV)/bin

comma := ,
.PHONY: python-check test dev openapi lint typecheck pytest unit integration slow e2e schemathesis postgres-binaries sam-build bench clean
.PHONY: deploy deploy-database compile-build
.PHONY: console ts-test browser-test chromium node-check

test: lint typecheck pytest ts-test browser-test ## the tests (CI also runs `make slow` and `make e2e`)

python-check:
	@test -n "$(PYTHON)" && "$(PYTHON)" -c 'import sys; sys.exit(sys.version_info[:2] != ($(subst .,$(comma),$(PYTHON_VERSION))))' || { \
	  echo "crosslist needs Python $(PYTHON_VERSION) (the Lambda runtime): install it (e.g. pyenv install $(PYTHON_VERSION)," \
	  "or your system's python$(PYTHON_VERSION) package), or give its path: make PYTHON=/path/to/python$(PYTHON_VERSION)"; exit 1; }

$(BIN)/.installed: pyproject.toml | python-check
	$(PYTHON) -m venv --clear $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# aws-sam-cli pins its own boto3: it lives in a virtual environment of its own.
$(SAM_VENV)/bin/sam: | python-check
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli==$(SAM_CLI_VERSION)

# The tests and the devstack start PostgreSQL from the installed binaries; without any, the binaries bundled
# in the pgserver wheel are unpacked into the venv (only the binaries are used: its wheels stop at Python 3.12,
# so the wheel of 3.12 is taken, never imported).
PGSERVER_VERSION := 0.1.4
postgres-binaries: $(BIN)/.installed
	@$(BIN)/python -m devstack.postgres bin-dir >/dev/null 2>&1 || { \
	  echo "PostgreSQL binaries not found: unpacking the bundled ones (pgserver $(PGSERVER_VERSION))"; \
	  $(BIN)/pip install --quiet --no-deps --only-binary=:all: --python-version 3.12 \
	    --target $(VENV)/pgserver pgserver==$(PGSERVER_VERSION); }

dev: $(BIN)/.installed postgres-binaries ## the whole system on this machine (Ctrl-C stops it)
	@if command -v npm >/dev/null; then $(MAKE) --no-print-directory console; else \
	  echo "npm not found: the console (/console/) is not built; install Node.js 20+ and run make console"; fi
	$(BIN)/crosslist dev up $(DEV_ARGS)

openapi: $(BIN)/.installed ## regenerate docs/openapi.json from the handlers' routes
	$(BIN)/python -m devstack.openapi

lint: $(BIN)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/unit/test_import_graph.py

typecheck: $(BIN)/.installed
	$(BIN)/mypy layers/shared/crosslist devstack tests bench migrations/env.py $(wildcard functions/*/app.py)

pytest: $(BIN)/.installed $(SAM_VENV)/bin/sam postgres-binaries
	SAM_CLI=$(SAM_VENV)/bin/sam $(BIN)/python -m pytest --ignore=tests/e2e -m "not slow"

# The slowest integration suites (imports killed at every page, the WebSocket fuzz, the layer's arm64 build): ~4 min.
slow: $(BIN)/.installed $(SAM_VENV)/bin/sam postgres-binaries ## the slow integration suites (CI runs them)
	SAM_CLI=$(SAM_VENV)/bin/sam $(BIN)/python -m pytest tests/integration -m slow

unit: $(BIN)/.installed
	$(BIN)/python -m pytest tests/unit -m "not integration"

integration: $(BIN)/.installed $(SAM_VENV)/bin/sam postgres-binaries
	SAM_CLI=$(SAM_VENV)/bin/sam $(BIN)/python -m pytest tests/integration

e2e: $(BIN)/.installed postgres-binaries ## the whole devstack end to end, schemathesis included (~4 min; CI runs it)
	$(BIN)/python -m pytest tests/e2e

# Part of `make e2e` (it is under tests/e2e): schemathesis against the devstack's HTTP API, no 5xx allowed.
schemathesis: $(BIN)/.installed postgres-binaries
	$(BIN)/python -m pytest tests/e2e/test_api_schemathesis.py

sam-build: $(SAM_VENV)/bin/sam ## build for arm64 without a container (the runtime's Python must be on PATH)
	PATH="$(dir $(PYTHON)):$$PATH" $(SAM_VENV)/bin/sam build --template template.yaml
	$(MAKE) --no-print-directory compile-build

# sam build ships sources only, and Lambda's /opt and /var/task are read-only: without this, every cold start
# compiled each module it imported (POST /jobs: 2.6 s of imports instead of 0.6 s, `make bench`). Bytecode for the
# runtime's Python, trusted without looking at the sources (unchecked-hash: a deployed package never changes).
BUILD_DIR ?= .aws-sam/build
compile-build: | python-check
	$(PYTHON) -m compileall -q -j 0 --invalidation-mode unchecked-hash $(BUILD_DIR)

# Deploying (README: Deploy to AWS). samconfig.toml holds safe defaults and nothing of any account; your answers to
# `sam deploy --guided` (region, parameters) are saved in DEPLOY_CONFIG, a git-ignored copy of it. Guided as long as
# that copy holds no parameters yet (the first deploy, or one given up half-way).
DEPLOY_CONFIG := samconfig.local.toml
DATABASE_STACK ?= crosslist-database
deploy: $(SAM_VENV)/bin/sam | python-check ## sam build + sam deploy (guided the first time)
	PATH="$(dir $(PYTHON)):$$PATH" $(SAM_VENV)/bin/sam build --template template.yaml
	$(MAKE) --no-print-directory compile-build
	@if grep -qs '^parameter_overrides' $(DEPLOY_CONFIG); then \
	  echo "sam deploy with $(DEPLOY_CONFIG) (delete it to be asked again)"; \
	  $(SAM_VENV)/bin/sam deploy --config-file $(DEPLOY_CONFIG) $(DEPLOY_ARGS); \
	else \
	  echo "first deploy: sam deploy --guided saves your answers in $(DEPLOY_CONFIG) (git ignores it)"; \
	  cp samconfig.toml $(DEPLOY_CONFIG) && $(SAM_VENV)/bin/sam deploy --guided --config-file $(DEPLOY_CONFIG) $(DEPLOY_ARGS); \
	fi

# The "All in AWS" PostgreSQL (deploy/database.yaml), before the first `make deploy`; its outputs are named as
# template.yaml's parameters. Options: make deploy-database DATABASE_ARGS="--parameter-overrides EnableProxy=true"
deploy-database: $(SAM_VENV)/bin/sam ## the VPC, NAT gateway and Aurora Serverless v2 of the "All in AWS" profile
	$(SAM_VENV)/bin/sam deploy --template-file deploy/database.yaml --stack-name $(DATABASE_STACK) \
	  --capabilities CAPABILITY_IAM --confirm-changeset --no-fail-on-empty-changeset $(DATABASE_ARGS)
	$(SAM_VENV)/bin/sam list stack-outputs --stack-name $(DATABASE_STACK) --output table

# Every deploy migrates the database by itself (the DatabaseSchema custom resource). This runs the deployed stack's
# MigrationFunction now: alembic upgrade head under the migration lock, then prints the revision reached and what
# was applied, or why nothing was (errorMessage). Stack and region: DEPLOY_CONFIG's (else samconfig.toml's), or
# make migrate STACK=crosslist-staging REGION=eu-west-1
.PHONY: migrate
migrate: $(SAM_VENV)/bin/sam ## migrate the deployed stack's database now
	$(SAM_VENV)/bin/sam remote invoke MigrationFunction --event '{}' \
	  --config-file $(or $(wildcard $(DEPLOY_CONFIG)),samconfig.toml) \
	  $(if $(STACK),--stack-name $(STACK)) $(if $(REGION),--region $(REGION))

bench: $(BIN)/.installed postgres-binaries
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .mypy_cache .ruff_cache
	rm -rf $(TS)/node_modules $(TS)/dist $(TS)/test-results $(BROWSER_TEST)/node_modules $(BROWSER_TEST)/dist

# The TypeScript client (clients/ts: @crosslist/client), the console the devstack serves at /console/ (clients/ts/console,
# compiled on the client's build) and the console in a real browser (clients/ts/test-browser). Node.js 20+ and npm.
TS := clients/ts
BROWSER_TEST := $(TS)/test-browser
CHROMIUM ?= /usr/bin/chromium
node-check:
	@command -v npm >/dev/null && node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' 2>/dev/null || { \
	  echo "clients/ts needs Node.js 20 or newer, with npm: install them (e.g. your system's nodejs package)"; exit 1; }

# npm ci again whenever the lock file changes (npm ci writes node_modules/.package-lock.json).
$(TS)/node_modules/.package-lock.json: $(TS)/package-lock.json | node-check
	cd $(TS) && npm ci --no-audit --no-fund
	@touch $@
$(BROWSER_TEST)/node_modules/.package-lock.json: $(BROWSER_TEST)/package-lock.json | node-check
	cd $(BROWSER_TEST) && npm ci --no-audit --no-fund
	@touch $@

console: $(TS)/node_modules/.package-lock.json | node-check ## build the client and the console (make dev does)
	cd $(TS) && npm run --silent build
	cd $(TS) && node_modules/.bin/tsc -p console/tsconfig.json
	cp $(TS)/console/index.html $(TS)/console/console.css $(TS)/dist/console/

# The client's type check, unit tests and integration tests (against a devstack they start), and the console's types.
ts-test: console $(BIN)/.installed postgres-binaries
	cd $(TS) && npm run --silent typecheck
	cd $(TS) && npm test
	cd $(TS) && npm run --silent test:integration

# Debian's chromium, installed when missing and this machine allows it (root or password-less sudo, apt-get);
# never a downloaded browser. Without it the browser test is skipped, saying why.
chromium:
	@if [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then echo "chromium: no apt-get here, the browser test will be skipped"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then SUDO=; elif sudo -n true 2>/dev/null; then SUDO="sudo -n"; else \
	  echo "chromium: not installed, and installing it needs root or sudo: the browser test will be skipped"; exit 0; fi; \
	echo "chromium: installing Debian's chromium package"; \
	export DEBIAN_FRONTEND=noninteractive; \
	$$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null \
	  || { $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq --no-install-recommends chromium >/dev/null; } \
	  || echo "chromium: apt-get could not install it: the browser test will be skipped"

# The console in Debian's chromium (playwright-core), against a devstack of its own; screenshots in clients/ts/test-results/.
browser-test: console chromium $(BROWSER_TEST)/node_modules/.package-lock.json $(BIN)/.installed postgres-binaries
	cd $(BROWSER_TEST) && CHROMIUM=$(CHROMIUM) npm test
