"""HiGHS objects and the scenarios' recourse problems: each scenario solved at a plan, warm
from its own last basis, for its value and the duals of its cuts."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp

from stochplan.errors import InfeasibleError, SolveError
from stochplan.solve.lshaped import tuning
from stochplan.solve.lshaped.decomposition import Decomposition
from stochplan.solve.solvers import DEVEX


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
        on Q_s) and its dual bound (a lower bound), to :data:`~.RECOURSE_MIP_GAP`; both +inf
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
            self._mip.setOptionValue("mip_rel_gap", tuning.RECOURSE_MIP_GAP)
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
