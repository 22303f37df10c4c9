"""The extensive form (deterministic equivalent), solved with HiGHS.

Works on any module that follows mpi-sppy's contract: the EF is assembled by mpi-sppy's
``create_EF`` from the module's ``scenario_creator`` and solved in one piece.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from stochplan import _mpisppy
from stochplan.errors import InfeasibleError, SolveError
from stochplan.solve.diagnose import explain_infeasibility
from stochplan.solve.results import SolveResult
from stochplan.solve.solvers import MATRIX_SOLVER, SolverOptions, solve_model

log = logging.getLogger(__name__)


def build_ef(
    module: ModuleType, scenario_names: Sequence[str], creator_kwargs: dict[str, Any] | None = None
) -> pyo.ConcreteModel:
    """The extensive form of ``scenario_names`` (a single scenario's model when there is one)."""
    return _mpisppy.create_ef(scenario_names, module.scenario_creator, creator_kwargs)


def scenario_blocks(ef: pyo.ConcreteModel, scenario_names: Sequence[str]) -> list[Any]:
    """The scenario models inside an EF, in order."""
    if len(scenario_names) == 1 and not hasattr(ef, str(scenario_names[0])):
        return [ef]
    return [getattr(ef, str(name)) for name in scenario_names]


def solve_ef(
    module: ModuleType,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any] | None = None,
    solver: SolverOptions | None = None,
    allow_partial: bool = False,
    progress: Callable[[str], None] | None = None,
    warm: dict[str, Any] | None = None,
    start_plan: pd.DataFrame | None = None,
) -> SolveResult:
    """Build and solve the extensive form; return the plan and the recourse of every scenario.

    Parameters
    ----------
    module : module
        Follows mpi-sppy's contract (``scenario_creator`` at least).
    scenario_names : sequence of str
    creator_kwargs : dict, optional
        Keyword arguments of ``module.scenario_creator``.
    solver : SolverOptions, optional
    allow_partial : bool
        Return a non-optimal result that has a solution (time limit) instead of raising.
    progress : callable, optional
        Called with the name of each phase as it starts.
    warm : dict, optional
        Kept by the caller across solves of one shape: the matrix backend starts HiGHS from
        the last LP basis in it (:func:`stochplan.solve.matrix.solve_extensive_form`).
    start_plan : DataFrame, optional
        A first-stage plan (as a run stores it) for a MIP to start from, on the matrix
        backend; ``info["start_plan"]`` says how it was used. Checked by
        :func:`stochplan.solve.matrix.start_vector`.

    Raises
    ------
    InfeasibleError
        The EF is infeasible; the message names the constraint families involved.
    SolveError
        No optimal solution (and ``allow_partial`` is false, or there is no solution at all).
    """
    solver = solver or SolverOptions()
    note = progress or (lambda phase: None)
    if solver.use_matrix(module):
        from stochplan.solve.matrix import NotFixedRecourse

        try:
            return _solve_ef_matrix(module, scenario_names, creator_kwargs, solver,
                                    allow_partial, note, warm, start_plan)
        except NotFixedRecourse as why:
            log.info("matrix backend not applicable (%s): solving through Pyomo", why)
    pyomo_info: dict[str, Any] = {"backend": "pyomo"}
    if start_plan is not None:
        from stochplan.solve.matrix import start_label

        log.warning("the start plan is not used: the extensive form is solved through Pyomo "
                    "here, which takes none")
        pyomo_info["start_plan"] = f"{start_label(start_plan)}: not used (Pyomo backend)"
    timings: dict[str, float] = {}

    note("build")
    start = time.perf_counter()
    ef = build_ef(module, scenario_names, creator_kwargs)
    timings["build"] = time.perf_counter() - start

    note("solve")
    outcome = solve_model(ef, solver)
    timings["solve"] = outcome.seconds
    _require(outcome.status, outcome.objective, outcome.gap, allow_partial, note,
             lambda: ef, solver)

    note("extract")
    start = time.perf_counter()
    blocks = scenario_blocks(ef, scenario_names)
    index_names = tuple(getattr(module, "INDEX_NAMES", ()))
    first = blocks[0]
    nonants = _mpisppy.nonant_vars(first)
    nonant_ids = {id(v) for v in nonants}
    plan = var_table(nonants, index_names)
    frames = []
    for name, block in zip(scenario_names, blocks):
        own = nonant_ids if block is first else {id(v) for v in _mpisppy.nonant_vars(block)}
        second = [v for v in block.component_data_objects(pyo.Var, descend_into=True)
                  if id(v) not in own]
        table = var_table(second, index_names)
        table.insert(0, "scenario", str(name))
        frames.append(table)
    recourse = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    probabilities = np.array([_mpisppy.probability(b) for b in blocks])
    timings["extract"] = time.perf_counter() - start

    return SolveResult(
        method="ef",
        status=outcome.status,
        objective=outcome.objective,
        bound=outcome.bound,
        gap=outcome.gap,
        plan=plan,
        recourse=recourse,
        scenario_names=tuple(str(n) for n in scenario_names),
        probabilities=probabilities,
        timings=timings,
        solver=solver.name,
        info=pyomo_info,
    )


def _require(
    status: str,
    objective: float | None,
    gap: float | None,
    allow_partial: bool,
    note: Callable[[str], None],
    pyomo_ef: Callable[[], pyo.ConcreteModel],
    solver: SolverOptions,
) -> None:
    """Raise unless the solve ended optimal (or stopped early with a solution, if allowed).

    An infeasible problem is diagnosed on its Pyomo extensive form (built by ``pyomo_ef``):
    the error names the constraint families that cannot all hold.
    """
    if objective is None:
        if status in ("infeasible", "infeasible_or_unbounded"):
            note("diagnose")
            families, detail = explain_infeasibility(pyomo_ef(), solver)
            raise InfeasibleError(f"the problem is infeasible: {detail}", families)
        raise SolveError(f"HiGHS ended with status {status!r} and no solution", status)
    if status != "optimal" and not allow_partial:
        raise SolveError(
            f"HiGHS stopped with status {status!r} (objective {objective:,.2f}, "
            f"gap {gap if gap is not None else float('nan'):.2%}); "
            "ask for partial results to keep it",
            status,
        )


def _solve_ef_matrix(
    module: ModuleType,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any] | None,
    solver: SolverOptions,
    allow_partial: bool,
    note: Callable[[str], None],
    warm: dict[str, Any] | None = None,
    start_plan: pd.DataFrame | None = None,
) -> SolveResult:
    """:func:`solve_ef` through the matrix backend (same result, same errors).

    HiGHS runs through highspy, not through the Pyomo interface ``solver.name`` names: the
    result's ``solver`` says :data:`~stochplan.solve.solvers.MATRIX_SOLVER` and
    ``info["requested_solver"]`` keeps the name asked for.
    """
    from stochplan.solve import cvar_ef, matrix

    timings: dict[str, float] = {}
    note("build")
    start = time.perf_counter()
    compiled = matrix.compile_scenarios(module, scenario_names, creator_kwargs)
    timings["build"] = time.perf_counter() - start
    index_names = tuple(getattr(module, "INDEX_NAMES", ()))
    started: dict[str, Any] = {}
    x0 = None
    if start_plan is not None:
        from stochplan.solve.risk import EXCESS_NAME, VAR_NAME

        x0 = matrix.start_vector(start_plan, compiled, index_names, (VAR_NAME, EXCESS_NAME))
        use = ("MIP start" if compiled.columns.integer.any()
               else "not used (the extensive form is an LP)")
        started["start_plan"] = f"{matrix.start_label(start_plan)}: {use}"
    note("solve")
    start = time.perf_counter()
    risk = getattr(module, "RISK", None)
    if risk is not None and warm is None and cvar_ef.applies(compiled, risk.weight):
        # the mean-CVaR form with tail rows near the value at risk only (same solution)
        sol = cvar_ef.solve(compiled, solver, risk.alpha)
    else:
        sol = matrix.solve_extensive_form(compiled, solver, warm, x0)
    timings["solve"] = time.perf_counter() - start
    _require(sol.status, sol.objective, sol.gap, allow_partial, note,
             lambda: build_ef(module, scenario_names, creator_kwargs), solver)
    note("extract")
    start = time.perf_counter()
    assert sol.first is not None and sol.second is not None
    read: dict[str, Any] = {}
    if getattr(module, "RISK", None) is not None:  # the Rockafellar-Uryasev form
        plan, recourse, read = _risk_tables(module, compiled, sol.first, sol.second,
                                            index_names, sol.status == "optimal")
    else:
        plan, recourse = matrix.solution_tables(compiled, sol.first, sol.second, index_names)
    timings["extract"] = time.perf_counter() - start
    return SolveResult(
        method="ef",
        status=sol.status,
        objective=sol.objective,
        bound=sol.bound,
        gap=sol.gap,
        plan=plan,
        recourse=recourse,
        scenario_names=compiled.names,
        probabilities=compiled.probabilities,
        timings=timings,
        solver=MATRIX_SOLVER,
        info={"backend": f"matrix ({compiled.method})", "requested_solver": solver.name,
              **({"warm_start": bool(warm.get("started"))} if warm is not None else {}),
              **started, **read, **sol.info},
    )


def _risk_tables(module: ModuleType, compiled: Any, first: np.ndarray, second: np.ndarray,
                 index_names: tuple[str, ...], optimal: bool) -> tuple[pd.DataFrame,
                                                                      pd.DataFrame,
                                                                      dict[str, Any]]:
    """Plan and recourse tables of an extensive form in Rockafellar-Uryasev form, as the
    family's own model names them (without the value at risk and the excess), and each
    scenario's objective read off the solution (``info["scenario_objectives"]``, which
    :func:`stochplan.solve.risk.risk_result` uses instead of solving every scenario again;
    measured at S = 1,000 on electronics it saves 0.9 s of 10.9 s)."""
    from stochplan.solve import matrix
    from stochplan.solve.risk import EXCESS_NAME, VAR_NAME, ef_scenario_values

    cols = compiled.columns
    n1 = cols.n_first
    keep = np.array([name not in (VAR_NAME, EXCESS_NAME) for name in cols.variables])
    own = matrix.Columns(
        variables=tuple(v for v, k in zip(cols.variables, keep) if k),
        indices=tuple(i for i, k in zip(cols.indices, keep) if k),
        n_first=int(keep[:n1].sum()), integer=cols.integer[keep])
    plan = matrix.plan_table(own, first[keep[:n1]], index_names)
    recourse = matrix.recourse_table(compiled.names, own, second[:, keep[n1:]], index_names)
    # each scenario's recourse is its best at the plan when the expectation has a weight, the
    # scenario a probability and the solve is an LP solved to optimality (under CVaR alone a
    # scenario outside the tail may take any recourse that keeps its loss below the value at
    # risk; a MIP's is within its gap): only then are the values read off
    if (module.RISK.weight >= 1.0 or cols.integer.any() or not optimal
            or np.any(np.asarray(compiled.probabilities) <= 0)):
        return plan, recourse, {}
    values = ef_scenario_values(compiled, first, second, getattr(module, "RISK_BOX", None))
    return plan, recourse, {"scenario_objectives": values}


def var_table(vardatas: Sequence[Any], index_names: tuple[str, ...] = ()) -> pd.DataFrame:
    """Variables as a long table: ``variable``, index columns, ``value``.

    Integer variables are rounded to whole numbers (HiGHS returns them within 1e-9).
    Index columns are named by ``index_names`` when the indices have that length, else one
    ``index`` column holds the index as text.
    """
    rows = []
    for v in vardatas:
        idx = v.index()
        idx = idx if isinstance(idx, tuple) else (idx,)
        value = v.value
        if value is not None and v.is_integer():
            value = float(round(value))
        rows.append((v.parent_component().local_name, idx, np.nan if value is None else value))
    if index_names and all(len(idx) == len(index_names) for _, idx, _ in rows):
        data = [(name, *idx, value) for name, idx, value in rows]
        return pd.DataFrame(data, columns=["variable", *index_names, "value"])
    data = [(name, ",".join(map(str, idx)), value) for name, idx, value in rows]
    return pd.DataFrame(data, columns=["variable", "index", "value"])
