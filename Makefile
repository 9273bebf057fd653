# One obvious way to install, run and check Allo.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-dev
# llama.cpp's default native build crashes on these CPUs (AMX advertised but unusable):
# build llama-cpp-python for AVX2 explicitly. pip keeps the built wheel in its cache, so
# only the first install on a machine pays the ~6 minute build.
export CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON

.PHONY: demo test check lint typecheck install dev native clean print-cmake-args

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev,local-llm]'
	touch $(STAMP)

dev: $(STAMP)

## Compile the NOC engine's hot path with mypyc (needs gcc; pure Python otherwise, with a warning)
native: $(STAMP)
	$(BIN)/python tools/build_native.py

## Install Allo, load the bundled demo knowledge base and serve it on http://127.0.0.1:8000
demo: install
	$(BIN)/allo demo --host 127.0.0.1 --port 8000

## Install the dev dependencies and run the whole test suite
test: native
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff format --check src tests benchmarks tools
	$(BIN)/ruff check src tests benchmarks tools

typecheck: $(STAMP)
	$(BIN)/mypy

## ruff, mypy and the tests
check: lint typecheck test

print-cmake-args:
	@echo "$(CMAKE_ARGS)"

clean:
	-$(BIN)/python tools/build_native.py --clean
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
