"""The master with one theta per scenario over block patterns
(stochplan.solve.lshaped.scenario_master), on lot sizing's pattern cuts: its branch and bound
against HiGHS solving the same master, written in the test as a MIP over ``[x, theta]``."""

from __future__ import annotations

import dataclasses
import math

import highspy
import numpy as np
import pytest
import scipy.sparse as sp

from stochplan.family import get_family
from stochplan.solve import matrix
from stochplan.solve.lshaped import (
    Decomposition,
    LShapedOptions,
    scenario_master,
    solve_lshaped,
    tuning,
)
from stochplan.solve.lshaped.method import _coupling
from stochplan.solve.lshaped.recourse import _Recourse
from stochplan.solve.lshaped.scenario_master import ScenarioMaster
from stochplan.solve.solvers import SolverOptions

FAMILY = get_family("lotsizing")


def _cuts(spec: str = "poisson:3", seed: int = 0, n_plans: int = 12):
    """The pattern decomposition of furniture and every scenario's pattern cut at
    ``n_plans`` random setup plans (those with recourse in every scenario)."""
    inst = FAMILY.resolve("furniture", None)
    names = FAMILY.scenario_set(inst, spec, seed).names
    kwargs = FAMILY.creator_kwargs(inst, spec, seed)
    compiled = matrix.compile_scenarios(FAMILY.module, names, kwargs)
    d = Decomposition.of(compiled)
    d = d.with_patterns(_coupling(FAMILY.module, compiled, d))
    assert d.cuts is not None and d.n_plan is not None
    recourse = _Recourse(d)
    rng = np.random.default_rng(seed)
    S, cut_sets = len(names), []
    while len(cut_sets) < n_plans:
        x = d.cuts.extend((rng.random(d.n_plan) < 0.3).astype(float))
        values, grads = np.empty(S), np.empty((S, d.link.size))
        for s in range(S):
            status, _value, pi, _y = recourse.solve(s, d.T @ x)
            if status != "optimal":
                break
            values[s], grads[s] = d.family_cut(s, pi, x)
        else:
            cut_sets.append((x, values, grads))
    return d, cut_sets


def _highs_master(d: Decomposition, cut_sets, rows=(),
                  without: int | np.ndarray | None = None) -> tuple[float, np.ndarray]:
    """The same master by HiGHS (to 1e-9): min c'x + p'theta, theta_s above each of its
    cuts, the first-stage rows and ``rows`` (lower, coefficients over x, upper); the
    scenarios ``without`` have no cut and their theta is 0."""
    S, n1 = d.p.size, d.n_first
    blocks, lo, hi = [sp.hstack([d.A1, sp.csr_matrix((d.A1.shape[0], S))])], [d.a_lo], [d.a_hi]
    keep = np.ones(S, bool)
    if without is not None:
        keep[without] = False
    for x, values, grads in cut_sets:
        G = np.zeros((S, n1))
        G[:, d.link] = -grads
        blocks.append(sp.hstack([sp.csr_matrix(G), sp.identity(S)]).tocsr()[keep])
        lo.append((values - grads @ x[d.link])[keep])
        hi.append(np.full(int(keep.sum()), np.inf))
    for lower, coef, upper in rows:
        blocks.append(sp.hstack([sp.csr_matrix(coef), sp.csr_matrix((1, S))]))
        lo.append(np.atleast_1d(lower))
        hi.append(np.atleast_1d(upper))
    A = sp.vstack(blocks, format="csc")
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("mip_rel_gap", 1e-9)
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = A.shape[1], A.shape[0]
    lp.col_cost_ = np.concatenate([d.c, d.p])
    lp.col_lower_ = np.concatenate([d.x_lo, np.where(keep, -np.inf, 0.0)])
    lp.col_upper_ = np.concatenate([d.x_hi, np.where(keep, np.inf, 0.0)])
    lp.row_lower_, lp.row_upper_ = np.concatenate(lo), np.concatenate(hi)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_, lp.a_matrix_.index_, lp.a_matrix_.value_ = A.indptr, A.indices, A.data
    lp.integrality_ = [highspy.HighsVarType.kInteger if i < n1 and d.integer[i]
                       else highspy.HighsVarType.kContinuous for i in range(A.shape[1])]
    h.passModel(lp)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return h.getInfo().objective_function_value, np.asarray(h.getSolution().col_value)[:n1]


def _master(d: Decomposition, cut_sets) -> ScenarioMaster:
    master = ScenarioMaster.build(d)
    assert master is not None
    for x, values, grads in cut_sets:
        master.add_cuts(x, values, grads, np.ones(values.size, bool))
    return master


def _model(d: Decomposition, cut_sets, x: np.ndarray) -> float:
    """The master's value at the plan ``x``, from the cuts directly."""
    best = np.max([values + grads @ (x[d.link] - x0[d.link])
                   for x0, values, grads in cut_sets], axis=0)
    return float(d.c @ x + d.p @ best)


@pytest.mark.parametrize("spec, seed", [("poisson:3", 0), ("poisson:5", 2)])
def test_the_branch_and_bound_solves_the_scenario_master_exactly(spec: str, seed: int):
    """Its optimum, proven bound and plan agree with HiGHS on the same MIP; the plan is one
    pattern per product and its value from the cuts is the optimum."""
    d, cut_sets = _cuts(spec, seed)
    master = _master(d, cut_sets)
    status, bound, value, x, found = master.solve(0.0, None)
    reference, _x = _highs_master(d, cut_sets)
    tol = 1e-7 * abs(reference)
    assert status == "optimal"
    assert value == pytest.approx(reference, abs=tol) and bound == pytest.approx(value, abs=tol)
    assert x is not None and _model(d, cut_sets, x) == pytest.approx(value, abs=tol)
    assert master.picks(x) is not None
    assert found and np.array_equal(found[-1], x)
    assert master.nodes > 1


def test_rows_over_the_plan_are_kept():
    """A row over the plan alone (as a feasibility cut is) that the optimum breaks: at most
    one setup fewer than it has. Both searches meet it at the same, worse, optimum."""
    d, cut_sets = _cuts()
    master = _master(d, cut_sets)
    _status, _bound, first, x, _found = master.solve(0.0, None)
    assert x is not None
    coef = np.zeros((1, d.n_first))
    coef[0, : d.n_plan] = 1.0
    setups = float(x[: d.n_plan].sum())
    master.add_rows(np.array([-np.inf]), coef, np.array([setups - 1.0]))
    status, bound, value, x2, _found = master.solve(0.0, None)
    reference, _x = _highs_master(d, cut_sets, [(-np.inf, coef, setups - 1.0)])
    assert status == "optimal" and x2 is not None
    assert value == pytest.approx(reference, rel=1e-7) and value > first + 1e-6
    assert bound == pytest.approx(value, rel=1e-7)
    assert x2[: d.n_plan].sum() <= setups - 1.0


def test_a_search_stopped_early_keeps_a_valid_bound(monkeypatch):
    """Stopped by the clock after a node, or once its bound reaches the level that closes the
    method's gap ("closed"), the bound it reports lies at or below the optimum, and a start
    plan is the incumbent to beat (every plan found beats it)."""
    d, cut_sets = _cuts()
    optimum, _x = _highs_master(d, cut_sets)
    tol = 1e-7 * abs(optimum)
    master = _master(d, cut_sets)
    monkeypatch.setattr(scenario_master, "CLOCK_NODES", 1)
    status, bound, _value, _x2, _found = master.solve(0.0, 0.0)
    assert status == "time_limit" and bound <= optimum + tol
    monkeypatch.undo()
    stop_at = optimum - 50.0
    status, bound, _value, x, _found = master.solve(0.0, None, stop_at=stop_at)
    assert status == "closed" and x is None and stop_at <= bound <= optimum + tol
    start = cut_sets[0][0]
    status, _bound, value, x, found = master.solve(0.0, None, start=start)
    assert status == "optimal" and value == pytest.approx(optimum, abs=tol)
    assert all(_model(d, cut_sets, plan) < _model(d, cut_sets, start) for plan in found)


def test_a_scenario_without_a_cut_counts_zero():
    """Before every scenario has a cut, a scenario without one counts 0 in the objective, as a
    cluster's theta does in the master MIP until it has a cut (rather than minus infinity,
    which would leave every node unpruned)."""
    d, cut_sets = _cuts()
    master = ScenarioMaster.build(d)
    assert master is not None
    usable = np.arange(d.p.size) != 0
    for x, values, grads in cut_sets:
        master.add_cuts(x, values, grads, usable)
    status, bound, value, _x, _found = master.solve(0.0, None)
    reference, _x = _highs_master(d, cut_sets, without=0)
    assert status == "optimal" and value == pytest.approx(reference, rel=1e-7)
    assert bound == pytest.approx(value, rel=1e-7)


def test_a_cut_set_no_scenario_can_use_is_not_stored():
    """A pass where no scenario had recourse gives a cut set without a cut: it is not stored
    (each node would read its row for nothing), and the optimum is HiGHS's on the others; with
    no cut set at all, every scenario counts 0."""
    d, cut_sets = _cuts()
    master = _master(d, cut_sets)
    x, values, grads = cut_sets[0]
    master.add_cuts(x, values + 1e6, grads, np.zeros(values.size, bool))
    assert master.K == len(cut_sets)
    _status, _bound, value, _x, _found = master.solve(0.0, None)
    assert value == pytest.approx(_highs_master(d, cut_sets)[0], rel=1e-7)
    empty = _master(d, [])
    empty.add_cuts(x, values, grads, np.zeros(values.size, bool))
    status, bound, value, _x, _found = empty.solve(0.0, None)  # every theta counts 0
    reference, _x = _highs_master(d, [], without=np.arange(d.p.size))
    assert empty.K == 0 and status == "optimal"
    assert value == pytest.approx(reference, rel=1e-7) and bound == pytest.approx(value, rel=1e-7)


def test_it_serves_pattern_cuts_only():
    """Built for lot sizing's pattern decomposition; not for order assignment (its own cuts
    are no pattern cuts) nor for lot sizing without them."""
    d, _cut_sets = _cuts(n_plans=0)
    assert ScenarioMaster.build(d) is not None
    assert ScenarioMaster.build(dataclasses.replace(d, cuts=None)) is None
    family = get_family("assignment")
    inst = family.resolve("laser", {"recourse_integer": False})
    names = family.scenario_set(inst, "sample:2", 1).names
    compiled = matrix.compile_scenarios(family.module, names,
                                        family.creator_kwargs(inst, "sample:2", 1))
    assert ScenarioMaster.build(Decomposition.of(compiled)) is None


@pytest.mark.parametrize("on", [True, False])
def test_the_method_with_either_master_brackets_the_extensive_form(monkeypatch, on: bool):
    """Lot sizing at 3 scenarios to 0.1 %: with the scenario master (the default) and with
    HiGHS over clusters, the result brackets the extensive form's optimum (HiGHS to 1e-6),
    and the run says which master it used."""
    monkeypatch.setattr(tuning, "SCENARIO_MASTER", on)
    inst = FAMILY.resolve("furniture", None)
    names = FAMILY.scenario_set(inst, "poisson:3", 0).names
    kwargs = FAMILY.creator_kwargs(inst, "poisson:3", 0)
    compiled = matrix.compile_scenarios(FAMILY.module, names, kwargs)
    ef = matrix.solve_extensive_form(compiled, SolverOptions(backend="matrix", mip_rel_gap=1e-6))
    result = solve_lshaped(FAMILY.module, names, kwargs, LShapedOptions(rel_gap=1e-3),
                           compiled=compiled)
    assert result.info["master_mip"]["scenario_master"] is on
    assert result.info["stop_reason"] == "gap" and result.gap <= 1e-3
    tol = 1e-6 * abs(ef.objective)
    assert result.objective <= ef.bound + tol and ef.objective <= result.bound + tol
    assert math.isfinite(result.bound)
