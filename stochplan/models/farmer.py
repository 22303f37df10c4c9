r"""The farmer problem of Birge and Louveaux (Introduction to Stochastic Programming, ch. 1).

A reference module for the generic analysis code (it is not a production-planning family): a
farmer splits 500 acres among wheat, corn and sugar beets before knowing the yields; after the
harvest he buys or sells to meet cattle-feed needs. Three equally likely scenarios have yields
at 0.8, 1.0 and 1.2 times the mean (2.5, 3, 20 T/acre).

Formulation (costs, minimised; ``sense="max"`` maximises the profit, the same numbers negated)::

    x[c]   acres devoted to crop c                           (first stage)
    y[c]   tons bought (wheat, corn), w[c] tons sold          (second stage)
    w_beets_fav <= 6000 sold at 36 $/T, w_beets_excess at 10 $/T

    min  150 x_w + 230 x_c + 260 x_b + 238 y_w + 210 y_c
         - 170 w_w - 150 w_c - 36 w_fav - 10 w_exc
    s.t. x_w + x_c + x_b <= 500
         yield_w x_w + y_w - w_w >= 200,   yield_c x_c + y_c - w_c >= 240
         w_fav + w_exc <= yield_b x_b,     w_fav <= 6000

Published values (min): RP -108,390, EV -118,600, EEV -107,240, WS -115,405.56,
VSS 1,150, EVPI 7,015.56.

The module follows mpi-sppy's contract, with ``average_scenario_creator``.
"""

from __future__ import annotations

from typing import Any

import pyomo.environ as pyo

from stochplan._mpisppy import attach_root
from stochplan.errors import InputError

CROPS = ("WHEAT", "CORN", "SUGAR_BEETS")
MEAN_YIELD = {"WHEAT": 2.5, "CORN": 3.0, "SUGAR_BEETS": 20.0}  # T/acre
PLANTING_COST = {"WHEAT": 150.0, "CORN": 230.0, "SUGAR_BEETS": 260.0}  # $/acre
PURCHASE_PRICE = {"WHEAT": 238.0, "CORN": 210.0}  # $/T
SELLING_PRICE = {"WHEAT": 170.0, "CORN": 150.0}  # $/T
REQUIREMENT = {"WHEAT": 200.0, "CORN": 240.0}  # T
BEETS_QUOTA, BEETS_PRICE, BEETS_EXCESS_PRICE = 6000.0, 36.0, 10.0
TOTAL_ACREAGE = 500.0
SCENARIO_FACTORS = (0.8, 1.0, 1.2)  # below average, average, above average
INDEX_NAMES = ("crop",)


def build_model(yields: dict[str, float], sense: str = "min",
                name: str = "farmer") -> pyo.ConcreteModel:
    """The farmer's model for one yield scenario ($; costs minimised or profit maximised)."""
    if sense not in ("min", "max"):
        raise InputError("sense", sense, "expected 'min' or 'max'")
    m = pyo.ConcreteModel(name=name)
    m.CROPS = pyo.Set(initialize=CROPS, ordered=True)
    m.BOUGHT = pyo.Set(initialize=tuple(PURCHASE_PRICE), ordered=True)
    m.x = pyo.Var(m.CROPS, bounds=(0.0, TOTAL_ACREAGE), doc="acres planted")
    m.y = pyo.Var(m.BOUGHT, domain=pyo.NonNegativeReals, doc="tons bought")
    m.w = pyo.Var(m.BOUGHT, domain=pyo.NonNegativeReals, doc="tons sold")
    m.w_fav = pyo.Var(bounds=(0.0, BEETS_QUOTA), doc="beets sold at the quota price")
    m.w_exc = pyo.Var(domain=pyo.NonNegativeReals, doc="beets sold above the quota")

    # total acreage
    m.acreage = pyo.Constraint(expr=sum(m.x[c] for c in m.CROPS) <= TOTAL_ACREAGE)

    # cattle feed: harvest + purchases - sales >= requirement
    @m.Constraint(m.BOUGHT)
    def feed(m, c):
        return yields[c] * m.x[c] + m.y[c] - m.w[c] >= REQUIREMENT[c]

    # beets sold at most what was harvested
    m.beets = pyo.Constraint(expr=m.w_fav + m.w_exc <= yields["SUGAR_BEETS"] * m.x["SUGAR_BEETS"])

    m.FirstStageCost = pyo.Expression(expr=sum(PLANTING_COST[c] * m.x[c] for c in m.CROPS))
    m.SecondStageCost = pyo.Expression(expr=(
        sum(PURCHASE_PRICE[c] * m.y[c] - SELLING_PRICE[c] * m.w[c] for c in m.BOUGHT)
        - BEETS_PRICE * m.w_fav - BEETS_EXCESS_PRICE * m.w_exc
    ))
    cost = m.FirstStageCost + m.SecondStageCost
    if sense == "min":
        m.objective = pyo.Objective(expr=cost, sense=pyo.minimize)
    else:
        m.objective = pyo.Objective(expr=-cost, sense=pyo.maximize)
    return m


def _attach(model: pyo.ConcreteModel, sense: str, probability: float) -> pyo.ConcreteModel:
    first = model.FirstStageCost if sense == "min" else -model.FirstStageCost
    return attach_root(model, first, [model.x], probability)


def scenario_creator(scenario_name: str, sense: str = "min",
                     num_scens: int | None = None) -> pyo.ConcreteModel:
    """Scenario ``scen0`` (below average), ``scen1`` (average) or ``scen2`` (above average)."""
    if num_scens not in (None, 3):
        raise InputError("num_scens", num_scens, "the textbook farmer has exactly 3 scenarios")
    try:
        k = int(scenario_name.removeprefix("scen"))
        factor = SCENARIO_FACTORS[k]
    except (ValueError, IndexError):
        raise InputError("scenario name", scenario_name, "expected scen0, scen1 or scen2") from None
    yields = {c: factor * MEAN_YIELD[c] for c in CROPS}
    return _attach(build_model(yields, sense, scenario_name), sense, 1.0 / 3.0)


def average_scenario_creator(scenario_name: str, sense: str = "min",
                             num_scens: int | None = None) -> pyo.ConcreteModel:
    """The mean-yield scenario (probability 1)."""
    return _attach(build_model(dict(MEAN_YIELD), sense, "average"), sense, 1.0)


def scenario_names_creator(num_scens: int, start: int | None = None) -> list[str]:
    start = start or 0
    return [f"scen{k}" for k in range(start, start + num_scens)]


def inparser_adder(cfg: Any) -> None:
    cfg.num_scens_required()
    cfg.add_to_config("farmer_maximize", description="maximise profit instead of minimising cost",
                      domain=bool, default=False)


def kw_creator(cfg: Any) -> dict[str, Any]:
    return {"sense": "max" if cfg.get("farmer_maximize", False) else "min",
            "num_scens": cfg.get("num_scens", None)}


def scenario_denouement(rank: int, scenario_name: str, scenario: pyo.ConcreteModel) -> None:
    pass
