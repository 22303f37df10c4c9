"""``stochplan solve INSTANCE --method ph`` under ``mpiexec -n 3``, for every built-in family, on
both subproblem backends (``[ph] backend = "pyomo"`` and ``"highspy"``).

Each run is the command a user types (hub, Lagrangian bound spoke, incumbent spoke), on 3
sampled scenarios with ``bundle_size = 1``: the automatic choice would put all 3 scenarios in
one bundle on the single hub rank, so PH would solve the extensive form at iteration 0 and
never iterate. What must hold whatever the iteration count (``--partial``), in the family's own
sense (for a maximising family read "bound >= optimum >= incumbent"):

- exit status 0, and one JSON line on stdout (rank 0 alone prints);
- bound <= EF optimum <= incumbent, against the extensive form solved here (for a MIP the EF's
  own optimum is only known within its gap, so: PH's bound <= EF incumbent and EF bound <= PH's
  incumbent);
- the gap is the reported numbers' gap, and within the target when the status says so;
- the run is stored: its plan has every first-stage variable of the family, and costs, valued
  again on the same scenarios, what PH reported.

Lot sizing and assignment (binary offers) have MIP subproblems, where PH is a heuristic: only
the bracket is required (no convergence). The highspy backend (the default) runs on every
family in the default selection; the Pyomo backend, slower and already covered on the
aggregate family by ``tests/solve/test_ph.py``, is ``slow`` here, as is a second CVaR run.
Measured on 2 shared cores: the default part of this file takes about a minute.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from stochplan.family import get_family
from stochplan.models import BUILTIN
from stochplan.solve.ef import solve_ef
from stochplan.solve.evaluate import evaluate_plan
from stochplan.solve.results import SOLVED
from stochplan.solve.risk import RiskConfig, risk_module
from stochplan.solve.solvers import relative_gap
from stochplan.store import ResultsStore

pytestmark = pytest.mark.mpi

MPIEXEC = Path(sys.executable).parent / "mpiexec"
SPEC, SEED = "sample:3", 5
RANKS = 3
REL_GAP = 0.01


@dataclass(frozen=True)
class Case:
    family: str
    instance: str
    #: Command-line flags of the model options ...
    flags: tuple[str, ...]
    #: ... and the same options for the extensive form solved here.
    options: dict[str, Any] = field(default_factory=dict)
    #: PH iteration limit (MIP iterations cost seconds each).
    iterations: int = 30
    integer: bool = False
    #: Scenarios per PH subproblem.
    bundle_size: int = 1
    spec: str = SPEC
    seed: int = SEED

    def __str__(self) -> str:
        return self.family


CASES = [
    Case("aggregate", "electronics", ("--relax", "--set", "lost_sales_penalty=500"),
         {"integer": False, "lost_sales_penalty": 500}),
    Case("prebuild", "sop-prebuild", ()),
    # integer setups and batches: MIP subproblems; PH meets the 1 % target at iteration 1
    Case("lotsizing", "furniture", (), iterations=2, integer=True),
    Case("multisite", "multisite", ("--relax",), {"integer": False}),
    # binary offers, relaxed reassignments: MIP subproblems, about 1.5 s per PH iteration
    Case("assignment", "laser", ("--set", "recourse_integer=false"),
         {"recourse_integer": False}, iterations=3, integer=True),
]
BACKENDS = {"highspy": (), "pyomo": (pytest.mark.slow,)}

_EF: dict[str, Any] = {}


def _problem(case: Case) -> tuple[Any, Any, tuple[str, ...], dict[str, Any]]:
    family = get_family(case.family)
    inst = family.resolve(case.instance, case.options or None)
    names = family.scenario_set(inst, case.spec, case.seed).names
    return family, inst, names, family.creator_kwargs(inst, case.spec, case.seed)


def _ef(case: Case) -> Any:
    if case.family not in _EF:
        family, _, names, kwargs = _problem(case)
        _EF[case.family] = solve_ef(family.module, names, kwargs)
    return _EF[case.family]


def _solve(tmp_path: Path, case: Case, backend: str, *extra: str) -> tuple[dict, Path]:
    """``mpiexec -n 3 python -m mpi4py -m stochplan solve ... --method ph --json``; (its JSON,
    its database)."""
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec beside {sys.executable}")
    cfg = tmp_path / "run.toml"
    cfg.write_text(f'[ph]\nbackend = "{backend}"\nbundle_size = {case.bundle_size}\n')
    db = tmp_path / "runs.db"
    cmd = [str(MPIEXEC), "-n", str(RANKS), sys.executable, "-m", "mpi4py", "-m", "stochplan",
           "solve", case.instance, *case.flags, "--method", "ph", "--scenarios", case.spec,
           "--seed", str(case.seed), "--config", str(cfg), "--max-iterations",
           str(case.iterations), "--rel-gap", str(REL_GAP), "--db", str(db), "--json",
           "--partial", "--quiet", *extra]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
    assert run.returncode == 0, run.stderr[-3000:]
    lines = [line for line in run.stdout.splitlines() if line.strip()]
    assert len(lines) == 1, run.stdout  # rank 0 alone prints, and only the JSON object
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.toml", "runs.db"]  # no logs
    return json.loads(lines[0]), db


def _check_numbers(out: dict, optimum: float, optimum_bound: float, sense: str,
                   integer: bool) -> None:
    """The bracket (in the family's sense) and the gap's consistency."""
    flip = 1.0 if sense == "min" else -1.0
    tol = 1e-7 * max(1.0, abs(optimum))
    assert out["method"] == "ph" and out["ranks"] == RANKS
    assert out["cylinders"] == ["hub", "lagrangian", "xhat"]
    assert out["bound"] is not None and out["objective"] is not None
    # bound <= z* <= EF incumbent, EF bound <= z* <= PH incumbent (minimisation form)
    assert flip * out["bound"] <= flip * optimum + tol
    assert flip * optimum_bound <= flip * out["objective"] + tol
    assert out["gap"] == pytest.approx(relative_gap(out["objective"], out["bound"]), rel=1e-12)
    if out["status"] in SOLVED:
        assert out["gap"] <= REL_GAP
    else:
        assert out["status"] in ("iteration_limit", "converged") and out["gap"] > REL_GAP
    if not integer:  # an LP's PH iterates: its bound is not the trivial one of iteration 0
        assert out["iterations"] >= 1


def _check_stored(db: Path, out: dict, case: Case) -> None:
    family, _, names, kwargs = _problem(case)
    with ResultsStore(db) as store:
        runs = store.list_runs()
        assert len(runs) == 1  # rank 0 alone stores the run
        record = store.get_run(int(out["run_id"])).record
    assert record.method == "ph" and record.family == case.family
    assert record.objective == out["objective"] and record.bound == out["bound"]
    assert set(record.plan["variable"]) == set(family.first_stage)
    assert list(record.plan.columns) == ["variable", *family.index_names, "value"]
    value = evaluate_plan(family.module, record.plan, names, kwargs).expected()
    assert value == pytest.approx(out["objective"], rel=1e-6 if case.integer else 1e-9)


def test_every_built_in_family_is_a_case():
    assert sorted(c.family for c in CASES) == sorted(BUILTIN)


@pytest.mark.parametrize("backend", [pytest.param(b, marks=m, id=b)
                                     for b, m in BACKENDS.items()])
@pytest.mark.parametrize("case", CASES, ids=str)
def test_ph_brackets_the_extensive_form(tmp_path, case, backend):
    family, inst, _, _ = _problem(case)
    ef = _ef(case)
    out, db = _solve(tmp_path, case, backend)
    if backend == "highspy":
        assert out["solver"] == "highspy" and out["backend"].startswith("highspy guest")
    else:
        assert out["solver"] == "highs" and out.get("backend", "pyomo") == "pyomo"
    _check_numbers(out, ef.objective, ef.bound, family.objective_sense(inst), case.integer)
    _check_stored(db, out, case)


# ----------------------------------------------------------------------------------------------
# Under a risk measure: the value at risk is one more first-stage column


CVAR = RiskConfig("cvar", alpha=0.9, weight=0.5)
CVAR_CASE = Case("aggregate", "electronics", ("--relax", "--set", "lost_sales_penalty=500"),
                 {"integer": False, "lost_sales_penalty": 500}, bundle_size=3, spec="poisson:6",
                 seed=11)


@pytest.mark.parametrize("backend", [pytest.param(b, marks=m, id=b)
                                     for b, m in BACKENDS.items()])
def test_ph_under_cvar_brackets_the_extensive_form(tmp_path, backend):
    """``--cvar 0.9 --risk-weight 0.5``: run.py hands PH the module in Rockafellar-Uryasev
    form (the boxed value at risk appended to the first stage); PH's bound and incumbent
    bracket the mean-CVaR optimum of the extensive form, and the stored objective is the
    plan's mean-CVaR value."""
    family, _, names, kwargs = _problem(CVAR_CASE)
    optimum = solve_ef(risk_module(family.module, CVAR), names, kwargs).objective
    out, db = _solve(tmp_path, CVAR_CASE, backend, "--cvar", str(CVAR.alpha),
                     "--risk-weight", str(CVAR.weight))
    if backend == "highspy":
        assert out["backend"].startswith("highspy guest")
    _check_numbers(out, optimum, optimum, "min", integer=False)
    assert out["kpis"]["risk_objective"] == pytest.approx(out["objective"], rel=1e-9)
