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

# Two pytest workers, a test file each at a time (a file's module fixtures are built once): most tests wait on a
# child process or on Python more than on both cores.
test: lint
	$(BIN)/pytest -q -n 2 --dist loadfile

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .
