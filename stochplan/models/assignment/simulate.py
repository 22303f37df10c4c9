"""Day-by-day simulation of assignment plans, and the public code's heuristic reimplemented.

``stochplan simulate assignment --plan RUN --days D --seed S`` (:mod:`stochplan.cli.simulate`)
hands :func:`simulate` the plans to compare (the run's stochastic plan and the mean-value
plan), the simulated days and a function solving the model's second stage of each day for a
plan; the family adds the public code's heuristic and measures every policy on the same days.

The days
--------
Day k is scenario k of ``sample:D`` with base seed S: the acceptances drawn from
``np.random.default_rng([S, k])`` (:class:`~.data.AcceptanceSampler`), the same for every
policy. Each day starts from the instance's volumes (the days are independent replications of
one day's batch: the public data is one day). With ``reassignment = "rate"`` a reassignment is
accepted when ``np.random.default_rng([S, k, 2]).random((O, P))`` is below the pair's rate
(drawn after the offers, the same numbers for every policy).

The policies
------------
- a stored plan and the mean-value plan: the offers x of the plan; the accepted offers are
  xi x; the rejected orders are reassigned by the model's second stage (solved for the day:
  at most one reassignment per order, never to the producer that refused it, within the
  capacities; whole orders, even when the plan was made with relaxed reassignments);
- the public heuristic (:func:`public_heuristic`): ten iterations, each on shuffled orders and
  producers with the producers' rates multiplied by a factor uniform in [0.95, 1.05] (clipped
  to [0, 1]); each order goes to the compatible producer that maximises
  (r'_j v_i - d_ij) v_i / max v (the public code's MIP: every compatible order assigned
  exactly once and no capacity, so it decomposes by order; ties go to the first producer in
  the shuffled order); the iteration's acceptances are simulated (producer rate) and rejected
  orders reassigned round after round to their best remaining producer, stopping when a
  rejected order has none left (the public code's MIP is then infeasible); the iteration with
  the largest "total net benefit" (value x rate - distance over the accepted orders) is kept.
  Iteration ``it`` draws from ``np.random.default_rng([S, it, 1, 1])``. On the simulated days
  its offers are made as they are and each rejected order is reassigned once, greedily, to its
  best remaining producer by the same objective, without capacities (the public code has
  none: the volume shipped beyond a producer's gap is reported as ``over_target``).

Reported per policy (means over the days; see :mod:`.kpis` for each number): acceptance rate
of the first-round offers, offers, accepted offers, reassignments, orders shipped, shipped
value, transport, net benefit (its standard deviation and 5 % / 95 % quantiles too), the
public code's benefit figure, the open gap, over-target volume and gap spread (workload
balance).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stochplan.family import KPIs
from stochplan.models.assignment.data import AssignmentInstance
from stochplan.models.assignment.kpis import day_metrics, plan_array, recourse_arrays
from stochplan.scenarios import ScenarioSet

__all__ = ["HEURISTIC", "HeuristicPlan", "greedy_reassignment", "public_heuristic",
           "simulate"]

#: The label of the public code's heuristic in the simulation tables.
HEURISTIC = "public heuristic"
#: Iterations of the public heuristic (the public code's ``num_iterations``).
ITERATIONS = 10
#: The public code's rate perturbation: factors uniform in [1 - p, 1 + p].
PERTURBATION = 0.05

_METRICS = ("offers", "accepted", "reassignments", "shipped", "shipped_value", "transport",
            "reassignment_cost", "net_benefit", "public_benefit", "open_gap", "over_target",
            "gap_spread", "profit")


@dataclass(frozen=True)
class HeuristicPlan:
    """The public heuristic's choice: its offers, the objective coefficients of its best
    iteration (for reassignment) and that iteration's number and benefit figure."""

    x: np.ndarray  # (O, P) 0/1, one producer per order
    coefficient: np.ndarray  # (O, P) (r'_j v_i - d_ij) v_i / max v, -inf where incompatible
    iteration: int
    benefit: float


def _coefficients(inst: AssignmentInstance, rates: np.ndarray) -> np.ndarray:
    v, d = inst.value[:, None], inst.distance
    coef = (rates[None, :] * v - d) * v / float(inst.value.max())
    return np.where(inst.compatible, coef, -np.inf)


def _best(coef: np.ndarray, order: np.ndarray) -> np.ndarray:
    """For each row, the column of its largest coefficient, ties to the first column in
    ``order``; -1 when the row has no finite coefficient."""
    shuffled = coef[:, order]
    pick = order[np.argmax(shuffled, axis=1)]
    return np.where(np.isfinite(coef.max(axis=1)), pick, -1)


def public_heuristic(inst: AssignmentInstance, seed: int,
                     iterations: int = ITERATIONS) -> HeuristicPlan:
    """The public code's assignment, reimplemented with a seed (see the module docstring).

    Parameters
    ----------
    inst : AssignmentInstance
    seed : int
        Base seed S; iteration ``it`` draws from ``np.random.default_rng([S, it, 1, 1])``.
    iterations : int
        Number of shuffled, perturbed iterations (10 in the public code).
    """
    n_o, n_p = inst.n_orders, inst.n_producers
    best: HeuristicPlan | None = None
    rows = np.arange(n_o)
    for it in range(iterations):
        rng = np.random.default_rng([seed, it, 1, 1])  # apart from the days ([S, k], [S, k, 2])
        producer_order = rng.permutation(n_p)
        rng.permutation(n_o)  # the public code shuffles the orders too (no effect: by order)
        perturbed = np.clip(inst.rate * rng.uniform(1 - PERTURBATION, 1 + PERTURBATION, n_p),
                            0.0, 1.0)
        coef = _coefficients(inst, perturbed)
        pick = _best(coef, producer_order)
        x = np.zeros((n_o, n_p))
        x[rows, pick] = 1.0
        # its own simulation: accepted when a uniform draw is <= the producer's rate
        where = pick.copy()
        accepted = rng.random(n_o) <= inst.rate[where]
        allowed = inst.compatible.copy()
        pending = rows[~accepted]
        while pending.size:
            allowed[pending, where[pending]] = False
            options = np.where(allowed[pending], coef[pending], -np.inf)
            if not np.isfinite(options.max(axis=1)).all():
                break  # a rejected order has no producer left: the public MIP is infeasible
            where[pending] = _best(options, producer_order)
            ok = rng.random(pending.size) <= inst.rate[where[pending]]
            accepted[pending[ok]] = True
            pending = pending[~ok]
        v, d = inst.value, inst.distance[rows, where]
        benefit = float(((v * inst.rate[where] - d) * accepted).sum())
        if best is None or benefit > best.benefit:
            best = HeuristicPlan(x, coef, it, benefit)
    assert best is not None
    return best


def greedy_reassignment(coef: np.ndarray, x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Each rejected order (offered, not accepted) reassigned once to the compatible producer
    it was not offered to with the largest coefficient (none when no producer is left).

    Parameters
    ----------
    coef : ndarray, shape (O, P)
        Coefficients, -inf on incompatible pairs.
    x : ndarray, shape (O, P)
        Offers (0/1).
    a : ndarray, shape (D, O, P)
        Accepted offers per day.

    Returns
    -------
    ndarray, shape (D, O, P)
        z, 0/1.
    """
    options = np.where(x > 0, -np.inf, coef)
    target = np.argmax(options, axis=1)
    possible = np.isfinite(options.max(axis=1))
    rejected = (x.sum(axis=1)[None, :] - a.sum(axis=2)) > 0.5  # (D, O)
    z = np.zeros_like(a)
    d, i = np.nonzero(rejected & possible[None, :])
    z[d, i, target[i]] = 1.0
    return z


def simulate(inst: AssignmentInstance, plans: Mapping[str, pd.DataFrame], days: ScenarioSet,
             recourse: Callable[..., pd.DataFrame]) -> KPIs:
    """Simulate the plans and the public heuristic on the same days.

    Parameters
    ----------
    inst : AssignmentInstance
    plans : mapping of str to DataFrame
        Label -> first-stage plan (``variable`` x, ``order``, ``producer``, ``value``).
    days : ScenarioSet
        The simulated days (``sample:D`` of the simulation seed): acceptances (D, O, P).
    recourse : callable
        ``recourse(plan, options)``: the model's second stage of every day for the plan with
        model ``options`` changed, solved by the caller, as a recourse table (scenario,
        variable, order, producer, value). Reassignments are made binary here when the offers
        are (a relaxed recourse is a planning approximation; a day reassigns whole orders).

    Returns
    -------
    KPIs
        Headline ``sim_*`` numbers of the first plan; tables ``simulation`` (one row per
        policy), ``simulation_days`` (one row per policy and day), ``simulation_plans``
        (each policy's offers) and ``simulation_producers`` (each producer's mean volume shipped
        per day under each policy).
    """
    seed = int(days.seed or 0)
    xi = np.asarray(days.data, dtype=float)
    D = xi.shape[0]
    second = None
    if inst.options.reassignment == "rate":
        second = np.stack([np.random.default_rng([seed, k, 2]).random(xi.shape[1:])
                           < inst.rates for k in days.indices]).astype(float)
    rows, summary, offers, volumes = [], [], [], []
    policies: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
    # a day's reassignments are whole orders, also when the plan was made with relaxed ones
    day_options = {"recourse_integer": True} if inst.options.integer else None
    for label, plan in plans.items():
        x = plan_array(inst, plan)
        arrays = recourse_arrays(inst, recourse(plan, day_options), days.names)
        policies.append((label, x, arrays["a"], arrays["z"]))
    heuristic = public_heuristic(inst, seed)
    a_h = xi * heuristic.x[None, :, :]
    policies.append((HEURISTIC, heuristic.x, a_h,
                     greedy_reassignment(heuristic.coefficient, heuristic.x, a_h)))
    for label, x, a, z in policies:
        shipped_z = z * second if second is not None else z
        per = day_metrics(inst, x, a, z, shipped_z)
        day = pd.DataFrame({"policy": label, "day": np.arange(D, dtype="int64"),
                            **{k: per[k] for k in _METRICS}})
        day["acceptance_rate"] = np.where(day["offers"] > 0,
                                          day["accepted"] / day["offers"].where(
                                              day["offers"] > 0, 1.0), np.nan)
        rows.append(day)
        net = per["net_benefit"]
        summary.append({
            "policy": label, "days": D,
            "acceptance_rate": float(per["accepted"].sum() / per["offers"].sum())
            if per["offers"].sum() else float("nan"),
            **{k: float(per[k].mean()) for k in _METRICS},
            "net_benefit_std": float(net.std(ddof=1)) if D > 1 else 0.0,
            "net_benefit_p05": float(np.quantile(net, 0.05)),
            "net_benefit_p95": float(np.quantile(net, 0.95)),
        })
        volumes.append(pd.DataFrame({
            "policy": label,
            "producer": np.array(inst.producers, dtype="int64"),
            "current": inst.current,
            "target": inst.target,
            "shipped_value": per["volume"].mean(axis=0),
            "volume_after": inst.current + per["volume"].mean(axis=0),
        }))
        i, j = np.nonzero(x > 0)
        offers.append(pd.DataFrame({
            "policy": label,
            "order": np.array(inst.orders, dtype="int64")[i],
            "producer": np.array(inst.producers, dtype="int64")[j],
            "value": x[i, j],
        }))
    table = pd.DataFrame(summary)
    first = table.iloc[0]
    headline = {"sim_days": float(D), "sim_net_benefit": float(first["net_benefit"]),
                "sim_acceptance_rate": float(first["acceptance_rate"]),
                "sim_reassignments": float(first["reassignments"])}
    return KPIs(headline, {
        "simulation": table,
        "simulation_days": pd.concat(rows, ignore_index=True),
        "simulation_plans": pd.concat(offers, ignore_index=True),
        "simulation_producers": pd.concat(volumes, ignore_index=True),
    })
