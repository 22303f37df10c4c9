"""The master MIP with one theta per scenario, over block patterns, by branch and bound.

With pattern cuts (:mod:`stochplan.solve.patterns`) every binary plan is one pattern per
block, and each scenario's cut is a sum over the blocks: ``theta_s >= a_sk + sum_b
w_skb[j_b]`` for the patterns ``j_b`` the plan takes. The master MIP over clusters adds the
cuts of a cluster's scenarios taken at one plan, where each scenario alone could take its best
cut of any plan; on lot sizing at 1,000 scenarios that aggregation, not the cuts, is what
holds the bound (``docs/solve-methods.md``). Written with one theta per scenario, the master
is too heavy for HiGHS (tens of thousands of dense rows), but its structure is simple enough
to search directly:

    min  sum_b cost_b[j_b] + sum_s p_s max(floor_s, max_k (a_sk + sum_b w_skb[j_b]))

over one pattern ``j_b`` per block, subject to the first-stage rows and the feasibility cuts
(rows over the plan alone, each a sum over the blocks too). :class:`ScenarioMaster` branches
on the blocks' patterns, depth first: first the blocks that leave fewest children at the root
(by the quick bound below, at the incumbent), then those whose cuts spread most. A node fixes
some blocks; for the free ones each cut takes its least value over their patterns, so
``base_ks = a_sk + sum_fixed w_skb[j_b] + sum_free min_j w_skb[j]`` bounds cut ``k`` of
scenario ``s`` below at every plan under the node, and ``sum_s p_s max_k base_ks`` (with the
cost part bounded the same way) bounds the node. A child's bound is first taken with each
scenario's cut that is largest at the parent (one cut per scenario, not all of them): most
children are pruned on it, and only the others pay for the whole table. The first-stage rows
prune a child when no completion can meet them.

Measured on the cuts of a lot-sizing run (furniture ``poisson:1000``, 9 products of 16
patterns; the exact optimum of the same master, which HiGHS takes 480 s to solve to
0.025 %): 51 cut sets, 98,000 nodes in 18 s; 97 cut sets, 83,000 nodes in 24 s; against
174 s and 295 s with every child's whole bound computed. Branching first on the blocks that
leave fewest children (the rest as before) took the 2nd and 4th master of a run (39 and 57 cut
sets, started from the best plan) from 90,800 to 75,200 nodes and from 118,500 to 78,900,
17.4 s to 13.3 s and 26.3 s to 17.9 s. In the method (one rank, gap target 0.1 %,
``poisson:1000``): 6 master solves in 92 s and the target reached in 237 s (5 in 109 s and
252 s with the order by spread alone, one run each in the same session).

It applies when the family's cuts are pattern cuts, every first-stage column belongs to a
block (or is one of the pattern columns), the blocks' columns are disjoint and as many in every
block, the objective is the expectation (no risk measure) and the recourse is continuous;
:meth:`ScenarioMaster.build` returns None otherwise, and the master MIP over clusters is
solved by HiGHS as before. Its node bounds are weaker than an LP's: what it gains comes from
each scenario's own cuts, and it is measured on lot sizing only.
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp

from stochplan.solve.lshaped.decomposition import Decomposition

#: Nodes between two looks at the clock.
CLOCK_NODES = 500


class ScenarioMaster:
    """Every scenario's cuts as tables over the blocks' patterns, and the branch and bound
    that solves the master over them (minimisation, as the L-shaped method's master).

    ``X[b, j]`` is pattern ``j`` of block ``b`` written over the first stage (its block's
    columns and its pattern column); a plan is ``sum_b X[b, j_b]``.
    """

    def __init__(self, d: Decomposition, X: np.ndarray) -> None:
        self.d = d
        self.X = X  # (blocks, patterns, first-stage columns)
        self.P, self.J = X.shape[:2]
        self.cost = np.einsum("n,bjn->bj", d.c, X)
        self.floor = d.recourse_floor()
        #: the cut sets, in arrays that grow by doubling: intercepts ``a[k, s]`` (-inf: no
        #: cut), each block's least coefficient ``low[b, k, s]`` over its patterns, and each
        #: pattern's rise above it ``rise[b, j, k, s]`` (one copy of the tables, kept as the
        #: search reads them)
        self.K = 0
        S = d.p.size
        self._a = np.empty((0, S))
        self._low = np.empty((self.P, 0, S))
        self._rise = np.empty((self.P, self.J, 0, S))
        A1 = d.A1.tocsr()
        self.rows = np.einsum("rn,bjn->rbj", A1.toarray(), X) if A1.shape[0] else \
            np.zeros((0, self.P, self.J))
        self.rows_lo, self.rows_hi = np.asarray(d.a_lo, float), np.asarray(d.a_hi, float)
        self._keep_binding_rows()
        self.nodes = 0  # nodes of the last search

    @classmethod
    def build(cls, d: Decomposition) -> ScenarioMaster | None:
        """The scenario master of ``d``, or None where it does not apply (see the module)."""
        from stochplan.solve.patterns import PatternCuts

        cuts = d.cuts
        if not isinstance(cuts, PatternCuts) or d.n_plan is None or d.integer_recourse:
            return None
        n_plan, n1 = d.n_plan, d.n_first
        blocks = [b for b in cuts.blocks if b.link.size]
        if len(blocks) != len(cuts.blocks):
            return None
        owner = np.full(n_plan, -1)
        for i, b in enumerate(blocks):
            if (owner[b.link] >= 0).any():
                return None
            owner[b.link] = i
        if (owner < 0).any():
            return None
        width = max(b.n_copies for b in blocks)
        if any(b.n_copies != width for b in blocks):
            return None
        X = np.zeros((len(blocks), width, n1))
        for i, b in enumerate(blocks):
            X[i][:, b.link] = b.patterns
            X[i][np.arange(width), n_plan + cuts.offsets[i] + np.arange(width)] = 1.0
        return cls(d, X)

    def _keep_binding_rows(self) -> None:
        """Drop the rows that every combination of patterns meets (the pattern rows)."""
        lo = self.rows.min(axis=2).sum(axis=1)
        hi = self.rows.max(axis=2).sum(axis=1)
        tol = 1e-9 * (1.0 + np.abs(np.where(np.isfinite(self.rows_lo), self.rows_lo, 0.0)))
        keep = (lo < self.rows_lo - tol) | (hi > self.rows_hi + tol)
        self.rows, self.rows_lo, self.rows_hi = (self.rows[keep], self.rows_lo[keep],
                                                 self.rows_hi[keep])

    def add_cuts(self, x: np.ndarray, values: np.ndarray, grads: np.ndarray,
                 usable: np.ndarray) -> None:
        """One cut per scenario: ``theta_s >= values_s + grads_s'(x' - x)`` over the linking
        columns, for the scenarios ``usable``."""
        if not usable.any():  # a cut set without a cut would cost every node its row
            return
        d = self.d
        a = np.where(usable, values - grads @ x[d.link], -np.inf)
        g = np.where(usable[:, None], grads, 0.0)
        table = np.einsum("sl,bjl->bjs", g, self.X[:, :, d.link])  # (P, J, S)
        low = table.min(axis=1)
        if self.K == self._a.shape[0]:  # full: double the room
            room = max(8, 2 * self.K)
            self._a = _grown(self._a, room, 0)
            self._low = _grown(self._low, room, 1)
            self._rise = _grown(self._rise, room, 2)
        k = self.K
        self._a[k] = a
        self._low[:, k] = low
        self._rise[:, :, k] = table - low[:, None]
        self.K += 1

    def add_rows(self, lower: np.ndarray, coef: sp.spmatrix, upper: np.ndarray) -> None:
        """Rows ``lower <= coef x <= upper`` over the first stage alone (feasibility cuts)."""
        F = np.einsum("rn,bjn->rbj", sp.csr_matrix(coef).toarray(), self.X)
        self.rows = np.concatenate([self.rows, F])
        self.rows_lo = np.concatenate([self.rows_lo, lower])
        self.rows_hi = np.concatenate([self.rows_hi, upper])
        self._keep_binding_rows()

    def plan(self, picks: list[int]) -> np.ndarray:
        """The first stage of one pattern per block."""
        return self.X[np.arange(self.P), picks].sum(axis=0)

    def picks(self, x: np.ndarray) -> list[int] | None:
        """The pattern of each block in the plan ``x`` (None: ``x`` is no such plan)."""
        out = []
        for b in range(self.P):
            hit = np.flatnonzero(np.all(np.abs(self.X[b] - x) * (self.X[b].any(axis=0))
                                        < 1e-6, axis=1))
            if hit.size != 1:
                return None
            out.append(int(hit[0]))
        return out

    def solve(self, rel_gap: float, time_limit: float | None, start: np.ndarray | None = None,
              stop_at: float = math.inf) -> tuple[str, float, float, np.ndarray | None,
                                                  list[np.ndarray]]:
        """(status, proven bound, incumbent value, incumbent plan, plans found) of the master,
        as :meth:`~stochplan.solve.lshaped.master._Master.solve_mip` has them.

        Nodes whose bound is within ``rel_gap`` of the incumbent (relative, as HiGHS's), or
        at least ``stop_at`` (the bound that closes the method's gap), are pruned; the proven
        bound is the least of the incumbent and the bounds of the nodes pruned or left open.
        Status ``"closed"`` when that bound reaches ``stop_at``, ``"time_limit"`` when the
        search ran out of time, else ``"optimal"``. The plans found are the incumbents in the
        order found (each better than the last).
        """
        t0 = time.perf_counter()
        deadline = math.inf if time_limit is None else t0 + time_limit
        p = self.d.p
        S, P = p.size, self.P
        K = self.K
        a, low = self._a[:K], self._low[:, :K]  # (K, S), (P, K, S)
        rise = [self._rise[b, :, :K] for b in range(P)]  # (J, K, S) each
        if K == 0:  # no cut yet: one cut set without a cut, so that every array has a row
            K, a, low = 1, np.full((1, S), -np.inf), np.zeros((P, 1, S))
            rise = [np.zeros((self.J, 1, S)) for _ in range(P)]
        # a scenario without a cut yet counts 0, as a cluster's theta does in the master MIP
        # until it has one (the method takes no bound from such a master)
        floor = np.where(np.isfinite(a).any(axis=0), self.floor, 0.0)
        cost, cost_low = self.cost, self.cost.min(axis=1)
        F, lo, hi = self.rows, self.rows_lo, self.rows_hi
        F_min, F_max = F.min(axis=2), F.max(axis=2)  # (R, P)
        every = np.arange(S)
        flat = [r.reshape(self.J, K * S) for r in rise]  # rise[b][j, k, s] at k * S + s

        def model(base: np.ndarray) -> float:
            return float(p @ np.maximum(base.max(axis=0), floor))

        def meets(picks: list[int]) -> bool:
            total = F[:, np.arange(P), picks].sum(axis=1)
            return bool(np.all(total >= lo - 1e-7) and np.all(total <= hi + 1e-7))

        best, best_picks = math.inf, None
        found: list[np.ndarray] = []
        if start is not None:
            picks = self.picks(start)
            if picks is not None and meets(picks):
                base = a + low.sum(axis=0) + sum(rise[b][j] for b, j in enumerate(picks))
                best, best_picks = float(cost[np.arange(P), picks].sum()) + model(base), picks

        def prune_at() -> float:
            if not math.isfinite(best):
                return stop_at
            return min(best - rel_gap * max(1.0, abs(best)), stop_at)

        pruned = math.inf  # least bound of a node pruned below the incumbent

        def prune(bound: float) -> bool:
            nonlocal pruned
            if bound < prune_at():
                return False
            if bound < best:
                pruned = min(pruned, bound)
            return True

        def prune_all(bounds: np.ndarray) -> np.ndarray:
            nonlocal pruned
            out = bounds >= prune_at()
            below = bounds[out & (bounds < best)]
            if below.size:
                pruned = min(pruned, float(below.min()))
            return out

        def quick(base: np.ndarray, top: np.ndarray, fixed: float, b: int) -> np.ndarray:
            # the children's bounds from each scenario's cut ``top`` alone
            at = top * S + every
            return fixed - cost_low[b] + cost[b] + np.maximum(
                base.ravel()[at][None] + flat[b][:, at], floor) @ p

        root = a + low.sum(axis=0)
        root_top = root.argmax(axis=0)
        fixed0 = float(cost_low.sum())
        # branch first on the blocks that leave fewest children at the root (by the quick
        # bound at the incumbent), then on those whose patterns' coefficients spread most: a
        # block with one child left costs a node per node above it if it comes late
        left = [int(np.sum(quick(root, root_top, fixed0, b) < prune_at())) for b in range(P)]
        spread = [float(r.max(axis=0).mean()) for r in rise]
        order = sorted(range(P), key=lambda b: (left[b], -spread[b]))
        stack: list[tuple[float, int, np.ndarray, np.ndarray, float, dict[int, int],
                          np.ndarray, np.ndarray]] = [
            (fixed0 + model(root), 0, root, root_top, fixed0, {}, F_min.sum(axis=1),
             F_max.sum(axis=1))]
        status, nodes = "optimal", 0
        while stack:
            node = stack.pop()
            bound, depth, base, top, fixed, chosen, f_min, f_max = node
            if prune(bound):
                continue
            nodes += 1
            if nodes % CLOCK_NODES == 0 and time.perf_counter() > deadline:
                stack.append(node)
                status = "time_limit"
                break
            b = order[depth]
            fixed_j = fixed - cost_low[b] + cost[b]  # (J,)
            # each child's rows at their least and greatest over the free blocks
            kid_min = f_min[:, None] - F_min[:, b][:, None] + F[:, b, :]
            kid_max = f_max[:, None] - F_max[:, b][:, None] + F[:, b, :]
            can = np.all(kid_max >= lo[:, None] - 1e-7, axis=0) & np.all(
                kid_min <= hi[:, None] + 1e-7, axis=0)
            able = np.flatnonzero(can)
            able = able[~prune_all(quick(base, top, fixed, b)[able])]
            kids: list[tuple[float, int, np.ndarray, np.ndarray]] = []
            for k in able:
                child = base + rise[b][k]
                child_top = child.argmax(axis=0)  # each scenario's largest cut there
                child_bound = float(fixed_j[k]) + float(
                    p @ np.maximum(child.ravel()[child_top * S + every], floor))
                if not prune(child_bound):
                    kids.append((child_bound, int(k), child, child_top))
            if depth == P - 1:
                for child_bound, j, _child, _top in sorted(kids, key=lambda kid: kid[0]):
                    picks = [{**chosen, b: j}[r] for r in range(P)]
                    if child_bound < best and meets(picks):
                        best, best_picks = child_bound, picks
                        found.append(self.plan(picks))
                continue
            for child_bound, j, child, child_top in sorted(kids, key=lambda kid: -kid[0]):
                stack.append((child_bound, depth + 1, child, child_top, float(fixed_j[j]),
                              {**chosen, b: j}, kid_min[:, j], kid_max[:, j]))
        self.nodes = nodes
        proven = min([best, pruned] + [node[0] for node in stack])
        if proven >= stop_at:
            return "closed", proven, math.inf, None, found
        if best_picks is None:
            return ("time_limit" if status == "time_limit" else "infeasible"), proven, \
                math.inf, None, found
        return status, proven, best, self.plan(best_picks), found


def _grown(array: np.ndarray, room: int, axis: int) -> np.ndarray:
    """``array`` with its ``axis`` enlarged to ``room`` (the new part uninitialised)."""
    shape = list(array.shape)
    shape[axis] = room
    out = np.empty(shape)
    index = tuple(slice(0, n) for n in array.shape)
    out[index] = array
    return out
