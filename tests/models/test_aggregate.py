"""The aggregate family: the seed's published figures, a hand-checked instance, the options
a researcher varies, infeasibility diagnosis and the mpi-sppy module contract."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest

from stochplan.config import RunConfig
from stochplan.data import load_instance
from stochplan.errors import InfeasibleError
from stochplan.run import solve_instance

# ----------------------------------------------------------------------------------------------
# Seed 003's published results (README of the seed project: Executive Summary, Operational
# Metrics), three-point scenarios, integer model.


@pytest.fixture(scope="module")
def seed_run():
    return solve_instance(RunConfig(instance="electronics"))


@pytest.mark.solve
def test_seed_objective_and_executive_summary(seed_run):
    """Total expected cost $564,471.50; revenue $3,040,787.50; profit $2,476,316.00;
    margin ~81.4%."""
    head = seed_run.kpis.headline
    assert seed_run.result.status == "optimal"
    assert seed_run.result.objective == pytest.approx(564_471.50, abs=0.005)
    assert head["cost"] == pytest.approx(564_471.50, abs=0.005)
    assert head["revenue"] == pytest.approx(3_040_787.50, abs=0.005)
    assert head["profit"] == pytest.approx(2_476_316.00, abs=0.005)
    assert round(100 * head["operating_margin"], 1) == 81.4


@pytest.mark.solve
def test_seed_cost_composition(seed_run):
    """Labour 79.25 %, production 11.58 %, backorders 1.63 % (and the seed's $ amounts)."""
    comp = seed_run.kpis.tables["composition"].set_index("category")
    assert comp.loc["Production", "cost"] == pytest.approx(65_348.00, abs=0.005)
    assert comp.loc["Labor (Reg)", "cost"] == pytest.approx(447_353.00, abs=0.005)
    assert comp.loc["Labor (OT)", "cost"] == pytest.approx(0.0, abs=0.005)
    assert comp.loc["Hiring/Firing", "cost"] == pytest.approx(0.0, abs=0.005)
    assert comp.loc["Inventory", "cost"] == pytest.approx(42_582.25, abs=0.005)
    assert comp.loc["Backorder", "cost"] == pytest.approx(9_188.25, abs=0.005)
    shares = comp["percent"].round(2).to_dict()
    assert shares["Labor (Reg)"] == 79.25
    assert shares["Production"] == 11.58
    assert shares["Backorder"] == 1.63
    assert shares["Inventory"] == 7.54
    assert comp["percent"].sum() == pytest.approx(100.0)


@pytest.mark.solve
def test_seed_operational_metrics(seed_run):
    """The seed's per-product table, to the digits it prints (its Total Demand truncates the
    expected demand 2829.5, 2552.75, 2295.75 to whole units)."""
    t = seed_run.kpis.tables["products"].set_index("product")
    np.testing.assert_allclose(t["total_demand"], [2829.5, 2552.75, 2295.75], atol=1e-9)
    assert [math.floor(x) for x in t["total_demand"]] == [2829, 2552, 2295]
    assert t["units_produced"].tolist() == [3045, 2702, 2464]
    assert t["turnover"].round(2).tolist() == [8.56, 7.26, 6.70]
    assert t["avg_unit_cost"].round(2).tolist() == [51.09, 61.72, 98.27]
    assert (100 * t["profit_margin"]).round(1).tolist() == [65.9, 87.7, 84.9]
    assert t["cost"].sum() == pytest.approx(564_471.50, abs=0.005)


@pytest.mark.solve
def test_weekly_financials_match_the_seed(seed_run):
    """Per-week company revenue and cost of the seed's FINANCIAL PERFORMANCE SUMMARY."""
    weekly = seed_run.kpis.tables["weekly"].groupby("week")[["revenue", "cost"]].sum()
    np.testing.assert_allclose(
        weekly["revenue"],
        [263237.5, 171900.0, 250475.0, 261837.5, 280775.0, 241650.0,
         264762.5, 320700.0, 217787.5, 273662.5, 243987.5, 250012.5], atol=0.005)
    np.testing.assert_allclose(
        weekly["cost"],
        [8372.0, 94860.5, 33737.5, 67441.5, 3316.5, 71237.75,
         32801.5, 58200.0, 63247.25, 32056.75, 49264.75, 49935.5], atol=0.005)


# ----------------------------------------------------------------------------------------------
# The hand-checked instance (tests/data/tiny): week 1 demand 10; week 2 demand 5 or 15.
# Unit cost 3 on regular hours (<= 10/week), 4 on overtime (<= 5/week); holding 1, backorder 10.
# Each extra week-2 unit saves 0.5 * 10 expected backorder and costs 0.5 * 1 expected holding,
# so it pays up to capacity: X = (10, 15), cost 30 + (30 + 20) + 0.5 * 10 = 85.


@pytest.mark.solve
def test_tiny_recourse_problem_by_hand(tiny_path):
    out = solve_instance(RunConfig(instance=str(tiny_path)))
    res = out.result
    assert res.objective == pytest.approx(85.0, abs=1e-9)
    assert res.first_stage("X").tolist() == [10.0, 15.0]
    assert res.first_stage("R").tolist() == [10.0, 10.0]
    assert res.first_stage("O").tolist() == [0.0, 5.0]
    assert res.first_stage("H").tolist() == [0.0, 0.0]
    rec = res.recourse.set_index(["scenario", "variable", "product", "week"])["value"]
    assert rec["scen0", "I_reg", "A", 2] + rec["scen0", "I_ovr", "A", 2] == 10.0  # low: 15 - 5
    assert rec["scen1", "B", "A", 2] == 0.0  # high: 15 made, 15 demanded
    head = out.kpis.headline
    assert head["revenue"] == pytest.approx(400.0)  # price 20 x (10 + 0.5*5 + 0.5*15)
    assert head["profit"] == pytest.approx(315.0)
    assert head["fill_rate"] == pytest.approx(1.0)


@pytest.mark.solve
def test_tiny_backorder_cap_forces_production(tiny_path):
    """With backorders forbidden the plan must still cover the high scenario: same X, same cost
    (backorders were not used), and the LP relaxation agrees on this integral instance."""
    inst = load_instance(tiny_path)
    out = solve_instance(RunConfig(instance=str(tiny_path), model={"backorder_fraction": 0.0}))
    assert out.result.objective == pytest.approx(85.0)
    lp = solve_instance(RunConfig(instance=str(tiny_path), model={"integer": False}))
    assert lp.result.objective == pytest.approx(85.0)
    assert inst.options.backorder_fraction == 1.0  # the file's value is untouched


@pytest.mark.solve
def test_tiny_wage_makes_idle_workers_costly(tiny_path):
    """A wage per worker-week is charged on W: 1 worker x 2 weeks x $7 = $14 more."""
    out = solve_instance(RunConfig(instance=str(tiny_path), model={"wage_per_worker": 7.0}))
    assert out.result.objective == pytest.approx(85.0 + 14.0)


@pytest.mark.solve
def test_tiny_lost_sales_are_taken_when_cheaper(tiny_path):
    """Lost sales at $3.50/unit: regular production ($3) still pays, overtime ($4) does not,
    and a week-2 unit beyond 5 costs 3 + 0.5 * 1 (held when low) - 0.5 * 3.5 (saved when high)
    > 0. So X = (10, 5) and the high scenario loses 10: 30 + 15 + 0.5 * 10 * 3.5 = 62.5."""
    out = solve_instance(RunConfig(instance=str(tiny_path), model={"lost_sales_penalty": 3.5}))
    assert out.result.objective == pytest.approx(62.5)
    assert out.result.first_stage("X").tolist() == [10.0, 5.0]
    assert out.kpis.headline["fill_rate"] == pytest.approx(15.0 / 20.0)
    comp = out.kpis.tables["composition"].set_index("category")["cost"]
    assert comp["Lost sales"] == pytest.approx(17.5)


@pytest.mark.solve
def test_relaxation_bounds_the_integer_optimum():
    """The LP relaxation's optimum is a lower bound of the integer one (and close to it)."""
    mip = solve_instance(RunConfig(instance="electronics")).result.objective
    lp = solve_instance(RunConfig(instance="electronics",
                                  model={"integer": False})).result.objective
    assert lp <= mip + 1e-6
    assert lp >= 0.999 * mip


@pytest.mark.solve
def test_lost_sales_give_recourse_never_more_costly():
    """Adding an option to the recourse can only lower the optimal expected cost."""
    base = solve_instance(RunConfig(instance="electronics", model={"integer": False}))
    lost = solve_instance(RunConfig(instance="electronics",
                                    model={"integer": False, "lost_sales_penalty": 40.0}))
    assert lost.result.objective <= base.result.objective + 1e-6


@pytest.mark.solve
def test_infeasible_instance_names_the_warehouse(tiny_path):
    """50 units on hand, 10 demanded per week and no warehouse space at all: the leftover stock
    has nowhere to go, and the diagnosis names the warehouse families."""
    inst = load_instance(tiny_path)
    broken = dataclasses.replace(
        inst, regular_capacity=0.0, initial_inventory=np.array([50.0])
    ).with_options(overflow_capacity=0.0)
    with pytest.raises(InfeasibleError) as info:
        solve_instance(RunConfig(instance="tiny-broken", family="aggregate"), instance=broken)
    assert set(info.value.families) <= {"regular_warehouse", "overflow_warehouse",
                                        "inventory_balance", "backorder_cap"}
    assert "regular_warehouse" in info.value.families
    assert "regular_warehouse" in str(info.value)


@pytest.mark.solve
def test_time_limit_without_partial_raises():
    """A solve stopped by its time limit is not passed off as a result."""
    from stochplan.errors import SolveError
    from stochplan.solve.solvers import SolverOptions

    cfg = RunConfig(instance="electronics", solver=SolverOptions(time_limit=1e-3))
    cfg = dataclasses.replace(cfg, scenarios=dataclasses.replace(cfg.scenarios, spec="poisson:50"))
    with pytest.raises(SolveError) as info:
        solve_instance(cfg)
    assert info.value.status == "time_limit"
