"""Blocks that share one resource, decomposed by block: a resource-directive L-shaped method.

Some instances are independent blocks but for one resource they draw on together: the sites
of a multi-site plan with a shared raw-material pool, say. Each block b has one linking
first-stage column a_b (its draw on the resource), and the blocks couple only through

    sum_b a_b <= Q.

Given a_b, block b is a two-stage problem of its own, with optimal value v_b(a_b) (cost: the
minimisation form). For a linear program v_b is convex and piecewise linear in a_b, and the
reduced cost of the linking column, fixed at a_b, is a subgradient. The whole problem is then

    min sum_b v_b(a_b)  subject to  sum_b a_b <= Q,  a_b in [lo_b, hi_b],

which this module solves by Kelley's cutting planes with one cut per block and iteration
(Benders decomposition by block): a master LP over the allocations a and one epigraph
variable theta_b per block, and every block's extensive form solved again, warm, at each new
allocation. The master's optimum is a lower bound; the blocks' values at its allocation, a
feasible plan, an upper bound; the method stops when they meet (``rel_gap``).

Before the first master, every block is solved twice: with its linking column free (its
favourite draw; v_b's minimum bounds theta_b below, and when the favourite draws fit within
Q together they are the answer at once), and for its smallest feasible draw (minimise a_b
over the block's constraints: the master keeps a_b above it, so that every allocation it
proposes leaves each block feasible). This needs the linking column to act as a resource:
a block feasible at a_b stays feasible at any larger a_b (true of extra raw material, extra
capacity, extra budget).

Integer blocks (integer first-stage columns besides the linking one): the method runs on the
LP relaxation, then solves each block's mixed-integer program at the relaxation's allocation.
That plan is feasible; the relaxation's optimum bounds the optimum below; the gap between
them is reported, not closed (v_b of a MIP is not convex, so cuts from the relaxation are all
this method has): within :data:`INTEGER_REL_GAP` (1 %) the status is ``"gap_reached"``,
beyond it the solve stops short (``"stalled"``, kept only when partial results are asked
for).

The blocks are the caller's compiled extensive forms (any object with the arrays ``A``,
``cost``, ``col_lo``, ``col_hi``, ``row_lo``, ``row_hi``, ``integer`` and ``offset`` of a
minimisation, first-stage columns first); under MPI each rank holds its own blocks (block i
on rank ``i mod size``) and their HiGHS models, and only allocations, values and
subgradients cross between ranks, so 1, 2 or 3 ranks give the same iterates. Nothing here
names a family.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from stochplan.errors import InfeasibleError, SolveError
from stochplan.solve.results import SOLVED, decomposition_status
from stochplan.solve.solvers import SolverOptions, relative_gap

log = logging.getLogger(__name__)

__all__ = ["LinkedSolution", "solve_linked"]

#: Relaxation gap at which the cutting planes stop, when the caller gives none.
DEFAULT_REL_GAP = 1e-6
#: Integer blocks: the plan (each block's MIP at the relaxation's allocation) is kept when
#: within this relative gap of the relaxation's bound; else the solve stops short
#: (``"stalled"``: this method cannot close it), kept only when partial results are asked for.
INTEGER_REL_GAP = 0.01


@dataclass
class LinkedSolution:
    """The answer on this rank: its blocks' solutions at the final allocation.

    ``objective`` and ``bound`` are of the minimisation form, summed over all blocks (the
    same on every rank); ``columns[i]`` is block i's solution vector of its own form (this
    rank's blocks only); ``allocation`` the linking columns' values, block by block.
    """

    status: str
    objective: float
    bound: float
    gap: float | None
    allocation: np.ndarray
    columns: dict[int, np.ndarray]
    block_objectives: np.ndarray
    iterations: int
    history: list[tuple[float, int, float, float]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    target: float = DEFAULT_REL_GAP


class _Block:
    """One block's HiGHS model, kept between solves (bounds change, the basis stays)."""

    def __init__(self, index: int, label: str, form: Any, link: int, solver: SolverOptions,
                 relax: bool) -> None:
        from stochplan.solve.matrix import _highs, _pass

        self.index, self.label, self.link = index, label, link
        self.form = form
        self.lo = float(form.col_lo[link])
        self.hi = float(form.col_hi[link])
        integer = np.zeros_like(form.integer) if relax else form.integer
        self.h = _highs(solver)
        _pass(self.h, form.A, form.cost, form.col_lo, form.col_hi, form.row_lo, form.row_hi,
              integer, form.offset)

    def _run(self, what: str) -> None:
        self.h.run()
        status = self.h.getModelStatus().name
        if status != "kOptimal":
            message = f"block {self.label!r}: {what}: HiGHS status {status}"
            if "Infeasible" in status:
                raise InfeasibleError(message)
            raise SolveError(message)

    def favourite(self) -> tuple[float, float]:
        """The block's optimum with its draw free, and the least draw that attains it:
        (value, draw)."""
        import highspy

        self._fix(self.lo, self.hi)
        self._run("with its draw on the shared resource free")
        value = float(self.h.getInfo().objective_function_value)
        # the least draw with cost.x <= the optimum (a tolerance above it)
        n = len(self.form.cost)
        nz = np.flatnonzero(self.form.cost)
        limit = value - float(self.form.offset) + 1e-9 * max(1.0, abs(value))
        self.h.addRow(-highspy.kHighsInf, limit, len(nz), nz.astype(np.int32),
                      np.asarray(self.form.cost, dtype=np.float64)[nz])
        row = self.h.getNumRow() - 1
        try:
            draw = self._least_draw("its favourite draw on the shared resource")
        finally:
            self.h.deleteRows(1, np.array([row], dtype=np.int32))
        assert self.h.getNumRow() == row and n == self.h.getNumCol()
        return value, draw

    def smallest_draw(self) -> float:
        """The least draw on the resource with which the block is feasible."""
        self._fix(self.lo, self.hi)
        return self._least_draw("its smallest feasible draw on the shared resource")

    def _least_draw(self, what: str) -> float:
        n = len(self.form.cost)
        unit = np.zeros(n)
        unit[self.link] = 1.0
        self.h.changeColsCost(n, np.arange(n, dtype=np.int32), unit)
        try:
            self._run(what)
            value = float(self.h.getSolution().col_value[self.link])
        finally:
            self.h.changeColsCost(n, np.arange(n, dtype=np.int32),
                                  np.asarray(self.form.cost, dtype=np.float64))
        return max(self.lo, value)

    def at(self, draw: float) -> tuple[float, float]:
        """(v_b(draw), a subgradient of v_b at draw) with the draw fixed."""
        self._fix(draw, draw)
        self._run(f"at a draw of {draw:.6g} on the shared resource")
        sol = self.h.getSolution()
        return (float(self.h.getInfo().objective_function_value),
                float(sol.col_dual[self.link]))

    def integer_at(self, draw: float) -> tuple[float, float, np.ndarray]:
        """The block's mixed-integer program with the draw fixed: (value, bound, columns)."""
        from stochplan.solve.matrix import _pass

        form = self.form
        _pass(self.h, form.A, form.cost, form.col_lo, form.col_hi, form.row_lo, form.row_hi,
              form.integer, form.offset)
        self._fix(draw, draw)
        self.h.run()
        info = self.h.getInfo()
        if info.primal_solution_status != 2:
            raise SolveError(f"block {self.label!r}: no integer solution at a draw of "
                             f"{draw:.6g} on the shared resource (HiGHS status "
                             f"{self.h.getModelStatus().name})", "error")
        return (float(info.objective_function_value), float(info.mip_dual_bound),
                np.asarray(self.h.getSolution().col_value))

    def values(self) -> np.ndarray:
        return np.asarray(self.h.getSolution().col_value)

    def _fix(self, lo: float, hi: float) -> None:
        self.h.changeColBounds(self.link, lo, hi)


def solve_linked(forms: Mapping[int, Any], links: Mapping[int, int], labels: list[str],
                 capacity: float, solver: SolverOptions, *, rel_gap: float | None = None,
                 max_iterations: int = 500, comm: Any = None,
                 progress: Callable[[str], None] | None = None) -> LinkedSolution:
    """Solve blocks that share one resource (``sum_b a_b <= capacity``) block by block.

    Parameters
    ----------
    forms
        This rank's blocks: block index -> its extensive form (minimisation arrays).
    links
        Block index -> the position of its linking column in its form (a first-stage column).
    labels
        Every block's label, in block order (all ranks).
    capacity
        The shared resource Q.
    solver
        HiGHS options of the block solves.
    rel_gap
        Stop when (upper - lower) / max(1, |upper|) is at most this (default 1e-6).
    max_iterations
        Master solves at most.
    comm
        An MPI communicator (None: every block in this process).
    progress
        Called with a short line after each master solve.

    Raises
    ------
    InfeasibleError
        A block infeasible with any draw, or the blocks' smallest draws beyond the capacity.
    SolveError
        The iteration limit reached before the gap (the solution so far is not kept).
    """
    start = time.perf_counter()
    gap_target = DEFAULT_REL_GAP if rel_gap is None else float(rel_gap)
    size = 1 if comm is None else comm.Get_size()
    me = 0 if comm is None else comm.Get_rank()
    n_blocks = len(labels)
    mine = [i for i in range(n_blocks) if i % size == me]
    if sorted(forms) != mine:
        raise ValueError(f"rank {me} holds blocks {sorted(forms)}, expected {mine}")
    integer = any(np.asarray(forms[i].integer, bool).any() for i in mine)
    if comm is not None:
        integer = any(comm.allgather(integer))
    blocks = {i: _Block(i, labels[i], forms[i], links[i], solver, relax=True) for i in mine}

    def gather(local: dict[int, tuple[float, ...]]) -> np.ndarray:
        """Every block's tuple in block order, on every rank."""
        parts = [local] if comm is None else comm.allgather(local)
        merged: dict[int, tuple[float, ...]] = {}
        for part in parts:
            merged.update(part)
        return np.array([merged[i] for i in range(n_blocks)], dtype=float)

    def each(fn: Callable[[_Block], tuple[float, ...]]) -> np.ndarray:
        local: dict[int, tuple[float, ...]] = {}
        error: tuple[str, str] | None = None
        for i in mine:
            try:
                local[i] = fn(blocks[i])
            except (InfeasibleError, SolveError) as err:
                error = (type(err).__name__, str(err))
                break
        errors = [error] if comm is None else comm.allgather(error)
        for found in errors:
            if found is not None:
                kind, message = found
                raise InfeasibleError(message) if kind == "InfeasibleError" else (
                    SolveError(message))
        return gather(local)

    bounds = gather({i: (blocks[i].lo, blocks[i].hi) for i in mine})
    fav = each(lambda b: b.favourite())
    low = each(lambda b: (b.smallest_draw(),))[:, 0]
    if low.sum() > capacity * (1 + 1e-9) + 1e-9:
        raise InfeasibleError(
            f"the blocks need at least {low.sum():,.6g} of the shared resource together "
            f"(the largest needs: {_largest(labels, low)}), more than its {capacity:,.6g}")
    history: list[tuple[float, int, float, float]] = []
    if fav[:, 1].sum() <= capacity * (1 + 1e-12):
        # every block's favourite draw fits: the blocks' own optima are the answer
        draw = fav[:, 1].copy()
        values = each(lambda b: b.at(draw[b.index]))
        upper = lower = float(values[:, 0].sum())
        iterations = 0
        history.append((time.perf_counter() - start, 0, lower, upper))
    else:
        draw, values, lower, upper, iterations = _cutting_planes(
            each, fav[:, 0], low, bounds[:, 1], capacity, gap_target, max_iterations,
            history, start, progress, me)
    relaxed = time.perf_counter() - start
    if integer:
        columns = {}

        def integer_at(b: _Block) -> tuple[float, float]:
            value, mip_bound, x = b.integer_at(draw[b.index])
            columns[b.index] = x
            return value, mip_bound

        per_block = each(integer_at)  # a block's failure reaches every rank
        objective = float(per_block[:, 0].sum())
        bound = lower
        block_objectives = per_block[:, 0]
    else:
        # the best allocation's block solutions: solve again where the last solve was not it
        values = each(lambda b: b.at(draw[b.index]))
        columns = {i: blocks[i].values() for i in mine}
        objective, bound = float(values[:, 0].sum()), lower
        block_objectives = values[:, 0]
    gap = relative_gap(objective, bound)
    target = INTEGER_REL_GAP if integer else gap_target
    status = decomposition_status(gap, target, "stalled")
    timings = {"relaxation": relaxed, "total": time.perf_counter() - start}
    return LinkedSolution(status, objective, bound, gap, draw, columns, block_objectives,
                          iterations, history, timings, target)


def _cutting_planes(each: Callable[..., np.ndarray], floor: np.ndarray, low: np.ndarray,
                    high: np.ndarray, capacity: float, gap_target: float, max_iterations: int,
                    history: list[tuple[float, int, float, float]], start: float,
                    progress: Callable[[str], None] | None, me: int
                    ) -> tuple[np.ndarray, np.ndarray, float, float, int]:
    """Kelley's method on the master over the draws; returns the best draw, the blocks'
    (value, subgradient) there, the lower and upper bounds and the iterations."""
    import highspy

    n = len(floor)
    master = highspy.Highs()
    master.setOptionValue("output_flag", False)
    inf = highspy.kHighsInf
    # columns: draws a_0..a_{n-1}, then theta_0..theta_{n-1}; min sum theta
    master.addVars(2 * n, np.concatenate([low, floor]),
                   np.concatenate([np.minimum(high, capacity), np.full(n, inf)]))
    master.changeColsCost(2 * n, np.arange(2 * n, dtype=np.int32),
                          np.concatenate([np.zeros(n), np.ones(n)]))
    master.addRow(-inf, capacity, n, np.arange(n, dtype=np.int32), np.ones(n))
    # start from the favourite draws scaled into the capacity, above the smallest draws
    best_draw = np.maximum(low, np.minimum(high, _share(low, high, capacity)))
    best_values = each(lambda b: b.at(best_draw[b.index]))
    upper = float(best_values[:, 0].sum())
    draw, values = best_draw, best_values
    lower = -math.inf
    for iteration in range(1, max_iterations + 1):
        _add_cuts(master, draw, values)
        master.run()
        if master.getModelStatus().name != "kOptimal":
            raise SolveError(f"the master problem over the shared resource: HiGHS status "
                             f"{master.getModelStatus().name}", "error")
        lower = float(master.getInfo().objective_function_value)
        draw = np.clip(np.asarray(master.getSolution().col_value)[:n], low, high)
        values = each(lambda b, d=draw: b.at(d[b.index]))
        total = float(values[:, 0].sum())
        if total < upper:
            upper, best_draw, best_values = total, draw, values
        history.append((time.perf_counter() - start, iteration, lower, upper))
        gap = relative_gap(upper, lower)
        if progress is not None and me == 0:
            progress(f"shared resource: iteration {iteration}, gap {gap:.2e}")
        log.debug("linked blocks: iteration %d lower %.10g upper %.10g", iteration, lower,
                  upper)
        if gap is not None and gap <= gap_target:
            return best_draw, best_values, lower, upper, iteration
    raise SolveError(f"the decomposition over blocks stopped at its iteration limit "
                     f"({max_iterations}) with gap {relative_gap(upper, lower):.2e}",
                     "iteration_limit")


def _add_cuts(master: Any, draw: np.ndarray, values: np.ndarray) -> None:
    """theta_b >= v_b + g_b (a_b - draw_b), i.e. -g_b a_b + theta_b >= v_b - g_b draw_b."""
    import highspy

    n = len(draw)
    for b in range(n):
        v, g = values[b]
        master.addRow(v - g * draw[b], highspy.kHighsInf, 2, np.array([b, n + b], np.int32),
                      np.array([-g, 1.0]))


def _share(low: np.ndarray, high: np.ndarray, capacity: float) -> np.ndarray:
    """A starting allocation: the smallest draws, then the rest of the capacity split evenly
    (capped at each block's upper bound)."""
    draw = low.copy()
    rest = capacity - low.sum()
    room = np.minimum(high, capacity) - low
    while rest > 1e-12 and (room > 1e-12).any():
        open_ = room > 1e-12
        step = min(rest / open_.sum(), float(room[open_].min()))
        draw[open_] += step
        room[open_] -= step
        rest -= step * open_.sum()
    return draw


def _largest(labels: list[str], low: np.ndarray) -> str:
    order = np.argsort(-low)[:3]
    return ", ".join(f"{labels[i]} {low[i]:,.6g}" for i in order)


# ----------------------------------------------------------------------------------------------
# A family's instance whose blocks share a resource (Family.shared_resource)


def solve_shared(family: Any, inst: Any, spec: str, seed: int | None,
                 multipliers: tuple[float, ...] = (1.0,),
                 weights: tuple[float, ...] | None = None,
                 solver: SolverOptions | None = None, comm: Any = None,
                 progress: Callable[[str], None] | None = None,
                 allow_partial: bool = False) -> Any:
    """Solve an instance whose blocks share one resource (the family's
    :meth:`~stochplan.family.Family.shared_resource`) block by block with
    :func:`solve_linked`, each block's extensive form merged as
    :func:`stochplan.solve.blocks.merged_form` does; the result of the whole as
    :func:`stochplan.solve.blocks.combine` makes it, with the decomposition's bound and gap.

    Returns a :class:`~stochplan.solve.results.SolveResult` on rank 0, None on the others.
    """
    import dataclasses

    from stochplan.parallel import share
    from stochplan.solve import matrix
    from stochplan.solve.blocks import (
        BlockArrays,
        BlockOutcome,
        combine,
        family_arrays,
        full_recourse,
        gather_outcomes,
    )
    from stochplan.solve.blocks import merged_form as merge

    shared = family.shared_resource(inst)
    if shared is None:
        raise SolveError(f"the {family.name} family's instance shares no resource")
    solver = solver or SolverOptions()
    note = progress or (lambda text: None)
    start = time.perf_counter()
    labels = [label for label, _ in shared.blocks]
    mine = share(range(len(labels)), comm)
    compiled: dict[int, Any] = {}
    forms: dict[int, Any] = {}
    links: dict[int, int] = {}
    for i in mine:
        record = shared.blocks[i][1]
        scen_set = family.scenario_set(record, spec, seed, multipliers, weights)
        arrays = family_arrays(family, record, scen_set)
        if arrays is None:
            arrays = matrix.compile_scenarios(family.module, scen_set.names,
                                              family.creator_kwargs(record, spec, seed,
                                                                    multipliers, weights))
        where = [j for j in range(arrays.n_first) if arrays.columns.variables[j] == shared.link]
        if len(where) != 1:
            raise SolveError(f"block {labels[i]!r} has {len(where)} first-stage columns "
                             f"{shared.link!r} (one expected)")
        compiled[i], forms[i], links[i] = arrays, merge(arrays), where[0]
    build = time.perf_counter() - start
    note(f"{len(labels)} blocks share {shared.name}")
    sol = solve_linked(forms, links, labels, shared.capacity, solver, comm=comm,
                       progress=note)
    outcomes: list[BlockOutcome] = []
    for i in mine:
        arrays, x = compiled[i], sol.columns[i]
        n1 = arrays.n_first
        second = full_recourse(arrays, forms[i], x)
        value = arrays.sense * float(sol.block_objectives[i])
        result = BlockArrays(arrays.columns, tuple(arrays.names),
                             np.asarray(arrays.probabilities, float), "optimal", value, None,
                             x[:n1].copy(), second, {})
        outcomes.append(BlockOutcome(i, labels[i], result, None, 0.0))
    gathered = gather_outcomes(outcomes, comm)
    if gathered is None:
        return None
    wall = time.perf_counter() - start
    layout = "mpi" if comm is not None else "serial"
    whole = combine(family, gathered, wall, layout,
                    comm.Get_size() if comm is not None else 1, allow_partial=False)
    bound = compiled[0].sense * sol.bound  # block 0 is on rank 0
    info = {**whole.info, "backend": f"blocks sharing {shared.name} (decomposed by block)",
            "iterations": sol.iterations, "history": sol.history,
            "allocation": dict(zip(labels, sol.allocation.tolist())),
            "rel_gap_target": sol.target}
    if sol.status not in SOLVED and not allow_partial:
        raise SolveError(f"the blocks sharing {shared.name}: the integer plan is "
                         f"{sol.gap:.2%} from the relaxation's bound, above {sol.target:.0%} "
                         "(this decomposition cannot close it); ask for partial results to "
                         "keep it", sol.status)
    return dataclasses.replace(
        whole, status=sol.status, bound=bound, gap=relative_gap(whole.objective, bound),
        timings={**whole.timings, "build": build, **sol.timings}, info=info)
