"""Solvers, chosen by name in one place.

Every name in :data:`SOLVERS` is a Pyomo interface to a solver, usable for every solve of a
Pyomo model (:func:`solve_model`) and for progressive hedging's subproblems:

``"highs"``
    Pyomo's HiGHS interface (``pyomo.contrib.solver``, through highspy): it accepts LPs, MIPs
    and the quadratic proximal terms of progressive hedging.
``"appsi_highs"``
    Pyomo's older APPSI interface to HiGHS (``pyomo.contrib.appsi``): LPs and MIPs; it rejects
    quadratic objectives, so PH linearises its proximal term with it.

:func:`make_solver` says what to install when a name is unknown or unavailable. The matrix
backend (:mod:`stochplan.solve.matrix`) does not go through Pyomo: it calls HiGHS through
highspy whatever the name, and results say so (:data:`MATRIX_SOLVER`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import signal
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from stochplan.errors import InputError


class SolverSpec(NamedTuple):
    """What a solver name stands for."""

    #: Pyomo ``SolverFactory`` name (what mpi-sppy's PH subproblems are given).
    factory: str
    #: What to install when it is missing.
    install: str
    #: Pyomo's solver API it follows: ``"contrib"`` (``pyomo.contrib.solver``) or ``"appsi"``
    #: (``pyomo.contrib.appsi``); :func:`solve_model` drives each its own way.
    interface: str


#: Solver name -> what it stands for. Each name is tested with a real solve
#: (``tests/solve/test_solvers.py``).
SOLVERS: dict[str, SolverSpec] = {
    "highs": SolverSpec("highs", "pip install highspy", "contrib"),
    "appsi_highs": SolverSpec("appsi_highs", "pip install highspy", "appsi"),
}

#: The solver name results carry when the matrix backend solved (HiGHS through highspy).
MATRIX_SOLVER = "highspy"


def _unknown(name: str) -> InputError:
    return InputError("solver.name", name, f"unknown solver (known: {', '.join(SOLVERS)})")


#: HiGHS's ``simplex_dual_edge_weight_strategy`` for devex, which the L-shaped method's own
#: HiGHS objects use always.
DEVEX = 1
#: HiGHS's ``simplex_dual_edge_weight_strategy`` for each ``pricing`` (None: HiGHS's default).
#: Measured with raw HiGHS on extensive-form LPs (one thread, CPU seconds, steepest edge as
#: HiGHS chooses it against devex; the iteration counts within 6 % of each other):
#: electronics without lost sales, 1,000 Poisson scenarios, 4.55 against 1.45; with lost
#: sales at $500/unit, 1,000 scenarios 5.51 against 3.15, 5,000 scenarios 255.5 against
#: 188.8, and in mean-CVaR form 9.00 against 6.12 and 229.8 against 130.1; multisite
#: relaxed, 300 scenarios, 2.80 against 2.48; lot sizing relaxed, 200 scenarios, 47.1 against
#: 46.4; S&OP pre-build, 1,000 scenarios, 0.16 against 0.12. HiGHS's MIP solver keeps its own
#: pricing (the same iterations and times on three MIP extensive forms).
PRICING: dict[str, int | None] = {"devex": DEVEX, "steepest-edge": 2, "auto": None}


@dataclass(frozen=True)
class SolverOptions:
    """How to solve.

    Attributes
    ----------
    name : str
        A key of :data:`SOLVERS`: the Pyomo interface used whenever a Pyomo model is solved.
        Solves through the matrix backend call HiGHS through highspy instead.
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
    pricing : {"devex", "steepest-edge", "auto"}
        How HiGHS's dual simplex chooses the row leaving the basis (its
        ``simplex_dual_edge_weight_strategy``): "devex" (the default here), "steepest-edge",
        or "auto" (HiGHS's own choice, which keeps steepest edge on these models). On
        extensive forms steepest edge takes about as many iterations as devex, each dearer:
        see :data:`PRICING`. It applies to the extensive form and to the scenario-by-scenario
        solves (EEV, wait-and-see, out of sample); the L-shaped method's own HiGHS objects
        and PH's highspy subproblems always price by devex (PH on electronics with lost
        sales, 1,000 scenarios, one rank, ten iterations: 13.1 s against 19.6 s with steepest
        edge, the same iterates to 1e-7).
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
    pricing: str = "devex"
    backend: str = "auto"

    def __post_init__(self) -> None:
        if self.name not in SOLVERS:
            raise _unknown(self.name)
        if self.time_limit is not None and not self.time_limit > 0:
            raise InputError("solver.time_limit", self.time_limit, "must be positive seconds")
        if self.mip_rel_gap is not None and not 0 <= self.mip_rel_gap < 1:
            raise InputError("solver.mip_rel_gap", self.mip_rel_gap, "must be in [0, 1)")
        if self.threads is not None and self.threads < 1:
            raise InputError("solver.threads", self.threads, "must be at least 1")
        if self.algorithm not in ("auto", "simplex", "ipm", "pdlp"):
            raise InputError("solver.algorithm", self.algorithm,
                             "expected auto, simplex, ipm or pdlp")
        if self.ipm_gap is not None and not 0 < self.ipm_gap < 1:
            raise InputError("solver.ipm_gap", self.ipm_gap, "must be in (0, 1)")
        if self.pricing not in PRICING:
            raise InputError("solver.pricing", self.pricing,
                             f"expected {', '.join(PRICING)}")
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
    if (objective is None or bound is None
            or not (math.isfinite(objective) and math.isfinite(bound))):
        return None
    return abs(objective - bound) / max(1.0, abs(objective))


def make_solver(name: str) -> Any:
    """A fresh solver object for ``name`` (in the API of its :attr:`SolverSpec.interface`),
    or a clear error saying what to install."""
    if name not in SOLVERS:
        raise _unknown(name)
    spec = SOLVERS[name]
    import pyomo.environ  # noqa: F401  (registers the solvers with both factories)

    if spec.interface == "contrib":
        from pyomo.contrib.solver.common.factory import SolverFactory

        solver = SolverFactory(spec.factory)
    elif spec.interface == "appsi":
        from pyomo.contrib.appsi.base import SolverFactory as AppsiSolverFactory

        solver = AppsiSolverFactory(spec.factory.removeprefix("appsi_"))
    else:
        raise InputError("solver.name", name, f"unsupported interface {spec.interface!r}")
    if solver is None:
        raise InputError("solver.name", name,
                         f"Pyomo has no {spec.interface} solver {spec.factory!r} ({spec.install})")
    if not solver.available():
        raise InputError("solver.name", name, f"not available on this machine ({spec.install})")
    return solver


#: Pyomo termination conditions (both APIs) -> stochplan's statuses.
_STATUS = {
    "convergenceCriteriaSatisfied": "optimal",
    "optimal": "optimal",  # appsi
    "maxTimeLimit": "time_limit",
    "iterationLimit": "iteration_limit",
    "maxIterations": "iteration_limit",  # appsi
    "objectiveLimit": "objective_limit",
    "minStepLength": "numerical",
    "provenInfeasible": "infeasible",
    "infeasible": "infeasible",  # appsi
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
    strategy = PRICING[options.pricing]
    if strategy is not None:
        out["simplex_dual_edge_weight_strategy"] = strategy
    return out


def solve_model(model: Any, options: SolverOptions) -> SolveOutcome:
    """Solve a Pyomo model with the interface ``options.name`` names and load the solution if
    there is one."""
    solver = make_solver(options.name)
    if SOLVERS[options.name].interface == "appsi":
        return _solve_appsi(solver, model, options)
    return _solve_contrib(solver, model, options)


def _solve_contrib(solver: Any, model: Any, options: SolverOptions) -> SolveOutcome:
    """:func:`solve_model` with a ``pyomo.contrib.solver`` interface."""
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
    has_solution = res.solution_status.name in ("optimal", "feasible")
    if has_solution:
        res.solution_loader.load_vars()
    return _outcome(res.termination_condition.name,
                    res.incumbent_objective if has_solution else None, res.objective_bound,
                    seconds, str(getattr(res, "solver_log", "") or ""))


def _solve_appsi(solver: Any, model: Any, options: SolverOptions) -> SolveOutcome:
    """:func:`solve_model` with a ``pyomo.contrib.appsi`` interface (options in its config and
    ``highs_options``; the solution is loaded only if there is one)."""
    config = solver.config
    config.stream_solver = options.tee
    config.load_solution = False
    if options.time_limit is not None:
        config.time_limit = options.time_limit
    if options.mip_rel_gap is not None:
        config.mip_gap = options.mip_rel_gap
    solver_options = highs_options(options)
    if options.threads is not None:
        solver_options["threads"] = options.threads
    solver.highs_options = solver_options
    start = time.perf_counter()
    res = solver.solve(model)
    seconds = time.perf_counter() - start
    objective = res.best_feasible_objective
    if objective is not None:
        res.solution_loader.load_vars()
    return _outcome(res.termination_condition.name, objective, res.best_objective_bound,
                    seconds, "")


def _outcome(condition: str, objective: float | None, bound: float | None, seconds: float,
             log: str) -> SolveOutcome:
    status = _STATUS.get(condition, condition)
    bound = float(bound) if bound is not None and math.isfinite(bound) else None
    if bound is None and status == "optimal" and objective is not None:
        bound = float(objective)  # an LP solved to optimality: the bound is the objective
    return SolveOutcome(
        status=status,
        objective=float(objective) if objective is not None else None,
        bound=bound,
        gap=relative_gap(objective, bound),
        seconds=seconds,
        log=log,
    )


# ----------------------------------------------------------------------------------------------
# Ctrl-C and SIGTERM during a HiGHS solve
#
# Python runs a signal handler only between bytecodes of the main thread, so Ctrl-C would wait
# for HiGHS to return (minutes, for a large MIP). Inside :func:`interruptible`, every
# ``highspy.Highs.run`` (Pyomo's interfaces, the matrix backend and the L-shaped method all
# call it) registers HiGHS's interrupt callbacks; the signal handler, which does run when HiGHS
# calls back into Python, asks HiGHS to stop, and the interrupt is raised as soon as ``run``
# returns. Outside a HiGHS solve the handler raises at once.
#
# HiGHS does not call back everywhere: its MIP solver polls the interrupt only between its own
# stages, not while it solves the root LP or dives from it (the electronics EF at 1,000
# scenarios, a MIP: a signal 1.5 s into its 7.7 s solve was honoured 6.3 s later). So a large
# model (:data:`THREAD_NONZEROS`) is solved in a worker thread while the main thread waits,
# where signals reach it: HiGHS is asked to stop, and if it has not within
# :data:`STOP_GRACE` seconds the interrupt is raised anyway, the solve left to end in its
# daemon thread (its result unused; nothing is stored during a solve).

_GUARD = {"active": False, "patched": False}
_RUNNING: list[Any] = []
_PENDING: list[type[BaseException]] = []
#: Models with at least this many nonzeros are solved in a worker thread inside
#: :func:`interruptible` (small ones, the recourse LPs of a decomposition solved by the
#: thousand, are not: a thread per solve would cost more than it could save).
THREAD_NONZEROS = 100_000
#: Seconds a worker thread's HiGHS is given to stop after a signal before the interrupt is
#: raised without it.
STOP_GRACE = 0.5


@contextlib.contextmanager
def interruptible() -> Iterator[None]:
    """Within: SIGINT raises :class:`KeyboardInterrupt` and SIGTERM
    :class:`~stochplan.errors.Terminated`, stopping a running HiGHS solve at once (see above).
    Only in the main thread; elsewhere (or nested) it changes nothing."""
    if _GUARD["active"] or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    _GUARD["active"] = True
    _PENDING.clear()
    try:
        for sig in previous:
            signal.signal(sig, _on_signal)
        if "highspy" in sys.modules:
            patch_highs()
        yield
    finally:
        _GUARD["active"] = False
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def patch_highs() -> None:
    """Make ``highspy.Highs.run`` interruptible inside :func:`interruptible` (idempotent;
    outside it ``run`` is HiGHS's own). Called before solving starts."""
    if _GUARD["patched"]:
        return
    import highspy

    original = highspy.Highs.run

    def run(self: Any) -> Any:
        if not _GUARD["active"]:
            return original(self)
        if _PENDING:  # a signal came in between two solves
            raise _PENDING.pop()()
        self.HandleUserInterrupt = True
        _RUNNING.append(self)
        if self.getNumNz() >= THREAD_NONZEROS:
            status = _run_in_thread(original, self)  # raises (HiGHS left running) on a signal
        else:
            try:
                status = original(self)
            finally:
                _RUNNING.remove(self)
                self.HandleUserInterrupt = False
        if _PENDING:
            raise _PENDING.pop()()
        return status

    highspy.Highs.run = run  # type: ignore[method-assign]
    _GUARD["patched"] = True


def _run_in_thread(original: Any, h: Any) -> Any:
    """``original(h)`` (HiGHS's own ``run``) in a daemon thread, the main thread waiting where
    signals reach it; ``h`` is in ``_RUNNING`` and is taken out when HiGHS returns. After a
    signal, HiGHS gets :data:`STOP_GRACE` seconds to stop; then the interrupt is raised and
    HiGHS is left to stop at its next check (``h`` stays asked to)."""
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["status"] = original(h)
        except BaseException as exc:  # handed to the waiting thread
            box["error"] = exc

    worker = threading.Thread(target=work, name="highs", daemon=True)
    worker.start()
    give_up = math.inf
    while worker.is_alive():
        worker.join(0.05)
        if _PENDING and give_up == math.inf:
            give_up = time.monotonic() + STOP_GRACE
        if time.monotonic() > give_up and worker.is_alive():
            _RUNNING.remove(h)
            raise _PENDING.pop()()
    _RUNNING.remove(h)
    h.HandleUserInterrupt = False
    if "error" in box:
        raise box["error"]
    return box["status"]


def _on_signal(signum: int, frame: Any) -> None:
    from stochplan.errors import Terminated

    exc: type[BaseException] = KeyboardInterrupt if signum == signal.SIGINT else Terminated
    if _RUNNING:  # called back from inside HiGHS: stop it; `run` raises when it returns
        _PENDING.append(exc)
        for h in _RUNNING:
            h.cancelSolve()
        return
    raise exc()
