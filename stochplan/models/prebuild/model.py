r"""Two-stage pre-build planning: Q3 production is decided now, Q4 demand is revealed later.

The seed (002) is an S&OP notebook that builds inventory in Q3 (July to September) ahead of a
Q4 peak without pushing the warehouse past 87 % of its capacity, by one deterministic LP on
the Q4_PUSH demand; it names "single scenario optimisation" as its own limitation. Here the
same system is a two-stage problem: Q3 production is the first stage, and Q4 (baseline demand
or the marketing push) is revealed later. One scenario model is built by :func:`build_model`;
every problem stochplan solves on this family (the extensive form, the mean-value problem, EEV
and wait-and-see solves, PH and L-shaped subproblems) calls it, only the data change.

Formulation
-----------
Months :math:`t = 1..T` (July..December, T = 6); the first :math:`T_1` (Q3, T1 = 3) are the
first stage, :math:`t = T_1+1..T` (Q4) the second. Scenario :math:`s` (probability
:math:`\pi_s`) gives the second-stage demand ``D[t,s]``; first-stage demand ``D[t]`` is the
same in every scenario and is met in full.

Data (the instance's, with the options that are set): ``C`` units of regular production per
month; ``W_phys`` = warehouse pallets x units per pallet; ``W_safe = int(threshold x W_phys)``;
``I_0`` = occupied pallets x units per pallet; ``c_P`` $/unit produced, ``h`` $/unit held at
the end of a month, ``c_O`` $/unit-month above the threshold, ``c_X`` $/unit expedited (at
most ``X_max`` a month), ``c_L`` $/unit of demand lost; ``r`` the safety-stock ratio.

Safety stock: ``S[t] = int(r x max_s D[t+1,s])`` for a first-stage month (the maximum over the
instance's demand profiles, the named scenarios: for t < T1 month t+1 is itself first-stage
and the same in every profile), ``S[t,s] = int(r x D[t+1,s])`` for a second-stage month t < T,
none in month T. The products are truncated as the notebook's ``int(D * ratio)`` does.

Variables (one component per symbol, indexed by month):

- ``P[t]`` in [0, C]: units produced; ``I[t]`` in [0, W_phys]: units on hand at the end of
  month t; ``O[t]`` in [0, W_phys]: units held above the threshold. First stage for
  t <= T1 (these are the nonanticipative variables, in the order P, I, O), recourse after.
- ``X[t]`` in [0, X_max]: units expedited; ``L[t]`` in [0, D[t,s]]: demand lost; second-stage
  months only.

Constraints::

    inventory_balance  I[t] = I[t-1] + P[t] - D[t]                      t <= T1, I[0] = I_0
                       I[t] = I[t-1] + P[t] + X[t] - D[t,s] + L[t]      t >  T1
    warehouse          I[t] <= W_safe + O[t]
    safety_stock       I[t] >= S[t]                                     t <  T

Objective (minimise, $)::

    FirstStageCost  = sum_{t <= T1} c_P P[t] + h I[t] + c_O O[t]
    SecondStageCost = sum_{t >  T1} c_P P[t] + h I[t] + c_O O[t] + c_X X[t] + c_L L[t]
    total_cost      = FirstStageCost + SecondStageCost   (the EF: FirstStageCost + E_s[...])

The recourse is complete: whatever first-stage plan satisfies its own constraints, every
scenario has a feasible recourse (lose the demand that cannot be met, produce nothing when
stock would pass W_phys), unless a safety stock exceeds what stock plus a month's regular and
expedited production can reach. The first-stage safety stock depends on the instance's
profiles, not on the scenario, so that the first stage is the same set in every scenario
(sampled ones included) and a plan can be evaluated on any scenario.

``O`` is bounded by ``W_phys`` (finite, as decomposition needs, and never binding: at an
optimum O = max(0, I - W_safe) <= W_phys - W_safe).

Deterministic mode
------------------
With ``options.deterministic`` = a scenario name, this is the seed notebook's LP exactly as it
is written, for that scenario alone (probability 1, see the family's ``uncertainty``): no
``O``, ``X`` or ``L``, and the threshold is a hard cap, ``warehouse: I[t] <= W_safe``; the
safety stocks are those of that scenario's demand.

The family around this builder (data, scenarios, KPIs, report, panels and mpi-sppy's module
contract) is :mod:`stochplan.models.prebuild`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from stochplan.errors import InputError
from stochplan.models.prebuild.data import PrebuildInstance

#: First-stage (nonanticipative) variables, at the first-stage months, in mpi-sppy's order.
FIRST_STAGE = ("P", "I", "O")
#: Second-stage variables (P, I and O at the second-stage months, X and L).
SECOND_STAGE = ("P", "I", "O", "X", "L")
#: Names of the index positions of every variable of this family.
INDEX_NAMES = ("month",)


def build_model(
    inst: PrebuildInstance,
    demand: np.ndarray,
    name: str = "scenario",
    floors: np.ndarray | None = None,
) -> pyo.ConcreteModel:
    """Build the model of one scenario (first stage plus the recourse for ``demand``).

    Parameters
    ----------
    inst : PrebuildInstance
        Data and options.
    demand : ndarray, shape (T - T1,)
        Units demanded in each second-stage month of this scenario.
    name : str
        Model name (the scenario name).
    floors : ndarray, shape (T - T1 - 1,), optional
        Safety stock of the second-stage months but the last, units; by default
        ``int(r x D[t+1,s])`` from ``demand``. (The matrix backend passes them with the
        demand, so that the model is affine in the data it is given; see the family.)

    Returns
    -------
    pyomo.environ.ConcreteModel
        With expressions ``FirstStageCost`` and ``SecondStageCost`` and the objective
        ``total_cost`` ($, minimised); no mpi-sppy annotations (the family adds them).
    """
    demand = np.asarray(demand, dtype=float)
    T2 = len(inst.second_periods)
    if demand.shape != (T2,):
        raise InputError("demand", f"shape {demand.shape}", f"expected ({T2},), one value per "
                         "second-stage month", inst.source)
    floors = inst.second_stage_floors(demand) if floors is None else np.asarray(floors, float)
    if floors.shape != (T2 - 1,):
        raise InputError("floors", f"shape {floors.shape}", f"expected ({T2 - 1},)", inst.source)
    D = dict(zip(inst.periods, inst.demand_path(demand).tolist(), strict=True))
    S = dict(zip(inst.periods[:-1], [*inst.first_stage_floors.tolist(), *floors.tolist()],
                 strict=True))

    m = pyo.ConcreteModel(name=name)
    m.T = pyo.Set(initialize=inst.periods, ordered=True, doc="months")
    m.T1 = pyo.Set(initialize=inst.first_periods, ordered=True, doc="first-stage months")
    m.T2 = pyo.Set(initialize=inst.second_periods, ordered=True, doc="second-stage months")
    _add_production_and_stock(m, inst)
    if not inst.deterministic:
        _add_recourse_options(m, inst, D)
    _add_inventory_balance(m, inst, D)
    _add_warehouse(m, inst)
    _add_safety_stock(m, S)
    _add_objective(m, inst)
    return m


def first_stage_vars(model: pyo.ConcreteModel) -> list[Any]:
    """The nonanticipative variables: P, I (and O) at the first-stage months, in that order."""
    names = [v for v in FIRST_STAGE if hasattr(model, v)]
    return [getattr(model, v)[t] for v in names for t in model.T1]


# ----------------------------------------------------------------------------------------------
# Blocks


def _add_production_and_stock(m: pyo.ConcreteModel, inst: PrebuildInstance) -> None:
    C, W = float(inst.capacity), inst.physical_capacity
    m.P = pyo.Var(m.T, domain=pyo.NonNegativeReals, bounds=(0.0, C), doc="units produced")
    m.I = pyo.Var(m.T, domain=pyo.NonNegativeReals, bounds=(0.0, W),
                  doc="units on hand at the end of the month")
    if not inst.deterministic:
        m.O = pyo.Var(m.T, domain=pyo.NonNegativeReals, bounds=(0.0, W),
                      doc="units held above the threshold")


def _add_recourse_options(m: pyo.ConcreteModel, inst: PrebuildInstance,
                          D: dict[int, float]) -> None:
    p = inst.params
    m.X = pyo.Var(m.T2, domain=pyo.NonNegativeReals, bounds=(0.0, float(p.expedite_cap)),
                  doc="units expedited")
    m.L = pyo.Var(m.T2, domain=pyo.NonNegativeReals, bounds=lambda m, t: (0.0, D[t]),
                  doc="units of demand lost")


def _add_inventory_balance(m: pyo.ConcreteModel, inst: PrebuildInstance,
                           D: dict[int, float]) -> None:
    I0 = inst.initial_inventory
    recourse = hasattr(m, "X")

    def balance(m: pyo.ConcreteModel, t: int) -> Any:
        before = I0 if t == m.T.first() else m.I[m.T.prev(t)]
        inflow = m.P[t]
        if recourse and t in m.T2:
            inflow = inflow + m.X[t] + m.L[t]
        return m.I[t] == before + inflow - D[t]

    # I[t] = I[t-1] + P[t] (+ X[t] + L[t] in the second stage) - D[t]
    m.inventory_balance = pyo.Constraint(m.T, rule=balance)


def _add_warehouse(m: pyo.ConcreteModel, inst: PrebuildInstance) -> None:
    W_safe = inst.safe_capacity
    if hasattr(m, "O"):
        # I[t] <= W_safe + O[t]
        m.warehouse = pyo.Constraint(m.T, rule=lambda m, t: m.I[t] <= W_safe + m.O[t])
    else:
        # I[t] <= W_safe (deterministic mode: the notebook's hard cap)
        m.warehouse = pyo.Constraint(m.T, rule=lambda m, t: m.I[t] <= W_safe)


def _add_safety_stock(m: pyo.ConcreteModel, S: dict[int, float]) -> None:
    m.T_ss = pyo.Set(initialize=list(S), ordered=True, doc="months with a safety stock")
    # I[t] >= S[t] (t < T)
    m.safety_stock = pyo.Constraint(m.T_ss, rule=lambda m, t: m.I[t] >= S[t])


def _add_objective(m: pyo.ConcreteModel, inst: PrebuildInstance) -> None:
    p = inst.params

    def month_cost(t: int) -> Any:
        cost = p.production_cost * m.P[t] + p.storage_cost * m.I[t]
        if hasattr(m, "O"):
            cost = cost + p.overflow_penalty * m.O[t]
        if hasattr(m, "X") and t in m.T2:
            cost = cost + p.expedite_cost * m.X[t] + p.lost_sales_penalty * m.L[t]
        return cost

    m.FirstStageCost = pyo.Expression(expr=sum(month_cost(t) for t in m.T1))
    m.SecondStageCost = pyo.Expression(expr=sum(month_cost(t) for t in m.T2))
    m.total_cost = pyo.Objective(expr=m.FirstStageCost + m.SecondStageCost, sense=pyo.minimize)
