r"""The L-shaped method with level stabilisation: Benders decomposition on the matrix backend.

For two-stage programs with fixed recourse: any module that the matrix backend compiles
(:mod:`stochplan.solve.matrix`) whose second-stage variables are continuous, or integer when
the first stage is (see "Integer first stages"); the first stage may have integer columns.
It runs serially or under ``mpiexec``, the scenarios shared among the ranks.

The problem
-----------
With first-stage columns ``x`` and the recourse ``y`` of scenario ``s``::

    min  c'x + sum_s p_s Q_s(x)        s.t.  x in X  (first-stage rows and bounds)
    Q_s(x) = min  q_s'y + o_s          s.t.  lo_s - T x <= W y <= hi_s - T x,  l_s <= y <= u_s

``Q_s`` is convex and piecewise linear. Solving scenario ``s`` at a plan ``x_k`` gives its
value and, from the row duals ``pi``, a subgradient ``-T'pi``: the *optimality cut*
``Q_s(x) >= Q_s(x_k) - pi'T (x - x_k)``. Scenarios are grouped into clusters of consecutive
scenarios; each iteration adds one cut per cluster (``theta_c >=`` the probability-weighted
sum of its members' cuts). A scenario with no feasible recourse at ``x_k`` gives a
*feasibility cut* instead, from its phase-1 problem (least total violation of its rows,
zero exactly where the scenario is feasible), so models without relatively complete
recourse work too.

Level stabilisation
-------------------
The master LP (first stage, cluster variables ``theta``, all cuts) gives the lower bound
``LB``; the best plan evaluated so far gives the upper bound ``UB``. Instead of jumping to
the master's minimiser, as the plain L-shaped method does, the next plan is the point
nearest the best plan (over the *linking* columns, the first-stage columns that ``T``
touches) whose model value is at most ``LB + level * (UB - LB)``. This is the level
decomposition of Fábián and Szőke (Computational Management Science 4, 2007), after
Lemaréchal, Nemirovskii and Nesterov (1995); it needs far fewer iterations than the plain
method. The distance is a mix of the l1 and l-infinity norms, so the projection is an LP that
HiGHS re-solves warm (HiGHS's QP solver stalled on these projections once cuts piled up). It
stops when ``(UB - LB) / max(1, |UB|)`` is at most the gap target.

Feasibility cuts are shared: phase-1 duals from one scenario are dual feasible for every
scenario's phase-1 problem (they differ only in bounds), so each cut is tightened to the
worst scenario at once, and only :data:`PHASE1_PER_ITERATION` phase-1 problems (spread over
the scenarios without recourse) are solved per iteration. Clusters whose recourse cost the
column bounds already bound below (nonnegative costs and bounds, say) take part in the master
from the first iteration, so the lower bound is finite even while plans are infeasible.

Integer first stages
--------------------
With integer (binary or general) first-stage columns and continuous recourse, Q_s is still
convex and piecewise linear in x and the cuts above stay valid; only the master changes.
Phase 1 runs the level method on the master's LP relaxation until its gap is at most
:attr:`LShapedOptions.relaxation_gap` (or half the time limit has passed): cheap cuts, and a
valid lower bound. Phase 2 makes the master a MIP (HiGHS, rank 0, broadcast): each iteration
solves it for a plan, evaluates that plan in every scenario (exact recourse values: the upper
bound, and new cuts), and stops when the best plan is within the gap target of the master's
*proven* bound (HiGHS's dual bound, never its incumbent). The master MIP is solved to a
quarter of the target gap (:data:`MASTER_GAP_SHARE`), and to optimality when it proposes a
plan already evaluated (its cuts are exact there, so only the master's own gap can be open).
Any master MIP stops as soon as its bound comes within the gap target of the best plan
(HiGHS is interrupted from its callback; ``info["master_mip"]["closed_by_bound"]`` counts
them): the last one need not close its own gap, nor find the master's optimum.

Solving it only to a quarter of the current gap while that is large (at most 1 %), as
before, let a few more master MIPs run in the same time (at 1,000 lot-sizing scenarios, 12
against 10 in 300 s) but each proved a weaker bound: the master's root gap is several per
cent (4.4 % at 100 lot-sizing scenarios, measured), so even a loose tolerance takes hundreds
of nodes, and a tight one little more (that master: 15.9 s to 0.7 %, 17.5 s to optimality,
with a bound 0.35 % tighter). Measured (one run each, 2-core machine, before the master's
other plans were valued): lot sizing at 1,000 scenarios after 300 s, bound 15,196.28 and plan
14,571.51 against 15,206.83 and 14,540.27; at 100 scenarios after 200 s, bound 15,077.75
against 15,108.75 (optimum 14,871.66); order assignment (relaxed, 200 scenarios) after
300 s, bound 168,844.13 against 168,848.50, the same plan.

A cut taken at a binary plan is tight there but weak between plans, where the master's
relaxation, and so its branch and bound, lives. Phase 2 therefore takes each plan's cuts at
the point :data:`CORE_STEP` of the way from the plan toward a core point (in-out
stabilisation: Ben-Ameur and Neto, "Acceleration of cutting-plane and column generation
algorithms", Networks 49, 2007; Fischetti, Ljubic and Sinnl, "Redesigning Benders
decomposition for large-scale facility location", Management Science 63, 2017). The core
point starts at the relaxation's best plan and moves halfway toward each plan evaluated. Q_s
is convex, so a cut taken anywhere bounds it everywhere; the plan's own cuts, exact there, are
held back and join the master only if it proposes that plan again. Measured on lot sizing
(furniture, ``poisson:100``, 300 s, before the master's other plans were valued, below): the
bound 1.0 % above the optimal plan, against 2.2 % with the cuts at the plans. A family's own
cuts (below) cost more than the recourse LP that gives their duals, so those at the plan are
not even taken where the interior point's stand in for them: a plan the master proposes again
is valued once more, with its own cuts (lot sizing, ``poisson:1000``, one rank, 600 s: 51
iterations with 229 s of recourse against 44 with 261 s, gap 0.91 % against 1.04 %). When the
recourse costs are the same in every scenario, phase 2 also adds the recourse of the mean
scenario to the master (a Jensen block, :func:`jensen_blocks`): a valid lower bound on the
expected recourse that gives HiGHS the model's structure to branch on.

The master MIP costs far more than a pass over the scenarios, and on its way HiGHS finds
other plans (its improving solutions), each one the master found good. Up to
:data:`EXTRA_PLANS` of them, best first, are valued before the master is solved again; their
cuts join it, and a better plan among them becomes the incumbent. Measured side by side (2-core
machine, the two runs at once, 300 s, gap target 0.1 %; ``python
benchmarks/specs/mip_decomposition.py child lshaped INSTANCE S '{"rel_gap": 0.001,
"time_limit": 300}'``), the master's own plans alone against with the others:

- lot sizing at 100 scenarios: gap 1.42 % against 0.49 % (bound 15,033.98 against 14,944.98;
  plan 14,822.88 against the optimum, 14,871.66), 17 master MIPs against 8 and 27 other plans;
- lot sizing at 1,000 scenarios: 4.29 % against 3.84 % (bound 15,196.71 against 15,131.27,
  the same plan), 10 master MIPs against 6 and 22 other plans;
- order assignment (relaxed, 200 scenarios): 0.162 % against 0.145 % (plan 168,587.67 against
  168,617.77, the bound unchanged at 168,860).

It is no rule: at two and three lot-sizing scenarios to 1 % (four seeds) it needed fewer
master MIPs in four of the eight cases and one more in two; 140 s against 234 s in all.

A family may know its recourse better than a dual does. Its scenario arrays may carry its own
cuts (:attr:`Decomposition.cuts`): from a scenario's row duals, a linear bound on Q_s valid at
every integer plan (not at fractional ones) and equal to Q_s at the plan whose duals gave it.
Phase 2 then takes them in place of the Benders cuts from the same duals (at the interior
point too), phase 1 stops after :data:`FAMILY_CUTS_RELAXATION` iteration (enough to give every
cluster a cut; more of phase 1's cuts only slow the master MIP down) and the master gets no
Jensen block. The order assignment family's cuts (:mod:`stochplan.models.assignment.cuts`)
dualise the capacity rows only, so that every other offer of every order is priced exactly.
Measured on laser ``sample:200``, reassignments relaxed (2-core machine, one rank; HiGHS
takes 177.7 s on the extensive form to 0.1 % there, ``benchmarks/RESULTS.md``): 0.1 % reached
in 8.8 s, 3 master MIPs and 5 other plans, against 0.15 % after 300 s with the Benders cuts
and the Jensen block; with 2 or 4 phase-1 iterations 22.6 s and 30.7 s; cuts at the plans
instead of the interior point, or no other plans valued, 15.9 s each. With a Jensen block as
well, the bound stood on the mean scenario's plateau for longer (0.07 % after 41 s, against
14 s without, in a loop of these cuts alone). At 1,000 scenarios the benchmark reached 0.1 %
in 32.7 s, where the Benders cuts stood at 0.15 % after 600 s.

A family may also name the constraint families that alone couple its recourse
(:attr:`~stochplan.family.Family.coupling_rows`). Dualised, they leave blocks, each touched by
a few binary first-stage columns; :class:`~stochplan.solve.patterns.PatternCuts` values each
block at every pattern of its columns, and the master gets one binary column per block and
pattern (:meth:`Decomposition.with_patterns`), so one cut per scenario prices every
combination of patterns. These cuts bound the master MIP but not the model's LP relaxation
(they are tighter than it), so phase 1 runs Kelley's method on them (:func:`_kelley_step`)
until a round of cuts raises the master's value at its own solution by at most the
relaxation gap; phase 2 takes them as it takes a family's own cuts. Kelley's first rounds
move the bound little, but starting phase 1 with the level method on Benders cuts (no block
LPs) and Kelley's rounds after it was worse (lot sizing, ``poisson:300``, 240 s: 0.63 %
against 0.29 %, the same plan): phase 1 ended sooner (17 s against 38 s) with fewer pattern
cuts, and phase 2 had the more to do. Lot sizing names its
machine-hour and material rows: one block per product, 16 patterns of its four setups.
Measured on furniture (``benchmarks/RESULTS.md``, 2-core machine, gap target 0.1 %): at 100
scenarios 0.1 % in 119.1 s on one rank and 103.8 s on two, where HiGHS takes 457.0 s on the
extensive form and the Benders cuts stood at 0.49 % after 300 s; at 1,000 scenarios after
300 s, 1.63 % on two ranks (plan 14,639.15, bound 14,877.66) against 3.84 % before, and on one
rank 5.73 %: a better bound (15,037.53 against 15,131.27) but a worse plan, phase 1 having
taken half the time and the block LPs (about 8 ms a scenario) most of the recourse's 278 s.
With the block LPs solved as one from each scenario's last basis, the master's strong
branching off (:data:`MASTER_MIN_RELIABLE`) and its early stop, one rank at 1,000 scenarios
reaches 1.04 % after 600 s (plan 14,630.26, bound 14,782.05), against 0.99 % after 900 s
before (side by side, ``solve_lshaped`` on ``poisson:1000``, seed 0, gap target 0.1 %).

Integer recourse (with an integer first stage and the expected cost) keeps the cuts of the
recourse's LP relaxation, valid because the relaxation bounds the integer recourse from below,
so the master's bound stays a bound. Each phase-2 plan is valued with every scenario's
recourse MIP (:meth:`_Recourse.solve_integer`: the best recourse's cost for the upper bound,
HiGHS's dual bound for the cuts); where a cluster's integer recourse lies above its
relaxation and the first stage is all binary, Laporte and Louveaux's integer L-shaped cut
(:func:`_integer_cuts`; "The integer L-shaped method for stochastic integer programs with
complete recourse", Operations Research Letters 13, 1993) makes the master exact at that plan
and leaves it free elsewhere; a plan with relaxed but no integer recourse in some scenario is
cut off. Under a time limit each recourse MIP gets the seconds left (a MIP stopped there
gives its best recourse and its bound as they stand; one with no recourse found yet leaves
its plan unvalued, never taken for a plan without recourse). Those cuts are weak away from
their plan: on the assignment family (226 offer
binaries, binary reassignments, four days) the bound stood 1.2 % above the optimum after 120 s
and 77 iterations, where HiGHS solves the extensive form in 1 s; the method is exact and
honest, not fast, for binary recourse. Without a binary first stage the master can come back
to a plan already valued; it then stops ("stalled") with its gap.

Measured on the lot-sizing family (furniture, 36 setup binaries, 2-core machine): the master
MIP dominates, taking seconds per solve (at 2 scenarios, 274 nodes and 9 s to a 0.3 % gap on
294 rows), while the recourse takes milliseconds; at 10 scenarios the method was still at a
2.3 % gap after 150 s where HiGHS solves the extensive form in 12 s. See
``benchmarks/RESULTS.md`` ("Integer first stages") for larger scenario counts.

Risk-averse objective
---------------------
With ``risk`` (:class:`~stochplan.solve.risk.RiskConfig`, CVaR with weight ``lambda > 0``) the
method minimises ``rho(x) = (1 - lambda) E[L(x)] + lambda CVaR_alpha(L(x))`` of the total loss
``L_s(x) = c'x + Q_s(x)`` (minimisation form: the negative profit of a maximising family).
The extensive form and PH solve the family's module in Rockafellar-Uryasev form instead
(:func:`~stochplan.solve.risk.risk_module`: a free first-stage value at risk ``eta``), but
that is a poor master here: ``eta`` is unbounded below until many cuts price the tail, and
the level projection needs a finite bound. So the measure is taken here, on the family's own
scenarios (Ahmed, "Convexity and decomposition of mean-risk stochastic programs", Math.
Programming 106, 2006; Fábián, "Handling CVaR objectives and constraints in two-stage
stochastic models", EJOR 191, 2008, for the level method):

- ``rho`` is convex in ``x``, and every iteration solves every scenario anyway. Sorting the
  recourse losses at ``x_k`` gives the tail weights ``w`` (:func:`tail_weights`: the worst
  scenarios' probabilities up to ``1 - alpha``, over ``1 - alpha``), ``CVaR(Q(x_k)) = w'Q(x_k)``
  and the subgradient ``sum_s w_s g_s``; ``CVaR(c'x + Q) = c'x + CVaR(Q)``.
- The master has one more column, ``theta_R``, the model of ``CVaR(Q)``, with one aggregated
  cut per iteration (CVaR does not split over clusters), while the cluster columns ``theta_c``
  keep modelling the expectation: the objective is ``c'x + (1 - lambda) sum_c theta_c + lambda
  theta_R``, and the level set and the projection use the same weights. Because CVaR >= E, the
  row ``theta_R >= sum_c theta_c`` is valid and joins the master once every cluster has a cut:
  the multi-cut expectation model then bounds the CVaR model too (and so does the Jensen block
  of phase 2, which bounds ``sum_c theta_c``). ``theta_R`` starts at the CVaR of the
  scenarios' recourse floors when they are finite.
- One aggregated cut per iteration prices the tail poorly (at 200 scenarios and ``lambda = 1``
  it took 44 iterations against 18 risk-neutral), so the master also holds the
  Rockafellar-Uryasev form of ``theta_R`` over the scenarios themselves (Fábián 2008, above):
  columns ``eta`` (free) and ``r_s >= 0``, the row ``theta_R >= eta + sum_s r_s``, and per
  iteration one row per tail scenario ``s`` at ``x_k`` (``w_s > 0``), ``r_s >= p_s / (1 -
  alpha) (Q_s(x_k) + g_s'(x - x_k) - eta)``: valid, since ``r_s`` only has to exceed
  ``p_s (Q_s - eta)+ / (1 - alpha)`` for CVaR's minimising ``eta`` (:data:`TAIL_CUTS`,
  :meth:`_Master.add_tail_cuts`). ``eta`` needs no bound: ``theta_R`` is bounded by the
  aggregated cuts and by ``sum_c theta_c``, and ``eta`` appears in neither objective.
- The upper bound is ``rho(x_k)`` exactly, from the scenario values; feasibility cuts do not
  change (a plan without recourse is infeasible under any measure); the recourse of the best
  plan is each scenario's optimal recourse (the measure is non-decreasing in every loss).
- Rank 0 holds every scenario's value and subgradient, in scenario order, and breaks ties
  between equal losses by scenario order, so the result is the same on any number of ranks.

If first-stage costs differ between scenarios, ``(c_s - c)'x`` joins each recourse loss (it
averages to zero, so only the CVaR cuts see it). Measured on the electronics instance
(continuous, Poisson demand, seed 0, 2-core machine shared with other jobs), iterations at
``lambda`` = 0 / 0.5 / 1 with the tail scenarios' cuts (with the aggregated cut alone): 30
scenarios, alpha 0.9: 23 / 27 / 31 (23 / 36 / 54); 200 scenarios, alpha 0.95: 18 / 17 / 21
(18 / 21 / 44), solve seconds 2.8 / 2.9 / 3.4 (3.0 / 3.8 / 7.9). At 1,000 scenarios with lost
sales (benchmark ``risk``), 13 iterations under 0.5 E + 0.5 CVaR_95% against 19 risk-neutral
(33 with the aggregated cut alone).

Reproducible whatever the number of ranks
-----------------------------------------
Each scenario is re-solved from its own previous optimal basis (the first time, from the
slack basis), never from whichever scenario its rank solved before, so its solution does not
depend on how scenarios are shared among ranks; rank 0 adds the cuts up in scenario order.
One, two or three ranks therefore give bit-for-bit the same iterates, plan and objective.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from stochplan.errors import InfeasibleError, InputError, SolveError
from stochplan.parallel import on_root, share, together
from stochplan.solve.results import SOLVED, SolveResult, decomposition_status
from stochplan.solve.solvers import DEVEX, relative_gap

if TYPE_CHECKING:
    import pandas as pd

    from stochplan.solve.risk import RiskConfig

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LShapedOptions:
    """How the L-shaped method runs.

    Attributes
    ----------
    rel_gap : float
        Stop when (UB - LB) / max(1, |UB|) is at most this (default 1e-4, i.e. 0.01 %).
    max_iterations : int
        Iteration limit (one iteration solves every scenario once).
    time_limit : float or None
        Seconds, counted from the start of the iterations; None for no limit.
    clusters : int or None
        Optimality cuts per iteration (scenarios are grouped into this many clusters of
        consecutive scenarios); None chooses :data:`AUTO_CLUSTERS`, or
        :data:`AUTO_CLUSTERS_INTEGER` with an integer first stage (at most one per scenario).
    level : float
        The level parameter lambda in (0, 1): the next plan must have model value at most
        LB + lambda (UB - LB). Smaller is bolder.
    relaxation_gap : float
        Integer first stages only: phase 1 (the level method on the master's LP relaxation)
        stops at this relative gap of the relaxation, then the master becomes a MIP.
    """

    rel_gap: float = 1e-4
    max_iterations: int = 1000
    time_limit: float | None = None
    clusters: int | None = None
    level: float = 0.3
    relaxation_gap: float = 1e-3

    def __post_init__(self) -> None:
        if not 0 < self.rel_gap < 1:
            raise InputError("lshaped.rel_gap", self.rel_gap, "must be in (0, 1)")
        if isinstance(self.max_iterations, bool) or not isinstance(self.max_iterations, int) \
                or self.max_iterations < 1:
            raise InputError("lshaped.max_iterations", self.max_iterations,
                             "must be a positive integer")
        if self.time_limit is not None and not self.time_limit > 0:
            raise InputError("lshaped.time_limit", self.time_limit, "must be positive seconds")
        if self.clusters is not None and (isinstance(self.clusters, bool)
                                          or not isinstance(self.clusters, int)
                                          or self.clusters < 1):
            raise InputError("lshaped.clusters", self.clusters, "must be a positive integer")
        if not 0 < self.level < 1:
            raise InputError("lshaped.level", self.level, "must be in (0, 1)")
        if not 0 < self.relaxation_gap < 1:
            raise InputError("lshaped.relaxation_gap", self.relaxation_gap, "must be in (0, 1)")

    def replace(self, **changes: Any) -> LShapedOptions:
        return dataclasses.replace(self, **changes)

    def clusters_for(self, n_scenarios: int, integer: bool = False) -> int:
        """The number of clusters for ``n_scenarios`` scenarios (``integer``: the first stage
        has integer columns)."""
        auto = AUTO_CLUSTERS
        if integer:
            auto = n_scenarios if n_scenarios <= PER_SCENARIO_CUTS_INTEGER \
                else AUTO_CLUSTERS_INTEGER
        return max(1, min(n_scenarios, self.clusters or auto))


#: Optimality cuts per iteration when :attr:`LShapedOptions.clusters` is None.
AUTO_CLUSTERS = 200
#: Optimality cuts per iteration with an integer first stage and more than
#: :data:`PER_SCENARIO_CUTS_INTEGER` scenarios, when :attr:`LShapedOptions.clusters` is None.
#: Each cut adds a row to every master MIP, and the master dominates there. Measured (one
#: rank, gap target 0.1 %): lot sizing (furniture) ``poisson:1000`` after 600 s, gap 0.91 /
#: 0.74 / 0.60 / 0.67 / 0.80 % with 200 / 100 / 50 / 25 / 10 clusters; order assignment
#: (laser, relaxed) ``sample:200`` to 0.1 % in 5.8 / 5.0 / 3.5 s with 200 / 100 / 50 clusters
#: and ``sample:1000`` in 23.5 / 10.5 / 8.9 s.
AUTO_CLUSTERS_INTEGER = 50
#: With an integer first stage, up to this many scenarios each has its own cut (lot sizing
#: ``poisson:100`` to 0.1 % in 62 / 93 / 132 s with 100 / 50 / 25 clusters).
PER_SCENARIO_CUTS_INTEGER = 100
#: Phase-1 problems solved per iteration (for scenarios without recourse at the plan).
PHASE1_PER_ITERATION = 64
#: Weights of the l1 and the l-infinity distance in the level projection.
PROJECTION_WEIGHTS = (1.0, 10.0)
#: Integer first stages: the master MIP is solved to this share of the gap target (its
#: proven bound is the lower bound, so the rest of the gap is left to the cuts).
MASTER_GAP_SHARE = 0.25
#: Integer first stages: HiGHS's ``mip_pscost_minreliable`` in the master MIP, the strong
#: branching each column gets before its pseudocosts are trusted (HiGHS's default: 8). The
#: master's rows are dense cuts, so each LP is dear and strong branching took two thirds of
#: its LP iterations. Measured on two lot-sizing masters (furniture, poisson:300 after 5
#: master MIPs and poisson:1000 after 6, each started from the method's best plan): 29.4 s
#: and 49.3 s with 8, 20.4 s and 31.7 s with 0, the same plan and a bound as tight. Over a
#: whole run (poisson:1000, one rank, 600 s) it gave 10 master MIPs in 303 s against 8 in
#: 342 s and the same gap at the end (1.04 %), reached about 25 s sooner.
MASTER_MIN_RELIABLE = 0
#: Integer first stages: groups of scenarios whose mean scenario's recourse joins the master.
JENSEN_BLOCKS = 1
#: Integer recourse: the relative gap each scenario's recourse MIP is solved to (its value
#: bounds the plan's cost from above, its dual bound the integer L-shaped cuts from below).
RECOURSE_MIP_GAP = 1e-6
#: Integer recourse under a time limit: the least time a recourse MIP is given once the limit
#: is near (the iteration under way then ends soon after it, with what it has).
RECOURSE_MIN_SECONDS = 0.01
#: Risk measure: besides the aggregated CVaR cut, each tail scenario's own cut (in a
#: Rockafellar-Uryasev model of the CVaR column, see :meth:`_Master.add_tail_cuts`).
TAIL_CUTS = True
#: Integer first stages, phase 2 (in-out stabilisation): each plan's optimality cuts are taken
#: at the point this far from the plan toward a core point (the relaxation's best plan at
#: first, then halfway toward each plan evaluated). Those cuts bound the master's relaxation
#: better than cuts at a vertex; a plan's own cuts, tight there, join the master when it
#: proposes that plan again (a family's own cuts at a plan are taken only then, or where the
#: interior point has no recourse). 0: the cuts at the plan itself.
CORE_STEP = 0.2
#: Integer first stages, phase 2: besides the master MIP's plan, up to this many of the other
#: plans HiGHS found while solving it (its improving solutions, best first) are valued before
#: the master is solved again. Each costs one pass over the scenarios and brings its cuts; the
#: master MIP costs far more. 0: the master's plan alone.
EXTRA_PLANS = 5
#: Phase-1 iterations when the family has its own cuts (:attr:`Decomposition.cuts`).
FAMILY_CUTS_RELAXATION = 1


# ----------------------------------------------------------------------------------------------
# The decomposition of a compiled problem


@dataclass(frozen=True)
class Decomposition:
    """A compiled two-stage LP split into master data and recourse data (minimisation form).

    ``c``, ``x_lo``, ``x_hi``: expected first-stage cost and the bounds every scenario allows;
    ``A1``, ``a_lo``, ``a_hi``: the rows that hold only first-stage columns (bounds that every
    scenario allows); ``W`` and ``T``: recourse and technology matrices of the other rows, with
    per-scenario row bounds ``lo``/``hi`` (S x m2), column bounds ``y_lo``/``y_hi`` and costs
    ``q`` (S x n2), constants ``o`` (S,) and probabilities ``p`` (S,). ``link``: the
    first-stage columns that ``T`` touches; ``integer``: which first-stage columns are integer;
    ``first_cost``: each scenario's first-stage costs (S x n1) when they differ between
    scenarios (None when every scenario has ``c``; only a risk measure needs them);
    ``y_integer``: which recourse columns are integer; ``cuts``: the family's own optimality
    cuts for an integer first stage (:attr:`CompiledScenarios.cuts
    <stochplan.solve.matrix.CompiledScenarios.cuts>`, None: none), with ``rows``, the
    compiled rows that are the recourse rows, in order, and ``n_rows``, all compiled rows.
    """

    names: tuple[str, ...]
    c: np.ndarray
    x_lo: np.ndarray
    x_hi: np.ndarray
    A1: sp.csr_matrix
    a_lo: np.ndarray
    a_hi: np.ndarray
    W: sp.csc_matrix
    T: sp.csr_matrix
    lo: np.ndarray
    hi: np.ndarray
    y_lo: np.ndarray
    y_hi: np.ndarray
    q: np.ndarray
    o: np.ndarray
    p: np.ndarray
    link: np.ndarray
    sense: int
    integer: np.ndarray
    first_cost: np.ndarray | None = None
    y_integer: np.ndarray | None = None
    cuts: Any = None
    rows: np.ndarray | None = None
    n_rows: int = 0
    #: the model's own first-stage columns, the first of the master's (None: all of them);
    #: the others are the pattern columns of :meth:`with_patterns`
    n_plan: int | None = None

    @property
    def integer_recourse(self) -> bool:
        """Whether some recourse column is integer."""
        return self.y_integer is not None and bool(self.y_integer.any())

    @property
    def binary_first_stage(self) -> bool:
        """Whether every first-stage column is binary (integer within [0, 1])."""
        return bool(self.integer.all() and np.all(self.x_lo >= 0) and np.all(self.x_hi <= 1))

    @property
    def n_first(self) -> int:
        return self.c.size

    @classmethod
    def of(cls, compiled: Any) -> Decomposition:
        """Split a :class:`~stochplan.solve.matrix.CompiledScenarios`."""
        from stochplan.solve.matrix import first_stage_rows

        n1 = compiled.n_first
        A = compiled.A.tocsr()
        second = A[:, n1:]
        first, A1, a_lo, a_hi = first_stage_rows(compiled)
        recourse_rows = np.ones(A.shape[0], bool)
        recourse_rows[first] = False
        lo, hi = compiled.row_bounds(slice(None))
        lo, hi = np.atleast_2d(lo), np.atleast_2d(hi)
        T = A[recourse_rows][:, :n1].tocsr()
        T.eliminate_zeros()
        first_cost = compiled.cost[:, :n1]
        varies = first_cost.shape[0] > 1 and bool(np.any(np.ptp(first_cost, axis=0) != 0))
        return cls(
            names=tuple(compiled.names),
            c=compiled.probabilities / compiled.probabilities.sum() @ compiled.cost[:, :n1],
            x_lo=compiled.col_lo[:, :n1].max(axis=0),
            x_hi=compiled.col_hi[:, :n1].min(axis=0),
            A1=A1,
            a_lo=a_lo,
            a_hi=a_hi,
            W=second[recourse_rows].tocsc(),
            T=T,
            lo=np.ascontiguousarray(lo[:, recourse_rows]),
            hi=np.ascontiguousarray(hi[:, recourse_rows]),
            y_lo=np.ascontiguousarray(compiled.col_lo[:, n1:]),
            y_hi=np.ascontiguousarray(compiled.col_hi[:, n1:]),
            q=np.ascontiguousarray(compiled.cost[:, n1:]),
            o=np.asarray(compiled.offset, dtype=float),
            p=compiled.probabilities / compiled.probabilities.sum(),
            link=np.unique(T.indices),
            sense=compiled.sense,
            integer=np.asarray(compiled.columns.integer[:n1], bool),
            first_cost=np.ascontiguousarray(first_cost) if varies else None,
            y_integer=np.asarray(compiled.columns.integer[n1:], bool),
            cuts=compiled.cuts if bool(compiled.columns.integer[:n1].any()) else None,
            rows=np.flatnonzero(recourse_rows),
            n_rows=A.shape[0],
        )

    def with_patterns(self, coupling: np.ndarray) -> Decomposition:
        """This decomposition with the Lagrangian cuts over block patterns of the recourse
        rows ``coupling`` (a mask over ``W``'s rows) as its own cuts
        (:class:`~stochplan.solve.patterns.PatternCuts`); itself when those rows give none.

        The first stage gains one binary column per block and pattern, tied to the plan by
        first-stage rows (``sum_k z_bk = 1``, ``x_b = sum_k v_k z_bk``), with no cost and no
        recourse row: they live in the master alone, and :attr:`n_plan` says where the model's
        own columns end.
        """
        from stochplan.solve.patterns import PatternCuts

        cuts = PatternCuts.build(self, coupling)
        if cuts is None:
            return self
        n1, n = self.n_first, cuts.n_extra
        E, e_lo, e_hi = cuts.extra_rows()
        m1 = self.A1.shape[0]
        return dataclasses.replace(
            self,
            c=np.concatenate([self.c, np.zeros(n)]),
            x_lo=np.concatenate([self.x_lo, np.zeros(n)]),
            x_hi=np.concatenate([self.x_hi, np.ones(n)]),
            A1=sp.vstack([sp.hstack([self.A1, sp.csr_matrix((m1, n))]), E], format="csr"),
            a_lo=np.concatenate([self.a_lo, e_lo]),
            a_hi=np.concatenate([self.a_hi, e_hi]),
            T=sp.hstack([self.T, sp.csr_matrix((self.T.shape[0], n))], format="csr"),
            link=np.concatenate([self.link, n1 + np.arange(n)]),
            integer=np.concatenate([self.integer, np.ones(n, bool)]),
            first_cost=None if self.first_cost is None else np.hstack(
                [self.first_cost, np.zeros((self.first_cost.shape[0], n))]),
            cuts=cuts, n_plan=n1)

    def family_cut(self, s: int, pi: np.ndarray, x: np.ndarray) -> tuple[float, np.ndarray]:
        """Scenario ``s``'s cut from the family's own cuts (:attr:`cuts`) at the recourse
        row duals ``pi``: its value at the plan ``x`` and its slope on the linking columns,
        as the Benders cut's are given (valid at integer plans only)."""
        assert self.rows is not None
        duals = np.zeros(self.n_rows)
        duals[self.rows] = pi
        const, coef = self.cuts(s, duals)
        coef = np.asarray(coef, dtype=float)
        outside = np.ones(coef.size, bool)
        outside[self.link] = False
        if np.any(coef[outside] != 0):
            raise SolveError("the family's cuts have coefficients on first-stage columns that "
                             "no recourse row holds", "error")
        return float(const + coef @ x), coef[self.link]

    def dual_constants(self, pi: np.ndarray, tol: float = 1e-9) -> np.ndarray:
        """The constant of the phase-1 dual bound at row duals ``pi``, for every scenario.

        ``pi`` (from any scenario's phase-1 problem) is dual feasible for every scenario's
        phase-1 problem, which differ only in bounds; so each scenario's least total violation
        at ``x`` is at least ``const_s - (T'pi)'x``, with ``const_s`` the bound terms of the dual
        objective: ``pi_i`` times the row bound it prices, and the same for the reduced costs
        ``-W'pi`` of the recourse columns (entries below ``tol`` count as zero; -inf where a
        priced bound is infinite).
        """
        pi = np.where(np.abs(pi) > tol, pi, 0.0)
        red = -(self.W.T @ pi)
        red = np.where(np.abs(red) > tol, red, 0.0)
        with np.errstate(invalid="ignore"):
            rows = np.where(pi > 0, self.lo * pi, np.where(pi < 0, self.hi * pi, 0.0))
            cols = np.where(red > 0, self.y_lo * red, np.where(red < 0, self.y_hi * red, 0.0))
        return rows.sum(axis=1) + cols.sum(axis=1)

    def recourse_floor(self) -> np.ndarray:
        """A lower bound on each Q_s from the column bounds alone (-inf where there is none)."""
        with np.errstate(invalid="ignore"):
            low = np.where(self.q > 0, self.q * self.y_lo,
                           np.where(self.q < 0, self.q * self.y_hi, 0.0))
        low = np.where(np.isnan(low), -np.inf, low)
        return self.o + low.sum(axis=1)


# ----------------------------------------------------------------------------------------------
# HiGHS objects


def _highs() -> Any:
    """A quiet HiGHS object whose dual simplex prices by devex, as the extensive form's does
    (:data:`~stochplan.solve.solvers.PRICING`). Electronics with lost sales at $500, 1,000
    scenarios, two runs each: recourse 4.59 / 4.06 s and master 1.60 / 1.45 s with HiGHS's
    steepest edge, 4.05 / 3.78 s and 1.14 / 1.03 s with devex, the same 19 iterations."""
    import highspy

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("simplex_dual_edge_weight_strategy", DEVEX)
    return h


def _pass_lp(h: Any, A: sp.spmatrix, cost: np.ndarray, col_lo: np.ndarray, col_hi: np.ndarray,
             row_lo: np.ndarray, row_hi: np.ndarray) -> None:
    from stochplan.solve.matrix import _pass

    _pass(h, A, cost, col_lo, col_hi, row_lo, row_hi, np.zeros(A.shape[1], bool))


class _WarmLP:
    """One HiGHS LP re-solved for many scenarios, each warm-started from its own last basis.

    A scenario solved for the first time starts from ``start`` (a basis every rank computes
    the same way) or, without one, from the slack basis; so whichever rank solves a scenario,
    and after whichever other scenario, HiGHS starts it from the same basis and ends at the
    same solution.
    """

    def __init__(self, A: sp.spmatrix, cost: np.ndarray, col_lo: np.ndarray,
                 col_hi: np.ndarray, row_lo: np.ndarray, row_hi: np.ndarray) -> None:
        self.h = _highs()
        _pass_lp(self.h, A, cost, col_lo, col_hi, row_lo, row_hi)
        self.rows = np.arange(A.shape[0], dtype=np.int32)
        self.bases: dict[int, Any] = {}
        self.start: Any = None

    def run(self, s: int, row_lo: np.ndarray, row_hi: np.ndarray,
            cols: np.ndarray | None = None, col_lo: np.ndarray | None = None,
            col_hi: np.ndarray | None = None, cost: np.ndarray | None = None) -> str:
        """Solve scenario ``s`` with these bounds (and costs); HiGHS's model status name."""
        h = self.h
        h.changeRowsBounds(self.rows.size, self.rows, row_lo, row_hi)
        if col_lo is not None and cols is not None:
            h.changeColsBounds(cols.size, cols, col_lo, col_hi)
        if cost is not None and cols is not None:
            h.changeColsCost(cols.size, cols, cost)
        h.clearSolver()  # no state from the previous scenario's solve carries over
        basis = self.bases.get(s, self.start)
        if basis is None or basis is False:
            h.setBasis()
        else:
            h.setBasis(basis)
        h.run()
        status = h.getModelStatus().name
        if status == "kOptimal":
            self.bases[s] = h.getBasis()
        return status


class _Recourse:
    """The recourse LPs of this rank's scenarios, and their phase-1 problems when infeasible."""

    def __init__(self, d: Decomposition) -> None:
        self.d = d
        n2 = d.W.shape[1]
        self.cols = np.arange(n2, dtype=np.int32)
        S = len(d.names)
        cost_varies = S > 1 and bool(np.any(np.ptp(d.q, axis=0) != 0))
        bounds_vary = S > 1 and bool(np.any(_ptp_inf(d.y_lo) != 0)
                                     or np.any(_ptp_inf(d.y_hi) != 0))
        self.cost = d.q if cost_varies else None
        self.y_lo = d.y_lo if bounds_vary else None
        self.lp = _WarmLP(d.W, d.q[0], d.y_lo[0], d.y_hi[0], d.lo[0], d.hi[0])
        self._phase1: _WarmLP | None = None
        self._mip: Any = None

    def solve_integer(self, s: int, Tx: np.ndarray, time_limit: float | None = None
                      ) -> tuple[float, float, np.ndarray | None]:
        """(value, proven bound, solution y) of scenario ``s``'s recourse with its integer
        columns integer, at T x = ``Tx``: the value of HiGHS's best recourse (an upper bound
        on Q_s) and its dual bound (a lower bound), to :data:`RECOURSE_MIP_GAP`; both +inf
        when the scenario has no integer recourse.

        Within ``time_limit`` seconds (None: none): a solve stopped there gives its best
        recourse and its bound as they stand, the value +inf when it has found none yet (the
        plan is then not valued) and the bound -inf before HiGHS has one; neither says the
        scenario has no recourse."""
        from stochplan.solve.matrix import _pass

        d = self.d
        assert d.y_integer is not None
        if self._mip is None:
            self._mip = _highs()
            self._mip.setOptionValue("mip_rel_gap", RECOURSE_MIP_GAP)
            _pass(self._mip, d.W, d.q[0], d.y_lo[0], d.y_hi[0], d.lo[0], d.hi[0], d.y_integer)
        h = self._mip
        h.changeRowsBounds(d.lo.shape[1], np.arange(d.lo.shape[1], dtype=np.int32),
                           d.lo[s] - Tx, d.hi[s] - Tx)
        if self.y_lo is not None:
            h.changeColsBounds(self.cols.size, self.cols, d.y_lo[s], d.y_hi[s])
        if self.cost is not None:
            h.changeColsCost(self.cols.size, self.cols, self.cost[s])
        h.setOptionValue("time_limit", math.inf if time_limit is None else float(time_limit))
        h.run()
        status = h.getModelStatus().name
        if status in ("kInfeasible", "kUnboundedOrInfeasible"):
            return math.inf, math.inf, None
        if status == "kTimeLimit":
            info = h.getInfo()
            bound = float(info.mip_dual_bound)
            bound = bound + float(d.o[s]) if math.isfinite(bound) else -math.inf
            if info.primal_solution_status != 2:
                return math.inf, bound, None
            y = np.asarray(h.getSolution().col_value)
            return float(d.q[s] @ y + d.o[s]), bound, y
        if status != "kOptimal":
            raise SolveError(f"scenario {d.names[s]}'s integer recourse problem: HiGHS ended "
                             f"{status}", status.removeprefix("k").lower())
        y = np.asarray(h.getSolution().col_value)
        info = h.getInfo()
        return (float(d.q[s] @ y + d.o[s]), float(info.mip_dual_bound) + float(d.o[s]), y)

    def solve(self, s: int, Tx: np.ndarray) -> tuple[str, float, np.ndarray, np.ndarray | None]:
        """(status, value Q_s, row duals, solution y) of scenario ``s`` at T x = ``Tx``."""
        d, lp = self.d, self.lp
        if lp.start is None:  # the first solve of scenario 0 gives every scenario its start
            lp.start = False
            self.solve(0, Tx)
            lp.start = lp.h.getBasis() if lp.h.getBasis().valid else None
        status = lp.run(s, d.lo[s] - Tx, d.hi[s] - Tx, self.cols,
                        None if self.y_lo is None else d.y_lo[s],
                        None if self.y_lo is None else d.y_hi[s],
                        None if self.cost is None else self.cost[s])
        if status == "kOptimal":
            sol = lp.h.getSolution()
            y = np.asarray(sol.col_value)
            return "optimal", float(d.q[s] @ y + d.o[s]), np.asarray(sol.row_dual), y
        if status in ("kInfeasible", "kUnboundedOrInfeasible"):
            return "infeasible", math.inf, np.zeros(0), None
        raise SolveError(f"scenario {d.names[s]}'s recourse problem: HiGHS ended {status}",
                         status.removeprefix("k").lower())

    def phase1(self, s: int, Tx: np.ndarray) -> tuple[float, np.ndarray]:
        """(least total row violation, its row duals) of scenario ``s`` at T x = ``Tx``."""
        d = self.d
        m2, n2 = d.W.shape
        if self._phase1 is None:
            eye = sp.identity(m2, format="csc")
            self._phase1 = _WarmLP(
                sp.hstack([d.W, eye, -eye], format="csc"),
                np.concatenate([np.zeros(n2), np.ones(2 * m2)]),
                np.concatenate([d.y_lo[0], np.zeros(2 * m2)]),
                np.concatenate([d.y_hi[0], np.full(2 * m2, np.inf)]), d.lo[0], d.hi[0])
        bounds = {} if self.y_lo is None else {
            "cols": self.cols, "col_lo": d.y_lo[s], "col_hi": d.y_hi[s]}
        status = self._phase1.run(s, d.lo[s] - Tx, d.hi[s] - Tx, **bounds)
        if status != "kOptimal":
            raise InfeasibleError(
                f"scenario {d.names[s]}'s recourse variables cannot meet their own bounds "
                f"(phase-1 problem ended {status}), whatever the first stage")
        h = self._phase1.h
        return float(h.getInfo().objective_function_value), np.asarray(h.getSolution().row_dual)


def _ptp_inf(a: np.ndarray) -> np.ndarray:
    """Column ranges of ``a`` with inf - inf = 0."""
    finite = np.where(np.isfinite(a), a, 0.0)
    spread = np.ptp(finite, axis=0)
    mixed = np.any(np.isfinite(a), axis=0) & np.any(~np.isfinite(a), axis=0)
    return np.where(mixed, 1.0, spread)


def jensen_blocks(d: Decomposition, groups: Sequence[np.ndarray]) -> list[tuple[Any, ...]]:
    """Each group's mean scenario: (probability, row bounds, column bounds, constant).

    With the recourse costs the same in every scenario, Q_s(x) is the value of an LP whose
    right-hand sides (row and column bounds) are the scenario's data, a convex function of
    them; so by Jensen's inequality the group's expected recourse is at least its
    probability times Q at the group's mean data (a bound infinite in any scenario is dropped,
    which only lowers the value). Empty when the costs vary between scenarios.
    """
    if len(d.names) > 1 and np.any(np.ptp(d.q, axis=0) != 0):
        return []

    def mean(a: np.ndarray, w: np.ndarray, missing: float) -> np.ndarray:
        finite = np.isfinite(a)
        return np.where(finite.all(axis=0), w @ np.where(finite, a, 0.0), missing)

    out = []
    for g in groups:
        weight = float(d.p[g].sum())
        w = d.p[g] / weight
        out.append((weight, mean(d.lo[g], w, -np.inf), mean(d.hi[g], w, np.inf),
                    mean(d.y_lo[g], w, -np.inf), mean(d.y_hi[g], w, np.inf),
                    float(w @ d.o[g])))
    return out


class _Master:
    """The master LP (lower bound) and the level projection LP, sharing every cut.

    Columns ``[x, theta_1 .. theta_C]``, and with a risk measure one more, ``theta_R`` (the
    model of the CVaR of the recourse losses); the objective is ``c'x + sum_k weight_k
    theta_k``, with weights 1 (risk-neutral), or ``1 - lambda`` for the clusters and ``lambda``
    for ``theta_R``. The projection measures distance over the linking columns in a mix of the
    l1 and the l-infinity norm (``PROJECTION_WEIGHTS``), so it stays a linear program that
    HiGHS re-solves warm; columns ``[x, theta, p, m, t]`` with ``x_j - p_j + m_j = center_j``
    and ``p_j, m_j <= t`` on the linking columns.
    """

    def __init__(self, d: Decomposition, n_clusters: int, floor: np.ndarray,
                 risk: RiskConfig | None = None) -> None:
        self.d = d
        self.n1 = n1 = d.n_first
        self.C = n_clusters
        self.risk = risk
        #: theta columns: the clusters', then theta_R with a risk measure
        self.n_theta = C = n_clusters + (1 if risk is not None else 0)
        self.weight = np.ones(C) if risk is None else np.concatenate(
            [np.full(n_clusters, 1.0 - risk.weight), [risk.weight]])
        self.floor = floor  # lower bound of each theta, -inf where none is known
        self.linked = False  # theta_R >= sum_c theta_c added (risk only)
        #: rank 0, risk only: each scenario's total loss at the last plan evaluated
        self.losses: np.ndarray | None = None
        m1 = d.A1.shape[0]
        A = sp.hstack([d.A1, sp.csr_matrix((m1, C))], format="csc")
        cost = np.concatenate([d.c, np.zeros(C)])
        col_lo = np.concatenate([d.x_lo, np.zeros(C)])
        col_hi = np.concatenate([d.x_hi, np.zeros(C)])  # theta = 0 until it has a cut
        self.lp = _highs()
        _pass_lp(self.lp, A, cost, col_lo, col_hi, d.a_lo, d.a_hi)

        L = d.link.size
        w1, winf = PROJECTION_WEIGHTS
        eye = sp.identity(L, format="csr")
        pick = sp.csr_matrix((np.ones(L), (np.arange(L), d.link)), shape=(L, n1))
        zeros = sp.csr_matrix
        rows = [
            sp.hstack([d.A1, zeros((m1, C + 2 * L + 1))]),
            sp.hstack([sp.csr_matrix(d.c[None, :]), self.weight[None, :],
                       zeros((1, 2 * L + 1))]),
            sp.hstack([pick, zeros((L, C)), -eye, eye, zeros((L, 1))]),
            sp.hstack([zeros((L, n1 + C)), eye, zeros((L, L)), -np.ones((L, 1))]),
            sp.hstack([zeros((L, n1 + C + L)), eye, -np.ones((L, 1))]),
        ]
        self.level_row = m1
        self.center_rows = np.arange(m1 + 1, m1 + 1 + L, dtype=np.int32)
        self.proj = _highs()
        _pass_lp(self.proj, sp.vstack(rows, format="csc"),
                 np.concatenate([np.zeros(n1 + C), np.full(2 * L, w1), [winf]]),
                 np.concatenate([col_lo, np.zeros(2 * L + 1)]),
                 np.concatenate([col_hi, np.full(2 * L + 1, np.inf)]),
                 np.concatenate([d.a_lo, [-np.inf], np.zeros(L), np.full(2 * L, -np.inf)]),
                 np.concatenate([d.a_hi, [np.inf], np.zeros(L), np.zeros(2 * L)]))
        self.active = np.zeros(C, bool)
        self.n_cuts = 0
        self.integer = False
        #: phase 2: the plans HiGHS found while solving the master MIP last, in the order found
        #: (each better than the one before; integer columns rounded)
        self.found: list[np.ndarray] = []
        self.stop_at, self.closed = math.inf, False  # solve_mip's
        #: phase 2: each evaluated plan's own optimality cuts, held back while the master has
        #: its interior cuts instead (:data:`CORE_STEP`); key: the plan's bytes
        self.held: dict[bytes, tuple[np.ndarray, sp.csr_matrix, np.ndarray]] = {}
        #: phase 2 with a family's cuts: the plans whose own cuts were never taken (the
        #: interior point's stood in for them); a plan proposed again is valued once more
        self.owed: set[bytes] = set()
        #: risk only: the first of the columns ``eta, r_1 .. r_S`` in each HiGHS object (the
        #: Rockafellar-Uryasev model of theta_R, added with the first tail cuts)
        self.tail_base: dict[int, int] = {}

    def activate(self, thetas: np.ndarray) -> None:
        """Let theta_k take part (its weight as cost, bounded below by the floor) once k has a
        cut (or a finite floor).

        With a risk measure, once every cluster's theta takes part, the row ``theta_R >=
        sum_c theta_c`` joins the master: CVaR is at least the expectation, so the expectation
        cuts bound the CVaR model too (and with them the Jensen block of phase 2).
        """
        new = thetas[~self.active[thetas]]
        if new.size == 0:
            return
        self.active[new] = True
        cols = (self.n1 + new).astype(np.int32)
        self.lp.changeColsCost(cols.size, cols, self.weight[new])
        for h in (self.lp, self.proj):
            h.changeColsBounds(cols.size, cols, self.floor[new], np.full(cols.size, np.inf))
        if self.risk is not None and not self.linked and self.active[: self.C].all():
            self.linked = True
            row = np.zeros((1, self.n1 + self.n_theta))
            row[0, self.n1:self.n1 + self.C] = -1.0
            row[0, -1] = 1.0
            self._add_rows(np.zeros(1), sp.csr_matrix(row), np.full(1, np.inf))

    def add_cuts(self, lower: np.ndarray, coef: sp.csr_matrix, upper: np.ndarray) -> None:
        """Rows ``lower <= coef [x; theta] <= upper``."""
        if coef.shape[0] == 0:
            return
        self._add_rows(lower, coef, upper)
        self.n_cuts += coef.shape[0]

    def _add_rows(self, lower: np.ndarray, coef: sp.csr_matrix, upper: np.ndarray) -> None:
        coef = coef.tocsr()
        for h in (self.lp,) if self.integer else (self.lp, self.proj):
            h.addRows(coef.shape[0], lower, upper, coef.nnz, coef.indptr.astype(np.int32),
                      coef.indices.astype(np.int32), coef.data.astype(np.float64))

    def add_tail_cuts(self, scenarios: np.ndarray, lower: np.ndarray, slopes: np.ndarray,
                      weights: np.ndarray) -> None:
        """Per-scenario cuts of the Rockafellar-Uryasev model of ``theta_R`` (risk only).

        ``theta_R >= eta + sum_s r_s`` with ``r_s >= weights_s (Q_s(x) - eta)`` and ``r_s >=
        0`` (``weights_s = p_s / (1 - alpha)``) holds at the CVaR of the recourse losses for
        the best ``eta``; each row ``r_s + weights_s eta - weights_s slopes_s'x >= lower_s``
        (``lower_s = weights_s (Q_s(x_k) - slopes_s'x_k)``) linearises one scenario's loss.
        The columns ``eta, r_1 .. r_S`` and the row joining them to ``theta_R`` are added with
        the first cuts.
        """
        d, n1 = self.d, self.n1
        S = len(d.names)
        targets = (self.lp,) if self.integer else (self.lp, self.proj)
        for h in targets:
            if id(h) in self.tail_base:
                continue
            base = h.getNumCol()
            self.tail_base[id(h)] = base
            h.addCols(1 + S, np.zeros(1 + S), np.concatenate([[-np.inf], np.zeros(S)]),
                      np.full(1 + S, np.inf), 0, np.zeros(1 + S, np.int32),
                      np.zeros(0, np.int32), np.zeros(0))
            idx = np.concatenate([[n1 + self.n_theta - 1], base + np.arange(1 + S)])
            val = np.concatenate([[1.0], np.full(1 + S, -1.0)])
            h.addRow(0.0, np.inf, idx.size, idx.astype(np.int32), val)
        k = scenarios.size
        for h in targets:
            base = self.tail_base[id(h)]
            x_part = sp.csr_matrix(-weights[:, None] * slopes)
            x_part.eliminate_zeros()
            extra = sp.csr_matrix((np.concatenate([weights, np.ones(k)]),
                                   (np.tile(np.arange(k), 2),
                                    np.concatenate([np.full(k, base), base + 1 + scenarios]))),
                                  shape=(k, base + 1 + S))
            coef = (sp.hstack([x_part, sp.csr_matrix((k, base + 1 + S - n1))]) + extra).tocsr()
            h.addRows(k, lower, np.full(k, np.inf), coef.nnz, coef.indptr.astype(np.int32),
                      coef.indices.astype(np.int32), coef.data.astype(np.float64))
        self.n_cuts += k

    def solve_lp(self) -> tuple[str, float, np.ndarray | None]:
        """(status, value, x) of the master LP."""
        self.lp.run()
        status = self.lp.getModelStatus().name
        if status != "kOptimal":
            return status.removeprefix("k").lower(), -math.inf, None
        x = np.asarray(self.lp.getSolution().col_value)[: self.n1]
        return "optimal", float(self.lp.getInfo().objective_function_value), x

    def make_integer(self, groups: Sequence[np.ndarray] = (),
                     cluster: np.ndarray | None = None) -> int:
        """Make the first stage's integer columns integer in the master (phase 2); the
        projection LP is no longer kept up to date.

        Each group of scenarios (their indices) adds a Jensen block: the recourse of the
        group's mean scenario, whose value times the group's probability bounds the group's
        expected recourse from below (see :func:`jensen_blocks`). When every cluster of
        scenarios (``cluster``: each scenario's) lies within one group, one row per group
        asks its clusters' thetas to sum to at least its block's bound; otherwise one row asks
        all the thetas to sum to at least the blocks' bounds together (weaker: a group's
        slack may then cover another's). Returns the number of blocks added (none when the
        recourse costs vary between scenarios or a cluster has no theta yet). With a risk
        measure the block bounds the expectation part only; it bounds ``theta_R`` through the
        row ``theta_R >= sum_c theta_c`` (CVaR >= E), which is in the master by then.
        """
        d, h = self.d, self.lp
        cols = np.flatnonzero(d.integer).astype(np.int32)
        h.changeColsIntegrality(cols.size, cols, np.ones(cols.size, np.uint8))
        h.setOptionValue("mip_rel_gap", 0.0)
        h.setOptionValue("mip_pscost_minreliable", MASTER_MIN_RELIABLE)
        self.integer = True

        def improving(event: Any) -> None:  # HiGHS found a better plan: keep it
            x = np.asarray(event.data_out.mip_solution)[: self.n1]
            self.found.append(np.where(d.integer, np.round(x), x))

        h.cbMipImprovingSolution.subscribe(improving)

        def closing(event: Any) -> None:  # the bound closes the gap: stop the search
            if event.data_out.mip_dual_bound >= self.stop_at:
                self.closed = True
                event.interrupt()

        h.cbMipInterrupt.subscribe(closing)
        blocks = jensen_blocks(d, groups) if groups and self.active.all() else []
        if not blocks:
            return 0
        m2, n2 = d.W.shape
        n_cols = h.getNumCol()
        K = len(blocks)
        h.addCols(K * n2, np.zeros(K * n2), np.concatenate([b[3] for b in blocks]),
                  np.concatenate([b[4] for b in blocks]), 0, np.zeros(K * n2, np.int32),
                  np.zeros(0, np.int32), np.zeros(0))
        rows = []
        lo, hi = [], []
        for k, (_weight, b_lo, b_hi, *_rest) in enumerate(blocks):
            rows.append(sp.hstack([d.T, sp.csr_matrix((m2, n_cols - self.n1 + k * n2)), d.W,
                                   sp.csr_matrix((m2, (K - 1 - k) * n2))]))
            lo.append(b_lo)
            hi.append(b_hi)
        nested = cluster is not None and all(
            np.intersect1d(cluster[g], cluster[h]).size == 0
            for i, g in enumerate(groups) for h in groups[i + 1:])
        # each row: the thetas of its clusters - sum over its blocks weight q'y >= constants
        members = [np.unique(cluster[g]) for g in groups] if nested and cluster is not None \
            else [np.arange(self.C)]
        parts = [[k] for k in range(K)] if nested else [list(range(K))]
        total = np.zeros((len(members), n_cols + K * n2))
        for r, (clusters, ks) in enumerate(zip(members, parts, strict=True)):
            total[r, self.n1 + clusters] = 1.0
            for k in ks:
                total[r, n_cols + k * n2:n_cols + (k + 1) * n2] = -blocks[k][0] * d.q[0]
        rows.append(sp.csr_matrix(total))
        lo.append(np.array([sum(blocks[k][0] * blocks[k][5] for k in ks) for ks in parts]))
        hi.append(np.full(len(parts), np.inf))
        A = sp.vstack(rows, format="csr")
        h.addRows(A.shape[0], np.concatenate(lo), np.concatenate(hi), A.nnz,
                  A.indptr.astype(np.int32), A.indices.astype(np.int32),
                  A.data.astype(np.float64))
        return K

    def solve_mip(self, rel_gap: float, time_limit: float | None,
                  start: np.ndarray | None = None,
                  stop_at: float = math.inf) -> tuple[str, float, float, np.ndarray | None]:
        """(status, proven bound, incumbent value, incumbent x) of the master MIP.

        Solved to the relative gap ``rel_gap`` (HiGHS's: relative to the incumbent) within
        ``time_limit`` seconds, or until its bound reaches ``stop_at`` (the bound that closes
        the method's gap: the search is then done, status ``"closed"``); ``start`` (a plan) is
        offered as the first incumbent, its thetas completed by HiGHS. The bound is HiGHS's
        dual bound, valid whatever the gap; integer columns of x are rounded. The plans found
        on the way are in :attr:`found`.
        """
        h = self.lp
        self.found = []
        self.stop_at, self.closed = stop_at, False
        h.setOptionValue("mip_rel_gap", float(rel_gap))
        h.setOptionValue("time_limit", math.inf if time_limit is None else float(time_limit))
        if start is not None:
            cols = np.arange(self.n1, dtype=np.int32)
            h.setSolution(self.n1, cols, np.asarray(start, dtype=np.float64))
        h.run()
        status = h.getModelStatus().name
        info = h.getInfo()
        if status in ("kInfeasible", "kUnboundedOrInfeasible"):
            return "infeasible", math.inf, math.inf, None
        if status not in ("kOptimal", "kTimeLimit", "kInterrupt", "kSolutionLimit"):
            return status.removeprefix("k").lower(), -math.inf, math.inf, None
        bound = float(info.mip_dual_bound)
        if self.closed and status == "kInterrupt":
            return "closed", bound, math.inf, None
        if info.primal_solution_status != 2:  # no incumbent (time limit)
            return "time_limit", bound, math.inf, None
        x = np.asarray(h.getSolution().col_value)[: self.n1]
        x = np.where(self.d.integer, np.round(x), x)
        return ("optimal" if status == "kOptimal" else "time_limit", bound,
                float(info.objective_function_value), x)

    def project(self, center: np.ndarray, level: float) -> np.ndarray | None:
        """The plan nearest ``center`` (linking columns) with model value <= ``level``."""
        h = self.proj
        c = center[self.d.link]
        h.changeRowsBounds(self.center_rows.size, self.center_rows, c, c)
        h.changeRowBounds(self.level_row, -np.inf, level)
        h.run()
        if h.getModelStatus().name != "kOptimal":
            return None
        return np.asarray(h.getSolution().col_value)[: self.n1]


# ----------------------------------------------------------------------------------------------
# The method


def solve_lshaped(
    module: ModuleType,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any] | None = None,
    options: LShapedOptions | None = None,
    comm: Any = None,
    allow_partial: bool = False,
    progress: Callable[[str], None] | None = None,
    compiled: Any = None,
    risk: RiskConfig | None = None,
    start_plan: pd.DataFrame | None = None,
) -> SolveResult | None:
    """Solve the two-stage problem of ``module`` by the level-stabilised L-shaped method.

    Call it on every rank of ``comm`` (None: serial) with the same arguments; rank 0 gets the
    :class:`SolveResult` and the other ranks ``None``.

    Parameters
    ----------
    module : module
        Follows mpi-sppy's contract; its scenario models must share one constraint matrix
        (fixed recourse) and have only continuous second-stage variables (integer first-stage
        variables are solved with a MIP master, see the module docstring).
    scenario_names : sequence of str
    creator_kwargs : dict, optional
        Keyword arguments of ``module.scenario_creator``.
    options : LShapedOptions, optional
    comm : mpi4py communicator, optional
    allow_partial : bool
        Return a result whose gap is above the target (iteration or time limit) instead of
        raising.
    progress : callable, optional
        Called with the name of each phase as it starts (rank 0 only).
    compiled : CompiledScenarios, optional
        The scenarios already compiled (skips compiling them again).
    risk : RiskConfig, optional
        The objective's risk measure; None (or the expectation) minimises the expected cost.
        With CVaR the method minimises the mean-CVaR measure of the total cost (the negative
        profit for a maximising family) itself, on the family's own scenarios (see
        "Risk-averse objective" in the module docstring).
    start_plan : DataFrame, optional
        A first-stage plan (as a run stores it, checked by
        :func:`stochplan.solve.matrix.start_vector`) valued first: the first plan of the
        iterations, or with integer first stages the first plan of phase 2, valued exactly
        (with integer recourse too). It is the incumbent until a better plan is found, so a
        good plan from another method (PH's, say) gets this method's bound.
        ``info["start_plan"]`` gives its value.

    Returns
    -------
    SolveResult or None
        ``method="lshaped"``; ``objective`` is the expected cost of the best plan evaluated
        (every scenario solved at it), ``bound`` the master's bound and ``gap`` their relative
        gap. ``info`` holds ``iterations``, ``stop_reason``, ``clusters``, ``cuts``, ``ranks``
        and ``history`` (``[seconds since the call, iteration, bound, best objective]`` per
        iteration, in the model's own sense; with integer first stages the best objective is
        infinite during phase 1, whose plans are fractional). With integer first stages it
        also holds ``integer_first_stage`` (their count), ``relaxation`` (phase 1's
        iterations, bound and value) and ``master_mip`` (solves, seconds, last gap). With a
        risk measure ``objective`` is the best plan's mean-CVaR value in the model's sense
        (``(1 - lambda) E[profit] - lambda CVaR(-profit)`` for a maximisation), ``bound``
        bounds that measure, and ``info["risk"]`` holds the measure and the plan's in-sample
        figures (:class:`~stochplan.metrics.stats.RiskValue` as a dict, as
        :func:`~stochplan.solve.risk.risk_result` writes them).

    Raises
    ------
    InputError
        The model has integer second-stage variables, or its scenarios do not share one
        matrix.
    InfeasibleError
        No first-stage plan has feasible recourse in every scenario.
    SolveError
        The gap target was missed (and ``allow_partial`` is false), or HiGHS failed.
    """
    from stochplan.solve import matrix

    options = options or LShapedOptions()
    rank = 0 if comm is None else comm.Get_rank()
    size = 1 if comm is None else comm.Get_size()
    note = progress if (progress is not None and rank == 0) else (lambda phase: None)
    timings: dict[str, float] = {}

    note("build")
    called = start = time.perf_counter()
    if compiled is None:
        try:
            compiled = matrix.compile_scenarios(module, scenario_names, creator_kwargs)
        except matrix.NotFixedRecourse as why:
            raise InputError("method", "lshaped", f"needs fixed recourse: {why}") from None
    second_integer = int(compiled.columns.integer[compiled.n_first:].sum())
    first_integer = bool(compiled.columns.integer[:compiled.n_first].any())
    measure = risk if risk is not None and risk.active else None
    if second_integer and (not first_integer or measure is not None):
        reason = ("with a risk measure" if first_integer else "with a continuous first stage")
        raise InputError("method", "lshaped",
                         f"the L-shaped method takes integer recourse ({second_integer} "
                         f"second-stage integer variables here) only for an integer first "
                         f"stage and the expected cost, not {reason}: relax integrality "
                         "(--relax, or model.integer = false) or use --method ef/ph")
    index_names = tuple(getattr(module, "INDEX_NAMES", ()))
    x0 = None if start_plan is None else matrix.start_vector(start_plan, compiled, index_names)
    d = Decomposition.of(compiled)
    coupling = _coupling(module, compiled, d)
    if coupling is not None:
        d = d.with_patterns(coupling)
        if x0 is not None and d.n_plan is not None:
            x0 = d.cuts.extend(x0)
    timings["build"] = time.perf_counter() - start

    note("solve")
    start = time.perf_counter()
    run = _iterate(d, options, comm, called, measure, x0)
    timings["solve"] = time.perf_counter() - start
    timings.update(run.pop("timings"))

    note("extract")
    start = time.perf_counter()
    best_y = _gather_rows(run.pop("best_y"), len(d.names), comm)

    def result() -> SolveResult:  # rank 0's: the run's result, or why there is none
        x = run["x"]
        if x is None:
            if run["infeasible_master"]:
                from stochplan.solve.diagnose import scenario_alone

                # an instance infeasible in every scenario: name the families, as the EF does
                try:
                    why = scenario_alone(module, compiled.names[0], dict(creator_kwargs or {}))
                except Exception:  # noqa: BLE001 - the diagnosis only adds to the message
                    why = None
                raise InfeasibleError(
                    "no first-stage plan has feasible recourse in every scenario (the "
                    "feasibility cuts leave the first stage empty)" + (
                        "" if why is None else f"; scenario {compiled.names[0]} alone is "
                        f"infeasible: {why[1]}"), ("feasibility cuts",) + (
                        () if why is None else why[0]))
            raise SolveError(f"the L-shaped method found no plan feasible in every scenario "
                             f"in {run['iterations']} iterations ({run['stop_reason']})",
                             "no_incumbent")
        plan = matrix.plan_table(compiled.columns, x[: compiled.n_first], index_names)
        recourse = matrix.recourse_table(compiled.names, compiled.columns, best_y, index_names)
        timings["extract"] = time.perf_counter() - start

        objective = d.sense * run["ub"]
        bound = d.sense * run["lb"] if math.isfinite(run["lb"]) else None
        gap = relative_gap(objective, bound)
        status = decomposition_status(gap, options.rel_gap, run["stop_reason"])
        info = {"iterations": run["iterations"], "stop_reason": "gap" if status in SOLVED
                else run["stop_reason"], "clusters": run["clusters"], "cuts": run["cuts"],
                "feasibility_cuts": run["feasibility_cuts"], "ranks": size,
                "rel_gap_target": options.rel_gap, "level": options.level,
                "history": [[t, k, d.sense * lb, d.sense * ub] for t, k, lb, ub in run["history"]],
                "backend": f"matrix ({compiled.method})"}
        if start_plan is not None:
            valued = run["start_value"]
            info["start_plan"] = f"{matrix.start_label(start_plan)}: " + (
                f"valued ${d.sense * valued:,.2f}" if valued is not None and math.isfinite(valued)
                else "not valued (no recourse in some scenario, or the limit came first)")
        if "relaxation" in run:  # integer first stage: phase 1 on the relaxation, then the MIP
            relax = run["relaxation"]
            info["integer_first_stage"] = int(d.integer[: compiled.n_first].sum())
            if d.n_plan is not None:  # the master's pattern columns (with_patterns)
                info["pattern_columns"] = d.n_first - d.n_plan
            info["relaxation"] = {
                "iterations": relax.get("iterations"), "stop_reason": relax.get("stop_reason"),
                "bound": d.sense * relax["bound"] if relax else None,
                "value": d.sense * relax["value"] if relax and math.isfinite(relax["value"])
                else None,
                "rel_gap_target": options.relaxation_gap,
                "jensen_blocks": relax.get("jensen_blocks", 0)}
            info["master_mip"] = run["master_mip"]
        if measure is not None:
            from stochplan.metrics.stats import risk_value

            measured = risk_value(d.sense * run["best_losses"], d.p, measure.alpha, measure.weight,
                                  "min" if d.sense == 1 else "max")
            info["risk"] = {"measure": measure.measure, "label": measure.label(),
                            **measured.to_dict()}
        if status not in SOLVED and not allow_partial:
            raise SolveError(
                f"the L-shaped method stopped ({run['stop_reason'].replace('_', ' ')}) after "
                f"{run['iterations']} iterations with gap "
                f"{gap if gap is not None else math.inf:.3%} above the target "
                f"{options.rel_gap:.3%} (objective {objective:,.2f}, bound "
                f"{'none' if bound is None else f'{bound:,.2f}'}); ask for partial results to "
                "keep it", status)
        return SolveResult(
            method="lshaped", status=status, objective=objective, bound=bound, gap=gap,
            plan=plan, recourse=recourse, scenario_names=compiled.names,
            probabilities=compiled.probabilities, timings=timings, solver="highs", info=info)

    return on_root(result, comm)  # rank 0's failure ends every rank, said once


def _coupling(module: ModuleType, compiled: Any, d: Decomposition) -> np.ndarray | None:
    """The recourse rows (a mask over ``d.W``'s) of the constraint families the module's
    family names as coupling its recourse (:attr:`~stochplan.family.Family.coupling_rows`),
    when the pattern cuts may serve: a binary first stage, continuous recourse and no cuts of
    the family's own; else None."""
    names = tuple(getattr(getattr(module, "FAMILY", None), "coupling_rows", ()) or ())
    if not names or d.cuts is not None or d.integer_recourse or not d.integer.any() \
            or d.rows is None:
        return None
    families = np.asarray(compiled.row_family, dtype=object)[d.rows]
    mask = np.isin(families, names)
    return mask if mask.any() else None


def _iterate(d: Decomposition, options: LShapedOptions, comm: Any,
             called: float, risk: RiskConfig | None = None,
             start_x: np.ndarray | None = None) -> dict[str, Any]:
    """The iterations. Every rank solves its scenarios; rank 0 keeps the master (with the
    CVaR column and cuts when ``risk`` is given, an active measure). ``start_x``, a plan to
    value first (the first plan, or phase 2's first with integer first stages), replaces the
    mean-value start; its value (minimisation form) is ``start_value`` in the result.

    With integer first-stage columns, the iterations of phase 1 (the level method on the
    master's LP relaxation) end at :attr:`LShapedOptions.relaxation_gap`, or after half the
    time limit; phase 2 (the master MIP) follows with every cut. ``history`` times count from
    ``called`` (when :func:`solve_lshaped` was called); the time limit counts from the start
    of the iterations.
    """
    rank = 0 if comm is None else comm.Get_rank()
    S = len(d.names)
    mine = share(range(S), comm)
    owned = set(mine)
    recourse = _Recourse(d)
    integer = bool(d.integer.any())
    C = options.clusters_for(S, integer)
    cluster = np.minimum(np.arange(S) * C // S, C - 1)  # consecutive blocks of scenarios
    phase = "relaxation" if integer else "lp"
    relaxed = options
    if integer:
        relaxed = options.replace(
            rel_gap=options.relaxation_gap,
            time_limit=None if options.time_limit is None else options.time_limit / 2)
    mip = _MipState(master_gap=MASTER_GAP_SHARE * options.rel_gap)
    # phase 1 on the family's own cuts (Kelley's method, see _kelley_step): the master LP's
    # value at the plan the last one proposed
    kelley = integer and d.cuts is not None and bool(getattr(d.cuts, "relaxation", False))
    model = -math.inf
    relaxation: dict[str, Any] = {}
    master = None
    if rank == 0:
        floor_s = d.recourse_floor()
        floor = np.array([float(d.p[cluster == c] @ floor_s[cluster == c]) for c in range(C)])
        if risk is not None:
            floor = np.append(floor, _cvar_floor(d, floor_s, risk.alpha))
        master = _Master(d, C, floor, risk)
        # a cluster whose recourse cost is bounded below by its column bounds takes part
        # from the start: the bound is valid before any cut, even at infeasible plans
        master.activate(np.flatnonzero(np.isfinite(floor)))
    history: list[tuple[float, int, float, float]] = []
    lb, ub = -math.inf, math.inf
    best_x: np.ndarray | None = None
    best_y_local = np.zeros((len(mine), d.W.shape[1]))
    best_losses: np.ndarray | None = None
    feasibility_cuts = 0
    stop_reason = "iteration_limit"
    infeasible_master = False
    t_recourse = t_master = 0.0
    start = time.perf_counter()

    TT = d.T[:, d.link].T.tocsr()  # (linking columns) x (recourse rows)
    x = None
    core: np.ndarray | None = None  # phase 2's core point (every rank keeps the same)
    if rank == 0:
        x = start_x.copy() if start_x is not None and not integer else _start_plan(d)
    x = _bcast(x, comm)
    iteration = 0
    relaxation_x: np.ndarray | None = None
    integer_plan = False  # x is a phase-2 plan: with integer recourse, value it exactly
    own_cuts = False  # phase 2: x was valued before; now its own cuts join the master
    # the iteration whose plan is start_x (its value is the incumbent's after that step)
    start_at = 1 if start_x is not None and not integer else None
    start_value: float | None = None
    while True:
        iteration += 1
        # every rank: its scenarios at x
        t0 = time.perf_counter()
        Tx = d.T @ x
        values = np.empty(len(mine))
        grads = np.zeros((len(mine), d.link.size))
        infeasible: list[tuple[int, float, np.ndarray]] = []
        ys = np.zeros((len(mine), d.W.shape[1]))
        exact = integer_plan and d.integer_recourse
        int_values = np.full(len(mine), math.inf) if exact else None
        int_bounds = np.full(len(mine), math.inf) if exact else None
        # phase 2 with the family's own cuts (phase 1 too when they serve the relaxation):
        # each cut's value at x, apart from Q_s(x)
        family = d.cuts is not None and (integer_plan or kelley)
        at = np.full(len(mine), math.inf) if family else None
        interior_due = integer_plan and CORE_STEP > 0 and core is not None and not own_cuts
        # the family's cuts at the plan itself wait for the interior point's (below): they
        # are needed only where that point has no recourse (the dearest part of a pass)
        lazy = family and interior_due and risk is None
        duals: dict[int, np.ndarray] = {}
        for i, s in enumerate(mine):
            status, value, pi, y = recourse.solve(s, Tx)
            if status == "optimal":
                values[i] = value
                if lazy:
                    duals[i] = pi
                elif at is not None:
                    at[i], grads[i] = d.family_cut(s, pi, x)
                else:
                    grads[i] = -(TT @ pi)
                ys[i] = y
                if int_values is not None and int_bounds is not None:
                    left = None if options.time_limit is None else max(
                        RECOURSE_MIN_SECONDS,
                        options.time_limit - (time.perf_counter() - start))
                    int_values[i], int_bounds[i], iy = recourse.solve_integer(s, Tx, left)
                    if iy is not None:
                        ys[i] = iy
            else:
                values[i] = math.inf
        # phase 2: the cuts at the interior point; the core point moves toward the plan
        interior = None
        if interior_due:
            assert core is not None
            interior = _interior(recourse, d, mine, x, x + CORE_STEP * (core - x), TT, family)
            for i, pi in duals.items():
                if not math.isfinite(interior[0][i]):
                    assert at is not None
                    at[i], grads[i] = d.family_cut(mine[i], pi, x)
        if integer_plan and CORE_STEP > 0 and not own_cuts:
            core = x.copy() if core is None else 0.5 * (core + x)
        # phase-1 problems of a few scenarios without recourse, spread over them and the same
        # whatever the ranks: each one's duals give a cut valid (and tightened) for all
        lacking = _allgather(comm, [s for i, s in enumerate(mine) if not math.isfinite(values[i])])
        for s in _spread(sorted(lacking), PHASE1_PER_ITERATION):
            if s in owned:
                infeasible.append((s, *recourse.phase1(s, Tx)))
        t_recourse += time.perf_counter() - t0
        parts = _gather(comm, (mine, values, at, grads, infeasible, interior)
                        + ((int_values, int_bounds) if exact else ()))

        t0 = time.perf_counter()
        decision = None
        failure: Exception | None = None
        if rank == 0:
            try:
                assert master is not None
                elapsed = time.perf_counter() - start
                if phase == "mip":
                    decision = _mip_step(d, master, options, x, parts, cluster, C, lb, ub, best_x,
                                         iteration, elapsed, mip)
                elif kelley:
                    decision = _kelley_step(d, master, relaxed, x, parts, cluster, C, lb, model,
                                            iteration, elapsed)
                    model = decision["model"]
                else:
                    decision = _master_step(d, master, relaxed, x, parts, cluster, C, lb, ub,
                                            best_x, iteration, elapsed)
                lb, ub, best_x = decision["lb"], decision["ub"], decision["best_x"]
                feasibility_cuts += decision["feasibility_cuts"]
                if phase == "relaxation" and decision["stop"] != "infeasible" and (
                        decision["stop"] is not None or iteration >= options.max_iterations
                        or (d.cuts is not None and not kelley
                            and iteration >= FAMILY_CUTS_RELAXATION)):
                    # phase 2: the master becomes a MIP; the relaxation's plans are no plans
                    relaxation = {"iterations": iteration, "bound": lb, "value": ub,
                                  "stop_reason": decision["stop"] or "iteration_limit"}
                    log.info("L-shaped relaxation done after %d iterations: bound %.6g, value "
                             "%.6g; the master becomes a MIP", iteration, lb, ub)
                    phase = "mip"
                    relaxation_x = best_x
                    ub, best_x = math.inf, None
                    blocks = master.make_integer(
                        np.array_split(np.arange(S), min(S, JENSEN_BLOCKS))
                        if JENSEN_BLOCKS and d.cuts is None else (), cluster)
                    relaxation["jensen_blocks"] = blocks
                    if start_x is not None:  # value the start plan before the first master MIP
                        decision = {"lb": lb, "ub": ub, "best_x": None, "improved": False,
                                    "feasibility_cuts": 0, "n_infeasible": decision["n_infeasible"],
                                    "next_x": start_x.copy(), "stop": None}
                        start_at = iteration + 1
                    else:
                        decision = _mip_step(d, master, options, None, None, cluster, C, lb, ub,
                                             None, iteration, time.perf_counter() - start, mip)
                    lb = decision["lb"]
                if iteration == start_at:
                    start_value = decision["ub"]
                decision["integer_plan"] = phase == "mip"
                if relaxation_x is not None:  # the first core point
                    decision["core"], relaxation_x = relaxation_x, None
                history.append((time.perf_counter() - called, iteration, lb,
                                math.inf if phase == "relaxation" else ub))
                log.info("L-shaped iteration %d (%s): bound %.6g, best %.6g, %d infeasible "
                         "scenarios", iteration, phase, lb, ub, decision["n_infeasible"])
            except Exception as err:  # the other ranks wait for the decision: tell them
                failure = err
        t_master += time.perf_counter() - t0
        decision = together(failure, decision and {k: decision.get(k) for k in (
            "next_x", "improved", "stop", "integer_plan", "core", "own_cuts")}, comm)
        integer_plan = decision["integer_plan"]
        own_cuts = bool(decision["own_cuts"])
        if decision["core"] is not None:
            core = decision["core"]
        if decision["improved"]:
            best_y_local = ys
            if master is not None and master.losses is not None:
                best_losses = master.losses.copy()
        if decision["stop"] is not None:
            stop_reason = decision["stop"]
            infeasible_master = stop_reason == "infeasible"
            break
        x = decision["next_x"]

    out = {"x": best_x, "lb": lb, "ub": ub, "iterations": iteration, "stop_reason": stop_reason,
           "history": history, "clusters": C, "cuts": master.n_cuts if master else 0,
           "feasibility_cuts": feasibility_cuts, "infeasible_master": infeasible_master,
           "best_y": (mine, best_y_local), "best_losses": best_losses,
           "start_value": start_value,
           "timings": {"recourse": t_recourse, "master": t_master}}
    if integer and rank == 0:
        out["relaxation"] = relaxation
        out["master_mip"] = {"solves": mip.master_solves, "seconds": mip.master_seconds,
                             "rel_gap": mip.master_gap, "plans_proposed_again": mip.again,
                             "extra_plans": mip.extra, "closed_by_bound": mip.closed,
                             "family_cuts": d.cuts is not None}
    return out


def _add_cuts(d: Decomposition, master: _Master, x: np.ndarray, parts: list[Any],
              cluster: np.ndarray, C: int) -> tuple[float, int, int]:
    """Rank 0: add the optimality and feasibility cuts of the plan ``x`` to the master.

    Returns the objective of ``x`` (its expected cost, or with a risk measure its mean-CVaR
    value; inf when some scenario has no recourse at it), the number of feasibility cuts added
    and the number of scenarios without recourse.

    With integer recourse valued at an integer plan (each part then also holds its scenarios'
    integer recourse values and bounds, :meth:`_Recourse.solve_integer`), the cuts of the
    recourse's LP relaxation stay (valid: they bound the relaxation, which bounds the integer
    recourse from below), the objective is the integer recourse's, and
    :func:`_integer_cuts` adds the integer L-shaped cuts.
    """
    S, width = len(d.names), d.n_first + master.n_theta
    values = np.empty(S)
    at: np.ndarray | None = None  # the family's cuts' values at x (None: the Benders cuts')
    grads = np.zeros((S, d.link.size))
    int_values = int_bounds = None
    infeasible: dict[int, tuple[float, np.ndarray]] = {}
    inner_values: np.ndarray | None = None
    inner_grads = np.zeros((S, d.link.size))
    for mine, v, cut_v, g, inf, interior, *exact in parts:
        values[mine] = v
        if cut_v is not None:
            if at is None:
                at = np.full(S, math.inf)
            at[mine] = cut_v
        grads[mine] = g
        if interior is not None:
            if inner_values is None:
                inner_values = np.full(S, math.inf)
            inner_values[mine], inner_grads[mine] = interior
        for s, viol, pi in inf:
            infeasible[s] = (viol, pi)
        if exact:
            if int_values is None or int_bounds is None:
                int_values, int_bounds = np.full(S, math.inf), np.full(S, math.inf)
            int_values[mine], int_bounds[mine] = exact

    # optimality cuts: one per cluster whose scenarios all have recourse at x; taken at the
    # interior point where all of them have recourse there too, the plan's own held back
    feasible = np.isfinite(values)
    cut_values = values if at is None else at
    # the family's cuts at x itself are taken only where the interior point has no recourse
    # (see _iterate); elsewhere a scenario's interior cut stands in for it
    skipped = feasible & ~np.isfinite(cut_values)
    if skipped.any():
        assert inner_values is not None
        cut_values = np.where(skipped, inner_values, cut_values)
        grads = np.where(skipped[:, None], inner_grads, grads)
    clusters, lower, own = _cluster_cuts(d, x, cut_values, grads, feasible, cluster, C, width)
    master.activate(clusters)
    if inner_values is not None:
        inner = np.ones(C, bool)
        np.logical_and.at(inner, cluster, feasible & np.isfinite(inner_values))
        ic, il, ir = _cluster_cuts(d, x, inner_values, inner_grads, inner[cluster], cluster, C,
                                   width)
        master.add_cuts(il, ir, np.full(ic.size, np.inf))
        held = inner[clusters]
        if skipped.any():  # those clusters' own cuts are the interior ones: still owed
            master.owed.add(x.tobytes())
        else:
            master.held[x.tobytes()] = (lower[held], own[held],
                                        np.full(int(held.sum()), np.inf))
        clusters, lower, own = clusters[~held], lower[~held], own[~held]
    master.add_cuts(lower, own, np.full(clusters.size, np.inf))
    value = float(d.c @ x + d.p @ values) if feasible.all() else math.inf
    if master.risk is not None and feasible.all():
        value = _add_risk_cut(d, master, x, values, grads, at)
    if int_values is not None and int_bounds is not None:
        value = (float(d.c @ x + d.p @ int_values) if np.isfinite(int_values).all()
                 else math.inf)
        if feasible.all():
            _integer_cuts(d, master, x, values, int_bounds, cluster, C)

    # feasibility cuts: each infeasible scenario's phase-1 duals pi bound every scenario's
    # violation below by const_s - (T'pi)'x, so (T'pi)'x >= max_s const_s; parallel cuts are
    # merged, keeping the tightest
    n_feas = 0
    if infeasible:
        rows: dict[tuple[float, ...], tuple[np.ndarray, float]] = {}
        TT = d.T[:, d.link].T.tocsr()
        duals: dict[tuple[float, ...], np.ndarray] = {}
        for s in sorted(infeasible):  # scenarios often share their phase-1 duals
            pi = infeasible[s][1]
            duals.setdefault(tuple(np.round(pi, 9)), pi)
        for pi in duals.values():
            g = TT @ pi
            rhs = float(np.max(d.dual_constants(pi)))
            norm = float(np.linalg.norm(g))
            if norm == 0.0:  # infeasible whatever the first stage: 0 >= rhs > 0
                rows[()] = (g, rhs)
                continue
            g, rhs = g / norm, rhs / norm
            key = tuple(np.round(g, 9))
            if key not in rows or rhs > rows[key][1]:
                rows[key] = (g, rhs)
        dense = np.zeros((len(rows), width))
        dense[:, d.link] = np.array([r[0] for r in rows.values()])
        master.add_cuts(np.array([r[1] for r in rows.values()]), sp.csr_matrix(dense),
                        np.full(len(rows), np.inf))
        n_feas = len(rows)
    return value, n_feas, int((~feasible).sum())


def _cluster_cuts(d: Decomposition, x: np.ndarray, values: np.ndarray, grads: np.ndarray,
                  usable: np.ndarray, cluster: np.ndarray, C: int, width: int
                  ) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """(clusters, lower bounds, rows) of the optimality cuts ``theta_c >= sum_s p_s (values_s
    + grads_s'(x' - x))`` of the clusters whose scenarios are all ``usable``: each scenario's
    cut has value ``values_s`` at the plan ``x`` and slope ``grads_s`` on the linking
    columns."""
    ok = np.ones(C, bool)
    np.logical_and.at(ok, cluster, usable)
    clusters = np.flatnonzero(ok)
    pv = np.where(usable, d.p * values, 0.0)
    G = _sum_rows(d.p[:, None] * np.where(usable[:, None], grads, 0.0), cluster, C)
    alpha = np.bincount(cluster, weights=pv, minlength=C) - G @ x[d.link]
    dense = np.zeros((clusters.size, width))
    dense[:, d.link] = -G[clusters]
    dense[np.arange(clusters.size), d.n_first + clusters] = 1.0
    return clusters, alpha[clusters], sp.csr_matrix(dense)


def _interior(recourse: _Recourse, d: Decomposition, mine: Sequence[int], x: np.ndarray,
              point: np.ndarray, TT: sp.csr_matrix,
              family: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """This rank's scenarios' optimality cuts taken at ``point`` instead of the plan ``x``:
    each cut's value at ``x`` and its slope on the linking columns (value +inf where the
    scenario has no recourse at ``point``). Each recourse function is convex, so a cut taken
    anywhere bounds it everywhere; with ``family``, the family's own cuts from the duals at
    ``point`` (valid at every integer plan)."""
    Tp = d.T @ point
    values = np.full(len(mine), math.inf)
    grads = np.zeros((len(mine), d.link.size))
    for i, s in enumerate(mine):
        status, value, pi, _y = recourse.solve(s, Tp)
        if status == "optimal" and family:
            values[i], grads[i] = d.family_cut(s, pi, x)
        elif status == "optimal":
            grads[i] = -(TT @ pi)
            values[i] = value + grads[i] @ (x[d.link] - point[d.link])
    return values, grads


def _integer_cuts(d: Decomposition, master: _Master, x: np.ndarray, relaxed: np.ndarray,
                  bounds: np.ndarray, cluster: np.ndarray, C: int) -> int:
    """Rank 0, integer recourse at the binary plan ``x``: Laporte and Louveaux's integer
    L-shaped cuts; returns how many were added.

    With ``delta(x) = sum over x_k's ones of (1 - x_i) + sum over its zeros of x_i`` (0 at
    ``x_k``, at least 1 at any other binary plan), each cluster ``c`` whose integer recourse
    (its scenarios' proven bounds, ``bounds``, times their probabilities: ``B``) lies above
    its relaxation's value at ``x_k`` (``relaxed``) gets ``theta_c >= B - (B - L_c)
    delta(x)``, ``L_c`` a lower bound of the cluster's recourse anywhere (its floor): exact at
    ``x_k``, no constraint elsewhere (a bound of -inf, a recourse MIP stopped by the time
    limit before it had one, gives its cluster no cut). A plan at which some scenario has
    relaxed but no integer recourse (a bound of +inf) is cut off (``delta(x) >= 1``). Only
    for first stages that are all binary; with others the method can stall on a plan already
    valued (it then stops, "stalled").
    """
    if not d.binary_first_stage:
        return 0
    n1, width = d.n_first, d.n_first + master.n_theta
    ones = x > 0.5
    sign = np.where(ones, -1.0, 1.0)  # delta(x) = ones.sum() + sign'x
    rows, lower = [], []
    if np.isposinf(bounds).any():
        rows.append(np.concatenate([sign, np.zeros(master.n_theta)]))
        lower.append(1.0 - float(ones.sum()))
    else:
        B = np.bincount(cluster, weights=d.p * bounds, minlength=C)
        R = np.bincount(cluster, weights=d.p * relaxed, minlength=C)
        L = master.floor[:C]
        tol = 1e-9 * np.maximum(1.0, np.abs(B))
        for c in np.flatnonzero((B > R + tol) & np.isfinite(L)):
            span = float(B[c] - L[c])
            row = np.zeros(width)
            row[:n1] = span * sign
            row[n1 + c] = 1.0
            rows.append(row)
            lower.append(float(B[c]) - span * float(ones.sum()))
    if rows:
        master.add_cuts(np.array(lower), sp.csr_matrix(np.array(rows)),
                        np.full(len(rows), np.inf))
    return len(rows)


def _add_risk_cut(d: Decomposition, master: _Master, x: np.ndarray, values: np.ndarray,
                  grads: np.ndarray, at: np.ndarray | None = None) -> float:
    """Rank 0, with a risk measure: add the CVaR cut of the plan ``x`` (every scenario has
    recourse at it) and return its mean-CVaR value ``rho(x)`` (minimisation form).

    The recourse loss of scenario ``s`` is ``Q_s(x) + (c_s - c)'x`` (the second term only when
    first-stage costs differ between scenarios), so the total loss is ``c'x`` plus it and
    ``CVaR(c'x + loss) = c'x + CVaR(loss)``. With the tail weights ``w`` of :func:`tail_weights`,
    ``CVaR = w'loss`` at ``x`` and, for any plan, ``CVaR >= w'loss(.)`` (``w`` is one feasible
    point of CVaR's dual), so ``theta_R >= w'(loss(x) + g (x' - x))`` with each scenario's
    subgradient ``g_s`` is valid. Ties between scenarios are broken by scenario order, so the
    cut does not depend on the ranks. ``at``: the family's cuts' values at ``x`` (with
    ``grads`` their slopes), which the cuts then take in place of ``values``.
    """
    risk = master.risk
    assert risk is not None
    n1 = d.n_first
    loss = values
    if d.first_cost is not None:
        loss = values + (d.first_cost - d.c) @ x
    w = tail_weights(loss, d.p, risk.alpha)
    cvar = float(w @ loss)
    cut_loss = loss if at is None else loss + (at - values)
    slope = np.zeros(n1)
    slope[d.link] = w @ grads
    if d.first_cost is not None:
        slope += w @ (d.first_cost - d.c)
    row = np.zeros((1, n1 + master.n_theta))
    row[0, :n1] = -slope
    row[0, -1] = 1.0
    theta = np.array([master.n_theta - 1])
    master.activate(theta)
    master.add_cuts(np.array([float(w @ cut_loss) - slope @ x]), sp.csr_matrix(row),
                    np.full(1, np.inf))
    if TAIL_CUTS:
        # the tail scenarios' own cuts (Rockafellar-Uryasev model, see _Master.add_tail_cuts)
        tail = np.flatnonzero(w > 0)
        slopes = np.zeros((tail.size, n1))
        slopes[:, d.link] = grads[tail]
        if d.first_cost is not None:
            slopes += d.first_cost[tail] - d.c
        a = d.p[tail] / (1.0 - risk.alpha)
        master.add_tail_cuts(tail, a * (cut_loss[tail] - slopes @ x), slopes, a)
    first = float(d.c @ x)
    master.losses = first + loss
    return first + (1.0 - risk.weight) * float(d.p @ loss) + risk.weight * cvar


def tail_weights(loss: np.ndarray, p: np.ndarray, alpha: float) -> np.ndarray:
    """The weights of CVaR's worst tail: ``CVaR_alpha(loss) = w'loss``.

    The largest losses get their probability until the tail holds ``1 - alpha`` (the value at
    risk's scenario the part that completes it), everything divided by ``1 - alpha``: so
    ``w >= 0``, ``sum w = 1`` and ``w <= p / (1 - alpha)``. Equal losses are taken in scenario
    order.

    Examples
    --------
    >>> w = tail_weights(np.array([3.0, 1.0, 2.0, 5.0]), np.full(4, 0.25), 0.6)
    >>> np.round(w, 12).tolist()  # 5 with its 0.25, then 0.15 of the 3, over 0.4
    [0.375, 0.0, 0.0, 0.625]
    """
    order = np.argsort(-np.asarray(loss, float), kind="stable")
    take = np.asarray(p, float)[order]
    before = np.cumsum(take) - take
    share = np.clip(np.minimum(take, (1.0 - alpha) - before), 0.0, None)
    w = np.zeros(take.size)
    w[order] = share / (1.0 - alpha)
    return w


def _master_step(d: Decomposition, master: _Master, options: LShapedOptions, x: np.ndarray,
                 parts: list[Any], cluster: np.ndarray, C: int, lb: float, ub: float,
                 best_x: np.ndarray | None, iteration: int, elapsed: float) -> dict[str, Any]:
    """Rank 0: add the cuts of the plan ``x``, update the bounds, choose the next plan by the
    level projection (over the master LP)."""
    value, n_feas, n_infeasible = _add_cuts(d, master, x, parts, cluster, C)
    improved = False
    if value < ub:
        ub, best_x, improved = value, x.copy(), True

    infeasible, value_lp, x_lp, lb = _master_lp(master, lb)
    out: dict[str, Any] = {
        "lb": lb, "ub": ub, "best_x": best_x, "improved": improved, "feasibility_cuts": n_feas,
        "n_infeasible": n_infeasible, "next_x": None, "stop": None}
    if infeasible:
        out["stop"] = "infeasible"
        return out
    gap = relative_gap(ub, lb)
    if gap is not None and (gap <= options.rel_gap or ub - lb <= 1e-9 * max(1.0, abs(ub))):
        out["stop"] = "gap"
        return out
    if iteration >= options.max_iterations:
        out["stop"] = "iteration_limit"
        return out
    if options.time_limit is not None and elapsed >= options.time_limit:
        out["stop"] = "time_limit"
        return out
    nxt = None
    if best_x is not None and math.isfinite(lb):
        nxt = master.project(best_x, lb + options.level * (ub - lb))
    out["next_x"] = x_lp if nxt is None else nxt
    return out


def _master_lp(master: _Master, lb: float) -> tuple[bool, float, np.ndarray | None, float]:
    """Rank 0: solve the master LP. Returns whether it is infeasible, its value and solution,
    and the lower bound ``lb`` raised to that value once every theta takes part."""
    status, value, x = master.solve_lp()
    if status == "infeasible":
        return True, value, x, lb
    if status != "optimal":
        raise SolveError(f"the L-shaped master problem ended {status}", status)
    return False, value, x, max(lb, value) if master.active.all() else lb


@dataclass
class _MipState:
    """Rank 0's bookkeeping in phase 2: the plans evaluated so far (their bytes) and the
    relative gap the master MIP is solved to (cut to 0 when the master proposes a plan
    already evaluated)."""

    master_gap: float
    evaluated: set[bytes] = dataclasses.field(default_factory=set)
    master_solves: int = 0
    master_seconds: float = 0.0
    again: int = 0  # plans the master proposed again, whose own cuts then joined it
    #: plans the last master MIP found besides its own, best first, still to be valued
    queue: list[np.ndarray] = dataclasses.field(default_factory=list)
    extra: int = 0  # such plans valued
    closed: int = 0  # master MIPs stopped when their bound closed the gap

    def keep_found(self, found: Sequence[np.ndarray], plan: np.ndarray) -> None:
        """Queue up to :data:`EXTRA_PLANS` of the master's plans ``found`` (in the order HiGHS
        found them, so the best last) other than ``plan`` and those valued already."""
        seen = {plan.tobytes()} | self.evaluated
        self.queue = []
        for x in reversed(found):
            if len(self.queue) >= EXTRA_PLANS:
                break
            if x.tobytes() not in seen:
                seen.add(x.tobytes())
                self.queue.append(x)


def _mip_step(d: Decomposition, master: _Master, options: LShapedOptions, x: np.ndarray | None,
              parts: list[Any] | None, cluster: np.ndarray, C: int, lb: float, ub: float,
              best_x: np.ndarray | None, iteration: int, elapsed: float,
              state: _MipState) -> dict[str, Any]:
    """Rank 0, phase 2: add the cuts of the integer plan ``x`` (None: none yet), update the
    best plan, solve the master MIP for its bound and the next plan."""
    out: dict[str, Any] = {"lb": lb, "ub": ub, "best_x": best_x, "improved": False,
                           "feasibility_cuts": 0, "n_infeasible": 0, "next_x": None,
                           "stop": None}
    if x is not None and parts is not None:
        value, out["feasibility_cuts"], out["n_infeasible"] = _add_cuts(
            d, master, x, parts, cluster, C)
        state.evaluated.add(x.tobytes())
        if value < ub:
            out["ub"] = ub = value
            out["best_x"] = best_x = x.copy()
            out["improved"] = True
        if _closed(ub, lb, options.rel_gap):  # the bound of the last master MIP still holds
            out["stop"] = "gap"
            return out
        if iteration >= options.max_iterations:
            out["stop"] = "iteration_limit"
            return out
        if options.time_limit is not None and elapsed >= options.time_limit:
            out["stop"] = "time_limit"
            return out
    if state.queue:  # value the other plans of the last master MIP first (they bring cuts)
        state.extra += 1
        out["next_x"] = state.queue.pop(0)
        return out
    target = MASTER_GAP_SHARE * options.rel_gap
    state.master_gap = target
    step_start = time.perf_counter()
    while True:
        remaining = None if options.time_limit is None else max(
            1.0, options.time_limit - elapsed - (time.perf_counter() - step_start))
        t0 = time.perf_counter()
        stop_at = (ub - options.rel_gap * max(1.0, abs(ub))
                   if math.isfinite(ub) and master.active.all() else math.inf)
        status, bound, _value, nxt = master.solve_mip(state.master_gap, remaining, best_x,
                                                      stop_at)
        state.master_seconds += time.perf_counter() - t0
        state.master_solves += 1
        if status == "infeasible":
            out["stop"] = "infeasible"
            return out
        if status not in ("optimal", "time_limit", "closed"):
            raise SolveError(f"the L-shaped master problem (a MIP) ended {status}", status)
        if master.active.all() and math.isfinite(bound):
            out["lb"] = lb = max(lb, bound)
        state.closed += status == "closed"
        if status == "closed" or _closed(ub, lb, options.rel_gap):
            out["stop"] = "gap"
            return out
        if status == "time_limit" or nxt is None:
            out["stop"] = "time_limit"
            return out
        if nxt.tobytes() not in state.evaluated:
            state.keep_found(master.found, nxt)
            out["next_x"] = nxt
            return out
        # the master's incumbent is a plan already evaluated: its own cuts, held back while
        # the master had its interior ones, join the master, and the master is solved again
        held = master.held.pop(nxt.tobytes(), None)
        if held is not None:
            state.again += 1
            master.add_cuts(*held)
            continue
        if nxt.tobytes() in master.owed:  # its own cuts were never taken: take them now
            master.owed.discard(nxt.tobytes())
            state.again += 1
            out["next_x"], out["own_cuts"] = nxt, True
            return out
        # ... and with them the cuts are tight there, so only the master's own gap is left;
        # close it
        if state.master_gap == 0.0:
            out["stop"] = "stalled"
            return out
        state.master_gap = 0.0 if state.master_gap <= target else target


def _kelley_step(d: Decomposition, master: _Master, options: LShapedOptions, x: np.ndarray,
                 parts: list[Any], cluster: np.ndarray, C: int, lb: float, model: float,
                 iteration: int, elapsed: float) -> dict[str, Any]:
    """Rank 0, phase 1 with a family's cuts that serve the relaxation (Kelley's cutting
    planes): add the cuts taken at ``x``, the master LP's last solution (``model`` its value
    there), and solve the master LP again for the next one.

    Those cuts bound the master MIP, not the model's LP relaxation (they are tighter than the
    relaxation's recourse), so no value of a fractional plan bounds the master from above and
    the level method has nothing to aim at. The phase ends when the new cuts raise the
    master's value at ``x`` by at most the relaxation gap (stop ``"gap"``), or at the
    iteration or time limit.
    """
    _value, n_feas, n_infeasible = _add_cuts(d, master, x, parts, cluster, C)
    S = len(d.names)
    at = np.full(S, math.inf)
    for mine, _v, cut_v, *_rest in parts:
        if cut_v is not None:
            at[mine] = cut_v
    infeasible, value_lp, x_lp, lb = _master_lp(master, lb)
    out: dict[str, Any] = {
        "lb": lb, "ub": math.inf, "best_x": x_lp, "improved": False,
        "feasibility_cuts": n_feas, "n_infeasible": n_infeasible, "next_x": x_lp,
        "stop": None, "model": value_lp}
    if infeasible:
        out["stop"] = "infeasible"
        return out
    raised = float(d.c @ x + d.p @ at) - model
    if math.isfinite(model) and raised <= options.rel_gap * max(1.0, abs(model)):
        out["stop"] = "gap"
    elif iteration >= options.max_iterations:
        out["stop"] = "iteration_limit"
    elif options.time_limit is not None and elapsed >= options.time_limit:
        out["stop"] = "time_limit"
    return out


def _cvar_floor(d: Decomposition, floor: np.ndarray, alpha: float) -> float:
    """A lower bound on the CVaR of the recourse losses from the scenarios' floors ``floor``
    (Q_s >= floor_s): CVaR is monotone, so CVaR(floor) when every scenario has the same
    first-stage costs; else CVaR >= E[loss] = E[Q] >= E[floor]. -inf without finite floors."""
    if not np.all(np.isfinite(floor)):
        return -math.inf
    if d.first_cost is None:
        return float(tail_weights(floor, d.p, alpha) @ floor)
    return float(d.p @ floor)


def _closed(ub: float, lb: float, rel_gap: float) -> bool:
    gap = relative_gap(ub, lb)
    return gap is not None and (gap <= rel_gap or ub - lb <= 1e-9 * max(1.0, abs(ub)))


def _sum_rows(values: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    """Row sums of ``values`` per group, in row order (deterministic)."""
    out = np.zeros((n, values.shape[1]))
    np.add.at(out, groups, values)
    return out


def _start_plan(d: Decomposition) -> np.ndarray:
    """The mean-value plan: the scenario LP with every scenario's data averaged."""
    h = _highs()
    A = sp.vstack([sp.hstack([d.A1, sp.csr_matrix((d.A1.shape[0], d.W.shape[1]))]),
                   sp.hstack([d.T, d.W])], format="csc")

    def mean(a: np.ndarray, missing: float) -> np.ndarray:  # inf where any scenario has inf
        finite = np.isfinite(a)
        return np.where(finite.all(axis=0), d.p @ np.where(finite, a, 0.0), missing)

    y_lo, y_hi = mean(d.y_lo, -np.inf), mean(d.y_hi, np.inf)
    lo, hi = mean(d.lo, -np.inf), mean(d.hi, np.inf)
    _pass_lp(h, A, np.concatenate([d.c, d.p @ d.q]), np.concatenate([d.x_lo, y_lo]),
             np.concatenate([d.x_hi, y_hi]), np.concatenate([d.a_lo, lo]),
             np.concatenate([d.a_hi, hi]))
    h.run()
    if h.getModelStatus().name == "kOptimal":
        return np.asarray(h.getSolution().col_value)[: d.n_first]
    # the mean-value problem has no solution: start from the first-stage problem alone
    h = _highs()
    _pass_lp(h, d.A1.tocsc(), d.c, d.x_lo, d.x_hi, d.a_lo, d.a_hi)
    h.run()
    if h.getModelStatus().name != "kOptimal":
        raise InfeasibleError("the first-stage constraints alone have no solution",
                              ("first stage",))
    return np.asarray(h.getSolution().col_value)


# ----------------------------------------------------------------------------------------------
# MPI helpers (no-ops without a communicator)


def _bcast(x: np.ndarray | None, comm: Any) -> np.ndarray:
    if comm is None:
        assert x is not None
        return x
    return comm.bcast(x, root=0)


def _allgather(comm: Any, items: list[int]) -> list[int]:
    if comm is None:
        return list(items)
    return [k for part in comm.allgather(items) for k in part]


def _spread(items: list[int], k: int) -> list[int]:
    """At most ``k`` of ``items``, evenly spaced (first and last included)."""
    if len(items) <= k:
        return items
    return [items[round(i * (len(items) - 1) / (k - 1))] for i in range(k)]


def _gather(comm: Any, part: Any) -> list[Any]:
    if comm is None:
        return [part]
    parts = comm.gather(part, root=0)
    return parts if parts is not None else []


def _gather_rows(local: tuple[list[int], np.ndarray], n: int, comm: Any) -> np.ndarray:
    """Every rank's rows (scenario index, row) as one (n x k) array on rank 0."""
    parts = _gather(comm, local)
    if not parts:
        return np.zeros((0, 0))
    k = parts[0][1].shape[1]
    out = np.zeros((n, k))
    for idx, rows in parts:
        out[idx] = rows
    return out

