"""The reliability tests' fixtures; their helpers are in ``harness.py`` (put on ``sys.path``
here, as tests run with ``--import-mode=importlib``)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from harness import stochplan  # noqa: E402


@pytest.fixture(scope="session")
def seeded_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results database holding one solved run (the electronics LP), to copy per test."""
    folder = tmp_path_factory.mktemp("seeded")
    done = stochplan(["solve", "electronics", "--relax", "--quiet", "--db", "results.db"],
                     folder)
    assert done.returncode == 0, done.stderr
    return folder / "results.db"


@pytest.fixture(scope="session")
def multisite_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A results database holding one multisite run (the whole LP extensive form over
    ``poisson:2``), to copy per test: a plan of a family that ``sample:N`` solves block by
    block."""
    folder = tmp_path_factory.mktemp("multisite")
    done = stochplan(["solve", "multisite", "--relax", "--scenarios", "poisson:2", "--quiet",
                      "--db", "results.db"], folder)
    assert done.returncode == 0, done.stderr
    return folder / "results.db"
