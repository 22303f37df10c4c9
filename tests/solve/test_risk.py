"""The mean-CVaR objective (``stochplan.solve.risk``): hand-checked measures, the farmer
problem against an independent Rockafellar-Uryasev extensive form, and the frontier's
invariants on random instances."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyomo.environ as pyo
import pytest
from scipy.optimize import linprog

from stochplan._mpisppy import attach_root
from stochplan.errors import InputError
from stochplan.metrics.stats import cvar, risk_value, value_at_risk
from stochplan.models import farmer
from stochplan.solve.ef import solve_ef
from stochplan.solve.evaluate import evaluate_plan
from stochplan.solve.risk import RiskConfig, risk_module, risk_result

# ----------------------------------------------------------------------------------------------
# The measure on plain numbers


def test_var_and_cvar_by_hand():
    """Costs 1, 2, 3, 4, 10 equally likely: the worst 20 % is the 10 alone (VaR 10, CVaR 10);
    the worst 40 % is 4 and 10 (CVaR 7; VaR 3, as P(X <= 3) = 0.6). Two atoms 0 and 10 at
    1/2 each, alpha 0.4: VaR 0, CVaR = E[X] / 0.6 = 8.333..."""
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    assert cvar(x, 0.8) == pytest.approx(10.0)
    assert cvar(x, 0.6) == pytest.approx(7.0)
    assert value_at_risk(x, 0.6) == 3.0  # P(X <= 3) = 0.6
    assert value_at_risk(np.array([0.0, 10.0]), 0.4) == 0.0
    assert cvar(np.array([0.0, 10.0]), 0.4) == pytest.approx(10 * 0.5 / 0.6)


def test_risk_value_mixes_mean_and_cvar_and_mirrors_for_profits():
    """rho = (1 - lambda) E + lambda CVaR; for profits the loss is minus the profit and the
    objective is (1 - lambda) E[profit] - lambda CVaR(loss). Weights are probabilities."""
    x = np.array([1.0, 2.0, 3.0, 4.0, 10.0])
    r = risk_value(x, None, 0.6, 0.25, "min")
    assert (r.expected, r.value_at_risk, r.cvar) == (pytest.approx(4.0), 3.0, pytest.approx(7.0))
    assert r.objective == pytest.approx(0.75 * 4 + 0.25 * 7)
    m = risk_value(-x, None, 0.6, 0.25, "max")
    assert m.expected == pytest.approx(-4.0) and m.cvar == pytest.approx(7.0)
    assert m.objective == pytest.approx(-(0.75 * 4 + 0.25 * 7))
    # probability 0.7 on cost 0, 0.3 on cost 10: CVaR 80 % = 10, CVaR 50 % = (0.3 * 10) / 0.5
    p = np.array([0.7, 0.3])
    assert risk_value(np.array([0.0, 10.0]), p, 0.8, 1.0).objective == pytest.approx(10.0)
    assert risk_value(np.array([0.0, 10.0]), p, 0.5, 1.0).objective == pytest.approx(6.0)
    assert math.isinf(risk_value(np.array([1.0, math.inf]), None, 0.5, 0.5).objective)


@pytest.mark.parametrize("values, problem", [
    ({"alpha": 1.0}, "(0, 1)"), ({"alpha": 0.0}, "(0, 1)"), ({"weight": -0.1}, "[0, 1]"),
    ({"weight": 1.5}, "[0, 1]"), ({"measure": "var"}, "expected one of"),
    ({"alpha": "high"}, "must be a number"),
])
def test_risk_config_refuses_values_outside_their_range(values, problem):
    with pytest.raises(InputError, match=re.escape(problem)):
        RiskConfig(**{"measure": "cvar", **values})


def test_the_measure_is_neutral_at_weight_zero_and_the_module_untouched():
    assert not RiskConfig("cvar", 0.9, 0.0).active and not RiskConfig().active
    assert risk_module(farmer, RiskConfig("cvar", 0.9, 0.0)) is farmer
    assert RiskConfig("cvar", 0.9, 0.5).label() == "0.5 E + 0.5 CVaR 90%"


# ----------------------------------------------------------------------------------------------
# The farmer problem against an independent extensive form


def _farmer_ru(alpha: float, lam: float, sense: str = "min") -> tuple[float, np.ndarray]:
    """The Rockafellar-Uryasev extensive form of the farmer problem, written here from the
    textbook data (Birge and Louveaux, ch. 1) and solved with scipy: returns the objective
    and the acres (wheat, corn, beets)."""
    factors, p = (0.8, 1.0, 1.2), 1.0 / 3.0
    # columns: x_w x_c x_b | per scenario y_w y_c w_w w_c w_fav w_exc u | eta
    n = 3 + 3 * 7 + 1
    eta = n - 1
    loss_first = np.zeros(n)
    loss_first[:3] = (150.0, 230.0, 260.0)
    c = (1 - lam) * loss_first + np.zeros(n)
    c[eta] = lam
    a_ub, b_ub = [], []
    row = np.zeros(n)
    row[:3] = 1.0
    a_ub.append(row), b_ub.append(500.0)
    for s, f in enumerate(factors):
        k = 3 + 7 * s
        loss = loss_first.copy()
        loss[k:k + 6] = (238.0, 210.0, -170.0, -150.0, -36.0, -10.0)
        c[k:k + 6] += p * (1 - lam) * loss[k:k + 6]
        c[k + 6] = p * lam / (1 - alpha)
        for crop, need, j in ((0, 200.0, 0), (1, 240.0, 1)):  # yield x + bought - sold >= need
            row = np.zeros(n)
            row[crop] = -f * (2.5, 3.0)[crop]
            row[k + j], row[k + 2 + j] = -1.0, 1.0
            a_ub.append(row), b_ub.append(-need)
        row = np.zeros(n)  # beets sold <= beets grown
        row[2], row[k + 4], row[k + 5] = -20.0 * f, 1.0, 1.0
        a_ub.append(row), b_ub.append(0.0)
        row = loss.copy()  # u_s >= loss_s - eta
        row[k + 6], row[eta] = -1.0, -1.0
        a_ub.append(row), b_ub.append(0.0)
    bounds = [(0, None)] * n
    for s in range(3):
        bounds[3 + 7 * s + 4] = (0, 6000.0)
    bounds[eta] = (None, None)
    out = linprog(c, A_ub=np.array(a_ub), b_ub=b_ub, bounds=bounds, method="highs")
    assert out.status == 0
    sign = 1.0 if sense == "min" else -1.0
    return sign * out.fun, out.x[:3]


@pytest.mark.solve
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
@pytest.mark.parametrize("sense", ["min", "max"])
def test_farmer_under_cvar_equals_an_independent_extensive_form(lam, sense):
    """alpha = 0.9: stochplan's extensive form of the wrapped module gives the objective and
    the plan of the hand-written one (to 1e-6; acres 170/80/250, 100/100/300 and 100/25/375
    for lambda 0, 0.5, 1); lambda = 0 is the textbook RP, -108,390 (108,390 as a profit)."""
    names = farmer.scenario_names_creator(3)
    kwargs = {"sense": sense}
    risk = RiskConfig("cvar", 0.9, lam)
    solved = solve_ef(risk_module(farmer, risk), names, kwargs)
    result = risk_result(solved, farmer, names, kwargs, risk)
    want, acres = _farmer_ru(0.9, lam, sense)
    assert result.objective == pytest.approx(want, abs=1e-6)
    if lam == 0.0:
        assert result.objective == pytest.approx(-108_390.0 if sense == "min" else 108_390.0)
    plan = result.plan.set_index("crop")["value"].reindex(farmer.CROPS).to_numpy(float)
    assert plan == pytest.approx(acres, abs=1e-6)  # wheat, corn, beets
    # the plan's measure, evaluated scenario by scenario, is the optimum (plans may tie)
    values = evaluate_plan(farmer, result.plan, names, kwargs).objective
    assert risk_value(values, None, 0.9, lam, sense).objective == pytest.approx(want, abs=1e-6)
    # and the independent plan is no better under stochplan's measure
    theirs = result.plan.copy()
    theirs["value"] = [dict(zip(farmer.CROPS, acres))[c] for c in theirs["crop"]]
    values = evaluate_plan(farmer, theirs, names, kwargs).objective
    assert risk_value(values, None, 0.9, lam, sense).objective == pytest.approx(want, abs=1e-6)
    assert plan.sum() <= 500 + 1e-9
    info = result.info["risk"]
    assert info["cvar"] >= info["value_at_risk"] - 1e-9


@pytest.mark.solve
def test_farmer_risk_neutral_and_cvar_plans_differ_as_published_direction():
    """More weight on CVaR buys a better worst case with a worse mean: at lambda = 1 the worst
    scenario's loss is lower and the expected loss higher than at lambda = 0."""
    names = farmer.scenario_names_creator(3)
    out = {}
    for lam in (0.0, 1.0):
        risk = RiskConfig("cvar", 0.9, lam)
        out[lam] = risk_result(solve_ef(risk_module(farmer, risk), names, {}), farmer, names,
                               {}, risk).info["risk"]
    assert out[1.0]["cvar"] < out[0.0]["cvar"] - 1.0
    assert out[1.0]["expected"] > out[0.0]["expected"] + 1.0


# ----------------------------------------------------------------------------------------------
# Random instances: a multi-product newsvendor with capacity


def _newsvendor(seed: int, n_scen: int = 12) -> tuple[Any, list[str]]:
    """A module: order q_i (first stage, shared capacity), random demand d_is (seeded), sell
    min(q, d) at price, salvage the rest; costs minimised."""
    rng = np.random.default_rng([seed, 0])
    n = 3
    cost, price, salvage = rng.uniform(2, 5, n), rng.uniform(6, 12, n), rng.uniform(0, 1.5, n)
    demand = rng.gamma(2.0, 20.0, size=(n_scen, n))
    cap = 0.8 * demand.mean(axis=0).sum()

    class Module:
        INDEX_NAMES = ("item",)

        @staticmethod
        def scenario_creator(name: str, **_: Any) -> pyo.ConcreteModel:
            s = int(name.removeprefix("scen"))
            m = pyo.ConcreteModel(name)
            m.I = pyo.RangeSet(0, n - 1)
            m.q = pyo.Var(m.I, domain=pyo.NonNegativeReals)
            m.sell = pyo.Var(m.I, domain=pyo.NonNegativeReals)
            m.left = pyo.Var(m.I, domain=pyo.NonNegativeReals)
            m.cap = pyo.Constraint(expr=sum(m.q[i] for i in m.I) <= cap)
            m.dem = pyo.Constraint(m.I, rule=lambda m, i: m.sell[i] <= demand[s, i])
            m.bal = pyo.Constraint(m.I, rule=lambda m, i: m.sell[i] + m.left[i] == m.q[i])
            m.FirstStageCost = pyo.Expression(expr=sum(cost[i] * m.q[i] for i in m.I))
            m.obj = pyo.Objective(expr=m.FirstStageCost - sum(
                price[i] * m.sell[i] + salvage[i] * m.left[i] for i in m.I))
            return attach_root(m, m.FirstStageCost, [m.q], 1.0 / n_scen)

    return Module, [f"scen{k}" for k in range(n_scen)]


@pytest.mark.solve
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_frontier_invariants_on_random_instances(seed):
    """Along lambda = 0, 0.25, ..., 1 (alpha 0.8): expected loss non-decreasing, CVaR
    non-increasing; CVaR >= VaR and CVaR >= E[loss] at every point; each point's objective
    is rho of its plan, and no other point's plan does better under its lambda."""
    module, names = _newsvendor(seed)
    lams = [0.0, 0.25, 0.5, 0.75, 1.0]
    points, plans = [], []
    for lam in lams:
        risk = RiskConfig("cvar", 0.8, lam)
        res = risk_result(solve_ef(risk_module(module, risk), names, {}), module, names, {}, risk)
        points.append(res.info["risk"])
        plans.append(res.plan)
        assert res.objective == pytest.approx(points[-1]["objective"], rel=1e-7, abs=1e-6)
    tol = 1e-6
    for a, b in zip(points, points[1:]):
        assert b["expected"] >= a["expected"] - tol
        assert b["cvar"] <= a["cvar"] + tol
    for p in points:
        assert p["cvar"] >= p["value_at_risk"] - tol and p["cvar"] >= p["expected"] - tol
    for lam, point in zip(lams, points):
        for plan in plans:
            values = evaluate_plan(module, plan, names, {}).objective
            assert risk_value(values, None, 0.8, lam).objective >= point["objective"] - 1e-6


# ----------------------------------------------------------------------------------------------
# Every method agrees: the extensive form, PH (one rank here, three under mpiexec)

TINY = Path(__file__).parents[1] / "data" / "tiny"
MPIEXEC = Path(sys.executable).parent / "mpiexec"


def _cvar_ef(instance: str, options: dict[str, Any], spec: str, seed: int,
             risk: RiskConfig) -> float:
    """The mean-CVaR optimum of an aggregate-family instance by the extensive form."""
    from stochplan.family import get_family

    family = get_family("aggregate")
    inst = family.resolve(instance, options)
    names = family.scenario_set(inst, spec, seed).names
    kwargs = family.creator_kwargs(inst, spec, seed)
    result = solve_ef(risk_module(family.module, risk), names, kwargs)
    assert result.objective is not None
    return result.objective


@pytest.mark.solve
def test_ph_under_cvar_brackets_the_extensive_form(tmp_path):
    """``solve --method ph --cvar 0.8 --risk-weight 0.5`` (one rank, in this process): PH's
    bound <= the EF's mean-CVaR optimum <= its plan's measure, the gap that of the two."""
    from stochplan.cli import main
    from stochplan.store import ResultsStore

    db = tmp_path / "runs.db"
    argv = ["solve", str(TINY), "--method", "ph", "--relax", "--scenarios", "poisson:6",
            "--seed", "1", "--cvar", "0.8", "--risk-weight", "0.5", "--db", str(db),
            "--quiet", "--rel-gap", "0.005", "--max-iterations", "300"]
    assert main(argv) == 0
    with ResultsStore(db) as store:
        record = store.get_run(1).record
    best = _cvar_ef(str(TINY), {"integer": False}, "poisson:6", 1, RiskConfig("cvar", 0.8, 0.5))
    tol = 1e-6 * abs(best)
    assert record.bound <= best + tol <= record.objective + 2 * tol
    assert record.gap <= 0.005 + 1e-12
    assert record.kpis["risk_objective"] == pytest.approx(record.objective, rel=1e-9)
    assert record.config["risk"] == {"measure": "cvar", "alpha": 0.8, "weight": 0.5}


@pytest.mark.mpi
def test_ph_under_cvar_on_three_ranks_brackets_the_extensive_form(tmp_path):
    """PH with its bound and incumbent spokes (3 ranks) on the electronics LP under
    0.5 E + 0.5 CVaR 90 %, stopped after 30 iterations: bound <= EF optimum <= incumbent.
    (With eta free, the Lagrangian spoke's subproblems went unbounded and its "bound" was
    795,942 against the optimum's 458,672: eta is boxed, :func:`value_at_risk_box`.)"""
    if not MPIEXEC.exists():
        pytest.skip(f"no mpiexec beside {sys.executable}")
    db = tmp_path / "runs.db"
    cmd = [str(MPIEXEC), "-n", "3", sys.executable, "-m", "mpi4py", "-m", "stochplan", "solve",
           "electronics", "--method", "ph", "--relax", "--set", "lost_sales_penalty=500",
           "--scenarios", "poisson:6", "--seed", "11", "--cvar", "0.9", "--risk-weight", "0.5",
           "--rel-gap", "0.001", "--max-iterations", "30", "--db", str(db), "--json",
           "--partial"]
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    best = _cvar_ef("electronics", {"integer": False, "lost_sales_penalty": 500.0},
                    "poisson:6", 11, RiskConfig("cvar", 0.9, 0.5))
    tol = 1e-6 * abs(best)
    assert out["bound"] <= best + tol <= out["objective"] + 2 * tol
    assert out["gap"] == pytest.approx((out["objective"] - out["bound"]) / abs(out["objective"]))
    assert out["kpis"]["risk_objective"] == pytest.approx(out["objective"], rel=1e-9)


def test_one_label_for_the_measure_everywhere():
    """The run header, the value report, evaluate and the frontier name the measure by
    :meth:`RiskConfig.label`, weight 0 included."""
    from stochplan.reports.text import risk_header

    assert RiskConfig().label() == "expectation"
    assert RiskConfig("cvar", 0.9, 0.0).label() == "expectation (CVaR 90% weight 0)"
    assert RiskConfig("cvar", 0.95, 1.0).label() == "CVaR 95%"
    kpis = {"risk_expected": 1.0, "risk_value_at_risk": 2.0, "risk_cvar": 3.0}
    for weight in (0.0, 0.25, 1.0):
        config = {"risk": {"measure": "cvar", "alpha": 0.9, "weight": weight}}
        header = risk_header(config, kpis)
        assert header is not None
        assert header["label"] == RiskConfig("cvar", 0.9, weight).label()
    assert risk_header({"risk": {"measure": "expectation", "alpha": 0.95, "weight": 0.5}},
                       kpis) is None


# ----------------------------------------------------------------------------------------------
# The extensive form's scenario costs, read off its solution


def _electronics_module(spec: str = "poisson:20", seed: int = 3) -> tuple[Any, list[str], dict]:
    from stochplan.family import get_family

    family = get_family("aggregate")
    inst = family.resolve("electronics", {"integer": False, "lost_sales_penalty": 500.0})
    return (family.module, list(family.scenario_set(inst, spec, seed).names),
            family.creator_kwargs(inst, spec, seed))


def _without_read_values(result: Any) -> Any:
    import dataclasses

    info = {k: v for k, v in result.info.items() if k != "scenario_objectives"}
    return dataclasses.replace(result, info=info)


@pytest.mark.solve
@pytest.mark.parametrize("sense", ["min", "max"])
def test_extensive_form_scenario_costs_equal_solving_each_scenario_again(sense, as_profit):
    """Electronics, 20 scenarios, 0.5 E + 0.5 CVaR_90%, matrix backend: each scenario's cost
    read off the extensive form equals the cost of its recourse solved alone at the plan
    (1e-9), so the in-sample expectation, VaR, CVaR and measure are those of the re-evaluation,
    the measure is the extensive form's objective, and the plan and recourse tables are the
    family's (the same plan, the same recourse rows). As a profit (a maximising family)
    every figure is mirrored."""
    from stochplan.solve.solvers import SolverOptions

    base, names, kwargs = _electronics_module()
    module = base if sense == "min" else as_profit(base)
    risk = RiskConfig("cvar", 0.9, 0.5)
    solver = SolverOptions(backend="matrix")
    solved = solve_ef(risk_module(module, risk), names, kwargs, solver)
    read = solved.info["scenario_objectives"]
    assert read.shape == (len(names),)
    assert "risk_value_at_risk" not in set(solved.plan["variable"])
    assert "risk_excess" not in set(solved.recourse["variable"])
    result = risk_result(solved, module, names, kwargs, risk, solver)
    again = risk_result(_without_read_values(solved), module, names, kwargs, risk, solver)
    values = evaluate_plan(module, result.plan, names, kwargs, solver).objective
    assert read == pytest.approx(values, rel=1e-9)
    assert (values < 0).all() if sense == "max" else (values > 0).all()
    for key in ("expected", "value_at_risk", "cvar", "objective"):
        assert result.info["risk"][key] == pytest.approx(again.info["risk"][key], rel=1e-9)
    assert result.objective == pytest.approx(solved.objective, rel=1e-9)
    assert "scenario_objectives" not in result.info
    assert result.plan.equals(again.plan)
    keys = [c for c in result.recourse.columns if c != "value"]
    assert keys == [c for c in again.recourse.columns if c != "value"]
    merged = result.recourse.merge(again.recourse, on=keys, validate="one_to_one")
    assert len(merged) == len(result.recourse) == len(again.recourse)
    if sense == "max":
        cost = solve_ef(risk_module(base, risk), names, kwargs, solver)
        assert solved.objective == pytest.approx(-cost.objective, rel=1e-9)


@pytest.mark.solve
def test_cvar_alone_solves_every_scenario_again():
    """Under CVaR alone (lambda = 1) a scenario outside the tail may take any recourse that
    keeps its cost below the value at risk, so nothing is read off the extensive form: the
    expected cost is that of each scenario's best recourse at the plan."""
    from stochplan.solve.solvers import SolverOptions

    module, names, kwargs = _electronics_module()
    risk = RiskConfig("cvar", 0.9, 1.0)
    solver = SolverOptions(backend="matrix")
    solved = solve_ef(risk_module(module, risk), names, kwargs, solver)
    assert "scenario_objectives" not in solved.info
    result = risk_result(solved, module, names, kwargs, risk, solver)
    values = evaluate_plan(module, result.plan, names, kwargs, solver).objective
    assert result.info["risk"]["expected"] == pytest.approx(values.mean(), rel=1e-9)
    assert result.objective == pytest.approx(solved.objective, rel=1e-9)
