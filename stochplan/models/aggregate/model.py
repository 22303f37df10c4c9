r"""Two-stage aggregate production planning: workforce, production, inventory, backorders, overflow.

The flagship family (seed 003). One scenario model is built by :func:`build_model`; every
problem stochplan solves on this family (the recourse problem's extensive form, the mean-value
problem, EEV and wait-and-see solves, PH subproblems) calls it, only the data changes.

Formulation
-----------
Sets: products :math:`p \in P`, weeks :math:`t \in T = 1..n`, scenarios :math:`s` with
probability :math:`\pi_s`.

First stage (here and now), per product and week:

- ``X[p,t]`` units produced (integer when ``options.integer``)
- ``W[p,t]`` workers, ``H[p,t]`` hired, ``F[p,t]`` fired
- ``R[p,t]`` regular hours, ``O[p,t]`` overtime hours

Second stage (recourse), per product and week in scenario s with demand ``D[p,t]``:

- ``I_reg[p,t]`` units in the regular warehouse, ``I_ovr[p,t]`` units in overflow
- ``B[p,t]`` backlog at the end of week t
- ``L[p,t]`` units of demand lost (only when ``options.lost_sales_penalty`` is set)

Constraints::

    workforce           W[t] = W[t-1] + H[t] - F[t]                 (W[0] = initial workforce)
    regular_hours       R[t] <= hours_per_worker * W[t]
    overtime_limit      O[t] <= overtime_fraction * R[t]
    production_hours    hours_per_unit * X[t] <= R[t] + O[t]
    inventory_balance   I[t-1] - B[t-1] + X[t] - D[t] (+ L[t]) = I_reg[t] + I_ovr[t] - B[t]
                        with I = I_reg + I_ovr, I[0] = initial inventory, B[0] = 0
    regular_warehouse   sum_p space_p * I_reg[p,t] <= regular capacity      (per week)
    overflow_warehouse  sum_p space_p * I_ovr[p,t] <= overflow capacity     (per week)
    backorder_cap       B[t] <= backorder_fraction * D[t]

Objective (minimise, $)::

    FirstStageCost  = sum_{p,t} c_reg R + c_ot O + c_hire H + c_fire F + c_prod X + wage W
    SecondStageCost = sum_{p,t} h I_reg + m * h I_ovr + c_back B (+ penalty L)
    total           = FirstStageCost + sum_s pi_s SecondStageCost_s

where ``m`` is ``options.overflow_cost_multiplier`` (3 in the seed).

The first-stage variables get finite upper bounds far above anything optimal (see
:func:`first_stage_bounds`): decomposition needs them (a Lagrangian subproblem with unbounded
first-stage variables can be unbounded).

The family around this builder (data, scenarios, KPIs, report, panels and mpi-sppy's module
contract) is :mod:`stochplan.models.aggregate`.
"""

from __future__ import annotations

import numpy as np
import pyomo.environ as pyo

from stochplan.errors import InputError
from stochplan.models.aggregate.data import AggregateInstance

#: First-stage (nonanticipative) variables, in the order handed to mpi-sppy.
FIRST_STAGE = ("X", "W", "H", "F", "R", "O")
#: Second-stage variables per scenario.
SECOND_STAGE = ("I_reg", "I_ovr", "B", "L")
#: Names of the index positions of every variable of this family.
INDEX_NAMES = ("product", "week")


# ----------------------------------------------------------------------------------------------
# The model


def build_model(
    instance: AggregateInstance, demand: np.ndarray, name: str = "scenario"
) -> pyo.ConcreteModel:
    """Build the model of one scenario (first stage plus the recourse for ``demand``).

    Parameters
    ----------
    instance : AggregateInstance
        Data and options (``instance.options``).
    demand : ndarray, shape (P, T)
        Units demanded per product and week in this scenario.
    name : str
        Model name (the scenario name).

    Returns
    -------
    pyomo.environ.ConcreteModel
        With expressions ``FirstStageCost`` and ``SecondStageCost`` and objective ``total_cost``
        ($, minimised). No mpi-sppy annotations: :func:`scenario_creator` adds those.
    """
    demand = np.asarray(demand, dtype=float)
    if demand.shape != (instance.n_products, instance.n_weeks):
        raise InputError("demand", f"shape {demand.shape}",
                         f"expected ({instance.n_products}, {instance.n_weeks})", instance.source)
    m = pyo.ConcreteModel(name=name)
    m.P = pyo.Set(initialize=instance.products, ordered=True)
    m.T = pyo.Set(initialize=instance.weeks, ordered=True)
    _add_first_stage(m, instance)
    _add_workforce(m, instance)
    _add_labour_capacity(m, instance)
    _add_recourse(m, instance, demand)
    _add_inventory_balance(m, instance, demand)
    _add_warehouse(m, instance)
    _add_backorder_cap(m, instance, demand)
    _add_objective(m, instance)
    return m


def _pt(instance: AggregateInstance, arr: np.ndarray) -> dict[tuple[str, int], float]:
    """A (P, T) array as a dict keyed by (product, week)."""
    return {
        (p, t): float(arr[i, j])
        for i, p in enumerate(instance.products)
        for j, t in enumerate(instance.weeks)
    }


def first_stage_bounds(instance: AggregateInstance) -> dict[str, np.ndarray]:
    """Finite, non-binding upper bounds of the first-stage variables, each shape (P,).

    Production in one week is bounded by 3x the whole horizon's largest demand (base or any
    instance level) plus 100 units; the workforce by what that production could ever need.
    """
    demand_cap = instance.base_demand
    if instance.levels:
        demand_cap = np.maximum(demand_cap, instance.level_demand.max(axis=0))
    x_ub = 3.0 * demand_cap.sum(axis=1) + 100.0
    hours_ub = instance.hours_per_unit * x_ub
    w_ub = instance.initial_workforce + np.ceil(hours_ub / max(instance.hours_per_worker, 1e-9))
    return {
        "X": np.floor(x_ub),
        "W": w_ub,
        "H": w_ub,
        "F": w_ub,
        "R": instance.hours_per_worker * w_ub,
        "O": instance.overtime_fraction * instance.hours_per_worker * w_ub,
    }


def _add_first_stage(m: pyo.ConcreteModel, inst: AggregateInstance) -> None:
    ub = first_stage_bounds(inst)
    index = {p: i for i, p in enumerate(inst.products)}

    def bounds(var: str):
        return lambda m, p, t: (0.0, float(ub[var][index[p]]))

    x_domain = pyo.NonNegativeIntegers if inst.options.integer else pyo.NonNegativeReals
    m.X = pyo.Var(m.P, m.T, domain=x_domain, bounds=bounds("X"), doc="units produced")
    m.W = pyo.Var(m.P, m.T, domain=pyo.NonNegativeReals, bounds=bounds("W"), doc="workers")
    m.H = pyo.Var(m.P, m.T, domain=pyo.NonNegativeReals, bounds=bounds("H"), doc="workers hired")
    m.F = pyo.Var(m.P, m.T, domain=pyo.NonNegativeReals, bounds=bounds("F"), doc="workers fired")
    m.R = pyo.Var(m.P, m.T, domain=pyo.NonNegativeReals, bounds=bounds("R"), doc="regular hours")
    m.O = pyo.Var(m.P, m.T, domain=pyo.NonNegativeReals, bounds=bounds("O"), doc="overtime hours")


def _add_workforce(m: pyo.ConcreteModel, inst: AggregateInstance) -> None:
    w0 = dict(zip(inst.products, inst.initial_workforce.tolist()))

    # W[t] = W[t-1] + H[t] - F[t]
    @m.Constraint(m.P, m.T)
    def workforce(m, p, t):
        prev = w0[p] if t == m.T.first() else m.W[p, m.T.prev(t)]
        return m.W[p, t] == prev + m.H[p, t] - m.F[p, t]


def _add_labour_capacity(m: pyo.ConcreteModel, inst: AggregateInstance) -> None:
    hours = dict(zip(inst.products, inst.hours_per_unit.tolist()))

    # R <= hours_per_worker * W
    @m.Constraint(m.P, m.T)
    def regular_hours(m, p, t):
        return m.R[p, t] <= inst.hours_per_worker * m.W[p, t]

    # O <= overtime_fraction * R
    @m.Constraint(m.P, m.T)
    def overtime_limit(m, p, t):
        return m.O[p, t] <= inst.overtime_fraction * m.R[p, t]

    # hours_per_unit * X <= R + O
    @m.Constraint(m.P, m.T)
    def production_hours(m, p, t):
        return hours[p] * m.X[p, t] <= m.R[p, t] + m.O[p, t]


def _add_recourse(m: pyo.ConcreteModel, inst: AggregateInstance, demand: np.ndarray) -> None:
    domain = pyo.NonNegativeIntegers if inst.options.integer else pyo.NonNegativeReals
    m.I_reg = pyo.Var(m.P, m.T, domain=domain, doc="units in the regular warehouse")
    m.I_ovr = pyo.Var(m.P, m.T, domain=domain, doc="units in the overflow warehouse")
    m.B = pyo.Var(m.P, m.T, domain=domain, doc="backlog at the end of the week")
    if inst.options.lost_sales_penalty is not None:
        d = _pt(inst, demand)
        m.L = pyo.Var(m.P, m.T, domain=domain, bounds=lambda m, p, t: (0.0, d[p, t]),
                      doc="demand lost")


def _add_inventory_balance(
    m: pyo.ConcreteModel, inst: AggregateInstance, demand: np.ndarray
) -> None:
    d = _pt(inst, demand)
    i0 = dict(zip(inst.products, inst.initial_inventory.tolist()))
    lost = hasattr(m, "L")

    # I[t-1] - B[t-1] + X[t] - D[t] (+ L[t]) = I_reg[t] + I_ovr[t] - B[t]
    @m.Constraint(m.P, m.T)
    def inventory_balance(m, p, t):
        if t == m.T.first():
            carried = i0[p]
        else:
            s = m.T.prev(t)
            carried = m.I_reg[p, s] + m.I_ovr[p, s] - m.B[p, s]
        inflow = carried + m.X[p, t] - d[p, t] + (m.L[p, t] if lost else 0)
        return inflow == m.I_reg[p, t] + m.I_ovr[p, t] - m.B[p, t]


def _add_warehouse(m: pyo.ConcreteModel, inst: AggregateInstance) -> None:
    space = dict(zip(inst.products, inst.space_per_unit.tolist()))

    # sum_p space_p * I_reg[p,t] <= regular capacity
    @m.Constraint(m.T)
    def regular_warehouse(m, t):
        return sum(space[p] * m.I_reg[p, t] for p in m.P) <= inst.regular_capacity

    # sum_p space_p * I_ovr[p,t] <= overflow capacity
    @m.Constraint(m.T)
    def overflow_warehouse(m, t):
        return sum(space[p] * m.I_ovr[p, t] for p in m.P) <= inst.options.overflow_capacity


def _add_backorder_cap(m: pyo.ConcreteModel, inst: AggregateInstance, demand: np.ndarray) -> None:
    d = _pt(inst, demand)
    fraction = inst.options.backorder_fraction

    # B <= backorder_fraction * D
    @m.Constraint(m.P, m.T)
    def backorder_cap(m, p, t):
        return m.B[p, t] <= fraction * d[p, t]


def _add_objective(m: pyo.ConcreteModel, inst: AggregateInstance) -> None:
    c = {
        name: _pt(inst, getattr(inst, name))
        for name in ("production_cost", "holding_cost", "backorder_cost", "regular_labour_cost",
                     "overtime_labour_cost", "hiring_cost", "firing_cost")
    }
    opts = inst.options
    m.FirstStageCost = pyo.Expression(expr=sum(
        c["regular_labour_cost"][p, t] * m.R[p, t]
        + c["overtime_labour_cost"][p, t] * m.O[p, t]
        + c["hiring_cost"][p, t] * m.H[p, t]
        + c["firing_cost"][p, t] * m.F[p, t]
        + c["production_cost"][p, t] * m.X[p, t]
        + opts.wage_per_worker * m.W[p, t]
        for p in m.P for t in m.T
    ))
    m.SecondStageCost = pyo.Expression(expr=sum(
        c["holding_cost"][p, t] * m.I_reg[p, t]
        + opts.overflow_cost_multiplier * c["holding_cost"][p, t] * m.I_ovr[p, t]
        + c["backorder_cost"][p, t] * m.B[p, t]
        + (opts.lost_sales_penalty * m.L[p, t] if hasattr(m, "L") else 0)
        for p in m.P for t in m.T
    ))
    m.total_cost = pyo.Objective(expr=m.FirstStageCost + m.SecondStageCost, sense=pyo.minimize)
