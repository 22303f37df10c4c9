"""KPIs of a lot-sizing plan: profit and its parts, order fulfilment, utilisation, setups.

Pure functions: the instance, the solution as arrays (:func:`solution_arrays`) and the
scenarios' data in, numbers and tidy tables out. Expectations are probability-weighted over
the scenarios; money in $, quantities in units, time in hours.

Conventions:

- revenue = unit profit x (units delivered to orders + units sold on the open market); the
  costs are the objective's terms (setups, holding, lateness, unmet-order penalties), so
  expected profit = revenue - costs = the objective (maximised).
- fill rate = expected units delivered / expected units ordered (by order, customer, tier or
  over all orders); on-time rate = expected units delivered in the order's own week / expected
  units ordered (so on-time <= fill); an order never placed (expected quantity 0) has NaN rates.
- by week: revenue and lateness where the units are delivered, unmet penalties in the order's
  due week, setups and holding in their week.
- machine utilisation = (production hours + setup hours) / available hours, per machine and
  week, and over all machines and weeks in the headline (hours add up across machines);
  material utilisation = material used / available per material and week, and in the
  headline the mean of those ratios (materials come in different units).
- average batch size = expected units produced / number of setups.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stochplan.errors import InputError
from stochplan.models.lotsizing.data import TIERS, LotSizingInstance

__all__ = [
    "KPIReport",
    "fill_rates",
    "kpi_report",
    "recourse_arrays",
    "solution_arrays",
]


@dataclass(frozen=True)
class KPIReport:
    """KPIs of one plan.

    Attributes
    ----------
    headline : dict
        ``expected_profit``, ``revenue``, ``order_revenue``, ``market_revenue``, ``setup_cost``,
        ``holding_cost``, ``lateness_cost``, ``unmet_penalty_cost`` ($); ``fill_rate``,
        ``on_time_rate`` and ``<tier>_fill_rate`` per tier with orders (fractions);
        ``setups`` (count), ``avg_batch_size``, ``expected_production``, ``avg_inventory``
        (units); ``machine_utilisation_rate``, ``material_utilisation_rate`` (fractions).
    tables : dict of DataFrame
        ``schedule`` (product, week: setup, production, inventory, market sales and demand,
        deliveries), ``orders``, ``customers``, ``tiers`` (fulfilment), ``machines`` and
        ``materials`` (per week) and ``weekly`` (profit and its parts).
    """

    headline: dict[str, float]
    tables: dict[str, pd.DataFrame]


# ----------------------------------------------------------------------------------------------
# The solution as arrays


def _positions(labels: Sequence[object], column: pd.Series, what: str) -> np.ndarray:
    lookup = {str(x): i for i, x in enumerate(labels)}
    pos = column.astype(str).map(lookup)
    if pos.isna().any():
        bad = column[pos.isna()].iloc[0]
        raise InputError(what, bad, f"not one of the instance's {what}s")
    return pos.to_numpy(dtype=int)


def recourse_arrays(inst: LotSizingInstance, recourse: pd.DataFrame,
                    scenario_names: Sequence[str]) -> dict[str, np.ndarray]:
    """The recourse table (``scenario``, ``variable``, ``product``, ``week``, ``value``) as
    arrays: ``x``, ``I``, ``S`` (S, P, T) when present, ``V`` (S, O, T) and ``n`` (S, O).

    Order variables carry the order id in the ``product`` column (see :mod:`.model`).
    """
    S, P, T, NO = len(scenario_names), inst.n_products, inst.n_weeks, inst.n_orders
    out: dict[str, np.ndarray] = {"V": np.zeros((S, NO, T)), "n": np.zeros((S, NO))}
    for name in ("x", "I", "S"):
        out[name] = np.zeros((S, P, T))
    present = set()
    for var, rows in recourse.groupby("variable", sort=False):
        var = str(var)
        if var not in out:
            continue
        present.add(var)
        s = _positions(scenario_names, rows["scenario"], "scenario")
        t = _positions(inst.weeks, rows["week"], "week")
        values = rows["value"].to_numpy(float)
        if var in ("V", "n"):
            o = _positions(inst.orders, rows["product"], "order")
            if var == "V":
                out["V"][s, o, t] = values
            else:
                out["n"][s, o] = values
        else:
            p = _positions(inst.products, rows["product"], "product")
            out[var][s, p, t] = values
    if "x" not in present:
        del out["x"]
    return {k: _clean(v) for k, v in out.items()}


def _clean(a: np.ndarray) -> np.ndarray:
    """Solver noise below 1e-9 in absolute value (``-1e-13`` units) as exact zeros."""
    return np.where(np.abs(a) < 1e-9, 0.0, a)


def solution_arrays(inst: LotSizingInstance, plan: pd.DataFrame, recourse: pd.DataFrame,
                    scenario_names: Sequence[str]) -> dict[str, np.ndarray]:
    """Plan and recourse as arrays: ``y`` (P, T), ``x``, ``I``, ``S`` (S, P, T), ``V``
    (S, O, T), ``n`` (S, O). With first-stage production, ``x`` is the plan's, repeated per
    scenario."""
    P, T = inst.n_products, inst.n_weeks
    out = recourse_arrays(inst, recourse, scenario_names)
    first = {}
    for var, rows in plan.groupby("variable", sort=False):
        grid = np.zeros((P, T))
        p = _positions(inst.products, rows["product"], "product")
        t = _positions(inst.weeks, rows["week"], "week")
        grid[p, t] = rows["value"].to_numpy(float)
        first[str(var)] = grid
    if "y" not in first:
        raise InputError("plan", sorted(first), "has no setup plan y")
    out["y"] = _clean(first["y"])
    if "x" in first:
        out["x"] = np.broadcast_to(_clean(first["x"]), (len(scenario_names), P, T)).copy()
    elif "x" not in out:
        raise InputError("recourse", "x", "production is in neither the plan nor the recourse")
    return out


# ----------------------------------------------------------------------------------------------
# KPIs


def fill_rates(inst: LotSizingInstance, V: np.ndarray, q: np.ndarray,
               probabilities: np.ndarray) -> dict[str, float]:
    """``fill_rate`` and ``on_time_rate`` over all orders, from deliveries V (S, O, T) and
    order quantities q (S, O)."""
    pi = np.asarray(probabilities, dtype=float)
    ordered = float(pi @ q.sum(axis=1))
    delivered = float(pi @ V.sum(axis=(1, 2)))
    due = inst.order_week - 1
    on_time = float(pi @ V[:, np.arange(inst.n_orders), due].sum(axis=1))
    return {"fill_rate": delivered / ordered if ordered else np.nan,
            "on_time_rate": on_time / ordered if ordered else np.nan}


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def kpi_report(inst: LotSizingInstance, arrays: dict[str, np.ndarray], data: np.ndarray,
               probabilities: np.ndarray) -> KPIReport:
    """KPIs of a solution over its scenarios.

    Parameters
    ----------
    inst : LotSizingInstance
    arrays : dict of ndarray
        :func:`solution_arrays`.
    data : ndarray, shape (S, O + P*T)
        The scenarios' random data (order quantities, then market demand).
    probabilities : ndarray, shape (S,)
    """
    pi = np.asarray(probabilities, dtype=float)
    data = np.asarray(data, dtype=float)
    S, P, T, NO = len(pi), inst.n_products, inst.n_weeks, inst.n_orders
    q = data[:, :NO]
    D = data[:, NO:].reshape(S, P, T)

    def expect(a: np.ndarray) -> np.ndarray:
        return np.tensordot(pi, a, axes=1)

    y = arrays["y"]
    x, inv, sold = expect(arrays["x"]), expect(arrays["I"]), expect(arrays["S"])
    V, n = expect(arrays["V"]), expect(arrays["n"])  # (O, T), (O,)
    Eq, ED = expect(q), expect(D)
    op = inst.order_product
    unit = inst.profit[op]  # (O,)
    due = inst.order_week - 1  # positions
    weeks = np.arange(T)
    late_weeks = np.maximum(weeks[None, :] - due[:, None], 0)  # (O, T)

    # money, by week
    order_rev = unit[:, None] * V  # (O, T)
    market_rev = inst.profit[:, None] * sold  # (P, T)
    setup = inst.product_setup_cost[:, None] * y  # (P, T)
    holding = inst.holding_cost[:, None] * inv
    lateness = inst.options.late_cost_fraction * unit[:, None] * late_weeks * V
    unmet = inst.order_penalty * n  # (O,)
    unmet_week = np.zeros(T)
    np.add.at(unmet_week, due, unmet)
    weekly = pd.DataFrame({
        "week": np.array(inst.weeks, dtype="int64"),
        "order_revenue": order_rev.sum(axis=0),
        "market_revenue": market_rev.sum(axis=0),
        "revenue": order_rev.sum(axis=0) + market_rev.sum(axis=0),
        "setup_cost": setup.sum(axis=0),
        "holding_cost": holding.sum(axis=0),
        "lateness_cost": lateness.sum(axis=0),
        "unmet_penalty_cost": unmet_week,
    })
    weekly["profit"] = weekly["revenue"] - weekly[
        ["setup_cost", "holding_cost", "lateness_cost", "unmet_penalty_cost"]].sum(axis=1)

    # the schedule
    shipped = np.zeros((P, T))
    np.add.at(shipped, op, V)
    schedule = pd.DataFrame({
        "product": np.repeat(np.array(inst.products, dtype=object), T),
        "week": np.tile(np.array(inst.weeks, dtype="int64"), P),
        "setup": y.ravel(),
        "production": x.ravel(),
        "inventory": inv.ravel(),
        "deliveries": shipped.ravel(),
        "market_sales": sold.ravel(),
        "market_demand": ED.ravel(),
        "setup_cost": setup.ravel(),
    })

    # orders, customers, tiers
    delivered = V.sum(axis=1)
    on_time = V[np.arange(NO), due] if NO else np.zeros(0)
    late = delivered - on_time
    tiers = inst.order_tier
    orders = pd.DataFrame({
        "order": list(inst.orders),
        "customer": [inst.customers[c] for c in inst.order_customer],
        "tier": list(tiers),
        "product": [inst.products[p] for p in op],
        "week": inst.order_week.astype("int64"),
        "target": inst.order_target,
        "quantity": Eq,
        "delivered": delivered,
        "on_time": on_time,
        "late": late,
        "unmet": n,
        "fill_rate": _ratio(delivered, Eq),
        "on_time_rate": _ratio(on_time, Eq),
        "avg_weeks_late": _ratio((late_weeks * V).sum(axis=1), delivered),
        "lateness_cost": lateness.sum(axis=1),
        "unmet_penalty_cost": unmet,
    })
    sums = ["quantity", "delivered", "on_time", "late", "unmet", "lateness_cost",
            "unmet_penalty_cost"]
    by_customer = orders.groupby("customer", sort=False)[sums].sum()
    customers = pd.DataFrame({
        "customer": list(inst.customers),
        "tier": list(inst.customer_tier),
        "orders": [int((inst.order_customer == c).sum()) for c in range(len(inst.customers))],
    })
    customers = customers.join(by_customer, on="customer").fillna(
        {c: 0.0 for c in sums})
    customers["fill_rate"] = _ratio(customers["delivered"].to_numpy(float),
                                    customers["quantity"].to_numpy(float))
    customers["on_time_rate"] = _ratio(customers["on_time"].to_numpy(float),
                                       customers["quantity"].to_numpy(float))
    present = [t for t in TIERS if t in tiers]
    by_tier = orders.groupby("tier")[sums].sum().reindex(present)
    tier_table = pd.DataFrame({"tier": present,
                               "orders": [int(sum(1 for t in tiers if t == x)) for x in present]})
    tier_table = tier_table.join(by_tier, on="tier")
    tier_table["fill_rate"] = _ratio(tier_table["delivered"].to_numpy(float),
                                     tier_table["quantity"].to_numpy(float))
    tier_table["on_time_rate"] = _ratio(tier_table["on_time"].to_numpy(float),
                                        tier_table["quantity"].to_numpy(float))

    # machines and materials
    prod_hours = np.einsum("pm,pt->mt", inst.hours, x)
    setup_hours = np.einsum("pm,pt->mt", inst.setup_hours, y)
    cap = inst.machine_capacity[:, None] * np.ones((1, T))
    M, K = len(inst.machines), len(inst.materials)
    machines = pd.DataFrame({
        "machine": np.repeat(np.array(inst.machines, dtype=object), T),
        "week": np.tile(np.array(inst.weeks, dtype="int64"), M),
        "capacity": cap.ravel(),
        "production_hours": prod_hours.ravel(),
        "setup_hours": setup_hours.ravel(),
        "utilisation": _ratio(prod_hours + setup_hours, cap).ravel(),
    })
    used = np.einsum("pk,pt->kt", inst.material_use, x)
    avail = inst.material_available[:, None] * np.ones((1, T))
    materials = pd.DataFrame({
        "material": np.repeat(np.array(inst.materials, dtype=object), T),
        "week": np.tile(np.array(inst.weeks, dtype="int64"), K),
        "available": avail.ravel(),
        "used": used.ravel(),
        "utilisation": _ratio(used, avail).ravel(),
    })

    n_setups = float(y.sum())
    produced = float(x.sum())
    revenue = float(weekly["revenue"].sum())
    costs = {c: float(weekly[c].sum()) for c in ("setup_cost", "holding_cost", "lateness_cost",
                                                  "unmet_penalty_cost")}
    headline = {
        "expected_profit": revenue - sum(costs.values()),
        "revenue": revenue,
        "order_revenue": float(order_rev.sum()),
        "market_revenue": float(market_rev.sum()),
        **costs,
        **fill_rates(inst, arrays["V"], q, pi),
        **{f"{t.lower()}_fill_rate": float(r) for t, r in
           zip(tier_table["tier"], tier_table["fill_rate"])},
        "setups": n_setups,
        "avg_batch_size": produced / n_setups if n_setups else np.nan,
        "expected_production": produced,
        "avg_inventory": float(inv.sum(axis=0).mean()),
        "machine_utilisation_rate": float((prod_hours + setup_hours).sum() / cap.sum()),
        "material_utilisation_rate": float(np.nanmean(_ratio(used, avail))) if K else np.nan,
    }
    return KPIReport(headline, {
        "schedule": schedule,
        "orders": orders,
        "customers": customers,
        "tiers": tier_table,
        "machines": machines,
        "materials": materials,
        "weekly": weekly,
    })
