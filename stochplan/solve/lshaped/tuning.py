"""The L-shaped method's tuned constants, each with what was measured to choose it.

The method reads them as attributes of this module at run time, so an experiment can set
one (``tuning.EXTRA_PLANS = 0``) without a new option.
"""

#: Optimality cuts per iteration when :attr:`~.LShapedOptions.clusters` is None.
AUTO_CLUSTERS = 200
#: Optimality cuts per iteration with an integer first stage and more than
#: :data:`PER_SCENARIO_CUTS_INTEGER` scenarios, when :attr:`~.LShapedOptions.clusters` is None.
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
#: Rockafellar-Uryasev model of the CVaR column, see ``master._Master.add_tail_cuts``).
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
#: Phase-1 iterations when the family has its own cuts (:attr:`~.Decomposition.cuts`).
FAMILY_CUTS_RELAXATION = 1
#: Integer first stages with pattern cuts (and no risk measure): phase 2's master MIP keeps
#: one theta per scenario and is solved by branch and bound over the blocks' patterns
#: (:mod:`~stochplan.solve.lshaped.scenario_master`) instead of HiGHS over clusters. Lot
#: sizing (furniture) ``poisson:1000``, one rank, gap target 0.1 %: reached in 257 s with it;
#: without, 0.60 % after 600 s and 0.22 % after 30 minutes.
SCENARIO_MASTER = True
