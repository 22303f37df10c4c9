"""The level-stabilised L-shaped method (:mod:`stochplan.solve.lshaped`).

Checked against hand-computed optima (the tiny instance), against the extensive form on the
electronics LP, on the cut it builds (the subgradient inequality), on models without
relatively complete recourse (feasibility cuts), and for bit-for-bit identical results on 1,
2 and 3 MPI ranks.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from stochplan.cli import main
from stochplan.errors import InfeasibleError, InputError
from stochplan.models import aggregate
from stochplan.solve import matrix
from stochplan.solve.ef import solve_ef
from stochplan.solve.evaluate import evaluate_plan
from stochplan.solve.lshaped import Decomposition, LShapedOptions, solve_lshaped
from stochplan.solve.lshaped.method import _start_plan as _start
from stochplan.solve.lshaped.recourse import _Recourse
from stochplan.solve.results import CLOSED_GAP
from stochplan.solve.solvers import SolverOptions, relative_gap
from stochplan.store import ResultsStore

MPIEXEC = Path(sys.executable).parent / "mpiexec"
pytestmark = pytest.mark.solve
#: Polyhedral recourse: cutting planes end at the optimum, so a hand-checkable instance can
#: be asked for it.
EXACT = LShapedOptions(rel_gap=1e-8)


def _problem(inst, spec, seed=0):
    names = aggregate.scenario_set(inst, spec, seed).names
    return names, aggregate.creator_kwargs(inst, spec, seed)


def _lp(name_or_path, **options):
    return aggregate.resolve(str(name_or_path), {"integer": False, **options})


# ----------------------------------------------------------------------------------------------
# Options (no solver)


@pytest.mark.parametrize("field, value", [
    ("rel_gap", 0.0), ("rel_gap", 1.0), ("max_iterations", 0), ("max_iterations", 1.5),
    ("time_limit", 0.0), ("clusters", 0), ("clusters", True), ("level", 0.0), ("level", 1.0),
])
def test_bad_options_name_the_field(field, value):
    with pytest.raises(InputError, match=f"lshaped.{field}"):
        LShapedOptions(**{field: value})


def test_clusters_never_exceed_the_scenarios():
    assert LShapedOptions().clusters_for(3) == 3
    assert LShapedOptions(clusters=7).clusters_for(100) == 7
    assert LShapedOptions().clusters_for(10_000) == 200
    # an integer first stage: a cut per scenario up to a point, then fewer, larger clusters
    assert LShapedOptions().clusters_for(80, integer=True) == 80
    assert LShapedOptions().clusters_for(100, integer=True) == 100
    assert LShapedOptions().clusters_for(101, integer=True) == 50
    assert LShapedOptions().clusters_for(10_000, integer=True) == 50
    assert LShapedOptions(clusters=7).clusters_for(10_000, integer=True) == 7


# ----------------------------------------------------------------------------------------------
# Solves


def test_tiny_instance_by_hand(tiny_path):
    """RP = 85 by hand (tests/data/tiny/instance.toml): make 10 then 15, week 2 on 5 overtime
    hours. The LP relaxation has the same optimum."""
    inst = _lp(tiny_path)
    names, kwargs = _problem(inst, "three-point")
    result = solve_lshaped(aggregate, names, kwargs, EXACT)
    assert result.method == "lshaped" and result.optimal
    assert result.objective == pytest.approx(85.0, abs=1e-6)
    assert result.bound <= result.objective + 1e-9
    assert result.gap <= 1e-8
    # "optimal" only if bound and objective meet (here they end about 5e-9 apart, measured)
    assert result.status == ("optimal" if result.gap <= CLOSED_GAP else "gap_reached")
    assert result.first_stage("X").tolist() == pytest.approx([10.0, 15.0], abs=1e-6)


def test_feasibility_cuts_without_relatively_complete_recourse(tiny_path):
    """Backorders forbidden: the mean-value starting plan (10 in week 2) leaves the high
    scenario without recourse, so a feasibility cut must move the plan to 15 (RP 85)."""
    inst = _lp(tiny_path, backorder_fraction=0.0)
    names, kwargs = _problem(inst, "three-point")
    result = solve_lshaped(aggregate, names, kwargs, EXACT)
    assert result.info["feasibility_cuts"] >= 1
    assert result.objective == pytest.approx(85.0, abs=1e-6)
    assert result.first_stage("X").tolist() == pytest.approx([10.0, 15.0], abs=1e-6)


def test_infeasible_problem_is_reported(tiny_path):
    """No backorders, no overflow, a 2-unit warehouse: the high scenario needs 15 units in
    week 2 and the low one can store at most 2 of them, so no plan works."""
    base = _lp(tiny_path, backorder_fraction=0.0, overflow_capacity=0.0)
    inst = dataclasses.replace(base, regular_capacity=2.0)
    names, kwargs = _problem(inst, "three-point")
    with pytest.raises(InfeasibleError, match="feasible recourse"):
        solve_lshaped(aggregate, names, kwargs)


def test_integer_models_reach_the_extensive_form(tiny_path):
    """Integer workforce (first stage) and integer recourse: the relaxation's cuts, the
    recourse MIPs for each plan's value, and the master MIP reach the EF's optimum (HiGHS to
    1e-6) with a bound at most that optimum."""
    inst = aggregate.resolve(str(tiny_path))
    names, kwargs = _problem(inst, "three-point")
    compiled = matrix.compile_scenarios(aggregate, names, kwargs)
    assert compiled.columns.integer[compiled.n_first:].any()
    ef = matrix.solve_extensive_form(compiled, SolverOptions(backend="matrix", mip_rel_gap=1e-6))
    result = solve_lshaped(aggregate, names, kwargs, LShapedOptions(rel_gap=1e-6))
    assert result.objective == pytest.approx(ef.objective, abs=1e-6)
    assert result.bound <= result.objective + 1e-9


@pytest.mark.parametrize("lost_sales", [None, 1000.0])
def test_matches_the_extensive_form(lost_sales):
    """Electronics LP, 60 Poisson scenarios, with and without lost sales: bound <= EF optimum
    <= objective, the gap is theirs and within target, and the plan, evaluated scenario by
    scenario independently, costs what the method reported."""
    inst = _lp("electronics", **({} if lost_sales is None else {"lost_sales_penalty": lost_sales}))
    names, kwargs = _problem(inst, "poisson:60", seed=5)
    ef = solve_ef(aggregate, names, kwargs, SolverOptions(backend="matrix"))
    result = solve_lshaped(aggregate, names, kwargs, LShapedOptions(rel_gap=1e-5))
    tol = 1e-7 * ef.objective
    assert result.bound <= ef.objective + tol
    assert ef.objective <= result.objective + tol
    assert result.gap == pytest.approx(relative_gap(result.objective, result.bound))
    assert result.gap <= 1e-5
    value = evaluate_plan(aggregate, result.plan, names, kwargs).expected()
    assert value == pytest.approx(result.objective, rel=1e-9)
    # the recourse table holds every scenario's second stage at the plan
    assert set(result.recourse["scenario"]) == set(names)
    history = np.array(result.info["history"])
    assert np.all(np.diff(history[:, 2][np.isfinite(history[:, 2])]) >= -1e-9)  # bound rises
    assert np.all(np.diff(history[:, 3][np.isfinite(history[:, 3])]) <= 1e-9)  # best falls


def test_cuts_are_subgradients():
    """Q_s(x') >= Q_s(x) - pi'T (x' - x) for plans x' around x: the cut the method adds is a
    valid lower bound (this fails if the dual's sign or the technology matrix is wrong)."""
    inst = _lp("electronics", lost_sales_penalty=500.0)
    names, kwargs = _problem(inst, "poisson:8", seed=2)
    d = Decomposition.of(matrix.compile_scenarios(aggregate, names, kwargs))
    x = solve_ef(aggregate, names, kwargs, SolverOptions(backend="matrix"))
    x0 = matrix.plan_vector(x.plan, matrix.compile_scenarios(aggregate, names, kwargs).columns,
                            aggregate.INDEX_NAMES)
    rec = _Recourse(d)
    rng = np.random.default_rng(0)
    checked = 0
    for s in range(len(names)):
        status, q0, pi, _ = rec.solve(s, d.T @ x0)
        assert status == "optimal"
        g = -(d.T.T @ pi)
        for _ in range(5):
            x1 = np.clip(x0 * (1 + 0.2 * rng.standard_normal(x0.size)), d.x_lo, d.x_hi)
            status1, q1, _, _ = rec.solve(s, d.T @ x1)
            assert status1 == "optimal"
            assert q1 >= q0 + g @ (x1 - x0) - 1e-6 * max(1.0, abs(q1))
            checked += 1
    assert checked == 5 * len(names)


def test_cli_solve_lshaped_json(tmp_path, capsys):
    db = tmp_path / "runs.db"
    code = main(["solve", "electronics", "--method", "lshaped", "--relax", "--scenarios",
                 "poisson:30", "--rel-gap", "1e-5", "--db", str(db), "--json", "--quiet"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == "lshaped" and out["status"] == "gap_reached"
    assert CLOSED_GAP < out["gap"] <= 1e-5
    with ResultsStore(db) as store:
        record = store.get_run(out["run_id"]).record
    assert record.method == "lshaped" and record.objective == pytest.approx(out["objective"])
    assert record.kpis["cost"] == pytest.approx(out["objective"], rel=1e-9)


def test_cli_refuses_integer_recourse_under_cvar_without_traceback(tmp_path, capsys):
    code = main(["solve", "electronics", "--method", "lshaped", "--scenarios", "poisson:5",
                 "--cvar", "0.9", "--db", str(tmp_path / "runs.db")])
    err = capsys.readouterr().err
    assert code == 2 and "with a risk measure" in err and "relax integrality" in err
    assert "Traceback" not in err
    assert not (tmp_path / "runs.db").exists()


# ----------------------------------------------------------------------------------------------
# Under mpiexec


@pytest.mark.heavy
@pytest.mark.mpi
def test_same_result_bit_for_bit_on_1_2_3_ranks(tmp_path):
    """Each scenario is re-solved from its own basis and cuts are summed in scenario order on
    rank 0, so the iterates, the plan and the objective do not depend on the number of ranks."""
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec beside {sys.executable}")
    outputs = []
    for ranks in (1, 2, 3):
        db = tmp_path / f"runs{ranks}.db"
        cmd = [str(MPIEXEC), "-n", str(ranks), sys.executable, "-m", "mpi4py", "-m", "stochplan",
               "solve", "electronics", "--method", "lshaped", "--relax", "--scenarios",
               "poisson:40", "--seed", "7", "--db", str(db), "--json"]
        run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert run.returncode == 0, run.stderr[-3000:]
        lines = [line for line in run.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, run.stdout  # rank 0 alone prints
        out = json.loads(lines[0])
        with ResultsStore(db) as store:
            runs = store.list_runs()
            assert len(runs) == 1  # rank 0 alone stores
            plan = store.get_run(int(runs["id"].iloc[0])).record.plan
        outputs.append((out, plan))
    (first, plan1), *others = outputs
    assert first["ranks"] == 1
    for out, plan in others:
        assert out["objective"] == first["objective"] and out["bound"] == first["bound"]
        assert out["iterations"] == first["iterations"]
        assert plan["value"].to_numpy().tobytes() == plan1["value"].to_numpy().tobytes()
    assert [o["ranks"] for o, _ in outputs] == [1, 2, 3]


def test_phase1_duals_bound_every_scenarios_violation():
    """The feasibility cut: one scenario's phase-1 duals pi give, for EVERY scenario t,
    v_t(x) >= const_t(pi) - (T'pi)'x, with equality for the scenario they came from (strong
    duality); so the cut can be tightened to the worst scenario."""
    inst = _lp("electronics")  # no lost sales: a plan that makes little has no recourse
    names, kwargs = _problem(inst, "poisson:12", seed=4)
    d = Decomposition.of(matrix.compile_scenarios(aggregate, names, kwargs))
    x = np.clip(0.5 * _start(d), d.x_lo, d.x_hi)
    rec = _Recourse(d)
    Tx = d.T @ x
    assert all(rec.solve(s, Tx)[0] == "infeasible" for s in range(len(names)))
    violation = np.array([rec.phase1(s, Tx)[0] for s in range(len(names))])
    assert np.all(violation > 0)
    for s in range(len(names)):
        v, pi = rec.phase1(s, Tx)
        bound = d.dual_constants(pi) - (d.T.T @ pi) @ x
        assert bound[s] == pytest.approx(v, rel=1e-7, abs=1e-6)
        assert np.all(violation >= bound - 1e-6 * np.maximum(1.0, violation))
