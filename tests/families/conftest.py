"""The test family ``newsvendor`` (``tests/families/newsvendor``), importable and registered.

Tests run with ``--import-mode=importlib``, so nothing puts this folder on ``sys.path`` by
itself: it is added here, once. The family is registered with
:func:`stochplan.family.register` around each test module under ``tests/families`` (and
unregistered after it, so the rest of the suite sees the built-in families only). Child
processes (mpiexec, mpi-sppy's driver, the benchmarks) find it through the entry point that
:func:`plugin_env` writes (a ``newsvendor_plugin`` dist-info folder on ``PYTHONPATH``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

FAMILIES = Path(__file__).resolve().parent
ROOT = FAMILIES.parents[1]
KIOSK = FAMILIES / "newsvendor" / "instances" / "kiosk"
ELECTRONICS = ROOT / "stochplan" / "models" / "aggregate" / "instances" / "electronics"

if str(FAMILIES) not in sys.path:
    sys.path.insert(0, str(FAMILIES))

import newsvendor  # noqa: E402

from stochplan import family as registry  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def newsvendor_registered() -> Iterator[Any]:
    """The test family in the registry for the test module, and out of it after."""
    registry.register(newsvendor.FAMILY)
    yield newsvendor.FAMILY
    registry.unregister("newsvendor")


def write_plugin(folder: Path) -> Path:
    """A ``newsvendor_plugin-0.1.dist-info`` in ``folder`` declaring the entry point
    ``newsvendor = newsvendor`` in the group ``stochplan.families``; returns ``folder``."""
    info = folder / "newsvendor_plugin-0.1.dist-info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: newsvendor_plugin\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text("[stochplan.families]\nnewsvendor = newsvendor\n")
    return folder


def child_env(plugin_dir: Path) -> dict[str, str]:
    """The environment of a child process that finds the family through its entry point."""
    path = os.pathsep.join([str(plugin_dir), str(FAMILIES),
                            *filter(None, [os.environ.get("PYTHONPATH")])])
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


@pytest.fixture
def plugin_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Environment for child processes: the plug-in's dist-info and ``tests/families`` on
    ``PYTHONPATH``."""
    return child_env(write_plugin(tmp_path_factory.mktemp("plugin")))


@pytest.fixture
def hand_instance(tmp_path: Path) -> Path:
    """The 2-product instance of ``test_newsvendor.py``'s hand check, as an instance folder."""
    folder = tmp_path / "hand"
    folder.mkdir()
    (folder / "instance.toml").write_text(
        'family = "newsvendor"\nname = "hand"\ndata = "products.csv"\n'
        "[scenarios]\nlow = 0.5\nhigh = 0.5\n[options]\nbudget = 200.0\n")
    (folder / "products.csv").write_text(
        "product,cost,price,salvage,mean_demand,low,high\n"
        "A,4,10,1,30,20,40\nB,6,12,2,20,10,30\n")
    return folder
