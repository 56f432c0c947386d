# Two commands for a newcomer: `make run` and `make test`. Both create .venv on first use.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test faults lint format clean bench docs profile messages

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

## test: run the whole test suite (on every core: TEST_WORKERS=1 for one process)
TEST_WORKERS ?= auto
test: $(VENV)/.dev
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

## faults: the fault-injection suite (failing upstreams, duplicate storm, SIGKILL, fuzzing; minutes)
faults: $(VENV)/.dev
	$(BIN)/python -m pytest -m fault $(PYTEST_ARGS)

## lint: ruff (lint and format check), mypy, and the import layers (lint-imports, pyproject.toml)
lint: $(VENV)/.dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

## docs: write docs/settings.md and .env.example from the settings' descriptions in config/
docs: $(VENV)/.runtime
	$(BIN)/python -m tools.settings_docs

## messages: bring the console's catalogues (console/locales/*/LC_MESSAGES/console.po) up to date
## with its words, and list the msgids still to translate
messages: $(VENV)/.runtime
	$(BIN)/python -m tools.console_messages

## format: apply ruff's formatting and safe fixes
format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## bench: webhook ack, end-to-end, prompt-cost, memory and CPU-per-message benchmarks; writes bench/RESULTS.md
bench: $(VENV)/.dev
	$(BIN)/python -m bench

## profile: py-spy on the web and worker processes under the bench's loads and on section 5's
## parts: flame graphs in bench/profiles/, a table of top frames in bench/RESULTS.md
## (LABEL=<name> names them; py-spy needs ptrace rights: root or CAP_SYS_PTRACE)
LABEL ?= now
profile: $(VENV)/.dev
	$(BIN)/python -m bench.profile --label $(LABEL)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

.PHONY: chat simulate knowledge

## knowledge: synchronise KNOWLEDGE_DIR (each business's folder) into Gemini File Search now
## and print what happened to each file ([TENANT=<name>]: one business)
knowledge: $(VENV)/.runtime
	$(BIN)/python -m tools.knowledge $(if $(TENANT),--tenant "$(TENANT)")

## chat: talk to the assistant in the terminal; WhatsApp is simulated, only GEMINI_API_KEY needed
## (TENANT=<name>: a business of TENANTS_FILE, its prompt and overrides)
chat: $(VENV)/.runtime
	$(BIN)/python -m tools.playground

## simulate: send one signed test webhook to the instance of `make run` on http://$(HOST):$(PORT)
## (make simulate TEXT="Hello" [PORT=8080] [HOST=...] [TENANT=<name>: a business of TENANTS_FILE]
## [TYPE=text|sticker|image|voice]: TEXT is the message, or an image's caption; the media id is
## made up, so against a real Meta number an image or voice note gets "couldn't open that file")
simulate: $(VENV)/.runtime
	$(BIN)/python -m tools.simulate \
		--url "http://$(if $(filter 0.0.0.0,$(HOST)),127.0.0.1,$(HOST)):$(PORT)/webhook" \
		$(if $(TYPE),--type "$(TYPE)") $(if $(TEXT),--text "$(TEXT)") $(if $(TENANT),--tenant "$(TENANT)")
