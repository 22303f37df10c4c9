"""When a fixed first-stage plan has no feasible recourse in some scenario.

A two-stage model has *relatively complete recourse* when every first-stage plan that meets
the first-stage constraints has a feasible second stage in every scenario. Without it (the
electronics instance caps backorders at 40 % of demand and has no lost sales), a plan made
for some scenarios can be infeasible in others, and its expected cost is +inf. The analyses
then say so instead of printing ``+inf``:

* the SAA gap estimate (:mod:`stochplan.analysis.mrp`) stops at the first batch in which the
  candidate plan is infeasible and raises :class:`NoRecourseError`;
* the value report (:mod:`stochplan.analysis.value`) keeps RP, EV, WS and EVPI, and explains
  the infinite EEV and VSS (:func:`infinite_eev_note`);
* out-of-sample evaluation (:mod:`stochplan.analysis.oos`) measures the probability of
  infeasibility, and raises at the first infeasible scenario when asked to.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from stochplan.errors import InfeasibleError

#: What to do about a model without relatively complete recourse, whatever the model (one
#: sentence per remedy); :func:`advice` puts the family's own remedy first.
ADVICE = (
    "To get finite costs, give what the second stage cannot meet a price (a penalised slack) "
    "so that every scenario has a recourse. Or keep the hard constraints and make the first "
    "stage feasible for every outcome the distribution can draw (feasibility cuts or induced "
    "constraints on its support; a plan made on a sample is only guaranteed feasible on that "
    "sample)."
)


def remedy_of(module: object) -> str:
    """The model's own way to complete its recourse: its family's
    :attr:`~stochplan.family.Family.recourse_remedy`, or a module's ``RECOURSE_REMEDY``
    (empty when it names none)."""
    family = getattr(module, "FAMILY", None)
    text = getattr(family, "recourse_remedy", "") or getattr(module, "RECOURSE_REMEDY", "")
    return str(text or "")


def advice(remedy: str = "") -> str:
    """What to do, the model's own remedy (``remedy``, e.g. from :func:`remedy_of`) first."""
    if not remedy:
        return ADVICE
    return f"To get finite costs here: {remedy}. In general: " + ADVICE[0].lower() + ADVICE[1:]


def name_list(names: Sequence[str], limit: int = 8) -> str:
    """``"scen1, scen4, scen9"``; the first ``limit`` names and ``"... (N in all)"`` after."""
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


class NoRecourseError(InfeasibleError):
    """A fixed first-stage plan has no feasible recourse in some scenarios.

    Attributes
    ----------
    scenarios : tuple of str
        The scenarios (of the set named in the message) in which the plan is infeasible.
    """

    def __init__(self, message: str, scenarios: Sequence[str]):
        self.scenarios = tuple(scenarios)
        super().__init__(message, families=("relatively complete recourse",))


def no_recourse_error(what: str, infeasible: Sequence[str], n_scenarios: int,
                      where: str, remedy: str = "") -> NoRecourseError:
    """The error for ``what`` (e.g. ``"the N = 10 SAA plan"``) being infeasible in the
    scenarios ``infeasible`` out of ``n_scenarios`` of ``where`` (e.g. ``"MRP batch 0
    (seed 1)"``): what it means and what to do."""
    return NoRecourseError(
        f"{what} has no feasible recourse in {len(infeasible)} of {n_scenarios} scenarios of "
        f"{where} ({name_list(infeasible)}): the model lacks relatively complete recourse, so "
        f"the plan's expected cost is +inf and no finite estimate can be made; stopped there. "
        + advice(remedy),
        infeasible,
    )


def infinite_eev_note(infeasible: Sequence[str], probability: float, sense: str,
                      remedy: str = "") -> str:
    """Why EEV and VSS are infinite: the mean-value plan is infeasible in ``infeasible``
    (total probability ``probability``), and what to do for finite values."""
    inf = "+inf" if sense == "min" else "-inf"
    chance = f", with probability {probability:.1%}" if math.isfinite(probability) else ""
    return (
        f"EEV = VSS = {inf}: the mean-value plan has no feasible recourse in "
        f"{len(infeasible)} scenario(s) ({name_list(infeasible)}){chance}. Planning for the "
        f"mean is infeasible with a positive probability, so no "
        f"finite price measures the value of the stochastic solution under these hard "
        f"constraints (RP, EV, WS and EVPI are finite and valid). " + advice(remedy)
    )
