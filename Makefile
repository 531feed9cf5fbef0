SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install lint simulate bench bench-quick

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Lockstep needs $(PYTHON) on PATH"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

## make run — migrate, seed the demo, then web (http://127.0.0.1:8000) and one worker; Ctrl-C stops both.
run: $(STAMP)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py seed_demo
	@$(PY) manage.py devserver 127.0.0.1:8000

## make test — the whole suite (SQLite unless DATABASE_URL is set).
test: $(STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

## make lint — ruff, the import contracts of DESIGN §2 (lint-imports) and mypy with django-stubs.
lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

simulate: $(STAMP)
	$(PY) manage.py simulate --bookings 200 --locks 20 --days 14 --faults default --seed 7

## make bench — the DESIGN §12 targets (PASS/FAIL each); fleet benches need DATABASE_URL on PostgreSQL.
bench: $(STAMP)
	$(PY) -m bench

## make bench-quick — the same checks on smaller fleets (1,000 vs 100 doors, 1,000 vs 10 bookings).
bench-quick: $(STAMP)
	$(PY) -m bench --quick
