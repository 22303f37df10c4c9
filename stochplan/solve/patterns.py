r"""Lagrangian cuts over block patterns, for the integer L-shaped method's master.

A Benders cut from one binary plan's duals is exact at that plan and weak at the next: it
keeps the plan's duals of every row, where another plan would price them otherwise. When a
few constraint families couple an otherwise separable recourse (lot sizing: the machine-hour
and material rows are shared by products whose chains are otherwise apart), dualising only
those rows leaves independent *blocks*, each touched by a few binary first-stage columns.
Each block can then be valued exactly at every assignment of its columns (its *patterns*),
and one cut prices every combination of patterns.

In minimisation form, with the recourse rows ``lo_s <= W y + T x <= hi_s`` split into the
coupling rows ``c`` and the blocks ``b`` (the connected components of the other rows), and
duals ``pi`` of the coupling rows (HiGHS's signs: ``pi_i > 0`` prices the lower bound,
``pi_i < 0`` the upper one)::

    Q_s(x) >= o_s + pi'r_s - (T_c'pi)'x + sum_b L_sb(x_b)
    L_sb(v) = min (q_s - W_c'pi)_b' y_b   s.t.  lo_sb - T_b v <= W_b y_b <= hi_sb - T_b v,
                                                 l_sb <= y_b <= u_sb

with ``r_i`` the bound ``pi_i`` prices. It holds for every such ``pi`` (a Lagrangian
relaxation), and with the coupling rows' optimal duals at a plan it holds with equality
there (the rest is an LP, so the partial Lagrangian dual closes). ``L_sb`` depends on the
block's own binary columns ``x_b`` only; written over the master's extra columns ``z_bk``
(one per block and pattern, ``sum_k z_bk = 1`` and ``x_b = sum_k v_k z_bk``), the cut is
linear: ``theta_s >= const + g'x + sum_bk L_sb(v_k) z_bk``. The master over ``z`` is the
convex hull of each block's patterns, which the Benders cuts over ``x`` never see.

:class:`PatternCuts` builds the blocks from the decomposition of a compiled problem and the
coupling rows a family names (:attr:`stochplan.family.Family.coupling_rows`), and values the
``2**k`` patterns of every block in one LP (``2**k`` copies of each block side by side).
Blocks with more than :data:`MAX_BITS` linking columns, or linking columns that are not
binary, give no cuts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from stochplan.errors import SolveError

#: The most linking columns a block may have (its patterns are enumerated: 2**MAX_BITS).
MAX_BITS = 6
#: The coefficient of a pattern a scenario's block cannot take (no recourse there, so any
#: bound holds): this many times the largest pattern value seen, plus one.
INFEASIBLE_FACTOR = 1e3


class _Block:
    """One block: its recourse rows and columns, its linking first-stage columns and their
    patterns (``T_b v_k`` for each)."""

    def __init__(self, rows: np.ndarray, cols: np.ndarray, link: np.ndarray,
                 W: sp.csr_matrix, T: sp.csr_matrix) -> None:
        self.rows, self.cols, self.link = rows, cols, link
        k = link.size
        self.patterns = ((np.arange(2 ** k)[:, None] >> np.arange(k)[None, :]) & 1).astype(float)
        self.Wb = W[rows][:, cols].tocsr()
        self.Tv = (T[rows][:, link] @ self.patterns.T).T  # (patterns, rows): T_b v_k
        self.n_copies = self.patterns.shape[0]

    def value_one(self, k: int, cost: np.ndarray, y_lo: np.ndarray, y_hi: np.ndarray,
                  lo: np.ndarray, hi: np.ndarray) -> float:
        """Pattern ``k``'s value alone (+inf where it has no solution)."""
        from stochplan.solve.lshaped.recourse import _highs, _pass_lp

        h = _highs()
        _pass_lp(h, self.Wb.tocsc(), cost, y_lo, y_hi, lo - self.Tv[k], hi - self.Tv[k])
        h.run()
        status = h.getModelStatus().name
        if status == "kOptimal":
            return float(h.getInfo().objective_function_value)
        if status == "kInfeasible":
            return math.inf
        raise SolveError(f"a block of the pattern cuts ended {status}", status)


class _Copies:
    """Every block's patterns as one LP: ``2**k`` copies of each block side by side, solved
    at once for a scenario's costs and bounds.

    Each scenario's solve starts from the basis its own last solve ended at (the first from
    the basis of scenario 0's data): a scenario's bounds are the same at every solve, only
    the prices of the dualised rows move, so its last basis stays primal feasible and is
    usually a few pivots from optimal. Only the data that differ between solves are passed
    again: the costs of the columns in dualised rows (or whose costs vary between scenarios)
    and the bounds that vary between scenarios (on furniture, 576 of 2,624 costs, 816 of 2,544
    row bounds and no column bound). The start depends on the scenario alone, not on what
    else the rank solved, so 1, 2 and 3 ranks get the same values to the last bit. Measured
    on furniture (``poisson:1000``, one rank, 600 s of the L-shaped method): the recourse,
    these LPs included, took 261 s over 44 iterations, against 477 s with the nine blocks
    solved one by one, each from one fixed basis.
    """

    def __init__(self, blocks: list[_Block], bounds_vary: np.ndarray, cost_varies: np.ndarray,
                 rows_vary: np.ndarray) -> None:
        self.blocks = blocks
        self.cols = np.concatenate([np.tile(b.cols, b.n_copies) for b in blocks])
        self.rows = np.concatenate([np.tile(b.rows, b.n_copies) for b in blocks])
        self.Tv = np.concatenate([b.Tv.ravel() for b in blocks])
        # the copies' columns and rows whose data can differ between solves (masks over the
        # recourse's): only those are passed again (the rest keep the reference's data)
        self.var_bounds = np.flatnonzero(bounds_vary[self.cols]).astype(np.int32)
        self.var_cost = np.flatnonzero(cost_varies[self.cols]).astype(np.int32)
        self.var_rows = np.flatnonzero(rows_vary[self.rows]).astype(np.int32)
        #: where each block's copies start among the LP's columns
        self.offsets = np.cumsum([0] + [b.n_copies * b.cols.size for b in blocks])
        self.h: Any = None
        self.bases: dict[int, Any] = {}  # each scenario's last basis
        self.first: Any = None  # the basis a scenario's first solve starts from

    def _lp(self, reference: tuple[np.ndarray, ...]) -> Any:
        """The LP, built on first use; ``reference`` (cost, column and row bounds of a
        scenario every rank has) gives the basis every scenario's first solve starts from."""
        if self.h is None:
            from stochplan.solve.lshaped.recourse import _highs, _pass_lp

            A = sp.block_diag([sp.block_diag([b.Wb] * b.n_copies) for b in self.blocks],
                              format="csc")
            m, n = A.shape
            self.h = _highs()
            _pass_lp(self.h, A, np.zeros(n), np.zeros(n), np.zeros(n), np.full(m, -np.inf),
                     np.full(m, np.inf))
            every = (np.arange(self.cols.size, dtype=np.int32),
                     np.arange(self.cols.size, dtype=np.int32),
                     np.arange(self.rows.size, dtype=np.int32))
            self._set(*reference, which=every)
            self.h.run()
            self.first = self.h.getBasis()
        return self.h

    def _set(self, cost: np.ndarray, y_lo: np.ndarray, y_hi: np.ndarray, lo: np.ndarray,
             hi: np.ndarray, *, which: tuple[np.ndarray, ...] | None = None) -> np.ndarray:
        """Pass a scenario's data (over the recourse columns and rows) to every copy: the
        copies' column bounds, costs and row bounds at the positions ``which`` (by default
        those that can differ from the reference's); returns the copies' costs."""
        h = self.h
        bounds, costs, rows = which or (self.var_bounds, self.var_cost, self.var_rows)
        c = cost[self.cols]
        if costs.size:
            h.changeColsCost(costs.size, costs, c[costs])
        if bounds.size:
            cols = self.cols[bounds]
            h.changeColsBounds(bounds.size, bounds, y_lo[cols], y_hi[cols])
        if rows.size:
            r = self.rows[rows]
            h.changeRowsBounds(rows.size, rows, lo[r] - self.Tv[rows], hi[r] - self.Tv[rows])
        return c

    def values(self, s: int, cost: np.ndarray, y_lo: np.ndarray, y_hi: np.ndarray,
               lo: np.ndarray, hi: np.ndarray,
               reference: tuple[np.ndarray, ...]) -> list[np.ndarray]:
        """Scenario ``s``'s value of each block at each pattern (+inf where the block has no
        solution), one array per block."""
        h = self._lp(reference)
        c = self._set(cost, y_lo, y_hi, lo, hi)
        h.clearSolver()
        h.setBasis(self.bases.get(s, self.first))
        h.run()
        status = h.getModelStatus().name
        if status == "kOptimal":
            self.bases[s] = h.getBasis()
            spent = np.asarray(h.getSolution().col_value) * c
            return [spent[self.offsets[b]:self.offsets[b + 1]].reshape(
                block.n_copies, block.cols.size).sum(axis=1)
                for b, block in enumerate(self.blocks)]
        if status not in ("kInfeasible", "kUnboundedOrInfeasible"):
            raise SolveError(f"a block of the pattern cuts ended {status}", status)
        # some pattern has no solution: value each copy alone
        return [np.array([block.value_one(k, cost[block.cols], y_lo[block.cols],
                                          y_hi[block.cols], lo[block.rows], hi[block.rows])
                          for k in range(block.n_copies)]) for block in self.blocks]


class PatternCuts:
    """The cuts of :mod:`.patterns` for one decomposition (see the module docstring).

    Call it with a scenario's position ``s`` and its recourse LP's row duals over every
    compiled row (HiGHS's, minimisation form): it returns ``(constant, coefficients)`` over
    the extended first stage (the first-stage columns, then one column per block and pattern)
    with ``Q_s(x) >= constant + coefficients @ [x, z]`` at every binary plan ``x`` and its
    patterns ``z`` (:meth:`extend`). ``relaxation``: the cuts serve the master's LP
    relaxation too (see :mod:`stochplan.solve.lshaped`, "Integer first stages").
    """

    relaxation = True

    def __init__(self, d: Any, coupling: np.ndarray, blocks: list[_Block]) -> None:
        self.d = d
        self.coupling = np.flatnonzero(coupling)  # recourse rows dualised
        self.blocks = blocks
        self.Wc = d.W[self.coupling].tocsr()
        self.Tc = d.T[self.coupling].tocsr()
        # what differs between scenarios (or with the dualised rows' prices, for the costs)
        priced = np.asarray(abs(self.Wc).sum(axis=0)).ravel() > 0
        self.copies = _Copies(
            blocks, _varies(d.y_lo) | _varies(d.y_hi), _varies(d.q) | priced,
            _varies(d.lo) | _varies(d.hi))
        self.n_first = d.n_first
        self.offsets = np.cumsum([0] + [b.n_copies for b in blocks])
        self.n_extra = int(self.offsets[-1])

    @classmethod
    def build(cls, d: Any, coupling: np.ndarray) -> PatternCuts | None:
        """The cuts for the decomposition ``d`` with the recourse rows ``coupling`` (a mask
        over ``d.W``'s rows) dualised; None when some block has more than :data:`MAX_BITS`
        linking columns or a linking column that is not binary, or nothing is coupled."""
        coupling = np.asarray(coupling, bool)
        if not coupling.any() or coupling.all():
            return None
        m2, n2 = d.W.shape
        rest = np.flatnonzero(~coupling)
        Wr = d.W[rest].tocsr()
        # rows and columns as one graph: a block is a connected component
        graph = sp.bmat([[None, Wr], [Wr.T, None]], format="csr")
        n_comp, label = connected_components(graph != 0, directed=False)
        row_label, col_label = label[: rest.size], label[rest.size:]
        T, W = d.T.tocsr(), d.W.tocsr()
        binary = d.integer & (d.x_lo >= 0) & (d.x_hi <= 1)
        blocks = []
        for b in range(n_comp):
            rows = rest[row_label == b]
            cols = np.flatnonzero(col_label == b)
            if cols.size == 0:
                if rows.size:  # rows of first-stage columns only: no block to value
                    return None
                continue
            link = np.unique(T[rows].indices)
            if link.size > MAX_BITS or not binary[link].all():
                return None
            blocks.append(_Block(rows, cols, link, W, T))
        if not any(b.link.size for b in blocks):
            return None
        return cls(d, coupling, blocks)

    # -- the master's extra columns ------------------------------------------------------------

    def extra_rows(self) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """Rows over ``[x, z]`` tying the patterns to the plan: ``sum_k z_bk = 1`` per block
        and ``x_j = sum_k v_kj z_bk`` for each block's linking column j."""
        n1, rows, lo = self.n_first, [], []
        for b, block in enumerate(self.blocks):
            start = n1 + self.offsets[b]
            cols = start + np.arange(block.n_copies)
            row = sp.csr_matrix((np.ones(cols.size), (np.zeros(cols.size, int), cols)),
                                shape=(1, n1 + self.n_extra))
            rows.append(row)
            lo.append(1.0)
            for j, col in enumerate(block.link):
                vals = np.concatenate([[1.0], -block.patterns[:, j]])
                idx = np.concatenate([[col], cols])
                rows.append(sp.csr_matrix((vals, (np.zeros(idx.size, int), idx)),
                                          shape=(1, n1 + self.n_extra)))
                lo.append(0.0)
        A = sp.vstack(rows, format="csr")
        bounds = np.array(lo)
        return A, bounds, bounds.copy()

    def extend(self, x: np.ndarray) -> np.ndarray:
        """``[x, z]``: the binary plan ``x`` with each block's pattern marked."""
        z = np.zeros(self.n_extra)
        for b, block in enumerate(self.blocks):
            v = np.round(x[block.link])
            k = int(np.flatnonzero((block.patterns == v).all(axis=1))[0])
            z[self.offsets[b] + k] = 1.0
        return np.concatenate([x, z])

    # -- the cuts ------------------------------------------------------------------------------

    def __call__(self, s: int, duals: np.ndarray) -> tuple[float, np.ndarray]:
        d = self.d
        assert d.rows is not None
        pi = np.asarray(duals)[d.rows][self.coupling]
        lo, hi = d.lo[s], d.hi[s]
        # a dual's sign says which bound it prices; a dual against a bound that is infinite
        # (solver noise) prices nothing
        clo, chi = lo[self.coupling], hi[self.coupling]
        pi = np.where((pi > 0) & np.isfinite(clo), pi, np.where((pi < 0) & np.isfinite(chi),
                                                                pi, 0.0))
        priced = np.where(pi > 0, clo, chi)
        const = float(d.o[s] + pi @ np.where(pi != 0, priced, 0.0))
        coef = np.zeros(self.n_first + self.n_extra)
        coef[: self.n_first] = -(self.Tc.T @ pi)
        cost = d.q[s] - self.Wc.T @ pi
        values = self.copies.values(s, cost, d.y_lo[s], d.y_hi[s], lo, hi, (
            d.q[0], d.y_lo[0], d.y_hi[0], d.lo[0], d.hi[0]))
        for b, vals in enumerate(values):
            finite = np.isfinite(vals)
            if not finite.any():  # no pattern of the block has recourse: no plan has
                raise SolveError("a block of the pattern cuts has no solution at any "
                                 "pattern", "infeasible")
            big = INFEASIBLE_FACTOR * (float(np.abs(vals[finite]).max()) + 1.0)
            coef[self.n_first + self.offsets[b]:
                 self.n_first + self.offsets[b + 1]] = np.where(finite, vals, big)
        return const, coef


def _varies(a: np.ndarray) -> np.ndarray:
    """The columns of the scenario array ``a`` (one row per scenario) not the same in every
    scenario."""
    a = np.atleast_2d(a)
    return np.asarray((a != a[0]).any(axis=0))
