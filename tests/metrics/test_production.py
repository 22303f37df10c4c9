"""KPIs on plain numbers, no solver: the tiny instance's optimal plan worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from stochplan.data import load_instance
from stochplan.models.aggregate.kpis import kpi_report


@pytest.fixture
def tiny(tiny_path):
    return load_instance(tiny_path)


def _plan():
    """X = (10, 15) with R = (10, 10), O = (0, 5), one worker kept."""
    return {
        "X": np.array([[10.0, 15.0]]),
        "W": np.array([[1.0, 1.0]]),
        "H": np.zeros((1, 2)),
        "F": np.zeros((1, 2)),
        "R": np.array([[10.0, 10.0]]),
        "O": np.array([[0.0, 5.0]]),
    }


def _recourse():
    """Low scenario keeps 10 units after week 2; high ends with nothing."""
    zeros = np.zeros((2, 1, 2))
    i_reg = zeros.copy()
    i_reg[0, 0, 1] = 10.0
    return {"I_reg": i_reg, "I_ovr": zeros.copy(), "B": zeros.copy()}


def test_kpis_by_hand(tiny):
    demand = np.array([[[10.0, 5.0]], [[10.0, 15.0]]])
    rep = kpi_report(tiny, _plan(), _recourse(), demand, np.array([0.5, 0.5]))
    head = rep.headline
    # cost: production 25, regular labour 2 * 20 = 40, overtime 3 * 5 = 15, holding 0.5 * 10 = 5
    assert head["cost"] == pytest.approx(85.0)
    assert head["revenue"] == pytest.approx(20.0 * 20.0)
    assert head["profit"] == pytest.approx(315.0)
    assert head["operating_margin"] == pytest.approx(315.0 / 400.0)
    assert head["fill_rate"] == pytest.approx(1.0)
    comp = rep.composition.set_index("category")
    assert comp["cost"].to_dict() == pytest.approx({
        "Production": 25.0, "Labor (Reg)": 40.0, "Labor (OT)": 15.0,
        "Hiring/Firing": 0.0, "Inventory": 5.0, "Backorder": 0.0,
    })
    assert comp["percent"].sum() == pytest.approx(100.0)
    prod = rep.products.iloc[0]
    assert prod["units_produced"] == 25.0
    assert prod["total_demand"] == 20.0
    # average expected inventory = (0 + 0.5 * 10) / 2 weeks = 2.5; turnover = 20 / 2.5
    assert prod["turnover"] == pytest.approx(8.0)
    assert prod["avg_unit_cost"] == pytest.approx(85.0 / 25.0)
    assert prod["profit_margin"] == pytest.approx((20.0 - 3.4) / 20.0)


def test_backorders_reduce_revenue_and_cost_them(tiny):
    """Demand met is demand minus end-of-week backlog: a 4-unit backlog in week 2 of the high
    scenario (probability 1/2) loses 2 expected units of revenue and costs 0.5 * 4 * 10."""
    rec = _recourse()
    rec["B"][1, 0, 1] = 4.0
    demand = np.array([[[10.0, 5.0]], [[10.0, 15.0]]])
    rep = kpi_report(tiny, _plan(), rec, demand, np.array([0.5, 0.5]))
    assert rep.headline["revenue"] == pytest.approx(20.0 * 18.0)
    assert rep.composition.set_index("category").loc["Backorder", "cost"] == pytest.approx(20.0)


def test_overflow_costs_the_multiplier(tiny):
    """Overflow stock costs overflow_cost_multiplier (3) times the regular holding cost."""
    rec = _recourse()
    rec["I_reg"][0, 0, 1] = 4.0
    rec["I_ovr"][0, 0, 1] = 6.0
    demand = np.array([[[10.0, 5.0]], [[10.0, 15.0]]])
    rep = kpi_report(tiny, _plan(), rec, demand, np.array([0.5, 0.5]))
    weekly = rep.weekly.set_index("week")
    assert weekly.loc[2, "inventory_regular"] == pytest.approx(0.5 * 4.0)
    assert weekly.loc[2, "inventory_overflow"] == pytest.approx(0.5 * 3 * 6.0)


def test_weekly_rows_add_up_to_the_headline(tiny):
    demand = np.array([[[10.0, 5.0]], [[10.0, 15.0]]])
    rep = kpi_report(tiny, _plan(), _recourse(), demand, np.array([0.5, 0.5]))
    assert rep.weekly["cost"].sum() == pytest.approx(rep.headline["cost"])
    assert rep.weekly["revenue"].sum() == pytest.approx(rep.headline["revenue"])
