"""The second half of the mpi-sppy adapter: PH's hub and spokes driving the highspy guest.

:mod:`stochplan.solve.ph_highs` owns the subproblems (HiGHS models built from the matrix
backend) and never imports mpi-sppy; this module is what mpi-sppy sees. For each subproblem it
builds a small Pyomo *host* model (the first-stage variables and an objective of 0, marked
with the subproblem's probability), on which mpi-sppy keeps W, rho, xbar and the fixedness of
the first stage as usual, and hands mpi-sppy a callout object (its AML-agnostic interface,
``options["Ag"]``): mpi-sppy calls ``callout_agnostic`` from its own methods, named after the
caller (``solve_one``, ``attach_Ws_and_prox``, ``_fix_nonants``, ...). Only ``solve_one``
does work: it reads W, rho, xbar, the switches ``W_on``/``prox_on`` and the fixed first-stage
values from the host, solves the guest's subproblem and writes back the first-stage solution,
its objective (``inner_bound``) and bound (``outer_bound``). The other callouts have nothing to
do, since the state they change is read again at each solve.

Like ``stochplan/_mpisppy.py`` it is allowed to import mpi-sppy and name its ``_mpisppy_*``
attributes (``tests/test_layering.py``).
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import Any

import numpy as np

from stochplan import _mpisppy
from stochplan.solve import ph as pyomo_ph
from stochplan.solve.ph import PHOptions
from stochplan.solve.ph_highs import Guest, Outcome
from stochplan.solve.solvers import relative_gap

log = logging.getLogger(__name__)

#: With fewer than 3 ranks the hub computes a Lagrangian bound itself every this many
#: iterations (and at iteration 1).
HUB_BOUND_EVERY = 2


# ----------------------------------------------------------------------------------------------
# Host models and the callouts


def host_creator(name: str, guest: Guest) -> Any:
    """The Pyomo host of subproblem ``name``: its first-stage variables (bounded as in every
    scenario, integer where the model's are), an objective of 0 to minimise, and the
    subproblem's probability; the guest builds its HiGHS model now."""
    import pyomo.environ as pyo

    guest.subproblem(name)
    lo, hi = guest.first_bounds()
    integer = guest.integer_first
    m = pyo.ConcreteModel(name)
    m.x = pyo.Var(range(guest.n_first))
    for j, v in m.x.items():
        v.setlb(None if not math.isfinite(lo[j]) else float(lo[j]))
        v.setub(None if not math.isfinite(hi[j]) else float(hi[j]))
        if integer[j]:
            v.domain = pyo.Integers
    m.obj = pyo.Objective(expr=0.0, sense=pyo.minimize)
    return _mpisppy.attach_root(m, 0.0, [m.x], guest.probability(name))


class _NoSolver:
    """What mpi-sppy keeps as a subproblem's solver: the guest solves, this only holds the
    options mpi-sppy sets."""

    name = "highspy"

    def __init__(self) -> None:
        self.options: dict[str, Any] = {}


class Callouts:
    """mpi-sppy's AML-agnostic callout object for the highspy guest."""

    def __init__(self, guest: Guest) -> None:
        self.guest = guest
        self.prox_attached: dict[str, bool] = {}

    def callout_agnostic(self, kwargs: dict[str, Any]) -> bool:
        """Dispatch on the name of the mpi-sppy method that called (as mpi-sppy's own
        ``Agnostic`` does, without inspecting the whole stack)."""
        caller = sys._getframe(1).f_code.co_name
        if caller == "solve_one":
            self.solve_one(kwargs["s"])
        elif caller == "attach_PH_to_objective":
            self.prox_attached[kwargs["sname"]] = bool(kwargs["add_prox"])
        elif caller not in _NOTHING_TO_DO:
            raise RuntimeError(f"the highspy guest has no callout {caller!r}")
        return True

    def solve_one(self, s: Any) -> Outcome:
        """Solve subproblem ``s`` (a host) as its host's state says; write the results back."""
        name = s.name
        sub = self.guest.subproblem(name)
        variables = list(s._mpisppy_data.nonant_indices.values())
        sub.fix(np.array([v._value if v.fixed else np.nan for v in variables], dtype=float))
        W = rho = xbar = None
        block = s._mpisppy_model
        if hasattr(block, "W"):
            keys = list(s._mpisppy_data.nonant_indices)
            if block.W_on._value:
                W = np.array([block.W[k]._value for k in keys], dtype=float)
            if block.prox_on._value and self.prox_attached.get(name, False):
                rho = np.array([block.rho[k]._value for k in keys], dtype=float)
                xbar = np.array([block.xbars[k]._value for k in keys], dtype=float)
        outcome = sub.solve(W, rho, xbar)
        data = s._mpisppy_data
        data.solution_available = outcome.ok
        if outcome.ok:
            data.outer_bound = outcome.bound
            data.inner_bound = outcome.value
            for v, x in zip(variables, outcome.first.tolist()):
                if not v.fixed:
                    v._value = x
        return outcome


#: Callouts whose state the guest reads again at each solve.
_NOTHING_TO_DO = frozenset({
    "attach_Ws_and_prox", "_disable_prox", "_disable_W", "_reenable_prox", "_reenable_W",
    "_restore_nonants", "_restore_original_fixedness", "_fix_nonants", "_fix_root_nonants",
})


def _guest_class(base: type) -> type:
    """``base`` (an mpi-sppy SPOpt class) without Pyomo solvers: the guest solves."""

    class Guested(base):  # type: ignore[misc, valid-type]
        def _create_solvers(self, presolve: bool = True) -> None:
            for s in self.local_scenarios.values():
                s._solver_plugin = _NoSolver()

    Guested.__name__ = Guested.__qualname__ = f"Guested{base.__name__}"
    return Guested


# ----------------------------------------------------------------------------------------------
# The hub as its own bound and incumbent cylinder (fewer than 3 ranks)


def _hub_bounder(mp: Any, callouts: Callouts, options: PHOptions, alone: bool) -> type:
    """An mpi-sppy converger run by the hub at each iteration: a Lagrangian bound (subproblems
    with W and without the proximal term) at iteration 1 and every :data:`HUB_BOUND_EVERY`;
    when PH runs alone, also xbar valued as incumbent (every subproblem with its first stage
    fixed at xbar, no PH terms)."""
    converger: Any = mp.Converger
    guest = callouts.guest

    class HubBounder(converger):
        def __init__(self, opt: Any) -> None:
            self.opt = opt
            self.conv = None
            self.best_objective = math.inf
            self.best_x: np.ndarray | None = None

        def _sum(self, local: float) -> float:
            return float(self.opt.mpicomm.allreduce(local))

        def is_converged(self) -> bool:
            opt = self.opt
            hosts = list(opt.local_scenarios.items())
            if opt._PHIter == 1 or opt._PHIter % HUB_BOUND_EVERY == 0:
                total = 0.0
                for name, s in hosts:
                    keys = list(s._mpisppy_data.nonant_indices)
                    W = np.array([s._mpisppy_model.W[k]._value for k in keys], dtype=float)
                    out = guest.subproblem(name).solve(W, role="bound")
                    total += guest.probability(name) * out.bound if out.ok else -math.inf
                bound = self._sum(total)
                if math.isfinite(bound):
                    best = opt.best_bound_obj_val
                    opt.best_bound_obj_val = bound if best is None else max(best, bound)
            if not alone:
                return False
            _name0, s0 = hosts[0]
            keys = list(s0._mpisppy_data.nonant_indices)
            xbar = np.array([s0._mpisppy_model.xbars[k]._value for k in keys], dtype=float)
            xbar = np.where(guest.integer_first, np.round(xbar), xbar)
            total = 0.0
            for name, _s in hosts:
                sub = guest.subproblem(name)
                sub.fix(xbar)
                out = sub.solve(role="eval")
                sub.fix(np.full(sub.n1, np.nan))
                total += guest.probability(name) * out.cost if out.ok else math.inf
            value = self._sum(total)
            if value < self.best_objective:
                self.best_objective = value
                self.best_x = xbar
                opt.best_solution_obj_val = value
            gap = relative_gap(self.best_objective, opt.best_bound_obj_val)
            return gap is not None and gap <= options.rel_gap

    return HubBounder


# ----------------------------------------------------------------------------------------------
# The wheel


def rho_values(guest: Guest, options: PHOptions) -> np.ndarray | None:
    """Each first-stage column's rho; None when it is ``options.default_rho`` everywhere.

    ``"coeff"``: multiplier x |expected first-stage cost| (default rho where that is 0);
    ``"fixed"``: default rho. Either way the value-at-risk column of a mean-CVaR module gets
    its own (:meth:`Guest.value_at_risk_rho`).
    """
    if options.rho == "coeff":
        costs = np.abs(guest.first_stage_costs()) * options.rho_multiplier
        rho = np.where(costs > 0, costs, options.default_rho)
    else:
        rho = np.full(guest.n_first, options.default_rho)
    eta = guest.value_at_risk_column
    if eta is not None:
        rho[eta] = guest.value_at_risk_rho(float(rho[eta]))
    if options.rho != "coeff" and eta is None:
        return None
    return rho


def _rho_setter(rho: np.ndarray) -> Any:
    """mpi-sppy's rho setter: ``rho`` on a host's first-stage variables."""

    def setter(scenario: Any) -> list[tuple[int, float]]:
        return [(id(v), float(r)) for v, r in zip(_mpisppy.nonant_vars(scenario), rho.tolist())]

    return setter


def run_ph(guest: Guest, sub_names: list[str], options: PHOptions, layout: tuple[str, ...],
           comm: Any, log_dir: str, explain: pyomo_ph.Explain | None = None) -> dict[str, Any]:
    """Spin mpi-sppy's wheel over the guest's subproblems ``sub_names`` (on every rank).

    Returns, on every rank, the candidate plans to value (the best incumbent the cylinders
    found, PH's final xbar), and on rank 0 also the best bound, iterations, stop reason,
    history (``[seconds, iteration, bound, incumbent]`` per iteration, minimisation form) and
    PH's wall time. mpi-sppy's output goes to ``log_dir/rank<r>.log``. A scenario without a
    feasible solution even alone ends the job with status 3, named, with the constraint
    families ``explain`` finds.
    """
    rank = comm.Get_rank()
    path = os.path.join(log_dir, f"rank{rank}.log")
    own_dir = None if options.log_dir is not None else log_dir
    with pyomo_ph._cylinder_output(comm, path, temp_dir=own_dir, explain=explain):
        mp = pyomo_ph._import_mpisppy(log_dir)
        raw = _mpisppy.ph_machinery(log_dir)
        return _spin(mp, raw, guest, sub_names, options, layout, comm)


def _spin(mp: Any, raw: Any, guest: Guest, sub_names: list[str], options: PHOptions,
          layout: tuple[str, ...], comm: Any) -> dict[str, Any]:
    callouts = Callouts(guest)
    cfg = pyomo_ph._config(mp, options.replace(rho="fixed"), options.log_dir, False, False)
    cfg.turn_off_names_check = True
    kwargs = {"guest": guest}

    def denouement(rank: int, name: str, model: Any) -> None:
        return None

    beans = (cfg, host_creator, denouement, sub_names)
    bounder = None if "lagrangian" in layout else _hub_bounder(
        mp, callouts, options, alone="xhat" not in layout)
    rho = rho_values(guest, options)
    rho_setter = None if rho is None else _rho_setter(rho)
    hub = mp.vanilla.ph_hub(*beans, scenario_creator_kwargs=kwargs, ph_extensions=None,
                            ph_converger=bounder, rho_setter=rho_setter)
    hub["opt_kwargs"]["options"]["cfg"] = cfg
    hub["opt_class"] = _guest_class(raw.PH)
    spokes = pyomo_ph.cylinders(mp, layout, beans, kwargs, _guest_class(raw.PHBase),
                                _guest_class(raw.Xhat_Eval), adaptive_rho=options.adaptive_rho,
                                hub=hub, options={"Ag": callouts})
    wheel, wall = pyomo_ph.spin(mp, hub, spokes, layout, comm)
    return _collect(wheel, guest, options, comm, wall)


#: Plans each hub rank adds to the candidates when some of its MIP bundles were solved as LP
#: relaxations (first met after the time limit): its MIP-solved bundles' own plans nearest
#: PH's average.
FALLBACK_PLANS = 2


def _fallback_plans(guest: Guest, xbar: np.ndarray) -> list[np.ndarray]:
    """When PH's average mixes LP relaxations (a MIP bundle first met after the time limit,
    see :meth:`Subproblem._relaxed`), its rounding is a poor plan: the plans of this rank's
    bundles solved as MIPs, the :data:`FALLBACK_PLANS` nearest the average (l1), are valued
    too, as the incumbent spoke would have valued them had time been left."""
    subs = list(guest.subproblems.values())
    if not any(sub.relaxed for sub in subs):
        return []
    plans = [sub.last_first for sub in subs
             if sub.integer and not sub.relaxed and sub.last_first is not None]
    plans.sort(key=lambda plan: float(np.abs(plan - xbar).sum()))
    return [np.where(guest.integer_first, np.round(plan), plan)
            for plan in plans[:FALLBACK_PLANS]]


def _collect(wheel: Any, guest: Guest, options: PHOptions, comm: Any,
             wall: float) -> dict[str, Any]:
    """Bound, iterations and the candidate plans (the same list on every rank)."""
    opt = wheel.spcomm.opt
    on_hub = wheel.strata_rank == 0
    rank = comm.Get_rank()
    # the winning cylinder's first rank holds the incumbent's first stage on its hosts
    winner = comm.bcast(wheel.spcomm.last_ib_idx if rank == 0 else None, root=0)
    mine: np.ndarray | None = None
    if winner is not None and winner > 0 and wheel.strata_rank == winner \
            and opt.cylinder_rank == 0 and opt.load_best_solution():
        host = next(iter(opt.local_scenarios.values()))
        mine = np.array([v.value for v in _mpisppy.nonant_vars(host)], dtype=float)
    bounder = opt.convobject if on_hub else None
    if bounder is not None and on_hub and opt.cylinder_rank == 0 and \
            getattr(bounder, "best_x", None) is not None:
        mine = bounder.best_x
    xbar = None
    fallback: list[np.ndarray] = []
    hosts = list(opt.local_scenarios.values()) if on_hub else []
    if hosts:  # every hub rank holds PH's average
        average = np.array(_mpisppy.xbar_values(hosts[0]))
        fallback = _fallback_plans(guest, average)
        if opt.cylinder_rank == 0:
            xbar = np.where(guest.integer_first, np.round(average), average)
    solves = sum(sub.solves for sub in guest.subproblems.values())
    parts = comm.allgather((mine, xbar, fallback))
    solves = comm.reduce(solves, root=0)
    # PH's final xbar first: it wins ties, so a run whose subproblems agree on the first
    # stage returns that plan whichever cylinder found an equally good one
    candidates = [part[1] for part in parts if part[1] is not None] + [
        part[0] for part in parts if part[0] is not None] + [
        plan for part in parts for plan in part[2]]
    out: dict[str, Any] = {"candidates": candidates}
    if rank == 0:
        bound = float(wheel.BestOuterBound)
        if opt.best_bound_obj_val is not None and math.isfinite(opt.best_bound_obj_val):
            bound = max(bound, float(opt.best_bound_obj_val))
        iterations = int(opt._PHIter)
        elapsed = time.perf_counter() - opt.start_time
        out.update({
            "bound": bound if math.isfinite(bound) else None,
            "iterations": iterations,
            "stop_reason": pyomo_ph._stop_reason(iterations, elapsed, options),
            "history": [list(h) for h in getattr(wheel.spcomm, "history", [])],
            "elapsed": wall,
            "solves": solves,
            "xbar": None if xbar is None else [float(v) for v in xbar],
            "convergence": None if opt.conv is None else float(opt.conv),
        })
    return out
