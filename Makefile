# Two commands set up and run everything on a fresh machine:
#   make demo   - create .venv, install, run the demo on the embedded arrests data
#   make test   - create .venv, install, run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench-adult clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build of torch, pinned; a bare "torch" would pull a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e ".[dev,ray,vision,text]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/fairreprogram demo --out demo-output

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy src

bench-adult: $(STAMP)
	$(BIN)/fairreprogram sweep bench/adult_sweep.yaml --out bench/results/adult-sweep --workers 2
	$(BIN)/fairreprogram report bench/results/adult-sweep

clean:
	rm -rf $(VENV) demo-output .pytest_cache .ruff_cache
