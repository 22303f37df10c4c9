"""Out-of-sample evaluation of a fixed first-stage plan on fresh scenarios."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd

from stochplan.metrics.stats import CostSummary, summarize_costs
from stochplan.solve.evaluate import ScenarioSolves, evaluate_plan
from stochplan.solve.solvers import SolverOptions


@dataclass(frozen=True)
class OutOfSample:
    """A plan's cost on M scenarios: the per-scenario costs and their summary."""

    label: str
    summary: CostSummary
    solves: ScenarioSolves

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
) -> OutOfSample:
    """Evaluate ``plan`` on the given (fresh, equally likely) scenarios.

    The scenarios must come from a seed independent of the one the plan was optimised on;
    ``creator_kwargs`` carry that seed. Returns the cost summary (mean with a ``level``
    confidence interval, quantiles, CVaR at ``cvar_level``, probability of infeasibility).
    """
    solves = evaluate_plan(module, plan, scenario_names, creator_kwargs, solver,
                           keep_recourse=keep_recourse, comm=comm, progress=progress)
    costs = np.asarray(solves.objective, dtype=float)
    return OutOfSample(label, summarize_costs(costs, level, cvar_level), solves)
