"""Properties every model family has, checked on each registered family.

:data:`FAMILIES` lists one instance per family; a new built-in family must be added to it
(``test_every_family_is_listed`` fails until it is). Each is solved as an LP on a few sampled
scenarios, so the whole module runs in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

from stochplan.analysis.value import value_report
from stochplan.config import load_config
from stochplan.family import ScenarioSource, family_names, get_family
from stochplan.models import BUILTIN
from stochplan.run import solve_instance, to_record
from stochplan.solve.ef import solve_ef
from stochplan.solve.solvers import SolverOptions
from stochplan.store import ResultsStore

from .conftest import ELECTRONICS, KIOSK


@dataclass(frozen=True)
class Case:
    family: str
    instance: str
    #: Model options of the solves here (the LP relaxation of integer families).
    options: dict[str, Any] = field(default_factory=dict)
    spec: str = "sample:4"
    seed: int = 5

    def __str__(self) -> str:
        return self.family


FAMILIES = [
    Case("aggregate", str(ELECTRONICS), {"integer": False, "lost_sales_penalty": 1000.0}),
    Case("newsvendor", str(KIOSK)),
    Case("prebuild", "sop-prebuild"),
    # a MIP on 3 scenarios; "min" because test_ws_le_rp_le_eev checks the minimisation form
    Case("lotsizing", "furniture", spec="sample:3"),
    # binary offers, relaxed reassignments, on 3 scenarios of acceptances
    Case("assignment", "laser", {"recourse_integer": False}, spec="sample:3"),
    # all 5 sites in one extensive form (the blocks are tested in tests/models/test_multisite.py)
    Case("multisite", "multisite", {"integer": False}, spec="sample:3"),
]


@pytest.fixture(params=FAMILIES, ids=str)
def case(request: pytest.FixtureRequest) -> Case:
    return request.param


def _problem(case: Case) -> tuple[Any, Any, tuple[str, ...], dict[str, Any]]:
    family = get_family(case.family)
    inst = family.resolve(case.instance, case.options or None)
    names = family.scenario_set(inst, case.spec, case.seed).names
    return family, inst, names, family.creator_kwargs(inst, case.spec, case.seed)


def test_every_family_is_listed():
    """FAMILIES = the registered families (built-in, registered, entry points) plus the
    test family, each once."""
    names = [c.family for c in FAMILIES]
    assert len(set(names)) == len(names)
    assert set(names) == set(family_names()) | {"newsvendor"}
    assert set(BUILTIN) <= set(names)


def test_scenario_k_is_the_same_whatever_n_and_alone(case):
    """Scenario k of ``sample:N`` depends on (seed, k) only: the same in sets of 8 and 50,
    and drawn alone (``ScenarioSource.data(k)``, as an MPI rank draws it)."""
    family = get_family(case.family)
    inst = family.resolve(case.instance, case.options or None)
    small = family.scenario_set(inst, "sample:8", case.seed)
    large = family.scenario_set(inst, "sample:50", case.seed)
    assert np.array_equal(small.data, large.data[:8])
    source = ScenarioSource.of(family, instance=inst, scenarios="sample:50", seed=case.seed)
    for k in (0, 7, 49):
        assert np.array_equal(source.data(k), large.data[k])
        assert source.probability(k) == pytest.approx(1 / 50)
    other = family.scenario_set(inst, "sample:8", case.seed + 1)
    assert not np.array_equal(other.data, small.data)


@pytest.mark.solve
def test_extensive_form_is_the_same_through_pyomo_and_the_matrix_backend(case):
    family, _, names, kwargs = _problem(case)
    pyomo = solve_ef(family.module, names, kwargs, SolverOptions(backend="pyomo"))
    matrix = solve_ef(family.module, names, kwargs, SolverOptions(backend="matrix"))
    assert pyomo.info["backend"] == "pyomo" and matrix.info["backend"].startswith("matrix")
    assert matrix.objective == pytest.approx(pyomo.objective, rel=1e-9, abs=1e-9)
    assert list(pyomo.plan.columns) == list(matrix.plan.columns)


@pytest.mark.solve
def test_ws_le_rp_le_eev(case):
    """WS <= RP <= EEV for minimisation (WS >= RP >= EEV for maximisation), so VSS >= 0 and
    EVPI >= 0; the report's sense is the family's."""
    family, inst, names, kwargs = _problem(case)
    report = value_report(family.module, names, kwargs)
    tol = 1e-9 * max(1.0, abs(report.rp))
    assert report.sense == family.objective_sense(inst)
    flip = 1.0 if report.sense == "min" else -1.0
    assert flip * report.ws <= flip * report.rp + tol
    assert flip * report.rp <= flip * report.eev + tol
    assert report.vss >= -tol and report.evpi >= -tol


@pytest.mark.solve
def test_a_stored_run_round_trips_with_the_family_index(case, tmp_path):
    """A run stored and read back keeps its objective, KPIs and plan exactly, and the plan's
    index columns are the family's ``index_names``."""
    family = get_family(case.family)
    config = load_config(None, instance=case.instance, model=case.options or None,
                         scenarios={"spec": case.spec, "seed": case.seed})
    outcome = solve_instance(config)
    record = to_record(outcome)
    assert record.family == case.family
    with ResultsStore(tmp_path / "runs.db") as store:
        stored = store.get_run(store.save_run(record)).record
    assert list(stored.plan.columns) == ["variable", *family.index_names, "value"]
    assert set(stored.plan["variable"]) == set(family.first_stage)
    assert stored.objective == record.objective and stored.kpis == record.kpis
    key = ["variable", *family.index_names]
    got = stored.plan.sort_values(key).reset_index(drop=True)
    want = record.plan.sort_values(key).reset_index(drop=True)
    assert np.array_equal(got["value"].to_numpy(float), want["value"].to_numpy(float))
    for name in family.index_names:
        assert [str(x) for x in got[name]] == [str(x) for x in want[name]]


@pytest.mark.solve
def test_a_record_given_in_python_brings_its_family(case):
    """``solve_instance(config, instance=record)`` solves the record's own family, whatever
    family the configuration's (default) instance has, to the objective of naming it."""
    family, inst, _, _ = _problem(case)
    scenarios = {"spec": case.spec, "seed": case.seed}
    by_record = solve_instance(load_config(scenarios=scenarios), instance=inst)
    by_name = solve_instance(load_config(instance=case.instance, model=case.options,
                                         scenarios=scenarios))
    assert by_record is not None and by_name is not None
    assert by_record.family is family and to_record(by_record).family == case.family
    assert by_record.result.objective == pytest.approx(by_name.result.objective, rel=1e-9)


@pytest.mark.solve
def test_a_cvar_plan_trades_expected_cost_for_tail_risk(case):
    """Every family solves under ``[risk] measure = "cvar"`` (alpha 0.75, lambda 0.5), and the
    answer obeys what optimality implies against the risk-neutral plan x0 of the same
    scenarios: rho(x_lambda) <= rho(x0) (rho evaluated independently, scenario by scenario),
    E[loss](x_lambda) >= E[loss](x0) and CVaR(x_lambda) <= CVaR(x0); in sample CVaR >= VaR and
    CVaR >= E[loss]; the stored objective is (1 - lambda) E + lambda CVaR in the family's sense.
    """
    from stochplan.metrics.stats import risk_value
    from stochplan.solve.evaluate import evaluate_plan

    family, inst, names, kwargs = _problem(case)
    scenarios = {"spec": case.spec, "seed": case.seed}
    config = load_config(instance=case.instance, model=case.options or None,
                         scenarios=scenarios, risk={"measure": "cvar", "alpha": 0.75,
                                                    "weight": 0.5})
    averse = solve_instance(config)
    neutral = solve_instance(config.replace(risk=config.risk.replace(weight=0.0)))
    assert averse is not None and neutral is not None
    sense = family.objective_sense(inst)
    sign = 1.0 if sense == "min" else -1.0

    def rho(plan):
        values = evaluate_plan(family.module, plan, names, kwargs).objective
        return risk_value(values, None, 0.75, 0.5, sense)

    mine, theirs = rho(averse.result.plan), rho(neutral.result.plan)
    tol = 2e-4 * max(1.0, abs(mine.objective))  # MIP gaps of the integer families
    assert sign * mine.objective <= sign * theirs.objective + tol
    assert sign * averse.result.objective == pytest.approx(sign * mine.objective, abs=tol)
    assert sign * mine.expected >= sign * theirs.expected - tol  # E[loss] = sign * expected
    assert mine.cvar <= theirs.cvar + tol
    kpis = averse.kpis.headline
    assert kpis["risk_cvar"] >= kpis["risk_value_at_risk"] - 1e-9
    assert kpis["risk_cvar"] >= sign * kpis["risk_expected"] - 1e-9
    assert kpis["risk_objective"] == pytest.approx(
        sign * (0.5 * sign * kpis["risk_expected"] + 0.5 * kpis["risk_cvar"]), rel=1e-9)
    assert set(averse.result.plan["variable"]) == set(family.first_stage)
