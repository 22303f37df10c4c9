"""Out-of-sample evaluation of a fixed first-stage plan on fresh scenarios.

Fresh scenarios come from a :class:`~stochplan.scenarios.Distribution`: by default the one a
run's scenarios were drawn from, as the run stored it (:func:`stored_distribution`), so that a
plan is judged under the law it was made for; another one is an explicit choice. Either way
the evaluation stores which law it drew from, how many scenarios and with which seed
(:func:`summary_table`), and every report of it says so ("evaluated under: ...").

Example: the electronics instance declares its three-point scenarios Poisson draws at
0.8/1.0/1.2 x base demand (``named_levels`` in its ``instance.toml``; probabilities
0.25/0.5/0.25), so a three-point run is evaluated under that mixture, not under plain Poisson
around base demand (the variance of a cell's demand is ``base + 0.02 base^2`` under the
mixture, ``base`` under plain Poisson). ``stochplan simulate`` draws its days the same way
(:func:`run_distribution`).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stochplan.analysis.recourse import advice, name_list, no_recourse_error, remedy_of
from stochplan.errors import InputError
from stochplan.metrics.stats import CostSummary, summarize_costs
from stochplan.scenarios import Distribution, ScenarioSet, Uncertainty, distribution_of
from stochplan.solve.evaluate import ScenarioSolves, evaluate_plan
from stochplan.solve.solvers import SolverOptions

if TYPE_CHECKING:
    from stochplan.family import Family

#: Fresh scenarios drawn by ``evaluate`` when no count is given.
DEFAULT_DRAWS = 2000


@dataclass(frozen=True)
class OutOfSample:
    """A plan's cost on M scenarios: the per-scenario costs and their summary."""

    label: str
    summary: CostSummary
    solves: ScenarioSolves
    #: The model's own remedy for missing recourse (:func:`remedy_of`), for :attr:`note`.
    remedy: str = ""

    @property
    def note(self) -> str:
        """What an infinite mean means here; empty when the plan is feasible everywhere."""
        bad = self.solves.infeasible
        if not bad:
            return ""
        return (f"{self.label}: no feasible recourse in {len(bad)} of {self.summary.n} "
                f"scenarios ({name_list(bad)}; P(infeasible) = "
                f"{self.summary.prob_infeasible:.1%}), so its mean cost is +inf and the "
                f"feasible-scenario figures describe only the others. {advice(self.remedy)}")

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
                                        where, remedy_of(module))
    solves = evaluate_plan(module, plan, names, creator_kwargs, solver,
                           keep_recourse=keep_recourse, comm=comm, progress=progress)
    costs = np.asarray(solves.objective, dtype=float)
    return OutOfSample(label, summarize_costs(costs, level, cvar_level), solves,
                       remedy_of(module))


# ----------------------------------------------------------------------------------------------
# Which scenarios: the distribution, drawn afresh


@dataclass(frozen=True)
class FreshScenarios:
    """The scenarios of an out-of-sample evaluation and where they come from.

    Attributes
    ----------
    distribution : Distribution
        The law they are drawn from.
    spec : str
        The spec drawn (``poisson:2000``, ``sample:500``, ``qmc:256``, ``file:PATH``).
    seed : int or None
        Base seed of the draws (None for a file).
    scenarios : ScenarioSet
        The scenarios, equally likely unless a file says otherwise.
    creator_kwargs : dict
        The family's ``scenario_creator`` keyword arguments that build them.
    note : str
        What a reader must know about the choice (empty when nothing).
    """

    distribution: Distribution
    spec: str
    seed: int | None
    scenarios: ScenarioSet
    creator_kwargs: dict[str, Any]
    note: str = ""

    @property
    def n(self) -> int:
        return len(self.scenarios)

    @property
    def text(self) -> str:
        """``mixture of Poisson around the demand rates, levels 0.8/1.0/1.2 weights
        0.25/0.5/0.25, 2,000 draws, seed 1`` (QMC points say so)."""
        text = self.distribution.draws_text(self.n, self.seed)
        return text + (" (QMC points)" if self.spec.startswith("qmc:") else "")


def stored_distribution(config: Mapping[str, Any]) -> Distribution | None:
    """The distribution a run stored in its configuration (``config["distribution"]``), or None
    for a run stored without one (by an older stochplan, or not of a family)."""
    values = config.get("distribution")
    return None if values is None else Distribution.from_dict(values)


def run_distribution(
    config: Mapping[str, Any],
    unc: Uncertainty,
    run: int | str,
    verb: str = "evaluated as before",
    advice: str = "",
) -> tuple[Distribution, str]:
    """The distribution fresh scenarios of a stored run are drawn from by default, and the note
    a reader must see with them (empty when nothing).

    The run's stored distribution (:func:`stored_distribution`), its note as a sentence (a
    declared or stand-in law says why). A run stored without one (by an older stochplan):
    what it stored instead, the levels of its ``[scenarios]`` section around the family's
    rates (or the family's sampler when it has no rates), basis ``chosen``, with a note
    saying so (``verb``: "evaluated as before", "simulated"; ``advice`` is appended).

    Raises
    ------
    InputError
        A run stored without its distribution whose family can draw nothing (no rates, no
        sampler).
    """
    own = stored_distribution(config)
    if own is not None:
        return own, (own.note[:1].upper() + own.note[1:] + "." if own.note else "")
    scen_cfg = config.get("scenarios", {})
    multipliers = tuple(scen_cfg.get("multipliers") or (1.0,))
    weights = tuple(scen_cfg["weights"]) if scen_cfg.get("weights") else None
    law = distribution_of(unc, "poisson:1", None, multipliers, weights)
    if law is None:
        raise InputError("run", run, " ".join(x for x in (
            "stores no scenario distribution and its family draws no scenarios of its own (no "
            "Poisson rates, no sampler).", advice) if x))
    law = dataclasses.replace(law, basis="chosen", seed=None, note="")
    note = (f"Run {run} was stored without the distribution of its scenarios (by an older "
            f"stochplan): {verb} under {law.describe()} (its [scenarios] levels), "
            "which need not be the distribution its plan was made for.")
    return law, " ".join(x for x in (note, advice) if x)


def fresh_scenarios(
    family: Family,
    instance: Any,
    distribution: Distribution,
    n: int | None,
    seed: int | None,
    spec: str | None = None,
    note: str = "",
) -> FreshScenarios:
    """``n`` fresh scenarios of ``distribution`` for ``family``'s ``instance``, base seed
    ``seed``: Monte Carlo draws by default, or the draws of ``spec`` (``qmc:N``, a
    ``file:PATH``) when given, with the distribution's level mixture.

    The instance must be the one the distribution was made for: the scenarios are drawn
    through the family (its rates or sampler), so a distribution whose rates or sampler
    parameters differ from the instance's gets a sentence saying so in ``note``
    (:meth:`~stochplan.scenarios.Distribution.differs_from`).
    """
    drawn, multipliers, weights = distribution.draw_args(n)
    if spec is not None:
        drawn = spec
    scen_set = family.scenario_set(instance, drawn, seed, multipliers, weights)
    kwargs = family.creator_kwargs(instance, drawn, seed, multipliers, weights)
    changed = distribution.differs_from(family.uncertainty(instance))
    if changed:
        note = " ".join(x for x in (note, f"Beware: {changed}; the scenarios are drawn from "
                                    "the instance as it is now.") if x)
    seed = None if drawn.startswith("file:") else seed
    return FreshScenarios(distribution, drawn, seed, scen_set, kwargs, note)


def evaluate_plans(
    family: Family,
    instance: Any,
    plans: Sequence[tuple[str, pd.DataFrame]],
    fresh: FreshScenarios,
    solver: SolverOptions | None = None,
    cvar_level: float = 0.95,
    comm: Any | None = None,
    phase: Callable[[str], None] | None = None,
) -> list[tuple[OutOfSample, dict[str, float]]]:
    """Each (label, plan) on the same fresh scenarios: its :class:`OutOfSample` and the
    family's extra out-of-sample figures (:meth:`~stochplan.family.Family.oos_kpis`)."""
    results = []
    for label, plan in plans:
        if phase is not None:
            phase(f"evaluate {label} on {fresh.n} scenarios")
        oos = out_of_sample(family.module, plan, fresh.scenarios.names, fresh.creator_kwargs,
                            label, solver=solver, cvar_level=cvar_level, keep_recourse=True,
                            comm=comm)
        results.append((oos, family.oos_kpis(instance, fresh.scenarios, oos.solves)))
    return results


def summary_table(results: Sequence[tuple[OutOfSample, Mapping[str, float]]],
                  fresh: FreshScenarios) -> pd.DataFrame:
    """One row per plan: ``plan``, ``scenarios`` (the spec drawn), ``seed``, ``n``, the cost
    summary ($: ``mean``, ``ci_low``, ``ci_high``, quantiles, ``cvar``, ``prob_infeasible``,
    ``feasible_mean``), the family's figures, and where the scenarios came from:
    ``evaluated_under`` (:attr:`FreshScenarios.text`), ``evaluation_note`` and
    ``distribution`` (the :class:`~stochplan.scenarios.Distribution` as JSON text)."""
    law = json.dumps(fresh.distribution.to_dict())
    return pd.DataFrame([{
        "plan": oos.label, "scenarios": fresh.spec, "seed": fresh.seed, "n": oos.summary.n,
        "mean": oos.summary.mean, "ci_low": oos.summary.ci_low,
        "ci_high": oos.summary.ci_high, **oos.summary.quantiles, "cvar": oos.summary.cvar,
        "cvar_level": oos.summary.cvar_level, "prob_infeasible": oos.summary.prob_infeasible,
        "feasible_mean": oos.summary.feasible_mean, **extra,
        "evaluated_under": fresh.text, "evaluation_note": fresh.note, "distribution": law,
    } for oos, extra in results])
