# Two commands for a fresh machine with python3 and pip:
#   make demo   set up .venv, install, run the main job on its built-in default
#   make test   set up .venv, install (with test extras and torch==2.13.0), run all tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
OUT    ?= demo_out
# pytest workers: all local cores (override: make test PYTEST_WORKERS=1)
PYTEST_WORKERS ?= auto

.PHONY: demo test install install-test clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[plot,progress,checkpoint,data]'
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) install --quiet -e '.[test]'
	@# PyTorch is only for cross-check tests and benchmarks; 2.13.0 is the CPU
	@# wheel these machines carry. Elsewhere the torch tests skip with a reason.
	$(PIP) install --quiet torch==2.13.0 || echo "NOTE: torch==2.13.0 not installable here; PyTorch cross-checks will be skipped"
	touch $@

install: $(VENV)/.installed

install-test: $(VENV)/.installed-test

demo: install
	$(BIN)/jaxmomentum demo --out $(OUT)

test: install-test
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS)

bench: install-test
	$(BIN)/python benchmarks/bench_update.py

clean:
	rm -rf $(VENV) $(OUT) .pytest_cache build *.egg-info
