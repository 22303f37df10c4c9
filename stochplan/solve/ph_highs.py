r"""Progressive hedging with highspy subproblems: mpi-sppy's hub and spokes, no Pyomo model per
scenario.

mpi-sppy stays the engine (PH hub, Lagrangian bound spoke, xhat-shuffle incumbent spoke, rho
updates, bounds, gap, the MPI layout of :func:`stochplan.solve.ph.cylinders_for`); its
AML-agnostic interface lets a *guest* own the subproblems. This module is that guest, built on
the matrix backend (:mod:`stochplan.solve.matrix`): the scenarios are compiled once to arrays
and each PH subproblem (a bundle of consecutive scenarios, or one scenario) becomes one HiGHS
model, the bundle's extensive form as a sparse matrix with its first-stage columns once.
mpi-sppy keeps only a small Pyomo *host* model per subproblem (its first-stage variables and
an empty objective, on which it stores W, rho and xbar); the guest reads them from there before
each solve and writes the first-stage solution back. The code that talks to mpi-sppy is in
``stochplan/_mpisppy_highs.py``; nothing here imports mpi-sppy. It is what
:func:`stochplan.solve.ph.solve_ph` runs by default (``[ph] backend = "highspy"``); a module
whose scenarios do not compile to one matrix raises :class:`NotApplicable`, and ``solve_ph``
then takes its Pyomo path.

A PH subproblem (minimisation form, first-stage columns ``x``, recourse ``y``)::

    min  c'x + q'y + [W'x] + [rho/2 |x - xbar|^2]      (terms in brackets when switched on)

Only objective coefficients change from one PH iteration to the next (and the first-stage
bounds when a spoke evaluates a candidate plan), so HiGHS re-solves each subproblem warm from
its previous basis. The proximal term is either

``"linear"`` (default, and always for integer models: HiGHS has no MIQP)
    an outer approximation of ``x_j^2`` by tangent cuts ``z_j >= 2 a x_j - a^2``, as mpi-sppy
    does for MIPs: a column ``z_j`` per first-stage column with cost ``rho_j / 2``, a cut at
    each iteration's ``xbar_j`` before the solve and, after it, a cut at ``x_j`` wherever the
    approximation is off by more than :data:`PROX_TOL` (then the subproblem is re-solved, at
    most :data:`PROX_ROUNDS` times, until the approximation is within the tolerance); the problem
    stays an LP, re-solved warm;
``"quadratic"``
    the exact term as HiGHS's QP (a diagonal Hessian on the first-stage columns).

Memory: a HiGHS object keeps its solver data (factorisation, scaled copy, work arrays) after a
solve, about ten times the model itself; each subproblem therefore keeps only its model
between solves and re-creates the HiGHS object for the next one, warm from the saved basis
(:meth:`Subproblem.park`). Measured with ``benchmarks/specs/decomp_child.py`` (electronics
with lost sales, 3 ranks, 1 % target), peak resident memory per rank before and after: S =
5,000 (each rank holding 20 bundles of 250 scenarios) 1.45/1.18/1.15 GiB and 0.51/0.45/0.44
GiB; S = 1,000 0.48/0.42/0.41 GiB and 0.32/0.31/0.31 GiB; same objective and bound.

Bounds and incumbents are exact whatever the proximal mode: the Lagrangian bound solves
without the proximal term, and every plan is valued with its first stage fixed. The plan
returned is valued again at the end on every scenario (:func:`stochplan.solve.matrix.solve_each`),
which also gives its recourse table.

PH's time limit (:attr:`~stochplan.solve.ph.PHOptions.time_limit`) reaches every subproblem
solve (:class:`Deadline`): mpi-sppy checks it only between PH iterations, and with MIP bundles
one iteration, or one pass of a spoke, outlasts it (lot sizing ``furniture``, poisson:1000,
bundles of 10, 300 s limit: no answer after 18 minutes). Each solve is given the seconds left
(at least :data:`DEADLINE_FLOOR`); a MIP stopped there keeps its incumbent as the solution and
HiGHS's dual bound as the bound (valid at any stop); a solve stopped without any solution goes
on to its first one (a MIP) or to its optimum (an LP), so a failed solve still means what it
meant before (infeasible), which mpi-sppy relies on (iteration 0 needs every subproblem's
solution; a failed bound solve keeps its previous bound). Once the limit has passed, a
subproblem is not solved again (:meth:`Subproblem.solve`): a plan's valuation gives no value
(the plan is not taken), any other solve gives back the last solution with no value and a bound
of -inf, so PH's iterate stands until the hub stops at its next check and the Lagrangian pass
under way sums to -inf, which is never taken as a bound. The final valuation of the best plans
on every scenario still runs to the end: it is the answer's objective. Measured (furniture,
poisson:200 seed 5, bundles of 10, rel_gap 0.001, 60 s limit, 3 ranks, 2 shared cores): the
run returned after 452.7 s (PH 442.7 s) before, 86.8 s (PH 77.4 s) with the deadline; the 17 s
past the limit are the bundles not yet solved at iteration 0 (mpi-sppy needs each one's
solution), each given the floor. With hundreds of MIP bundles per rank those bundles took
minutes (furniture, poisson:5000, bundles of 10: 794 s for a 300 s limit), so a MIP bundle
first met after the limit is solved as its LP relaxation instead (:meth:`Subproblem._relaxed`):
its optimum bounds the bundle's from below, so the Lagrangian bound stays valid (weaker).
PH's average then mixes LP solutions and rounds to a poor plan, so the plans of the bundles
solved as MIPs nearest it are valued too (:func:`stochplan._mpisppy_highs._fallback_plans`).
Measured (furniture, poisson:1000 seed 0, bundles of 10, 60 s limit, 3 ranks): PH 157 s,
plan 13,438.34, bound 15,270.08 before; PH 71 s, plan 14,614.96, bound 15,828.36 after.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import scipy.sparse as sp

from stochplan.errors import InfeasibleError, InputError, SolveError
from stochplan.parallel import on_root
from stochplan.solve import matrix
from stochplan.solve.ph import PHOptions, cylinders_for
from stochplan.solve.results import SOLVED, SolveResult, decomposition_status
from stochplan.solve.risk import VAR_NAME
from stochplan.solve.solvers import SolverOptions, relative_gap

log = logging.getLogger(__name__)

#: How the proximal term reaches HiGHS (see the module docstring).
PROX_MODES = ("linear", "quadratic")
#: A tangent cut is added at x_j when rho_j / 2 * (x_j^2 - z_j) exceeds this share of
#: max(1, |subproblem objective|) / (number of first-stage columns); :func:`solve_ph_highs`
#: uses a tenth of the gap target when that is larger (much tighter, HiGHS may fail on the
#: crowded cuts: status "unknown" at 1e-10). Measured on electronics with lost sales, S = 100,
#: bundles of 5, 3 ranks, 1 % target: no re-solve (mpi-sppy's way: the cuts serve the next
#: iteration) missed the target after 100 iterations (310 s); re-solving to 1e-6 took 7
#: iterations (31 s), to 1e-3 8 iterations (19 s).
PROX_TOL = 1e-6
#: Re-solves at most per PH solve to tighten the linearised proximal term (about 10-20 are
#: used on the electronics instance, measured).
PROX_ROUNDS = 50
#: ... for integer subproblems (each round is a MIP): the cuts made after a solve serve the
#: next one, as in mpi-sppy.
PROX_ROUNDS_MIP = 0
#: Candidate plans whose expected costs differ by at most this (relative) count as equal.
TIE = 1e-9
#: Seconds a subproblem solve is given at least while PH has a time limit: HiGHS asked with
#: (nearly) 0 s returns nothing, and a solve started just before the limit should still end
#: with a solution.
DEADLINE_FLOOR = 1.0


class Deadline:
    """When PH's time limit ends, on :func:`time.perf_counter`'s clock (mpi-sppy's).

    Parameters
    ----------
    seconds : float or None
        The time limit; None for none (then :meth:`time_limit` is always infinite).
    floor : float
        Seconds a solve is given at least (:data:`DEADLINE_FLOOR`).
    clock : callable
        Seconds, monotonic (:func:`time.perf_counter`; a test may pass its own).

    The clock starts at :meth:`start`, which :class:`Guest` calls when it builds its first
    subproblem: mpi-sppy starts its own clock just before (when its cylinder object is
    created, before the subproblems), so the deadline is never earlier than mpi-sppy's check.

    Examples
    --------
    >>> now = [100.0]
    >>> d = Deadline(5.0, clock=lambda: now[0])
    >>> d.start(); d.time_limit()
    5.0
    >>> now[0] = 104.5; d.time_limit(), d.passed
    (1.0, False)
    >>> now[0] = 106.0; d.time_limit(), d.passed
    (1.0, True)
    """

    def __init__(self, seconds: float | None = None, floor: float = DEADLINE_FLOOR,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        if seconds is not None and not seconds > 0:
            raise InputError("ph.time_limit", seconds, "must be positive seconds")
        self.seconds = seconds
        self.floor = floor
        self._clock = clock
        self.at: float | None = None

    def start(self) -> None:
        """Start the clock (once: later calls change nothing)."""
        if self.seconds is not None and self.at is None:
            self.at = self._clock() + self.seconds

    @property
    def passed(self) -> bool:
        """Whether the deadline has come."""
        return self.at is not None and self._clock() >= self.at

    def time_limit(self) -> float:
        """HiGHS's ``time_limit`` for a solve starting now: the seconds left, at least
        :attr:`floor`; infinite without a limit or before :meth:`start`."""
        if self.at is None:
            return math.inf
        return max(self.floor, self.at - self._clock())


# ----------------------------------------------------------------------------------------------
# One subproblem


@dataclass(frozen=True)
class Outcome:
    """A subproblem solve, in minimisation form.

    Attributes
    ----------
    ok : bool
        HiGHS found an optimal solution (a feasible one within the MIP gap for MIPs).
    value : float
        The objective with the terms switched on (W, proximal), at the solution.
    bound : float
        A lower bound on that objective (``value`` for LPs, HiGHS's dual bound for MIPs).
    cost : float
        The subproblem's own expected cost ``c'x + q'y`` at the solution (no PH terms).
    first : ndarray
        The first-stage values.
    stale : bool
        Not solved: PH's time limit had passed (:meth:`Subproblem.solve`); ``first`` is the
        last solution, ``value`` and ``cost`` are +inf and ``bound`` -inf.
    """

    ok: bool
    value: float
    bound: float
    cost: float
    first: np.ndarray
    stale: bool = False


def restrict(compiled: matrix.CompiledScenarios,
             members: Sequence[int]) -> matrix.CompiledScenarios:
    """The compiled scenarios ``members`` (indices) alone, with their own probabilities."""
    idx = np.asarray(members, dtype=np.int64)
    return dataclasses.replace(
        compiled, names=tuple(compiled.names[i] for i in idx),
        probabilities=compiled.probabilities[idx], rhs=compiled.rhs[idx],
        col_lo=compiled.col_lo[idx], col_hi=compiled.col_hi[idx], cost=compiled.cost[idx],
        offset=compiled.offset[idx], cuts=None)  # the family's cuts count scenarios whole


def _lp_feasible(compiled: matrix.CompiledScenarios) -> bool:
    """Whether the LP relaxation of ``compiled``'s extensive form has a solution."""
    ef = matrix.extensive_form_arrays(compiled)
    h = matrix._highs(SolverOptions(threads=1))
    matrix._pass(h, ef["A"], np.zeros(len(ef["cost"])), ef["col_lo"], ef["col_hi"],
                 ef["row_lo"], ef["row_hi"], np.zeros(len(ef["cost"]), bool))
    h.run()
    return str(h.getModelStatus().name) != "kInfeasible"


class Subproblem:
    """One PH subproblem (a bundle's extensive form) as a HiGHS model re-solved warm.

    Parameters
    ----------
    compiled : CompiledScenarios
        Every scenario of the problem.
    members : sequence of int
        The scenarios of this subproblem; its objective is their conditional expectation and
        its probability their total probability.
    prox : {"linear", "quadratic"}
        How the proximal term is written (forced to ``"linear"`` with integer columns).
    mip_rel_gap : float
        HiGHS's relative gap for integer subproblems.
    prox_tol : float
        Relative accuracy of the linearised proximal term (see :data:`PROX_TOL`).
    deadline : Deadline, optional
        PH's time limit, which every solve respects (none by default).
    """

    def __init__(self, compiled: matrix.CompiledScenarios, members: Sequence[int],
                 prox: str = "linear", mip_rel_gap: float = 1e-4,
                 prox_tol: float = PROX_TOL, deadline: Deadline | None = None) -> None:
        if prox not in PROX_MODES:
            raise InputError("ph.prox", prox, f"expected one of {', '.join(PROX_MODES)}")
        p = compiled.probabilities
        members = list(members)
        self.probability = float(p[members].sum() / p.sum())
        ef = matrix.extensive_form_arrays(restrict(compiled, members))
        n1 = self.n1 = compiled.n_first
        self.integer = bool(np.asarray(ef["integer"]).any())
        self.integer_cols = np.flatnonzero(ef["integer"]).astype(np.int32)
        self.prox = "linear" if self.integer else prox
        self.cost = np.asarray(ef["cost"], dtype=float)
        self.offset = float(ef["offset"])
        self.n = self.cost.size
        self.first_lo = np.asarray(ef["col_lo"][:n1], dtype=float)
        self.first_hi = np.asarray(ef["col_hi"][:n1], dtype=float)
        A = ef["A"]
        cost, col_lo, col_hi, integer = self.cost, ef["col_lo"], ef["col_hi"], ef["integer"]
        if self.prox == "linear":  # z_j >= x_j^2 (outer approximation), cost rho_j / 2
            A = sp.hstack([A, sp.csc_matrix((A.shape[0], n1))], format="csc")
            cost = np.concatenate([cost, np.zeros(n1)])
            col_lo = np.concatenate([col_lo, np.zeros(n1)])
            col_hi = np.concatenate([col_hi, np.full(n1, np.inf)])
            integer = np.concatenate([integer, np.zeros(n1, bool)])
        self._solver_options = SolverOptions(mip_rel_gap=mip_rel_gap, threads=1)
        self._h: Any = matrix._highs(self._solver_options)
        matrix._pass(self._h, A, cost, col_lo, col_hi, ef["row_lo"], ef["row_hi"], integer,
                     self.offset)
        self._parked: Any = None  # the model (a HighsModel) while no HiGHS object is alive
        self.first_cols = np.arange(n1, dtype=np.int32)
        self.z_cols = np.arange(self.n, self.n + n1, dtype=np.int32)
        self.cuts: list[list[float]] = [[] for _ in range(n1)]
        self.fixed = np.full(n1, np.nan)  # nan: free
        self.hessian_on = False
        self.solves = 0
        self.simplex_iterations = 0
        self.bases: dict[str, Any] = {}
        self.prox_tol = prox_tol
        self.deadline = deadline if deadline is not None else Deadline()
        self._compiled, self._members = compiled, members  # to name an infeasible scenario
        self.last_first: np.ndarray | None = None  # of the last solve with a free first stage
        self.stopped = 0  # solves stopped by the deadline
        self.skipped = 0  # solves not run: the deadline had passed
        self.relaxed = 0  # MIPs solved as LPs: first met after the deadline

    # -- the HiGHS object, alive only while it is used ---------------------------------------

    @property
    def h(self) -> Any:
        """The HiGHS object, re-created from the parked model if it was parked."""
        if self._h is None:
            import highspy

            h = matrix._highs(self._solver_options)
            if h.passModel(self._parked) != highspy.HighsStatus.kOk:
                raise SolveError("HiGHS refused a parked PH subproblem", "error")
            self._h, self._parked = h, None
        return self._h

    def park(self) -> None:
        """Keep only the model (costs, bounds, cuts, Hessian as they are now) and let the HiGHS
        object go, with its solver data: HiGHS holds on to its factorisation and work arrays
        after a solve, even after ``clearSolver`` or ``clear`` (about 40 MB per bundle of 250
        electronics scenarios, ten times the model); only destroying the object returns them.
        The next solve restarts from the saved basis (:meth:`_start`), as it would anyway."""
        if self._h is not None:
            self._parked = self._h.getModel()
            self._h = None

    def _infeasible(self) -> InfeasibleError:
        """Why this subproblem has no solution with its first stage free: no first-stage plan
        at all satisfies its scenarios, so the whole problem is infeasible. Names the first
        member scenario whose LP relaxation alone has no solution (one small LP each, only
        now), else the members together. mpi-sppy itself fails later and differently on each
        cylinder (the hub says "Infeasibility detected", a bound spoke misses an attribute)."""
        names = [self._compiled.names[i] for i in self._members]
        for i, name in zip(self._members, names, strict=True):
            if len(names) == 1 or not _lp_feasible(restrict(self._compiled, [i])):
                return InfeasibleError(f"scenario {name} alone is infeasible", scenario=name)
        return InfeasibleError(f"scenarios {names[0]} to {names[-1]} (a PH bundle) have no "
                               "first-stage plan in common: the problem is infeasible")

    # -- what changes between solves ---------------------------------------------------------

    def fix(self, values: np.ndarray) -> None:
        """Fix the first-stage columns where ``values`` is a number, free them where it is nan
        (HiGHS is told only when something changed)."""
        values = np.asarray(values, dtype=float)
        same = (np.isnan(values) & np.isnan(self.fixed)) | (values == self.fixed)
        if same.all():
            return
        free = np.isnan(values)
        lo = np.where(free, self.first_lo, values)
        hi = np.where(free, self.first_hi, values)
        self.h.changeColsBounds(self.n1, self.first_cols, lo, hi)
        self.fixed = values.copy()

    def _add_cuts(self, points: dict[int, float]) -> int:
        """Tangent cuts z_j >= 2 a x_j - a^2 at the new points a; returns how many."""
        rows = []
        for j, a in points.items():
            if any(abs(a - b) <= 1e-9 * max(1.0, abs(a)) for b in self.cuts[j]):
                continue
            self.cuts[j].append(a)
            rows.append((j, a))
        if not rows:
            return 0
        k = len(rows)
        index = np.empty(2 * k, dtype=np.int32)
        value = np.empty(2 * k)
        for r, (j, a) in enumerate(rows):
            index[2 * r], index[2 * r + 1] = j, self.n + j
            value[2 * r], value[2 * r + 1] = -2.0 * a, 1.0
        lower = np.array([-a * a for _, a in rows])
        self.h.addRows(k, lower, np.full(k, np.inf), 2 * k,
                       np.arange(0, 2 * k, 2, dtype=np.int32), index, value)
        return k

    def _objective(self, W: np.ndarray | None, rho: np.ndarray | None,
                   xbar: np.ndarray | None) -> float:
        """Set the first-stage (and z) costs for these terms; returns the constant they add."""
        n1 = self.n1
        lin = self.cost[:n1].copy()
        const = 0.0
        if W is not None:
            lin += W
        prox = rho is not None and xbar is not None
        if prox:
            assert rho is not None and xbar is not None
            lin -= rho * xbar
            const = float(0.5 * rho @ (xbar * xbar))
        self.h.changeColsCost(n1, self.first_cols, lin)
        if self.prox == "linear":
            z = 0.5 * rho if prox and rho is not None else np.zeros(n1)
            self.h.changeColsCost(n1, self.z_cols, z)
            if prox and xbar is not None:
                self._add_cuts({j: float(xbar[j]) for j in range(n1)
                                if np.isnan(self.fixed[j])})
        elif prox or self.hessian_on:
            self._hessian(rho if prox else None)
        return const

    def _hessian(self, rho: np.ndarray | None) -> None:
        """HiGHS's Hessian: diag(rho) on the first-stage columns, or none."""
        if rho is None:
            self.h.passHessian(self.n, 0, 1, np.zeros(self.n + 1, np.int32),
                               np.zeros(0, np.int32), np.zeros(0))
            self.hessian_on = False
            return
        start = np.concatenate([np.arange(self.n1 + 1), np.full(self.n - self.n1, self.n1)])
        self.h.passHessian(self.n, self.n1, 1, start.astype(np.int32),
                           np.arange(self.n1, dtype=np.int32), np.asarray(rho, dtype=float))
        self.hessian_on = True

    # -- solving ----------------------------------------------------------------------------

    def _start(self, role: str) -> None:
        """Start from the last basis of ``role`` (else of ``"ph"``; else the slack basis),
        with the rows added since then basic, whatever was solved in between."""
        import highspy

        basis = self.bases.get(role, self.bases.get("ph"))
        self.h.clearSolver()
        if basis is None:
            self.h.setBasis()
            return
        extra = self.h.getNumRow() - len(basis.row_status)
        if extra > 0:
            basis.row_status = list(basis.row_status) + [highspy.HighsBasisStatus.kBasic] * extra
        self.h.setBasis(basis)

    def solve(self, W: np.ndarray | None = None, rho: np.ndarray | None = None,
              xbar: np.ndarray | None = None, role: str = "ph") -> Outcome:
        """Solve with the dual term ``W'x`` (if ``W``) and the proximal term (if ``rho`` and
        ``xbar``).

        Each ``role`` (PH's own solves, a bound, a plan's valuation) re-starts from its own
        last basis, so the PH iterates do not depend on which other solves ran in between
        (hence not on the number of ranks). The HiGHS object is parked afterwards
        (:meth:`park`).

        Under a :class:`Deadline` HiGHS gets the seconds left (at least its floor); a MIP
        stopped there returns its incumbent with HiGHS's dual bound, a solve stopped with no
        solution goes on to its first (MIP) or optimal (LP) one. Once the deadline has passed
        nothing is solved: a valuation (every first-stage column fixed) returns no solution
        (``ok`` false: no value is claimed), any other solve the last solution as a
        :attr:`Outcome.stale` outcome (bound -inf); a subproblem never solved is still solved
        (mpi-sppy's iteration 0 needs every solution), a MIP as its LP relaxation
        (:meth:`_relaxed`).
        """
        relax = False
        if self.deadline.passed:
            if not np.isnan(self.fixed).any():
                self.skipped += 1
                return Outcome(False, math.inf, -math.inf, math.inf, np.full(self.n1, np.nan))
            if self.last_first is not None:
                self.skipped += 1
                return Outcome(True, math.inf, -math.inf, math.inf, self.last_first.copy(),
                               stale=True)
            relax = self.integer
        try:
            return self._relaxed(W, rho, xbar, role) if relax else self._solve(W, rho, xbar, role)
        finally:
            self.park()

    def _relaxed(self, W: np.ndarray | None, rho: np.ndarray | None, xbar: np.ndarray | None,
                 role: str) -> Outcome:
        """The solve of a MIP subproblem met for the first time after the deadline, as its LP
        relaxation: its optimum bounds the MIP's from below, so a bound built on it stays
        valid (weaker), and its first stage serves PH's average, which is rounded before any
        plan is valued. Each MIP was given at least the floor (:data:`DEADLINE_FLOOR`) and
        then went on to its first solution: with hundreds of MIP bundles per rank, iteration 0
        outlasted a 300 s limit by minutes (furniture, poisson:5000, bundles of 10: 794 s)."""
        h = self.h
        cols = self.integer_cols
        h.changeColsIntegrality(cols.size, cols, np.zeros(cols.size, np.uint8))
        self.integer = False
        try:
            self.relaxed += 1
            return self._solve(W, rho, xbar, role)
        finally:
            self.integer = True
            h.changeColsIntegrality(cols.size, cols, np.ones(cols.size, np.uint8))

    def _run(self, h: Any) -> str:
        """One HiGHS run within the deadline; its model status name. Stopped by the deadline
        without a solution, the run goes on with no time limit to a MIP's first feasible
        solution (``mip_max_improving_sols`` 1) or an LP's optimum."""
        h.setOptionValue("time_limit", self.deadline.time_limit())
        h.run()
        status = str(h.getModelStatus().name)
        if status != "kTimeLimit":
            return status
        self.stopped += 1
        if self.integer and h.getInfo().primal_solution_status == 2:
            return status
        h.setOptionValue("time_limit", math.inf)
        _, most = h.getOptionValue("mip_max_improving_sols")
        if self.integer:
            h.setOptionValue("mip_max_improving_sols", 1)
        try:
            h.run()
        finally:
            h.setOptionValue("mip_max_improving_sols", most)
        return str(h.getModelStatus().name)

    def _solve(self, W: np.ndarray | None, rho: np.ndarray | None, xbar: np.ndarray | None,
               role: str) -> Outcome:
        const = self._objective(W, rho, xbar)
        h = self.h
        prox = rho is not None and xbar is not None
        linear = prox and self.prox == "linear"
        rounds = PROX_ROUNDS_MIP if self.integer else PROX_ROUNDS
        self._start(role)
        while True:
            status = self._run(h)
            self.solves += 1
            if status == "kUnknown" and not self.integer:  # numerical trouble: once more, cold
                h.clearSolver()
                h.setBasis()
                status = self._run(h)
                self.solves += 1
            info = h.getInfo()
            self.simplex_iterations += max(0, int(info.simplex_iteration_count))
            has_solution = status == "kOptimal" or (
                self.integer and info.primal_solution_status == 2
                and status in ("kTimeLimit", "kInterrupt", "kSolutionLimit"))
            if not has_solution:
                if status == "kInfeasible" and np.isnan(self.fixed).all():
                    raise self._infeasible()
                return Outcome(False, math.inf, -math.inf, math.inf, np.full(self.n1, np.nan))
            x = np.asarray(h.getSolution().col_value)
            value = float(info.objective_function_value) + const
            if not linear:
                break
            assert rho is not None
            first, z = x[: self.n1], x[self.n: self.n + self.n1]
            off = 0.5 * rho * (first * first - z)
            tol = self.prox_tol * max(1.0, abs(value)) / self.n1
            bad = {int(j): float(first[j]) for j in np.flatnonzero(off > tol)
                   if np.isnan(self.fixed[j])}
            # the cuts stay for the next solves, even when there is no re-solve now
            if not bad or self._add_cuts(bad) == 0 or rounds == 0:
                break
            rounds -= 1
        if self.integer:  # HiGHS's dual bound is valid wherever the MIP stopped
            dual = float(info.mip_dual_bound)
            bound = dual + const if not math.isnan(dual) else -math.inf
        else:
            bound = value
            basis = h.getBasis()
            if basis.valid:
                self.bases[role] = basis
        cost = float(self.cost @ x[: self.n] + self.offset)
        first = x[: self.n1].copy()
        if np.isnan(self.fixed).any():
            self.last_first = first.copy()
        return Outcome(True, value, bound, cost, first)


# ----------------------------------------------------------------------------------------------
# The guest: every subproblem of this rank


class Guest:
    """The subproblems a rank owns, created on demand from the compiled scenarios.

    Parameters
    ----------
    compiled : CompiledScenarios
    members : dict
        Subproblem name -> indices of its scenarios (consecutive blocks).
    prox : {"linear", "quadratic"}
    mip_rel_gap : float
    prox_tol : float
    time_limit : float or None
        PH's time limit in seconds: every subproblem solve respects it (:class:`Deadline`,
        whose clock starts when the first subproblem is built).
    """

    def __init__(self, compiled: matrix.CompiledScenarios, members: dict[str, list[int]],
                 prox: str = "linear", mip_rel_gap: float = 1e-4,
                 prox_tol: float = PROX_TOL, time_limit: float | None = None) -> None:
        self.compiled = compiled
        self.members = members
        self.prox = prox
        self.mip_rel_gap = mip_rel_gap
        self.prox_tol = prox_tol
        self.deadline = Deadline(time_limit)
        self.subproblems: dict[str, Subproblem] = {}

    @property
    def n_first(self) -> int:
        return self.compiled.n_first

    @property
    def integer_first(self) -> np.ndarray:
        """Which first-stage columns are integer."""
        return np.asarray(self.compiled.columns.integer[: self.n_first], bool)

    def first_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds every scenario allows on the first-stage columns."""
        n1 = self.n_first
        return (self.compiled.col_lo[:, :n1].max(axis=0), self.compiled.col_hi[:, :n1].min(axis=0))

    def probability(self, name: str) -> float:
        p = self.compiled.probabilities
        return float(p[self.members[name]].sum() / p.sum())

    def subproblem(self, name: str) -> Subproblem:
        """Subproblem ``name``, built the first time it is asked for."""
        sub = self.subproblems.get(name)
        if sub is None:
            self.deadline.start()
            sub = Subproblem(self.compiled, self.members[name], self.prox, self.mip_rel_gap,
                             self.prox_tol, self.deadline)
            self.subproblems[name] = sub
        return sub

    @property
    def value_at_risk_column(self) -> int | None:
        """The first-stage column of the value at risk of a mean-CVaR module
        (:func:`stochplan.solve.risk.add_cvar`), or None."""
        names = self.compiled.columns.variables[: self.n_first]
        hits = [j for j, name in enumerate(names) if name == VAR_NAME]
        return hits[0] if hits else None

    def value_at_risk_rho(self, rho: float) -> float:
        """The value at risk's own rho, from the ``rho`` of the other columns: ``rho`` over the
        square root of the width of its box (unchanged when it is not boxed).

        The column is a cost, of the order of the objective, while its multiplier W is a cost
        per unit of value at risk, of the order of the CVaR weight: with rho 1 on electronics
        (VaR about 4.6e5 in a box 7.6e4 wide) W on eta reached +-1.4 within 12 iterations, the
        Lagrangian subproblems put eta at the ends of its box and their bound fell to 2.5e5
        (EF optimum 4.6e5; PH by hand on 2 bundles of 3), so the bound spoke never beat its
        iteration-0 bound. The square root is measured, not derived (0.5 E + 0.5 CVaR,
        bundles of 3): electronics, poisson:6, 3 ranks, gap after 30 iterations 3.9 % with
        rho 1, 1.2 % with 1e-2, 0.77 % with 1 / sqrt(width) (3.6e-3), 0.59 % with 1e-3,
        0.99 % with 1 / width; the tiny instance (box 65 wide), 1 rank, to 0.5 %: 106
        iterations with rho 1, 12-26 with 0.1-0.5, none within 300 with 1 / width or 0.02.
        """
        eta = self.value_at_risk_column
        if eta is None:
            return rho
        lo, hi = self.first_bounds()
        width = float(hi[eta] - lo[eta])
        return rho / math.sqrt(max(1.0, width)) if math.isfinite(width) else rho

    def first_stage_costs(self) -> np.ndarray:
        """Expected first-stage costs (minimisation form), for cost-proportional rho."""
        p = self.compiled.probabilities / self.compiled.probabilities.sum()
        return np.asarray(p @ self.compiled.cost[:, : self.n_first])


# ----------------------------------------------------------------------------------------------
# The solve


def _module_of(family: Any) -> ModuleType:
    if isinstance(family, ModuleType):
        return family
    module = getattr(family, "module", None)
    if not isinstance(module, ModuleType):
        raise InputError("family", family, "expected a model module or a Family")
    return module


def _explainer(module: ModuleType, creator_kwargs: dict[str, Any] | None) -> Any:
    """Names the constraint families of a scenario infeasible alone (the Pyomo model's)."""
    from stochplan.solve.diagnose import scenario_alone

    return lambda name: scenario_alone(module, name, dict(creator_kwargs or {}))


def _members(names: list[str], per_bundle: int) -> dict[str, list[int]]:
    """Consecutive blocks of ``per_bundle`` scenarios (the last may be larger), named as
    :func:`stochplan.solve.ph._bundles` names them; one scenario keeps its own name."""
    if per_bundle <= 1:
        return {n: [k] for k, n in enumerate(names)}
    n_bundles = max(1, len(names) // per_bundle)
    out = {}
    for b in range(n_bundles):
        lo = b * per_bundle
        hi = len(names) if b == n_bundles - 1 else lo + per_bundle
        out[f"Bundle_{lo}_{hi - 1}"] = list(range(lo, hi))
    return out


class NotApplicable(InputError):
    """The module's scenarios do not compile to one matrix (not fixed recourse): the highspy
    guest cannot solve it (:func:`stochplan.solve.ph.solve_ph` then takes the Pyomo path).
    Raised on every rank alike (each compiles every scenario)."""


def _compile(module: ModuleType, names: list[str], creator_kwargs: dict[str, Any] | None,
             comm: Any, log_dir: str, options: PHOptions) -> matrix.CompiledScenarios:
    """Every scenario compiled (on each rank). A failure in the module's own code is handled
    as one inside mpi-sppy: logged to ``log_dir/rank<r>.log``, said on stderr, the job ended
    (:func:`stochplan.solve.ph._cylinder_output`); a module without fixed recourse raises
    :class:`NotApplicable` on every rank."""
    from stochplan.solve.ph import _cylinder_output

    path = os.path.join(log_dir, f"rank{comm.Get_rank()}.log")
    own_dir = None if options.log_dir is not None else log_dir
    why: matrix.NotFixedRecourse | None = None
    with _cylinder_output(comm, path, temp_dir=own_dir):
        try:
            return matrix.compile_scenarios(module, names, creator_kwargs)
        except matrix.NotFixedRecourse as exc:
            why = exc
    raise NotApplicable("ph.backend", "highspy", f"the highspy guest needs fixed recourse: {why}")


def solve_ph_highs(
    family: Any,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any] | None = None,
    options: PHOptions | None = None,
    comm: Any = None,
    allow_partial: bool = False,
    progress: Callable[[str], None] | None = None,
    prox: str | None = None,
    compiled: matrix.CompiledScenarios | None = None,
) -> SolveResult | None:
    """Solve the two-stage problem of ``family`` by progressive hedging with highspy subproblems.

    Call it on every rank of ``comm`` (default ``MPI.COMM_WORLD``) with the same arguments; the
    ranks are used as by :func:`stochplan.solve.ph.solve_ph` (1: PH alone, computing its own
    Lagrangian bound and valuing xbar as incumbent; 2: + incumbent spoke; 3: + Lagrangian bound
    spoke).

    Parameters
    ----------
    family : module or Family
        A model module (mpi-sppy's contract) or a :class:`~stochplan.family.Family`; its
        scenarios must compile to one matrix (fixed recourse, :mod:`stochplan.solve.matrix`).
    scenario_names : sequence of str
    creator_kwargs : dict, optional
        Keyword arguments of the module's ``scenario_creator``.
    options : PHOptions, optional
        As for :func:`~stochplan.solve.ph.solve_ph`; ``rho`` may be ``"fixed"`` or ``"coeff"``
        (``"sep"`` needs the iteration-0 spread that only the Pyomo path computes), ``solver``
        is not used (HiGHS through highspy always).
    comm : mpi4py communicator, optional
    allow_partial : bool
        Return a result whose gap is above ``options.rel_gap`` instead of raising.
    progress : callable, optional
        Called with the name of each phase as it starts (rank 0 only).
    prox : {"linear", "quadratic"}, optional
        How the proximal term is written; None: from ``options.linearize_proximal`` (None
        there means linear).
    compiled : CompiledScenarios, optional
        The scenarios already compiled.

    Returns
    -------
    SolveResult or None
        On rank 0, ``method="ph"`` with ``solver="highspy"``: objective (the best plan's
        expected cost, valued again on every scenario), bound, gap, plan and recourse, in the
        model's own sense; ``info`` as for :func:`~stochplan.solve.ph.solve_ph` plus
        ``backend`` (``"highspy guest (matrix ...)"``), ``prox``, ``subproblem_solves`` (all
        ranks), ``xbar`` (PH's final first-stage average, integer columns rounded) and
        ``convergence`` (PH's last mean |x - xbar|) and ``deadline`` (all ranks: subproblem
        solves stopped by the time limit, ``stopped_solves``, not run because it had passed,
        ``skipped_solves``, and MIPs first met after it, solved as LPs, ``relaxed_solves``;
        see :class:`Deadline`). ``None`` on the other ranks.

    Raises
    ------
    InputError
        An option the guest does not support; :class:`NotApplicable` (a subclass) when the
        scenarios do not share one matrix.
    SolveError
        No feasible plan was found, or the gap target was missed and ``allow_partial`` is
        false.
    """
    from stochplan import _mpisppy_highs

    options = options or PHOptions()
    if options.rho == "sep":
        raise InputError("ph.rho", options.rho,
                         "the highspy guest supports 'fixed' and 'coeff' rho")
    if comm is None:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
    rank, size = comm.Get_rank(), comm.Get_size()
    note = progress if (progress is not None and rank == 0) else (lambda phase: None)
    names = [str(n) for n in scenario_names]
    if not names:
        raise InputError("scenarios", names, "need at least one scenario")
    module = _module_of(family)
    timings: dict[str, float] = {}

    log_dir = options.log_dir or (tempfile.mkdtemp(prefix="stochplan-ph-") if rank == 0 else None)
    log_dir = comm.bcast(log_dir, root=0)
    os.makedirs(log_dir, exist_ok=True)
    try:
        note("build")
        start = time.perf_counter()
        if compiled is None:
            compiled = _compile(module, names, creator_kwargs, comm, log_dir, options)
        per_bundle = options.bundle_size_for(len(names), size)
        members = _members(names, per_bundle)
        if prox is None:
            prox = "quadratic" if options.linearize_proximal is False else "linear"
        guest = Guest(compiled, members, prox, mip_rel_gap=options.rel_gap / 10,
                      prox_tol=max(PROX_TOL, options.rel_gap / 10),
                      time_limit=options.time_limit)
        layout = cylinders_for(size)
        timings["build"] = time.perf_counter() - start

        note("solve")
        start = time.perf_counter()
        run = _mpisppy_highs.run_ph(guest, list(members), options, layout, comm, log_dir,
                                    explain=_explainer(module, creator_kwargs))
        timings["solve"] = time.perf_counter() - start
    finally:
        comm.Barrier()
        if options.log_dir is None and rank == 0:
            shutil.rmtree(log_dir, ignore_errors=True)

    # how often the deadline acted: solves stopped by it, solves not run after it
    counts = comm.gather([sum(getattr(s, what) for s in guest.subproblems.values())
                          for what in ("stopped", "skipped", "relaxed")], root=0)
    note("extract")
    start = time.perf_counter()
    best = _value_candidates(compiled, run["candidates"], comm)
    timings["incumbent"] = time.perf_counter() - start

    def result() -> SolveResult:  # rank 0's: the run's result, or why there is none
        sense = compiled.sense
        iterations = int(run["iterations"])
        info: dict[str, Any] = {
            "iterations": iterations,
            "stop_reason": run["stop_reason"],
            "ranks": size,
            "cylinders": list(layout),
            "bundle_size": per_bundle,
            "linearized_proximal": guest.prox == "linear" or bool(compiled.columns.integer.any()),
            "prox": prox,
            "rel_gap_target": options.rel_gap,
            "backend": f"highspy guest (matrix {compiled.method})",
            "subproblem_solves": run.get("solves"),
            "xbar": run["xbar"],
            "convergence": run["convergence"],
            "deadline": {"stopped_solves": sum(c[0] for c in counts),
                         "skipped_solves": sum(c[1] for c in counts),
                         "relaxed_solves": sum(c[2] for c in counts)},
        }
        if options.log_dir is not None:
            info["log_dir"] = log_dir
        if best is None:
            info["history"] = run["history"]
            raise SolveError(
                f"progressive hedging found no feasible first-stage plan in {iterations} "
                f"iterations (stopped: {run['stop_reason']}); allow more iterations or time",
                "no_incumbent")
        value, first, second = best
        bound_min = run["bound"]
        objective = sense * value
        bound = sense * bound_min if bound_min is not None and math.isfinite(bound_min) else None
        gap = relative_gap(objective, bound)
        status = decomposition_status(gap, options.rel_gap, run["stop_reason"])
        if status in SOLVED:
            info["stop_reason"] = "gap"
        info["history"] = [[t, k, sense * lb, sense * ub] for t, k, lb, ub in run["history"]] + [
            [run["elapsed"], iterations, objective if bound is None else bound, objective]]
        if status not in SOLVED and not allow_partial:
            raise SolveError(
                f"progressive hedging stopped ({run['stop_reason']}) after {iterations} iterations "
                f"with gap {gap if gap is not None else float('inf'):.2%} above the target "
                f"{options.rel_gap:.2%} (incumbent {objective:,.2f}, bound "
                f"{'none' if bound is None else f'{bound:,.2f}'}); ask for partial results to "
                "keep it",
                status)
        index_names = tuple(getattr(module, "INDEX_NAMES", ()))
        plan, recourse = matrix.solution_tables(compiled, first, second, index_names)
        timings["extract"] = time.perf_counter() - start
        timings["ph"] = run["elapsed"]
        return SolveResult(
            method="ph", status=status, objective=objective, bound=bound, gap=gap, plan=plan,
            recourse=recourse, scenario_names=tuple(names),
            probabilities=compiled.probabilities / compiled.probabilities.sum(),
            timings=timings, solver="highspy", info=info)

    return on_root(result, comm if size > 1 else None)  # rank 0's failure ends every rank


def _value_candidates(
    compiled: matrix.CompiledScenarios, candidates: list[np.ndarray], comm: Any,
) -> tuple[float, np.ndarray, np.ndarray] | None:
    """The best of the candidate plans, each valued on every scenario (shared among ranks):
    (expected cost in minimisation form, plan, recourse S x n2) on rank 0; None elsewhere or
    when no candidate is feasible everywhere. A later candidate must be better by more than
    :data:`TIE` (relative) to replace an earlier one."""
    n1 = compiled.n_first
    p = compiled.probabilities / compiled.probabilities.sum()
    parallel = comm if comm.Get_size() > 1 else None
    best: tuple[float, np.ndarray, np.ndarray] | None = None
    seen: list[np.ndarray] = []
    for x in candidates:
        if any(np.array_equal(x, y) for y in seen):
            continue
        seen.append(x)
        values, _statuses, solutions = matrix.solve_each(
            compiled, SolverOptions(mip_rel_gap=1e-6), first_stage=x, keep_solutions=True,
            comm=parallel)
        value = float(p @ (compiled.sense * values))  # minimisation form
        if not math.isfinite(value) or solutions is None:
            continue
        if best is None or value < best[0] - TIE * max(1.0, abs(best[0])):
            best = (value, solutions[0, :n1].copy(), solutions[:, n1:].copy())
    return best if comm.Get_rank() == 0 else None
