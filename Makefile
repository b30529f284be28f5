# Quick start: `make run` and `make test`; each sets itself up from nothing.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench docs clean

$(STAMP): pyproject.toml tools/find-python
	@PY=$$(tools/find-python) || exit 1; \
	  echo "Using $$PY ($$($$PY --version))"; \
	  test -x $(BIN)/python || $$PY -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,distributed]'
	@touch $(STAMP)

# The default sweep: tariffs 0-150% x 10 seeds on all cores; --resume finishes or reuses a
# previous run of the same sweep in results/tariff_sweep.
run: $(STAMP)
	$(BIN)/resim sweep tariff_sweep --out results/tariff_sweep --resume

lint: $(STAMP)
	$(BIN)/ruff check sim tests tools
	$(BIN)/ruff format --check sim tests

typecheck: $(STAMP)
	$(BIN)/mypy sim

pytest: $(STAMP)
	$(BIN)/python -m pytest -q

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m pytest tests/bench --benchmark-enable --benchmark-only -q

docs: $(STAMP)
	$(BIN)/python -m sim.docs docs/ODD.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
