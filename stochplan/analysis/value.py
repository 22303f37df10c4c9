"""The value report: RP, EV, EEV, WS, VSS and EVPI of any mpi-sppy-style module.

The module needs ``scenario_creator`` and ``average_scenario_creator`` (the mean-value
scenario, probability 1). Sign conventions are those of :mod:`stochplan.metrics.value`.

Under a risk measure (``risk``, :class:`~stochplan.solve.risk.RiskConfig` with CVaR) the same
quantities are computed under the measure rho = (1 - lambda) E + lambda CVaR_alpha instead of
the expectation, and labelled so: RP is the optimal rho; EV is unchanged (one scenario: its
rho is its value); EEV is rho of the mean-value plan's per-scenario values; WS is rho of the
wait-and-see values. VSS = EEV - RP and EVPI = RP - WS (mirrored for maximisation) stay
non-negative, because rho is monotone: every scenario's wait-and-see value is at least as
good as the optimal plan's, which is in turn optimal for rho.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pyomo.environ as pyo

from stochplan import _mpisppy
from stochplan.analysis.recourse import infinite_eev_note, remedy_of
from stochplan.errors import InputError, SolveError
from stochplan.metrics.stats import risk_value
from stochplan.metrics.value import evpi, vss
from stochplan.parallel import alike, from_root
from stochplan.solve.ef import solve_ef, var_table
from stochplan.solve.evaluate import evaluate_plan, wait_and_see
from stochplan.solve.results import SolveResult
from stochplan.solve.risk import RiskConfig, risk_module, risk_result
from stochplan.solve.solvers import SolverOptions, solve_model

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ValueReport:
    """RP, EV, EEV, WS and the values derived from them ($, in the model's objective sense).

    ``infeasible`` names the scenarios in which the mean-value plan has no feasible recourse
    (then EEV and VSS are infinite, ``infeasible_probability`` is their total probability and
    :attr:`note` says what that means and what to do; the other values stay finite and
    valid). ``integer_policy`` says how a fractional mean was handled
    in an integer model (``"round"`` or ``"relax"``), None when the module takes no policy.
    """

    rp: float
    ev: float
    eev: float
    ws: float
    vss: float
    evpi: float
    sense: str
    n_scenarios: int
    infeasible: tuple[str, ...]
    integer_policy: str | None
    rp_plan: pd.DataFrame
    ev_plan: pd.DataFrame
    by_scenario: pd.DataFrame
    timings: dict[str, float] = field(default_factory=dict)
    rp_result: SolveResult | None = None
    infeasible_probability: float = 0.0
    risk: dict[str, Any] | None = None
    #: The model's own remedy for missing recourse (``recourse.remedy_of``), for :attr:`note`.
    remedy: str = ""
    #: Per independent block (:func:`value_by_blocks`): ``block``, ``rp``, ``ev``, ``eev``,
    #: ``ws``, ``vss``, ``evpi``, one row per block; each column sums to the total. None when
    #: the instance was valued as one problem.
    by_block: pd.DataFrame | None = None

    @property
    def note(self) -> str:
        """Why EEV and VSS are infinite and what to do; empty when they are finite."""
        if not self.infeasible:
            return ""
        return infinite_eev_note(self.infeasible, self.infeasible_probability, self.sense,
                                 self.remedy)

    def to_dict(self) -> dict[str, Any]:
        """The numbers (JSON-ready apart from infinities), with :attr:`note`."""
        return {
            "rp": self.rp, "ev": self.ev, "eev": self.eev, "ws": self.ws,
            "vss": self.vss, "evpi": self.evpi, "sense": self.sense,
            "n_scenarios": self.n_scenarios, "infeasible_scenarios": list(self.infeasible),
            "infeasible_probability": self.infeasible_probability, "note": self.note,
            "integer_policy": self.integer_policy, "timings": dict(self.timings),
            "measure": self.measure,
            **({"by_block": self.by_block.to_dict(orient="records")}
               if self.by_block is not None else {}),
        }

    @property
    def measure(self) -> str:
        """What RP, EEV and WS measure: ``"expectation"`` or e.g. ``"0.5 E + 0.5 CVaR 95%"``."""
        return "expectation" if self.risk is None else str(self.risk["label"])

    def kpis(self) -> dict[str, float]:
        """The values under the names the results database uses."""
        return {"rp": self.rp, "ev": self.ev, "eev": self.eev, "ws": self.ws,
                "vss": self.vss, "evpi": self.evpi}


def objective_sense(model: pyo.ConcreteModel) -> str:
    """'min' or 'max': the sense of the model's active objective."""
    objectives = list(model.component_data_objects(pyo.Objective, active=True))
    if len(objectives) != 1:
        raise InputError("objective", len(objectives), "a scenario model needs exactly one")
    return "min" if objectives[0].sense == pyo.minimize else "max"


def solve_mean_value(
    module: ModuleType,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any],
    solver: SolverOptions,
    integer_policy: str = "round",
) -> tuple[float, pd.DataFrame, str, str | None]:
    """Solve the EV problem; returns (objective, first-stage plan, sense, policy used)."""
    creator = getattr(module, "average_scenario_creator", None)
    if creator is None:
        raise InputError("module", module.__name__,
                         "has no average_scenario_creator (needed for EV)")
    kwargs = dict(creator_kwargs)
    policy = None
    if "integer_policy" in inspect.signature(creator).parameters:
        kwargs["integer_policy"] = policy = integer_policy
    model = creator(str(scenario_names[0]), **kwargs)
    if policy is not None and not getattr(model, "integer_policy_applies", True):
        policy = None  # nothing to round or relax: the report need not say how it was done
    outcome = solve_model(model, solver)
    if not outcome.ok or outcome.objective is None:
        raise SolveError(f"the mean-value problem ended {outcome.status!r}", outcome.status)
    index_names = tuple(getattr(module, "INDEX_NAMES", ()))
    plan = var_table(_mpisppy.nonant_vars(model), index_names)
    return outcome.objective, plan, objective_sense(model), policy


def value_report(
    module: ModuleType,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any] | None = None,
    solver: SolverOptions | None = None,
    integer_policy: str = "round",
    rp: SolveResult | None = None,
    comm: Any | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    risk: RiskConfig | None = None,
) -> ValueReport:
    """Compute RP, EV, EEV, WS, VSS and EVPI (under ``risk``'s measure when it is active).

    Parameters
    ----------
    module : module
        Follows mpi-sppy's contract, with ``average_scenario_creator``.
    scenario_names : sequence of str
        The scenario set (its probabilities come from the module).
    creator_kwargs : dict, optional
        Keyword arguments of the module's creators.
    solver : SolverOptions, optional
    integer_policy : {"round", "relax"}
        For integer models whose mean data are fractional (passed to modules that take it).
    rp : SolveResult, optional
        An RP solve already made on the same scenarios (skips solving it again).
    comm : mpi4py communicator, optional
        Spreads the EEV and WS scenario solves over the ranks; RP and EV are solved on rank 0
        and broadcast. Every rank returns the same report.
    progress : callable, optional
        ``progress(phase, done, total)`` as scenarios are solved.
    risk : RiskConfig, optional
        A mean-CVaR measure: RP, EEV and WS are then that measure's values (see the module
        docstring); ``rp``, if given, must be a solve under the same measure.
    """
    solver = solver or SolverOptions()
    risk = risk if risk is not None and risk.active else None
    kwargs = dict(creator_kwargs or {})
    names = [str(n) for n in scenario_names]
    note = progress or (lambda phase, done, total: None)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    if rp is None:
        def solve_rp() -> SolveResult:
            if risk is None:
                return solve_ef(module, names, kwargs, solver)
            return risk_result(solve_ef(risk_module(module, risk), names, kwargs, solver),
                               module, names, kwargs, risk, solver)

        rp = from_root(solve_rp, comm)
    assert rp is not None
    if rp.objective is None or not rp.optimal:
        with alike(comm):  # every rank has the same answer: the error is said once
            raise SolveError(f"the recourse problem ended {rp.status!r}", rp.status)
    timings["rp"] = time.perf_counter() - start
    note("rp", 1, 1)

    start = time.perf_counter()
    ev = from_root(lambda: solve_mean_value(module, names, kwargs, solver, integer_policy),
                   comm)
    ev_value, ev_plan, sense, policy = ev
    timings["ev"] = time.perf_counter() - start
    note("ev", 1, 1)

    start = time.perf_counter()
    eev = evaluate_plan(module, ev_plan, names, kwargs, solver, comm=comm,
                        progress=lambda d, t: note("eev", d, t))
    timings["eev"] = time.perf_counter() - start

    start = time.perf_counter()
    ws = wait_and_see(module, names, kwargs, solver, comm=comm,
                      progress=lambda d, t: note("ws", d, t))
    timings["ws"] = time.perf_counter() - start

    if risk is None:
        eev_value = _expected(eev.objective, eev.probabilities, sense)
        ws_value = _expected(ws.objective, ws.probabilities, sense)
    else:
        eev_value = risk_value(eev.objective, eev.probabilities, risk.alpha, risk.weight,
                               sense).objective
        ws_value = risk_value(ws.objective, ws.probabilities, risk.alpha, risk.weight,
                              sense).objective
    by_scenario = pd.DataFrame({
        "scenario": names,
        "probability": ws.probabilities,
        "ws": ws.objective,
        "eev": eev.objective,
    })
    return ValueReport(
        rp=float(rp.objective),
        ev=ev_value,
        eev=eev_value,
        ws=ws_value,
        vss=vss(float(rp.objective), eev_value, sense),
        evpi=evpi(float(rp.objective), ws_value, sense),
        sense=sense,
        n_scenarios=len(names),
        infeasible=eev.infeasible,
        integer_policy=policy,
        rp_plan=rp.plan,
        ev_plan=ev_plan,
        by_scenario=by_scenario,
        timings=timings,
        rp_result=rp,
        infeasible_probability=_probability_of(eev.infeasible, names, eev.probabilities),
        risk=None if risk is None else {"label": risk.label(), "alpha": risk.alpha,
                                        "weight": risk.weight},
        remedy=remedy_of(module),
    )


def value_by_blocks(
    family: Any,
    inst: Any,
    spec: str,
    seed: int | None,
    multipliers: Sequence[float] = (1.0,),
    weights: Sequence[float] | None = None,
    solver: SolverOptions | None = None,
    integer_policy: str = "round",
    comm: Any | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> ValueReport:
    """RP, EV, EEV, WS, VSS and EVPI of an instance whose family splits it into independent
    blocks (:meth:`~stochplan.family.Family.blocks`), block by block, and their totals.

    The blocks share nothing, so every problem of the value report separates by block: the
    recourse problem, the mean-value problem (whose plan is the blocks' mean-value plans), the
    mean-value plan in each scenario and each scenario's wait-and-see problem. Each block's
    RP, EV, EEV and WS are its own problem's; the totals are their sums, and VSS and EVPI,
    being differences, are the sums of the blocks' VSS and EVPI (:attr:`ValueReport.by_block`).

    A block's scenario k must be its rows of the whole's scenario k (the family's ``named`` and
    ``sample:N`` sets); only the expectation (no risk measure, whose CVaR does not split).
    With :meth:`~stochplan.family.Family.scenario_arrays` the solves skip Pyomo: RP as
    :func:`stochplan.solve.blocks.solve_arrays`, EV the same on the one mean scenario (after
    :meth:`~stochplan.family.Family.mean_instance`), EEV and WS as
    :func:`stochplan.solve.matrix.solve_each`; otherwise each block goes through
    :func:`value_report`.

    Parameters
    ----------
    family : Family
    inst : record
        ``family.blocks(inst)`` must not be None.
    spec, seed, multipliers, weights
        The scenario set, as for :meth:`~stochplan.family.Family.scenario_set`.
    solver : SolverOptions, optional
    integer_policy : {"round", "relax"}
    comm : mpi4py communicator, optional
        Blocks shared round robin among the ranks; every rank returns the whole report.
    progress : callable, optional
        ``progress("blocks", done, total)`` as this rank's blocks are valued.

    Returns
    -------
    ValueReport
        With ``by_block`` and ``rp_result`` (the blocks' recourse problems together).
    """
    from stochplan.parallel import gather_all, share
    from stochplan.solve.blocks import BlockOutcome, combine

    solver = solver or SolverOptions()
    blocks = family.blocks(inst)
    if blocks is None:
        raise InputError("instance", inst.name, f"the {family.name} family does not split it "
                         "into blocks")
    note = progress or (lambda phase, done, total: None)
    mine = share(range(len(blocks)), comm)
    parts: dict[int, dict[str, Any]] = {}
    for done, i in enumerate(mine, start=1):
        label, record = blocks[i]
        start = time.perf_counter()
        parts[i] = _block_value(family, record, spec, seed, tuple(multipliers),
                                None if weights is None else tuple(weights), solver,
                                integer_policy)
        parts[i]["outcome"] = BlockOutcome(i, label, parts[i]["rp_result"], None,
                                           time.perf_counter() - start)
        note("blocks", done, len(mine))
    merged = gather_all(parts, comm)
    values = [merged[i] for i in range(len(blocks))]
    sense = values[0]["sense"]
    rp_result = combine(family, [v["outcome"] for v in values],
                        float(sum(v["outcome"].seconds for v in values)),
                        "serial" if comm is None else "mpi",
                        1 if comm is None else comm.Get_size(), False)
    names = list(rp_result.scenario_names)
    probabilities = np.asarray(rp_result.probabilities, dtype=float)
    eev_by_scenario = np.sum([v["eev_by_scenario"] for v in values], axis=0)
    ws_by_scenario = np.sum([v["ws_by_scenario"] for v in values], axis=0)
    by_block = pd.DataFrame({
        "block": [label for label, _ in blocks],
        **{key: [float(v[key]) for v in values] for key in ("rp", "ev", "eev", "ws")},
    })
    by_block["vss"] = [vss(r, e, sense) for r, e in zip(by_block["rp"], by_block["eev"])]
    by_block["evpi"] = [evpi(r, w, sense) for r, w in zip(by_block["rp"], by_block["ws"])]
    total = {key: math.fsum(by_block[key]) for key in ("rp", "ev", "eev", "ws")}
    infeasible = tuple(n for n, v in zip(names, eev_by_scenario) if math.isinf(v))
    plans = [v["ev_plan"] for v in values]
    return ValueReport(
        rp=total["rp"], ev=total["ev"], eev=total["eev"], ws=total["ws"],
        vss=vss(total["rp"], total["eev"], sense), evpi=evpi(total["rp"], total["ws"], sense),
        sense=sense, n_scenarios=len(names), infeasible=infeasible,
        integer_policy=integer_policy, rp_plan=rp_result.plan,
        ev_plan=pd.concat(plans, ignore_index=True),
        by_scenario=pd.DataFrame({"scenario": names, "probability": probabilities,
                                  "ws": ws_by_scenario, "eev": eev_by_scenario}),
        timings={key: float(sum(v["timings"][key] for v in values))
                 for key in ("rp", "ev", "eev", "ws")},
        rp_result=rp_result,
        infeasible_probability=_probability_of(infeasible, names, probabilities),
        remedy=remedy_of(family.module), by_block=by_block)


def _block_value(family: Any, record: Any, spec: str, seed: int | None,
                 multipliers: tuple[float, ...], weights: tuple[float, ...] | None,
                 solver: SolverOptions, integer_policy: str) -> dict[str, Any]:
    """One block's RP, EV, EEV and WS, per-scenario EEV and WS, EV plan and RP result."""
    from stochplan import scenarios as scen
    from stochplan.solve import matrix
    from stochplan.solve.blocks import family_arrays, solve_arrays

    scen_set = family.scenario_set(record, spec, seed, multipliers, weights)
    compiled = (family_arrays(family, record, scen_set)
                if solver.use_matrix(family.module) else None)
    if compiled is None:  # the generic report of the block alone
        kwargs = family.creator_kwargs(record, spec, seed, multipliers, weights)
        report = value_report(family.module, scen_set.names, kwargs, solver, integer_policy)
        return {"rp": report.rp, "ev": report.ev, "eev": report.eev, "ws": report.ws,
                "sense": report.sense, "ev_plan": report.ev_plan,
                "eev_by_scenario": report.by_scenario["eev"].to_numpy(float),
                "ws_by_scenario": report.by_scenario["ws"].to_numpy(float),
                "rp_result": report.rp_result, "timings": report.timings}
    timings: dict[str, float] = {}
    start = time.perf_counter()
    rp = solve_arrays(compiled, solver)
    timings["rp"] = time.perf_counter() - start
    start = time.perf_counter()
    ev_inst, mean = family.mean_instance(record, scen_set.expected, integer_policy)
    one = scen.ScenarioSet(names=("scen0",), probabilities=np.ones(1),
                           data=np.asarray(mean, dtype=float)[None], spec="mean", seed=None,
                           labels=("mean",))
    ev_compiled = family_arrays(family, ev_inst, one)
    ev = solve_arrays(ev_compiled, solver)
    timings["ev"] = time.perf_counter() - start
    index_names = tuple(getattr(family.module, "INDEX_NAMES", ()))
    ev_plan = matrix.plan_table(ev_compiled.columns, ev.first, index_names)
    start = time.perf_counter()
    eev, _, _ = matrix.solve_each(compiled, solver, first_stage=ev.first)
    timings["eev"] = time.perf_counter() - start
    start = time.perf_counter()
    if compiled.columns.integer.any():
        # a MIP per scenario: HiGHS from scratch each time (in one object whose bounds
        # change from scenario to scenario, a 30-product site's MIP took 5 times longer)
        ws = np.array([_one_scenario(compiled, k, solver) for k in range(len(compiled.names))])
    else:
        ws, _, _ = matrix.solve_each(compiled, solver)
    timings["ws"] = time.perf_counter() - start
    sense = "min" if compiled.sense == 1 else "max"
    p = np.asarray(compiled.probabilities, dtype=float)
    return {"rp": rp.objective, "ev": ev.objective, "eev": _expected(eev, p, sense),
            "ws": _expected(ws, p, sense), "sense": sense, "ev_plan": ev_plan,
            "eev_by_scenario": eev, "ws_by_scenario": ws, "rp_result": rp,
            "timings": timings}


def _one_scenario(compiled: Any, k: int, solver: SolverOptions) -> float:
    """Scenario k's problem alone (first stage free): its optimal value, or the infinity of
    the sense's worst direction when it is infeasible."""
    import dataclasses

    from stochplan.errors import InfeasibleError
    from stochplan.solve.blocks import solve_arrays

    one = dataclasses.replace(
        compiled, names=(compiled.names[k],), probabilities=np.ones(1),
        rhs=compiled.rhs[k:k + 1], col_lo=compiled.col_lo[k:k + 1],
        col_hi=compiled.col_hi[k:k + 1], cost=compiled.cost[k:k + 1],
        offset=compiled.offset[k:k + 1])
    try:
        return float(solve_arrays(one, solver).objective)
    except InfeasibleError:
        return math.inf * compiled.sense


def _probability_of(chosen: Sequence[str], names: Sequence[str],
                    probabilities: np.ndarray) -> float:
    """Total (normalised) probability of the scenarios ``chosen`` among ``names``."""
    p = probabilities / probabilities.sum()
    wanted = set(chosen)
    return float(sum(pk for n, pk in zip(names, p) if n in wanted))


def _expected(values: np.ndarray, probabilities: np.ndarray, sense: str) -> float:
    """Probability-weighted value; an infeasible scenario (+inf cost) makes it +inf for
    minimisation and -inf for maximisation."""
    p = probabilities / probabilities.sum()
    if np.any(np.isinf(values) & (p > 0)):
        return math.inf if sense == "min" else -math.inf
    return float(p @ values)


def value_at_risk_box(
    module: ModuleType,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any],
    risk: RiskConfig,
    solver: SolverOptions | None = None,
    comm: Any = None,
) -> tuple[float, float]:
    """Bounds on eta that contain the value at risk of an optimal plan, for methods whose
    subproblems must stay bounded (PH's Lagrangian bound: with eta free, a scenario's
    Lagrangian subproblem is unbounded in eta once its multiplier leaves
    [-lambda, lambda alpha / (1 - alpha)], and its "bound" is then meaningless).

    With ``WS_s`` the best loss of scenario s alone (wait-and-see) and ``x0`` the mean-value
    plan: the optimal plan's VaR is at least its smallest loss, so at least ``min_s WS_s``;
    and at most its CVaR, which optimality bounds by ``(rho(x0) - (1 - lambda) E[WS]) /
    lambda``. Costs 2 S scenario solves (spread over ``comm``'s ranks).

    Raises :class:`InputError` when the mean-value plan has no feasible recourse in some
    scenario (no finite upper bound then).
    """
    names = [str(n) for n in scenario_names]
    ws = wait_and_see(module, names, creator_kwargs, solver, comm=comm)
    _, ev_plan, sense, _ = solve_mean_value(module, names, creator_kwargs,
                                            solver or SolverOptions())
    sign = 1.0 if sense == "min" else -1.0
    ws_loss = sign * np.asarray(ws.objective, float)
    p = ws.probabilities / ws.probabilities.sum()
    x0 = evaluate_plan(module, ev_plan, names, creator_kwargs, solver, comm=comm)
    rho0 = sign * risk_value(x0.objective, x0.probabilities, risk.alpha, risk.weight,
                             sense).objective
    if not (np.isfinite(ws_loss).all() and math.isfinite(rho0)):
        raise InputError("method", "ph", "under a risk measure PH bounds the value at risk by "
                         "the mean-value plan's measure, and that plan has no feasible "
                         "recourse in some scenario: use --method ef or lshaped")
    low = float(ws_loss.min())
    high = (rho0 - (1.0 - risk.weight) * float(p @ ws_loss)) / risk.weight
    margin = 1e-6 * max(1.0, abs(low), abs(high))
    return low - margin, max(high, low) + margin
