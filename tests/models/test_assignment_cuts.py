"""The assignment family's Lagrangian cuts of the offers (:mod:`stochplan.models.assignment.cuts`):
by hand on the two-order instance; against an independent solve of each day's reassignments
(written here from the instance's tables, not from the family's arrays) at random binary
plans, for the options that have them; and in the L-shaped method, against the extensive
form."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from stochplan.family import get_family
from stochplan.solve import matrix
from stochplan.solve.lshaped import Decomposition, LShapedOptions, solve_lshaped
from stochplan.solve.lshaped.recourse import _Recourse
from stochplan.solve.solvers import SolverOptions

FAMILY = get_family("assignment")

#: Options with cuts: defaults (relaxed reassignments), no capacity, the objective's parts.
WITH_CUTS = [
    {"recourse_integer": False},
    {"recourse_integer": False, "capacity": "none"},
    {"recourse_integer": False, "gap_weight": 0.3, "reassignment": "rate",
     "reassignment_cost": 40.0},
    {"gap_weight": 0.2, "sense": "min"},
]


def _compiled(instance, options, spec, seed):
    inst = FAMILY.resolve(str(instance), options)
    names = FAMILY.scenario_set(inst, spec, seed).names
    kwargs = FAMILY.creator_kwargs(inst, spec, seed)
    return inst, names, kwargs, matrix.compile_scenarios(FAMILY.module, names, kwargs)


def test_hand_instance_cuts_by_hand(hand):
    """Two orders ($100 and $200), producers 1 (gap 100) and 2 (gap 200), distances 3, 7 and
    6, 4. A day on which both producers would refuse both orders, at capacity prices u: an
    offer is worth its reassignment to the other producer, v - d - u_k v (if positive), and
    the cut's constant is -sum u_j C_j (costs: the negative profit)."""
    inst, _names, _kwargs, compiled = _compiled(hand, {"recourse_integer": False},
                                                f"file:{hand / 'outcomes.csv'}", None)
    cuts = compiled.cuts
    n1 = compiled.n_first
    willing = compiled.col_hi[:, n1:n1 + 4]  # a <= xi, per pair
    refuse_all = int(np.flatnonzero((willing == 0).all(axis=1))[0])
    cols = {idx: k for k, idx in enumerate(compiled.columns.indices[:compiled.n_first])}
    cap_rows = [k for k, f in enumerate(compiled.row_family) if f == "capacity"]
    duals = np.zeros(compiled.A.shape[0])
    const, coef = cuts(refuse_all, duals)
    assert const == 0.0
    want = {(1, 1): -(100 - 7), (1, 2): -(100 - 3), (2, 1): -(200 - 4), (2, 2): -(200 - 6)}
    for pair, value in want.items():
        assert coef[cols[pair]] == pytest.approx(value)
    duals[cap_rows[1]] = -0.5  # producer 2's capacity at $0.5 per $ of gap
    const, coef = cuts(refuse_all, duals)
    assert const == pytest.approx(-0.5 * 200)
    want = {(1, 1): -(100 - 7 - 50), (1, 2): -(100 - 3), (2, 1): -(200 - 4 - 100),
            (2, 2): -(200 - 6)}
    for pair, value in want.items():
        assert coef[cols[pair]] == pytest.approx(value)
    # a day on which every producer accepts: each offer ships, at its price
    accept_all = int(np.flatnonzero((willing == 1).all(axis=1))[0])
    const, coef = cuts(accept_all, duals)
    want = {(1, 1): -(100 - 3), (1, 2): -(100 - 7 - 50), (2, 1): -(200 - 6),
            (2, 2): -(200 - 4 - 100)}
    for pair, value in want.items():
        assert coef[cols[pair]] == pytest.approx(value)
    assert inst.pairs == ((1, 1), (1, 2), (2, 1), (2, 2))


def _day_cost(inst, xi, x_pairs):
    """The day's recourse cost at a binary plan (offers per pair, in the instance's pairs
    order), solved here from the tables: accepted offers ship; each rejected order goes to at
    most one other compatible producer (relaxed), within the capacities left. Minimisation
    form (the negative profit, the gap penalty's constant included)."""
    opts = inst.options
    pi, pj = (np.asarray(a) for a in inst.pair_positions)
    v = np.asarray(inst.value, float)
    m = v[pi] - inst.distance[pi, pj]
    q = np.ones(pi.size) if opts.reassignment == "certain" else inst.rates[pi, pj]
    w, c = opts.gap_weight, opts.reassignment_cost
    accepted = xi[pi, pj] * x_pairs
    profit = float((m + w * v[pi]) @ accepted) - w * float(np.sum(inst.gap))
    rejected = {int(pi[k]): int(pj[k]) for k in np.flatnonzero(x_pairs * (1 - xi[pi, pj]))}
    cols = [k for k in range(pi.size) if int(pi[k]) in rejected and int(pj[k]) != rejected[
        int(pi[k])]]
    if cols:
        cols_a = np.array(cols)
        orders = sorted(rejected)
        one = sp.csr_matrix((np.ones(len(cols)), ([orders.index(int(pi[k])) for k in cols],
                                                   range(len(cols)))), (len(orders), len(cols)))
        rows, rhs = [one], [np.ones(len(orders))]
        if opts.capacity == "gap":
            left = inst.gap - np.bincount(pj, weights=v[pi] * accepted,
                                          minlength=inst.n_producers)
            rows.append(sp.csr_matrix((v[pi[cols_a]], (pj[cols_a], range(len(cols)))),
                                      (inst.n_producers, len(cols))))
            rhs.append(left)
        gain = q[cols_a] * m[cols_a] - c + w * q[cols_a] * v[pi[cols_a]]
        res = linprog(-gain, A_ub=sp.vstack(rows), b_ub=np.concatenate(rhs), bounds=(0, 1),
                      method="highs")
        assert res.status == 0
        profit -= res.fun
    return -profit


def _random_plans(inst, n, rng):
    """Binary plans that offer each order at most once and fit the capacities."""
    pi, pj = (np.asarray(a) for a in inst.pair_positions)
    v = np.asarray(inst.value, float)
    plans = []
    for _ in range(n):
        x = np.zeros(pi.size)
        room = np.array(inst.gap, float) if inst.options.capacity == "gap" else np.full(
            inst.n_producers, np.inf)
        for o in rng.permutation(inst.n_orders):
            choices = [k for k in np.flatnonzero(pi == o) if v[o] <= room[pj[k]]]
            if choices and rng.random() < 0.85:
                k = rng.choice(choices)
                x[k] = 1.0
                room[pj[k]] -= v[o]
        plans.append(x)
    return plans


@pytest.mark.parametrize("options", WITH_CUTS, ids=lambda o: ",".join(
    f"{k}={v}" for k, v in o.items()))
def test_cuts_bound_every_binary_plan_and_are_tight_at_their_own(options):
    """Laser, 4 days, 6 random binary plans: each day's cut from the recourse LP's duals at
    one plan lies below the day's cost (solved independently) at every plan, and equals it at
    its own plan; so do cuts at arbitrary capacity prices."""
    inst, _names, _kwargs, compiled = _compiled("laser", options, "sample:4", 5)
    d = Decomposition.of(compiled)
    assert d.cuts is not None
    recourse = _Recourse(d)
    rng = np.random.default_rng(0)
    plans = _random_plans(inst, 6, rng)
    order = sorted(range(len(inst.pairs)), key=lambda k: inst.pairs[k])  # x columns' order
    xi = np.asarray(compiled.col_hi[:, compiled.n_first:compiled.n_first + len(inst.pairs)])
    cost = np.array([[_day_cost(inst, _acceptances(inst, xi[s]), x) for s in range(4)]
                     for x in plans])
    as_columns = [x[order] for x in plans]
    cap_rows = [k for k, f in enumerate(compiled.row_family) if f == "capacity"]
    for a, xa in enumerate(as_columns):
        for s in range(4):
            status, value, pi, _y = recourse.solve(s, d.T @ xa)
            assert status == "optimal" and value == pytest.approx(cost[a, s], abs=1e-6)
            at_own, _slope = d.family_cut(s, pi, xa)
            assert at_own == pytest.approx(cost[a, s], abs=1e-6)
            full = np.zeros(d.n_rows)
            full[d.rows] = pi
            prices = full.copy()
            prices[cap_rows] = -rng.random(len(cap_rows))
            for duals in (full, prices):
                const, coef = compiled.cuts(s, duals)
                for b, xb in enumerate(as_columns):
                    assert const + coef @ xb <= cost[b, s] + 1e-6


def _acceptances(inst, willing_pairs):
    """A day's (order, producer) acceptances from its per-pair column bounds a <= xi."""
    pi, pj = inst.pair_positions
    xi = np.zeros((inst.n_orders, inst.n_producers))
    xi[pi, pj] = willing_pairs
    return xi


@pytest.mark.parametrize("options", [{"integer": False}, {"capacity": "none", "gap_weight": 0.5}],
                         ids=["relaxed offers", "open gaps without capacity"])
def test_options_without_cuts(options):
    """Offers in [0, 1] (the cut holds at binary plans only) and open-gap columns that couple
    the orders without capacity rows: no cuts, the L-shaped method keeps its own."""
    _inst, _names, _kwargs, compiled = _compiled("laser", options, "sample:2", 0)
    assert compiled.cuts is None


def test_lshaped_with_the_cuts_brackets_the_extensive_form():
    """Laser, 12 days, reassignments relaxed: the L-shaped method takes the family's cuts
    (one phase-1 iteration, no mean-value block) and reaches 0.1 % of a bound that lies above
    the extensive form's optimum (HiGHS to 1e-6), with a plan below the EF's bound."""
    _inst, names, kwargs, compiled = _compiled("laser", {"recourse_integer": False},
                                               "sample:12", 4)
    ef = matrix.solve_extensive_form(compiled, SolverOptions(backend="matrix", mip_rel_gap=1e-6))
    result = solve_lshaped(FAMILY.module, names, kwargs, LShapedOptions(rel_gap=1e-3),
                           compiled=compiled)
    info = result.info
    assert info["master_mip"]["family_cuts"] and info["relaxation"]["iterations"] == 1
    assert info["relaxation"]["jensen_blocks"] == 0
    assert info["stop_reason"] == "gap" and result.gap <= 1e-3
    tol = 1e-6 * abs(ef.objective)
    assert result.objective <= ef.bound + tol and ef.objective <= result.bound + tol


def test_lshaped_with_the_cuts_under_cvar_brackets_the_extensive_form():
    """The same cuts bound each scenario's loss, so the CVaR cuts built from them hold too:
    laser, 6 days, reassignments relaxed, 0.5 E + 0.5 CVaR_80% of the loss. The L-shaped
    method (the family's cuts, its own CVaR model) and the Rockafellar-Uryasev extensive form
    (HiGHS to 1e-6) bracket each other, within the L-shaped gap target."""
    from stochplan.solve.ef import solve_ef
    from stochplan.solve.risk import RiskConfig, risk_module

    _inst, names, kwargs, _arrays = _compiled("laser", {"recourse_integer": False},
                                              "sample:6", 8)
    risk = RiskConfig("cvar", 0.8, 0.5)
    result = solve_lshaped(FAMILY.module, names, kwargs, LShapedOptions(rel_gap=1e-4),
                           risk=risk)
    ef = solve_ef(risk_module(FAMILY.module, risk), names, kwargs,
                  SolverOptions(mip_rel_gap=1e-6))
    assert result.info["master_mip"]["family_cuts"] and result.gap <= 1e-4
    tol = 1e-6 * abs(ef.objective)
    low, high = sorted((result.objective, result.bound))
    assert low - tol <= ef.objective <= high + tol
