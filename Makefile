# Two commands for a fresh machine with python3 and pip:
#   make demo   set up .venv, install, run the main job on its built-in default
#   make test   set up .venv, install (with test extras and torch==2.13.0), run all tests
# and one for the dependency floors of pyproject.toml:
#   make floors a fresh .venv-floors with exactly the floor versions
#               (tools/floor_constraints.py), then a smoke subset of the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/python -m pip
OUT    ?= demo_out
# pytest workers: all local cores (override: make test PYTEST_WORKERS=1)
PYTEST_WORKERS ?= auto
FLOORS_VENV ?= .venv-floors
# One file per floored API: optax.tree (alias), flax.linen (models), the
# FFI kernels (fused; its float64 rows need jax.enable_x64, newer than the
# jax floor), jax.shard_map, tqdm and orbax (training, checkpoints).
FLOORS_TESTS ?= tests/test_alias.py tests/test_schedules.py \
	tests/test_models.py tests/test_training.py \
	tests/test_checkpoint_integrity.py \
	"tests/test_fused.py::test_equals_two_calls_in_float32" \
	"tests/test_fused.py::test_vmap_over_a_learning_rate_grid_equals_a_loop" \
	"tests/test_fused.py::test_donated_step_updates_in_place_and_compiles_once" \
	tests/test_train_extra_args.py

.PHONY: demo test install install-test clean bench floors

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e '.[plot,checkpoint,data]'
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

floors:
	rm -rf $(FLOORS_VENV)
	$(PYTHON) -m venv $(FLOORS_VENV)
	$(FLOORS_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(PYTHON) tools/floor_constraints.py pyproject.toml > $(FLOORS_VENV)/constraints.txt
	$(FLOORS_VENV)/bin/python -m pip install --quiet \
	  -c $(FLOORS_VENV)/constraints.txt -e '.[checkpoint]' pytest pytest-xdist
	$(FLOORS_VENV)/bin/python -m pip list 2>/dev/null | grep -E -i \
	  '^(jax|jaxlib|optax|flax|chex|numpy|tqdm|orbax-checkpoint|pytest) '
	$(FLOORS_VENV)/bin/python -m pytest -p no:cacheprovider -n $(PYTEST_WORKERS) \
	  $(FLOORS_TESTS)

clean:
	rm -rf $(VENV) $(FLOORS_VENV) $(OUT) .pytest_cache build *.egg-info
