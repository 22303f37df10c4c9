"""Shared fixtures and the --runslow switch.

Markers (registered in pyproject.toml): ``solve`` (HiGHS, seconds), ``mpi`` (under mpiexec),
``slow`` (a minute or more; skipped unless ``--runslow``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

TESTS = Path(__file__).parent
TINY = TESTS / "data" / "tiny"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runslow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_path() -> Path:
    """The hand-checkable instance: 1 product, 2 weeks, week-2 demand 5 or 15 (p = 1/2 each)."""
    return TINY
