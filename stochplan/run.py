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
from typing import Any

import pandas as pd

from stochplan.config import RunConfig, check_start_plan
from stochplan.family import Family, KPIs, get_family
from stochplan.scenarios import ScenarioSet, distribution_of
from stochplan.solve.ef import solve_ef
from stochplan.solve.results import SolveResult
from stochplan.solve.risk import risk_module, risk_result
from stochplan.store import RunRecord

log = logging.getLogger(__name__)

_VERSIONED = ("stochplan", "pyomo", "mpi-sppy", "highspy", "numpy", "scipy", "pandas")


@dataclass(frozen=True)
class RunOutcome:
    """Everything a solve produced: the inputs as used, the solution and its KPIs."""

    config: RunConfig
    family: Family
    instance: Any
    scenarios: ScenarioSet
    result: SolveResult
    kpis: KPIs
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
    instance: Any = None,
    progress: Callable[[str], None] | None = None,
    allow_partial: bool = False,
    warm: dict[str, Any] | None = None,
    start_plan: pd.DataFrame | None = None,
) -> RunOutcome | None:
    """Solve the configured instance's recourse problem (extensive form, L-shaped or PH).

    ``instance`` replaces the instance that ``config.instance`` names (for data edited in
    Python); the configuration's model options still apply on top of it. ``allow_partial``
    keeps a solve stopped early (time limit, or PH's gap target missed) that has a solution,
    with its status and gap. ``warm`` (a dict the caller keeps across runs of one shape, such
    as the points of a frontier) lets the extensive form start from the previous LP basis.
    ``start_plan``, a first-stage plan table (a stored run's ``plan``; ``attrs["value"]``
    its run id, for messages), is the extensive form's MIP start and the L-shaped method's
    first plan; PH takes none.

    Returns ``None`` only on the MPI ranks other than 0 of a progressive hedging run.

    Raises :class:`~stochplan.errors.InputError` for bad data or options and
    :class:`~stochplan.errors.SolveError` (or its subclass ``InfeasibleError``) when no
    optimal plan is found.
    """
    note = progress or (lambda phase: None)
    timings: dict[str, float] = {}

    note("load")
    start = time.perf_counter()
    family = run_family(config, instance)
    inst = family.resolve(instance or config.instance, config.model or None)
    sc = config.scenarios
    scen_set = family.scenario_set(inst, sc.spec, sc.seed, sc.multipliers, sc.weights)
    timings["scenarios"] = time.perf_counter() - start

    module = family.module
    kwargs = family.creator_kwargs(inst, sc.spec, sc.seed, sc.multipliers, sc.weights)
    risk = config.risk
    # the extensive form and PH solve the module in Rockafellar-Uryasev form; the L-shaped
    # method takes the measure itself (its master would be unbounded in the value at risk)
    solved = risk_module(module, risk)
    if start_plan is not None:
        check_start_plan(config.method, str(start_plan.attrs.get("field", "start_plan")),
                         start_plan.attrs.get("value", "plan"))
    if config.method in ("ph", "lshaped"):
        decomposed: SolveResult | None
        if config.method == "ph":
            from stochplan.analysis.value import value_at_risk_box
            from stochplan.parallel import world
            from stochplan.solve.ph import solve_ph

            if risk.active:  # PH's Lagrangian bound needs eta bounded
                note("risk bounds")
                box = value_at_risk_box(module, scen_set.names, kwargs, risk, config.solver,
                                        comm=world())
                solved = risk_module(module, risk, box)
            decomposed = solve_ph(solved, scen_set.names, kwargs, config.ph,
                                  allow_partial=allow_partial, progress=note)
        else:
            from stochplan.parallel import world
            from stochplan.solve.lshaped import solve_lshaped

            extra = {"risk": risk} if risk.active else {}
            decomposed = solve_lshaped(module, scen_set.names, kwargs, config.lshaped,
                                       comm=world(), allow_partial=allow_partial, progress=note,
                                       start_plan=start_plan, **extra)
        if decomposed is None:  # not MPI rank 0
            return None
        result = decomposed
    else:
        result = solve_ef(solved, scen_set.names, kwargs, config.solver,
                          allow_partial=allow_partial, progress=note, warm=warm,
                          start_plan=start_plan)
    timings.update(result.timings)
    if risk.measure != "expectation":
        note("risk")
        start = time.perf_counter()
        result = risk_result(result, module, scen_set.names, kwargs, risk, config.solver)
        timings["risk"] = time.perf_counter() - start

    note("kpis")
    return outcome_from_result(config, inst, scen_set, result, timings)


def run_family(config: RunConfig, instance: Any = None) -> Family:
    """The family of a run: that of an instance record given in Python (its ``family``), else
    the one the configuration's instance names."""
    name = getattr(instance, "family", None)
    return get_family(name) if isinstance(name, str) else config.family_object()


def outcome_from_result(
    config: RunConfig,
    inst: Any,
    scen_set: ScenarioSet,
    result: SolveResult,
    timings: dict[str, float] | None = None,
) -> RunOutcome:
    """A run outcome (with the family's KPIs) from a solve of ``scen_set`` by any method."""
    family = run_family(config, inst)
    timings = dict(timings or result.timings)
    start = time.perf_counter()
    kpis = family.kpis(inst, scen_set, result)
    risk = result.info.get("risk")
    if isinstance(risk, dict):  # a run under a risk measure: its in-sample figures
        kpis.headline.update({"risk_objective": risk["objective"],
                              "risk_expected": risk["expected"],
                              "risk_value_at_risk": risk["value_at_risk"],
                              "risk_cvar": risk["cvar"]})
    timings["kpis"] = time.perf_counter() - start
    log.info("solved %s (%s): objective %.2f", inst.name, scen_set.spec, result.objective)
    return RunOutcome(config, family, inst, scen_set, result, kpis, timings)


def to_record(outcome: RunOutcome) -> RunRecord:
    """The results-database record of a run."""
    res, cfg, inst, family = outcome.result, outcome.config, outcome.instance, outcome.family
    config = cfg.to_dict()
    config["family"] = family.name
    config["sense"] = family.objective_sense(inst)
    config["model"] = inst.options.model_dump()
    config["instance_data"] = family.instance_summary(inst)
    config["solve_info"] = {k: v for k, v in res.info.items()
                            if k != "history" and isinstance(v, (str, int, float, bool, list))}
    # the law the scenarios were drawn from, which `evaluate` samples again by default
    sc = cfg.scenarios
    law = distribution_of(family.uncertainty(inst), outcome.scenarios.spec, sc.seed,
                          sc.multipliers, sc.weights)
    if law is not None:
        config["distribution"] = law.to_dict()
    return RunRecord(
        instance=inst.name,
        family=family.name,
        method=res.method,
        scenarios=outcome.scenarios.spec,
        seed=outcome.scenarios.seed,
        n_scenarios=len(outcome.scenarios),
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
            **outcome.kpis.tables,
            "recourse": res.recourse,
            **scenario_tables(family.uncertainty(inst), outcome.scenarios),
            **family.instance_tables(inst),
            **convergence_table(res),
        },
    )


def stored_instance(family: Family, config: dict[str, Any], instance: str) -> Any:
    """The instance a stored run was solved on, from its ``config``: read again from the
    database it came from (``config["input_db"]``, stored without a password: the database
    driver's own sources, e.g. PostgreSQL's ``PGPASSWORD`` or ``.pgpass``, supply it), else
    resolved by name (``config["instance"]``, else ``instance``), with the run's options."""
    options = dict(config.get("model", {}))
    source = config.get("input_db")
    if source:
        return family.load_database(str(source), options)
    return family.resolve(config.get("instance", instance), options)


def input_db_of(text: str) -> str:
    """How a run stores the database its instance was read from (``--input-db``): a file's
    absolute path, a URL without its password."""
    if "://" not in text:  # a file: from any folder
        from pathlib import Path

        return str(Path(text).expanduser().resolve())
    return without_password(text)


def without_password(url: str) -> str:
    """A database URL without its password (kept as given when it is not a URL)."""
    if "://" not in url:
        return url
    try:
        from sqlalchemy.engine import URL, make_url

        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - not a URL: a file path, kept as it is
        return url
    if parsed.password is None:
        return url
    bare = URL.create(parsed.drivername, username=parsed.username, host=parsed.host,
                      port=parsed.port, database=parsed.database, query=parsed.query)
    return bare.render_as_string(hide_password=False)


def convergence_table(result: SolveResult) -> dict[str, pd.DataFrame]:
    """A decomposition's per-iteration history (seconds, iteration, bound, incumbent) as the
    table ``convergence``; nothing for the extensive form."""
    history = result.info.get("history")
    if not history:
        return {}
    table = pd.DataFrame([list(h)[:4] for h in history],
                         columns=["seconds", "iteration", "bound", "incumbent"])
    return {"convergence": table.astype({"seconds": float, "iteration": "int64",
                                         "bound": float, "incumbent": float})}


def scenario_tables(unc: Any, scen: ScenarioSet) -> dict[str, pd.DataFrame]:
    """The scenarios of a run as stored: their names, labels and probabilities, and the random
    data as a tidy table (``scenario``, one column per axis, ``value``) named after it."""
    import numpy as np

    table = pd.DataFrame({
        "scenario": list(scen.names),
        "label": list(scen.labels),
        "probability": scen.probabilities,
    })
    axes = list(unc.axes.items())
    grids = np.meshgrid(*[np.arange(len(labels)) for _, labels in axes], indexing="ij")
    cells = [g.ravel() for g in grids]
    n_cells = int(np.prod(unc.shape)) if axes else 1
    data = {"scenario": np.repeat(np.array(scen.names, dtype=object), n_cells)}
    for (name, labels), pos in zip(axes, cells):
        data[name] = np.tile(np.array(labels, dtype=object)[pos], len(scen))
    data["value"] = scen.data.reshape(len(scen), -1).ravel().astype(float)
    random_data = pd.DataFrame(data)
    for name, labels in axes:
        if all(isinstance(x, int) for x in labels):
            random_data[name] = random_data[name].astype("int64")
        else:
            random_data[name] = random_data[name].astype(str)
    return {"scenarios": table, unc.name: random_data}
