"""The master problem (rank 0): the first stage, one column per cluster, the cuts; solved
as an LP (level projection, Kelley) or, with an integer first stage, as a MIP."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from stochplan.solve.lshaped import tuning
from stochplan.solve.lshaped.decomposition import Decomposition
from stochplan.solve.lshaped.recourse import _highs, _pass_lp
from stochplan.solve.lshaped.scenario_master import ScenarioMaster

if TYPE_CHECKING:
    from stochplan.solve.risk import RiskConfig


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
        w1, winf = tuning.PROJECTION_WEIGHTS
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
        #: its interior cuts instead (:data:`~.CORE_STEP`); key: the plan's bytes
        self.held: dict[bytes, tuple[np.ndarray, sp.csr_matrix, np.ndarray]] = {}
        #: phase 2 with a family's cuts: the plans whose own cuts were never taken (the
        #: interior point's stood in for them); a plan proposed again is valued once more
        self.owed: set[bytes] = set()
        #: risk only: the first of the columns ``eta, r_1 .. r_S`` in each HiGHS object (the
        #: Rockafellar-Uryasev model of theta_R, added with the first tail cuts)
        self.tail_base: dict[int, int] = {}
        #: phase 2 with pattern cuts and no risk measure: the master with one theta per
        #: scenario, searched over the blocks' patterns, solves the master MIP instead of
        #: HiGHS (it keeps every scenario's cuts from the first iteration on)
        self.scenarios = (ScenarioMaster.build(d) if risk is None and tuning.SCENARIO_MASTER
                          else None)

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
        if self.scenarios is not None:  # rows over the first stage alone reach it too
            coef = sp.csr_matrix(coef)
            alone = np.flatnonzero(np.diff(coef[:, self.n1:].tocsr().indptr) == 0)
            if alone.size:
                self.scenarios.add_rows(lower[alone], coef[alone][:, : self.n1], upper[alone])

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
        h.setOptionValue("mip_pscost_minreliable", tuning.MASTER_MIN_RELIABLE)
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
        if self.scenarios is not None:
            status, bound, value, x, self.found = self.scenarios.solve(rel_gap, time_limit,
                                                                        start, stop_at)
            self.closed = status == "closed"
            return status, bound, value, x
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
