"""The value of the stochastic solution and of perfect information.

Definitions, for a two-stage problem over scenarios s with probabilities p_s:

- RP, the recourse problem: the optimal expected cost of the stochastic program.
- EV, the mean-value problem: the optimum when every random quantity is replaced by its mean.
- EEV: the expected cost of EV's first stage, fixed, with each scenario's optimal recourse.
- WS, wait-and-see: sum_s p_s (optimum of scenario s alone), first stage chosen knowing s.

Sign conventions. For minimisation (costs): VSS = EEV - RP and EVPI = RP - WS; then
WS <= RP <= EEV, and VSS, EVPI >= 0. For maximisation (profits) the signs mirror:
VSS = RP - EEV and EVPI = WS - RP, again both >= 0.

When the mean-value plan has no feasible recourse in some scenario (no relatively complete
recourse), EEV is +inf for minimisation (-inf for maximisation) and VSS is +inf; the
infeasible scenarios are named in the report.
"""

from __future__ import annotations

import math

from stochplan.errors import InputError


def _check_sense(sense: str) -> None:
    if sense not in ("min", "max"):
        raise InputError("sense", sense, "expected 'min' or 'max'")


def vss(rp: float, eev: float, sense: str = "min") -> float:
    """Value of the stochastic solution: EEV - RP (min) or RP - EEV (max); +inf if EEV is."""
    _check_sense(sense)
    if math.isinf(eev):
        return math.inf
    return eev - rp if sense == "min" else rp - eev


def evpi(rp: float, ws: float, sense: str = "min") -> float:
    """Expected value of perfect information: RP - WS (min) or WS - RP (max)."""
    _check_sense(sense)
    return rp - ws if sense == "min" else ws - rp
