"""One iteration of each phase: the level step and Kelley's step on the master LP, and the
master-MIP step of the integer phase."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from stochplan.errors import SolveError
from stochplan.solve.lshaped import tuning
from stochplan.solve.lshaped.cuts import _add_cuts
from stochplan.solve.lshaped.decomposition import Decomposition
from stochplan.solve.lshaped.master import _Master
from stochplan.solve.lshaped.options import LShapedOptions
from stochplan.solve.solvers import relative_gap


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
    if _closed(ub, lb, options.rel_gap):
        out["stop"] = "gap"
        return out
    out["stop"] = _limit(options, iteration, elapsed)
    if out["stop"] is not None:
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
        """Queue up to :data:`~.EXTRA_PLANS` of the master's plans ``found`` (in the order HiGHS
        found them, so the best last) other than ``plan`` and those valued already."""
        seen = {plan.tobytes()} | self.evaluated
        self.queue = []
        for x in reversed(found):
            if len(self.queue) >= tuning.EXTRA_PLANS:
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
        out["stop"] = _limit(options, iteration, elapsed)
        if out["stop"] is not None:
            return out
    if state.queue:  # value the other plans of the last master MIP first (they bring cuts)
        state.extra += 1
        out["next_x"] = state.queue.pop(0)
        return out
    target = tuning.MASTER_GAP_SHARE * options.rel_gap
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
    else:
        out["stop"] = _limit(options, iteration, elapsed)
    return out


def _limit(options: LShapedOptions, iteration: int, elapsed: float) -> str | None:
    """``"iteration_limit"`` or ``"time_limit"`` when the run has reached that limit, else
    None."""
    if iteration >= options.max_iterations:
        return "iteration_limit"
    if options.time_limit is not None and elapsed >= options.time_limit:
        return "time_limit"
    return None


def _closed(ub: float, lb: float, rel_gap: float) -> bool:
    gap = relative_gap(ub, lb)
    return gap is not None and (gap <= rel_gap or ub - lb <= 1e-9 * max(1.0, abs(ub)))
