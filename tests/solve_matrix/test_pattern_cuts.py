"""Lagrangian cuts over block patterns (stochplan.solve.patterns) for the integer L-shaped
master, on lot sizing: the machine-hour and material rows dualised leave one block per
product, touched by its setups.

Every cut value here is checked against the recourse solved independently in the test (scipy's
``linprog`` on the scenario's arrays, the first stage fixed), or by hand on the one-product
instance of tests/data/lotsizing_tiny."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from stochplan.family import get_family
from stochplan.solve import matrix, patterns
from stochplan.solve.lshaped import Decomposition, LShapedOptions, solve_lshaped
from stochplan.solve.lshaped.method import _coupling
from stochplan.solve.lshaped.recourse import _Recourse
from stochplan.solve.solvers import SolverOptions

FAMILY = get_family("lotsizing")
TINY = Path(__file__).resolve().parents[1] / "data" / "lotsizing_tiny"


def _setup(instance: str | Path = "furniture", spec: str = "poisson:3", seed: int = 0,
           options: dict | None = None):
    inst = FAMILY.resolve(instance, options)
    names = FAMILY.scenario_set(inst, spec, seed).names
    kwargs = FAMILY.creator_kwargs(inst, spec, seed)
    compiled = matrix.compile_scenarios(FAMILY.module, names, kwargs)
    d = Decomposition.of(compiled)
    coupling = _coupling(FAMILY.module, compiled, d)
    return names, kwargs, compiled, d, coupling


def _recourse(compiled: matrix.CompiledScenarios, s: int, x: np.ndarray) -> float:
    """Q_s(x) (minimisation form, constant included), by scipy's linprog on the whole
    scenario LP with the first stage fixed at ``x``; +inf without recourse."""
    n1 = compiled.n_first
    lo, hi = compiled.row_bounds(s)
    A = compiled.A.tocsr()
    up = np.isfinite(hi)
    down = np.isfinite(lo) & (lo != hi)
    eq = lo == hi
    col_lo, col_hi = compiled.col_lo[s].copy(), compiled.col_hi[s].copy()
    col_lo[:n1] = col_hi[:n1] = x
    res = linprog(compiled.cost[s], A_ub=np.vstack([A[up & ~eq].toarray(),
                                                    -A[down].toarray()]),
                  b_ub=np.concatenate([hi[up & ~eq], -lo[down]]), A_eq=A[eq].toarray(),
                  b_eq=lo[eq], bounds=list(zip(col_lo, col_hi, strict=True)), method="highs")
    if res.status == 2:
        return np.inf
    assert res.status == 0, res.message
    return float(res.fun + compiled.offset[s] - compiled.cost[s, :n1] @ x)


def _duals(d: Decomposition, s: int, x: np.ndarray) -> np.ndarray:
    """Scenario s's recourse row duals at the plan x (the model's own columns), over every
    compiled row, as the L-shaped method hands them to the cuts."""
    status, _value, pi, _y = _Recourse(d).solve(s, d.T @ x)
    assert status == "optimal"
    duals = np.zeros(d.n_rows)
    duals[d.rows] = pi
    return duals


def test_furniture_splits_into_one_block_per_product():
    """Dualising machine_hours and materials leaves 9 blocks, each touched by one product's 4
    setups (16 patterns each, 144 pattern columns); the rows tying them to the plan hold at
    every extended binary plan and at no other marking."""
    _names, _kwargs, compiled, d, coupling = _setup(spec="poisson:2")
    assert coupling is not None
    families = np.asarray(compiled.row_family, dtype=object)[d.rows]
    assert set(families[coupling]) == {"machine_hours", "materials"}
    ext = d.with_patterns(coupling)
    cuts = ext.cuts
    assert isinstance(cuts, patterns.PatternCuts)
    assert len(cuts.blocks) == 9 and cuts.n_extra == 144 and ext.n_plan == d.n_first == 36
    products = []
    for block in cuts.blocks:
        idx = [compiled.columns.indices[j] for j in block.link]
        assert [compiled.columns.variables[j] for j in block.link] == ["y"] * 4
        assert len({p for p, _t in idx}) == 1 and sorted(t for _p, t in idx) == [1, 2, 3, 4]
        products.append(idx[0][0])
    assert len(set(products)) == 9
    E, lo, hi = cuts.extra_rows()
    rng = np.random.default_rng(4)
    for _ in range(5):
        x = (rng.random(36) < 0.4).astype(float)
        full = cuts.extend(x)
        assert np.allclose(E @ full, lo) and np.allclose(lo, hi)
        assert full[36:].sum() == 9
        wrong = full.copy()
        k = 36 + int(np.flatnonzero(full[36:])[0])
        wrong[k], wrong[k + 1 if k + 1 < 36 + 16 else k - 1] = 0.0, 1.0
        assert not np.allclose(E @ wrong, lo)


def test_the_one_product_instance_by_hand():
    """The nominal scenario of lotsizing_tiny (market 10 a week, a GOLD order of 5 in week 2;
    machine 30 h a week, 1 h a unit, a setup 2 h): one block, 4 patterns. With no price on the
    machine and material rows the cut is each pattern's recourse profit (minimisation form,
    negated): none -$150 of penalty, week 1 only 10 x 20 - 10 = 190, week 2 only 150, both
    10 x 25 - 2 = 248. With the week-1 machine hour priced at 0.5 (dual -0.5): constant
    0.5 x -30, the setup's 2 hours +1 on y[week 1], and week 1's units 0.5 dearer: making 20
    in week 1 alone 190 - 10, both weeks (12 made in week 1, the batch) 248 - 6."""
    _names, _kwargs, compiled, d, coupling = _setup(TINY, spec="named")
    ext = d.with_patterns(coupling)
    cuts = ext.cuts
    assert len(cuts.blocks) == 1 and cuts.n_extra == 4
    y1, y2 = (compiled.columns.indices.index(("Widget", t)) for t in (1, 2))
    assert cuts.blocks[0].link.tolist() == sorted([y1, y2])
    bit = {y1: 0 if y1 < y2 else 1, y2: 1 if y1 < y2 else 0}

    def pattern(w1: int, w2: int) -> int:
        return w1 * 2 ** bit[y1] + w2 * 2 ** bit[y2]

    const, coef = cuts(0, np.zeros(d.n_rows))
    assert const == pytest.approx(0.0, abs=1e-9)
    assert np.allclose(coef[: d.n_first], 0.0)
    expect = {(0, 0): 150.0, (1, 0): -190.0, (0, 1): -150.0, (1, 1): -248.0}
    for (w1, w2), value in expect.items():
        assert coef[d.n_first + pattern(w1, w2)] == pytest.approx(value, abs=1e-7)

    row = next(i for i, (f, r) in enumerate(zip(compiled.row_family, compiled.A.tocsr(),
                                                strict=True))
               if f == "machine_hours" and r[0, y1] != 0)
    duals = np.zeros(d.n_rows)
    duals[row] = -0.5
    const, coef = cuts(0, duals)
    assert const == pytest.approx(-15.0, abs=1e-9)
    assert coef[y1] == pytest.approx(1.0, abs=1e-9) and coef[y2] == pytest.approx(0.0, abs=1e-9)
    expect = {(0, 0): 150.0, (1, 0): -180.0, (0, 1): -150.0, (1, 1): -242.0}
    for (w1, w2), value in expect.items():
        assert coef[d.n_first + pattern(w1, w2)] == pytest.approx(value, abs=1e-7)


def test_the_cuts_bound_the_recourse_at_every_binary_plan_and_touch_it_at_their_own():
    """furniture poisson:3: for 4 random setup plans, each scenario's cut from the recourse
    duals at the plan equals Q_s there and lies below Q_s (solved in the test by linprog) at
    the other plans; so do cuts from random prices of the machine and material rows."""
    _names, _kwargs, compiled, d, coupling = _setup(spec="poisson:3")
    ext = d.with_patterns(coupling)
    cuts = ext.cuts
    rng = np.random.default_rng(11)
    plans = [(rng.random(36) < p).astype(float) for p in (0.2, 0.35, 0.5, 0.65)]
    Q = np.array([[_recourse(compiled, s, x) for s in range(3)] for x in plans])
    assert np.isfinite(Q).all()
    rows = d.rows[np.flatnonzero(coupling)]
    for s in range(3):
        for i, x in enumerate(plans):
            const, coef = cuts(s, _duals(d, s, x))
            at = [const + coef @ cuts.extend(v) for v in plans]
            assert at[i] == pytest.approx(Q[i, s], rel=1e-7, abs=1e-6)
            assert all(a <= q + 1e-6 * max(1.0, abs(q)) for a, q in zip(at, Q[:, s],
                                                                       strict=True))
        duals = np.zeros(d.n_rows)
        duals[rows] = -rng.exponential(2.0, rows.size)  # <= rows: prices of the upper bounds
        const, coef = cuts(s, duals)
        for i, v in enumerate(plans):
            assert const + coef @ cuts.extend(v) <= Q[i, s] + 1e-6 * max(1.0, abs(Q[i, s]))


def test_no_pattern_cuts_where_they_cannot_serve(monkeypatch):
    """With production a first-stage quantity the machine and material rows hold first-stage
    columns only: nothing couples the recourse. Setups that are not binary, more linking
    columns than MAX_BITS, nothing dualised: the decomposition stays as it is."""
    *_rest, d, coupling = _setup(spec="poisson:2", options={"production_stage": "first"})
    assert coupling is None
    *_rest, d, coupling = _setup(spec="poisson:2")
    relaxed = dataclasses.replace(d, integer=np.zeros_like(d.integer))
    assert relaxed.with_patterns(coupling) is relaxed
    monkeypatch.setattr(patterns, "MAX_BITS", 3)
    assert d.with_patterns(coupling) is d
    monkeypatch.undo()
    assert d.with_patterns(np.zeros_like(coupling)) is d
    assert d.with_patterns(coupling) is not d


@pytest.mark.heavy
def test_lshaped_with_pattern_cuts_brackets_the_extensive_form():
    """furniture poisson:3 to 0.5 % (about 20 s): the phase-1 bound (Kelley's method on the
    pattern cuts) lies between the extensive form's optimum and its LP relaxation (HiGHS, the
    setups relaxed), the final bound and plan bracket the optimum, and the plan earns what
    the method reported (valued scenario by scenario with linprog)."""
    names, kwargs, compiled, d, _coupling = _setup(spec="poisson:3")
    exact = SolverOptions(backend="matrix", mip_rel_gap=1e-6)
    ef = matrix.solve_extensive_form(compiled, exact)
    relaxed = matrix.solve_extensive_form(_relaxed(compiled), exact)
    result = solve_lshaped(FAMILY.module, names, kwargs, LShapedOptions(rel_gap=5e-3),
                           compiled=compiled)
    tol = 1e-6 * abs(ef.objective)
    assert result.gap <= 5e-3
    relax = result.info["relaxation"]
    assert relax["stop_reason"] == "gap" and relax["value"] is None
    assert ef.objective - tol <= relax["bound"] <= relaxed.objective + tol
    # the pattern cuts' relaxation is the tighter: it closes 45 % of the LP's gap here
    assert relax["bound"] - ef.objective < 0.6 * (relaxed.objective - ef.objective)
    assert result.info["master_mip"]["family_cuts"] is True
    assert result.info["integer_first_stage"] == 36 and result.info["pattern_columns"] == 144
    assert result.objective <= ef.objective + tol <= result.bound + 2 * tol
    plan = result.plan.set_index(["variable", "product", "week"])["value"]
    x = np.array([plan[(v, *i)] for v, i in zip(compiled.columns.variables[:36],
                                                 compiled.columns.indices[:36], strict=True)])
    value = sum(compiled.probabilities[s] * (_recourse(compiled, s, x)
                                             + compiled.cost[s, :36] @ x) for s in range(3))
    assert compiled.sense * value == pytest.approx(result.objective, rel=1e-9)


def _relaxed(compiled: matrix.CompiledScenarios) -> matrix.CompiledScenarios:
    columns = dataclasses.replace(compiled.columns,
                                  integer=np.zeros_like(compiled.columns.integer))
    return dataclasses.replace(compiled, columns=columns)


@pytest.mark.parametrize("weight", [0.5, 1.0])
def test_pattern_cuts_under_a_risk_measure_bracket_the_extensive_form(weight):
    """Mean-CVaR (alpha 0.8) on the one-product instance with 20 Poisson scenarios: the
    pattern cuts, taken at every plan under a risk measure (the lazy path is for the
    expectation alone), and the tail cuts bracket the optimum of the risk model's extensive
    form (the wrapped module, HiGHS to 1e-6) within the gap target. The measure matters
    here: its optimum lies below the expectation's."""
    from stochplan.solve.ef import solve_ef
    from stochplan.solve.risk import RiskConfig, risk_module

    names, kwargs, _compiled, _d, coupling = _setup(TINY, spec="poisson:20")
    assert coupling is not None
    risk = RiskConfig("cvar", 0.8, weight)
    result = solve_lshaped(FAMILY.module, names, kwargs, LShapedOptions(rel_gap=1e-4),
                           risk=risk)
    ef = solve_ef(risk_module(FAMILY.module, risk), names, kwargs,
                  SolverOptions(mip_rel_gap=1e-6))
    assert result.info["master_mip"]["family_cuts"] and result.info["pattern_columns"] == 4
    assert result.gap <= 1e-4
    tol = 1e-6 * abs(ef.objective)
    low, high = sorted((result.objective, result.bound))
    assert low - tol <= ef.objective <= high + tol
    neutral = solve_ef(FAMILY.module, names, kwargs, SolverOptions(mip_rel_gap=1e-6))
    assert ef.objective < neutral.objective - 1.0


def test_a_pattern_without_recourse_is_infinite_and_the_other_copies_exact(monkeypatch):
    """Two blocks by hand. Block 1: y >= 1 and y >= 3 x with y <= 2, so its pattern x = 1
    has no recourse and the LP of every copy together is infeasible; block 2: z >= 2 - 2 x'.
    Each copy is then valued alone: block 1 costs 1 (y = 1) at x = 0 and +inf at x = 1;
    block 2 costs 2 at x' = 0 and 0 at x' = 1. A second scenario (y >= 0 and y >= 3 x - 2)
    has recourse at every pattern and takes the LP of all copies: 0 and 1 in block 1."""
    W = sp.csr_matrix(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    T = sp.csr_matrix(np.array([[0.0, 0.0], [-3.0, 0.0], [0.0, 2.0]]))
    blocks = [patterns._Block(np.array([0, 1]), np.array([0]), np.array([0]), W, T),
              patterns._Block(np.array([2]), np.array([1]), np.array([1]), W, T)]
    cost, y_lo, y_hi = np.ones(2), np.zeros(2), np.array([2.0, np.inf])
    lo = np.array([[1.0, 0.0, 2.0], [0.0, -2.0, 2.0]])
    hi = np.full(3, np.inf)
    rows_vary = np.array([True, True, False])
    copies = patterns._Copies(blocks, np.zeros(2, bool), np.zeros(2, bool), rows_vary)
    alone = []
    value_one = patterns._Block.value_one
    monkeypatch.setattr(patterns._Block, "value_one",
                        lambda block, k, *args: alone.append(k) or value_one(block, k, *args))
    reference = (cost, y_lo, y_hi, lo[1], hi)
    first = copies.values(0, cost, y_lo, y_hi, lo[0], hi, reference)
    assert first[0].tolist() == pytest.approx([1.0, np.inf])
    assert first[1].tolist() == pytest.approx([2.0, 0.0])
    assert alone == [0, 1, 0, 1]  # every copy of both blocks, one by one
    second = copies.values(1, cost, y_lo, y_hi, lo[1], hi, reference)
    assert second[0].tolist() == pytest.approx([0.0, 1.0])
    assert second[1].tolist() == pytest.approx([2.0, 0.0])
    assert len(alone) == 4  # the LP of all copies at once
