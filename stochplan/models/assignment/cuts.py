r"""Lagrangian optimality cuts of the offers, for the integer L-shaped method's master.

The L-shaped method bounds each scenario's recourse by cuts taken from LP duals at the plans
it values (:mod:`stochplan.solve.lshaped`). Those cuts are tight at their plan and often weak at
the next binary plan: the master then keeps proposing plans it overvalues, and its bound
closes slowly. With binary offers this family knows its recourse better.

Dualise only the ``capacity`` rows, with multipliers ``u_j >= 0`` (one per producer). What is
left splits by order: an order offered to producer j is accepted (``a = xi x``, forced by the
rows) or, rejected, reassigned to at most one other producer, the best for it at the prices
``u``; an order not offered ships nothing. So for every binary plan with each order offered at
most once (the first-stage row ``offer_once``), in minimisation form (costs ``c_a``, ``c_z`` of
the columns a and z, constant ``o``, order value v_i, capacity C_j)::

    Q_s(x) >= o_s - sum_j u_j C_j + sum_{(i,j)} x_ij [ xi_ijs (c_a,ij + u_j v_i)
                                                      + (1 - xi_ijs) b_ij(u) ]
    b_ij(u) = min(0, min over k != j compatible with i of (c_z,ik + u_k v_i))

whatever ``u >= 0`` (the Lagrangian relaxation bounds the minimum from below), and with ``u``
the capacity rows' optimal duals at a binary plan it holds with equality there (the rest is
an LP whose optimum is that choice, so the Lagrangian dual closes). The cut is linear in x:
one row per scenario, as a Benders cut, but it prices every other offer of every order
exactly at those prices, where the Benders cut from the same duals keeps the dual of the plan
it was taken at. It bounds binary reassignments too (they are worth no more than relaxed
ones). It holds only at binary plans, so it serves the master MIP, never its LP relaxation.

On laser ``sample:200`` with relaxed reassignments the L-shaped method reaches 0.1 % with
these cuts in under 10 s, where with its own it stood at 0.15 % after 300 s (figures in
:mod:`stochplan.solve.lshaped`, "Integer first stages", and ``benchmarks/RESULTS.md``).

Which options: binary offers, and either capacity rows (``capacity = "gap"``, any gap weight,
reassignment cost or reassignment acceptance) or no row coupling the orders
(``capacity = "none"`` without a gap weight: the cut is then exact everywhere). With
``capacity = "none"`` and a gap weight the gap columns couple the orders as well, and there
are no such cuts (:func:`offer_cuts` returns None).
"""

from __future__ import annotations

from typing import Any

import numpy as np


class OfferCuts:
    """The cuts of :mod:`.cuts` for one set of scenarios, in the layout of
    :func:`.model.scenario_arrays` (its columns and rows).

    Call it with a scenario's position ``s`` and the row duals of its recourse LP (HiGHS's,
    minimisation form, over every row of the arrays; first-stage rows are ignored): it returns
    ``(constant, coefficients)`` with ``Q_s(x) >= constant + coefficients @ x`` for every
    binary plan ``x`` (the first-stage columns) that offers each order at most once.
    """

    def __init__(self, *, order: np.ndarray, xcol: np.ndarray, cost_a: np.ndarray,
                 cost_z: np.ndarray, volume: np.ndarray, willing: np.ndarray,
                 offset: np.ndarray, capacity_row: np.ndarray | None,
                 capacity: np.ndarray | None, n_first: int) -> None:
        # pairs sorted by order so that each order's pairs are one run (reduceat)
        sort = np.argsort(order, kind="stable")
        self.order = order[sort]
        starts = np.flatnonzero(np.r_[True, self.order[1:] != self.order[:-1]])
        self.starts = starts
        self.run = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, order.size]))
        self.xcol = xcol[sort]
        self.cost_a = cost_a[sort]
        self.cost_z = cost_z[sort]
        self.volume = volume[sort]
        self.willing = willing[:, sort]
        self.offset = offset
        self.capacity = capacity  # the right-hand side of each capacity row, in row order
        self.rows = None if capacity_row is None else np.unique(capacity_row)
        self.pos = None if capacity_row is None or self.rows is None else np.searchsorted(
            self.rows, capacity_row[sort])  # each pair's capacity row among ``rows``
        self.n_first = n_first

    def __call__(self, s: int, duals: np.ndarray) -> tuple[float, np.ndarray]:
        const = float(self.offset[s])
        if self.rows is None or self.pos is None or self.capacity is None:
            price = np.zeros(self.order.size)
        else:
            u = np.maximum(0.0, -np.asarray(duals, dtype=float)[self.rows])  # $ per $ of gap
            price = u[self.pos] * self.volume
            const -= float(u @ self.capacity)
        # each order's best and second-best reassignment at these prices (0: none)
        e = np.minimum(0.0, self.cost_z + price)
        best = np.minimum.reduceat(e, self.starts)
        first = _first_argmin(e, best, self.run)
        masked = e.copy()
        masked[first] = 0.0
        second = np.minimum.reduceat(masked, self.starts)
        alt = best[self.run]
        alt[first] = second
        xi = self.willing[s]
        coef = np.zeros(self.n_first)
        coef[self.xcol] = xi * (self.cost_a + price) + (1.0 - xi) * alt
        return const, coef


def _first_argmin(e: np.ndarray, best: np.ndarray, run: np.ndarray) -> np.ndarray:
    """Position of the first minimum of each run of ``e`` (``run``: each entry's run,
    ``best``: each run's minimum)."""
    hit = e == best[run]
    idx = np.flatnonzero(hit)
    _, first = np.unique(run[idx], return_index=True)
    return idx[first]


def offer_cuts(inst: Any, arrays: dict[str, Any], pair_cols: dict[str, np.ndarray],
               willing: np.ndarray, capacity_rows: np.ndarray | None,
               capacity: np.ndarray | None) -> OfferCuts | None:
    """The cuts for the scenario arrays ``arrays`` of :func:`.model.scenario_arrays`
    (``pair_cols``: the x, a and z column of each compatible pair, in the pairs' order;
    ``willing``: the acceptances per scenario and pair; ``capacity_rows``: each pair's
    ``capacity`` row, None without capacity rows; ``capacity``: those rows' right-hand
    sides); None where the options allow none (see the module docstring)."""
    opts = inst.options
    if not opts.integer:
        return None
    if opts.capacity == "none" and opts.gap_weight > 0:
        return None
    pi, _pj = inst.pair_positions
    cost = np.asarray(arrays["cost"])[0]  # the costs are the same in every scenario
    return OfferCuts(
        order=np.asarray(pi), xcol=pair_cols["x"], cost_a=cost[pair_cols["a"]],
        cost_z=cost[pair_cols["z"]], volume=np.asarray(inst.value, dtype=float)[pi],
        willing=np.asarray(willing, dtype=float), offset=np.asarray(arrays["offset"], float),
        capacity_row=capacity_rows, capacity=capacity, n_first=int(arrays["n_first"]))
