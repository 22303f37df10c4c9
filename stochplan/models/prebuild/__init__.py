"""The S&OP pre-build family (seed 002): Q3 production ahead of an uncertain Q4 peak.

A planner decides the Q3 (July to September) production that builds inventory ahead of a Q4
peak, with a warehouse threshold (87 % of capacity) and a safety stock (15 % of next month's
demand); Q4 demand (baseline, or a marketing push) is revealed later. The seed notebook solved
one deterministic LP on the push scenario; this family is its two-stage version, and its
``deterministic`` option gives the notebook's LP back. One folder holds the whole family:

- :mod:`.data`: the instance record (:class:`PrebuildInstance`), its options
  (:class:`PrebuildOptions`), the loader of an instance folder and the demand sampler;
- :mod:`.model`: the Pyomo builder, :func:`build_model`, with the formulation in its docstring;
- :mod:`.kpis`: costs, fill rates, warehouse KPIs and the seed's recommended build plan;
- :mod:`.panels`: the text report and the dashboard panels of a stored run;
- ``instances/``: the built-in instance ``sop-prebuild`` (the seed's tables).

What is random is the second-stage (Q4) demand, per month. Scenarios: ``named`` gives the
instance's demand profiles with their probabilities; ``sample:N`` and ``poisson:N`` (the same
draws) give N equally likely scenarios, each a profile drawn with its probability and then
Poisson demand per month around it (:class:`~.data.ProfileMixture`; scenario k of seed s from
``np.random.default_rng([s, k])``); ``file:PATH`` reads them (columns ``scenario``, ``month``
= 4, 5, 6, ``value``). ``qmc:N`` does not apply. With ``deterministic`` set, only ``named``
applies: that scenario alone, with probability 1.

:data:`FAMILY` ties the parts to :class:`stochplan.family.Family`; the lines at the end make
this module follow mpi-sppy's module contract, so it runs unchanged under
``python -m mpisppy.generic_cylinders --module-name stochplan.models.prebuild``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stochplan import scenarios as scen
from stochplan.errors import InputError
from stochplan.family import Family, KPIs, Panel, ScenarioSource
from stochplan.models.prebuild.data import (
    PrebuildInstance,
    PrebuildOptions,
    ProfileMixture,
    load_prebuild,
)
from stochplan.models.prebuild.model import (
    FIRST_STAGE,
    INDEX_NAMES,
    SECOND_STAGE,
    build_model,
    first_stage_vars,
)

__all__ = [
    "FAMILY",
    "FIRST_STAGE",
    "INDEX_NAMES",
    "SECOND_STAGE",
    "PrebuildFamily",
    "PrebuildInstance",
    "PrebuildOptions",
    "build_model",
]


@dataclass(frozen=True)
class PrebuildSource(ScenarioSource):
    """:class:`~stochplan.family.ScenarioSource` whose ``poisson:N`` draws the profile mixture
    (as ``sample:N`` does), and which refuses sampled sets in deterministic mode."""

    @property
    def spec(self) -> scen.ScenarioSpec:
        return draw_spec(self.record, scen.parse_spec(self.scenarios))


def draw_spec(inst: PrebuildInstance, spec: scen.ScenarioSpec) -> scen.ScenarioSpec:
    """The spec the generic scenario code draws for ``spec``: ``poisson:N`` is the profile
    mixture, i.e. ``sample:N``; the others are as they are.

    Raises
    ------
    InputError
        ``qmc:N`` (no such draw of the mixture), or anything but ``named`` when
        ``options.deterministic`` is set.
    """
    if inst.deterministic and spec.kind != "named":
        raise InputError("model.deterministic", inst.options.deterministic,
                         f"solves that one scenario (the seed notebook's LP); it takes the named "
                         f"scenarios, not {spec}", inst.source)
    if spec.kind == "qmc":
        raise InputError("scenarios", str(spec), "the prebuild family draws a mixture of the "
                         "instance's demand profiles: use sample:N or poisson:N (the same "
                         "draws), named or file:PATH")
    if spec.kind == "poisson":
        return scen.ScenarioSpec("sample", spec.n)
    return spec


class PrebuildFamily(Family):
    """Months; first stage production, stock and overflow in Q3, recourse in each Q4 demand
    scenario (see :mod:`.model` for the formulation)."""

    name = "prebuild"
    description = "S&OP pre-build: Q3 production ahead of an uncertain Q4 peak (seed 002)"
    index_names = INDEX_NAMES
    first_stage = FIRST_STAGE
    options_type = PrebuildOptions
    default_instance = "sop-prebuild"

    def load(self, folder: Path, meta: dict[str, Any], toml_path: Path) -> PrebuildInstance:
        return load_prebuild(folder, meta, toml_path)

    def uncertainty(self, inst: PrebuildInstance) -> scen.Uncertainty:
        """Second-stage demand per month: the active profiles, or the mixture sampler."""
        profiles = inst.second_stage_profiles
        probabilities = inst.active_probabilities
        return scen.Uncertainty(
            name="demand",
            axes={"month": inst.second_periods},
            rates=None,
            named_data=profiles,
            named_probabilities=probabilities,
            named_labels=tuple(inst.profiles[i] for i in inst.active),
            sampler=None if inst.deterministic else ProfileMixture(profiles, probabilities),
        )

    def build(self, inst: PrebuildInstance, data: np.ndarray, name: str) -> Any:
        return build_model(inst, data, name=name)

    def _axes(self, inst: PrebuildInstance) -> dict[str, tuple[Any, ...]]:
        """Plan and recourse arrays span every month (first-stage ones in the plan, the others
        in the recourse)."""
        return {"month": inst.periods}

    def first_stage_vars(self, model: Any) -> list[Any]:
        """P, I and O at the first-stage months only."""
        return first_stage_vars(model)

    # -- scenarios ---------------------------------------------------------------------------

    def scenario_set(self, instance: Any, spec: str = "named", seed: int | None = 0,
                     multipliers: tuple[float, ...] = (1.0,),
                     weights: tuple[float, ...] | None = None) -> scen.ScenarioSet:
        """The scenarios of a run (see the module docstring for the specs that apply)."""
        if tuple(float(x) for x in multipliers) != (1.0,) or weights is not None:
            raise InputError("scenarios.multipliers", list(multipliers), "the prebuild family "
                             "samples a mixture of the instance's demand profiles; Poisson "
                             "rate multipliers and weights do not apply")
        inst = self.resolve(instance)
        asked = scen.parse_spec(spec)
        drawn = scen.draw_set(self.uncertainty(inst), draw_spec(inst, asked), seed)
        return drawn if drawn.spec == str(asked) else dataclasses.replace(drawn, spec=str(asked))

    def source(self, **kwargs: Any) -> ScenarioSource:
        return PrebuildSource.of(self, **kwargs)

    def scenario_data(self, scenario_name: str, **kwargs: Any) -> tuple[np.ndarray, float]:
        """Scenario ``scen<k>``'s data as the matrix backend reads it, and its probability: the
        second-stage demand followed by the safety stocks it implies (``int(r x D[t+1,s])``),
        so that the model is affine in the data (the truncation is not)."""
        src = self.source(**kwargs)
        k = scen.scenario_index(scenario_name)
        demand = src.data(k).ravel()
        floors = src.record.second_stage_floors(demand)
        return np.concatenate([demand, floors]), src.probability(k)

    def data_scenario_creator(self, scenario_name: str, data: np.ndarray,
                              **kwargs: Any) -> Any:
        """The scenario model for ``data``: second-stage demand, optionally followed by the
        safety stocks (as :meth:`scenario_data` gives them); mpi-sppy annotated."""
        src = self.source(**kwargs)
        inst = src.record
        values = np.asarray(data, dtype=float).ravel()
        T2 = len(inst.second_periods)
        if values.size == T2:
            demand, floors = values, None
        elif values.size == 2 * T2 - 1:
            demand, floors = values[:T2], values[T2:]
        else:
            raise InputError("data", f"{values.size} values", f"expected {T2} (demand) or "
                             f"{2 * T2 - 1} (demand and safety stocks)", inst.source)
        model = build_model(inst, demand, scenario_name, floors)
        return self.annotate(model, src.probability(scen.scenario_index(scenario_name)))

    def average_scenario_creator(self, scenario_name: str,  # type: ignore[override]
                                 **kwargs: Any) -> Any:
        """The mean-value (EV) scenario: the scenarios' expected demand, probability 1 (an LP
        family: no integer policy)."""
        src = self.source(**kwargs)
        return self.annotate(build_model(src.record, src.mean_data(), scenario_name), 1.0)

    # -- KPIs and reports --------------------------------------------------------------------

    def kpis(self, inst: PrebuildInstance, scenarios: scen.ScenarioSet, result: Any) -> KPIs:
        from stochplan.models.prebuild.kpis import kpi_report, trajectories

        plan = self.plan_arrays(result.plan, inst)
        recourse = self.recourse_arrays(result.recourse, inst, result.scenario_names)
        traj = trajectories(inst, plan, recourse, scenarios.data)
        return kpi_report(inst, traj, scenarios.names, scenarios.labels, scenarios.probabilities)

    def oos_kpis(self, inst: PrebuildInstance, scenarios: scen.ScenarioSet,
                 solves: Any) -> dict[str, float]:
        """The fill rate over the scenarios (all have a recourse: it is complete)."""
        from stochplan.models.prebuild.kpis import fill_rate

        feasible = [i for i, c in enumerate(solves.objective) if math.isfinite(c)]
        if not feasible or solves.recourse is None:
            return {"fill_rate": math.nan}
        names = tuple(scenarios.names[i] for i in feasible)
        lost = self.recourse_arrays(solves.recourse, inst, names).get("L")
        sub = scenarios.subset(feasible)
        demand = inst.demand_path(sub.data)
        return {"fill_rate": fill_rate(demand, np.zeros_like(demand) if lost is None else lost,
                                       sub.probabilities)}

    def instance_tables(self, inst: PrebuildInstance) -> dict[str, pd.DataFrame]:
        """``instance_profiles``: every demand profile's demand per month, with its
        probability (the first-stage months' demand is the same in each)."""
        K, T = inst.profile_demand.shape
        return {"instance_profiles": pd.DataFrame({
            "profile": np.repeat(np.array(inst.profiles, dtype=object), T),
            "probability": np.repeat(inst.profile_probabilities, T),
            "period": np.tile(np.array(inst.periods, dtype="int64"), K),
            "fiscal_month": np.tile(np.array(inst.months, dtype=object), K),
            "fiscal_quarter": np.tile(np.array(inst.quarters, dtype=object), K),
            "demand": inst.profile_demand.ravel(),
        })}

    def instance_summary(self, inst: PrebuildInstance) -> dict[str, Any]:
        p = inst.params
        return {
            "name": inst.name,
            "source": inst.source,
            "months": list(inst.months),
            "quarters": list(inst.quarters),
            "first_stage_months": inst.first_stage_months,
            "capacity": float(inst.capacity),
            "physical_capacity": inst.physical_capacity,
            "safe_capacity": inst.safe_capacity,
            "initial_inventory": inst.initial_inventory,
            **{f.name: float(getattr(p, f.name)) for f in dataclasses.fields(p)},
            "deterministic": inst.options.deterministic or "",
        }

    def report_text(self, headline: Mapping[str, float],
                    tables: Mapping[str, pd.DataFrame]) -> str:
        from stochplan.models.prebuild.panels import report_text

        return report_text(headline, tables)

    def panels(self, view: Any) -> list[Panel]:
        from stochplan.models.prebuild.panels import panels

        return panels(view)


FAMILY = PrebuildFamily()


def resolve(instance: str | PrebuildInstance,
            options: dict[str, Any] | None = None) -> PrebuildInstance:
    """The instance record for a name, path or record, with option overrides applied."""
    return FAMILY.resolve(instance, options)  # type: ignore[no-any-return]


scenario_set = FAMILY.scenario_set
creator_kwargs = FAMILY.creator_kwargs
plan_arrays = FAMILY.plan_arrays
recourse_arrays = FAMILY.recourse_arrays

# mpi-sppy's module contract
scenario_creator = FAMILY.scenario_creator
scenario_names_creator = FAMILY.scenario_names_creator
kw_creator = FAMILY.kw_creator
inparser_adder = FAMILY.inparser_adder
scenario_denouement = FAMILY.scenario_denouement
average_scenario_creator = FAMILY.average_scenario_creator
scenario_data = FAMILY.scenario_data
data_scenario_creator = FAMILY.data_scenario_creator
