# Siaga 112. `make run` starts the whole stack on the embedded defaults of siaga.toml;
# `make test` runs the tests against a real Asterisk 22 and PostgreSQL that the tests start.
# `make install` (root, Debian 12): systemd services on the system's PostgreSQL (README).
PYTHON ?= python3
VENV := .venv
SIAGA := $(VENV)/bin/siaga
CONFIG ?= siaga.toml
PACKAGES := agi ari_app db dialplan pbx queues siaga stack supervisor testbed bench

.PHONY: run test setup system lint bench clean install uninstall verify-install

run: setup
	$(SIAGA) --config $(CONFIG) run

test: setup
	$(SIAGA) provision
	$(VENV)/bin/pytest
	$(MAKE) --no-print-directory lint

setup: system $(VENV)/.installed

system:
	@scripts/install-system.sh

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test,dev]'
	touch $@

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
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
