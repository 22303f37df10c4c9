"""The L-shaped method's driver: :func:`solve_lshaped` and its iterations, under MPI or
not (the description is the package's, :mod:`stochplan.solve.lshaped`)."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from stochplan.errors import InfeasibleError, InputError, SolveError
from stochplan.parallel import on_root, share, together
from stochplan.solve.lshaped import tuning
from stochplan.solve.lshaped.cuts import _cvar_floor, _interior
from stochplan.solve.lshaped.decomposition import Decomposition
from stochplan.solve.lshaped.master import _Master
from stochplan.solve.lshaped.options import LShapedOptions
from stochplan.solve.lshaped.recourse import _highs, _pass_lp, _Recourse
from stochplan.solve.lshaped.steps import _kelley_step, _master_step, _mip_step, _MipState
from stochplan.solve.results import SOLVED, SolveResult, decomposition_status
from stochplan.solve.solvers import relative_gap

if TYPE_CHECKING:
    import pandas as pd

    from stochplan.solve.risk import RiskConfig

log = logging.getLogger(__name__)


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
    mip = _MipState(master_gap=tuning.MASTER_GAP_SHARE * options.rel_gap)
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
        interior_due = integer_plan and tuning.CORE_STEP > 0 and core is not None and not own_cuts
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
                        tuning.RECOURSE_MIN_SECONDS,
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
            point = x + tuning.CORE_STEP * (core - x)
            interior = _interior(recourse, d, mine, x, point, TT, family)
            for i, pi in duals.items():
                if not math.isfinite(interior[0][i]):
                    assert at is not None
                    at[i], grads[i] = d.family_cut(mine[i], pi, x)
        if integer_plan and tuning.CORE_STEP > 0 and not own_cuts:
            core = x.copy() if core is None else 0.5 * (core + x)
        # phase-1 problems of a few scenarios without recourse, spread over them and the same
        # whatever the ranks: each one's duals give a cut valid (and tightened) for all
        lacking = _allgather(comm, [s for i, s in enumerate(mine) if not math.isfinite(values[i])])
        for s in _spread(sorted(lacking), tuning.PHASE1_PER_ITERATION):
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
                            and iteration >= tuning.FAMILY_CUTS_RELAXATION)):
                    # phase 2: the master becomes a MIP; the relaxation's plans are no plans
                    relaxation = {"iterations": iteration, "bound": lb, "value": ub,
                                  "stop_reason": decision["stop"] or "iteration_limit"}
                    log.info("L-shaped relaxation done after %d iterations: bound %.6g, value "
                             "%.6g; the master becomes a MIP", iteration, lb, ub)
                    phase = "mip"
                    relaxation_x = best_x
                    ub, best_x = math.inf, None
                    blocks = master.make_integer(
                        np.array_split(np.arange(S), min(S, tuning.JENSEN_BLOCKS))
                        if tuning.JENSEN_BLOCKS and d.cuts is None else (), cluster)
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
                             "family_cuts": d.cuts is not None,
                             "scenario_master": master is not None
                             and master.scenarios is not None}
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
