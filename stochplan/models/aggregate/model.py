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

mpi-sppy module contract
------------------------
``scenario_creator``, ``scenario_names_creator``, ``kw_creator``, ``inparser_adder``,
``scenario_denouement`` and ``average_scenario_creator`` make this module runnable unchanged
under ``mpisppy.generic_cylinders --module-name stochplan.models.aggregate``.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from stochplan import scenarios as scen
from stochplan._mpisppy import sputils as _sputils
from stochplan.data import AggregateInstance, load_instance
from stochplan.errors import InputError

log = logging.getLogger(__name__)

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


# ----------------------------------------------------------------------------------------------
# Scenario data


@functools.lru_cache(maxsize=16)
def _cached_instance(name_or_path: str) -> AggregateInstance:
    return load_instance(name_or_path)


def resolve(instance: str | AggregateInstance, options: dict[str, Any] | None = None) -> AggregateInstance:
    """The instance record for a name, path or record, with option overrides applied."""
    inst = _cached_instance(instance) if isinstance(instance, str) else instance
    if inst.family != "aggregate":
        raise InputError("family", inst.family, "this module builds aggregate instances")
    return inst.with_options(**options) if options else inst


def scenario_set(
    instance: str | AggregateInstance,
    scenarios: str = "three-point",
    seed: int | None = 0,
    multipliers: tuple[float, ...] = (1.0,),
    weights: tuple[float, ...] | None = None,
) -> scen.ScenarioSet:
    """All scenarios of a run: the instance's levels or N Poisson/QMC draws around base demand."""
    inst = resolve(instance)
    return scen.generate(
        scen.parse_spec(scenarios),
        rates=inst.base_demand,
        seed=seed,
        level_demand=inst.level_demand if inst.levels else None,
        level_probabilities=inst.level_probabilities if inst.levels else None,
        level_labels=inst.levels or None,
        multipliers=multipliers,
        weights=weights,
    )


@dataclass(frozen=True)
class ScenarioSource:
    """Where a run's scenarios come from: the keyword arguments every creator of this module
    takes (mpi-sppy passes them as ``scenario_creator_kwargs``).

    Attributes
    ----------
    instance : str or AggregateInstance
        Built-in name, instance folder, or a record (for data edited in Python).
    scenarios : str
        ``three-point``, ``poisson:N`` or ``qmc:N``.
    seed : int or None
        Base seed of the draws: scenario k depends only on (scenarios, seed, k).
    options : dict, optional
        Model-option overrides (see :class:`~stochplan.data.ModelOptions`).
    multipliers, weights : tuple of float
        Scenario-level Poisson rate multipliers and their weights.
    num_scens : int, optional
        Overrides N of a sampled spec (mpi-sppy passes the number of scenarios that way).
    """

    instance: str | AggregateInstance = "electronics"
    scenarios: str = "three-point"
    seed: int | None = 0
    options: dict[str, Any] | None = None
    multipliers: tuple[float, ...] = (1.0,)
    weights: tuple[float, ...] | None = None
    num_scens: int | None = None

    @classmethod
    def of(cls, **kwargs: Any) -> ScenarioSource:
        known = set(cls.__dataclass_fields__)
        for key in kwargs:
            if key not in known:
                raise InputError(key, kwargs[key], f"unknown keyword (known: {', '.join(sorted(known))})")
        return cls(**kwargs)

    @property
    def record(self) -> AggregateInstance:
        return resolve(self.instance, self.options)

    @property
    def spec(self) -> scen.ScenarioSpec:
        return scen.parse_spec(self.scenarios)

    def probability(self, k: int) -> float:
        if self.spec.kind == "three-point":
            return float(self.record.level_probabilities[k])
        return 1.0 / float(self.num_scens or self.spec.n or 1)

    def demand(self, k: int) -> np.ndarray:
        """Scenario k's demand, shape (P, T)."""
        inst = self.record
        return scen.scenario_demand(
            self.spec, k, rates=inst.base_demand, seed=self.seed,
            level_demand=inst.level_demand if inst.levels else None,
            multipliers=self.multipliers, weights=self.weights,
        )

    def mean_demand(self) -> np.ndarray:
        """The probability-weighted demand of the whole scenario set, shape (P, T)."""
        inst, spec = self.record, self.spec
        if spec.kind == "three-point":
            return inst.expected_level_demand
        n = int(self.num_scens or spec.n or 0)
        return scenario_set(inst, str(scen.ScenarioSpec(spec.kind, n)), self.seed,
                            self.multipliers, self.weights).expected_demand


def creator_kwargs(
    instance: str | AggregateInstance,
    scenarios: str = "three-point",
    seed: int | None = 0,
    multipliers: tuple[float, ...] = (1.0,),
    weights: tuple[float, ...] | None = None,
) -> dict[str, Any]:
    """The keyword arguments of :func:`scenario_creator` for a scenario set."""
    return {"instance": instance, "scenarios": scenarios, "seed": seed,
            "multipliers": tuple(multipliers), "weights": weights}


def _annotated(model: pyo.ConcreteModel, probability: float) -> pyo.ConcreteModel:
    """Attach mpi-sppy's root node (the first-stage variables) and the probability."""
    _sputils().attach_root_node(model, model.FirstStageCost, [getattr(model, v) for v in FIRST_STAGE])
    model._mpisppy_probability = probability
    return model


# ----------------------------------------------------------------------------------------------
# mpi-sppy module contract (keyword arguments: the fields of ScenarioSource)


def scenario_data(scenario_name: str, **kwargs: Any) -> tuple[np.ndarray, float]:
    """Scenario ``scen<k>``'s random data (its demand, flattened (P*T,)) and probability."""
    src = ScenarioSource.of(**kwargs)
    k = scen.scenario_index(scenario_name)
    return src.demand(k).ravel(), src.probability(k)


def data_scenario_creator(scenario_name: str, data: np.ndarray, **kwargs: Any) -> pyo.ConcreteModel:
    """The scenario model for given data (a flattened (P*T,) demand), mpi-sppy annotated.

    :func:`scenario_creator` is this function applied to :func:`scenario_data`; the matrix
    backend calls it directly with probe data to map how the model depends on demand.
    """
    src = ScenarioSource.of(**kwargs)
    inst = src.record
    demand = np.asarray(data, dtype=float).reshape(inst.n_products, inst.n_weeks)
    model = build_model(inst, demand, name=scenario_name)
    return _annotated(model, src.probability(scen.scenario_index(scenario_name)))


def scenario_creator(scenario_name: str, **kwargs: Any) -> pyo.ConcreteModel:
    """Build scenario ``scen<k>`` with its probability and root node attached (mpi-sppy).

    Keyword arguments are the fields of :class:`ScenarioSource`.
    """
    data, _ = scenario_data(scenario_name, **kwargs)
    return data_scenario_creator(scenario_name, data, **kwargs)


def average_scenario_creator(
    scenario_name: str, integer_policy: str = "round", **kwargs: Any
) -> pyo.ConcreteModel:
    """The mean-value (EV) scenario: demand replaced by its expectation, probability 1.

    With integer recourse a fractional mean demand has no integer solution, so
    ``integer_policy`` says what to do: ``"round"`` rounds the mean demand to whole units,
    ``"relax"`` keeps it and solves the LP relaxation.
    """
    src = ScenarioSource.of(**kwargs)
    inst, mean = src.record, src.mean_demand()
    if inst.options.integer:
        if integer_policy == "round":
            mean = np.round(mean)
        elif integer_policy == "relax":
            inst = inst.with_options(integer=False)
        else:
            raise InputError("integer_policy", integer_policy, "expected 'round' or 'relax'")
    return _annotated(build_model(inst, mean, name=scenario_name), 1.0)


def scenario_names_creator(num_scens: int, start: int | None = None) -> list[str]:
    """``scen<start>`` ... ``scen<start + num_scens - 1>``."""
    start = start or 0
    return [f"scen{k}" for k in range(start, start + num_scens)]


def inparser_adder(cfg: Any) -> None:
    """Add this family's options to an mpi-sppy ``Config``."""
    cfg.num_scens_required()
    cfg.add_to_config("instance", description="built-in instance name or instance folder",
                      domain=str, default="electronics")
    cfg.add_to_config("scenario_kind", description="poisson, qmc or three-point",
                      domain=str, default="poisson")
    cfg.add_to_config("scenario_seed", description="base seed of the scenario draws",
                      domain=int, default=0)
    cfg.add_to_config("relax_integrality", description="solve the LP relaxation",
                      domain=bool, default=False)
    cfg.add_to_config("lost_sales_penalty", description="cost per unit of demand lost (gives "
                      "complete recourse; default: the instance's, usually none)",
                      domain=float, default=None)


def kw_creator(cfg: Any) -> dict[str, Any]:
    """Keyword arguments of :func:`scenario_creator` from an mpi-sppy ``Config``."""
    kind = cfg.get("scenario_kind", "poisson")
    num_scens = cfg.get("num_scens", None)
    spec = "three-point" if kind == "three-point" else f"{kind}:{num_scens}"
    options = {"integer": False} if cfg.get("relax_integrality", False) else {}
    if cfg.get("lost_sales_penalty", None) is not None:
        options["lost_sales_penalty"] = float(cfg.get("lost_sales_penalty"))
    return {
        "instance": cfg.get("instance", "electronics"),
        "scenarios": spec,
        "seed": cfg.get("scenario_seed", 0),
        "options": options or None,
        "num_scens": num_scens if kind != "three-point" else None,
    }


def scenario_denouement(rank: int, scenario_name: str, scenario: pyo.ConcreteModel) -> None:
    """Called by mpi-sppy after a decomposed solve; logs the scenario's recourse cost."""
    log.debug("rank %d %s: second-stage cost %.2f", rank, scenario_name,
              pyo.value(scenario.SecondStageCost))


# ----------------------------------------------------------------------------------------------
# Solutions as arrays


def plan_arrays(plan: pd.DataFrame, inst: AggregateInstance) -> dict[str, np.ndarray]:
    """First-stage plan table (variable, product, week, value) as (P, T) arrays by variable."""
    out = {}
    for var in FIRST_STAGE:
        rows = plan[plan["variable"] == var]
        grid = rows.pivot(index="product", columns="week", values="value")
        out[var] = grid.reindex(index=list(inst.products), columns=list(inst.weeks)).to_numpy(float)
    return out


def recourse_arrays(
    recourse: pd.DataFrame, inst: AggregateInstance, scenario_names: tuple[str, ...]
) -> dict[str, np.ndarray]:
    """Recourse table (scenario, variable, product, week, value) as (S, P, T) arrays."""
    shape = (len(scenario_names), inst.n_products, inst.n_weeks)
    s_pos = {name: i for i, name in enumerate(scenario_names)}
    p_pos = {p: i for i, p in enumerate(inst.products)}
    t_pos = {t: i for i, t in enumerate(inst.weeks)}
    out = {}
    for var, rows in recourse.groupby("variable", sort=False):
        arr = np.zeros(shape)
        arr[rows["scenario"].map(s_pos).to_numpy(),
            rows["product"].map(p_pos).to_numpy(),
            rows["week"].map(t_pos).to_numpy()] = rows["value"].to_numpy(float)
        out[str(var)] = arr
    return out
