# peaktrade: common tasks. `make demo` and `make test` work on a fresh machine (they create .venv).
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.installed

.PHONY: demo test lint format bench clean site-serve

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/peaktrade demo

test: $(STAMP)
	$(BIN)/python -m pytest

lint: $(STAMP)
	$(BIN)/ruff check peaktrade tests benchmarks
	$(BIN)/ruff format --check peaktrade tests benchmarks

format: $(STAMP)
	$(BIN)/ruff format peaktrade tests benchmarks
	$(BIN)/ruff check --fix peaktrade tests benchmarks

# Build the site from live_runs/ and the registry, then serve it on http://127.0.0.1:8000/ (Ctrl+C stops).
site-serve: $(STAMP)
	$(BIN)/peaktrade site build
	$(BIN)/peaktrade site serve

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py

clean:
	rm -rf live_runs site state reports/experiments reports/*.md reports/*.html reports/runs .pytest_cache
