"""A confidence interval on the optimality gap of a candidate plan, and SAA sample sizing.

The multiple-replication procedure (Mak, Morton and Wood, 1999): for independent batches
b = 1..n of N scenarios each, solve the batch's sample-average problem (optimum v_b) and
evaluate the candidate plan on the same batch (expected cost f_b). The gaps
G_b = f_b - v_b (minimisation; v_b - f_b for maximisation) are i.i.d. with a mean that bounds
the candidate's true optimality gap from above, so

    [0, mean(G) + t_{n-1, level} * std(G) / sqrt(n)]

is a one-sided ``level`` confidence interval on that gap.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from stochplan.analysis.recourse import no_recourse_error, remedy_of
from stochplan.errors import InputError
from stochplan.metrics.stats import t_half_width
from stochplan.parallel import alike, gather_all, share
from stochplan.solve.ef import solve_ef
from stochplan.solve.evaluate import evaluate_plan
from stochplan.solve.results import SolveResult
from stochplan.solve.solvers import SolverOptions

#: batch index -> (scenario names, creator keyword arguments) of that independent batch
BatchMaker = Callable[[int], tuple[Sequence[str], dict[str, Any]]]


@dataclass(frozen=True)
class GapEstimate:
    """MRP estimate of a candidate plan's optimality gap ($, and relative to its cost)."""

    n_batches: int
    batch_size: int
    mean: float
    std: float
    half_width: float
    upper: float
    level: float
    candidate_cost: float
    gaps: tuple[float, ...] = field(default_factory=tuple)

    @property
    def relative_upper(self) -> float:
        """Upper confidence bound of the gap / |mean candidate cost over the batches|."""
        return self.upper / max(1.0, abs(self.candidate_cost))

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "relative_upper": self.relative_upper}


def gap_confidence_interval(
    module: ModuleType,
    plan: pd.DataFrame,
    batches: BatchMaker,
    n_batches: int = 10,
    solver: SolverOptions | None = None,
    level: float = 0.95,
    sense: str = "min",
    comm: Any | None = None,
    progress: Callable[[int, int], None] | None = None,
    label: str = "the candidate plan",
) -> GapEstimate:
    """One-sided ``level`` confidence interval on the optimality gap of ``plan`` (MRP).

    Each batch first evaluates ``plan``, then solves the batch's own SAA problem.

    Raises
    ------
    NoRecourseError
        At the first batch in which ``plan`` (called ``label`` in the message) has no feasible
        recourse: its expected cost, and so its gap, is then +inf whatever the other batches
        give. The message names the batch, its seed and the scenarios, and what to do.
    """
    if n_batches < 2:
        raise InputError("n_batches", n_batches, "the MRP needs at least 2 batches")
    mine = share(range(n_batches), comm)
    results: dict[int, tuple[float, float, int]] = {}
    stopped: dict[int, tuple[tuple[str, ...], int, str]] = {}
    for done, b in enumerate(mine, start=1):
        names, kwargs = batches(b)
        # the plan first: a batch in which it is infeasible ends the procedure at once
        solves = evaluate_plan(module, plan, names, kwargs, solver)
        if solves.infeasible:
            seed = kwargs.get("seed")
            where = f"MRP batch {b}" + (f" (seed {seed})" if seed is not None else "")
            stopped[b] = (solves.infeasible, len(names), where)
            break
        f = solves.expected()
        v = solve_ef(module, names, kwargs, solver).objective
        assert v is not None
        gap = f - v if sense == "min" else v - f
        results[b] = (gap, f, len(names))
        if progress is not None:
            progress(done, len(mine))
    # every rank learns of an infeasible batch on any rank, so all raise together
    failed = gather_all(stopped, comm)
    if failed:
        infeasible, n, where = failed[min(failed)]
        with alike(comm):
            raise no_recourse_error(label, infeasible, n, where, remedy_of(module))
    merged = gather_all(results, comm)
    gaps = np.array([merged[b][0] for b in range(n_batches)])
    costs = np.array([merged[b][1] for b in range(n_batches)])
    mean, std = float(gaps.mean()), float(gaps.std(ddof=1))
    half = t_half_width(std, n_batches, level, two_sided=False)
    upper = max(mean, 0.0) + half
    return GapEstimate(
        n_batches=n_batches,
        batch_size=int(merged[0][2]),
        mean=mean,
        std=std,
        half_width=half,
        upper=upper,
        level=level,
        candidate_cost=float(costs.mean()),
        gaps=tuple(float(g) for g in gaps),
    )


@dataclass(frozen=True)
class SAAStep:
    n: int
    objective: float
    gap: GapEstimate
    seconds: float


def grow_sample(
    module: ModuleType,
    sample: Callable[[int], tuple[Sequence[str], dict[str, Any]]],
    batches_for: Callable[[int], BatchMaker],
    target: float,
    start: int = 10,
    max_n: int = 1000,
    n_batches: int = 10,
    solver: SolverOptions | None = None,
    sense: str = "min",
    comm: Any | None = None,
    progress: Callable[[str], None] | None = None,
) -> tuple[list[SAAStep], SolveResult]:
    """Double N from ``start`` until the MRP's upper confidence bound on the relative gap
    of the N-scenario SAA plan is at most ``target`` (e.g. 0.005 for 0.5 %), or N would pass
    ``max_n``. (That bound is at least the interval's half-width, so the half-width is below
    the target too.) Returns every step and the last SAA solve.

    Raises :class:`~stochplan.analysis.recourse.NoRecourseError` as soon as an SAA plan is
    infeasible in a scenario of an MRP batch (a model without relatively complete recourse):
    no N gives a finite gap then."""
    if not 0 < target < 1:
        raise InputError("target_gap", target, "must be a fraction in (0, 1), e.g. 0.005")
    steps: list[SAAStep] = []
    n = start
    while True:
        t0 = time.perf_counter()
        names, kwargs = sample(n)
        if progress is not None:
            progress(f"SAA with N = {n}")
        with alike(comm):  # every rank solves the same SAA problem
            result = solve_ef(module, names, kwargs, solver)
        gap = gap_confidence_interval(module, result.plan, batches_for(n), n_batches, solver,
                                      sense=sense, comm=comm, label=f"the N = {n} SAA plan")
        steps.append(SAAStep(n, float(result.objective or math.nan), gap,
                             time.perf_counter() - t0))
        if gap.relative_upper <= target or 2 * n > max_n:
            return steps, result
        n *= 2
