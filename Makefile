# Siaga 112. `make run` starts the whole stack on the embedded defaults of siaga.toml;
# `make test` runs the tests against a real Asterisk 22 and PostgreSQL that the tests start.
# `make install` (root, Debian 12): systemd services on the system's PostgreSQL (README).
PYTHON ?= python3
VENV := .venv
SIAGA := $(VENV)/bin/siaga
CONFIG ?= siaga.toml
PACKAGES := agi ari_app db dialplan edge pbx queues siaga stack supervisor testbed bench
# Test workers: most of an integration test's time is spent waiting on calls and timers, so two
# workers on two cores halve the wall time. Each worker starts its own Asterisk and PostgreSQL
# (free ports); a test file stays on one worker, so its fixtures are set up once.
TEST_WORKERS ?= 2

# The browser phone's SIP library (JsSIP), pinned in supervisor/phone/package-lock.json and
# bundled into one file the console serves (supervisor/views/phone.py); not in the repository.
# Set before `setup`, whose prerequisites make expands as it reads them.
PHONE := supervisor/phone
PHONE_LIBRARY := $(PHONE)/dist/jssip.min.js

.PHONY: run test setup system lint bench clean install uninstall verify-install

run: setup
	$(SIAGA) --config $(CONFIG) run

test: setup
	$(SIAGA) provision
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile
	$(MAKE) --no-print-directory lint

setup: system $(VENV)/.installed $(PHONE_LIBRARY)

system:
	@scripts/install-system.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,dev]'
	touch $@

$(PHONE_LIBRARY): $(PHONE)/package.json $(PHONE)/package-lock.json
	cd $(PHONE) && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy $(PACKAGES)

install: setup
	$(SIAGA) install

uninstall:
	$(SIAGA) uninstall

# The production install on a fresh Debian 12 booted with systemd-nspawn (about 7 minutes).
verify-install: setup
	$(VENV)/bin/python -m testbed.fresh_machine

bench: setup
	$(SIAGA) provision
	$(VENV)/bin/python -m bench.run_all

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache $(PHONE)/node_modules $(PHONE)/dist
