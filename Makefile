# Quick start: `make run` and `make test`; each sets itself up from nothing.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck pytest bench docs guide clean

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
	$(BIN)/ruff check sim tests tools viz
	$(BIN)/ruff format --check sim tests viz

typecheck: $(STAMP)
	$(BIN)/mypy sim

pytest: $(STAMP) browser
	$(BIN)/python -m pytest -q

# What the browser app's tests need beyond Python packages: Debian's chromium for Playwright, and
# the front-end files Solara would fetch from a CDN, from npm into the venv (offline afterwards).
# Quick when already done.
.PHONY: browser
browser: $(STAMP)
	@missing=""; command -v chromium >/dev/null || missing="chromium"; \
	  command -v npm >/dev/null || missing="$$missing npm"; \
	  if [ -n "$$missing" ]; then apt-get update && apt-get install -y $$missing; fi
	$(BIN)/python tools/fetch_solara_assets.py

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m pytest tests/bench --benchmark-enable --benchmark-only -q

# Regenerate docs/guide.md (commands, output, tables) and docs/figures/guide_*.png by running every
# command the guide shows into results/guide/ (about 4-6 minutes on two cores).
guide: $(STAMP)
	$(BIN)/python tools/guide.py

docs: $(STAMP)
	$(BIN)/python -m sim.docs docs/ODD.md

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
