# `make demo` and `make test` create .venv and install everything on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.stochplan-installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/stochplan solve electronics
	@printf '\nDashboard of this run (open it in a browser; works offline): '
	@$(VENV)/bin/stochplan dashboard last

test: $(STAMP)
	$(PY) -m pytest

# ruff (lint) on everything, mypy on the package; .ci/run calls it before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check stochplan tests benchmarks experiments
	$(VENV)/bin/mypy stochplan

# The full benchmark suite (about 1.5 hours on 2 cores): writes benchmarks/RESULTS.md and RESULTS.json.
bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache stochplan.egg-info
