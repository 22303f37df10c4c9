"""Blocks sharing one resource, decomposed by block (stochplan.solve.linked).

Each test block is a small LP in the minimisation form the method takes; the answer is
checked against the whole problem (every block and the shared row together) solved in the
test with scipy's ``linprog`` / ``milp``, and against values worked out by hand.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import scipy.optimize as so
import scipy.sparse as sp

from stochplan.errors import InfeasibleError
from stochplan.solve.linked import solve_linked
from stochplan.solve.solvers import SolverOptions

SOLVER = SolverOptions(name="appsi_highs")


@dataclass(frozen=True)
class Form:
    """Minimise cost.x s.t. row_lo <= A x <= row_hi, col_lo <= x <= col_hi."""

    A: sp.csc_matrix
    cost: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    row_lo: np.ndarray
    row_hi: np.ndarray
    integer: np.ndarray
    offset: float = 0.0


def newsvendor(price: float, unit_cost: float, demands: list[float], probs: list[float],
               need: float = 0.0, integer: bool = False) -> Form:
    """Columns: a (draw), x (production), then sales s_k per scenario.

    min unit_cost x - sum_k p_k price s_k;  x <= a (resource),  x >= need,  s_k <= x,
    s_k <= d_k.  With a fixed, v(a) = min over x in [need, a] of the expected cost.
    """
    k = len(demands)
    rows = [[-1.0, 1.0] + [0.0] * k]  # x - a <= 0
    lo, hi = [-np.inf], [0.0]
    for j in range(k):  # s_j - x <= 0
        r = [0.0, -1.0] + [0.0] * k
        r[2 + j] = 1.0
        rows.append(r)
        lo.append(-np.inf)
        hi.append(0.0)
    cost = np.array([0.0, unit_cost] + [-p * price for p in probs])
    col_lo = np.array([0.0, need] + [0.0] * k)
    col_hi = np.array([100.0, 100.0] + list(demands))
    integer = np.array([0, 1 if integer else 0] + [0] * k)
    return Form(sp.csc_matrix(np.array(rows)), cost, col_lo, col_hi, np.array(lo),
                np.array(hi), integer)


def whole(forms: list[Form], capacity: float) -> tuple[float, np.ndarray]:
    """The whole problem in one model: blocks side by side plus sum of draws <= capacity."""
    A = sp.block_diag([f.A for f in forms], format="csr")
    link = np.zeros(A.shape[1])
    offset = 0
    for f in forms:
        link[offset] = 1.0
        offset += len(f.cost)
    A = sp.vstack([A, sp.csr_matrix(link)])
    lo = np.concatenate([f.row_lo for f in forms] + [[-np.inf]])
    hi = np.concatenate([f.row_hi for f in forms] + [[capacity]])
    c = np.concatenate([f.cost for f in forms])
    res = so.milp(c, constraints=so.LinearConstraint(A, lo, hi),
                  bounds=so.Bounds(np.concatenate([f.col_lo for f in forms]),
                                   np.concatenate([f.col_hi for f in forms])),
                  integrality=np.concatenate([f.integer for f in forms]))
    assert res.status == 0
    return float(res.fun), res.x


def test_two_newsvendors_share_by_marginal_value() -> None:
    # block 0: price 10, cost 2, demand 0/10/20 equally likely; block 1: price 6, cost 2,
    # demand 5 or 15. Marginal expected profit of one more unit: block 0 10*P(D0 > x) - 2
    # = 6.67 below 10, 1.33 up to 20; block 1 6*P(D1 > x) - 2 = 4 below 5, 1 up to 15.
    # With 16 units: 10 to block 0 (6.67), 5 to block 1 (4), 1 more to block 0 (1.33).
    forms = [newsvendor(10, 2, [0, 10, 20], [1 / 3] * 3), newsvendor(6, 2, [5, 15], [0.5, 0.5])]
    sol = solve_linked(dict(enumerate(forms)), {0: 0, 1: 0}, ["b0", "b1"], 16.0, SOLVER)
    by_hand = -(10 * 20 / 3 - 2 * 10 + 5 * 4 + 1 * (10 / 3 - 2))
    assert sol.objective == pytest.approx(by_hand, abs=1e-7)
    assert sol.allocation == pytest.approx([11.0, 5.0], abs=1e-7)
    assert sol.objective == pytest.approx(whole(forms, 16.0)[0], abs=1e-7)
    assert sol.gap is not None and sol.gap <= 1e-6
    assert sol.status == "optimal"


def test_favourite_draws_that_fit_are_the_answer_at_once() -> None:
    forms = [newsvendor(10, 2, [0, 10, 20], [1 / 3] * 3), newsvendor(6, 2, [5, 15], [0.5, 0.5])]
    sol = solve_linked(dict(enumerate(forms)), {0: 0, 1: 0}, ["b0", "b1"], 100.0, SOLVER)
    assert sol.iterations == 0
    assert sol.objective == pytest.approx(whole(forms, 100.0)[0], abs=1e-7)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_random_blocks_equal_the_whole_problem(seed: int) -> None:
    rng = np.random.default_rng(seed)
    forms = []
    for _ in range(6):
        k = int(rng.integers(2, 6))
        probs = rng.dirichlet(np.ones(k))
        forms.append(newsvendor(float(rng.uniform(3, 12)), float(rng.uniform(1, 3)),
                                sorted(rng.uniform(0, 30, k).round(1)), list(probs),
                                need=round(float(rng.uniform(0, 3)), 1)))
    capacity = 40.0
    sol = solve_linked(dict(enumerate(forms)), dict.fromkeys(range(6), 0),
                       [f"b{i}" for i in range(6)], capacity, SOLVER)
    expected, x = whole(forms, capacity)
    assert sol.objective == pytest.approx(expected, rel=1e-6, abs=1e-6)
    assert sol.allocation.sum() <= capacity + 1e-7
    # each block's reported value is its expected cost at its allocation
    for i, f in enumerate(forms):
        col = sol.columns[i]
        assert float(f.cost @ col) == pytest.approx(sol.block_objectives[i], abs=1e-7)
        assert col[0] == pytest.approx(sol.allocation[i], abs=1e-9)


def test_integer_blocks_are_solved_at_the_relaxations_allocation() -> None:
    forms = [newsvendor(10, 2, [0, 10.5, 20], [1 / 3] * 3, integer=True),
             newsvendor(6, 2, [5.5, 15], [0.5, 0.5], integer=True)]
    capacity = 16.5
    sol = solve_linked(dict(enumerate(forms)), {0: 0, 1: 0}, ["b0", "b1"], capacity, SOLVER)
    relaxed = [Form(f.A, f.cost, f.col_lo, f.col_hi, f.row_lo, f.row_hi,
                    np.zeros_like(f.integer)) for f in forms]
    assert sol.bound == pytest.approx(whole(relaxed, capacity)[0], abs=1e-7)
    best = whole(forms, capacity)[0]
    assert sol.bound <= best + 1e-9 <= sol.objective + 2e-9  # a plan and a bound around it
    for i in range(2):
        assert sol.columns[i][1] == pytest.approx(round(sol.columns[i][1]), abs=1e-9)
        assert sol.columns[i][1] <= sol.allocation[i] + 1e-9


def test_blocks_needing_more_than_the_capacity_are_infeasible_and_named() -> None:
    forms = [newsvendor(10, 2, [10], [1.0], need=8), newsvendor(6, 2, [10], [1.0], need=5)]
    with pytest.raises(InfeasibleError, match=r"at least 13.*b0 8"):
        solve_linked(dict(enumerate(forms)), {0: 0, 1: 0}, ["b0", "b1"], 10.0, SOLVER)
