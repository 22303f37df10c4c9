r"""Two-stage order assignment under stochastic acceptance.

The system of seed 004 (laser-cutting orders matched to producers): orders are offered to
producers in the morning; each producer accepts an order offered to it only with some
probability; a rejected order may be offered once more, to another producer. One scenario
model is built by :func:`build_model`; the recourse problem's extensive form, the mean-value
problem, EEV and wait-and-see solves and PH subproblems all call it, only the data changes.

Formulation
-----------
Sets: orders :math:`i` (those some producer can make), producers :math:`j`, and the
compatible pairs :math:`A`: (i, j) is in A when j offers every operation i requires and i's x
and y dimensions lie within j's minimum and maximum. Data: order value v_i ($), Euclidean
client-producer distance d_ij (map units, charged $1 each), volume gap
g_j = max(0, target_j - current_j) ($), capacity C_j = g_j (``options.capacity = "gap"``; no
capacity rows with ``"none"``), acceptance rate r_ij (the producer's rate, or a predicted pair
rate).

First stage (before the day's answers are known), per compatible pair:

- ``x[i,j]`` in {0, 1}: order i offered to producer j (in [0, 1] when ``options.integer`` is
  off)

Random data of a scenario s: ``xi[i,j]`` in {0, 1}, whether j would accept i if offered it
(Bernoulli(r_ij), independent per pair and scenario; fractional in the mean-value problem).

Second stage, per scenario and compatible pair:

- ``a[i,j]`` in [0, xi[i,j]]: the offer of i to j accepted (= xi x, by the rows below)
- ``z[i,j]`` in {0, 1}: rejected order i reassigned to j (in [0, 1] when
  ``options.recourse_integer`` or ``options.integer`` is off)
- ``G[j]`` >= 0: volume gap left open at j, only with ``capacity = "none"`` and a gap weight
  (indexed ``("gap", j)`` so that every variable has the plan's two index columns)

Constraints::

    offer_once          sum_j x[i,j] <= 1                                     (per i)
    offer_capacity      sum_i v_i x[i,j] <= C_j                               (per j)
    accepted_offer      a[i,j] <= x[i,j]
    accepted_if_willing x[i,j] - a[i,j] <= 1 - xi[i,j]
    reassign_rejected   sum_j z[i,j] <= sum_j (x[i,j] - a[i,j])               (per i)
    not_to_rejecter     z[i,j] + x[i,j] <= 1
    capacity            sum_i v_i (a[i,j] + z[i,j]) <= C_j                    (per j)
    open_gap            G[j] >= g_j - sum_i v_i (a[i,j] + q[i,j] z[i,j])      (per j)

With x binary the first two second-stage rows and the bound a <= xi make a = xi x exactly,
also for a fractional xi (the mean-value problem). A reassigned order goes to a producer it
was not offered to; an order is reassigned only when its offer was rejected. q[i,j] = 1
(``options.reassignment = "certain"``: the reassignment is accepted for certain) or r_ij
(``"rate"``: accepted with the new producer's rate, revealed after the reassignment is made,
so its expected profit is counted; capacity counts the whole offer).

Objective (maximise expected profit, $; ``options.sense == "min"`` minimises its negative)::

    FirstStageCost    = 0                      (offers cost nothing until shipped)
    Shipped           = sum_A (v_i - d_ij) (a[i,j] + q[i,j] z[i,j])
    SecondStageProfit = Shipped - c sum_A z[i,j] - w OpenGap
    Profit            = SecondStageProfit - FirstStageCost

c = ``options.reassignment_cost`` ($ per order reassigned), w = ``options.gap_weight`` ($ per
$ of gap left open). OpenGap = sum_j (g_j - sum_i v_i (a + q z)) with ``capacity = "gap"``
(shipments never exceed the gap, so this is the gap left open exactly) and sum_j G[j] with
``"none"``. Orders not shipped are lost. The data enter only bounds (a <= xi) and
right-hand sides (1 - xi): the recourse matrix is fixed, so the matrix backend's affine data
map applies; the recourse is complete (z = 0 is always feasible).

How it differs from the public code
-----------------------------------
The public code maximises sum (r'_j v_i - d_ij) v_i / max v over compatible pairs with every
compatible order assigned exactly once and no capacity, ten times on shuffled data with rates
r' perturbed by +-5 %, then draws acceptances (unseeded) and reassigns rejected orders to
their best remaining producer by the same objective, round after round. Uncertainty is a
simulation after the decision, and the volume gaps never enter it. Here the offers are chosen
knowing that the answers are random and that a rejected order can be placed once more;
:mod:`.simulate` reimplements the public heuristic (seeded) to compare on the same days.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from stochplan.models.assignment.data import AssignmentInstance

#: First-stage variables.
FIRST_STAGE = ("x",)
#: Second-stage variables per scenario (``G`` only with ``capacity = "none"`` and a gap weight).
SECOND_STAGE = ("a", "z", "G")
#: Index names of the plan and of the recourse table (``G`` carries ``"gap"`` as its order).
INDEX_NAMES = ("order", "producer")


def build_model(inst: AssignmentInstance, data: np.ndarray,
                name: str = "scenario") -> pyo.ConcreteModel:
    """The model of one scenario: the offers plus the recourse for acceptances ``data``.

    Parameters
    ----------
    inst : AssignmentInstance
        Data and options (``inst.options``).
    data : ndarray, shape (O, P)
        xi[i,j] in [0, 1]: whether producer j accepts order i if offered it (0/1 in a
        scenario, a probability in the mean-value problem); incompatible pairs are ignored.
    name : str
        Model name (the scenario name).

    Returns
    -------
    pyomo.environ.ConcreteModel
        With expressions ``FirstStageCost`` (0, $), ``Shipped``, ``ReassignmentCost``,
        ``GapPenalty``, ``SecondStageProfit`` and ``Profit`` ($), and the objective
        ``objective`` (``Profit`` maximised, or ``-Profit`` minimised when
        ``options.sense == "min"``). No mpi-sppy annotations.
    """
    xi = np.asarray(data, dtype=float)
    if xi.shape != (inst.n_orders, inst.n_producers):
        from stochplan.errors import InputError

        raise InputError("scenario data", f"shape {xi.shape}",
                         f"expected ({inst.n_orders}, {inst.n_producers})", inst.source or None)
    m = pyo.ConcreteModel(name=name)
    m.I = pyo.Set(initialize=inst.orders, ordered=True)
    m.J = pyo.Set(initialize=inst.producers, ordered=True)
    m.A = pyo.Set(dimen=2, ordered=True, initialize=inst.pairs, doc="compatible pairs")
    pairs = _Pairs(inst)
    _add_offers(m, inst, pairs)
    _add_acceptance(m, pairs, xi)
    _add_reassignment(m, inst, pairs)
    _add_capacity(m, inst, pairs)
    _add_objective(m, inst, pairs)
    return m


class _Pairs:
    """Per-pair and per-producer numbers keyed by ids, for the builder's rules."""

    def __init__(self, inst: AssignmentInstance) -> None:
        i, j = inst.pair_positions
        self.pos = {pair: (a, b) for pair, a, b in zip(inst.pairs, i, j)}
        self.value = {o: float(inst.value[k]) for k, o in enumerate(inst.orders)}
        self.distance = {pair: float(inst.distance[a, b]) for pair, (a, b) in self.pos.items()}
        self.rate = {pair: float(inst.rates[a, b]) for pair, (a, b) in self.pos.items()}
        self.gap = {p: float(inst.gap[k]) for k, p in enumerate(inst.producers)}
        self.by_order: dict[int, list[tuple[int, int]]] = {o: [] for o in inst.orders}
        self.by_producer: dict[int, list[tuple[int, int]]] = {p: [] for p in inst.producers}
        for o, p in inst.pairs:
            self.by_order[o].append((o, p))
            self.by_producer[p].append((o, p))
        certain = inst.options.reassignment == "certain"
        self.q = {pair: 1.0 if certain else self.rate[pair] for pair in self.pos}


def _add_offers(m: pyo.ConcreteModel, inst: AssignmentInstance, data: _Pairs) -> None:
    domain = pyo.Binary if inst.options.integer else pyo.UnitInterval
    m.x = pyo.Var(m.A, domain=domain, bounds=(0.0, 1.0), doc="order i offered to producer j")

    # sum_j x[i,j] <= 1
    @m.Constraint(m.I)
    def offer_once(m, i):
        return sum(m.x[pair] for pair in data.by_order[i]) <= 1

    if inst.options.capacity == "gap":
        # sum_i v_i x[i,j] <= C_j
        @m.Constraint(m.J)
        def offer_capacity(m, j):
            if not data.by_producer[j]:
                return pyo.Constraint.Skip
            return (sum(data.value[o] * m.x[o, p] for o, p in data.by_producer[j])
                    <= data.gap[j])


def _add_acceptance(m: pyo.ConcreteModel, data: _Pairs, xi: np.ndarray) -> None:
    willing = {pair: float(xi[a, b]) for pair, (a, b) in data.pos.items()}
    m.a = pyo.Var(m.A, domain=pyo.NonNegativeReals, bounds=lambda m, i, j: (0.0, willing[i, j]),
                  doc="offer of i to j accepted")

    # a[i,j] <= x[i,j]
    @m.Constraint(m.A)
    def accepted_offer(m, i, j):
        return m.a[i, j] <= m.x[i, j]

    # x[i,j] - a[i,j] <= 1 - xi[i,j]
    @m.Constraint(m.A)
    def accepted_if_willing(m, i, j):
        return m.x[i, j] - m.a[i, j] <= 1.0 - willing[i, j]


def _add_reassignment(m: pyo.ConcreteModel, inst: AssignmentInstance, data: _Pairs) -> None:
    binary = inst.options.integer and inst.options.recourse_integer
    m.z = pyo.Var(m.A, domain=pyo.Binary if binary else pyo.UnitInterval, bounds=(0.0, 1.0),
                  doc="rejected order i reassigned to j")

    # sum_j z[i,j] <= sum_j (x[i,j] - a[i,j])
    @m.Constraint(m.I)
    def reassign_rejected(m, i):
        pairs = data.by_order[i]
        return sum(m.z[pair] for pair in pairs) <= sum(m.x[pair] - m.a[pair] for pair in pairs)

    # z[i,j] + x[i,j] <= 1
    @m.Constraint(m.A)
    def not_to_rejecter(m, i, j):
        return m.z[i, j] + m.x[i, j] <= 1


def _add_capacity(m: pyo.ConcreteModel, inst: AssignmentInstance, data: _Pairs) -> None:

    def shipped_volume(m: pyo.ConcreteModel, j: int, q: dict[tuple[int, int], float]) -> Any:
        return sum(data.value[o] * (m.a[o, p] + q[o, p] * m.z[o, p])
                   for o, p in data.by_producer[j])

    m.ShippedVolume = pyo.Expression(
        m.J, rule=lambda m, j: shipped_volume(m, j, data.q) if data.by_producer[j] else 0.0,
        doc="expected order value shipped by j, $")
    if inst.options.capacity == "gap":
        ones = dict.fromkeys(data.pos, 1.0)

        # sum_i v_i (a[i,j] + z[i,j]) <= C_j
        @m.Constraint(m.J)
        def capacity(m, j):
            if not data.by_producer[j]:
                return pyo.Constraint.Skip
            return shipped_volume(m, j, ones) <= data.gap[j]

    if inst.options.capacity == "none" and inst.options.gap_weight > 0:
        m.GJ = pyo.Set(dimen=2, ordered=True, initialize=[("gap", p) for p in inst.producers])
        m.G = pyo.Var(m.GJ, domain=pyo.NonNegativeReals,
                      bounds=lambda m, g, j: (0.0, data.gap[j]), doc="volume gap left open")

        # G[j] >= g_j - sum_i v_i (a[i,j] + q[i,j] z[i,j])
        @m.Constraint(m.GJ)
        def open_gap(m, g, j):
            return m.G[g, j] >= data.gap[j] - m.ShippedVolume[j]


def _add_objective(m: pyo.ConcreteModel, inst: AssignmentInstance, data: _Pairs) -> None:
    opts = inst.options
    m.FirstStageCost = pyo.Expression(expr=0.0)
    m.Shipped = pyo.Expression(expr=sum(
        (data.value[i] - data.distance[i, j]) * (m.a[i, j] + data.q[i, j] * m.z[i, j])
        for i, j in m.A))
    m.ReassignmentCost = pyo.Expression(expr=opts.reassignment_cost * sum(m.z[p] for p in m.A))
    if opts.gap_weight == 0:
        open_gap: Any = 0.0
    elif opts.capacity == "gap":
        open_gap = sum(data.gap.values()) - sum(m.ShippedVolume[j] for j in m.J)
    else:
        open_gap = sum(m.G[g] for g in m.GJ)
    m.GapPenalty = pyo.Expression(expr=opts.gap_weight * open_gap)
    m.SecondStageProfit = pyo.Expression(expr=m.Shipped - m.ReassignmentCost - m.GapPenalty)
    m.Profit = pyo.Expression(expr=m.SecondStageProfit - m.FirstStageCost)
    if opts.sense == "max":
        m.objective = pyo.Objective(expr=m.Profit, sense=pyo.maximize)
    else:
        m.objective = pyo.Objective(expr=-m.Profit, sense=pyo.minimize)


def scenario_arrays(inst: AssignmentInstance, scenarios: Any) -> dict[str, Any] | None:
    """The scenario models of :func:`build_model` as arrays, written without Pyomo.

    The same rows, columns, coefficients, bounds and costs (minimisation form) that
    :func:`stochplan.solve.matrix.compile_scenarios` makes of the Pyomo models of
    ``scenarios`` (``tests/models/test_assignment_arrays.py`` compares them entry by entry,
    for every option). Columns: x over the compatible pairs sorted by (order, producer)
    (mpi-sppy's order of the nonanticipative variables), then a and z over the pairs in
    :attr:`~.data.AssignmentInstance.pairs` order, then G over the producers (only with
    ``capacity = "none"`` and a gap weight). Rows in the builder's order, each ``<=``:
    ``offer_once`` (per order), ``offer_capacity`` (per producer with a compatible order;
    ``capacity = "gap"``), ``accepted_offer`` (a - x <= 0), ``accepted_if_willing``
    (x - a <= 1 - xi), ``reassign_rejected`` (sum z - sum x + sum a <= 0, per order),
    ``not_to_rejecter`` (z + x <= 1), ``capacity`` (as ``offer_capacity``, on a and z) and
    ``open_gap`` (-sum v (a + q z) - G <= -g, per producer). Only the rows
    ``accepted_if_willing`` (right-hand side 1 - xi) and the bounds a <= xi differ between
    scenarios. The objective is -Profit (costs in $), its constant the gap weight times the
    total gap (``capacity = "gap"``).

    Coefficients are formed as Pyomo forms them (the same products, summed in the same
    order), so that they are equal to the last bit, not only close.

    Parameters
    ----------
    inst : AssignmentInstance
        Data and options.
    scenarios : ScenarioSet
        Acceptances ``data`` (S, O, P) (0/1, or fractional in the mean-value problem) and
        ``names``.

    Returns
    -------
    dict
        The keys of :meth:`stochplan.family.Family.scenario_arrays` (every option is
        covered, so never None), ``cuts`` among them: the Lagrangian cuts of the offers
        (:class:`.cuts.OfferCuts`; None where the options allow none).
    """
    import scipy.sparse as sparse

    opts = inst.options
    pi, pj = inst.pair_positions
    n_pairs = len(pi)
    n_o, n_p = inst.n_orders, inst.n_producers
    v = np.asarray(inst.value, dtype=float)
    gap = np.asarray(inst.gap, dtype=float)
    vp = v[pi]  # value of each pair's order
    margin = v[pi] - inst.distance[pi, pj]  # v_i - d_ij
    q = np.ones(n_pairs) if opts.reassignment == "certain" else np.asarray(inst.rates[pi, pj])
    has_gap_var = opts.capacity == "none" and opts.gap_weight > 0
    n_g = n_p if has_gap_var else 0
    # columns: x in sorted (order id, producer id) order, then a, z (pairs order), then G
    pairs = inst.pairs
    order = sorted(range(n_pairs), key=lambda k: pairs[k])
    xcol = np.empty(n_pairs, dtype=np.int64)
    xcol[order] = np.arange(n_pairs)
    acol = n_pairs + np.arange(n_pairs)
    zcol = 2 * n_pairs + np.arange(n_pairs)
    gcol = 3 * n_pairs + np.arange(n_g)
    n_cols = 3 * n_pairs + n_g

    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    family: list[str] = []
    rhs_parts: list[np.ndarray] = []
    m = 0

    def block(name: str, row: np.ndarray, col: np.ndarray, val: np.ndarray, rhs: np.ndarray,
              count: int) -> None:
        nonlocal m
        rows.append(m + row)
        cols.append(col)
        vals.append(np.asarray(val, dtype=float))
        family.extend([name] * count)
        rhs_parts.append(np.asarray(rhs, dtype=float))
        m += count

    ones = np.ones(n_pairs)
    k = np.arange(n_pairs)
    # offer_once: sum_j x[i,j] <= 1, per order (every order has a compatible pair)
    block("offer_once", pi, xcol, ones, np.ones(n_o), n_o)
    # producers with a compatible order (the capacity rows of the others are skipped)
    served = np.flatnonzero(np.bincount(pj, minlength=n_p) > 0)
    row_of = np.full(n_p, -1, dtype=np.int64)
    row_of[served] = np.arange(len(served))
    if opts.capacity == "gap":
        # offer_capacity: sum_i v_i x[i,j] <= C_j
        block("offer_capacity", row_of[pj], xcol, vp, gap[served], len(served))
    # accepted_offer: a - x <= 0
    block("accepted_offer", np.repeat(k, 2), np.stack([xcol, acol], 1).ravel(),
          np.tile([-1.0, 1.0], n_pairs), np.zeros(n_pairs), n_pairs)
    # accepted_if_willing: x - a <= 1 - xi (right-hand side set per scenario below)
    willing_rows = m + k
    block("accepted_if_willing", np.repeat(k, 2), np.stack([xcol, acol], 1).ravel(),
          np.tile([1.0, -1.0], n_pairs), np.ones(n_pairs), n_pairs)
    # reassign_rejected: sum_j z - sum_j x + sum_j a <= 0, per order
    block("reassign_rejected", np.repeat(pi, 3), np.stack([xcol, acol, zcol], 1).ravel(),
          np.tile([-1.0, 1.0, 1.0], n_pairs), np.zeros(n_o), n_o)
    # not_to_rejecter: x + z <= 1
    block("not_to_rejecter", np.repeat(k, 2), np.stack([xcol, zcol], 1).ravel(), ones.repeat(2),
          np.ones(n_pairs), n_pairs)
    capacity_rows = None
    if opts.capacity == "gap":
        capacity_rows = m + row_of[pj]
        # capacity: sum_i v_i (a[i,j] + z[i,j]) <= C_j
        block("capacity", np.repeat(row_of[pj], 2), np.stack([acol, zcol], 1).ravel(),
              vp.repeat(2), gap[served], len(served))
    if has_gap_var:
        # open_gap: -sum_i v_i (a + q z) - G[j] <= -g_j, per producer
        block("open_gap", np.concatenate([np.repeat(pj, 2), np.arange(n_p)]),
              np.concatenate([np.stack([acol, zcol], 1).ravel(), gcol]),
              np.concatenate([-np.stack([vp, q * vp], 1).ravel(), -np.ones(n_p)]),
              -gap, n_p)
    A = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(m, n_cols))
    A.eliminate_zeros()  # Pyomo drops a term whose coefficient is 0 (q = 0, v = 0)
    A.sort_indices()

    # objective: minimise -Profit, Profit = sum (v - d)(a + q z) - c sum z - w OpenGap
    c, w = float(opts.reassignment_cost), float(opts.gap_weight)
    profit = np.zeros(n_cols)
    profit_a = margin.copy()
    profit_z = q * margin - c
    if w > 0 and opts.capacity == "gap":
        # OpenGap = sum_j g_j - sum_j sum_i v_i (a + q z)
        profit_a = profit_a + w * vp
        profit_z = profit_z + w * (q * vp)
    profit[acol] = profit_a
    profit[zcol] = profit_z
    if has_gap_var:
        profit[gcol] = -w
    offset = w * sum(float(g) for g in gap) if w > 0 and opts.capacity == "gap" else 0.0

    xi = np.asarray(scenarios.data, dtype=float).reshape((-1, n_o, n_p))
    S = xi.shape[0]
    willing = xi[:, pi, pj]  # (S, pairs)
    rhs = np.tile(np.concatenate(rhs_parts), (S, 1))
    rhs[:, willing_rows] = 1.0 - willing
    col_lo = np.zeros((S, n_cols))
    col_hi = np.ones((S, n_cols))
    col_hi[:, acol] = willing
    col_hi[:, gcol] = gap[:n_g]
    integer = np.zeros(n_cols, dtype=bool)
    integer[:n_pairs] = bool(opts.integer)
    integer[zcol] = bool(opts.integer and opts.recourse_integer)
    arrays = {
        "A": A,
        "row_sense": np.ones(m, dtype=np.int8),
        "row_family": tuple(family),
        "rhs": rhs, "col_lo": col_lo, "col_hi": col_hi,
        "cost": np.tile(-profit, (S, 1)), "offset": np.full(S, offset),
        "variables": ("x",) * n_pairs + ("a",) * n_pairs + ("z",) * n_pairs + ("G",) * n_g,
        "indices": (tuple(pairs[i] for i in order) + pairs + pairs
                    + (tuple(("gap", p) for p in inst.producers) if has_gap_var else ())),
        "n_first": n_pairs,
        "integer": integer,
        "sense": -1 if opts.sense == "max" else 1,
    }
    from stochplan.models.assignment.cuts import offer_cuts

    arrays["cuts"] = offer_cuts(inst, arrays, {"x": xcol, "a": acol, "z": zcol}, willing,
                                capacity_rows, None if capacity_rows is None else gap[served])
    return arrays
