"""Financial and operational KPIs of an aggregate plan, as the seed reports them.

All functions are pure: they take the instance, the first-stage plan and the per-scenario
recourse as arrays and return numbers and tables. Expectations are probability-weighted over
scenarios; money is in $.

Conventions (those of seed 003):

- demand met in week t = D[t] - B[t] (- L[t] with lost sales), B the backlog at the end of t;
  revenue = price x expected demand met.
- cost = the objective's terms: first stage (production, regular and overtime labour, hiring,
  firing, wages) plus expected recourse (regular and overflow holding, backorders, lost sales).
- profit = revenue - cost; operating margin = profit / revenue.
- per product: inventory turnover = expected demand met / average expected inventory (regular
  plus overflow, averaged over the weeks); average unit cost = the product's expected cost /
  units produced; profit margin = (price - average unit cost) / price.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from stochplan.models.aggregate.data import AggregateInstance

#: Cost categories of the composition table, in the seed's order, then the optional ones.
CATEGORIES = (
    "Production",
    "Labor (Reg)",
    "Labor (OT)",
    "Hiring/Firing",
    "Inventory",
    "Backorder",
    "Wages",
    "Lost sales",
)

#: What each cost category is called wherever the family shows it (every chart, table and
#: text report, and the compare page): one name per category, defined here only. The keys are
#: the identifiers of the stored ``composition`` table (the seed's names, kept so that stored
#: runs read back), plus the two parts of ``Inventory``; the ``weekly`` columns and the
#: ``share_*`` KPIs are the keys in snake case (``Labor (Reg)`` -> ``labor_reg``).
CATEGORY_LABELS: dict[str, str] = {
    "Production": "Production (material)",
    "Labor (Reg)": "Regular labour",
    "Labor (OT)": "Overtime labour",
    "Hiring/Firing": "Hiring/firing",
    "Inventory": "Holding (regular + overflow)",
    "Inventory (regular)": "Regular holding",
    "Inventory (overflow)": "Overflow holding",
    "Backorder": "Backorders",
    "Wages": "Wages",
    "Lost sales": "Lost sales",
}


def category_label(category: str) -> str:
    """The display name of a cost category, given by its stored identifier or its snake-case
    column (``"Labor (Reg)"`` or ``"labor_reg"`` -> ``"Regular labour"``); an unknown name
    is returned as it is.

    >>> category_label("Inventory"), category_label("labor_ot")
    ('Holding (regular + overflow)', 'Overtime labour')
    """
    if category in CATEGORY_LABELS:
        return CATEGORY_LABELS[category]
    by_column = {_column(k): v for k, v in CATEGORY_LABELS.items()}
    return by_column.get(category, category)


@dataclass(frozen=True)
class KPIReport:
    """KPIs of one plan.

    Attributes
    ----------
    headline : dict
        ``revenue``, ``cost``, ``profit`` ($), ``operating_margin`` (fraction), ``fill_rate``
        (expected demand met / expected demand), and each category's cost share
        (``share_<category>``, fraction).
    weekly : DataFrame
        Per (product, week): expected revenue, cost, profit and each cost component, $.
    composition : DataFrame
        ``category``, ``cost`` ($), ``percent`` (of total cost).
    products : DataFrame
        Per product: ``product``, ``label``, ``total_demand`` (expected units), ``demand_met``,
        ``units_produced``, ``turnover``, ``avg_unit_cost`` ($/unit), ``price``,
        ``profit_margin`` (fraction), ``revenue``, ``cost``, ``profit``.
    """

    headline: dict[str, float]
    weekly: pd.DataFrame
    composition: pd.DataFrame
    products: pd.DataFrame


def kpi_report(
    inst: AggregateInstance,
    plan: dict[str, np.ndarray],
    recourse: dict[str, np.ndarray],
    demand: np.ndarray,
    probabilities: np.ndarray,
) -> KPIReport:
    """KPIs of a plan over a set of scenarios.

    Parameters
    ----------
    inst : AggregateInstance
    plan : dict of (P, T) arrays
        First stage: ``X``, ``W``, ``H``, ``F``, ``R``, ``O``.
    recourse : dict of (S, P, T) arrays
        ``I_reg``, ``I_ovr``, ``B`` and, with lost sales, ``L``.
    demand : ndarray, shape (S, P, T)
    probabilities : ndarray, shape (S,)
    """
    pi = np.asarray(probabilities, dtype=float)
    opts = inst.options

    def expect(arr: np.ndarray) -> np.ndarray:
        return np.tensordot(pi, arr, axes=1)

    lost = recourse.get("L", np.zeros_like(demand))
    met = expect(demand - recourse["B"] - lost)  # (P, T)
    exp_demand = expect(demand)
    price = inst.price[:, None]
    components = {
        "Production": inst.production_cost * plan["X"],
        "Labor (Reg)": inst.regular_labour_cost * plan["R"],
        "Labor (OT)": inst.overtime_labour_cost * plan["O"],
        "Hiring/Firing": inst.hiring_cost * plan["H"] + inst.firing_cost * plan["F"],
        "Inventory (regular)": inst.holding_cost * expect(recourse["I_reg"]),
        "Inventory (overflow)": opts.overflow_cost_multiplier * inst.holding_cost
        * expect(recourse["I_ovr"]),
        "Backorder": inst.backorder_cost * expect(recourse["B"]),
        "Wages": opts.wage_per_worker * plan["W"],
        "Lost sales": (opts.lost_sales_penalty or 0.0) * expect(lost),
    }
    revenue = price * met
    cost = sum(components.values())
    P, T = inst.n_products, inst.n_weeks

    weekly = pd.DataFrame({
        "product": np.repeat(inst.products, T),
        "week": np.tile(inst.weeks, P),
        "revenue": revenue.ravel(),
        "cost": cost.ravel(),
        "profit": (revenue - cost).ravel(),
        "demand": exp_demand.ravel(),
        "demand_met": met.ravel(),
        "production": plan["X"].ravel(),
        **{_column(name): value.ravel() for name, value in components.items()},
    })

    totals = {name: float(value.sum()) for name, value in components.items()}
    totals["Inventory"] = totals.pop("Inventory (regular)") + totals.pop("Inventory (overflow)")
    total_cost = float(cost.sum())
    shown = [c for c in CATEGORIES if c not in ("Wages", "Lost sales")]
    if opts.wage_per_worker > 0:
        shown.append("Wages")
    if opts.lost_sales_penalty is not None:
        shown.append("Lost sales")
    composition = pd.DataFrame({
        "category": shown,
        "cost": [totals[c] for c in shown],
        "percent": [100.0 * totals[c] / total_cost if total_cost else np.nan for c in shown],
    })

    produced = plan["X"].sum(axis=1)
    product_cost = cost.sum(axis=1)
    avg_inventory = expect(recourse["I_reg"] + recourse["I_ovr"]).mean(axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        avg_unit_cost = np.where(produced > 0, product_cost / produced, np.nan)
        turnover = np.where(avg_inventory > 0, met.sum(axis=1) / avg_inventory, np.inf)
    products = pd.DataFrame({
        "product": inst.products,
        "label": inst.labels,
        "total_demand": exp_demand.sum(axis=1),
        "demand_met": met.sum(axis=1),
        "units_produced": produced,
        "turnover": turnover,
        "avg_unit_cost": avg_unit_cost,
        "price": inst.price,
        "profit_margin": (inst.price - avg_unit_cost) / inst.price,
        "revenue": revenue.sum(axis=1),
        "cost": product_cost,
        "profit": revenue.sum(axis=1) - product_cost,
    })

    total_revenue = float(revenue.sum())
    headline = {
        "revenue": total_revenue,
        "cost": total_cost,
        "profit": total_revenue - total_cost,
        "operating_margin": (
            (total_revenue - total_cost) / total_revenue if total_revenue else np.nan
        ),
        "fill_rate": fill_rate(demand, recourse["B"], recourse.get("L"), pi),
        **{f"share_{_column(c)}": (totals[c] / total_cost if total_cost else np.nan)
           for c in shown},
    }
    return KPIReport(headline=headline, weekly=weekly, composition=composition, products=products)


def fill_rate(
    demand: np.ndarray, backorders: np.ndarray, lost: np.ndarray | None, probabilities: np.ndarray
) -> float:
    """Expected demand met / expected demand, arrays shaped (S, P, T) (met = D - B - L)."""
    pi = np.asarray(probabilities, dtype=float)
    unmet = backorders + (lost if lost is not None else 0.0)
    total = float(np.tensordot(pi, demand, axes=1).sum())
    return float(np.tensordot(pi, demand - unmet, axes=1).sum()) / total if total else np.nan


def _column(name: str) -> str:
    """'Labor (Reg)' -> 'labor_reg'."""
    return "".join(ch if ch.isalnum() else "_" for ch in name.lower()).strip("_").replace("__", "_")
