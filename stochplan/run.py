"""A run end to end: configuration -> instance -> scenarios -> solve -> KPIs -> record.

:func:`solve_instance` is what ``stochplan solve`` calls; it returns a typed
:class:`RunOutcome` and never prints. The solve is the extensive form (``method = "ef"``),
progressive hedging (``method = "ph"``, run under ``mpiexec``) or the L-shaped method
(``method = "lshaped"``, serial or under ``mpiexec``); under ``mpiexec`` every rank calls
:func:`solve_instance`, rank 0 gets the outcome and the others ``None``. :func:`to_record`
turns an outcome into the :class:`~stochplan.store.RunRecord` that the results database
stores.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

import pandas as pd

from stochplan.config import RunConfig
from stochplan.data import AggregateInstance
from stochplan.metrics.production import KPIReport, kpi_report
from stochplan.models import aggregate
from stochplan.scenarios import ScenarioSet
from stochplan.solve.ef import solve_ef
from stochplan.solve.results import SolveResult
from stochplan.store import RunRecord

log = logging.getLogger(__name__)

_VERSIONED = ("stochplan", "pyomo", "mpi-sppy", "highspy", "numpy", "scipy", "pandas")


@dataclass(frozen=True)
class RunOutcome:
    """Everything a solve produced: the inputs as used, the solution and its KPIs."""

    config: RunConfig
    instance: AggregateInstance
    scenarios: ScenarioSet
    result: SolveResult
    kpis: KPIReport
    timings: dict[str, float]


def package_versions() -> dict[str, str]:
    """Versions of stochplan and the packages its results depend on."""
    out = {}
    for name in _VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def solve_instance(
    config: RunConfig,
    instance: AggregateInstance | None = None,
    progress: Callable[[str], None] | None = None,
    allow_partial: bool = False,
) -> RunOutcome | None:
    """Solve the configured instance's recourse problem (extensive form or PH).

    ``instance`` replaces the instance that ``config.instance`` names (for data edited in
    Python); the configuration's model options still apply on top of it. ``allow_partial``
    keeps a solve stopped early (time limit, or PH's gap target missed) that has a solution,
    with its status and gap.

    Returns ``None`` only on the MPI ranks other than 0 of a progressive hedging run.

    Raises :class:`~stochplan.errors.InputError` for bad data or options and
    :class:`~stochplan.errors.SolveError` (or its subclass ``InfeasibleError``) when no
    optimal plan is found.
    """
    note = progress or (lambda phase: None)
    timings: dict[str, float] = {}

    note("load")
    start = time.perf_counter()
    inst = aggregate.resolve(instance or config.instance, config.model or None)
    sc = config.scenarios
    scen_set = aggregate.scenario_set(inst, sc.spec, sc.seed, sc.multipliers, sc.weights)
    timings["scenarios"] = time.perf_counter() - start

    kwargs = aggregate.creator_kwargs(inst, sc.spec, sc.seed, sc.multipliers, sc.weights)
    if config.method in ("ph", "lshaped"):
        decomposed: SolveResult | None
        if config.method == "ph":
            from stochplan.solve.ph import solve_ph

            decomposed = solve_ph(aggregate, scen_set.names, kwargs, config.ph,
                                  allow_partial=allow_partial, progress=note)
        else:
            from stochplan.parallel import world
            from stochplan.solve.lshaped import solve_lshaped

            decomposed = solve_lshaped(aggregate, scen_set.names, kwargs, config.lshaped,
                                       comm=world(), allow_partial=allow_partial, progress=note)
        if decomposed is None:  # not MPI rank 0
            return None
        result = decomposed
    else:
        result = solve_ef(aggregate, scen_set.names, kwargs, config.solver,
                          allow_partial=allow_partial, progress=note)
    timings.update(result.timings)

    note("kpis")
    return outcome_from_result(config, inst, scen_set, result, timings)


def outcome_from_result(
    config: RunConfig,
    inst: AggregateInstance,
    scen_set: ScenarioSet,
    result: SolveResult,
    timings: dict[str, float] | None = None,
) -> RunOutcome:
    """A run outcome (with KPIs) from a solve of ``scen_set`` made by any method."""
    timings = dict(timings or result.timings)
    start = time.perf_counter()
    plan = aggregate.plan_arrays(result.plan, inst)
    recourse = aggregate.recourse_arrays(result.recourse, inst, result.scenario_names)
    kpis = kpi_report(inst, plan, recourse, scen_set.demand, scen_set.probabilities)
    timings["kpis"] = time.perf_counter() - start
    log.info("solved %s (%s): objective %.2f", inst.name, scen_set.spec, result.objective)
    return RunOutcome(config, inst, scen_set, result, kpis, timings)


def to_record(outcome: RunOutcome) -> RunRecord:
    """The results-database record of a run."""
    res, cfg, inst = outcome.result, outcome.config, outcome.instance
    config = cfg.to_dict()
    config["model"] = {**_options_dict(inst)}
    config["instance_data"] = {
        "name": inst.name,
        "source": inst.source,
        "hours_per_worker": inst.hours_per_worker,
        "overtime_fraction": inst.overtime_fraction,
        "regular_capacity": inst.regular_capacity,
        "overflow_capacity": inst.options.overflow_capacity,
        "weeks": list(inst.weeks),
    }
    scen = outcome.scenarios
    scenario_table = pd.DataFrame({
        "scenario": list(scen.names),
        "label": list(scen.labels),
        "probability": scen.probabilities,
    })
    demand = pd.DataFrame(
        [(name, p, t, float(scen.demand[s, i, j]))
         for s, name in enumerate(scen.names)
         for i, p in enumerate(inst.products)
         for j, t in enumerate(inst.weeks)],
        columns=["scenario", "product", "week", "value"],
    )
    return RunRecord(
        instance=inst.name,
        family=inst.family,
        method=res.method,
        scenarios=scen.spec,
        seed=scen.seed,
        n_scenarios=len(scen),
        status=res.status,
        objective=res.objective,
        bound=res.bound,
        gap=res.gap,
        config=config,
        versions=package_versions(),
        timings=dict(outcome.timings),
        plan=res.plan,
        kpis=dict(outcome.kpis.headline),
        tables={
            "products": outcome.kpis.products,
            "composition": outcome.kpis.composition,
            "weekly": outcome.kpis.weekly,
            "recourse": res.recourse,
            "scenarios": scenario_table,
            "demand": demand,
            "instance_products": instance_products(inst),
        },
    )


def instance_products(inst: AggregateInstance) -> pd.DataFrame:
    """The per-product instance parameters a stored run needs to be redrawn."""
    return pd.DataFrame({
        "product": list(inst.products),
        "label": list(inst.labels),
        "hours_per_unit": inst.hours_per_unit,
        "space_per_unit": inst.space_per_unit,
        "initial_workforce": inst.initial_workforce,
        "initial_inventory": inst.initial_inventory,
        "price": inst.price,
    })


def _options_dict(inst: AggregateInstance) -> dict[str, object]:
    import dataclasses

    return dataclasses.asdict(inst.options)
