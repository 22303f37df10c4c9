"""Out-of-sample evaluation of a fixed first-stage plan on fresh scenarios."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from stochplan.analysis.recourse import ADVICE, name_list, no_recourse_error
from stochplan.errors import InputError
from stochplan.metrics.stats import CostSummary, summarize_costs
from stochplan.solve.evaluate import ScenarioSolves, evaluate_plan
from stochplan.solve.solvers import SolverOptions


@dataclass(frozen=True)
class OutOfSample:
    """A plan's cost on M scenarios: the per-scenario costs and their summary."""

    label: str
    summary: CostSummary
    solves: ScenarioSolves

    @property
    def note(self) -> str:
        """What an infinite mean means here; empty when the plan is feasible everywhere."""
        bad = self.solves.infeasible
        if not bad:
            return ""
        return (f"{self.label}: no feasible recourse in {len(bad)} of {self.summary.n} "
                f"scenarios ({name_list(bad)}; P(infeasible) = "
                f"{self.summary.prob_infeasible:.1%}), so its mean cost is +inf and the "
                f"feasible-scenario figures describe only the others. {ADVICE}")

    def costs(self) -> pd.DataFrame:
        """Long table ``plan``, ``scenario`` (index k), ``cost`` ($, +inf where infeasible)."""
        index = [int(n.removeprefix("scen")) if n.startswith("scen") else i
                 for i, n in enumerate(self.solves.names)]
        return pd.DataFrame({"plan": self.label, "scenario": index,
                             "cost": self.solves.objective})


def out_of_sample(
    module: ModuleType,
    plan: pd.DataFrame,
    scenario_names: Sequence[str],
    creator_kwargs: dict[str, Any],
    label: str = "plan",
    solver: SolverOptions | None = None,
    level: float = 0.95,
    cvar_level: float = 0.95,
    keep_recourse: bool = False,
    comm: Any | None = None,
    progress: Callable[[int, int], None] | None = None,
    on_infeasible: str = "measure",
    block: int = 100,
) -> OutOfSample:
    """Evaluate ``plan`` on the given (fresh, equally likely) scenarios.

    The scenarios must come from a seed independent of the one the plan was optimised on;
    ``creator_kwargs`` carry that seed. Returns the cost summary (mean with a ``level``
    confidence interval, quantiles, CVaR at ``cvar_level``, probability of infeasibility).

    ``on_infeasible`` says what a scenario without feasible recourse does: ``"measure"``
    (default) solves every scenario and counts it (cost +inf, in ``prob_infeasible``; the
    plan's failure rate is then the result, and :attr:`OutOfSample.note` says so);
    ``"raise"`` evaluates ``block`` scenarios at a time and raises
    :class:`~stochplan.analysis.recourse.NoRecourseError` after the first block with an
    infeasible scenario, naming them.
    """
    if on_infeasible not in ("measure", "raise"):
        raise InputError("on_infeasible", on_infeasible, "expected 'measure' or 'raise'")
    names = [str(n) for n in scenario_names]
    if on_infeasible == "raise":
        for start in range(0, len(names), max(1, block)):
            part = names[start:start + max(1, block)]
            check = evaluate_plan(module, plan, part, creator_kwargs, solver, comm=comm)
            if check.infeasible:
                seed = creator_kwargs.get("seed")
                where = "the out-of-sample set" + (f" (seed {seed})" if seed is not None
                                                   else "")
                raise no_recourse_error(f"plan {label!r}", check.infeasible, len(names),
                                        where)
    solves = evaluate_plan(module, plan, names, creator_kwargs, solver,
                           keep_recourse=keep_recourse, comm=comm, progress=progress)
    costs = np.asarray(solves.objective, dtype=float)
    return OutOfSample(label, summarize_costs(costs, level, cvar_level), solves)
