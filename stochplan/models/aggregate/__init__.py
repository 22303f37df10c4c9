"""The aggregate workforce/production/inventory/backorder/overflow family (seed 003).

One folder holds the whole family:

- :mod:`.data`: the instance record (:class:`AggregateInstance`), its options
  (:class:`ModelOptions`) and the loader of an instance folder;
- :mod:`.model`: the Pyomo builder, :func:`build_model`, with the formulation in its docstring;
- :mod:`.kpis`: the seed's financial and operational KPIs;
- :mod:`.report` and :mod:`.panels`: the text report and the dashboard panels of a stored run;
- ``instances/``: the built-in instances (``electronics``).

:data:`FAMILY` ties them to :class:`stochplan.family.Family`; the lines at the end make this
module follow mpi-sppy's module contract, so it runs unchanged under
``python -m mpisppy.generic_cylinders --module-name stochplan.models.aggregate``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stochplan import scenarios as scen
from stochplan.errors import InputError
from stochplan.family import Family, KPIs, Panel, ScenarioSource
from stochplan.models.aggregate.data import AggregateInstance, ModelOptions, load_aggregate
from stochplan.models.aggregate.model import (
    FIRST_STAGE,
    INDEX_NAMES,
    SECOND_STAGE,
    build_model,
    first_stage_bounds,
)

__all__ = [
    "FAMILY",
    "FIRST_STAGE",
    "INDEX_NAMES",
    "SECOND_STAGE",
    "AggregateFamily",
    "AggregateInstance",
    "ModelOptions",
    "ScenarioSource",
    "build_model",
    "first_stage_bounds",
]


class AggregateFamily(Family):
    """Products x weeks; first stage production and workforce, recourse inventory and
    backorders in each demand scenario (see :mod:`.model` for the formulation)."""

    name = "aggregate"
    description = "workforce, production, inventory, backorders and overflow (seed 003)"
    index_names = INDEX_NAMES
    first_stage = FIRST_STAGE
    options_type = ModelOptions
    default_instance = "electronics"
    recourse_remedy = ("let demand be lost at a price (--set lost_sales_penalty=500 for $500 per "
                       "unit lost, or lost_sales_penalty under [model] in --config)")

    def load(self, folder: Path, meta: dict[str, Any], toml_path: Path) -> AggregateInstance:
        return load_aggregate(folder, meta, toml_path)

    def uncertainty(self, inst: AggregateInstance) -> scen.Uncertainty:
        """Demand per (product, week): Poisson around base demand, or the instance's levels
        (declared Poisson draws at ``named_levels`` x base demand when its instance.toml says
        so)."""
        return scen.Uncertainty(
            name="demand",
            axes={"product": inst.products, "week": inst.weeks},
            rates=inst.base_demand,
            named_data=inst.level_demand if inst.levels else None,
            named_probabilities=inst.level_probabilities if inst.levels else None,
            named_labels=inst.levels,
            named_levels=inst.named_levels if inst.levels else None,
        )

    def build(self, inst: AggregateInstance, data: np.ndarray, name: str) -> Any:
        return build_model(inst, data, name=name)

    def mean_instance(self, inst: AggregateInstance, mean: np.ndarray,
                      integer_policy: str) -> tuple[AggregateInstance, np.ndarray]:
        """With integer recourse a fractional mean demand has no integer solution: ``"round"``
        rounds it to whole units, ``"relax"`` keeps it and solves the LP relaxation."""
        if integer_policy not in ("round", "relax"):
            raise InputError("integer_policy", integer_policy, "expected 'round' or 'relax'")
        if not inst.options.integer:
            return inst, mean
        if integer_policy == "round":
            return inst, np.round(mean)
        return inst.with_options(integer=False), mean

    def kpis(self, inst: AggregateInstance, scenarios: scen.ScenarioSet, result: Any) -> KPIs:
        from stochplan.models.aggregate.kpis import kpi_report

        plan = self.plan_arrays(result.plan, inst)
        recourse = self.recourse_arrays(result.recourse, inst, result.scenario_names)
        report = kpi_report(inst, plan, recourse, scenarios.data, scenarios.probabilities)
        return KPIs(dict(report.headline), {"products": report.products,
                                            "composition": report.composition,
                                            "weekly": report.weekly})

    def oos_kpis(self, inst: AggregateInstance, scenarios: scen.ScenarioSet,
                 solves: Any) -> dict[str, float]:
        """The fill rate over the scenarios where the plan is feasible."""
        from stochplan.models.aggregate.kpis import fill_rate

        feasible = [i for i, c in enumerate(solves.objective) if math.isfinite(c)]
        if not feasible or solves.recourse is None:
            return {"fill_rate": math.nan}
        names = tuple(scenarios.names[i] for i in feasible)
        arrays = self.recourse_arrays(solves.recourse, inst, names)
        sub = scenarios.subset(feasible)
        return {"fill_rate": fill_rate(sub.data, arrays["B"], arrays.get("L"), sub.probabilities)}

    def instance_tables(self, inst: AggregateInstance) -> dict[str, pd.DataFrame]:
        return {"instance_products": pd.DataFrame({
            "product": list(inst.products),
            "label": list(inst.labels),
            "hours_per_unit": inst.hours_per_unit,
            "space_per_unit": inst.space_per_unit,
            "initial_workforce": inst.initial_workforce,
            "initial_inventory": inst.initial_inventory,
            "price": inst.price,
        })}

    def instance_summary(self, inst: AggregateInstance) -> dict[str, Any]:
        return {
            "name": inst.name,
            "source": inst.source,
            "hours_per_worker": inst.hours_per_worker,
            "overtime_fraction": inst.overtime_fraction,
            "regular_capacity": inst.regular_capacity,
            "overflow_capacity": inst.options.overflow_capacity,
            "weeks": list(inst.weeks),
        }

    def report_text(self, headline: Mapping[str, float],
                    tables: Mapping[str, pd.DataFrame]) -> str:
        from stochplan.models.aggregate.report import report_text

        return report_text(headline, tables)

    def panels(self, view: Any) -> list[Panel]:
        from stochplan.models.aggregate.panels import panels

        return panels(view)

    def compare_panels(self, views: Any) -> list[Panel]:
        from stochplan.models.aggregate.panels import compare_panels

        return compare_panels(views)

    def kpi_label(self, name: str) -> str | None:
        from stochplan.models.aggregate.panels import kpi_label

        return kpi_label(name)


FAMILY = AggregateFamily()


def resolve(instance: str | AggregateInstance,
            options: dict[str, Any] | None = None) -> AggregateInstance:
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
