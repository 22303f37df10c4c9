r"""Two-stage multi-site production planning (seed 000) under Poisson demand.

The seed's per-site model (integer production within demand bounds, machine hours and
raw-material inventory, maximising revenue minus raw-material and machine cost) made
two-stage: production is decided before demand is known, and sales follow demand. One
scenario model of any set of sites is built by :func:`build_model`; the extensive form, the
mean-value problem, EEV and wait-and-see solves all call it, and so does the solve of one
site alone (a block).

Formulation
-----------
Sets: sites :math:`n`, the products :math:`p` each site makes, machines :math:`m` of a site.

First stage, per site and product:

- ``x[n,p]`` in {lo, ..., hi} (integer; real with ``options.integer`` off): units produced,
  within the minimum and maximum demand (the seed's bounds)
- ``A[n]`` >= 0, only with ``options.raw_material_pool`` = Q > 0: raw material allocated to
  site n from the shared pool (in the plan with product label ``raw_material_pool``)

Second stage, per scenario with demand ``d[n,p]``:

- ``S[n,p]`` >= 0: units sold; ``L[n,p]`` >= 0: units left over (salvaged);
  ``U[n,p]`` >= 0: units of demand lost

Constraints::

    machine_hours   sum_p t[n,p,m] / 60 x[n,p] <= H[n,m]          (per site and machine)
    raw_material    sum_p r[n,p] x[n,p] <= R[n] (+ A[n])          (per site)
    pool            sum_n A[n] <= Q                               (with a pool)
    sales_stock     S[n,p] + L[n,p] = x[n,p]
    sales_demand    S[n,p] + U[n,p] = d[n,p]

Objective (maximise expected profit, $; ``options.sense == "min"`` minimises its negative)::

    FirstStageCost    = sum c[n,p] x[n,p]      c = r rc + sum_m t / 60 cph  (unit cost)
    SecondStageProfit = sum price[n,p] S[n,p] + sf c[n,p] L[n,p] - gw price[n,p] U[n,p]
    Profit            = SecondStageProfit - FirstStageCost

with ``sf = options.salvage_fraction`` and ``gw = options.goodwill_fraction``. With one
scenario at maximum demand, S = x is optimal and the profit is the seed's objective,
sum (price - c) x. Only ``d`` changes between scenarios, in right-hand sides (fixed recourse);
the recourse is complete (S = min(x, d) is always feasible). Sites share nothing: the problem
separates by site, which :meth:`~stochplan.models.multisite.MultisiteFamily.blocks` uses,
unless a shared pool couples the sites; then the sites are blocks that share the pool
(:meth:`~stochplan.models.multisite.MultisiteFamily.shared_resource`), and
:mod:`stochplan.solve.linked` solves them site by site: a master over the allocations A and
each site's own two-stage problem at its allocation (exact for the relaxation; with integer
production the sites' MIPs are solved at the relaxation's allocation, the gap reported).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pyomo.environ as pyo

from stochplan.models.multisite.data import MultisiteInstance

#: First-stage variables.
FIRST_STAGE = ("x",)
#: Second-stage variables per scenario.
SECOND_STAGE = ("S", "L", "U")
#: Index names of the plan and of the recourse table.
INDEX_NAMES = ("site", "product")
#: The ``product`` label of the pool allocation ``A`` in the plan (A is indexed by site).
POOL = "raw_material_pool"


def first_stage_vars(model: pyo.ConcreteModel) -> list[Any]:
    """x, and the pool allocation A when the instance has a pool."""
    return [model.x, model.A] if hasattr(model, "A") else [model.x]


def build_model(inst: MultisiteInstance, data: np.ndarray,
                name: str = "scenario") -> pyo.ConcreteModel:
    """The model of one scenario: production for every site plus the recourse for ``data``.

    Parameters
    ----------
    inst : MultisiteInstance
    data : ndarray, shape (N, P)
        Demand per site and product (units; ignored where a site does not make a product).
    name : str
        Model name (the scenario name).

    Returns
    -------
    pyomo.environ.ConcreteModel
        With expressions ``FirstStageCost``, ``SecondStageProfit`` and ``Profit`` ($) and the
        objective ``objective``. No mpi-sppy annotations.
    """
    data = np.asarray(data, dtype=float).reshape(inst.offered.shape)
    m = pyo.ConcreteModel(name=name)
    pairs = [(inst.sites[n], inst.products[p]) for n, p in zip(*np.nonzero(inst.offered))]
    m.NP = pyo.Set(dimen=2, initialize=pairs, ordered=True, doc="(site, product) made")
    _add_production(m, inst)
    _add_pool(m, inst)
    _add_capacity(m, inst)
    _add_recourse(m, inst, data)
    _add_objective(m, inst)
    return m


def _pos(inst: MultisiteInstance) -> tuple[dict[str, int], dict[str, int]]:
    return ({s: i for i, s in enumerate(inst.sites)},
            {p: i for i, p in enumerate(inst.products)})


def _add_production(m: pyo.ConcreteModel, inst: MultisiteInstance) -> None:
    sp, pp = _pos(inst)
    domain = pyo.NonNegativeIntegers if inst.options.integer else pyo.NonNegativeReals

    def bounds(m: Any, s: str, p: str) -> tuple[float, float]:
        n, i = sp[s], pp[p]
        return float(inst.min_demand[n, i]), float(inst.max_demand[n, i])

    m.x = pyo.Var(m.NP, domain=domain, bounds=bounds, doc="units produced")


def _add_pool(m: pyo.ConcreteModel, inst: MultisiteInstance) -> None:
    pool = inst.options.raw_material_pool
    if pool <= 0:
        return
    m.SQ = pyo.Set(dimen=2, initialize=[(s, POOL) for s in inst.sites], ordered=True,
                   doc="(site, pool label): the index of the allocations")
    m.A = pyo.Var(m.SQ, domain=pyo.NonNegativeReals, bounds=(0.0, float(pool)),
                  doc="raw material allocated from the pool")

    # sum_n A[n] <= pool
    m.pool = pyo.Constraint(expr=sum(m.A[q] for q in m.SQ) <= float(pool))


def _add_capacity(m: pyo.ConcreteModel, inst: MultisiteInstance) -> None:
    sp, pp = _pos(inst)
    by_site: dict[str, list[str]] = {s: [] for s in inst.sites}
    for s, p in m.NP:
        by_site[s].append(p)
    machines = [(s, inst.machines[j]) for n, s in enumerate(inst.sites)
                for j in range(len(inst.machines)) if inst.has_machine[n, j]]
    m.SM = pyo.Set(dimen=2, initialize=machines, ordered=True, doc="(site, machine)")
    m.SITES = pyo.Set(initialize=inst.sites, ordered=True)
    mpos = {x: j for j, x in enumerate(inst.machines)}

    # sum_p t[n,p,m] / 60 x[n,p] <= H[n,m]
    @m.Constraint(m.SM)
    def machine_hours(m, s, mach):
        n, j = sp[s], mpos[mach]
        used = [p for p in by_site[s] if inst.minutes[n, pp[p], j] > 0]
        if not used:
            return pyo.Constraint.Skip
        return (sum(float(inst.minutes[n, pp[p], j]) / 60.0 * m.x[s, p] for p in used)
                <= float(inst.weekly_hours[n, j]))

    # sum_p r[n,p] x[n,p] <= R[n]
    @m.Constraint(m.SITES)
    def raw_material(m, s):
        n = sp[s]
        used = [p for p in by_site[s] if inst.raw_material[n, pp[p]] > 0]
        if not used:
            return pyo.Constraint.Skip
        allocated = m.A[s, POOL] if hasattr(m, "A") else 0.0
        return (sum(float(inst.raw_material[n, pp[p]]) * m.x[s, p] for p in used)
                <= float(inst.inventory[n]) + allocated)


def _add_recourse(m: pyo.ConcreteModel, inst: MultisiteInstance, data: np.ndarray) -> None:
    sp, pp = _pos(inst)
    m.S = pyo.Var(m.NP, domain=pyo.NonNegativeReals, doc="units sold")
    m.L = pyo.Var(m.NP, domain=pyo.NonNegativeReals, doc="units left over (salvaged)")
    m.U = pyo.Var(m.NP, domain=pyo.NonNegativeReals, doc="units of demand lost")

    # S + L = x
    @m.Constraint(m.NP)
    def sales_stock(m, s, p):
        return m.S[s, p] + m.L[s, p] == m.x[s, p]

    # S + U = d
    @m.Constraint(m.NP)
    def sales_demand(m, s, p):
        return m.S[s, p] + m.U[s, p] == float(data[sp[s], pp[p]])


def _add_objective(m: pyo.ConcreteModel, inst: MultisiteInstance) -> None:
    sp, pp = _pos(inst)
    cost = inst.unit_cost
    sf, gw = inst.options.salvage_fraction, inst.options.goodwill_fraction

    def c(s: str, p: str) -> float:
        return float(cost[sp[s], pp[p]])

    def price(s: str, p: str) -> float:
        return float(inst.price[sp[s], pp[p]])

    m.FirstStageCost = pyo.Expression(expr=sum(c(s, p) * m.x[s, p] for s, p in m.NP))
    m.Revenue = pyo.Expression(expr=sum(price(s, p) * m.S[s, p] for s, p in m.NP))
    m.Salvage = pyo.Expression(expr=sum(sf * c(s, p) * m.L[s, p] for s, p in m.NP))
    m.Goodwill = pyo.Expression(expr=sum(gw * price(s, p) * m.U[s, p] for s, p in m.NP))
    m.SecondStageProfit = pyo.Expression(expr=m.Revenue + m.Salvage - m.Goodwill)
    m.Profit = pyo.Expression(expr=m.SecondStageProfit - m.FirstStageCost)
    if inst.options.sense == "max":
        m.objective = pyo.Objective(expr=m.Profit, sense=pyo.maximize)
    else:
        m.objective = pyo.Objective(expr=-m.Profit, sense=pyo.minimize)


def scenario_arrays(inst: MultisiteInstance, scenarios: Any) -> dict[str, Any] | None:
    """The scenario models of :func:`build_model` as arrays, written without Pyomo.

    The same rows, columns, coefficients, bounds and costs (minimisation form) that
    :func:`stochplan.solve.matrix.compile_scenarios` makes of the Pyomo models of
    ``scenarios`` (``tests/models/test_multisite.py`` compares them entry by entry): columns
    x, then S, L, U, each over the (site, product) pairs made; rows ``machine_hours`` (per
    site and machine that some product uses), ``raw_material`` (per site that uses any),
    ``sales_stock`` (S + L - x = 0) and ``sales_demand`` (S + U = d). Only ``d`` differs
    between scenarios. Building them this way takes milliseconds; compiling the Pyomo models
    of a 30-product site takes about a second (32 models for the affine data map).

    Parameters
    ----------
    inst : MultisiteInstance
        With a shared pool, the allocations A come after x (one per site, in site order), the
        row ``pool`` (sum A <= Q) first, and ``raw_material`` rows hold -A.
    scenarios : ScenarioSet
        Demand (S, N, P) and probabilities.

    Returns
    -------
    dict or None
        The keys of :meth:`stochplan.family.Family.scenario_arrays`.
    """
    import scipy.sparse as sparse

    pool = float(inst.options.raw_material_pool)
    n_idx, p_idx = np.nonzero(inst.offered)
    k = len(n_idx)
    pairs = tuple((inst.sites[n], inst.products[p]) for n, p in zip(n_idx, p_idx))
    # x comes in mpi-sppy's order of the nonanticipative variables (sorted indices), S, L
    # and U in the model's order of the pairs: ``xcol[i]`` is the column of pair i's x
    order = sorted(range(k), key=lambda i: pairs[i])
    xcol = np.empty(k, dtype=np.int64)
    xcol[order] = np.arange(k)
    # with a pool, A[n] after x (sorted by site, as mpi-sppy orders them), S, L, U after A
    n_pool = inst.n_sites if pool > 0 else 0
    acol = np.empty(n_pool, dtype=np.int64)
    acol[sorted(range(n_pool), key=lambda n: inst.sites[n])] = k + np.arange(n_pool)
    first = k + n_pool
    rows: list[np.ndarray] = []
    cols: list[np.ndarray] = []
    vals: list[np.ndarray] = []
    family: list[str] = []
    rhs_fixed: list[float] = []
    m = 0
    if n_pool:  # pool: sum_n A[n] <= Q
        rows.append(np.zeros(n_pool, dtype=np.int64))
        cols.append(acol.copy())
        vals.append(np.ones(n_pool))
        family.append("pool")
        rhs_fixed.append(pool)
        m += 1
    # machine_hours: sum_p t[n,p,m] / 60 x[n,p] <= H[n,m], site by site, machine by machine
    # raw_material:  sum_p r[n,p] x[n,p] <= R[n]
    for n in range(inst.n_sites):
        mine = np.nonzero(n_idx == n)[0]
        for j in range(len(inst.machines)):
            if not inst.has_machine[n, j]:
                continue
            t = inst.minutes[n, p_idx[mine], j]
            used = mine[t > 0]
            if used.size == 0:
                continue
            rows.append(np.full(used.size, m))
            cols.append(xcol[used])
            vals.append(inst.minutes[n, p_idx[used], j] / 60.0)
            family.append("machine_hours")
            rhs_fixed.append(float(inst.weekly_hours[n, j]))
            m += 1
    for n in range(inst.n_sites):
        mine = np.nonzero(n_idx == n)[0]
        used = mine[inst.raw_material[n, p_idx[mine]] > 0]
        if used.size == 0:
            continue
        extra = 1 if n_pool else 0  # - A[n]
        rows.append(np.full(used.size + extra, m))
        cols.append(np.concatenate([xcol[used], acol[n:n + extra]]))
        vals.append(np.concatenate([inst.raw_material[n, p_idx[used]].astype(float),
                                    -np.ones(extra)]))
        family.append("raw_material")
        rhs_fixed.append(float(inst.inventory[n]))
        m += 1
    n_cap = m
    i = np.arange(k)
    # sales_stock: S + L - x = 0 (columns x, S, L); sales_demand: S + U = d (columns S, U)
    stock = n_cap + i
    demand = n_cap + k + i
    rows += [np.repeat(stock, 3), np.repeat(demand, 2)]
    cols += [np.stack([xcol, first + i, first + k + i], axis=1).ravel(),
             np.stack([first + i, first + 2 * k + i], axis=1).ravel()]
    vals += [np.tile([-1.0, 1.0, 1.0], k), np.ones(2 * k)]
    n_rows = n_cap + 2 * k
    A = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                          shape=(n_rows, first + 3 * k))
    A.sort_indices()
    data = np.asarray(scenarios.data, dtype=float).reshape((-1, *inst.offered.shape))
    S = data.shape[0]
    rhs = np.zeros((S, n_rows))
    rhs[:, :n_cap] = rhs_fixed
    rhs[:, n_cap + k:] = data[:, n_idx, p_idx]
    c = inst.unit_cost[n_idx, p_idx]
    price = inst.price[n_idx, p_idx]
    sf, gw = inst.options.salvage_fraction, inst.options.goodwill_fraction
    # minimise -Profit = c x - price S - sf c L + gw price U
    cost = np.concatenate([c[order], np.zeros(n_pool), -price, -sf * c, gw * price])
    lo = np.concatenate([inst.min_demand[n_idx, p_idx][order], np.zeros(n_pool + 3 * k)])
    hi = np.concatenate([inst.max_demand[n_idx, p_idx][order], np.full(n_pool, pool),
                         np.full(3 * k, np.inf)])
    integer = np.zeros(first + 3 * k, dtype=bool)
    integer[:k] = bool(inst.options.integer)
    row_sense = np.concatenate([np.ones(n_cap, dtype=np.int8), np.zeros(2 * k, dtype=np.int8)])
    return {
        "A": A, "row_sense": row_sense,
        "row_family": tuple(family) + ("sales_stock",) * k + ("sales_demand",) * k,
        "rhs": rhs, "col_lo": np.tile(lo, (S, 1)), "col_hi": np.tile(hi, (S, 1)),
        "cost": np.tile(cost, (S, 1)), "offset": np.zeros(S),
        "variables": ("x",) * k + ("A",) * n_pool + ("S",) * k + ("L",) * k + ("U",) * k,
        "indices": (tuple(pairs[i] for i in order)
                    + tuple(sorted((site, POOL) for site in inst.sites[:n_pool]))
                    + pairs * 3),
        "n_first": first,
        "integer": integer, "sense": -1 if inst.options.sense == "max" else 1,
    }
