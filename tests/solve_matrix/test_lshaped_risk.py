"""The L-shaped method under the mean-CVaR objective (:mod:`stochplan.solve.lshaped`, "Risk-averse
objective").

Checked on the textbook farmer against a Rockafellar-Uryasev extensive form written here with
scipy's ``linprog`` (independent of the package) and against the EF of the wrapped module
(:func:`stochplan.solve.risk.risk_module`), for minimisation and maximisation; with an
integer first stage (the MIP master) against enumeration, also with first-stage costs that
differ between scenarios; on the electronics instance against the wrapped EF and a
re-evaluation of the plan; and for the same result serially and on 2 and 3 MPI ranks.

The textbook farmer has random yields multiplying the acreage (random technology), which the
matrix backend refuses; :data:`FARMER` below is the same problem with each crop's trades
counted in acres of harvest (tons / yield), so its constraint matrix is fixed and only costs,
right-hand sides and bounds vary. Its plans are the textbook farmer's plans.
"""

from __future__ import annotations

import itertools
import json
import os
import subprocess
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pyomo.environ as pyo
import pytest
import scipy.sparse as sp
from scipy.optimize import linprog

from stochplan._mpisppy import attach_root
from stochplan.errors import InputError
from stochplan.family import get_family
from stochplan.metrics.stats import risk_value
from stochplan.models import farmer
from stochplan.solve import matrix
from stochplan.solve.ef import solve_ef
from stochplan.solve.evaluate import evaluate_plan
from stochplan.solve.lshaped import LShapedOptions, solve_lshaped, tail_weights
from stochplan.solve.risk import RiskConfig, risk_info, risk_module

MPIEXEC = Path(sys.executable).parent / "mpiexec"
pytestmark = pytest.mark.solve

ALPHA = 0.9
NAMES = farmer.scenario_names_creator(3)
TIGHT = LShapedOptions(rel_gap=1e-8)
#: The wrapped EF's optima (costs, minimised) at alpha = 0.9 by CVaR weight lambda: with three
#: equally likely scenarios the 10 % tail is the worst scenario, so lambda = 1 is the min-max.
EXPECTED = {0.0: -108_390.0, 0.5: -81_950.0, 1.0: -59_950.0}


# ----------------------------------------------------------------------------------------------
# The farmer with fixed recourse, and an independent RU extensive form


def _farmer_fixed(scenario_name: str, sense: str = "min") -> pyo.ConcreteModel:
    """The textbook farmer with trades in acres of harvest: ``b[c] = y[c] / yield_c`` bought,
    ``s[c] = w[c] / yield_c`` sold, ``fav``/``exc`` beets sold in acres. Feed rows read
    ``x[c] + b[c] - s[c] >= requirement_c / yield_c``, beets ``fav + exc <= x[beets]`` with
    ``fav <= 6000 / yield_beets``; prices per acre are prices per ton times the yield."""
    factor = farmer.SCENARIO_FACTORS[int(scenario_name.removeprefix("scen"))]
    yields = {c: factor * farmer.MEAN_YIELD[c] for c in farmer.CROPS}
    bought = tuple(farmer.PURCHASE_PRICE)
    beets = "SUGAR_BEETS"
    m = pyo.ConcreteModel(name=scenario_name)
    m.x = pyo.Var(farmer.CROPS, bounds=(0.0, farmer.TOTAL_ACREAGE))
    m.b = pyo.Var(bought, domain=pyo.NonNegativeReals)
    m.s = pyo.Var(bought, domain=pyo.NonNegativeReals)
    m.fav = pyo.Var(bounds=(0.0, farmer.BEETS_QUOTA / yields[beets]))
    m.exc = pyo.Var(domain=pyo.NonNegativeReals)
    m.acreage = pyo.Constraint(expr=sum(m.x[c] for c in farmer.CROPS) <= farmer.TOTAL_ACREAGE)
    m.feed = pyo.Constraint(bought, rule=lambda m, c: m.x[c] + m.b[c] - m.s[c]
                            >= farmer.REQUIREMENT[c] / yields[c])
    m.beets = pyo.Constraint(expr=m.fav + m.exc <= m.x[beets])
    first = sum(farmer.PLANTING_COST[c] * m.x[c] for c in farmer.CROPS)
    second = (sum(yields[c] * (farmer.PURCHASE_PRICE[c] * m.b[c]
                               - farmer.SELLING_PRICE[c] * m.s[c]) for c in bought)
              - yields[beets] * (farmer.BEETS_PRICE * m.fav + farmer.BEETS_EXCESS_PRICE * m.exc))
    sign = 1.0 if sense == "min" else -1.0
    m.objective = pyo.Objective(expr=sign * (first + second),
                                sense=pyo.minimize if sense == "min" else pyo.maximize)
    return attach_root(m, sign * first, [m.x], 1.0 / 3.0)


FARMER = types.ModuleType("farmer_fixed_recourse")
FARMER.scenario_creator = _farmer_fixed  # type: ignore[attr-defined]
FARMER.scenario_names_creator = farmer.scenario_names_creator  # type: ignore[attr-defined]
FARMER.INDEX_NAMES = farmer.INDEX_NAMES  # type: ignore[attr-defined]
TOY = types.ModuleType("toy")


def _ru_extensive_form(alpha: float, weight: float) -> tuple[float, np.ndarray]:
    """(optimal cost, acres by crop) of ``(1 - weight) E[L] + weight CVaR_alpha(L)`` for the
    textbook farmer, from its docstring: columns x (wheat, corn, beets), per scenario (y_w,
    y_c, w_w, w_c, w_fav, w_exc), then eta and the excesses u_s >= L_s - eta."""
    planting = np.array([150.0, 230.0, 260.0])
    trade = np.array([238.0, 210.0, -170.0, -150.0, -36.0, -10.0])
    S, p = 3, np.full(3, 1.0 / 3.0)
    n = 3 + 6 * S + 1 + S
    eta, u = 3 + 6 * S, 3 + 6 * S + 1 + np.arange(S)
    cost = np.zeros(n)
    cost[:3] = (1.0 - weight) * planting  # the CVaR part's c'x is in the excesses
    A, b = [], []

    def row(entries: dict[int, float], rhs: float) -> None:  # sum entries <= rhs
        r = np.zeros(n)
        for j, v in entries.items():
            r[j] += v
        A.append(r)
        b.append(rhs)

    row({0: 1.0, 1: 1.0, 2: 1.0}, 500.0)
    for s, factor in enumerate((0.8, 1.0, 1.2)):
        y = 3 + 6 * s + np.arange(6)
        yw, yc, yb = 2.5 * factor, 3.0 * factor, 20.0 * factor
        cost[y] += (1.0 - weight) * p[s] * trade
        row({0: -yw, y[0]: -1.0, y[2]: 1.0}, -200.0)  # wheat fed
        row({1: -yc, y[1]: -1.0, y[3]: 1.0}, -240.0)  # corn fed
        row({y[4]: 1.0, y[5]: 1.0, 2: -yb}, 0.0)  # beets sold <= harvest
        # u_s >= c'x + q'y_s - eta
        row({**{j: planting[j] for j in range(3)}, **{int(y[k]): trade[k] for k in range(6)},
             eta: -1.0, int(u[s]): -1.0}, 0.0)
    cost[eta] += weight
    cost[u] += weight * p / (1.0 - alpha)
    bounds = [(0.0, None)] * n
    for s in range(S):
        bounds[3 + 6 * s + 4] = (0.0, 6000.0)
    bounds[eta] = (None, None)
    out = linprog(cost, A_ub=np.array(A), b_ub=np.array(b), bounds=bounds, method="highs")
    assert out.status == 0, out.message
    return float(out.fun), out.x[:3]


def _acres(result: Any) -> np.ndarray:
    """A plan's acres in the order wheat, corn, beets."""
    return result.plan.set_index("crop")["value"].reindex(list(farmer.CROPS)).to_numpy(float)


# ----------------------------------------------------------------------------------------------
# Unit: the tail weights


def test_tail_weights_give_cvar():
    """The weights' sum is 1, they lie in [0, p / (1 - alpha)], ``w'loss`` is CVaR as
    :func:`stochplan.metrics.stats.risk_value` computes it (an atom split at the value at risk,
    uneven probabilities), and equal losses are taken in scenario order."""
    loss = np.array([4.0, 10.0, -2.0, 7.0, 7.0])
    p = np.array([0.1, 0.05, 0.4, 0.25, 0.2])
    for alpha in (0.5, 0.8, 0.9, 0.97):
        w = tail_weights(loss, p, alpha)
        assert w.sum() == pytest.approx(1.0, abs=1e-12)
        assert np.all(w >= 0) and np.all(w <= p / (1 - alpha) + 1e-12)
        assert w @ loss == pytest.approx(risk_value(loss, p, alpha, 1.0).cvar, rel=1e-12)
    # alpha = 0.8: the tail 0.2 is 10 (0.05), then 0.15 of the 7s, the first of them in order
    assert tail_weights(loss, p, 0.8) == pytest.approx([0, 0.25, 0, 0.75, 0], abs=1e-12)


# ----------------------------------------------------------------------------------------------
# The farmer


def test_textbook_farmer_is_refused_and_the_fixed_recourse_one_is_the_same_problem():
    """The textbook module has random technology (refused); :data:`FARMER` has the textbook
    recourse problem (RP -108,390 at wheat 170, corn 80, beets 250)."""
    with pytest.raises(InputError, match="fixed recourse"):
        solve_lshaped(farmer, NAMES, {}, risk=RiskConfig("cvar", ALPHA, 0.5))
    result = solve_lshaped(FARMER, NAMES, {}, TIGHT)
    assert result.objective == pytest.approx(-108_390.0, rel=1e-8)
    assert _acres(result) == pytest.approx([170.0, 80.0, 250.0], abs=1e-3)
    assert "risk" not in result.info


@pytest.mark.parametrize("weight", sorted(EXPECTED))
def test_farmer_matches_independent_ru_extensive_form(weight):
    """The L-shaped objective is the optimum of the RU extensive form written here (and of the
    wrapped module's EF): -108,390 at lambda = 0, -81,950 at 0.5, -59,950 at 1; the bound is
    below it within the gap; the plan, evaluated on the textbook module, has that measure."""
    risk = RiskConfig("cvar", ALPHA, weight)
    value, _acres_lp = _ru_extensive_form(ALPHA, weight)
    assert value == pytest.approx(EXPECTED[weight], rel=1e-9)
    wrapped = solve_ef(risk_module(farmer, risk), NAMES, {})
    assert wrapped.objective == pytest.approx(EXPECTED[weight], rel=1e-9)

    result = solve_lshaped(FARMER, NAMES, {}, TIGHT, risk=risk)
    assert result.optimal and result.gap <= 1e-8
    assert result.objective == pytest.approx(EXPECTED[weight], rel=1e-8)
    assert result.bound <= result.objective + 1e-9 * abs(result.objective)
    assert len(result.plan) == 3  # the family's own columns, no value at risk

    solves = evaluate_plan(farmer, result.plan, NAMES, {})
    measured = risk_value(solves.objective, solves.probabilities, ALPHA, weight, "min")
    assert measured.objective == pytest.approx(result.objective, rel=1e-9)
    if weight > 0:
        info = risk_info(result)
        assert info is not None and (info.alpha, info.weight) == (ALPHA, weight)
        assert info.objective == pytest.approx(result.objective, rel=1e-12)
        assert info.cvar == pytest.approx(measured.cvar, rel=1e-9)
        assert result.info["risk"]["measure"] == "cvar"
    else:  # weight 0 is the expectation: today's method, untouched
        assert "risk" not in result.info


def test_farmer_risk_plans():
    """More CVaR weight buys a safer plan: lambda = 1 is the min-max plan (the 10 % tail of
    three equal scenarios is the worst one), wheat 100, corn 25, beets 375 (the plan of the
    LP above), and its worst-case cost is -59,950 where the risk-neutral plan's is -48,820."""
    result = solve_lshaped(FARMER, NAMES, {}, TIGHT, risk=RiskConfig("cvar", ALPHA, 1.0))
    _value, acres = _ru_extensive_form(ALPHA, 1.0)
    worst = evaluate_plan(farmer, result.plan, NAMES, {}).objective.max()
    assert worst == pytest.approx(-59_950.0, rel=1e-8)
    assert _acres(result) == pytest.approx(acres, abs=1e-3)
    neutral = solve_lshaped(FARMER, NAMES, {}, TIGHT)
    # (its acres are within 1e-3 of 170/80/250, which moves the worst case by cents)
    assert evaluate_plan(farmer, neutral.plan, NAMES, {}).objective.max() == pytest.approx(
        -48_820.0, abs=0.1)


@pytest.mark.parametrize("weight", [0.5, 1.0])
def test_maximising_farmer_reports_the_negated_measure(weight):
    """``sense="max"``: the objective is (1 - lambda) E[profit] - lambda CVaR(-profit), the
    negated cost figures (81,950 and 59,950), the bound above it; the same plan."""
    risk = RiskConfig("cvar", ALPHA, weight)
    result = solve_lshaped(FARMER, NAMES, {"sense": "max"}, TIGHT, risk=risk)
    assert result.objective == pytest.approx(-EXPECTED[weight], rel=1e-8)
    assert result.objective - 1e-9 * abs(result.objective) <= result.bound
    wrapped = solve_ef(risk_module(farmer, risk), NAMES, {"sense": "max"})
    assert wrapped.objective == pytest.approx(result.objective, rel=1e-8)
    info = risk_info(result)
    assert info is not None and info.sense == "max"
    assert info.objective == pytest.approx(result.objective, rel=1e-12)
    minimised = solve_lshaped(FARMER, NAMES, {}, TIGHT, risk=risk)
    assert _acres(result) == pytest.approx(_acres(minimised), abs=1e-3)


# ----------------------------------------------------------------------------------------------
# Integer first stage: two facilities, compiled by hand
#
#   min  f_A yA + f_B yB + rho[ c_A xA + c_B xB + c_out u ]
#   xA <= cap_A yA,  xB <= cap_B yB,  xA + xB + u >= d_s,  x, u >= 0,  yA, yB in {0, 1}

FIXED = np.array([6.0, 1.0])  # f_A, f_B
CAPACITY = np.array([20.0, 6.0])
UNIT = np.array([1.0, 1.0, 4.0])  # c_A, c_B, c_out
DEMAND = np.array([4.0, 12.0])
PROB = np.array([0.8, 0.2])


def _facilities(sense: int = 1, fixed: np.ndarray | None = None) -> matrix.CompiledScenarios:
    """Columns yA, yB | xA, xB, u; rows: the two links (<= 0) and demand (>= d_s); ``fixed``
    (S x 2) gives each scenario its own setup costs."""
    S = DEMAND.size
    fixed = np.tile(FIXED, (S, 1)) if fixed is None else fixed
    A = sp.csr_matrix(np.array([[-CAPACITY[0], 0.0, 1.0, 0.0, 0.0],
                                [0.0, -CAPACITY[1], 0.0, 1.0, 0.0],
                                [0.0, 0.0, 1.0, 1.0, 1.0]]))
    columns = matrix.Columns(
        variables=("y", "y", "x", "x", "u"), indices=(("A",), ("B",), ("A",), ("B",), ("-",)),
        n_first=2, integer=np.array([True, True, False, False, False]))
    return matrix.CompiledScenarios(
        names=tuple(f"d{d:g}" for d in DEMAND), probabilities=PROB, A=A,
        row_sense=np.array([1, 1, -1], np.int8), row_family=("link", "link", "demand"),
        rhs=np.column_stack([np.zeros(S), np.zeros(S), DEMAND]), col_lo=np.zeros((S, 5)),
        col_hi=np.tile([1.0, 1.0, np.inf, np.inf, np.inf], (S, 1)),
        cost=np.hstack([fixed, np.tile(UNIT, (S, 1))]), offset=np.zeros(S),
        columns=columns, sense=sense, method="each")


def _enumerated(weight: float, fixed: np.ndarray | None = None) -> dict[tuple[int, ...], float]:
    """rho of every setup plan; each scenario's recourse by hand (cheapest open facility
    first, then buy outside)."""
    fixed = np.tile(FIXED, (DEMAND.size, 1)) if fixed is None else fixed
    def recourse(y: tuple[int, ...], d: float) -> float:
        left, cost = d, 0.0
        for j in np.argsort(UNIT[:2], kind="stable"):
            take = min(left, CAPACITY[j] * y[j])
            cost, left = cost + UNIT[j] * take, left - take
        return cost + UNIT[2] * left

    return {y: risk_value(np.array([fixed[s] @ y + recourse(y, d) for s, d in enumerate(DEMAND)]),
                          PROB, ALPHA, weight).objective
            for y in itertools.product((0, 1), repeat=2)}


@pytest.mark.parametrize("weight, plan, value", [
    (0.0, (0, 1), 10.2), (0.5, (1, 0), 14.8), (1.0, (1, 0), 18.0)])
def test_integer_first_stage_by_enumeration(weight, plan, value):
    """Risk-neutral, the small facility B is best (10.2); CVaR 90 % of the cost (the 20 %
    high-demand scenario) makes the big facility A best: 0.5 E + 0.5 CVaR = 14.8, CVaR alone
    18. The MIP master (with its Jensen block and ``theta_R >= sum theta_c``) finds them, for
    minimisation and, negated, for maximisation."""
    plans = _enumerated(weight)
    assert min(plans, key=plans.__getitem__) == plan
    assert plans[plan] == pytest.approx(value, abs=1e-12)
    risk = RiskConfig("cvar", ALPHA, weight)
    for sense in (1, -1):
        result = solve_lshaped(TOY, _facilities().names, compiled=_facilities(sense),
                               options=LShapedOptions(rel_gap=1e-6), risk=risk)
        assert result.optimal
        assert result.objective == pytest.approx(sense * value, abs=1e-9)
        assert sense * result.bound <= sense * result.objective + 1e-9
        assert tuple(result.plan["value"]) == plan
        assert ("risk" in result.info) == (weight > 0)


@pytest.mark.parametrize("weight, value", [(0.0, 10.2), (0.5, 17.6), (1.0, 24.0)])
def test_first_stage_costs_that_differ_between_scenarios(weight, value):
    """Setting up A costs 4 when demand is low and 12 when it is high: the expectation sees
    only the mean 5.6, but CVaR sees the 12 in its tail (A alone: 17.6 at lambda = 0.5, 24 at
    1, where the mean cost would give 14.4 and 17.6)."""
    fixed = np.array([[4.0, 1.0], [12.0, 1.0]])
    plans = _enumerated(weight, fixed)
    best = min(plans, key=plans.__getitem__)
    assert plans[best] == pytest.approx(value, abs=1e-12)
    result = solve_lshaped(TOY, _facilities().names, compiled=_facilities(fixed=fixed),
                           options=LShapedOptions(rel_gap=1e-6),
                           risk=RiskConfig("cvar", ALPHA, weight))
    assert result.objective == pytest.approx(value, abs=1e-9)
    assert tuple(result.plan["value"]) == best


# ----------------------------------------------------------------------------------------------
# A larger continuous instance


def _electronics(spec: str = "poisson:30", seed: int = 0):
    family = get_family("aggregate")
    inst = family.resolve("electronics", {"integer": False})
    return family.module, family.scenario_set(inst, spec, seed).names, \
        family.creator_kwargs(inst, spec, seed)


@pytest.mark.parametrize("weight", [0.5, 1.0])
def test_electronics_matches_the_wrapped_extensive_form(weight):
    """Electronics, continuous, 30 Poisson scenarios: the wrapped EF's optimum lies between
    the L-shaped bound and objective, which are within the gap target (1e-4); the plan's
    measure re-computed from :func:`evaluate_plan` is the reported objective."""
    module, names, kwargs = _electronics()
    risk = RiskConfig("cvar", ALPHA, weight)
    result = solve_lshaped(module, names, kwargs, risk=risk)
    ef = solve_ef(risk_module(module, risk), names, kwargs)
    tol = 1e-9 * abs(ef.objective)
    assert result.optimal and result.gap <= 1e-4
    assert result.bound - tol <= ef.objective <= result.objective + tol
    assert (result.objective - ef.objective) / abs(ef.objective) <= 1e-4
    solves = evaluate_plan(module, result.plan, names, kwargs, keep_recourse=True)
    measured = risk_value(solves.objective, solves.probabilities, ALPHA, weight, "min")
    assert measured.objective == pytest.approx(result.objective, rel=1e-9)
    info = risk_info(result)
    assert info is not None
    for field in ("expected", "value_at_risk", "cvar", "objective"):
        assert getattr(info, field) == pytest.approx(getattr(measured, field), rel=1e-9)
    # the recourse table: each scenario's recourse at the plan, in the family's columns
    assert len(result.recourse) == len(solves.recourse)
    assert list(result.recourse.columns) == list(solves.recourse.columns)
    history = np.array(result.info["history"])  # best objective falls, bound rises
    best, bound = history[np.isfinite(history[:, 3]), 3], history[np.isfinite(history[:, 2]), 2]
    assert np.all(np.diff(best) <= 0) and np.all(np.diff(bound) >= 0)
    assert np.all(history[:, 2] <= history[:, 3])


# ----------------------------------------------------------------------------------------------
# Under mpiexec

_SCRIPT = """
import json, sys
from mpi4py import MPI
from stochplan.family import get_family
from stochplan.solve.lshaped import solve_lshaped
from stochplan.solve.risk import RiskConfig

family = get_family("aggregate")
inst = family.resolve("electronics", {"integer": False})
names = family.scenario_set(inst, "poisson:20", 7).names
kwargs = family.creator_kwargs(inst, "poisson:20", 7)
result = solve_lshaped(family.module, names, kwargs, comm=MPI.COMM_WORLD,
                       risk=RiskConfig("cvar", 0.9, 0.5))
if result is not None:
    print(json.dumps({"objective": result.objective, "bound": result.bound,
                      "iterations": result.info["iterations"], "ranks": result.info["ranks"],
                      "plan": result.plan["value"].to_numpy().tobytes().hex()}))
"""


@pytest.mark.mpi
def test_same_risk_result_serially_and_on_2_and_3_ranks(tmp_path):
    """The CVaR cut is built on rank 0 from every scenario's value in scenario order, so two
    and three ranks give bit for bit the serial objective, bound, iterations and plan."""
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec beside {sys.executable}")
    module, names, kwargs = _electronics("poisson:20", seed=7)
    serial = solve_lshaped(module, names, kwargs, risk=RiskConfig("cvar", 0.9, 0.5))
    script = tmp_path / "run.py"
    script.write_text(_SCRIPT)
    for ranks in (2, 3):
        run = subprocess.run([str(MPIEXEC), "-n", str(ranks), sys.executable, str(script)],
                             capture_output=True, text=True, timeout=300, cwd=tmp_path,
                             env={**os.environ, "PYTHONUNBUFFERED": "1"})
        assert run.returncode == 0, run.stderr[-3000:]
        lines = [line for line in run.stdout.splitlines() if line.strip()]
        assert len(lines) == 1, run.stdout  # rank 0 alone answers
        out = json.loads(lines[0])
        assert out["ranks"] == ranks
        assert out["objective"] == serial.objective and out["bound"] == serial.bound
        assert out["iterations"] == serial.info["iterations"]
        assert out["plan"] == serial.plan["value"].to_numpy().tobytes().hex()


# ----------------------------------------------------------------------------------------------
# The tail scenarios' own cuts


@pytest.mark.parametrize("weight", [0.5, 1.0])
def test_tail_cuts_keep_the_optimum_and_save_iterations(weight, monkeypatch):
    """Electronics, 30 Poisson scenarios, alpha 0.9: with the tail scenarios' own cuts (the
    Rockafellar-Uryasev model of the CVaR column) and with the aggregated CVaR cut alone, both
    bracket the wrapped EF's optimum within the gap target; the tail cuts need fewer
    iterations. Every master bound on the way is at most the EF's optimum (the cuts are
    valid)."""
    from stochplan.solve.lshaped import tuning

    module, names, kwargs = _electronics()
    risk = RiskConfig("cvar", ALPHA, weight)
    ef = solve_ef(risk_module(module, risk), names, kwargs)
    tol = 1e-9 * abs(ef.objective)
    runs = {}
    for tail in (True, False):
        monkeypatch.setattr(tuning, "TAIL_CUTS", tail)
        result = solve_lshaped(module, names, kwargs, risk=risk)
        assert result.optimal and result.gap <= 1e-4
        assert result.bound - tol <= ef.objective <= result.objective + tol
        history = np.array(result.info["history"])
        assert np.all(history[np.isfinite(history[:, 2]), 2] <= ef.objective + tol)
        runs[tail] = result
    assert runs[True].info["iterations"] < runs[False].info["iterations"]
