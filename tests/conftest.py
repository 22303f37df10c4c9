"""Shared fixtures and the --runheavy and --runslow switches.

Markers (registered in pyproject.toml): ``solve`` (HiGHS, seconds), ``mpi`` (under mpiexec),
``heavy`` (tens of seconds, mostly the same solve on 1, 2 and 3 ranks; skipped unless
``--runheavy`` or ``--runslow``: ``make test-heavy`` runs them, and CI after ``make test``),
``slow`` (a minute or more; skipped unless ``--runslow``). ``pg_url`` starts a throw-away
PostgreSQL server for the tests that use it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

TESTS = Path(__file__).parent
ROOT = TESTS.parent
TINY = TESTS / "data" / "tiny"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--runheavy", action="store_true", help="also run tests marked heavy")
    parser.addoption("--runslow", action="store_true",
                     help="also run tests marked slow (and those marked heavy)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    runslow = config.getoption("--runslow")
    runheavy = runslow or config.getoption("--runheavy")
    for item in items:
        if "slow" in item.keywords and not runslow:
            item.add_marker(pytest.mark.skip(reason="slow: run with --runslow"))
        elif "heavy" in item.keywords and not runheavy:
            item.add_marker(pytest.mark.skip(reason="heavy: run with --runheavy "
                                                    "(make test-heavy)"))


@pytest.fixture(scope="session")
def tiny_path() -> Path:
    """The hand-checkable instance: 1 product, 2 weeks, week-2 demand 5 or 15 (p = 1/2 each)."""
    return TINY


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A running throw-away PostgreSQL server's SQLAlchemy URL (database ``postgres``), one
    for the whole session.

    ``scripts/ensure-postgres`` finds (or, as root with apt-get, installs) Debian's
    ``postgresql``; this makes a throw-away cluster in a temporary folder (as the ``postgres``
    user when running as root: the server refuses root), starts it on a free local port and
    removes it after. Where PostgreSQL or the psycopg driver cannot be had, the tests using it
    are skipped with the reason. Tests that need a database of their own create one in it.
    """
    pytest.importorskip("psycopg", reason="the psycopg driver is not installed "
                        "(pip install -c constraints.txt 'psycopg[binary]')")
    found = subprocess.run([str(ROOT / "scripts" / "ensure-postgres")], capture_output=True,
                           text=True, check=False, timeout=900)
    if found.returncode != 0:
        pytest.skip(f"no PostgreSQL server programs: {found.stderr.strip()[-300:]}")
    bindir = Path(found.stdout.strip())
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="stochplan-pg-"))
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            runuser = None
        if runuser is None:
            shutil.rmtree(folder, ignore_errors=True)
            pytest.skip("running as root with no 'postgres' user or runuser to start the server")
        as_user = [runuser, "-u", "postgres", "--"]
        shutil.chown(folder, "postgres")
    data, port = folder / "data", _free_port()

    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*as_user, *cmd], capture_output=True, text=True, check=False,
                              timeout=120)

    init = run(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
               "-E", "UTF8", "--no-sync")
    if init.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"initdb failed: {init.stderr.strip()[-300:]}")
    start = run(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"), "-w",
                "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                "start")
    if start.returncode != 0:
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"the PostgreSQL server did not start: {start.stderr.strip()[-300:]}")
    try:
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def as_profit() -> Callable[[Any], Any]:
    """A function that turns a minimising module into the same problem as a maximising family
    states it (each scenario model maximises its negated cost; no declared scenario data)."""
    return _as_profit


def _as_profit(module: Any) -> Any:
    """``module`` with each scenario model maximising its negated cost (the same problem, as
    a maximising family states it); no declared scenario data."""
    import types

    import pyomo.environ as pyo

    from stochplan import _mpisppy

    proxy = types.ModuleType("electronics_as_profit")

    def scenario_creator(name: str, **kwargs: Any) -> Any:
        model = module.scenario_creator(name, **kwargs)
        objective = next(model.component_data_objects(pyo.Objective, active=True))
        objective.deactivate()
        model.profit = pyo.Objective(expr=-objective.expr, sense=pyo.maximize)
        return _mpisppy.attach_root(model, -_mpisppy.root_cost(model),
                                    _mpisppy.nonant_vars(model), _mpisppy.probability(model))

    proxy.scenario_creator = scenario_creator  # type: ignore[attr-defined]
    proxy.INDEX_NAMES = module.INDEX_NAMES  # type: ignore[attr-defined]
    return proxy


@pytest.fixture
def infeasible_in_scen4(tmp_path: Path) -> Path:
    """A scenario file for electronics: six scenarios at the medium demand, the fifth
    (``scen4``) at fifty times it, which no plan serves within the backorder cap. The first
    scenario is feasible, so only a solve that meets scen4 finds the problem infeasible."""
    import csv

    from stochplan.data import resolve_instance

    rows = list(csv.DictReader(
        (resolve_instance("electronics").parent / "product_data.csv").open()))
    path = tmp_path / "infeasible_in_scen4.csv"
    with path.open("w") as out:
        out.write("scenario,product,week,value\n")
        for s in range(6):
            for r in rows:
                demand = float(r["med_demand"]) * (50 if s == 4 else 1)
                out.write(f"s{s},{r['product']},{r['t']},{demand}\n")
    return path
