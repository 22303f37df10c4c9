"""The two-stage split of a compiled problem that every part of the L-shaped method reads."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp

from stochplan.errors import SolveError


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
