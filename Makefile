# `make demo` and `make test` create .venv and install everything on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.stochplan-installed
DOCS_STAMP := $(VENV)/.stochplan-docs-installed

.PHONY: demo test test-heavy lint docs bench bench-smoke clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test,mpi]"
	touch $(STAMP)

$(DOCS_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c constraints.txt -e ".[docs]"
	touch $(DOCS_STAMP)

demo: $(STAMP)
	$(VENV)/bin/stochplan solve electronics
	@printf '\nDashboard of this run (open it in a browser; works offline): '
	@$(VENV)/bin/stochplan dashboard last

test: $(STAMP)
	$(PY) -m pytest

# The tests marked heavy (tens of seconds each, mostly one solve on 1, 2 and 3 ranks, 3.5 to 4
# minutes together): not in `make test`, which stays under 15 minutes; .ci/run calls it after.
test-heavy: $(STAMP)
	$(PY) -m pytest --runheavy -m heavy

# ruff (lint) on everything, mypy on the package; .ci/run calls it before the tests.
lint: $(STAMP)
	$(VENV)/bin/ruff check stochplan tests benchmarks experiments
	$(VENV)/bin/mypy stochplan

# The documentation site (docs/, Sphinx): docs/_build/html/index.html. Every page is read
# again (-E) and a warning is an error (-W), as .ci/run needs; about 20 s.
docs: $(DOCS_STAMP)
	$(PY) -m sphinx -E -W --keep-going -q -b html docs docs/_build/html
	@echo "docs/_build/html/index.html"

# Every benchmark spec at its smallest size, checked (about 2 minutes; marked slow, so not in
# `make test`); .ci/run calls it after the tests.
bench-smoke: $(STAMP)
	$(PY) -m pytest --runslow tests/test_benchmarks.py

# The full benchmark suite (about 6 hours on 2 cores): writes benchmarks/RESULTS.md and RESULTS.json.
bench: $(STAMP)
	$(PY) benchmarks/run.py

clean:
	rm -rf $(VENV) .pytest_cache stochplan.egg-info docs/_build docs/_generated docs/families
