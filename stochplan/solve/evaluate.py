"""Scenario-by-scenario solves: a fixed first stage evaluated on scenarios, or each scenario
solved with perfect information (wait-and-see).

Works on any module that follows mpi-sppy's contract. Each scenario gets a fresh model from the
module's ``scenario_creator`` and a fresh solver (re-solving one Pyomo model after fixing
variables is far slower with HiGHS's Pyomo interfaces). Under ``mpiexec`` the scenarios are
shared round robin among the ranks and every rank returns the whole result.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from stochplan import _mpisppy
from stochplan.errors import InputError, SolveError
from stochplan.parallel import gather_all, share
from stochplan.solve.ef import var_table
from stochplan.solve.solvers import SolverOptions, solve_model

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class ScenarioSolves:
    """Per-scenario results.

    Attributes
    ----------
    names : tuple of str
    probabilities : ndarray, shape (S,)
        As the module attaches them (they sum to 1 over a full scenario set).
    objective : ndarray, shape (S,)
        Each scenario's objective (first stage + its recourse); where the scenario has no
        feasible solution, +inf for a minimisation and -inf for a maximisation.
    recourse : DataFrame or None
        Second-stage values (``scenario``, ``variable``, index columns, ``value``) when asked.
    plans : DataFrame or None
        Wait-and-see solves: each scenario's own first stage (``scenario`` + plan columns).
    """

    names: tuple[str, ...]
    probabilities: np.ndarray
    objective: np.ndarray
    recourse: pd.DataFrame | None = None
    plans: pd.DataFrame | None = None
    statuses: tuple[str, ...] = field(default_factory=tuple)

    @property
    def infeasible(self) -> tuple[str, ...]:
        """Names of the scenarios where the problem had no feasible solution."""
        return tuple(n for n, v in zip(self.names, self.objective) if math.isinf(v))

    def expected(self) -> float:
        """Probability-weighted objective (infinite if any scenario's is)."""
        p = self.probabilities / self.probabilities.sum()
        bad = np.isinf(self.objective) & (p > 0)
        if np.any(bad):
            return float(self.objective[bad][0])
        return float(p @ self.objective)


def nonant_values(plan: pd.DataFrame, model: pyo.ConcreteModel,
                  index_names: tuple[str, ...]) -> list[float]:
    """The plan's values in the order of ``model``'s nonanticipative variables.

    Raises InputError when the plan does not hold exactly the model's first-stage variables.
    """
    nonants = _mpisppy.nonant_vars(model)
    keys = var_table(nonants, index_names).drop(columns="value")
    plan_keys = [c for c in plan.columns if c not in ("value", "scenario")]
    if list(keys.columns) != plan_keys:
        raise InputError("plan columns", plan_keys,
                         f"the model's first stage has {list(keys.columns)}")
    merged = keys.merge(plan, on=plan_keys, how="left", validate="one_to_one")
    if merged["value"].isna().any():
        missing = merged[merged["value"].isna()].iloc[0].drop("value").tolist()
        raise InputError("plan", missing, "no value for this first-stage variable")
    return merged["value"].astype(float).tolist()


def evaluate_plan(
    module: ModuleType,
    plan: pd.DataFrame,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any] | None = None,
    solver: SolverOptions | None = None,
    keep_recourse: bool = False,
    comm: Any | None = None,
    progress: Progress | None = None,
) -> ScenarioSolves:
    """Fix the first stage to ``plan`` and solve each scenario's recourse.

    ``plan`` is a first-stage table as :class:`~stochplan.solve.results.SolveResult` holds it.
    A scenario in which the plan has no feasible recourse gets objective +inf.
    """
    solver = solver or SolverOptions()
    fast = _try_matrix(module, scenario_names, creator_kwargs, solver, plan, keep_recourse,
                       False, comm, progress)
    if fast is not None:
        return fast
    index_names = tuple(getattr(module, "INDEX_NAMES", ()))
    values: list[float] | None = None

    def solve(model: pyo.ConcreteModel) -> Any:
        nonlocal values
        if values is None:
            values = nonant_values(plan, model, index_names)
        for var, x in zip(_mpisppy.nonant_vars(model), values):
            var.fix(round(x) if var.is_integer() else x)
        return model

    return _per_scenario(module, scenario_names, creator_kwargs, solver, solve, keep_recourse,
                         False, comm, progress)


def wait_and_see(
    module: ModuleType,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any] | None = None,
    solver: SolverOptions | None = None,
    keep_plans: bool = False,
    comm: Any | None = None,
    progress: Progress | None = None,
) -> ScenarioSolves:
    """Solve every scenario on its own, first stage free (perfect information)."""
    solver = solver or SolverOptions()
    fast = _try_matrix(module, scenario_names, creator_kwargs, solver, None, False, keep_plans,
                       comm, progress)
    if fast is not None:
        return fast
    return _per_scenario(module, scenario_names, creator_kwargs, solver, lambda m: m, False,
                         keep_plans, comm, progress)


def _per_scenario(
    module: ModuleType,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any] | None,
    solver: SolverOptions | None,
    prepare: Callable[[pyo.ConcreteModel], pyo.ConcreteModel],
    keep_recourse: bool,
    keep_plans: bool,
    comm: Any | None,
    progress: Progress | None,
) -> ScenarioSolves:
    solver = solver or SolverOptions()
    kwargs = creator_kwargs or {}
    names = [str(n) for n in scenario_names]
    index_names = tuple(getattr(module, "INDEX_NAMES", ()))
    mine = share(range(len(names)), comm)
    results: dict[int, tuple[float, float, str, pd.DataFrame | None, pd.DataFrame | None]] = {}
    for done, k in enumerate(mine, start=1):
        model = prepare(module.scenario_creator(names[k], **kwargs))
        outcome = solve_model(model, solver)
        probability = _mpisppy.probability(model)
        if outcome.status in ("infeasible", "infeasible_or_unbounded"):
            worst = math.inf if _minimises(model) else -math.inf
            results[k] = (probability, worst, outcome.status, None, None)
        elif not outcome.has_solution or not outcome.ok:
            raise SolveError(f"scenario {names[k]}: HiGHS ended {outcome.status!r}", outcome.status)
        else:
            nonants = _mpisppy.nonant_vars(model)
            rec = pln = None
            if keep_recourse:
                ids = {id(v) for v in nonants}
                second = [v for v in model.component_data_objects(pyo.Var) if id(v) not in ids]
                rec = var_table(second, index_names)
                rec.insert(0, "scenario", names[k])
            if keep_plans:
                pln = var_table(nonants, index_names)
                pln.insert(0, "scenario", names[k])
            assert outcome.objective is not None
            results[k] = (probability, outcome.objective, outcome.status, rec, pln)
        if progress is not None:
            progress(done, len(mine))
    merged = gather_all(results, comm)
    order = range(len(names))
    probabilities = np.array([merged[k][0] for k in order])
    objective = np.array([merged[k][1] for k in order])
    statuses = tuple(merged[k][2] for k in order)
    rec_frames = [merged[k][3] for k in order if merged[k][3] is not None]
    plan_frames = [merged[k][4] for k in order if merged[k][4] is not None]
    return ScenarioSolves(
        names=tuple(names),
        probabilities=probabilities,
        objective=objective,
        recourse=pd.concat(rec_frames, ignore_index=True) if rec_frames else None,
        plans=pd.concat(plan_frames, ignore_index=True) if plan_frames else None,
        statuses=statuses,
    )


def _try_matrix(module: ModuleType, *args: Any) -> ScenarioSolves | None:
    """The solves through the matrix backend when the solver options and the module allow
    it; None (solve through Pyomo) otherwise."""
    solver = args[2]
    if not solver.use_matrix(module):
        return None
    from stochplan.solve.matrix import NotFixedRecourse

    try:
        return _per_scenario_matrix(module, *args)
    except NotFixedRecourse as why:
        log.info("matrix backend not applicable (%s): solving through Pyomo", why)
        return None


def _per_scenario_matrix(
    module: ModuleType,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any] | None,
    solver: SolverOptions,
    plan: pd.DataFrame | None,
    keep_recourse: bool,
    keep_plans: bool,
    comm: Any | None,
    progress: Progress | None,
) -> ScenarioSolves:
    """The same solves through the matrix backend: one HiGHS object, bounds changed per
    scenario, warm-started."""
    from stochplan.solve import matrix

    compiled = matrix.compile_scenarios(module, scenario_names, creator_kwargs)
    index_names = tuple(getattr(module, "INDEX_NAMES", ()))
    first = None if plan is None else matrix.plan_vector(plan, compiled.columns, index_names)
    objective, statuses, solutions = matrix.solve_each(
        compiled, solver, first_stage=first, keep_solutions=keep_recourse or keep_plans,
        comm=comm, progress=progress)
    recourse = plans = None
    if solutions is not None:
        ok = [s for s in range(len(compiled.names)) if np.isfinite(objective[s])]
        names = [compiled.names[s] for s in ok]
        n1 = compiled.n_first
        if keep_recourse:
            recourse = matrix.recourse_table(names, compiled.columns, solutions[ok, n1:],
                                             index_names)
        if keep_plans:
            frames = []
            for s in ok:
                one = matrix.plan_table(compiled.columns, solutions[s, :n1], index_names)
                one.insert(0, "scenario", compiled.names[s])
                frames.append(one)
            plans = pd.concat(frames, ignore_index=True) if frames else None
    return ScenarioSolves(
        names=compiled.names,
        probabilities=compiled.probabilities,
        objective=objective,
        recourse=recourse,
        plans=plans,
        statuses=statuses,
    )


def _minimises(model: pyo.ConcreteModel) -> bool:
    objective = next(model.component_data_objects(pyo.Objective, active=True))
    return objective.sense == pyo.minimize
