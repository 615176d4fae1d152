# The two commands of the README: `make demo` and `make test`. Both set up .venv first.
# TORCH picks the PyTorch requirement, e.g. `make test TORCH=torch==2.13.0` for a CPU-only build.
PYTHON ?= python3
VENV ?= .venv
TORCH ?= torch
BIN := $(VENV)/bin

.PHONY: install demo test lint format

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[test,tracking,tf,onnx]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python demo.py

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest -q

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
