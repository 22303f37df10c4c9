"""Typed results of a solve: what every method (extensive form, PH) returns."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class SolveResult:
    """The outcome of solving a two-stage problem.

    Attributes
    ----------
    method : str
        ``"ef"`` (extensive form) or ``"ph"`` (progressive hedging).
    status : str
        ``"optimal"``, ``"time_limit"``, ``"infeasible"``, ... Only ``"optimal"`` results are
        returned unless partial results were asked for.
    objective : float or None
        Expected total cost of the plan, $ (first stage + probability-weighted recourse).
    bound : float or None
        Best proven lower bound on the optimal expected cost, $.
    gap : float or None
        Relative gap |objective - bound| / max(1, |objective|).
    plan : DataFrame
        First-stage decisions, long format: ``variable``, the index columns, ``value``.
    recourse : DataFrame
        Second-stage decisions: ``scenario``, ``variable``, the index columns, ``value``.
    scenario_names : tuple of str
    probabilities : ndarray, shape (S,)
    timings : dict
        Seconds per phase (``build``, ``solve``, ``extract``, ...).
    solver : str
        The solver that ran: a key of :data:`stochplan.solve.solvers.SOLVERS` when a Pyomo
        interface solved, ``"highspy"`` when the extensive form went through the matrix
        backend (then ``info["requested_solver"]`` holds the name asked for).
    """

    method: str
    status: str
    objective: float | None
    bound: float | None
    gap: float | None
    plan: pd.DataFrame
    recourse: pd.DataFrame
    scenario_names: tuple[str, ...]
    probabilities: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)
    solver: str = "highs"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def optimal(self) -> bool:
        return self.status == "optimal"

    def first_stage(self, variable: str) -> pd.Series:
        """One first-stage variable as a Series indexed like the model's variable."""
        rows = self.plan[self.plan["variable"] == variable]
        keys = [c for c in rows.columns if c not in ("variable", "value")]
        return rows.set_index(keys)["value"]

    def to_dict(self) -> dict[str, Any]:
        """Scalars only (no tables): JSON-ready."""
        def num(x: float | None) -> float | None:
            return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)

        return {
            "method": self.method,
            "status": self.status,
            "objective": num(self.objective),
            "bound": num(self.bound),
            "gap": num(self.gap),
            "n_scenarios": len(self.scenario_names),
            "timings": dict(self.timings),
            "solver": self.solver,
            **self.info,
        }
