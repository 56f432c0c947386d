# Two commands for a newcomer: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test faults lint format clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/python -m pip install --quiet -r requirements-dev.txt
	touch $(VENV)/.runtime $@

## run: start the service on http://$(HOST):$(PORT) (settings from the environment or .env)
run: $(VENV)/.runtime
	$(BIN)/uvicorn main:app --host $(HOST) --port $(PORT)

## test: run the whole test suite
test: $(VENV)/.dev
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## faults: the fault-injection suite (failing upstreams, duplicate storm, SIGKILL, fuzzing; minutes)
faults: $(VENV)/.dev
	$(BIN)/python -m pytest -m fault $(PYTEST_ARGS)

## lint: ruff (lint and format check) and mypy
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

## format: apply ruff's formatting and safe fixes
format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: webhook ack, end-to-end, prompt-cost, memory and CPU-per-message benchmarks; writes bench/RESULTS.md
bench: $(VENV)/.dev
	$(BIN)/python -m bench

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: chat simulate

## chat: talk to the assistant in the terminal; WhatsApp is simulated, only GEMINI_API_KEY needed
## (TENANT=<name>: a business of TENANTS_FILE, its prompt and overrides)
chat: $(VENV)/.runtime
	$(BIN)/python -m tools.playground

## simulate: send one signed test webhook to a running instance (make simulate TEXT="Hello"
## [TENANT=<name>]: to a business of TENANTS_FILE)
simulate: $(VENV)/.runtime
	$(BIN)/python -m tools.simulate --text "$(TEXT)" $(if $(TENANT),--tenant "$(TENANT)")
