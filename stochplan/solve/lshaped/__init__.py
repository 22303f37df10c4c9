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
worst scenario at once, and only :data:`~.PHASE1_PER_ITERATION` phase-1 problems (spread over
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
quarter of the target gap (:data:`~.MASTER_GAP_SHARE`), and to optimality when it proposes a
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
the point :data:`~.CORE_STEP` of the way from the plan toward a core point (in-out
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
:data:`~.EXTRA_PLANS` of them, best first, are valued before the master is solved again; their
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
point too), phase 1 stops after :data:`~.FAMILY_CUTS_RELAXATION` iteration (enough to give every
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
branching off (:data:`~.MASTER_MIN_RELIABLE`) and its early stop, one rank at 1,000 scenarios
reaches 1.04 % after 600 s (plan 14,630.26, bound 14,782.05), against 0.99 % after 900 s
before (side by side, ``solve_lshaped`` on ``poisson:1000``, seed 0, gap target 0.1 %).

What held the bound there was the clusters: a cluster's cut adds its scenarios' cuts taken at
one plan, where each scenario alone could take its best cut of any plan. With pattern cuts
and the expectation, phase 2's master therefore keeps one theta per scenario, and a branch
and bound over the blocks' patterns solves it in place of HiGHS over clusters
(:mod:`~stochplan.solve.lshaped.scenario_master`, :data:`~.SCENARIO_MASTER`). Lot sizing at
1,000 scenarios, one rank: 0.1 % in 257 s (5 master solves in 110 s, the plan 14,639.15,
the bound 14,653.79), where the 50-cluster master MIP stood at 0.60 % after 600 s and 0.22 %
after 30 minutes.

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
  ``p_s (Q_s - eta)+ / (1 - alpha)`` for CVaR's minimising ``eta`` (:data:`~.TAIL_CUTS`,
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

Where each part lives
---------------------
- :mod:`~stochplan.solve.lshaped.method`: :func:`solve_lshaped`, its two phases and the MPI
  exchanges;
- :mod:`~stochplan.solve.lshaped.steps`: one iteration of each kind (the level step, Kelley's
  step, the master-MIP step);
- :mod:`~stochplan.solve.lshaped.master`: the master problem (rank 0);
- :mod:`~stochplan.solve.lshaped.cuts`: the cuts a valued plan gives the master;
- :mod:`~stochplan.solve.lshaped.recourse`: each scenario's recourse problem;
- :mod:`~stochplan.solve.lshaped.decomposition`: the two-stage split of a compiled problem;
- :mod:`~stochplan.solve.lshaped.options` and :mod:`~stochplan.solve.lshaped.tuning`: the
  options a run sets, and the tuned constants with what was measured to choose them.
"""


from stochplan.solve.lshaped.cuts import tail_weights
from stochplan.solve.lshaped.decomposition import Decomposition
from stochplan.solve.lshaped.master import jensen_blocks
from stochplan.solve.lshaped.method import solve_lshaped
from stochplan.solve.lshaped.options import LShapedOptions

__all__ = ["Decomposition", "LShapedOptions", "jensen_blocks", "solve_lshaped", "tail_weights"]
