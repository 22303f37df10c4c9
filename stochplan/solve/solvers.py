"""Solvers, chosen by name in one place.

``"highs"`` is Pyomo's HiGHS interface (``pyomo.contrib.solver``, through highspy): it accepts
LPs, MIPs and the quadratic proximal terms of progressive hedging. Anything else a name in
:data:`SOLVERS` maps to goes through :func:`make_solver`, which says what to install when a
name is unknown or unavailable.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass
from typing import Any

from stochplan.errors import InputError

#: Solver name -> (Pyomo factory name, what to install when it is missing).
SOLVERS: dict[str, tuple[str, str]] = {
    "highs": ("highs", "pip install highspy"),
    "appsi_highs": ("appsi_highs", "pip install highspy"),
}


@dataclass(frozen=True)
class SolverOptions:
    """How to solve.

    Attributes
    ----------
    name : str
        A key of :data:`SOLVERS`.
    time_limit : float or None
        Seconds; None for no limit.
    mip_rel_gap : float or None
        Relative MIP gap at which HiGHS stops (None: HiGHS's default, 1e-4).
    threads : int or None
        Solver threads (None: the solver's default).
    tee : bool
        Stream the solver log to stdout.
    algorithm : {"auto", "simplex", "ipm", "pdlp"}
        HiGHS's LP algorithm (its ``solver`` option; "auto" lets HiGHS choose). For large
        extensive forms the interior-point method is usually fastest.
    crossover : bool
        After the interior-point method, recover a basic (vertex) solution. Without it the
        solution is interior and its objective is within ``ipm_gap`` of the optimum.
    ipm_gap : float or None
        Relative optimality tolerance of the interior-point method (HiGHS's default 1e-8).
    backend : {"auto", "matrix", "pyomo"}
        How models reach HiGHS. ``"matrix"`` compiles the scenario models to arrays and calls
        highspy directly (:mod:`stochplan.solve.matrix`); ``"pyomo"`` hands Pyomo models to
        Pyomo's HiGHS interface. ``"auto"`` takes the matrix path for modules that declare their
        scenario data (``scenario_data`` and ``data_scenario_creator``), Pyomo otherwise.
    """

    name: str = "highs"
    time_limit: float | None = None
    mip_rel_gap: float | None = None
    threads: int | None = None
    tee: bool = False
    algorithm: str = "auto"
    crossover: bool = True
    ipm_gap: float | None = None
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.name not in SOLVERS:
            raise InputError("solver.name", self.name, f"unknown solver (known: {', '.join(SOLVERS)})")
        if self.time_limit is not None and not self.time_limit > 0:
            raise InputError("solver.time_limit", self.time_limit, "must be positive seconds")
        if self.mip_rel_gap is not None and not 0 <= self.mip_rel_gap < 1:
            raise InputError("solver.mip_rel_gap", self.mip_rel_gap, "must be in [0, 1)")
        if self.threads is not None and self.threads < 1:
            raise InputError("solver.threads", self.threads, "must be at least 1")
        if self.algorithm not in ("auto", "simplex", "ipm", "pdlp"):
            raise InputError("solver.algorithm", self.algorithm, "expected auto, simplex, ipm or pdlp")
        if self.ipm_gap is not None and not 0 < self.ipm_gap < 1:
            raise InputError("solver.ipm_gap", self.ipm_gap, "must be in (0, 1)")
        if self.backend not in ("auto", "matrix", "pyomo"):
            raise InputError("solver.backend", self.backend, "expected auto, matrix or pyomo")

    def use_matrix(self, module: Any) -> bool:
        """Whether solves of ``module`` go through the matrix backend."""
        if self.backend == "auto":
            return hasattr(module, "scenario_data") and hasattr(module, "data_scenario_creator")
        return self.backend == "matrix"

    def replace(self, **changes: Any) -> SolverOptions:
        return dataclasses.replace(self, **changes)


@dataclass(frozen=True)
class SolveOutcome:
    """What one solver call returned: status, objective, bound, relative gap, seconds."""

    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    seconds: float
    log: str = ""

    @property
    def ok(self) -> bool:
        return self.status == "optimal"

    @property
    def has_solution(self) -> bool:
        return self.objective is not None and math.isfinite(self.objective)


def relative_gap(objective: float | None, bound: float | None) -> float | None:
    """|objective - bound| / max(1, |objective|): the convention HiGHS and mpi-sppy use."""
    if objective is None or bound is None or not (math.isfinite(objective) and math.isfinite(bound)):
        return None
    return abs(objective - bound) / max(1.0, abs(objective))


def make_solver(name: str) -> Any:
    """A fresh solver object for ``name``, or a clear error saying what to install."""
    if name not in SOLVERS:
        raise InputError("solver.name", name, f"unknown solver (known: {', '.join(SOLVERS)})")
    factory_name, install = SOLVERS[name]
    if name == "highs":
        from pyomo.contrib.solver.solvers.highs import Highs

        solver = Highs()
    else:
        import pyomo.environ as pyo

        solver = pyo.SolverFactory(factory_name)
    available = solver.available()
    if not available:
        raise InputError("solver.name", name, f"not available on this machine ({install})")
    return solver


_STATUS = {
    "convergenceCriteriaSatisfied": "optimal",
    "maxTimeLimit": "time_limit",
    "iterationLimit": "iteration_limit",
    "objectiveLimit": "objective_limit",
    "minStepLength": "numerical",
    "provenInfeasible": "infeasible",
    "locallyInfeasible": "infeasible",
    "infeasibleOrUnbounded": "infeasible_or_unbounded",
    "unbounded": "unbounded",
    "interrupted": "interrupted",
    "licensingProblems": "error",
    "error": "error",
    "unknown": "unknown",
}


def highs_options(options: SolverOptions) -> dict[str, Any]:
    """HiGHS's own options for the algorithm choices of ``options``."""
    out: dict[str, Any] = {}
    if options.algorithm != "auto":
        out["solver"] = {"simplex": "simplex", "ipm": "ipm", "pdlp": "pdlp"}[options.algorithm]
    if not options.crossover:
        out["run_crossover"] = "off"
    if options.ipm_gap is not None:
        out["ipm_optimality_tolerance"] = float(options.ipm_gap)
    return out


def solve_model(model: Any, options: SolverOptions) -> SolveOutcome:
    """Solve a Pyomo model with Pyomo's HiGHS interface and load the solution if there is one."""
    solver = make_solver(options.name)
    kwargs: dict[str, Any] = {
        "tee": options.tee,
        "load_solutions": False,
        "raise_exception_on_nonoptimal_result": False,
    }
    if options.time_limit is not None:
        kwargs["time_limit"] = options.time_limit
    if options.mip_rel_gap is not None:
        kwargs["rel_gap"] = options.mip_rel_gap
    if options.threads is not None:
        kwargs["threads"] = options.threads
    kwargs["solver_options"] = highs_options(options)
    start = time.perf_counter()
    res = solver.solve(model, **kwargs)
    seconds = time.perf_counter() - start
    status = _STATUS.get(res.termination_condition.name, res.termination_condition.name)
    has_solution = res.solution_status.name in ("optimal", "feasible")
    if has_solution:
        res.solution_loader.load_vars()
    objective = res.incumbent_objective if has_solution else None
    bound = res.objective_bound
    bound = float(bound) if bound is not None and math.isfinite(bound) else None
    if bound is None and status == "optimal" and objective is not None:
        bound = float(objective)  # an LP solved to optimality: the bound is the objective
    return SolveOutcome(
        status=status,
        objective=float(objective) if objective is not None else None,
        bound=bound,
        gap=relative_gap(objective, bound),
        seconds=seconds,
        log=str(getattr(res, "solver_log", "") or ""),
    )
