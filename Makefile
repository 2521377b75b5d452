# SkinScan: `make run` starts the local stack, `make test` runs ruff and the tests.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: run test lint install install-test sam clean help

help:
	@echo "make run   - create $(VENV), install SkinScan with the model, start the local stack"
	@echo "make test  - install test dependencies, run ruff and pytest"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Stamp files: reinstall only when pyproject.toml changes.
$(VENV)/.installed-ml: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[ml]'
	touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[ml,test]'
	touch $@ $(VENV)/.installed-ml

install: $(VENV)/.installed-ml

install-test: $(VENV)/.installed-test

run: install
	$(BIN)/skinscan serve

lint: install-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# aws-sam-cli lives in its own venv (.venv-sam): its pins clash with the project's.
sam:
	infra/setup-sam.sh

test: install-test sam
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf .pytest_cache .ruff_cache build *.egg-info
