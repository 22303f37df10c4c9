"""KPIs of a pre-build plan and the seed's recommended build-plan table.

All functions are pure: they take the instance, the first-stage plan and each scenario's
recourse as arrays and return numbers and tables. Expectations are probability-weighted over
the scenarios; money in $, quantities in units.

Conventions:

- costs are the objective's terms, month by month: production ``c_P P``, storage ``h I``,
  overflow ``c_O O``, expedite ``c_X X`` and lost sales ``c_L L``; the expected total is the
  objective.
- fill rate = demand met / demand over the whole horizon (met = D - L; first-stage demand is
  always met), per scenario, and expected demand met / expected demand overall.
- warehouse utilisation = inventory / physical capacity W_phys (the threshold then reads
  87 %); the notebook's own WAREHOUSE_UTILIZATION_PCT divided by the 87 % level W_safe instead
  and is kept as ``threshold_utilisation_pct`` (100 % = at the threshold).
- a month is at or above the threshold when its inventory is at least W_safe (within 1e-6 x
  W_safe, the solver's tolerance).
- the Q3 build is first-stage production minus first-stage demand, I[T1] - I[0] units.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

import numpy as np
import pandas as pd

from stochplan.family import KPIs
from stochplan.models.prebuild.data import PrebuildInstance

#: Cost parts: (name of the KPI and table column, variable, coefficient attribute).
COST_PARTS = (
    ("production_cost", "P", "production_cost"),
    ("storage_cost", "I", "storage_cost"),
    ("overflow_cost", "O", "overflow_penalty"),
    ("expedite_cost", "X", "expedite_cost"),
    ("lost_sales_cost", "L", "lost_sales_penalty"),
)
#: Variables of the trajectories, each (S, T).
VARIABLES = ("P", "I", "O", "X", "L")


@dataclass(frozen=True)
class Trajectories:
    """Every variable and the demand per scenario and month, each (S, T) units."""

    values: dict[str, np.ndarray]
    demand: np.ndarray

    def __getitem__(self, var: str) -> np.ndarray:
        return self.values[var]


def trajectories(inst: PrebuildInstance, plan: dict[str, np.ndarray],
                 recourse: dict[str, np.ndarray], demand: np.ndarray) -> Trajectories:
    """Join the first-stage plan (arrays over all T months, first-stage months filled) and
    the recourse ((S, T) arrays, second-stage months filled) into (S, T) trajectories.

    ``demand`` is the scenarios' second-stage demand, (S, T - T1).
    """
    demand = np.atleast_2d(np.asarray(demand, dtype=float))
    S, T, n1 = demand.shape[0], len(inst.periods), inst.first_stage_months
    out = {}
    for var in VARIABLES:
        full = np.array(recourse.get(var, np.zeros((S, T))), dtype=float).reshape(S, T)
        if var in plan:
            full[:, :n1] = np.asarray(plan[var], dtype=float)[:n1]
        out[var] = full
    return Trajectories(out, inst.demand_path(demand))


def model_version(inst: PrebuildInstance) -> str:
    """``stochplan <version> prebuild two-stage`` (or ``deterministic <scenario>``)."""
    try:
        version = metadata.version("stochplan")
    except metadata.PackageNotFoundError:
        version = "unknown"
    mode = (f"deterministic {inst.options.deterministic}" if inst.deterministic
            else "two-stage")
    return f"stochplan {version} prebuild {mode}"


def cost_parts(inst: PrebuildInstance, traj: Trajectories) -> dict[str, np.ndarray]:
    """Each cost part per scenario and month, (S, T) $."""
    p = inst.params
    return {name: getattr(p, coef) * traj[var] for name, var, coef in COST_PARTS}


def build_plan(inst: PrebuildInstance, traj: Trajectories, names: tuple[str, ...],
               labels: tuple[str, ...], probabilities: np.ndarray) -> pd.DataFrame:
    """The seed's RECOMMENDED_BUILD_PLAN, one row per scenario and month.

    Columns: ``scenario``, ``label``, ``probability``, ``period`` (t), ``fiscal_month``,
    ``fiscal_quarter``, ``stage`` (first/second), ``demand``, ``recommended_quantity`` (P),
    ``expedited_quantity`` (X), ``lost_sales`` (L), ``capacity_available`` (C),
    ``capacity_utilisation_pct`` (100 P / C), ``projected_inventory`` (I), ``overflow_units``
    (O), ``warehouse_utilisation_pct`` (100 I / W_phys), ``threshold_utilisation_pct``
    (100 I / W_safe, the notebook's figure), the cost parts, ``total_cost`` and
    ``model_version``. First-stage rows are the same in every scenario. Quantities are the
    solver's (not truncated to whole units as the notebook's table is).
    """
    S, T = traj.demand.shape
    costs = cost_parts(inst, traj)
    C, W, Ws = float(inst.capacity), inst.physical_capacity, inst.safe_capacity
    n1 = inst.first_stage_months

    def per_cell(a: np.ndarray) -> np.ndarray:
        return np.asarray(a, dtype=float).reshape(S * T)

    table = pd.DataFrame({
        "scenario": np.repeat(np.array(names, dtype=object), T),
        "label": np.repeat(np.array(labels, dtype=object), T),
        "probability": np.repeat(np.asarray(probabilities, dtype=float), T),
        "period": np.tile(np.array(inst.periods, dtype="int64"), S),
        "fiscal_month": np.tile(np.array(inst.months, dtype=object), S),
        "fiscal_quarter": np.tile(np.array(inst.quarters, dtype=object), S),
        "stage": np.tile(np.array(["first"] * n1 + ["second"] * (T - n1), dtype=object), S),
        "demand": per_cell(traj.demand),
        "recommended_quantity": per_cell(traj["P"]),
        "expedited_quantity": per_cell(traj["X"]),
        "lost_sales": per_cell(traj["L"]),
        "capacity_available": C,
        "capacity_utilisation_pct": per_cell(100.0 * traj["P"] / C if C > 0 else 0 * traj["P"]),
        "projected_inventory": per_cell(traj["I"]),
        "overflow_units": per_cell(traj["O"]),
        "warehouse_utilisation_pct": per_cell(100.0 * traj["I"] / W),
        "threshold_utilisation_pct": per_cell(100.0 * traj["I"] / Ws if Ws > 0
                                              else 0 * traj["I"]),
        **{name: per_cell(values) for name, values in costs.items()},
        "total_cost": per_cell(np.sum(list(costs.values()), axis=0)),
        "model_version": model_version(inst),
    })
    return table


def at_threshold(inst: PrebuildInstance, inventory: np.ndarray) -> np.ndarray:
    """Whether each inventory is at or above the threshold W_safe (within 1e-6 x W_safe)."""
    Ws = inst.safe_capacity
    return np.asarray(inventory) >= Ws - 1e-6 * max(1.0, Ws)


def scenario_table(inst: PrebuildInstance, traj: Trajectories, names: tuple[str, ...],
                   labels: tuple[str, ...], probabilities: np.ndarray) -> pd.DataFrame:
    """One row per scenario: its costs, fill rate, peak inventory and warehouse utilisation,
    months at or above the threshold, units expedited and lost."""
    costs = {k: v.sum(axis=1) for k, v in cost_parts(inst, traj).items()}
    demand = traj.demand.sum(axis=1)
    lost = traj["L"].sum(axis=1)
    peak = traj["I"].max(axis=1)
    return pd.DataFrame({
        "scenario": list(names),
        "label": list(labels),
        "probability": np.asarray(probabilities, dtype=float),
        "total_cost": sum(costs.values()),
        **costs,
        "demand": demand,
        "lost_sales": lost,
        "expedited": traj["X"].sum(axis=1),
        "fill_rate": np.where(demand > 0, (demand - lost) / np.maximum(demand, 1e-300), 1.0),
        "peak_inventory": peak,
        "peak_warehouse_pct": 100.0 * peak / inst.physical_capacity,
        "months_at_threshold": at_threshold(inst, traj["I"]).sum(axis=1).astype("int64"),
    })


def kpi_report(inst: PrebuildInstance, traj: Trajectories, names: tuple[str, ...],
               labels: tuple[str, ...], probabilities: np.ndarray) -> KPIs:
    """Headline KPIs and the tables ``build_plan`` and ``scenario_kpis``.

    Headline: ``expected_cost`` and its parts (``production_cost``, ``storage_cost``,
    ``overflow_cost``, ``expedite_cost``, ``lost_sales_cost``), ``fill_rate`` (expected demand
    met / expected demand) and ``worst_scenario_fill_rate``, ``expected_peak_inventory`` and
    ``worst_peak_inventory`` (units), ``expected_peak_warehouse_pct`` and
    ``worst_peak_warehouse_pct`` (% of W_phys), ``expected_months_at_threshold`` and
    ``worst_months_at_threshold``, ``q3_production`` and ``q3_build`` (units),
    ``expected_expedited`` and ``expected_lost_sales`` (units).
    """
    p = np.asarray(probabilities, dtype=float)
    per = scenario_table(inst, traj, names, labels, p)
    n1 = inst.first_stage_months
    q3_production = float(traj["P"][0, :n1].sum())
    headline = {
        "expected_cost": float(p @ per["total_cost"].to_numpy()),
        **{name: float(p @ per[name].to_numpy()) for name, _, _ in COST_PARTS},
        "fill_rate": float(1.0 - (p @ per["lost_sales"].to_numpy())
                           / max(float(p @ per["demand"].to_numpy()), 1e-300)),
        "worst_scenario_fill_rate": float(per["fill_rate"].min()),
        "expected_peak_inventory": float(p @ per["peak_inventory"].to_numpy()),
        "worst_peak_inventory": float(per["peak_inventory"].max()),
        "expected_peak_warehouse_pct": float(p @ per["peak_warehouse_pct"].to_numpy()),
        "worst_peak_warehouse_pct": float(per["peak_warehouse_pct"].max()),
        "expected_months_at_threshold": float(p @ per["months_at_threshold"].to_numpy()),
        "worst_months_at_threshold": float(per["months_at_threshold"].max()),
        "q3_production": q3_production,
        "q3_build": q3_production - float(inst.first_stage_demand.sum()),
        "expected_expedited": float(p @ per["expedited"].to_numpy()),
        "expected_lost_sales": float(p @ per["lost_sales"].to_numpy()),
    }
    plan = build_plan(inst, traj, names, labels, p)
    return KPIs(headline, {"build_plan": plan, "scenario_kpis": per})


def fill_rate(demand: np.ndarray, lost: np.ndarray, probabilities: np.ndarray) -> float:
    """Expected demand met / expected demand; ``demand`` and ``lost`` are (S, T) units."""
    p = np.asarray(probabilities, dtype=float)
    total = float(p @ np.asarray(demand).sum(axis=1))
    return 1.0 - float(p @ np.asarray(lost).sum(axis=1)) / max(total, 1e-300)
