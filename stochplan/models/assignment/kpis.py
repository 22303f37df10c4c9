"""KPIs of an assignment plan: profit and its parts, acceptance, reassignment, volumes.

Pure functions: the instance, the solution as arrays (:func:`solution_arrays`) and the
scenarios' acceptances in, numbers and tidy tables out. Expectations are probability-weighted
over the scenarios; money and volumes in $ (order value), distances in map units = $.

Conventions:

- shipped (i, j) = a[i,j] + q[i,j] z[i,j]: the accepted offer plus the reassignment, the
  latter weighted by its acceptance probability q (1, or the rate with
  ``reassignment = "rate"``);
- net benefit = sum shipped x (value - distance) - reassignment cost x reassignments (the
  profit before the gap penalty); expected profit = net benefit - gap penalty = the objective;
- transport = sum shipped x distance; shipped value = sum shipped x value;
- acceptance rate = expected accepted offers / offers made (first round); shipped share =
  expected orders shipped / assignable orders;
- a producer's volume after the day = current volume + value shipped to it; its open gap =
  max(0, gap - value shipped); over target = max(0, value shipped - gap) (0 with capacity);
  gap spread = the standard deviation of the producers' open gaps (workload balance: 0 when
  every producer is equally far from its target), its expectation over the scenarios.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stochplan.errors import InputError
from stochplan.models.assignment.data import AssignmentInstance

__all__ = [
    "KPIReport",
    "day_metrics",
    "kpi_report",
    "recourse_arrays",
    "solution_arrays",
]


@dataclass(frozen=True)
class KPIReport:
    """Headline numbers and tidy tables of a solution."""

    headline: dict[str, float]
    tables: dict[str, pd.DataFrame]


# ----------------------------------------------------------------------------------------------
# Reading solutions


def _positions(labels: Sequence[Any], values: pd.Series, what: str) -> np.ndarray:
    lookup = {str(label): k for k, label in enumerate(labels)}
    pos = values.astype(str).map(lookup)
    if pos.isna().any():
        raise InputError(what, values[pos.isna()].iloc[0], f"not one of the instance's {what}s")
    return pos.to_numpy(dtype=int)


def plan_array(inst: AssignmentInstance, plan: pd.DataFrame) -> np.ndarray:
    """The offers x of a plan table (``variable`` x, ``order``, ``producer``, ``value``) as an
    (O, P) array, rounded to 0/1 within 1e-6 (a relaxed plan keeps its fractions)."""
    rows = plan[plan["variable"] == "x"]
    x = np.zeros((inst.n_orders, inst.n_producers))
    if not rows.empty:
        i = _positions(inst.orders, rows["order"], "order")
        j = _positions(inst.producers, rows["producer"], "producer")
        x[i, j] = rows["value"].to_numpy(float)
    return _clean(x)


def recourse_arrays(inst: AssignmentInstance, recourse: pd.DataFrame,
                    scenario_names: Sequence[str]) -> dict[str, np.ndarray]:
    """``a`` and ``z`` of a recourse table (scenario, variable, order, producer, value) as
    (S, O, P) arrays (``G`` rows are ignored)."""
    shape = (len(scenario_names), inst.n_orders, inst.n_producers)
    out = {"a": np.zeros(shape), "z": np.zeros(shape)}
    if recourse is None or recourse.empty:
        return out
    for var in ("a", "z"):
        rows = recourse[recourse["variable"] == var]
        if rows.empty:
            continue
        s = _positions(scenario_names, rows["scenario"], "scenario")
        i = _positions(inst.orders, rows["order"], "order")
        j = _positions(inst.producers, rows["producer"], "producer")
        out[var][s, i, j] = rows["value"].to_numpy(float)
        out[var] = _clean(out[var])
    return out


def solution_arrays(inst: AssignmentInstance, plan: pd.DataFrame, recourse: pd.DataFrame,
                    scenario_names: Sequence[str]) -> dict[str, np.ndarray]:
    """The solution as arrays: ``x`` (O, P), ``a`` and ``z`` (S, O, P)."""
    out = recourse_arrays(inst, recourse, scenario_names)
    out["x"] = plan_array(inst, plan)
    return out


def _clean(a: np.ndarray) -> np.ndarray:
    """Solver noise within 1e-6 of 0 or 1 snapped to it."""
    out = np.where(np.abs(a) < 1e-6, 0.0, a)
    return np.where(np.abs(out - 1.0) < 1e-6, 1.0, out)


# ----------------------------------------------------------------------------------------------
# Per-scenario (per-day) numbers


def day_metrics(inst: AssignmentInstance, x: np.ndarray, a: np.ndarray, z: np.ndarray,
                shipped_z: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The numbers of each scenario (or simulated day) of a plan.

    Parameters
    ----------
    x : ndarray, shape (O, P)
        Offers.
    a, z : ndarray, shape (S, O, P)
        Accepted offers and reassignments.
    shipped_z : ndarray, shape (S, O, P), optional
        Reassignments that ship: by default z weighted by its acceptance probability q (the
        model's expectation); the simulation passes the reassignments actually accepted.

    Returns
    -------
    dict of ndarray, each shape (S,) (``volume`` (S, P))
        offers, accepted, reassignments, shipped (orders), shipped_value, transport,
        reassignment_cost, net_benefit, public_benefit (value x producer rate - distance over
        the shipped pairs: the public code's "total net benefit"), open_gap, over_target,
        gap_spread, gap_penalty, profit, volume (value shipped per producer).
    """
    if shipped_z is None:
        q = 1.0 if inst.options.reassignment == "certain" else inst.rates
        shipped_z = z * q
    v, d = inst.value[:, None], inst.distance
    ship = a + shipped_z
    volume = np.einsum("sij,i->sj", ship, inst.value)
    gap = inst.gap[None, :]
    open_gap = np.maximum(gap - volume, 0.0)
    over = np.maximum(volume - gap, 0.0)
    over[over < 1e-6] = 0.0  # solver noise on a full producer
    cost = inst.options.reassignment_cost * z.sum(axis=(1, 2))
    net = (ship * (v - d)).sum(axis=(1, 2)) - cost
    weight = inst.options.gap_weight
    if inst.options.capacity == "gap":
        penalty = weight * (gap - volume).sum(axis=1)
    else:
        penalty = weight * open_gap.sum(axis=1)
    rate = np.broadcast_to(inst.rate[None, :], d.shape)
    return {
        "offers": np.full(ship.shape[0], float(x.sum())),
        "accepted": a.sum(axis=(1, 2)),
        "reassignments": z.sum(axis=(1, 2)),
        "shipped": ship.sum(axis=(1, 2)),
        "shipped_value": (ship * v).sum(axis=(1, 2)),
        "transport": (ship * d).sum(axis=(1, 2)),
        "reassignment_cost": cost,
        "net_benefit": net,
        "public_benefit": (ship * (v * rate - d)).sum(axis=(1, 2)),
        "open_gap": open_gap.sum(axis=1),
        "over_target": over.sum(axis=1),
        "gap_spread": open_gap.std(axis=1),
        "gap_penalty": penalty,
        "profit": net - penalty,
        "volume": volume,
    }


# ----------------------------------------------------------------------------------------------
# KPIs


def kpi_report(inst: AssignmentInstance, arrays: dict[str, np.ndarray], data: np.ndarray,
               probabilities: np.ndarray, scenario_names: Sequence[str]) -> KPIReport:
    """KPIs of a solution over its scenarios.

    Parameters
    ----------
    inst : AssignmentInstance
    arrays : dict of ndarray
        :func:`solution_arrays`.
    data : ndarray, shape (S, O, P)
        The scenarios' acceptances.
    probabilities : ndarray, shape (S,)
    scenario_names : sequence of str
    """
    pi = np.asarray(probabilities, dtype=float)
    x, a, z = arrays["x"], arrays["a"], arrays["z"]
    q = 1.0 if inst.options.reassignment == "certain" else inst.rates
    per = day_metrics(inst, x, a, z)

    def expect(arr: np.ndarray) -> np.ndarray:
        return np.tensordot(pi, arr, axes=1)

    Ea, Ez = expect(a), expect(z)  # (O, P)
    Eship = Ea + Ez * q
    Exi = expect(np.asarray(data, dtype=float))
    orders = np.array(inst.orders, dtype="int64")
    producers = np.array(inst.producers, dtype="int64")
    v, d = inst.value, inst.distance

    offered_to = np.where(x.max(axis=1) > 0, producers[x.argmax(axis=1)], 0)
    order_table = pd.DataFrame({
        "order": orders,
        "value": v,
        "producer": offered_to.astype("int64"),
        "offered": x.sum(axis=1),
        "p_accepted": Ea.sum(axis=1),
        "p_reassigned": Ez.sum(axis=1),
        "p_shipped": Eship.sum(axis=1),
        "transport": (Eship * d).sum(axis=1),
        "net_benefit": (Eship * (v[:, None] - d)).sum(axis=1)
        - inst.options.reassignment_cost * Ez.sum(axis=1),
    })

    i, j = np.nonzero(x > 0)
    assignments = pd.DataFrame({
        "order": orders[i],
        "producer": producers[j],
        "offer": x[i, j],
        "value": v[i],
        "distance": d[i, j],
        "rate": inst.rates[i, j],
        "p_accepted": Ea[i, j],
        "acceptance_frequency": Exi[i, j],
    })
    ri, rj = np.nonzero(Ez > 1e-9)
    reassignments = pd.DataFrame({
        "order": orders[ri],
        "producer": producers[rj],
        "expected": Ez[ri, rj],
        "value": v[ri],
        "distance": d[ri, rj],
    })

    volume = expect(per["volume"])
    producer_table = pd.DataFrame({
        "producer": producers,
        "x": inst.producer_xy[:, 0],
        "y": inst.producer_xy[:, 1],
        "target": inst.target,
        "current": inst.current,
        "gap": inst.gap,
        "rate": inst.rate,
        "offers": x.sum(axis=0),
        "offered_value": (x * v[:, None]).sum(axis=0),
        "accepted_value": (Ea * v[:, None]).sum(axis=0),
        "reassigned_value": (Ez * q * v[:, None]).sum(axis=0),
        "shipped_value": volume,
        "volume_after": inst.current + volume,
        "open_gap": expect(np.maximum(inst.gap[None, :] - per["volume"], 0.0)),
    })

    benefit = pd.DataFrame({
        "scenario": list(scenario_names),
        "probability": pi,
        **{k: per[k] for k in ("profit", "net_benefit", "accepted", "reassignments", "shipped",
                               "shipped_value", "transport", "open_gap", "gap_spread")},
    })

    offers = float(x.sum())
    headline = {
        "expected_profit": float(pi @ per["profit"]),
        "net_benefit": float(pi @ per["net_benefit"]),
        "shipped_value": float(pi @ per["shipped_value"]),
        "transport_cost": float(pi @ per["transport"]),
        "reassignment_cost": float(pi @ per["reassignment_cost"]),
        "gap_penalty": float(pi @ per["gap_penalty"]),
        "public_benefit": float(pi @ per["public_benefit"]),
        "orders": float(inst.n_orders),
        "offers": offers,
        "offered_value": float((x * v[:, None]).sum()),
        "accepted_offers": float(pi @ per["accepted"]),
        "acceptance_rate": float(pi @ per["accepted"]) / offers if offers else float("nan"),
        "reassignments": float(pi @ per["reassignments"]),
        "shipped_orders": float(pi @ per["shipped"]),
        "shipped_share": float(pi @ per["shipped"]) / inst.n_orders,
        "lost_orders": inst.n_orders - float(pi @ per["shipped"]),
        "total_gap": float(inst.gap.sum()),
        "open_gap": float(pi @ per["open_gap"]),
        "over_target": float(pi @ per["over_target"]),
        "gap_spread": float(pi @ per["gap_spread"]),
    }
    return KPIReport(headline, {
        "orders": order_table,
        "assignments": assignments,
        "reassignments": reassignments,
        "producers": producer_table,
        "benefit": benefit,
    })
