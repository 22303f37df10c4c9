"""The options of the L-shaped method (the ``[lshaped]`` section of a run's configuration)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from stochplan.errors import InputError
from stochplan.solve.lshaped import tuning


@dataclass(frozen=True)
class LShapedOptions:
    """How the L-shaped method runs.

    Attributes
    ----------
    rel_gap : float
        Stop when (UB - LB) / max(1, |UB|) is at most this (default 1e-4, i.e. 0.01 %).
    max_iterations : int
        Iteration limit (one iteration solves every scenario once).
    time_limit : float or None
        Seconds, counted from the start of the iterations; None for no limit.
    clusters : int or None
        Optimality cuts per iteration (scenarios are grouped into this many clusters of
        consecutive scenarios); None chooses :data:`~.AUTO_CLUSTERS`, or
        :data:`~.AUTO_CLUSTERS_INTEGER` with an integer first stage (at most one per scenario).
    level : float
        The level parameter lambda in (0, 1): the next plan must have model value at most
        LB + lambda (UB - LB). Smaller is bolder.
    relaxation_gap : float
        Integer first stages only: phase 1 (the level method on the master's LP relaxation)
        stops at this relative gap of the relaxation, then the master becomes a MIP.
    """

    rel_gap: float = 1e-4
    max_iterations: int = 1000
    time_limit: float | None = None
    clusters: int | None = None
    level: float = 0.3
    relaxation_gap: float = 1e-3

    def __post_init__(self) -> None:
        if not 0 < self.rel_gap < 1:
            raise InputError("lshaped.rel_gap", self.rel_gap, "must be in (0, 1)")
        if isinstance(self.max_iterations, bool) or not isinstance(self.max_iterations, int) \
                or self.max_iterations < 1:
            raise InputError("lshaped.max_iterations", self.max_iterations,
                             "must be a positive integer")
        if self.time_limit is not None and not self.time_limit > 0:
            raise InputError("lshaped.time_limit", self.time_limit, "must be positive seconds")
        if self.clusters is not None and (isinstance(self.clusters, bool)
                                          or not isinstance(self.clusters, int)
                                          or self.clusters < 1):
            raise InputError("lshaped.clusters", self.clusters, "must be a positive integer")
        if not 0 < self.level < 1:
            raise InputError("lshaped.level", self.level, "must be in (0, 1)")
        if not 0 < self.relaxation_gap < 1:
            raise InputError("lshaped.relaxation_gap", self.relaxation_gap, "must be in (0, 1)")

    def replace(self, **changes: Any) -> LShapedOptions:
        return dataclasses.replace(self, **changes)

    def clusters_for(self, n_scenarios: int, integer: bool = False) -> int:
        """The number of clusters for ``n_scenarios`` scenarios (``integer``: the first stage
        has integer columns)."""
        auto = tuning.AUTO_CLUSTERS
        if integer:
            auto = n_scenarios if n_scenarios <= tuning.PER_SCENARIO_CUTS_INTEGER \
                else tuning.AUTO_CLUSTERS_INTEGER
        return max(1, min(n_scenarios, self.clusters or auto))
