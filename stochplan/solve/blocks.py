"""Independent blocks of one instance, each solved as an extensive form, spread over workers.

Some instances are many problems that share nothing: the sites of a multi-site plan, say. A
family says so with :meth:`~stochplan.family.Family.blocks` (labels and one record per
block); this module then solves each block's two-stage problem alone with
:func:`~stochplan.solve.ef.solve_ef` and puts the answers together: the plan is the blocks'
plans in block order, the objective their sum (each is already probability-weighted over the
same scenarios), the bound the sum of the bounds. Nothing here names a family.

Where the blocks run:

- under ``mpiexec`` with several ranks, block i on rank ``i mod size`` (one process per rank);
  rank 0 gathers the answers and returns the result, the other ranks return None;
- without MPI, over a pool of ``workers`` processes (default: one per core), or in this
  process when ``workers == 1`` or there is one block.

The answer is gathered in block order, so it does not depend on the layout: 1, 2 or 8 ranks
or processes give the same plan and objective. A block that fails (infeasible, no solution)
is caught where it runs, so every rank reaches the gather; then the solve fails naming the
failed blocks, or, with ``allow_partial``, keeps the others (status ``"partial"``, the failed
blocks listed in ``info["failed_blocks"]``).

How a block is solved: when the family writes its scenario models as arrays
(:meth:`~stochplan.family.Family.scenario_arrays`), from those (no Pyomo), as the
:class:`MergedForm` extensive form: recourse pieces that are the same problem in several
scenarios (a product whose demand is equal in them) appear once with their probabilities
summed, which leaves the optimum and the optimal plans as they are; one HiGHS object per
process is reused from block to block, and the solutions travel as arrays, made into tables
once at the end. Otherwise through :func:`~stochplan.solve.ef.solve_ef` (Pyomo models, the
matrix backend). On a 30-product site with 100 scenarios (multisite) this took a relaxed site
from 0.35 to 0.054 CPU seconds and an integer one from 1.33 to 0.32 (this machine, loaded;
``tests/models/test_multisite.py`` checks both ways agree to the cent).

Why blocks: an extensive form of all blocks together is one large MIP whose solver cannot see
the separation; on the 5-site built-in instance the deterministic (one-scenario) MIP took
96 s as one model and 0.01 s per site solved apart (this machine, HiGHS 1.15).
"""

from __future__ import annotations

import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from stochplan.errors import InfeasibleError, InputError, SolveError, StochplanError
from stochplan.solve.results import SolveResult
from stochplan.solve.solvers import MATRIX_SOLVER, SolverOptions

log = logging.getLogger(__name__)

__all__ = ["BlockArrays", "BlockOutcome", "MergedForm", "combine", "family_arrays", "merged_form",
           "solve_arrays", "solve_blocks", "solve_run"]


@dataclass(frozen=True)
class BlockArrays:
    """A block solved from its family's arrays: the solution as arrays (tables are made once,
    for all blocks, when they are put together; arrays cross between processes cheaply)."""

    columns: Any  # stochplan.solve.matrix.Columns
    names: tuple[str, ...]
    probabilities: np.ndarray
    status: str
    objective: float
    bound: float | None
    first: np.ndarray
    second: np.ndarray  # (S, recourse columns)
    timings: dict[str, float]


@dataclass(frozen=True)
class BlockOutcome:
    """One block's answer: its result, or why it failed (error class name and message)."""

    index: int
    label: str
    result: SolveResult | BlockArrays | None
    error: tuple[str, str, str] | None  # (kind, message, status)
    seconds: float


def _solve_block(family: Any, index: int, label: str, record: Any, spec: str,
                 seed: int | None, multipliers: tuple[float, ...],
                 weights: tuple[float, ...] | None, solver: SolverOptions,
                 allow_partial: bool) -> BlockOutcome:
    """Solve one block's extensive form; errors become part of the outcome."""
    from stochplan.solve.ef import solve_ef

    start = time.perf_counter()
    try:
        scen_set = family.scenario_set(record, spec, seed, multipliers, weights)
        compiled = (family_arrays(family, record, scen_set)
                    if solver.use_matrix(family.module) else None)
        result: SolveResult | BlockArrays
        if compiled is not None:
            result = solve_arrays(compiled, solver, allow_partial)
        else:
            kwargs = family.creator_kwargs(record, spec, seed, multipliers, weights)
            result = solve_ef(family.module, scen_set.names, kwargs, solver,
                              allow_partial=allow_partial)
    except InfeasibleError as err:
        return BlockOutcome(index, label, None, ("infeasible", str(err), "infeasible"),
                            time.perf_counter() - start)
    except StochplanError as err:
        status = getattr(err, "status", "error")
        return BlockOutcome(index, label, None, (type(err).__name__, str(err), status),
                            time.perf_counter() - start)
    return BlockOutcome(index, label, result, None, time.perf_counter() - start)


def family_arrays(family: Any, record: Any, scenarios: Any) -> Any:
    """:meth:`~stochplan.family.Family.scenario_arrays` as
    :class:`~stochplan.solve.matrix.CompiledScenarios`; None when the family has none."""
    import scipy.sparse as sparse

    from stochplan.solve.matrix import Columns, CompiledScenarios

    arrays = family.scenario_arrays(record, scenarios)
    if arrays is None:
        return None
    columns = Columns(variables=tuple(arrays["variables"]), indices=tuple(arrays["indices"]),
                      n_first=int(arrays["n_first"]),
                      integer=np.asarray(arrays["integer"], dtype=bool))
    return CompiledScenarios(
        names=tuple(scenarios.names),
        probabilities=np.asarray(scenarios.probabilities, dtype=float),
        A=sparse.csr_matrix(arrays["A"]), row_sense=np.asarray(arrays["row_sense"], np.int8),
        row_family=tuple(arrays["row_family"]),
        **{key: np.asarray(arrays[key], dtype=float)
           for key in ("rhs", "col_lo", "col_hi", "cost", "offset")},
        columns=columns, sense=int(arrays["sense"]), method="family",
        cuts=arrays.get("cuts"))


# ----------------------------------------------------------------------------------------------
# A block's extensive form from arrays, scenarios merged where their recourse is the same

#: One HiGHS object per process, reused from block to block (HiGHS options as last set).
_HIGHS: dict[str, Any] = {}


def _highs(solver: SolverOptions) -> Any:
    """This process's HiGHS object with ``solver``'s options (a new model replaces the old)."""
    from stochplan.solve.matrix import _highs as fresh

    key = repr(solver)
    h = _HIGHS.get(key)
    if h is None:
        _HIGHS.clear()
        h = _HIGHS[key] = fresh(solver)
    else:
        h.clearModel()
    return h


@dataclass(frozen=True)
class MergedForm:
    """The extensive form of compiled scenarios with identical recourse pieces merged.

    The recourse columns split into pieces that share no row (the connected components of
    the recourse part of the matrix; the products of a site, say). A piece's subproblem in
    scenario s depends on s only through its rows' right-hand sides and its columns' bounds
    and costs; scenarios where these are equal have the same subproblem, so the extensive
    form needs it once, with their probabilities summed. For any first stage x the recourse
    separates by scenario and piece, so the full form's best recourse value is the sum over
    scenarios and pieces of p_s v(x) with v the piece's own optimum, which is the same for
    the scenarios of a group: the merged form's sum over groups of P_g v_g(x). Both forms thus
    have the same optimum and the same optimal first stages, integer or not; copying a
    group's recourse to its scenarios gives an optimal full solution (``group``).

    Rows that hold only first-stage columns and never change appear once. On a 30-product
    site with 100 Poisson scenarios each product has about 15 distinct demands: the
    extensive form shrinks from 9,030 columns and 6,004 rows to about 1,400 and 900.
    """

    A: Any
    cost: np.ndarray
    col_lo: np.ndarray
    col_hi: np.ndarray
    row_lo: np.ndarray
    row_hi: np.ndarray
    integer: np.ndarray
    offset: float
    pieces: list[tuple[np.ndarray, np.ndarray, int]]  # (recourse columns, group of each
    #                                                   scenario, first merged column)


def merged_form(compiled: Any) -> MergedForm:
    """:class:`MergedForm` of :class:`~stochplan.solve.matrix.CompiledScenarios`."""
    import scipy.sparse as sparse
    from scipy.sparse.csgraph import connected_components

    n1 = compiled.n_first
    A = sparse.csr_matrix(compiled.A)
    m, n = A.shape
    n2 = n - n1
    p = compiled.probabilities / compiled.probabilities.sum()
    row_lo, row_hi = compiled.row_bounds(slice(None))
    W = A[:, n1:].tocsr()
    recourse_rows = np.diff(W.indptr) > 0
    # first-stage-only rows: once when they never change, else once per distinct value
    trips_r: list[np.ndarray] = []
    trips_c: list[np.ndarray] = []
    trips_v: list[np.ndarray] = []
    lo_parts: list[np.ndarray] = []
    hi_parts: list[np.ndarray] = []
    n_rows = 0
    first_rows = np.nonzero(~recourse_rows)[0]
    for r in first_rows:
        bounds = np.unique(np.stack([row_lo[:, r], row_hi[:, r]], axis=1), axis=0)
        row = A.getrow(r).tocoo()
        for lo_, hi_ in bounds:
            trips_r.append(np.full(row.nnz, n_rows))
            trips_c.append(row.col)
            trips_v.append(row.data)
            lo_parts.append(np.array([lo_]))
            hi_parts.append(np.array([hi_]))
            n_rows += 1
    # pieces: connected components of the recourse columns through their rows
    graph = sparse.bmat([[None, W[recourse_rows]], [W[recourse_rows].T, None]], format="csr")
    n_rec_rows = int(recourse_rows.sum())
    _, label = connected_components(graph, directed=False)
    row_piece = np.full(m, -1, dtype=np.int64)
    row_piece[recourse_rows] = label[:n_rec_rows]
    col_label = label[n_rec_rows:]
    coo = A.tocoo()
    entry_piece = row_piece[coo.row]
    by_entry = np.argsort(entry_piece, kind="stable")
    by_row = np.argsort(row_piece, kind="stable")
    by_col = np.argsort(col_label, kind="stable")
    cost = [p @ compiled.cost[:, :n1]]
    col_lo = [compiled.col_lo[:, :n1].max(axis=0)]
    col_hi = [compiled.col_hi[:, :n1].min(axis=0)]
    integer = [compiled.columns.integer[:n1]]
    pieces: list[tuple[np.ndarray, np.ndarray, int]] = []
    n_cols = n1
    local = np.full(n, -1, dtype=np.int64)
    for piece in np.unique(col_label):
        block_cols = by_col[np.searchsorted(col_label[by_col], piece):
                            np.searchsorted(col_label[by_col], piece, side="right")]
        rows = by_row[np.searchsorted(row_piece[by_row], piece):
                      np.searchsorted(row_piece[by_row], piece, side="right")]
        entries = by_entry[np.searchsorted(entry_piece[by_entry], piece):
                           np.searchsorted(entry_piece[by_entry], piece, side="right")]
        cols = n1 + block_cols
        k, nr = len(cols), len(rows)
        data = np.concatenate([row_lo[:, rows], row_hi[:, rows], compiled.col_lo[:, cols],
                               compiled.col_hi[:, cols], compiled.cost[:, cols]], axis=1)
        distinct, group = _distinct_rows(data)
        G = len(distinct)
        weight = np.bincount(group, weights=p, minlength=G)
        local[rows] = np.arange(nr)
        local[cols] = np.arange(k)
        e_row, e_col, e_val = local[coo.row[entries]], coo.col[entries], coo.data[entries]
        is_first = e_col < n1
        shift = np.arange(G)[:, None]
        trips_r.append((n_rows + shift * nr + e_row[None, :]).ravel())
        trips_c.append(np.where(is_first[None, :], e_col[None, :],
                                n_cols + shift * k + local[e_col][None, :]).ravel())
        trips_v.append(np.tile(e_val, G))
        lo_parts.append(distinct[:, :nr].ravel())
        hi_parts.append(distinct[:, nr:2 * nr].ravel())
        col_lo.append(distinct[:, 2 * nr:2 * nr + k].ravel())
        col_hi.append(distinct[:, 2 * nr + k:2 * nr + 2 * k].ravel())
        cost.append((weight[:, None] * distinct[:, 2 * nr + 2 * k:]).ravel())
        integer.append(np.tile(compiled.columns.integer[cols], G))
        pieces.append((block_cols, group, n_cols))
        n_rows += G * nr
        n_cols += G * k
    assert sum(len(c) for c, _, _ in pieces) == n2
    matrix = sparse.csc_matrix((np.concatenate(trips_v), (np.concatenate(trips_r),
                                                          np.concatenate(trips_c))),
                               shape=(n_rows, n_cols))
    return MergedForm(matrix, np.concatenate(cost), np.concatenate(col_lo),
                      np.concatenate(col_hi), np.concatenate(lo_parts),
                      np.concatenate(hi_parts), np.concatenate(integer),
                      float(p @ compiled.offset), pieces)


def _distinct_rows(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The distinct rows of ``data`` (in sorted order) and each row's position among them
    (``np.unique(data, axis=0, return_inverse=True)``, without its structured-array detour)."""
    order = np.lexsort(data.T[::-1])
    ordered = data[order]
    new = np.ones(len(data), dtype=bool)
    new[1:] = (ordered[1:] != ordered[:-1]).any(axis=1)
    group = np.empty(len(data), dtype=np.int64)
    group[order] = np.cumsum(new) - 1
    return ordered[new], group


def full_recourse(compiled: Any, form: MergedForm, x: np.ndarray) -> np.ndarray:
    """Every scenario's recourse (S x recourse columns) from a solution ``x`` of the merged
    form: each scenario's copy of each piece."""
    n1 = compiled.n_first
    second = np.empty((len(compiled.names), compiled.A.shape[1] - n1))
    for cols, group, first_col in form.pieces:
        copies = x[first_col:first_col + (group.max() + 1) * len(cols)].reshape(-1, len(cols))
        second[:, cols] = copies[group]
    return second


def gather_outcomes(outcomes: list[BlockOutcome], comm: Any) -> list[BlockOutcome] | None:
    """Every rank's block outcomes on rank 0, in block order (None on the other ranks)."""
    if comm is not None:
        parts = comm.gather(outcomes, root=0)
        if comm.Get_rank() != 0:
            return None
        outcomes = [o for part in parts for o in part]
    return sorted(outcomes, key=lambda o: o.index)


def solve_arrays(compiled: Any, solver: SolverOptions,
                 allow_partial: bool = False) -> BlockArrays:
    """Solve the extensive form of compiled scenarios (:func:`merged_form`) with HiGHS.

    Raises
    ------
    InfeasibleError, SolveError
        As :func:`stochplan.solve.ef.solve_ef` (infeasible; not optimal and
        ``allow_partial`` off, or no solution).
    """
    from stochplan.solve.matrix import _pass, _status
    from stochplan.solve.solvers import relative_gap

    start = time.perf_counter()
    form = merged_form(compiled)
    h = _highs(solver)
    _pass(h, form.A, form.cost, form.col_lo, form.col_hi, form.row_lo, form.row_hi,
          form.integer, form.offset)
    build = time.perf_counter() - start
    start = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - start
    status = _status(h)
    info = h.getInfo()
    if info.primal_solution_status != 2:  # no feasible solution
        if status in ("infeasible", "infeasible_or_unbounded"):
            raise InfeasibleError("the problem is infeasible", ())
        raise SolveError(f"HiGHS ended with status {status!r} and no solution", status)
    objective = compiled.sense * float(info.objective_function_value)
    if form.integer.any():
        bound: float | None = compiled.sense * float(info.mip_dual_bound)
    else:
        bound = objective if status == "optimal" else None
    if bound is not None and not math.isfinite(bound):
        bound = None
    if status != "optimal" and not allow_partial:
        gap = relative_gap(objective, bound)
        raise SolveError(f"HiGHS stopped with status {status!r} (objective {objective:,.2f}, "
                         f"gap {gap if gap is not None else float('nan'):.2%}); "
                         "ask for partial results to keep it", status)
    x = np.asarray(h.getSolution().col_value)
    n1 = compiled.n_first
    second = full_recourse(compiled, form, x)
    return BlockArrays(compiled.columns, tuple(compiled.names),
                       np.asarray(compiled.probabilities, float), status, objective, bound,
                       x[:n1].copy(), second, {"build": build, "solve": seconds})


def solve_blocks(
    family: Any,
    inst: Any,
    spec: str,
    seed: int | None,
    multipliers: Sequence[float] = (1.0,),
    weights: Sequence[float] | None = None,
    solver: SolverOptions | None = None,
    comm: Any = None,
    workers: int | None = None,
    allow_partial: bool = False,
    progress: Callable[[str], None] | None = None,
) -> SolveResult | None:
    """Solve ``family.blocks(inst)`` one by one and return the result of the whole.

    Parameters
    ----------
    family : Family
    inst : record
        The instance; ``family.blocks(inst)`` must not be None.
    spec, seed, multipliers, weights
        The scenario set (as for :meth:`~stochplan.family.Family.scenario_set`).
    solver : SolverOptions, optional
    comm : MPI communicator or None
        Under MPI, blocks are shared round robin among its ranks.
    workers : int, optional
        Processes without MPI (default: the number of cores, at most one per block).
    allow_partial : bool
        Keep the blocks that solved when some fail (status ``"partial"``).
    progress : callable, optional
        Called with ``"<label> solved (done/total)"`` as blocks finish (on this rank's blocks
        under MPI).

    Returns
    -------
    SolveResult or None
        None on MPI ranks other than 0.

    Raises
    ------
    InfeasibleError, SolveError
        Some block failed (and ``allow_partial`` is off): the message names them.
    """
    from stochplan.parallel import share

    blocks = family.blocks(inst)
    if blocks is None:
        raise SolveError(f"the {family.name} family's instance {inst.name} has no blocks")
    solver = solver or SolverOptions()
    note = progress or (lambda text: None)
    total = len(blocks)
    args = (spec, seed, tuple(multipliers), None if weights is None else tuple(weights),
            solver, allow_partial)
    start = time.perf_counter()
    mine = share(range(total), comm)
    outcomes: list[BlockOutcome] = []
    n_workers = 1 if comm is not None else min(workers or os.cpu_count() or 1, total)
    if n_workers <= 1:
        for done, i in enumerate(mine, 1):
            label, record = blocks[i]
            outcomes.append(_solve_block(family, i, label, record, *args))
            note(f"{label} solved ({done}/{len(mine)})")
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # what every block imports, imported once here so that forked workers inherit it
        # (else each worker's first block pays the imports: seconds on a busy machine)
        import highspy  # noqa: F401
        import scipy.sparse.csgraph  # noqa: F401

        with ProcessPoolExecutor(max_workers=n_workers) as pool:
            futures = [pool.submit(_solve_block, family, i, blocks[i][0], blocks[i][1], *args)
                       for i in mine]
            for done, future in enumerate(as_completed(futures), 1):
                out = future.result()
                outcomes.append(out)
                note(f"{out.label} solved ({done}/{total})")
    gathered = gather_outcomes(outcomes, comm)
    if gathered is None:
        return None
    wall = time.perf_counter() - start
    layout = ("mpi" if comm is not None else "processes" if n_workers > 1 else "serial")
    return combine(family, gathered, wall, layout,
                    comm.Get_size() if comm is not None else n_workers, allow_partial)


def combine(family: Any, outcomes: list[BlockOutcome], wall: float, layout: str,
            workers: int, allow_partial: bool) -> SolveResult:
    """The result of the whole from the blocks' outcomes (in block order): plans and recourse
    together, objectives and bounds summed; failed blocks raise unless ``allow_partial``."""
    failed = [o for o in outcomes if o.result is None]
    if failed and (not allow_partial or len(failed) == len(outcomes)):
        first = failed[0]
        assert first.error is not None
        names = ", ".join(o.label for o in failed[:10]) + (
            f" and {len(failed) - 10} more" if len(failed) > 10 else "")
        message = f"{len(failed)} of {len(outcomes)} block(s) failed ({names}); " \
                  f"{first.label}: {first.error[1]}"
        if all(o.error is not None and o.error[0] == "infeasible" for o in failed):
            raise InfeasibleError(message, ())
        raise SolveError(message, first.error[2])
    solved = [o for o in outcomes if o.result is not None]
    results = [o.result for o in solved if o.result is not None]
    first_result = results[0]
    index_names = tuple(getattr(family.module, "INDEX_NAMES", ()))
    plan, recourse = _tables(results, index_names)
    objective = float(math.fsum(float(r.objective or 0.0) for r in results))
    bounds = [r.bound for r in results]
    bound = None if any(b is None for b in bounds) else float(
        math.fsum(float(b) for b in bounds if b is not None))
    gap = None if bound is None else abs(objective - bound) / max(1.0, abs(objective))
    statuses = {r.status for r in results}
    status = "partial" if failed else ("optimal" if statuses == {"optimal"}
                                       else sorted(statuses - {"optimal"})[0])
    timings = {"solve": wall,
               "build": float(sum(r.timings.get("build", 0.0) for r in results)),
               "block_solve": float(sum(r.timings.get("solve", 0.0) for r in results)),
               "slowest_block": float(max(o.seconds for o in outcomes))}
    if isinstance(first_result, BlockArrays):
        backend, solver_name = "blocks (family arrays, merged scenarios)", MATRIX_SOLVER
    else:
        backend = f"blocks ({first_result.info.get('backend', first_result.solver)})"
        solver_name = first_result.solver
    info: dict[str, Any] = {
        "backend": backend,
        "blocks": len(outcomes), "layout": layout, "workers": workers,
        "block_status": [o.result.status if o.result is not None else
                         (o.error[2] if o.error else "error") for o in outcomes],
        "block_labels": [o.label for o in outcomes],
    }
    if failed:
        info["failed_blocks"] = [f"{o.label}: {o.error[1] if o.error else ''}" for o in failed]
    log.info("%d blocks solved (%s, %d workers) in %.2f s", len(outcomes), layout, workers,
             wall)
    return SolveResult(
        method="ef", status=status, objective=objective, bound=bound, gap=gap, plan=plan,
        recourse=recourse, scenario_names=_names(first_result),
        probabilities=np.asarray(first_result.probabilities), timings=timings,
        solver=solver_name, info=info)


def _names(result: SolveResult | BlockArrays) -> tuple[str, ...]:
    return result.names if isinstance(result, BlockArrays) else result.scenario_names


def _tables(results: list[SolveResult | BlockArrays],
            index_names: tuple[str, ...]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The plan and recourse tables of all blocks, in block order (blocks solved from arrays
    become tables here, all at once: the recourse table of 1,000 sites has 9 million rows)."""
    from stochplan.solve.matrix import plan_table

    plans, recourses = [], []
    arrays = [r for r in results if isinstance(r, BlockArrays)]
    for r in results:
        if isinstance(r, BlockArrays):
            plans.append(plan_table(r.columns, r.first, index_names))
        else:
            plans.append(r.plan)
            recourses.append(r.recourse)
    plan = pd.concat(plans, ignore_index=True)
    if not arrays:
        return plan, pd.concat(recourses, ignore_index=True)
    if recourses:  # blocks solved both ways (not expected): one table per block
        return plan, pd.concat([_recourse_of(r, index_names) if isinstance(r, BlockArrays)
                                else r.recourse for r in results], ignore_index=True)
    metas = [r.columns.table(index_names, slice(r.columns.n_first, None)) for r in arrays]
    names = list(metas[0].columns)
    if any(list(m.columns) != names for m in metas):
        return plan, pd.concat([_recourse_of(r, index_names) for r in arrays],
                               ignore_index=True)
    data: dict[str, Any] = {"scenario": np.concatenate([
        np.repeat(np.array(r.names, dtype=object), len(m)) for r, m in zip(arrays, metas)])}
    for c in names:
        data[c] = np.concatenate([np.tile(m[c].to_numpy(object), len(r.names))
                                  for r, m in zip(arrays, metas)])
    data["value"] = np.concatenate([_rounded(r).ravel() for r in arrays])
    return plan, pd.DataFrame(data)


def _rounded(r: BlockArrays) -> np.ndarray:
    """Second-stage values, integer columns rounded (as the matrix backend's tables)."""
    integer = np.asarray(r.columns.integer[r.columns.n_first:], bool)
    return np.where(integer[None, :], np.round(r.second), r.second) if integer.any() \
        else r.second


def _recourse_of(r: BlockArrays, index_names: tuple[str, ...]) -> pd.DataFrame:
    from stochplan.solve.matrix import recourse_table

    return recourse_table(r.names, r.columns, r.second, index_names)


def solve_run(config: Any, input_db: str | None = None,
              progress: Callable[[str], None] | None = None, allow_partial: bool = False,
              workers: int | None = None, start_plan: pd.DataFrame | None = None) -> Any:
    """A run as :func:`stochplan.run.solve_instance` does it, with two generic additions: the
    instance may come from a database (``input_db``, the family's
    :meth:`~stochplan.family.Family.load_database`), and an extensive-form run of a family
    whose instance has :meth:`~stochplan.family.Family.blocks` solves the blocks apart
    (under MPI: over the ranks) when the scenarios are the family's own (``named`` or
    ``sample:N``); blocks that share a resource
    (:meth:`~stochplan.family.Family.shared_resource`) are decomposed block by block
    (:func:`stochplan.solve.linked.solve_shared`). ``start_plan`` goes to
    :func:`~stochplan.run.solve_instance`; a run solved in blocks takes none. Returns a
    :class:`~stochplan.run.RunOutcome`, or None on MPI ranks other than 0 of a decomposed or
    block run."""
    from stochplan.parallel import world
    from stochplan.run import outcome_from_result, run_family, solve_instance
    from stochplan.scenarios import parse_spec

    note = progress or (lambda phase: None)
    family = run_family(config)
    inst = None
    if input_db is not None:
        note("load")
        inst = family.load_database(input_db, config.model or None)
    if config.method != "ef":
        return solve_instance(config, instance=inst, progress=progress,
                              allow_partial=allow_partial, start_plan=start_plan)
    record = family.resolve(inst if inst is not None else config.instance, config.model or None)
    kind = parse_spec(config.scenarios.spec).kind
    # blocks draw their own scenarios: only the family's named ones and its sampler promise
    # that a block's scenario k is its rows of the whole's (Poisson/QMC streams and files
    # are drawn for the whole grid), so other specs solve the whole extensive form
    # a risk measure couples the blocks (the CVaR of the total cost is not a sum over blocks)
    # blocks that share a resource (a shared pool) are solved block by block too, by the
    # decomposition of stochplan.solve.linked
    blocks = family.blocks(record)
    shared = family.shared_resource(record) if blocks is None else None
    if (kind not in ("named", "sample") or config.risk.measure != "expectation"
            or (blocks is None and shared is None)):
        return solve_instance(config, instance=record, progress=progress,
                              allow_partial=allow_partial, start_plan=start_plan)
    if start_plan is not None:
        raise InputError(str(start_plan.attrs.get("field", "start_plan")),
                         start_plan.attrs.get("value", "plan"),
                         "this instance is solved block by block, which takes no start plan")
    start = time.perf_counter()
    sc = config.scenarios
    scen_set = family.scenario_set(record, sc.spec, sc.seed, sc.multipliers, sc.weights)
    timings = {"scenarios": time.perf_counter() - start}
    note("solve")
    if shared is not None:
        from stochplan.solve.linked import solve_shared

        result = solve_shared(family, record, sc.spec, sc.seed, sc.multipliers, sc.weights,
                              config.solver, comm=world(), progress=note,
                              allow_partial=allow_partial)
    else:
        result = solve_blocks(family, record, sc.spec, sc.seed, sc.multipliers, sc.weights,
                              config.solver, comm=world(), workers=workers,
                              allow_partial=allow_partial, progress=note)
    if result is None:
        return None
    timings.update(result.timings)
    note("kpis")
    return outcome_from_result(config, record, scen_set, result, timings)
