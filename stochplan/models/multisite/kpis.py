"""KPIs of a multi-site plan: profit and its parts per site, fill rates, utilisation, VSS.

Pure numbers from the instance, the solution (plan and recourse tables) and the scenarios'
data; expectations are probability-weighted over the scenarios. Money in $, quantities in
units per week, time in hours.

Conventions:

- revenue = price x expected sales; raw-material cost = raw material x its cost x volume;
  machine cost = minutes / 60 x cost per hour x volume, per machine; salvage = salvage
  fraction x unit cost x expected leftover; goodwill cost = goodwill fraction x price x
  expected lost demand. Expected profit = revenue + salvage - raw-material cost - machine cost
  - goodwill cost = the objective (maximised).
- fill rate = expected sales / expected demand (per product and site, per site, overall);
  NaN where nothing is demanded.
- machine utilisation = hours used / weekly hours (per site and machine; headline: over all
  sites and machines); raw-material utilisation = used / (inventory + allocation from the
  shared pool, if any) (per site; headline: total).
- deterministic profit of a site: the expected profit over the same scenarios of the plan of
  the mean-value problem (demand at its mean; :func:`mean_value_plan`), i.e. the site's EEV;
  its VSS = stochastic expected profit - deterministic expected profit (>= 0 up to the MIP gap).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stochplan.errors import InputError
from stochplan.models.multisite.data import MultisiteInstance

__all__ = ["KPIReport", "evaluate_plan", "kpi_report", "mean_value_plan", "result_table"]


@dataclass(frozen=True)
class KPIReport:
    """Headline numbers and the tables ``sites``, ``products`` and ``machines``."""

    headline: dict[str, float]
    tables: dict[str, pd.DataFrame]


def _positions(labels: tuple[str, ...], column: pd.Series) -> np.ndarray:
    """The position of each value of ``column`` among ``labels`` (-1: not there); values that
    are not strings are matched by their text."""
    pos = pd.Index(list(labels)).get_indexer(column)
    if (pos < 0).any():
        pos = pd.Index(list(labels)).get_indexer(column.astype(str))
    return np.asarray(pos)


def _grid(inst: MultisiteInstance, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    n = _positions(inst.sites, rows["site"])
    p = _positions(inst.products, rows["product"])
    if (n < 0).any() or (p < 0).any():
        bad = rows[(n < 0) | (p < 0)].iloc[0]
        raise InputError("site, product", (bad["site"], bad["product"]),
                         "not a site and product of the instance")
    return n, p


def plan_grid(inst: MultisiteInstance, plan: pd.DataFrame) -> np.ndarray:
    """Volume x (N, P) from the plan table (absent pairs 0)."""
    x = np.zeros(inst.offered.shape)
    rows = plan[plan["variable"] == "x"]
    if len(rows):
        n, p = _grid(inst, rows)
        x[n, p] = rows["value"].to_numpy(float)
    return x


def evaluate_plan(inst: MultisiteInstance, x: np.ndarray,
                  demand: np.ndarray) -> dict[str, np.ndarray]:
    """The optimal recourse of a fixed plan in each scenario, in closed form: sales
    S = min(x, d), leftover L = x - S, lost U = d - S; each (S, N, P)."""
    d = np.where(inst.offered, demand, 0.0)
    S = np.minimum(x[None], d)
    return {"S": S, "L": x[None] - S, "U": d - S}


def mean_value_plan(inst: MultisiteInstance, mean: np.ndarray) -> np.ndarray:
    """The plan of the mean-value problem (demand fixed at ``mean``), site by site, solved
    with HiGHS through scipy's ``milp`` (exactly, ``mip_rel_gap = 0``); (N, P)."""
    from scipy.optimize import Bounds, LinearConstraint, milp

    c = inst.unit_cost
    sf, gw = inst.options.salvage_fraction, inst.options.goodwill_fraction
    x = np.zeros(inst.offered.shape)
    for n in range(inst.n_sites):
        idx = np.nonzero(inst.offered[n])[0]
        k = len(idx)
        if k == 0:
            continue
        price, cost = inst.price[n, idx], c[n, idx]
        # columns [x (k), S (k)]; profit = (price + gw price - sf c) S + (sf c - c) x + const
        obj = -np.concatenate([(sf - 1.0) * cost, price * (1.0 + gw) - sf * cost])
        mach = inst.minutes[n][idx][:, inst.has_machine[n]].T / 60.0  # (machines, k)
        A = np.zeros((k + len(mach) + 1, 2 * k))  # S - x <= 0, machine hours, raw material
        A[np.arange(k), np.arange(k)] = -1.0
        A[np.arange(k), k + np.arange(k)] = 1.0
        A[k:k + len(mach), :k] = mach
        A[-1, :k] = inst.raw_material[n, idx]
        ub = [np.zeros(k), inst.weekly_hours[n, inst.has_machine[n]],
              np.array([inst.inventory[n]])]
        integrality = np.concatenate([np.full(k, 1 if inst.options.integer else 0),
                                      np.zeros(k)])
        res = milp(obj, constraints=LinearConstraint(A, -np.inf, np.concatenate(ub)),
                   bounds=Bounds(np.concatenate([inst.min_demand[n, idx], np.zeros(k)]),
                                 np.concatenate([inst.max_demand[n, idx], mean[n, idx]])),
                   integrality=integrality, options={"mip_rel_gap": 0.0})
        if res.x is None:
            x[n, idx] = np.nan
            continue
        x[n, idx] = np.round(res.x[:k]) if inst.options.integer else res.x[:k]
    return x


def _profit_parts(inst: MultisiteInstance, x: np.ndarray, S: np.ndarray, L: np.ndarray,
                  U: np.ndarray) -> dict[str, np.ndarray]:
    """Money per (site, product), expected values given E[S], E[L], E[U] (N, P) each."""
    sf, gw = inst.options.salvage_fraction, inst.options.goodwill_fraction
    raw = inst.raw_material * inst.raw_material_cost * x
    machine = inst.machine_cost.sum(axis=2) * x
    revenue = inst.price * S
    salvage = sf * inst.unit_cost * L
    goodwill = gw * inst.price * U
    return {"revenue": revenue, "raw_material_cost": raw, "machine_cost": machine,
            "salvage": salvage, "goodwill_cost": goodwill,
            "profit": revenue + salvage - raw - machine - goodwill}


def _ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, float), np.asarray(b, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(b > 0, a / np.where(b > 0, b, 1.0), np.nan)


def kpi_report(inst: MultisiteInstance, plan: pd.DataFrame, recourse: pd.DataFrame,
               scenario_names: Sequence[str], data: np.ndarray,
               probabilities: np.ndarray) -> KPIReport:
    """KPIs of a solution over its scenarios (``data`` (S, N, P) demand)."""
    pi = np.asarray(probabilities, dtype=float)
    demand = np.asarray(data, dtype=float).reshape((len(pi), *inst.offered.shape))
    x = plan_grid(inst, plan)
    E = {v: np.zeros(inst.offered.shape) for v in ("S", "L", "U")}
    variable = _positions(tuple(E), recourse["variable"])
    known = variable >= 0
    rows = recourse[known] if not known.all() else recourse
    variable = variable[known]
    n, p = _grid(inst, rows)
    s = _positions(tuple(str(name) for name in scenario_names), rows["scenario"])
    if (s < 0).any():
        raise InputError("recourse.scenario", rows["scenario"].iloc[int(np.argmax(s < 0))],
                         "not a scenario of the solution")
    weighted = pi[s] * rows["value"].to_numpy(float)
    cells = inst.offered.size
    flat = (variable * inst.n_sites + n) * inst.offered.shape[1] + p
    sums = np.asarray(np.bincount(flat, weights=weighted, minlength=3 * cells), dtype=float)
    for j, v in enumerate(E):
        E[v] = sums[j * cells:(j + 1) * cells].reshape(inst.offered.shape)
    Ed = np.tensordot(pi, np.where(inst.offered, demand, 0.0), axes=1)
    money = _profit_parts(inst, x, E["S"], E["L"], E["U"])

    # the deterministic (mean-value) plan over the same scenarios
    x_ev = mean_value_plan(inst, Ed)
    ev_rec = evaluate_plan(inst, np.nan_to_num(x_ev), demand)
    ev_money = _profit_parts(inst, np.nan_to_num(x_ev),
                             *(np.tensordot(pi, ev_rec[v], axes=1) for v in ("S", "L", "U")))
    det_profit = np.where(np.isnan(x_ev).any(axis=1), np.nan, ev_money["profit"].sum(axis=1))

    n_idx, p_idx = np.nonzero(inst.offered)
    site_arr = np.array(inst.sites, dtype=object)
    prod_arr = np.array(inst.products, dtype=object)
    products = pd.DataFrame({
        "site": site_arr[n_idx], "product": prod_arr[p_idx],
        "product_group": inst.group[n_idx, p_idx].astype(str),
        "volume": x[n_idx, p_idx], "deterministic_volume": x_ev[n_idx, p_idx],
        "expected_demand": Ed[n_idx, p_idx], "expected_sales": E["S"][n_idx, p_idx],
        "expected_leftover": E["L"][n_idx, p_idx], "expected_lost": E["U"][n_idx, p_idx],
        "fill_rate": _ratio(E["S"], Ed)[n_idx, p_idx],
        **{k: v[n_idx, p_idx] for k, v in money.items()},
    })

    hours = np.einsum("npm,np->nm", inst.minutes / 60.0, x)
    mcost = inst.machine_cost * x[:, :, None]  # (N, P, M)
    a, b = np.nonzero(inst.has_machine)
    machines = pd.DataFrame({
        "site": site_arr[a], "machine": np.array(inst.machines, dtype=object)[b],
        "hours_used": hours[a, b], "weekly_hours": inst.weekly_hours[a, b],
        "utilisation": _ratio(hours, inst.weekly_hours)[a, b],
        "machine_cost": mcost.sum(axis=1)[a, b],
    })

    raw_used = (inst.raw_material * x).sum(axis=1)
    alloc = np.zeros(inst.n_sites)  # raw material from the shared pool, when there is one
    rows = plan[plan["variable"] == "A"]
    if len(rows):
        pos = {s: i for i, s in enumerate(inst.sites)}
        alloc[rows["site"].astype(str).map(pos).to_numpy(int)] = rows["value"].to_numpy(float)
    available = inst.inventory + alloc
    site_money = {k: v.sum(axis=1) for k, v in money.items()}
    sites = pd.DataFrame({
        "site": list(inst.sites),
        "expected_profit": site_money["profit"],
        "deterministic_profit": det_profit,
        "vss": site_money["profit"] - det_profit,
        **{k: site_money[k] for k in ("revenue", "raw_material_cost", "machine_cost",
                                      "salvage", "goodwill_cost")},
        "volume": x.sum(axis=1),
        "expected_demand": Ed.sum(axis=1),
        "expected_sales": E["S"].sum(axis=1),
        "fill_rate": _ratio(E["S"].sum(axis=1), Ed.sum(axis=1)),
        "raw_material_used": raw_used,
        "raw_material_inventory": inst.inventory,
        "pool_allocation": alloc,
        "raw_material_utilisation": _ratio(raw_used, available),
        "machine_utilisation": _ratio((hours * inst.has_machine).sum(axis=1),
                                      (inst.weekly_hours * inst.has_machine).sum(axis=1)),
    })
    total = {k: float(v.sum()) for k, v in site_money.items()}
    headline = {
        "expected_profit": total["profit"],
        "revenue": total["revenue"],
        "raw_material_cost": total["raw_material_cost"],
        "machine_cost": total["machine_cost"],
        **{f"machine_cost_{m}": float(mcost[:, :, j].sum())
           for j, m in enumerate(inst.machines)},
        "salvage": total["salvage"],
        "goodwill_cost": total["goodwill_cost"],
        "deterministic_profit": float(np.nansum(det_profit)),
        "vss": total["profit"] - float(np.nansum(det_profit)),
        "volume": float(x.sum()),
        "expected_sales": float(E["S"].sum()),
        "expected_leftover": float(E["L"].sum()),
        "expected_lost": float(E["U"].sum()),
        "fill_rate": float(_ratio(E["S"].sum(), Ed.sum())),
        "machine_utilisation_rate": float(_ratio((hours * inst.has_machine).sum(),
                                                 (inst.weekly_hours * inst.has_machine).sum())),
        "raw_material_utilisation_rate": float(_ratio(raw_used.sum(), available.sum())),
        "pool_allocated": float(alloc.sum()),
        "sites": float(inst.n_sites),
    }
    return KPIReport(headline, {"sites": sites, "products": products, "machines": machines})


def result_table(tables: Mapping[str, pd.DataFrame], status: str | Mapping[str, str],
                 run_id: int | None) -> pd.DataFrame:
    """``ResultData`` rows: site, status, site_profit (expected, $), product, volume, then
    expected_sales, expected_leftover, fill_rate and run_id. ``status`` is one status for
    every site or one per site."""
    products = tables["products"]
    profit = tables["sites"].set_index("site")["expected_profit"]
    site = products["site"].astype(str)
    if isinstance(status, str):
        st = pd.Series(status, index=products.index)
    else:
        st = site.map(dict(status)).fillna("optimal")
    return pd.DataFrame({
        "site": site, "status": st.astype(str),
        "site_profit": site.map(profit).to_numpy(float),
        "product": products["product"].astype(str),
        "volume": products["volume"].to_numpy(float),
        "expected_sales": products["expected_sales"].to_numpy(float),
        "expected_leftover": products["expected_leftover"].to_numpy(float),
        "fill_rate": products["fill_rate"].to_numpy(float),
        "run_id": pd.array([run_id] * len(products), dtype="Int64"),
    })
