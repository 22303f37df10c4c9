"""Typed results of a solve: what every method (extensive form, PH, L-shaped) returns.

A decomposition (PH, the L-shaped method) stops when its relative gap is at most a target
(1 % for PH, 1e-4 for L-shaped by default). Its status says which: ``"optimal"`` only when the
bound and the objective meet (gap at most :data:`CLOSED_GAP`), else ``"gap_reached"``
(:func:`decomposition_status`); a run at a 0.55 % gap is not called optimal. The extensive form
keeps HiGHS's status (HiGHS calls a MIP optimal at its own ``mip_rel_gap``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

#: Bound and objective meet (an LP solved, or a decomposition whose gap closed).
OPTIMAL = "optimal"
#: A decomposition stopped at its relative gap target, with a gap above :data:`CLOSED_GAP`.
GAP_REACHED = "gap_reached"
#: The statuses of a result solved to what was asked: accepted wherever an optimal one is.
SOLVED = frozenset({OPTIMAL, GAP_REACHED})
#: A decomposition's relative gap at most this counts as closed (status ``"optimal"``).
CLOSED_GAP = 1e-9


def decomposition_status(gap: float | None, target: float, stop_reason: str) -> str:
    """The status of a decomposition that ended at relative gap ``gap``.

    ``"optimal"`` when the gap is at most :data:`CLOSED_GAP`, ``"gap_reached"`` when it is at
    most ``target``, else ``stop_reason`` (why it stopped short: ``"iteration_limit"``,
    ``"time_limit"``, ...; also when there is no gap, for want of a bound).

    >>> decomposition_status(0.0055, 0.01, "iteration_limit")
    'gap_reached'
    >>> decomposition_status(0.0, 0.01, "iteration_limit")
    'optimal'
    >>> decomposition_status(0.02, 0.01, "time_limit")
    'time_limit'
    """
    if gap is None or not gap <= target:
        return stop_reason
    return OPTIMAL if gap <= CLOSED_GAP else GAP_REACHED


def status_text(status: str, gap: float | None = None, target: float | None = None) -> str:
    """A status as a report shows it: ``"gap_reached"`` with the gap and its target (each
    when known), any other status as it is.

    >>> status_text("gap_reached", 0.0055, 0.01)
    'gap target reached (gap 0.55%, target 1.00%)'
    >>> status_text("gap_reached", 8.7e-5, 1e-4)
    'gap target reached (gap 0.0087%, target 0.01%)'
    >>> status_text("optimal", 0.0, 0.01)
    'optimal'
    """
    if status != GAP_REACHED:
        return status
    parts = [f"{name} {percent(x)}" for name, x in (("gap", gap), ("target", target))
             if x is not None and math.isfinite(x)]
    return "gap target reached" + (f" ({', '.join(parts)})" if parts else "")


def percent(x: float) -> str:
    """A relative gap in percent with two decimals, or two significant digits below 0.1 %."""
    return f"{x:.2%}" if abs(x) >= 1e-3 or x == 0 else f"{x * 100:.2g}%"


@dataclass(frozen=True)
class SolveResult:
    """The outcome of solving a two-stage problem.

    Attributes
    ----------
    method : str
        ``"ef"`` (extensive form), ``"ph"`` (progressive hedging) or ``"lshaped"``.
    status : str
        Solved to what was asked (:attr:`optimal` true):

        ``"optimal"``
            The extensive form: HiGHS's optimum (for a MIP, within HiGHS's ``mip_rel_gap``).
            A decomposition: bound and objective meet (gap at most :data:`CLOSED_GAP`).
        ``"gap_reached"``
            A decomposition stopped at its relative gap target (``info["rel_gap_target"]``)
            with the gap above :data:`CLOSED_GAP`: a plan within ``gap`` of optimal, not a
            proven optimum.

        Stopped short, returned only when partial results were asked for (else the solve
        raises :class:`~stochplan.errors.SolveError`): ``"time_limit"``,
        ``"iteration_limit"``, ``"converged"`` (PH converged short of the gap target),
        ``"stalled"`` (L-shaped), other HiGHS statuses of the extensive form; ``"partial"``
        when some blocks of a run solved block by block failed.
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
        """Solved to what was asked: status ``"optimal"`` or ``"gap_reached"`` (a plan within
        the requested gap, accepted wherever an optimal one is)."""
        return self.status in SOLVED

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
