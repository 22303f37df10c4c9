"""Progressive hedging under MPI: mpi-sppy's PH hub with a Lagrangian bound and an incumbent.

Works on any module that follows mpi-sppy's contract. Run it under ``mpiexec``; every rank
calls :func:`solve_ph` with the same arguments, rank 0 gets the :class:`SolveResult` and the
others ``None``.

How the ranks are used (mpi-sppy calls each role a cylinder):

===========  ====================================================================
ranks        cylinders
===========  ====================================================================
1            PH alone: every other iteration the hub computes a Lagrangian bound
             itself, and every iteration it evaluates xbar and its subproblems'
             plans as incumbents; it stops at the gap target like the others
2            PH hub (computing its own Lagrangian bound) + incumbent spoke
3 or more    PH hub + Lagrangian bound spoke + incumbent (xhat shuffle) spoke;
             ranks beyond 3 go to the hub (mpi-sppy's flexible rank assignment)
===========  ====================================================================

Who solves the subproblems (:attr:`PHOptions.backend`): by default the highspy guest of
:mod:`stochplan.solve.ph_highs`, HiGHS models compiled once from the matrix backend with no
Pyomo model per scenario (electronics LP with lost sales, 1,000 scenarios, 3 ranks: 1 % in
10.3 s with 0.33 GiB per rank, where plain ``generic_cylinders`` is at 8.9 % after 300 s;
5,000 scenarios in 44.9 s with 0.51 GiB; ``benchmarks/RESULTS.md``, "Progressive hedging at
scale"). Modules whose scenarios do not
share one matrix, and rho ``"sep"``, take the Pyomo path (as does ``backend = "pyomo"``),
described here.

What makes the Pyomo path faster than a plain ``generic_cylinders`` run (measured, see the
``Progressive hedging`` section of ``benchmarks/RESULTS.md``):

- **Bundles.** Scenarios are grouped into mpi-sppy "proper bundles" (each bundle is the
  extensive form of a block of consecutive scenarios): two per hub rank, of at most
  :data:`MAX_AUTO_BUNDLE` scenarios. Few large bundles need far fewer PH iterations, give a
  much stronger bound at iteration 0 and far less Pyomo overhead per iteration, and their
  plans are feasible for whole blocks of scenarios, so incumbents come early.
- **Persistent solvers told what changes.** Pyomo's HiGHS interfaces re-scan the whole model
  before each re-solve and rebuild every constraint that holds a fixed variable; the
  subproblem solvers here are told which parts change in each role (and the hub hands its
  new proximal cuts over directly), so HiGHS re-solves warm. Evaluating a candidate plan on
  2 bundles of 50 scenarios went from 10-12 s to 0.16 s.
- **Linearised proximal term** for bundles of more than :data:`MAX_QP_BUNDLE` scenarios and
  for integer models (HiGHS's QP solver is slow on bundle-sized problems, and HiGHS has no
  MIQP); small bundles keep the exact quadratic term (Pyomo's ``highs`` interface).
- **Rho:** 1 for every variable, doubled or halved by mpi-sppy's primal-dual updater when
  the primal and dual residuals drift apart. On this family it beat the cost-proportional
  rules (SEP, coefficient), which are available as options.
- **Quiet spokes.** The bound and incumbent spokes sleep while they wait for new weights or
  plans instead of polling at full speed, which matters when ranks outnumber cores.

The result's plan is the incumbent's first stage and its recourse table holds the
incumbent's second stage in every scenario, as the cylinder that found it evaluated it (no
re-solve); its objective is the incumbent's expected cost, ``bound`` the best lower bound and
``gap`` the relative gap ``(objective - bound) / max(1, |objective|)``. ``info["history"]``
lists ``[seconds, iteration, bound, incumbent]`` after each PH iteration.

mpi-sppy writes log files (``hub.log``, ``xhatclp.log``, ...) into the working directory when
its modules are imported and prints progress on rank 0; both go to a log directory instead
(:attr:`PHOptions.log_dir`, a temporary directory by default), with each rank's output in
``rank<r>.log``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from stochplan import _mpisppy
from stochplan.errors import InfeasibleError, InputError, SolveError
from stochplan.parallel import abort, in_step_again, on_root
from stochplan.solve.results import SOLVED, SolveResult, decomposition_status
from stochplan.solve.solvers import SOLVERS, relative_gap

log = logging.getLogger(__name__)

#: Rho rules: ``"sep"`` (Watson-Woodruff: |cost| / spread of the iteration-0 solutions),
#: ``"coeff"`` (|cost| x multiplier) and ``"fixed"`` (``default_rho`` everywhere).
RHO_RULES = ("sep", "coeff", "fixed")
#: What solves the subproblems (:attr:`PHOptions.backend`; the first is the default).
BACKENDS = ("highspy", "pyomo")


#: Largest bundle the automatic choice makes (scenarios).
MAX_AUTO_BUNDLE = 250
#: Largest bundle whose PH subproblems keep the exact (quadratic) proximal term by default.
MAX_QP_BUNDLE = 10


@dataclass(frozen=True)
class PHOptions:
    """How progressive hedging runs.

    Attributes
    ----------
    rel_gap : float
        Stop when (incumbent - bound) / max(1, |incumbent|) is at most this.
    max_iterations : int
        PH iteration limit.
    time_limit : float or None
        Seconds of PH (after the subproblems are built); None for no limit. mpi-sppy checks
        it between PH iterations; the highspy guest also hands it to every subproblem solve
        (:class:`stochplan.solve.ph_highs.Deadline`), so a run with MIP bundles stops near it
        rather than at the end of an iteration that outlasts it. The final valuation of the
        best plan on every scenario comes after it and is not cut short.
    rho : {"sep", "coeff", "fixed"}
        How the proximal weights are chosen (see :data:`RHO_RULES`).
    default_rho : float
        Rho of ``"fixed"``, and of variables without a cost under the other rules.
    rho_multiplier : float
        Scales the rho of ``"sep"`` and ``"coeff"``.
    adaptive_rho : bool
        Rescale every rho by 2 when the primal and dual residuals are out of balance
        (mpi-sppy's primal-dual rho updater).
    bundle_size : int or None
        Scenarios per bundle; 1 disables bundling; None chooses from the number of
        scenarios and ranks (:meth:`bundle_size_for`).
    linearize_proximal : bool or None
        Replace the quadratic proximal term by mpi-sppy's outer linearisation. Forced on
        for models with integer variables (HiGHS has no MIQP) and with ``appsi_highs``
        (which rejects quadratic objectives); None: on for bundles of more than
        :data:`MAX_QP_BUNDLE` scenarios (HiGHS's QP solver is slow on large bundles).
    solver : str
        Subproblem solver, a key of :data:`stochplan.solve.solvers.SOLVERS`.
    log_dir : str or None
        Where mpi-sppy's logs go (kept after the run); None: a temporary directory that is
        removed afterwards.
    backend : {"highspy", "pyomo"}
        What solves the subproblems: ``"highspy"`` (the default), HiGHS models built once
        from the matrix backend (:mod:`stochplan.solve.ph_highs`; measured in
        ``benchmarks/RESULTS.md``, "Progressive hedging at scale"), for modules with fixed
        recourse; ``"pyomo"``, a Pyomo model per scenario or bundle
        and its solver interface (any module). Where the guest does not apply (scenario
        matrices that differ, or rho ``"sep"``) ``"highspy"`` runs the Pyomo path, and the
        result's ``info["backend"]`` says why.
    """

    rel_gap: float = 0.01
    max_iterations: int = 200
    time_limit: float | None = None
    rho: str = "fixed"
    default_rho: float = 1.0
    rho_multiplier: float = 1.0
    adaptive_rho: bool = True
    bundle_size: int | None = None
    linearize_proximal: bool | None = None
    solver: str = "highs"
    log_dir: str | None = None
    backend: str = "highspy"

    def __post_init__(self) -> None:
        if not 0 < self.rel_gap < 1:
            raise InputError("ph.rel_gap", self.rel_gap, "must be in (0, 1)")
        if isinstance(self.max_iterations, bool) or not isinstance(self.max_iterations, int) \
                or self.max_iterations < 1:
            raise InputError("ph.max_iterations", self.max_iterations, "must be a positive integer")
        if self.time_limit is not None and not self.time_limit > 0:
            raise InputError("ph.time_limit", self.time_limit, "must be positive seconds")
        if self.rho not in RHO_RULES:
            raise InputError("ph.rho", self.rho, f"expected one of {', '.join(RHO_RULES)}")
        if not self.default_rho > 0:
            raise InputError("ph.default_rho", self.default_rho, "must be positive")
        if not self.rho_multiplier > 0:
            raise InputError("ph.rho_multiplier", self.rho_multiplier, "must be positive")
        if self.bundle_size is not None and (
                isinstance(self.bundle_size, bool) or not isinstance(self.bundle_size, int)
                or self.bundle_size < 1):
            raise InputError("ph.bundle_size", self.bundle_size, "must be a positive integer")
        if self.solver not in SOLVERS:
            raise InputError("ph.solver", self.solver,
                             f"unknown solver (known: {', '.join(SOLVERS)})")
        if self.backend not in BACKENDS:
            raise InputError("ph.backend", self.backend,
                             f"expected one of {', '.join(BACKENDS)}")

    def replace(self, **changes: Any) -> PHOptions:
        return dataclasses.replace(self, **changes)

    def linearize_for(self, bundle_size: int, integer: bool) -> bool:
        """Whether the proximal term is linearised (see :attr:`linearize_proximal`)."""
        if integer or self.solver == "appsi_highs":
            return True
        if self.linearize_proximal is not None:
            return self.linearize_proximal
        return bundle_size > MAX_QP_BUNDLE

    def bundle_size_for(self, n_scenarios: int, n_ranks: int) -> int:
        """Scenarios per bundle for a run: :attr:`bundle_size`, or the automatic choice.

        Automatic: two bundles per hub rank (few large bundles converge in far fewer
        iterations than many small ones), but at most :data:`MAX_AUTO_BUNDLE` scenarios per
        bundle (a bundle is an extensive form: its solve time grows faster than its size).
        """
        if self.bundle_size is not None:
            return max(1, min(self.bundle_size, n_scenarios))
        hub_ranks = n_ranks - len(cylinders_for(n_ranks)) + 1
        return max(1, min(MAX_AUTO_BUNDLE, math.ceil(n_scenarios / (2 * hub_ranks))))


def _solve_highspy(module: ModuleType, names: list[str], creator_kwargs: dict[str, Any],
                   options: PHOptions, comm: Any, allow_partial: bool,
                   progress: Callable[[str], None] | None) -> SolveResult | str | None:
    """``backend = "highspy"``: the same hub and spokes with HiGHS subproblems; or, where the
    guest does not apply, why not (every rank returns the same reason)."""
    from stochplan.solve.ph_highs import NotApplicable, solve_ph_highs

    if options.rho == "sep":
        return 'rho "sep" needs the Pyomo subproblems'
    try:
        return solve_ph_highs(module, names, creator_kwargs, options, comm,
                              allow_partial=allow_partial, progress=progress)
    except NotApplicable as why:
        return why.problem


def cylinders_for(n_ranks: int) -> tuple[str, ...]:
    """The cylinders a run on ``n_ranks`` ranks uses (see the module docstring)."""
    if n_ranks < 1:
        raise ValueError("need at least one rank")
    if n_ranks == 1:
        return ("hub",)
    if n_ranks == 2:
        return ("hub", "xhat")
    return ("hub", "lagrangian", "xhat")


# ----------------------------------------------------------------------------------------------
# The solve


def solve_ph(
    module: ModuleType,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any] | None = None,
    options: PHOptions | None = None,
    comm: Any = None,
    allow_partial: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SolveResult | None:
    """Solve the two-stage problem of ``module`` by progressive hedging.

    Call it on every rank of ``comm`` (default ``MPI.COMM_WORLD``) with the same arguments.

    Parameters
    ----------
    module : module
        Follows mpi-sppy's contract (``scenario_creator`` and ``scenario_denouement`` at
        least). ``INDEX_NAMES`` names the index columns of the plan, as for the EF.
    scenario_names : sequence of str
    creator_kwargs : dict, optional
        Keyword arguments of ``module.scenario_creator``.
    options : PHOptions, optional
    comm : mpi4py communicator, optional
    allow_partial : bool
        Return a result whose gap is above ``options.rel_gap`` (iteration or time limit)
        instead of raising.
    progress : callable, optional
        Called with the name of each phase as it starts (rank 0 only).

    Returns
    -------
    SolveResult or None
        On rank 0: status ``"gap_reached"`` when the gap target was met (``"optimal"`` if
        the gap closed, see :func:`~stochplan.solve.results.decomposition_status`), else
        ``"iteration_limit"``, ``"time_limit"`` or ``"converged"`` (PH converged without
        reaching the target); ``info`` holds ``iterations``, ``stop_reason``, ``ranks``,
        ``cylinders`` and ``bundle_size``. ``None`` on the other ranks.

    Raises
    ------
    InfeasibleError
        On every rank when the first scenario alone has no solution (checked before PH
        starts, naming the constraint families), and on one rank when a subproblem has none
        in PH's first iteration.
    SolveError
        On rank 0 when no feasible first-stage plan was found, or when the gap target was
        missed and ``allow_partial`` is false.
    """
    options = options or PHOptions()
    comm = comm if comm is not None else _world()
    rank, size = comm.Get_rank(), comm.Get_size()
    note = progress if (progress is not None and rank == 0) else (lambda phase: None)
    names = [str(n) for n in scenario_names]
    if not names:
        raise InputError("scenarios", names, "need at least one scenario")
    creator_kwargs = dict(creator_kwargs or {})
    _check_first_scenario(module, names[0], creator_kwargs, comm)
    fallback = None
    if options.backend == "highspy":
        done = _solve_highspy(module, names, creator_kwargs, options, comm, allow_partial,
                              progress)
        if not isinstance(done, str):
            return done
        fallback = done
        if rank == 0:
            log.info("progressive hedging through Pyomo: %s", fallback)
    per_bundle = options.bundle_size_for(len(names), size)
    layout = cylinders_for(size)
    integer = _has_integers(module.scenario_creator(names[0], **creator_kwargs))
    linearize = options.linearize_for(per_bundle, integer)
    timings: dict[str, float] = {}

    log_dir = options.log_dir or (tempfile.mkdtemp(prefix="stochplan-ph-") if rank == 0 else None)
    log_dir = comm.bcast(log_dir, root=0)
    os.makedirs(log_dir, exist_ok=True)
    try:
        note("solve")
        start = time.perf_counter()
        own_dir = None if options.log_dir is not None else log_dir
        with _cylinder_output(comm, os.path.join(log_dir, f"rank{rank}.log"), temp_dir=own_dir):
            mp = _import_mpisppy(log_dir)
            run = _run_wheel(mp, module, names, creator_kwargs, options, per_bundle, layout,
                             linearize, integer, comm)
        timings["solve"] = time.perf_counter() - start
        note("extract")
        start = time.perf_counter()
        with _cylinder_output(comm, os.path.join(log_dir, f"rank{rank}.log"), mode="a",
                              temp_dir=own_dir):
            outcome = _collect(mp, run, module, names, creator_kwargs, options, comm)
        timings["extract"] = time.perf_counter() - start
    finally:
        comm.Barrier()
        if options.log_dir is None and rank == 0:
            shutil.rmtree(log_dir, ignore_errors=True)

    def result() -> SolveResult:  # rank 0's: the run's result, or why there is none
        assert outcome is not None
        info = {
            "iterations": outcome["iterations"],
            "stop_reason": outcome["stop_reason"],
            "ranks": size,
            "cylinders": list(layout),
            "bundle_size": per_bundle,
            "linearized_proximal": linearize,
            "rel_gap_target": options.rel_gap,
            "backend": "pyomo" if fallback is None else f"pyomo (highspy guest: {fallback})",
            "history": outcome["history"],
        }
        if options.log_dir is not None:
            info["log_dir"] = log_dir
        if outcome["plan"] is None:
            raise SolveError(
                f"progressive hedging found no feasible first-stage plan in "
                f"{outcome['iterations']} iterations (stopped: {outcome['stop_reason']}); "
                "allow more iterations or time",
                "no_incumbent")
        objective, bound = outcome["objective"], outcome["bound"]
        gap = relative_gap(objective, bound)
        status = decomposition_status(gap, options.rel_gap, outcome["stop_reason"])
        if status in SOLVED:
            info["stop_reason"] = "gap"
        elif not allow_partial:
            raise SolveError(
                f"progressive hedging stopped ({outcome['stop_reason']}) after "
                f"{outcome['iterations']} iterations with gap "
                f"{gap if gap is not None else float('inf'):.2%} above the target "
                f"{options.rel_gap:.2%} (incumbent {objective:,.2f}, bound "
                f"{'none' if bound is None else f'{bound:,.2f}'}); "
                "ask for partial results to keep it", status)
        timings.update(outcome["timings"])
        return SolveResult(
            method="ph",
            status=status,
            objective=objective,
            bound=bound,
            gap=gap,
            plan=outcome["plan"],
            recourse=outcome["recourse"],
            scenario_names=tuple(names),
            probabilities=outcome["probabilities"],
            timings=timings,
            solver=options.solver,
            info=info,
        )

    return on_root(result, comm if size > 1 else None)  # rank 0's failure ends every rank


def _check_first_scenario(module: ModuleType, name: str, creator_kwargs: dict[str, Any],
                          comm: Any) -> None:
    """Raise :class:`InfeasibleError`, naming the constraint families that cannot all hold,
    when scenario ``name`` alone (its LP relaxation) has no solution.

    mpi-sppy meets an infeasible scenario in PH's iteration 0 and raises a ``RuntimeError``
    on the hub, while each spoke fails in its own way; an instance infeasible in every
    scenario (no labour hours, say) is found here first, by every rank alike (the same
    model), so it is said once and the job ends with status 3.
    """
    from stochplan.solve.diagnose import scenario_alone

    why = scenario_alone(module, name, creator_kwargs)
    if why is None:
        return
    if comm.Get_size() > 1:
        in_step_again()  # every rank found it: rank 0 says it
    raise InfeasibleError(f"scenario {name} alone is infeasible: {why[1]}", why[0])


# ----------------------------------------------------------------------------------------------
# mpi-sppy, quietly


def _world() -> Any:
    """mpi4py's COMM_WORLD. mpi-sppy's hub and spokes need mpi4py even on one rank (its
    cylinders build MPI windows), so without it PH is refused in one line."""
    try:
        from mpi4py import MPI
    except ImportError:
        raise InputError("method", "ph", "progressive hedging needs mpi4py, even on one rank "
                         "(mpi-sppy's hub and spokes use MPI windows): pip install "
                         "'stochplan[mpi]', or use --method ef or lshaped") from None
    return MPI.COMM_WORLD


@dataclass
class _Mpisppy:
    """The mpi-sppy modules and (tuned) classes a run needs (imported once, with logs kept out
    of the cwd)."""

    config: ModuleType
    vanilla: ModuleType
    parsing: ModuleType
    WheelSpinner: type
    LagrangianSpoke: type
    XhatSpoke: type
    Xhat_Eval: type
    PH: type
    PHBase: type
    Hub: type
    Converger: type
    PrimalDualRho: type


_MPISPPY: _Mpisppy | None = None


def _import_mpisppy(log_dir: str) -> _Mpisppy:
    """mpi-sppy's PH machinery (imported with ``log_dir`` as working directory: some of its
    modules open log files there on import), with the cylinder classes tuned as described in
    the module docstring."""
    global _MPISPPY
    if _MPISPPY is not None:
        return _MPISPPY
    mp = _mpisppy.ph_machinery(log_dir)
    lagrangian: Any = mp.LagrangianOuterBound
    xhat_shuffle: Any = mp.XhatShuffleInnerBound
    hub: Any = mp.PHHub

    class QuietLagrangian(lagrangian):
        """mpi-sppy's Lagrangian bound spoke, sleeping while it waits for new weights."""

        def do_while_waiting_for_new_Ws(self, need_solution, warmstart=None):
            time.sleep(_IDLE_SECONDS)

    class QuietXhatShuffle(xhat_shuffle):
        """mpi-sppy's xhat-shuffle incumbent spoke, sleeping while it has nothing new."""

        def update_nonants(self):
            new = super().update_nonants()
            if not new:
                time.sleep(_IDLE_SECONDS)
            return new

    class RecordingHub(hub):
        """mpi-sppy's PH hub, keeping (seconds, iteration, bound, incumbent) per iteration."""

        def is_converged(self, screen_trace: bool = True) -> bool:
            done = super().is_converged(screen_trace)
            if not hasattr(self, "history"):
                self.history: list[tuple[float, int, float, float]] = []
            self.history.append((time.perf_counter() - self.opt.start_time, self.opt._PHIter,
                                 float(self.BestOuterBound), float(self.BestInnerBound)))
            return done

    _MPISPPY = _Mpisppy(mp.config, mp.cfg_vanilla, mp.parsing, mp.WheelSpinner,
                        QuietLagrangian, QuietXhatShuffle, _tuned(mp.Xhat_Eval, "xhat"),
                        _tuned(mp.PH, "hub"), _tuned(mp.PHBase, "bound"), RecordingHub,
                        mp.Converger, mp.PrimalDualRho)
    return _MPISPPY


def _tuned(base: type, role: str) -> type:
    """``base`` (an mpi-sppy SPOpt class) with subproblem solvers tuned for its ``role``."""

    class Tuned(base):  # type: ignore[misc, valid-type]
        def _create_solvers(self, presolve: bool = True) -> None:
            for s in self.local_scenarios.values():
                s._solver_plugin = _subproblem_solver(self.options["solver_name"], role)

        def _update_prox_approx(self) -> None:
            # PHBase's, with two changes: each new proximal cut is handed to the solver as
            # it is made (so the solver need not scan the model for new constraints), and
            # the points are projected on the parabola all at once with numpy instead of one
            # scipy least-squares fit per variable
            tol = self.prox_approx_tol
            for s in self.local_scenarios.values():
                adder = _CutAdder(s._solver_plugin)
                every = _mpisppy.prox_approx_managers(s)
                managers = [m for m in every if not m.xvar.fixed]
                x = np.array([m.xvar.value for m in managers], dtype=float)
                y = np.array([m.xvarsqrd.value or 0.0 for m in managers], dtype=float)
                projected, ok = _project_on_parabola(x, y)
                for manager, p, good in zip(managers, projected.tolist(), ok.tolist()):
                    if good:
                        manager.add_cuts(p, tol, adder)
                    else:
                        manager.check_tol_add_cut(tol, adder)
                for manager in every:
                    manager.xvarsqrd._value = manager.xvar.value ** 2

    Tuned.__name__ = Tuned.__qualname__ = f"Tuned{base.__name__}"
    return Tuned


def _project_on_parabola(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The points of y = t^2 nearest to the points (x, y), and where that is certain.

    The nearest point solves 2t^3 + (1 - 2y) t - x = 0, which has a single real root when
    the point is on or below the parabola (y <= x^2) or y <= 1/2; Newton's method from t = x
    finds it. Elsewhere (``ok`` false) the caller falls back to mpi-sppy's own fit.
    """
    ok = (y <= x * x + 1e-9) | (y <= 0.5)
    t = x.copy()
    for _ in range(50):
        f = 2 * t**3 + (1 - 2 * y) * t - x
        step = f / np.where(ok, 6 * t * t + 1 - 2 * y, 1.0)
        t = np.where(ok, t - step, t)
        if np.all(np.abs(step) <= 1e-12 * np.maximum(1.0, np.abs(t))):
            break
    ok &= np.isfinite(t) & (np.abs(2 * t**3 + (1 - 2 * y) * t - x)
                            <= 1e-8 * np.maximum(1.0, np.abs(x) + np.abs(t) ** 3))
    return t, ok


class _CutAdder:
    """What mpi-sppy's proximal linearisation calls to add a cut to a persistent solver."""

    def __init__(self, solver: Any) -> None:
        self.solver = solver

    def add_constraint(self, con: Any) -> None:
        self.solver.add_constraints([con])


def _subproblem_solver(name: str, role: str) -> Any:
    """A HiGHS interface that re-solves a subproblem without re-reading the whole model.

    Pyomo's persistent HiGHS interfaces re-scan every constraint and variable before each
    solve unless told what can change, and by default turn fixed variables into constants
    (rebuilding each constraint that holds one). In PH only these change:

    ``hub``
        parameters (W, xbar, rho), the objective, and new proximal cuts (constraints, which
        the hub hands to the solver itself as it makes them);
    ``bound``
        parameters and the objective (the Lagrangian spoke);
    ``xhat``
        which nonanticipative variables are fixed, and at what value (incumbent spoke).

    Measured on 2 bundles of 50 scenarios: evaluating a candidate plan took 10-12 s with
    the defaults, 0.16 s like this.
    """
    import pyomo.environ as pyo

    if name == "appsi_highs":
        solver = pyo.SolverFactory("appsi_highs")
        updates = solver.update_config
        updates.treat_fixed_vars_as_params = False
    elif name == "highs":
        solver = pyo.SolverFactory("highs", treat_fixed_vars_as_params=False)
        updates = solver.config.auto_updates
    else:
        return pyo.SolverFactory(SOLVERS[name][0])
    updates.check_for_new_or_removed_constraints = False
    updates.check_for_new_or_removed_vars = False
    updates.update_constraints = False
    updates.update_named_expressions = False
    updates.update_vars = role == "xhat"
    return solver


#: How long an idle spoke sleeps between looks at the hub's buffers, seconds.
_IDLE_SECONDS = 0.02
#: Seconds a rank other than 0 waits after a failure before saying it and ending the job. A
#: failure is often every cylinder's (a scenario infeasible alone: the hub meets it in the
#: same iteration, while a bound spoke then misses an attribute); rank 0, the hub's, says why
#: and ends the job first, so one line is said, and the clearest.
FAILURE_DEFER = 2.0

#: Why a scenario alone is infeasible: (constraint families, the sentence naming them), or
#: None (:func:`stochplan.solve.diagnose.scenario_alone` bound to a module).
Explain = Callable[[str], "tuple[tuple[str, ...], str] | None"]


@contextlib.contextmanager
def _cylinder_output(comm: Any, path: str, mode: str = "w", temp_dir: str | None = None,
                     explain: Explain | None = None) -> Iterator[None]:
    """:func:`_rank_output` to ``path``; a failure on any rank is logged there with its
    traceback, said in one line on the real stderr and, as the other ranks may wait for this
    one in a collective call, ends the whole job. Ctrl-C (or SIGTERM) on a rank ends the job
    with status 130 (143) and the usual message; ``temp_dir`` (the run's own log folder) is
    removed first, as no ``finally`` runs after ``Abort``. An infeasible problem ends it with
    status 3, and ``explain`` names the constraint families of the scenario found infeasible
    alone."""
    from stochplan.errors import Terminated

    try:
        with _rank_output(path, mode):
            try:
                yield
            except BaseException:
                log.exception("progressive hedging failed on rank %d", comm.Get_rank())
                raise
    except KeyboardInterrupt as exc:
        if comm.Get_size() > 1:
            if temp_dir is not None:
                shutil.rmtree(temp_dir, ignore_errors=True)
            stopped = isinstance(exc, Terminated)
            sys.stderr.write(f"stochplan: {'terminated' if stopped else 'interrupted'} (rank "
                             f"{comm.Get_rank()}); the results database is unchanged\n")
            abort(comm, 143 if stopped else 130)
        raise
    except BaseException as exc:
        infeasible, families = _infeasible_subproblem(exc, explain)
        if comm.Get_size() > 1:  # the log folder is kept: the message points to it
            if comm.Get_rank() > 0:
                time.sleep(FAILURE_DEFER)
            if infeasible is not None:
                sys.stderr.write(f"stochplan: infeasible: {infeasible} (mpi-sppy's output: "
                                 f"{path})\n")
            else:
                sys.stderr.write(f"stochplan: progressive hedging failed on rank "
                                 f"{comm.Get_rank()}: {type(exc).__name__}: {exc} (mpi-sppy's "
                                 f"output: {path})\n")
            abort(comm, 3 if infeasible is not None else 1)
        if infeasible is not None:
            raise InfeasibleError(infeasible, families) from exc
        raise


def _infeasible_subproblem(exc: BaseException, explain: Explain | None = None
                           ) -> tuple[str | None, tuple[str, ...]]:
    """What to say when ``exc`` says the problem is infeasible, and the constraint families
    involved: the guest's :class:`InfeasibleError` (a scenario alone, named, with the
    families ``explain`` finds), or mpi-sppy's report of a PH subproblem without a feasible
    solution (a ``RuntimeError`` "Infeasibility detected ..." in iteration 0); else None."""
    if isinstance(exc, InfeasibleError):
        if exc.scenario is not None and explain is not None:
            try:
                why = explain(exc.scenario)
            except Exception:  # a diagnosis that fails must not hide the infeasibility
                log.exception("naming the constraint families of %s failed", exc.scenario)
                why = None
            if why is not None:
                return f"scenario {exc.scenario} alone is infeasible: {why[1]}", why[0]
        return str(exc), exc.families
    if isinstance(exc, RuntimeError) and str(exc).startswith("Infeasibility detected"):
        return ("a scenario subproblem has no feasible solution in PH's first iteration "
                "(`--method ef` names the constraint families that cannot all hold)"), ()
    return None, ()


@contextlib.contextmanager
def _rank_output(path: str, mode: str = "w") -> Iterator[None]:
    """Send this process's stdout and stderr (Python and C level) to ``path``.

    mpi-sppy prints progress on rank 0, its loggers write to the stdout they saw at import,
    its module-level ``logging.debug`` calls configure the root logger on first use, and
    HiGHS may write to the file descriptors directly. Logging handlers left pointing at the
    file are released afterwards.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    root = logging.getLogger()
    before = _stream_handlers()
    with open(path, mode, buffering=1) as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        handlers = [h for h in before if h.stream in (sys.__stdout__, sys.__stderr__)
                    and h not in root.handlers]
        streams = [_swap_stream(h, out) for h in handlers]
        fallback = None
        if not root.handlers:  # else logging.debug() would add a handler writing to `out`
            fallback = logging.StreamHandler(out)
            fallback.setLevel(logging.WARNING)
            root.addHandler(fallback)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(out):
                yield
        finally:
            if fallback is not None:
                root.removeHandler(fallback)
            for h, old in zip(handlers, streams):
                _swap_stream(h, old)
            for logger, h in _stream_handlers(with_logger=True):
                if h.stream is out:
                    if h in before:
                        _swap_stream(h, sys.__stderr__)
                    else:
                        logger.removeHandler(h)
            out.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _swap_stream(handler: logging.StreamHandler, stream: Any) -> Any:
    """Point ``handler`` at ``stream`` (without flushing the old one); return the old one."""
    with handler.lock:  # type: ignore[union-attr]
        old, handler.stream = handler.stream, stream
    return old


def _stream_handlers(with_logger: bool = False) -> list[Any]:
    """Every plain StreamHandler of every logger (with its logger if ``with_logger``)."""
    loggers = [logging.getLogger()] + [
        lg for lg in logging.Logger.manager.loggerDict.values()
        if isinstance(lg, logging.Logger)]
    out: list[Any] = []
    for logger in loggers:
        for h in logger.handlers:
            if type(h) is logging.StreamHandler:
                out.append((logger, h) if with_logger else h)
    return out


# ----------------------------------------------------------------------------------------------
# Bounds and incumbents computed by the hub itself (fewer than 3 ranks)

#: With fewer than 3 ranks the hub computes a Lagrangian bound itself at iteration 1 and
#: every this many iterations (PH alone also tries two incumbent candidates every iteration).
_HUB_BOUND_EVERY = 2


#: PH alone tries every subproblem's plan as incumbent each iteration when it has at most
#: this many subproblems, else one in turn.
_ALL_CANDIDATES = 4


def _hub_bounder(
    mp: _Mpisppy,
    options: PHOptions,
    evaluator_args: tuple[PHOptions, list[str], Callable[..., Any], dict[str, Any],
                          Callable[..., None]] | None,
) -> type:
    """An mpi-sppy converger that makes the hub its own bound (and incumbent) cylinder.

    Called by PH on the hub's ranks at the top of each iteration, once xbar and W are
    updated. It solves the subproblems with W but without the proximal term (a Lagrangian
    bound, valid because the probability-weighted W sum to zero) and hands the bound to the
    hub. With ``evaluator_args`` (PH alone on one rank) it also tries xbar and the
    subproblems' own first stages as incumbents, evaluated on a second copy of the
    subproblems, and stops PH when the gap target is met.
    """
    converger: Any = mp.Converger

    class HubBounder(converger):
        def __init__(self, opt: Any) -> None:
            self.opt = opt
            self.conv = None
            self.evaluator: Any = None
            self.best_objective = math.inf

        def is_converged(self) -> bool:
            opt = self.opt
            if opt._PHIter == 1 or opt._PHIter % _HUB_BOUND_EVERY == 0:
                bound = _lagrangian(opt)
                if bound is not None and math.isfinite(bound):
                    best = opt.best_bound_obj_val
                    opt.best_bound_obj_val = bound if best is None else max(best, bound)
            if evaluator_args is None:
                return False
            if self.evaluator is None:
                self.evaluator = _evaluator(mp, *evaluator_args, opt.mpicomm)
            local = list(opt.local_scenarios.values())
            if len(local) > _ALL_CANDIDATES:  # one subproblem's plan in turn
                local = [local[opt._PHIter % len(local)]]
            for xhat in [_xbar(opt)] + [_nonants(sub) for sub in local]:
                objective = _try_xhat(self.evaluator, xhat)
                if objective is not None and objective < self.best_objective:
                    self.best_objective = objective
                    opt.best_solution_obj_val = objective
            gap = relative_gap(self.best_objective, opt.best_bound_obj_val)
            return gap is not None and gap <= options.rel_gap

    return HubBounder


def _lagrangian(opt: Any) -> float | None:
    """The Lagrangian bound at PH's current weights: subproblems without the proximal term."""
    opt._disable_prox()
    try:
        opt.solve_loop(solver_options=opt._effective_solver_options(opt._PHIter), gripe=False,
                       need_solution=False)
        if opt.no_incumbent_prob() > 0:
            return None
        bound = opt.Ebound(False)
    finally:
        opt._reenable_prox()
    return float(bound) if bound is not None else None


def _evaluator(
    mp: _Mpisppy, options: PHOptions, names: list[str], creator: Callable[..., Any],
    kwargs: dict[str, Any], denouement: Callable[..., None], comm: Any,
) -> Any:
    """An mpi-sppy Xhat_Eval over ``names`` (scenarios or bundles), spread over ``comm``."""
    solver_options = {"mipgap": _mip_gap(options)}
    ev_options = {"solver_name": options.solver, "verbose": False, "toc": False,
                  "iter0_solver_options": solver_options, "iterk_solver_options": solver_options,
                  "solver_options": solver_options, "turn_off_names_check": True}
    ev = mp.Xhat_Eval(ev_options, names, creator, denouement, scenario_creator_kwargs=kwargs,
                      mpicomm=comm)
    ev._lazy_create_solvers()
    return ev


def _try_xhat(ev: Any, xhat: list[float]) -> float | None:
    """Expected cost of first stage ``xhat`` (None if infeasible in some scenario).

    A feasible candidate better than the best so far is cached in ``ev`` with its recourse
    (``ev.load_best_solution()`` puts it back).
    """
    ev._fix_nonants({"ROOT": list(xhat)})
    ev.solve_loop(solver_options=ev.options["solver_options"], need_solution=False)
    if ev.no_incumbent_prob() > 0:
        return None
    objective = float(ev.Eobjective(False))
    ev.update_best_solution_if_improving(objective)
    return objective


# ----------------------------------------------------------------------------------------------
# Subproblems: scenarios or bundles


def _bundles(names: list[str], per_bundle: int) -> dict[str, list[str]]:
    """Consecutive blocks of ``per_bundle`` scenarios (the last may be larger)."""
    n_bundles = max(1, len(names) // per_bundle)
    out = {}
    for b in range(n_bundles):
        lo = b * per_bundle
        hi = len(names) if b == n_bundles - 1 else lo + per_bundle
        out[f"Bundle_{lo}_{hi - 1}"] = names[lo:hi]
    return out


def _bundle_creator(
    bundle_name: str,
    *,
    module: ModuleType,
    members: dict[str, list[str]],
    module_kwargs: dict[str, Any],
) -> Any:
    """One bundle: the extensive form of its scenarios, with its own first stage as nonants.

    The same construction as mpi-sppy's ``ProperBundler``, for any scenario names.
    """
    return _mpisppy.create_bundle(bundle_name, members[bundle_name], module.scenario_creator,
                                  module_kwargs)


def _denouement_for(module: ModuleType, bundled: bool) -> Callable[..., None]:
    own = getattr(module, "scenario_denouement", None)

    def denouement(rank: int, name: str, model: Any) -> None:
        if own is not None and not bundled:
            own(rank, name, model)

    return denouement


# ----------------------------------------------------------------------------------------------
# The wheel


@dataclass
class _Run:
    wheel: Any
    layout: tuple[str, ...]
    per_bundle: int
    members: dict[str, list[str]] | None
    creator: Callable[..., Any]
    creator_kwargs: dict[str, Any]
    denouement: Callable[..., None]
    subproblem_names: list[str]
    cfg: Any
    wall: float


def _config(mp: _Mpisppy, options: PHOptions, trace_dir: str | None, linearize: bool,
            integer: bool) -> Any:
    """An mpi-sppy Config with every option its cylinders read, set from ``options``."""
    cfg = mp.config.Config()
    cfg.proper_bundle_config()
    mp.parsing.add_decomp_args(cfg)
    cfg.solver_name = options.solver
    cfg.default_rho = options.default_rho
    cfg.max_iterations = options.max_iterations
    cfg.time_limit = options.time_limit
    cfg.rel_gap = options.rel_gap
    cfg.linearize_proximal_terms = linearize
    if integer:  # subproblem MIPs need not be solved tighter than the gap target allows
        if "iter0_mipgap" not in cfg:
            cfg.add_mipgap_specs()
        cfg.iter0_mipgap = cfg.iterk_mipgap = _mip_gap(options)
    cfg.lagrangian = True
    if trace_dir is not None:  # each bound spoke writes its bounds over time to a CSV there
        cfg.trace_prefix = os.path.join(trace_dir, "bounds_")
    cfg.xhatshuffle = True
    if options.rho == "sep":
        cfg.sep_rho = True
        cfg.sep_rho_multiplier = options.rho_multiplier
    elif options.rho == "coeff":
        cfg.coeff_rho = True
        cfg.coeff_rho_multiplier = options.rho_multiplier
    return cfg


def _run_wheel(
    mp: _Mpisppy,
    module: ModuleType,
    names: list[str],
    creator_kwargs: dict[str, Any],
    options: PHOptions,
    per_bundle: int,
    layout: tuple[str, ...],
    linearize: bool,
    integer: bool,
    comm: Any,
) -> _Run:
    if per_bundle > 1:
        members = _bundles(names, per_bundle)
        creator: Callable[..., Any] = _bundle_creator
        kwargs = {"module": module, "members": members, "module_kwargs": creator_kwargs}
        sub_names = list(members)
    else:
        members = None
        creator = module.scenario_creator
        kwargs = creator_kwargs
        sub_names = names
    denouement = _denouement_for(module, per_bundle > 1)
    cfg = _config(mp, options, options.log_dir, linearize, integer)
    if per_bundle > 1:
        cfg.turn_off_names_check = True
    beans = (cfg, creator, denouement, sub_names)

    if "lagrangian" in layout:
        bounder = None
    else:
        evaluator_args = (None if "xhat" in layout
                          else (options, sub_names, creator, kwargs, denouement))
        bounder = _hub_bounder(mp, options, evaluator_args)
    hub = mp.vanilla.ph_hub(*beans, scenario_creator_kwargs=kwargs, ph_extensions=None,
                            ph_converger=bounder, rho_setter=None)
    if options.rho == "sep":
        mp.vanilla.add_sep_rho(hub, cfg)
    elif options.rho == "coeff":
        mp.vanilla.add_coeff_rho(hub, cfg)
    hub["opt_kwargs"]["options"]["cfg"] = cfg
    hub["opt_class"] = mp.PH
    spokes = cylinders(mp, layout, beans, kwargs, mp.PHBase, mp.Xhat_Eval,
                       adaptive_rho=options.adaptive_rho, hub=hub)
    wheel, seconds = spin(mp, hub, spokes, layout, comm)
    return _Run(wheel, layout, per_bundle, members, creator, kwargs, denouement, sub_names, cfg,
                seconds)


def cylinders(mp: Any, layout: tuple[str, ...], beans: tuple[Any, ...], kwargs: Any,
              lagrangian_class: Any, xhat_class: Any, adaptive_rho: bool, hub: dict[str, Any],
              options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Complete ``hub`` (mpi-sppy's hub dictionary; with the primal-dual adaptive rho when
    ``adaptive_rho``) and return the spokes ``layout`` names: a Lagrangian bound and an
    xhat-shuffle incumbent finder, solved by ``lagrangian_class`` and ``xhat_class``.
    ``options`` join the hub's and each spoke's options (the highspy guest's callouts). The
    Pyomo path and the highspy guest build their wheels with it."""
    extra = options or {}
    if adaptive_rho:
        mp.vanilla.extension_adder(hub, mp.PrimalDualRho)
        hub["opt_kwargs"]["options"]["primal_dual_rho_options"] = {
            "verbose": False, "rho_update_threshold": 2.0, "primal_bias": 1.0}
    hub["opt_kwargs"]["options"].update(extra)
    hub["hub_class"] = mp.Hub
    spokes = []
    if "lagrangian" in layout:
        spoke = mp.vanilla.lagrangian_spoke(*beans, scenario_creator_kwargs=kwargs,
                                            rho_setter=None)
        spoke["spoke_class"] = mp.LagrangianSpoke
        spoke["opt_class"] = lagrangian_class
        spoke["opt_kwargs"]["options"].update(extra)
        spokes.append(spoke)
    if "xhat" in layout:
        spoke = mp.vanilla.xhatshuffle_spoke(*beans, scenario_creator_kwargs=kwargs)
        spoke["spoke_class"] = mp.XhatSpoke
        spoke["opt_class"] = xhat_class
        spoke["opt_kwargs"]["options"].update(extra)
        looper = spoke["opt_kwargs"]["options"]["xhat_looper_options"]
        looper.pop("dump_prefix", None)
        looper.pop("csvname", None)
        spokes.append(spoke)
    return spokes


def spin(mp: Any, hub: dict[str, Any], spokes: list[dict[str, Any]], layout: tuple[str, ...],
         comm: Any) -> tuple[Any, float]:
    """Spin the wheel of ``hub`` and ``spokes`` on ``comm``: (the wheel, its wall seconds).
    Ranks beyond one per cylinder go to the hub (the spokes keep one rank each)."""
    if comm.Get_size() > len(layout):
        hub["rank_ratio"] = float(comm.Get_size() - len(spokes))
    wheel = mp.WheelSpinner(hub, spokes)
    start = time.perf_counter()
    wheel.spin(comm_world=comm)
    return wheel, time.perf_counter() - start


# ----------------------------------------------------------------------------------------------
# Collecting the result on rank 0


def _collect(
    mp: _Mpisppy,
    run: _Run,
    module: ModuleType,
    names: list[str],
    creator_kwargs: dict[str, Any],
    options: PHOptions,
    comm: Any,
) -> dict[str, Any] | None:
    """Bounds, iterations and the incumbent with its recourse, on rank 0 (None elsewhere).

    The incumbent comes from the cylinder that found it (its models still hold the
    incumbent's recourse in every scenario): the incumbent spoke, or the hub's own evaluator
    when PH runs alone. If there is none, PH's final xbar is evaluated on every scenario.
    """
    wheel = run.wheel
    rank = comm.Get_rank()
    on_hub = wheel.strata_rank == 0
    opt = wheel.spcomm.opt
    timings: dict[str, float] = {"ph": run.wall}
    start = time.perf_counter()

    # the hub's own candidates: with PH alone, its best tried plan and its final xbar; and,
    # whatever the ranks, its current solution when the subproblems agree on the first stage
    # (then the subproblems' solutions together are a feasible solution of the whole problem)
    bounder = opt.convobject if on_hub else None
    own = math.inf
    if bounder is not None and getattr(bounder, "evaluator", None) is not None:
        final = _try_xhat(bounder.evaluator, _xbar(opt))
        if final is not None and final < bounder.best_objective:
            bounder.best_objective = final
        own = bounder.best_objective
    consensus = math.inf
    if on_hub and opt.convergence_diff() <= _CONSENSUS:
        opt.disable_W_and_prox()
        consensus = float(opt.Eobjective(False))
        opt.reenable_W_and_prox()

    # rank 0 is the hub's first rank: it knows the bounds, the iteration count and the winner
    if rank == 0:
        spcomm = wheel.spcomm
        bound, spoke_best = float(wheel.BestOuterBound), float(wheel.BestInnerBound)
        if opt.best_bound_obj_val is not None and math.isfinite(opt.best_bound_obj_val):
            bound = max(bound, float(opt.best_bound_obj_val))
        winner = spcomm.last_ib_idx
        candidates = [(own, "alone", 0), (consensus, "consensus", 0)]
        if math.isfinite(spoke_best) and winner is not None and winner > 0:
            candidates.append((spoke_best, "spoke", winner))
        objective, source, cylinder = min(candidates, key=lambda c: c[0])
        if not math.isfinite(objective):
            source = "none"
        iterations = int(opt._PHIter)
        elapsed = time.perf_counter() - opt.start_time
        history = [list(h) for h in getattr(spcomm, "history", [])]
    else:
        bound = objective = math.nan
        iterations, elapsed, source, cylinder, history = 0, 0.0, None, None, []
    source, cylinder = comm.bcast((source, cylinder), root=0)

    local = None
    if source != "none":
        if wheel.strata_rank == cylinder:
            holder = {"alone": getattr(bounder, "evaluator", None), "consensus": opt,
                      "spoke": opt}[source]
            if source == "consensus" or holder.load_best_solution():
                local = _local_solution(holder, module)
    else:
        # nothing found: the hub evaluates its final xbar on every subproblem
        value = None
        if on_hub:
            ev = _evaluator(mp, options, run.subproblem_names, run.creator,
                            run.creator_kwargs, run.denouement, opt.mpicomm)
            value = _try_xhat(ev, _xbar(opt))
            local = _local_solution(ev, module) if value is not None else None
        if rank == 0:
            objective = value if value is not None else math.inf
    pieces = comm.gather(local, root=0)
    timings["incumbent"] = time.perf_counter() - start
    if rank != 0:
        return None

    stop_reason = _stop_reason(iterations, elapsed, options)
    pieces = [p for p in pieces if p is not None]
    if not pieces or not math.isfinite(objective):
        return {"plan": None, "iterations": iterations, "stop_reason": stop_reason,
                "timings": timings, "history": history}
    frames: list[pd.DataFrame] = []
    probs: dict[str, float] = {}
    for p in pieces:
        frames.extend(p["recourse"])
        probs.update(p["probabilities"])
    order = {n: i for i, n in enumerate(names)}
    frames.sort(key=lambda f: order[str(f["scenario"].iloc[0])] if len(f) else -1)
    return {
        "plan": _plan_table(module, names[0], creator_kwargs, pieces[0]["nonants"]),
        "recourse": pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(),
        "objective": float(objective),
        "bound": bound if math.isfinite(bound) else None,
        "iterations": iterations,
        "stop_reason": stop_reason,
        "history": history + [[elapsed, iterations, bound, float(objective)]],
        "probabilities": np.array([probs[n] for n in names]),
        "timings": timings,
    }


#: Mean |x - xbar| below which the hub's subproblems count as agreeing on the first stage.
_CONSENSUS = 1e-7


def _mip_gap(options: PHOptions) -> float:
    """Relative MIP gap of integer subproblems: a tenth of the gap target."""
    return options.rel_gap / 10


def _has_integers(model: Any) -> bool:
    import pyomo.environ as pyo

    return any(v.is_integer() for v in model.component_data_objects(pyo.Var, descend_into=True))


def _stop_reason(iterations: int, elapsed: float, options: PHOptions) -> str:
    if iterations >= options.max_iterations:
        return "iteration_limit"
    if options.time_limit is not None and elapsed >= options.time_limit:
        return "time_limit"
    return "converged"


def _nonants(model: Any) -> list[float]:
    return _mpisppy.nonant_values(model)


def _xbar(opt: Any) -> list[float]:
    return _mpisppy.xbar_values(next(iter(opt.local_scenarios.values())))


def _local_solution(opt: Any, module: ModuleType) -> dict[str, Any]:
    """This rank's part of the incumbent: its nonants, and every local scenario's recourse."""
    import pyomo.environ as pyo

    from stochplan.solve.ef import var_table

    index_names = tuple(getattr(module, "INDEX_NAMES", ()))
    nonants = None
    frames = []
    probs = {}
    for sub in opt.local_scenarios.values():
        if nonants is None:
            nonants = _mpisppy.nonant_values(sub)
        for name, block in _mpisppy.ef_scenarios(sub):
            own = {id(v) for v in _mpisppy.nonant_vars(block) + _mpisppy.added_vars(block)}
            second = [v for v in block.component_data_objects(pyo.Var, descend_into=True)
                      if id(v) not in own]
            table = var_table(second, index_names)
            table.insert(0, "scenario", name)
            frames.append(table)
            probs[name] = _mpisppy.probability(block)
    return {"nonants": nonants, "recourse": frames, "probabilities": probs}


def _plan_table(module: ModuleType, name: str, creator_kwargs: dict[str, Any],
                values: list[float]) -> pd.DataFrame:
    """The plan as a table (variable, index columns, value), named from one scenario model."""
    from stochplan.solve.ef import var_table

    model = module.scenario_creator(name, **creator_kwargs)
    nonants = _mpisppy.nonant_vars(model)
    if len(nonants) != len(values):
        raise SolveError(f"the incumbent has {len(values)} first-stage values, the model "
                         f"{len(nonants)}")
    for v, x in zip(nonants, values):
        v.set_value(x, skip_validation=True)
    return var_table(nonants, tuple(getattr(module, "INDEX_NAMES", ())))
