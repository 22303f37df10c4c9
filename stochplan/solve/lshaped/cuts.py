"""The cuts a valued plan gives the master: optimality cuts per cluster, feasibility cuts,
the integer L-shaped cuts of integer recourse, and a risk measure's cuts."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import scipy.sparse as sp

from stochplan.solve.lshaped import tuning
from stochplan.solve.lshaped.decomposition import Decomposition
from stochplan.solve.lshaped.master import _Master
from stochplan.solve.lshaped.recourse import _Recourse


def _add_cuts(d: Decomposition, master: _Master, x: np.ndarray, parts: list[Any],
              cluster: np.ndarray, C: int) -> tuple[float, int, int]:
    """Rank 0: add the optimality and feasibility cuts of the plan ``x`` to the master.

    Returns the objective of ``x`` (its expected cost, or with a risk measure its mean-CVaR
    value; inf when some scenario has no recourse at it), the number of feasibility cuts added
    and the number of scenarios without recourse.

    With integer recourse valued at an integer plan (each part then also holds its scenarios'
    integer recourse values and bounds, :meth:`_Recourse.solve_integer`), the cuts of the
    recourse's LP relaxation stay (valid: they bound the relaxation, which bounds the integer
    recourse from below), the objective is the integer recourse's, and
    :func:`_integer_cuts` adds the integer L-shaped cuts.
    """
    S, width = len(d.names), d.n_first + master.n_theta
    values = np.empty(S)
    at: np.ndarray | None = None  # the family's cuts' values at x (None: the Benders cuts')
    grads = np.zeros((S, d.link.size))
    int_values = int_bounds = None
    infeasible: dict[int, tuple[float, np.ndarray]] = {}
    inner_values: np.ndarray | None = None
    inner_grads = np.zeros((S, d.link.size))
    for mine, v, cut_v, g, inf, interior, *exact in parts:
        values[mine] = v
        if cut_v is not None:
            if at is None:
                at = np.full(S, math.inf)
            at[mine] = cut_v
        grads[mine] = g
        if interior is not None:
            if inner_values is None:
                inner_values = np.full(S, math.inf)
            inner_values[mine], inner_grads[mine] = interior
        for s, viol, pi in inf:
            infeasible[s] = (viol, pi)
        if exact:
            if int_values is None or int_bounds is None:
                int_values, int_bounds = np.full(S, math.inf), np.full(S, math.inf)
            int_values[mine], int_bounds[mine] = exact

    # optimality cuts: one per cluster whose scenarios all have recourse at x; taken at the
    # interior point where all of them have recourse there too, the plan's own held back
    feasible = np.isfinite(values)
    cut_values = values if at is None else at
    # the family's cuts at x itself are taken only where the interior point has no recourse
    # (see _iterate); elsewhere a scenario's interior cut stands in for it
    skipped = feasible & ~np.isfinite(cut_values)
    if skipped.any():
        assert inner_values is not None
        cut_values = np.where(skipped, inner_values, cut_values)
        grads = np.where(skipped[:, None], inner_grads, grads)
    clusters, lower, own = _cluster_cuts(d, x, cut_values, grads, feasible, cluster, C, width)
    if master.scenarios is not None:
        master.scenarios.add_cuts(x, cut_values, grads, feasible & np.isfinite(cut_values))
    master.activate(clusters)
    if inner_values is not None:
        inner = np.ones(C, bool)
        np.logical_and.at(inner, cluster, feasible & np.isfinite(inner_values))
        ic, il, ir = _cluster_cuts(d, x, inner_values, inner_grads, inner[cluster], cluster, C,
                                   width)
        if master.scenarios is not None:
            master.scenarios.add_cuts(x, inner_values, inner_grads,
                                      feasible & np.isfinite(inner_values))
        master.add_cuts(il, ir, np.full(ic.size, np.inf))
        held = inner[clusters]
        if skipped.any():  # those clusters' own cuts are the interior ones: still owed
            master.owed.add(x.tobytes())
        else:
            master.held[x.tobytes()] = (lower[held], own[held],
                                        np.full(int(held.sum()), np.inf))
        clusters, lower, own = clusters[~held], lower[~held], own[~held]
    master.add_cuts(lower, own, np.full(clusters.size, np.inf))
    value = float(d.c @ x + d.p @ values) if feasible.all() else math.inf
    if master.risk is not None and feasible.all():
        value = _add_risk_cut(d, master, x, values, grads, at)
    if int_values is not None and int_bounds is not None:
        value = (float(d.c @ x + d.p @ int_values) if np.isfinite(int_values).all()
                 else math.inf)
        if feasible.all():
            _integer_cuts(d, master, x, values, int_bounds, cluster, C)

    # feasibility cuts: each infeasible scenario's phase-1 duals pi bound every scenario's
    # violation below by const_s - (T'pi)'x, so (T'pi)'x >= max_s const_s; parallel cuts are
    # merged, keeping the tightest
    n_feas = 0
    if infeasible:
        rows: dict[tuple[float, ...], tuple[np.ndarray, float]] = {}
        TT = d.T[:, d.link].T.tocsr()
        duals: dict[tuple[float, ...], np.ndarray] = {}
        for s in sorted(infeasible):  # scenarios often share their phase-1 duals
            pi = infeasible[s][1]
            duals.setdefault(tuple(np.round(pi, 9)), pi)
        for pi in duals.values():
            g = TT @ pi
            rhs = float(np.max(d.dual_constants(pi)))
            norm = float(np.linalg.norm(g))
            if norm == 0.0:  # infeasible whatever the first stage: 0 >= rhs > 0
                rows[()] = (g, rhs)
                continue
            g, rhs = g / norm, rhs / norm
            key = tuple(np.round(g, 9))
            if key not in rows or rhs > rows[key][1]:
                rows[key] = (g, rhs)
        dense = np.zeros((len(rows), width))
        dense[:, d.link] = np.array([r[0] for r in rows.values()])
        master.add_cuts(np.array([r[1] for r in rows.values()]), sp.csr_matrix(dense),
                        np.full(len(rows), np.inf))
        n_feas = len(rows)
    return value, n_feas, int((~feasible).sum())


def _cluster_cuts(d: Decomposition, x: np.ndarray, values: np.ndarray, grads: np.ndarray,
                  usable: np.ndarray, cluster: np.ndarray, C: int, width: int
                  ) -> tuple[np.ndarray, np.ndarray, sp.csr_matrix]:
    """(clusters, lower bounds, rows) of the optimality cuts ``theta_c >= sum_s p_s (values_s
    + grads_s'(x' - x))`` of the clusters whose scenarios are all ``usable``: each scenario's
    cut has value ``values_s`` at the plan ``x`` and slope ``grads_s`` on the linking
    columns."""
    ok = np.ones(C, bool)
    np.logical_and.at(ok, cluster, usable)
    clusters = np.flatnonzero(ok)
    pv = np.where(usable, d.p * values, 0.0)
    G = _sum_rows(d.p[:, None] * np.where(usable[:, None], grads, 0.0), cluster, C)
    alpha = np.bincount(cluster, weights=pv, minlength=C) - G @ x[d.link]
    dense = np.zeros((clusters.size, width))
    dense[:, d.link] = -G[clusters]
    dense[np.arange(clusters.size), d.n_first + clusters] = 1.0
    return clusters, alpha[clusters], sp.csr_matrix(dense)


def _interior(recourse: _Recourse, d: Decomposition, mine: Sequence[int], x: np.ndarray,
              point: np.ndarray, TT: sp.csr_matrix,
              family: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """This rank's scenarios' optimality cuts taken at ``point`` instead of the plan ``x``:
    each cut's value at ``x`` and its slope on the linking columns (value +inf where the
    scenario has no recourse at ``point``). Each recourse function is convex, so a cut taken
    anywhere bounds it everywhere; with ``family``, the family's own cuts from the duals at
    ``point`` (valid at every integer plan)."""
    Tp = d.T @ point
    values = np.full(len(mine), math.inf)
    grads = np.zeros((len(mine), d.link.size))
    for i, s in enumerate(mine):
        status, value, pi, _y = recourse.solve(s, Tp)
        if status == "optimal" and family:
            values[i], grads[i] = d.family_cut(s, pi, x)
        elif status == "optimal":
            grads[i] = -(TT @ pi)
            values[i] = value + grads[i] @ (x[d.link] - point[d.link])
    return values, grads


def _integer_cuts(d: Decomposition, master: _Master, x: np.ndarray, relaxed: np.ndarray,
                  bounds: np.ndarray, cluster: np.ndarray, C: int) -> int:
    """Rank 0, integer recourse at the binary plan ``x``: Laporte and Louveaux's integer
    L-shaped cuts; returns how many were added.

    With ``delta(x) = sum over x_k's ones of (1 - x_i) + sum over its zeros of x_i`` (0 at
    ``x_k``, at least 1 at any other binary plan), each cluster ``c`` whose integer recourse
    (its scenarios' proven bounds, ``bounds``, times their probabilities: ``B``) lies above
    its relaxation's value at ``x_k`` (``relaxed``) gets ``theta_c >= B - (B - L_c)
    delta(x)``, ``L_c`` a lower bound of the cluster's recourse anywhere (its floor): exact at
    ``x_k``, no constraint elsewhere (a bound of -inf, a recourse MIP stopped by the time
    limit before it had one, gives its cluster no cut). A plan at which some scenario has
    relaxed but no integer recourse (a bound of +inf) is cut off (``delta(x) >= 1``). Only
    for first stages that are all binary; with others the method can stall on a plan already
    valued (it then stops, "stalled").
    """
    if not d.binary_first_stage:
        return 0
    n1, width = d.n_first, d.n_first + master.n_theta
    ones = x > 0.5
    sign = np.where(ones, -1.0, 1.0)  # delta(x) = ones.sum() + sign'x
    rows, lower = [], []
    if np.isposinf(bounds).any():
        rows.append(np.concatenate([sign, np.zeros(master.n_theta)]))
        lower.append(1.0 - float(ones.sum()))
    else:
        B = np.bincount(cluster, weights=d.p * bounds, minlength=C)
        R = np.bincount(cluster, weights=d.p * relaxed, minlength=C)
        L = master.floor[:C]
        tol = 1e-9 * np.maximum(1.0, np.abs(B))
        for c in np.flatnonzero((B > R + tol) & np.isfinite(L)):
            span = float(B[c] - L[c])
            row = np.zeros(width)
            row[:n1] = span * sign
            row[n1 + c] = 1.0
            rows.append(row)
            lower.append(float(B[c]) - span * float(ones.sum()))
    if rows:
        master.add_cuts(np.array(lower), sp.csr_matrix(np.array(rows)),
                        np.full(len(rows), np.inf))
    return len(rows)


def _add_risk_cut(d: Decomposition, master: _Master, x: np.ndarray, values: np.ndarray,
                  grads: np.ndarray, at: np.ndarray | None = None) -> float:
    """Rank 0, with a risk measure: add the CVaR cut of the plan ``x`` (every scenario has
    recourse at it) and return its mean-CVaR value ``rho(x)`` (minimisation form).

    The recourse loss of scenario ``s`` is ``Q_s(x) + (c_s - c)'x`` (the second term only when
    first-stage costs differ between scenarios), so the total loss is ``c'x`` plus it and
    ``CVaR(c'x + loss) = c'x + CVaR(loss)``. With the tail weights ``w`` of :func:`tail_weights`,
    ``CVaR = w'loss`` at ``x`` and, for any plan, ``CVaR >= w'loss(.)`` (``w`` is one feasible
    point of CVaR's dual), so ``theta_R >= w'(loss(x) + g (x' - x))`` with each scenario's
    subgradient ``g_s`` is valid. Ties between scenarios are broken by scenario order, so the
    cut does not depend on the ranks. ``at``: the family's cuts' values at ``x`` (with
    ``grads`` their slopes), which the cuts then take in place of ``values``.
    """
    risk = master.risk
    assert risk is not None
    n1 = d.n_first
    loss = values
    if d.first_cost is not None:
        loss = values + (d.first_cost - d.c) @ x
    w = tail_weights(loss, d.p, risk.alpha)
    cvar = float(w @ loss)
    cut_loss = loss if at is None else loss + (at - values)
    slope = np.zeros(n1)
    slope[d.link] = w @ grads
    if d.first_cost is not None:
        slope += w @ (d.first_cost - d.c)
    row = np.zeros((1, n1 + master.n_theta))
    row[0, :n1] = -slope
    row[0, -1] = 1.0
    theta = np.array([master.n_theta - 1])
    master.activate(theta)
    master.add_cuts(np.array([float(w @ cut_loss) - slope @ x]), sp.csr_matrix(row),
                    np.full(1, np.inf))
    if tuning.TAIL_CUTS:
        # the tail scenarios' own cuts (Rockafellar-Uryasev model, see _Master.add_tail_cuts)
        tail = np.flatnonzero(w > 0)
        slopes = np.zeros((tail.size, n1))
        slopes[:, d.link] = grads[tail]
        if d.first_cost is not None:
            slopes += d.first_cost[tail] - d.c
        a = d.p[tail] / (1.0 - risk.alpha)
        master.add_tail_cuts(tail, a * (cut_loss[tail] - slopes @ x), slopes, a)
    first = float(d.c @ x)
    master.losses = first + loss
    return first + (1.0 - risk.weight) * float(d.p @ loss) + risk.weight * cvar


def tail_weights(loss: np.ndarray, p: np.ndarray, alpha: float) -> np.ndarray:
    """The weights of CVaR's worst tail: ``CVaR_alpha(loss) = w'loss``.

    The largest losses get their probability until the tail holds ``1 - alpha`` (the value at
    risk's scenario the part that completes it), everything divided by ``1 - alpha``: so
    ``w >= 0``, ``sum w = 1`` and ``w <= p / (1 - alpha)``. Equal losses are taken in scenario
    order.

    Examples
    --------
    >>> w = tail_weights(np.array([3.0, 1.0, 2.0, 5.0]), np.full(4, 0.25), 0.6)
    >>> np.round(w, 12).tolist()  # 5 with its 0.25, then 0.15 of the 3, over 0.4
    [0.375, 0.0, 0.0, 0.625]
    """
    order = np.argsort(-np.asarray(loss, float), kind="stable")
    take = np.asarray(p, float)[order]
    before = np.cumsum(take) - take
    share = np.clip(np.minimum(take, (1.0 - alpha) - before), 0.0, None)
    w = np.zeros(take.size)
    w[order] = share / (1.0 - alpha)
    return w


def _cvar_floor(d: Decomposition, floor: np.ndarray, alpha: float) -> float:
    """A lower bound on the CVaR of the recourse losses from the scenarios' floors ``floor``
    (Q_s >= floor_s): CVaR is monotone, so CVaR(floor) when every scenario has the same
    first-stage costs; else CVaR >= E[loss] = E[Q] >= E[floor]. -inf without finite floors."""
    if not np.all(np.isfinite(floor)):
        return -math.inf
    if d.first_cost is None:
        return float(tail_weights(floor, d.p, alpha) @ floor)
    return float(d.p @ floor)


def _sum_rows(values: np.ndarray, groups: np.ndarray, n: int) -> np.ndarray:
    """Row sums of ``values`` per group, in row order (deterministic)."""
    out = np.zeros((n, values.shape[1]))
    np.add.at(out, groups, values)
    return out
