"""The classified mean-CVaR extensive form (``stochplan.solve.cvar_ef``): the same optimum as
the whole Rockafellar-Uryasev form, whatever the first classification, as a cost or as a
profit, and the plan's measure re-evaluated scenario by scenario is that optimum."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from stochplan.metrics.stats import risk_value
from stochplan.solve import cvar_ef, matrix
from stochplan.solve.ef import solve_ef
from stochplan.solve.evaluate import evaluate_plan
from stochplan.solve.risk import RiskConfig, ef_scenario_values, risk_module, risk_result, tail_form
from stochplan.solve.solvers import SolverOptions

SOLVER = SolverOptions(backend="matrix")


def _electronics(spec: str, as_profit: Any = None) -> tuple[Any, list[str], dict]:
    from stochplan.family import get_family

    family = get_family("aggregate")
    inst = family.resolve("electronics", {"integer": False, "lost_sales_penalty": 500.0})
    module = family.module if as_profit is None else as_profit(family.module)
    return (module, list(family.scenario_set(inst, spec, 3).names),
            family.creator_kwargs(inst, spec, 3))


def _both(spec: str, risk: RiskConfig, as_profit: Any = None) -> tuple[
        Any, matrix.MatrixSolution, matrix.MatrixSolution, tuple]:
    module, names, kwargs = _electronics(spec, as_profit)
    compiled = matrix.compile_scenarios(risk_module(module, risk), names, kwargs)
    whole = matrix.solve_extensive_form(compiled, SOLVER)
    part = cvar_ef.solve(compiled, SOLVER, risk.alpha)
    return compiled, whole, part, (module, names, kwargs)


def _measured(setup: tuple, compiled: Any, solution: matrix.MatrixSolution,
              risk: RiskConfig, sense: str) -> float:
    """The plan's measure with every scenario's recourse solved again at the plan."""
    module, names, kwargs = setup
    own = matrix.Columns(compiled.columns.variables[: compiled.n_first - 1],
                         compiled.columns.indices[: compiled.n_first - 1],
                         compiled.n_first - 1, compiled.columns.integer[: compiled.n_first - 1])
    plan = matrix.plan_table(own, solution.first[:-1], tuple(module.INDEX_NAMES))
    values = evaluate_plan(module, plan, names, kwargs, SOLVER).objective
    return risk_value(values, None, risk.alpha, risk.weight, sense).objective


@pytest.mark.solve
@pytest.mark.parametrize("sense", ["min", "max"])
@pytest.mark.parametrize("alpha, weight", [(0.9, 0.5), (0.95, 0.25), (0.8, 0.9)])
def test_classified_form_has_the_whole_forms_optimum(sense, alpha, weight, as_profit):
    """Electronics, 80 scenarios: the classified form's objective is the whole form's (1e-9),
    with tail rows for fewer scenarios than the whole form has; each scenario's cost read off
    it is its recourse solved again at the plan, and the plan's measure is the optimum."""
    risk = RiskConfig("cvar", alpha, weight)
    compiled, whole, part, setup = _both("poisson:80", risk,
                                         as_profit if sense == "max" else None)
    assert whole.status == part.status == "optimal"
    assert part.objective == pytest.approx(whole.objective, rel=1e-9)
    assert part.bound == part.objective and part.gap == 0.0
    assert 1 <= part.info["cvar_tail_rows"] < 80
    read = ef_scenario_values(compiled, part.first, part.second)
    assert risk_value(read, None, alpha, weight, sense).objective == pytest.approx(
        whole.objective, rel=1e-9)
    assert _measured(setup, compiled, part, risk, sense) == pytest.approx(whole.objective,
                                                                          rel=1e-9)
    # every excess is the loss above the value at risk
    form = tail_form(compiled)
    loss = form.losses(compiled, part.first, part.second)
    excess = part.second[:, form.excess - compiled.n_first]
    assert excess == pytest.approx(np.maximum(loss - part.first[form.eta], 0.0), abs=1e-6)


@pytest.mark.solve
def test_a_wrong_first_classification_still_ends_at_the_optimum(monkeypatch):
    """Scenarios ranked at random at first: some break their class, join the band, and the
    rounds end at the whole form's optimum; after MAX_ROUNDS every scenario has its row."""
    risk = RiskConfig("cvar", 0.9, 0.5)
    rng = np.random.default_rng(7)
    monkeypatch.setattr(cvar_ef, "_estimate", lambda compiled, *_: rng.permutation(
        len(compiled.names)).astype(float))
    compiled, whole, part, _ = _both("poisson:80", risk)
    assert part.info["cvar_rounds"] >= 2
    assert part.objective == pytest.approx(whole.objective, rel=1e-9)

    monkeypatch.setattr(cvar_ef, "MAX_ROUNDS", 1)
    capped = cvar_ef.solve(compiled, SOLVER, risk.alpha)
    assert capped.info == {"cvar_rounds": 2, "cvar_tail_rows": 80}
    assert capped.objective == pytest.approx(whole.objective, rel=1e-9)


@pytest.mark.solve
def test_the_extensive_form_takes_the_classified_form_from_enough_scenarios(monkeypatch):
    """``solve_ef`` on the matrix backend takes the classified form for a mean-CVaR LP with
    at least FROM_SCENARIOS scenarios, and the run's result (its measure read off the
    solution) is the whole form's."""
    risk = RiskConfig("cvar", 0.9, 0.5)
    module, names, kwargs = _electronics("poisson:40")
    whole = solve_ef(risk_module(module, risk), names, kwargs, SOLVER)
    assert "cvar_rounds" not in whole.info
    monkeypatch.setattr(cvar_ef, "FROM_SCENARIOS", 40)
    part = solve_ef(risk_module(module, risk), names, kwargs, SOLVER)
    assert part.info["cvar_rounds"] >= 1
    result = risk_result(part, module, names, kwargs, risk, SOLVER)
    assert result.objective == pytest.approx(whole.objective, rel=1e-9)
    assert result.info["risk"]["objective"] == pytest.approx(whole.objective, rel=1e-9)


def test_what_the_classified_form_takes():
    """Only an LP with 0 < lambda < 1, enough scenarios and every probability positive."""
    module, names, kwargs = _electronics(f"poisson:{cvar_ef.FROM_SCENARIOS}")
    compiled = matrix.compile_scenarios(risk_module(module, RiskConfig("cvar", 0.9, 0.5)),
                                        names, kwargs)
    assert cvar_ef.applies(compiled, 0.5)
    assert not cvar_ef.applies(compiled, 1.0)  # outside the tail no weight: losses say nothing
    few = dataclasses.replace(compiled, names=compiled.names[:-1])
    assert not cvar_ef.applies(few, 0.5)
    p = compiled.probabilities.copy()
    p[0] = 0.0
    assert not cvar_ef.applies(dataclasses.replace(compiled, probabilities=p), 0.5)
    integer = compiled.columns.integer.copy()
    integer[0] = True
    columns = dataclasses.replace(compiled.columns, integer=integer)
    assert not cvar_ef.applies(dataclasses.replace(compiled, columns=columns), 0.5)
