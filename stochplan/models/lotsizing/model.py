r"""Two-stage lot sizing with setups, minimum batches, customer orders and an open market.

The system of seed 001 (the step-4 furniture planning tutorial): products made on shared
machines from limited materials over a few weeks, with a setup (cost and machine hours) in
every week a product is made and a minimum batch when it is. One scenario model is built by
:func:`build_model`; the recourse problem's extensive form, the mean-value problem, EEV and
wait-and-see solves and PH subproblems all call it, only the data changes.

Formulation
-----------
Sets: products :math:`p`, weeks :math:`t = 1..T`, machines :math:`m`, materials :math:`k`,
orders :math:`o` (customer, product :math:`p_o`, due week :math:`w_o`, target quantity), and
the delivery weeks of an order :math:`t \in W_o = \{w_o, ..., T\}` (only :math:`w_o` when
``options.late_delivery`` is off).

First stage (before orders are known), per product and week:

- ``y[p,t]`` in {0, 1}: a setup of p in week t (in [0, 1] when ``options.integer`` is off)
- ``x[p,t]`` >= 0: units produced, here only when ``options.production_stage == "first"``

Second stage, per scenario with order quantities ``q[o]`` and open-market demand ``D[p,t]``:

- ``x[p,t]`` >= 0: units produced (when ``production_stage == "second"``, the default)
- ``I[p,t]`` >= 0: units held at the end of week t (``I[p,0] = 0``)
- ``S[p,t]`` in [0, dmax_p]: units sold on the open market
- ``V[o,t]`` >= 0, t in W_o: units delivered to order o in week t
- ``n[o,w_o]`` >= 0: units of order o never delivered (indexed by its due week)

Constraints::

    setup_link        x[p,t] <= U_p y[p,t]
    min_batch         x[p,t] >= b_p y[p,t]
    machine_hours     sum_p h[p,m] x[p,t] + sh[p,m] y[p,t] <= H_m             (per m, t)
    materials         sum_p r[p,k] x[p,t] <= A_k                              (per k, t)
    inventory_balance I[p,t] = I[p,t-1] + x[p,t] - sum_{o: p_o = p, t in W_o} V[o,t] - S[p,t]
    order_balance     sum_{t in W_o} V[o,t] + n[o,w_o] = q[o]                 (per o)
    market_demand     S[p,t] <= D[p,t]

with U_p = min(dmax_p, min_m (H_m - sh[p,m]) / h[p,m], min_k A_k / r[p,k])
(:attr:`~.data.LotSizingInstance.production_bound`): x <= dmax_p is the seed's bound on
production, and with it the machine and material rows imply x <= U_p whenever y = 1, so the
link only forbids production without a setup.

Objective (maximise expected profit, $; ``options.sense == "min"`` minimises its negative)::

    FirstStageCost    = sum_{p,t} c_p y[p,t]                 c_p = sum_m setup cost[p,m]
    SecondStageProfit = sum_{p,t} pi_p (S[p,t] + sum_{o: p_o = p} V[o,t]) - hc_p I[p,t]
                        - sum_{o, t in W_o} lf pi_{p_o} (t - w_o) V[o,t]
                        - sum_o g_{tier(o)} pi_{p_o} n[o,w_o]
    profit            = SecondStageProfit - FirstStageCost

pi_p is the unit profit, hc_p the holding cost, lf = ``options.late_cost_fraction``, g the
tier's penalty multiple (``options.penalty_gold`` 3, ``penalty_silver`` 2, ``penalty_bronze``
1). Only the data q and D change between scenarios, and only in right-hand sides: the recourse
matrix is fixed (the matrix backend's affine data map applies). The recourse is relatively
complete: with y fixed, capacity does not depend on the scenario and every order can be left
unmet.

How it differs from the tutorial's code
---------------------------------------
The seed's README states this formulation (setup binaries, min batches, setup hours, inventory
balance, orders as goals by priority); its public code solves a different one:

1. It never links x to y from above (only ``x >= min_batch y``), so y = 0 is always feasible
   and no setup is ever paid or timed. Here ``x <= U y`` makes production need a setup.
2. Its weighted goal mode replaces the profit objective by the goal deviations. Here the
   orders enter the profit: delivered units earn the unit profit, late units pay a lateness
   cost per week, unmet units a penalty by tier.
3. Its inventory balance has zero demand (``rhs(0.0)  # Assuming no external demand``), so
   stock is never drawn down, and its orders are goals on production (``x[p,w] >= target``),
   not deliveries. Here orders and open-market sales draw stock down.
4. Its published profit ($18,947.29) comes from that formulation on other capacity data; it
   is not reproduced (nor reproducible) here.

First-stage variables are bounded (y by 1, x by U): decomposition needs finite bounds.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from stochplan.models.lotsizing.data import LotSizingInstance

#: First-stage variables always (``x`` joins them when ``production_stage == "first"``).
FIRST_STAGE = ("y",)
#: Second-stage variables per scenario (``x`` here when ``production_stage == "second"``).
SECOND_STAGE = ("x", "I", "S", "V", "n")
#: Index names of the plan and of the recourse table. Order variables (``V``, ``n``) carry the
#: order id in the ``product`` column and the week in ``week``.
INDEX_NAMES = ("product", "week")


def first_stage_names(inst: LotSizingInstance) -> tuple[str, ...]:
    """The first-stage variables of the instance's model, in mpi-sppy's order."""
    return ("y", "x") if inst.options.production_stage == "first" else ("y",)


def first_stage_vars(model: pyo.ConcreteModel) -> list[Any]:
    """The nonanticipative variables of a model :func:`build_model` made, in order: those its
    set ``STAGE1`` names (``y``, then ``x`` when production is first stage)."""
    return [getattr(model, name) for name in model.STAGE1]


def delivery_weeks(inst: LotSizingInstance, o: int) -> tuple[int, ...]:
    """W_o: the weeks order o may be delivered in (its due week, and later ones if allowed)."""
    w = int(inst.order_week[o])
    return tuple(range(w, inst.n_weeks + 1)) if inst.options.late_delivery else (w,)


def build_model(inst: LotSizingInstance, data: np.ndarray,
                name: str = "scenario") -> pyo.ConcreteModel:
    """The model of one scenario: the first stage plus the recourse for ``data``.

    Parameters
    ----------
    inst : LotSizingInstance
        Data and options (``inst.options``).
    data : ndarray, shape (O + P*T,)
        The scenario's order quantities (units, in ``inst.orders`` order), then the open-market
        demand per product and week (units, product-major): :attr:`~.data.LotSizingInstance.items`.
    name : str
        Model name (the scenario name).

    Returns
    -------
    pyomo.environ.ConcreteModel
        With expressions ``FirstStageCost`` (setups, $), ``SecondStageProfit`` ($) and
        ``Profit``, and the objective ``objective`` (``Profit`` maximised, or ``-Profit``
        minimised when ``options.sense == "min"``). No mpi-sppy annotations.
    """
    q, D = inst.split(data)
    m = pyo.ConcreteModel(name=name)
    m.P = pyo.Set(initialize=inst.products, ordered=True)
    m.T = pyo.Set(initialize=inst.weeks, ordered=True)
    m.M = pyo.Set(initialize=inst.machines, ordered=True)
    m.K = pyo.Set(initialize=inst.materials, ordered=True)
    m.O = pyo.Set(initialize=inst.orders, ordered=True)
    m.OT = pyo.Set(dimen=2, ordered=True, initialize=[
        (o, t) for i, o in enumerate(inst.orders) for t in delivery_weeks(inst, i)])
    m.OD = pyo.Set(dimen=2, ordered=True, initialize=[
        (o, int(inst.order_week[i])) for i, o in enumerate(inst.orders)])
    m.STAGE1 = pyo.Set(initialize=first_stage_names(inst), ordered=True,
                       doc="names of the first-stage variables")
    _add_setups(m, inst)
    _add_production(m, inst)
    _add_capacity(m, inst)
    _add_recourse(m, inst)
    _add_inventory_balance(m, inst)
    _add_orders(m, inst, q)
    _add_market(m, inst, D)
    _add_objective(m, inst)
    return m


def _p(inst: LotSizingInstance, arr: np.ndarray) -> dict[str, float]:
    return {p: float(arr[i]) for i, p in enumerate(inst.products)}


def _add_setups(m: pyo.ConcreteModel, inst: LotSizingInstance) -> None:
    domain = pyo.Binary if inst.options.integer else pyo.UnitInterval
    m.y = pyo.Var(m.P, m.T, domain=domain, bounds=(0.0, 1.0), doc="setup of p in week t")


def _add_production(m: pyo.ConcreteModel, inst: LotSizingInstance) -> None:
    U = _p(inst, inst.production_bound)
    b = _p(inst, inst.min_batch)
    m.x = pyo.Var(m.P, m.T, domain=pyo.NonNegativeReals, bounds=lambda m, p, t: (0.0, U[p]),
                  doc="units produced")

    # x[p,t] <= U_p y[p,t]
    @m.Constraint(m.P, m.T)
    def setup_link(m, p, t):
        return m.x[p, t] <= U[p] * m.y[p, t]

    # x[p,t] >= b_p y[p,t]
    @m.Constraint(m.P, m.T)
    def min_batch(m, p, t):
        return m.x[p, t] >= b[p] * m.y[p, t]


def _add_capacity(m: pyo.ConcreteModel, inst: LotSizingInstance) -> None:
    P, M, K = inst.products, inst.machines, inst.materials

    # sum_p h[p,m] x[p,t] + sh[p,m] y[p,t] <= H_m
    @m.Constraint(m.M, m.T)
    def machine_hours(m, mach, t):
        j = M.index(mach)
        used = [(i, p) for i, p in enumerate(P)
                if inst.hours[i, j] > 0 or inst.setup_hours[i, j] > 0]
        if not used:
            return pyo.Constraint.Skip
        return sum(float(inst.hours[i, j]) * m.x[p, t] + float(inst.setup_hours[i, j]) * m.y[p, t]
                   for i, p in used) <= float(inst.machine_capacity[j])

    # sum_p r[p,k] x[p,t] <= A_k
    @m.Constraint(m.K, m.T)
    def materials(m, mat, t):
        k = K.index(mat)
        used = [(i, p) for i, p in enumerate(P) if inst.material_use[i, k] > 0]
        if not used:
            return pyo.Constraint.Skip
        return sum(float(inst.material_use[i, k]) * m.x[p, t]
                   for i, p in used) <= float(inst.material_available[k])


def _add_recourse(m: pyo.ConcreteModel, inst: LotSizingInstance) -> None:
    dmax = _p(inst, inst.max_demand)
    m.I = pyo.Var(m.P, m.T, domain=pyo.NonNegativeReals, doc="units held at the end of week t")
    m.S = pyo.Var(m.P, m.T, domain=pyo.NonNegativeReals, bounds=lambda m, p, t: (0.0, dmax[p]),
                  doc="units sold on the open market")
    m.V = pyo.Var(m.OT, domain=pyo.NonNegativeReals, doc="units delivered to order o in week t")
    m.n = pyo.Var(m.OD, domain=pyo.NonNegativeReals, doc="units of order o never delivered")


def _add_inventory_balance(m: pyo.ConcreteModel, inst: LotSizingInstance) -> None:
    deliveries: dict[tuple[str, int], list[str]] = {(p, t): [] for p in inst.products
                                                    for t in inst.weeks}
    for o, t in m.OT:
        deliveries[inst.products[inst.order_product[inst.orders.index(o)]], t].append(o)

    # I[p,t] = I[p,t-1] + x[p,t] - sum_o V[o,t] - S[p,t]
    @m.Constraint(m.P, m.T)
    def inventory_balance(m, p, t):
        carried = 0.0 if t == m.T.first() else m.I[p, m.T.prev(t)]
        shipped = sum(m.V[o, t] for o in deliveries[p, t])
        return m.I[p, t] == carried + m.x[p, t] - shipped - m.S[p, t]


def _add_orders(m: pyo.ConcreteModel, inst: LotSizingInstance, q: np.ndarray) -> None:
    weeks = {o: delivery_weeks(inst, i) for i, o in enumerate(inst.orders)}
    due = {o: int(inst.order_week[i]) for i, o in enumerate(inst.orders)}
    quantity = {o: float(q[i]) for i, o in enumerate(inst.orders)}

    # sum_t V[o,t] + n[o,w_o] = q[o]
    @m.Constraint(m.O)
    def order_balance(m, o):
        return sum(m.V[o, t] for t in weeks[o]) + m.n[o, due[o]] == quantity[o]


def _add_market(m: pyo.ConcreteModel, inst: LotSizingInstance, D: np.ndarray) -> None:
    demand = {(p, t): float(D[i, j]) for i, p in enumerate(inst.products)
              for j, t in enumerate(inst.weeks)}

    # S[p,t] <= D[p,t]
    @m.Constraint(m.P, m.T)
    def market_demand(m, p, t):
        return m.S[p, t] <= demand[p, t]


def _add_objective(m: pyo.ConcreteModel, inst: LotSizingInstance) -> None:
    setup = _p(inst, inst.product_setup_cost)
    profit = _p(inst, inst.profit)
    holding = _p(inst, inst.holding_cost)
    lf = inst.options.late_cost_fraction
    order_profit = {o: float(inst.profit[inst.order_product[i]])
                    for i, o in enumerate(inst.orders)}
    due = {o: int(inst.order_week[i]) for i, o in enumerate(inst.orders)}
    penalty = {o: float(inst.order_penalty[i]) for i, o in enumerate(inst.orders)}

    m.FirstStageCost = pyo.Expression(expr=sum(setup[p] * m.y[p, t] for p in m.P for t in m.T))
    m.Revenue = pyo.Expression(expr=sum(profit[p] * m.S[p, t] for p in m.P for t in m.T)
                               + sum(order_profit[o] * m.V[o, t] for o, t in m.OT))
    m.HoldingCost = pyo.Expression(expr=sum(holding[p] * m.I[p, t] for p in m.P for t in m.T))
    m.LatenessCost = pyo.Expression(expr=sum(lf * order_profit[o] * (t - due[o]) * m.V[o, t]
                                             for o, t in m.OT if t > due[o]))
    m.UnmetPenalty = pyo.Expression(expr=sum(penalty[o] * m.n[o, w] for o, w in m.OD))
    m.SecondStageProfit = pyo.Expression(
        expr=m.Revenue - m.HoldingCost - m.LatenessCost - m.UnmetPenalty)
    m.Profit = pyo.Expression(expr=m.SecondStageProfit - m.FirstStageCost)
    if inst.options.sense == "max":
        m.objective = pyo.Objective(expr=m.Profit, sense=pyo.maximize)
    else:
        m.objective = pyo.Objective(expr=-m.Profit, sense=pyo.minimize)
